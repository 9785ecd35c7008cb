"""Per-partner rate limit: a fixed one-minute window counted in the cache, keyed on the
partner (not the IP: a partner's servers share addresses with others behind NAT, and
one partner's keys share its budget). With several processes use a shared cache
(CACHE_URL=redis://…); the local-memory default counts per process."""
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from .authentication import PartnerClient

WINDOW_SECONDS = 60


class PartnerRateThrottle(BaseThrottle):
    def allow_request(self, request, view):
        client = request.user
        if not isinstance(client, PartnerClient):
            return True
        limit = client.partner.requests_per_minute or settings.CDP_API_REQUESTS_PER_MINUTE
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"cdp-api-rate:{client.partner.pk}:{window}"
        cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=WINDOW_SECONDS * 2)
            count = 1
        self._wait = (window + 1) * WINDOW_SECONDS - now
        return count <= limit

    def wait(self):
        return self._wait


# --- failed authentication, per client IP -------------------------------------------------
# Nobody is authenticated yet, so these count per IP. Keys are 32 random characters (no
# guessing them), but each failed call costs a hash check and used to cost an audit row.

def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def _window(now: float) -> int:
    return int(now // WINDOW_SECONDS)


def _incr(key: str) -> int:
    cache.add(key, 0, timeout=WINDOW_SECONDS * 3)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=WINDOW_SECONDS * 3)
        return 1


def failed_auth_wait(request) -> float | None:
    """Seconds until this IP may try a key again, when it failed too often this minute."""
    now = time.time()
    failures = cache.get(f"cdp-api-authfail:{client_ip(request)}:{_window(now)}", 0)
    if failures >= settings.CDP_API_FAILED_AUTH_PER_MINUTE:
        return (_window(now) + 1) * WINDOW_SECONDS - now
    return None


def failed_auth_count(request) -> None:
    """Count a call whose key was invalid, revoked or expired."""
    _incr(f"cdp-api-authfail:{client_ip(request)}:{_window(time.time())}")


def failed_auth_audit_due(request) -> tuple[bool, int]:
    """Whether this unauthenticated call is the first of its IP in this minute (and so
    writes the minute's one audit row), and how many such calls the IP made the minute
    before (recorded on the row)."""
    now = time.time()
    window, ip = _window(now), client_ip(request)
    first = _incr(f"cdp-api-authfail-audit:{ip}:{window}") == 1
    before = cache.get(f"cdp-api-authfail-audit:{ip}:{window - 1}", 0) if first else 0
    return first, before
