"""Making, checking and revoking partner API keys.

A key reads `<prefix>.<secret>`: the 8-character prefix finds the row, the whole key is
checked against a SHA-512 hash (djangorestframework-api-key's generator and hasher: a
random 40-character key needs no slow password hash, and a slow one would cost every
request). The key itself is never stored and is shown once.

Authentication remembers a key's row (with its partner) in Django's cache for
KEY_CACHE_SECONDS, so a call costs no query for it; the secret is still checked against
the hash on every call, and expiry against the clock. Revoking through `api_key_revoke`
drops the entry at once (in every process when the cache is shared, CACHE_URL=redis://…);
a key revoked or a partner deactivated any other way, or seen by another process with the
per-process default cache, stops working at most KEY_CACHE_SECONDS later."""
import datetime
from collections.abc import Iterable

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework_api_key.crypto import KeyGenerator

from cdp.models import Partner, PartnerAPIKey, Scope

_generator = KeyGenerator(prefix_length=8, secret_key_length=32)
KEY_CACHE_SECONDS = 5


def scopes_clean(scopes: Iterable[str]) -> list[str]:
    scopes = list(dict.fromkeys(scopes))
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ValidationError(
            _("Unknown scope(s): %(scopes)s. Known scopes: %(known)s.")
            % {"scopes": ", ".join(unknown), "known": ", ".join(Scope.values)},
            code="unknown_scope",
        )
    return scopes


@transaction.atomic
def api_key_create(*, partner: Partner, name: str, scopes: Iterable[str],
                   expires_at: datetime.datetime | None = None) -> tuple[PartnerAPIKey, str]:
    """A new key for `partner`: (the row, the key). Show the key once; only its hash is kept."""
    key, prefix, hashed = _generator.generate()
    api_key = PartnerAPIKey(partner=partner, name=name, prefix=prefix, hashed_key=hashed,
                            scopes=scopes_clean(scopes), expires_at=expires_at)
    api_key.full_clean()
    api_key.save(force_insert=True)
    return api_key, key


def api_key_assign(api_key: PartnerAPIKey) -> str:
    """Give an unsaved key row (from the admin form) its prefix and hash; returns the key."""
    key, api_key.prefix, api_key.hashed_key = _generator.generate()
    return key


def api_key_revoke(*, api_key: PartnerAPIKey) -> PartnerAPIKey:
    """Revocation is final: a revoked key never works again."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        PartnerAPIKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=api_key.revoked_at)
    # Now, and again once committed (a call in between may have cached the row as it was).
    cache.delete(_cache_key(api_key.prefix))
    transaction.on_commit(lambda: cache.delete(_cache_key(api_key.prefix)))
    return api_key


def api_key_find(key: str) -> PartnerAPIKey | None:
    """The key row whose hash matches `key` (revoked and expired ones included, so the
    caller can say which), or None."""
    prefix = _prefix_of(key)
    api_key = PartnerAPIKey.objects.select_related("partner").filter(prefix=prefix).first() if prefix else None
    if api_key is None or not _generator.verify(key, api_key.hashed_key):
        return None
    return api_key


def api_key_find_cached(key: str) -> PartnerAPIKey | None:
    """`api_key_find` for authenticating a call: the row (with its partner) comes from the
    cache when it was read less than KEY_CACHE_SECONDS ago. Unknown prefixes are not
    remembered, so a key made a moment ago works at once."""
    prefix = _prefix_of(key)
    if not prefix:
        return None
    api_key = cache.get(_cache_key(prefix))
    if api_key is None:
        api_key = PartnerAPIKey.objects.select_related("partner").filter(prefix=prefix).first()
        if api_key is None:
            return None
        cache.set(_cache_key(prefix), api_key, KEY_CACHE_SECONDS)
    return api_key if _generator.verify(key, api_key.hashed_key) else None


def _prefix_of(key: str) -> str | None:
    prefix, dot, secret = key.partition(".")
    return prefix if dot and secret and len(prefix) == 8 else None


def _cache_key(prefix: str) -> str:
    return f"cdp-api-key:{prefix}"
