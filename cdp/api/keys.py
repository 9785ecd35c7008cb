"""Making, checking and revoking partner API keys.

A key reads `<prefix>.<secret>`: the 8-character prefix finds the row, the whole key is
checked against a SHA-512 hash (djangorestframework-api-key's generator and hasher: a
random 40-character key needs no slow password hash, and a slow one would cost every
request). The key itself is never stored and is shown once."""
import datetime
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework_api_key.crypto import KeyGenerator

from cdp.models import Partner, PartnerAPIKey, Scope

_generator = KeyGenerator(prefix_length=8, secret_key_length=32)


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
    return api_key


def api_key_find(key: str) -> PartnerAPIKey | None:
    """The key row whose hash matches `key` (revoked and expired ones included, so the
    caller can say which), or None."""
    prefix, dot, secret = key.partition(".")
    if not dot or not secret or len(prefix) != 8:
        return None
    api_key = PartnerAPIKey.objects.select_related("partner").filter(prefix=prefix).first()
    if api_key is None or not _generator.verify(key, api_key.hashed_key):
        return None
    return api_key
