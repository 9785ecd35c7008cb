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
