"""Erased people's identifiers never come back: every write of a phone, email or other
identity (profile_create, profile_update, profile_upsert, identity_add, merges, the
partner API, event batches and the import) asks here first, and consent's erasure writes
here (identifiers_suppress).

The one place for suppression: the keyed hashes (profiles.Suppression), the digest, the
cached kinds someone was erased under, the look-up and the write."""
import hashlib
import hmac
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from ..models import Suppression
from ..normalisers import NormalisationError, normalise_identity

# Kinds whose suppression ignores case: a CRM exports "crm-0042" where another wrote
# "CRM-0042", and an erased person must not come back through a change of case.
CASELESS_SUPPRESSION_KINDS = frozenset({"crm_id"})


def suppression_form(kind: str, value: str) -> str:
    """The form of an identifier that is hashed: normalised as identities are stored
    (normalise_identity, whoever calls), case-folded for CRM ids."""
    try:
        value = normalise_identity(kind, value)
    except NormalisationError:
        value = str(value).strip()  # stored before validation existed: hashed as it is
    return value.casefold() if kind in CASELESS_SUPPRESSION_KINDS else value


def _hmac(text: str) -> str:
    return hmac.new(settings.CDP_SUPPRESSION_KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def identifier_digest(kind: str, value: str) -> str:
    """Keyed hash of a normalised identifier: phones are too few to hash unkeyed (all of
    them can be hashed in an afternoon). CDP_SUPPRESSION_KEY must never change."""
    return _hmac(f"{kind}:{suppression_form(kind, value)}")


def _digests(kind: str, value: str) -> set[str]:
    """The digest, and for CRM ids also the one erasures before case-folding recorded
    (the exact normalised value): hashes cannot be migrated, so both are looked up."""
    digests = {identifier_digest(kind, value)}
    if kind in CASELESS_SUPPRESSION_KINDS:
        digests.add(_hmac(f"{kind}:{value}"))
    return digests


# The kinds someone was erased under, kept in Django's cache with the version they were
# read at: every write of Suppression rows moves the version on (suppressed_kinds_changed),
# so with the shared cache production runs (CACHE_URL=redis://…) every process reads them
# again at its next call. A per-process cache cannot hear another process's change: there
# they are kept only a few seconds, like API keys (cdp.api.keys). The keys kept their
# "consent:" names from before the move, so running processes agree across a deploy.
SUPPRESSED_KINDS_KEY, SUPPRESSED_KINDS_VERSION_KEY = "consent:suppressed-kinds", "consent:suppressed-kinds:version"
SUPPRESSED_KINDS_SHARED_SECONDS, SUPPRESSED_KINDS_LOCAL_SECONDS = 600, 5


def suppressed_kinds() -> frozenset[str]:
    """The identity kinds that have suppressed identifiers: no query while cached."""
    cached = cache.get_many([SUPPRESSED_KINDS_KEY, SUPPRESSED_KINDS_VERSION_KEY])
    version = cached.get(SUPPRESSED_KINDS_VERSION_KEY)
    if version is None:
        cache.add(SUPPRESSED_KINDS_VERSION_KEY, uuid.uuid4().hex, timeout=None)
        version = cache.get(SUPPRESSED_KINDS_VERSION_KEY)
    elif cached.get(SUPPRESSED_KINDS_KEY, (None,))[0] == version:
        return cached[SUPPRESSED_KINDS_KEY][1]
    kinds = frozenset(Suppression.objects.values_list("kind", flat=True).distinct())
    # Stored with the version read before the query: a write committed meanwhile has moved the
    # version on, so these kinds are never taken for newer than they are.
    local = isinstance(caches[DEFAULT_CACHE_ALIAS], (LocMemCache, DummyCache))
    cache.set(SUPPRESSED_KINDS_KEY, (version, kinds),
              SUPPRESSED_KINDS_LOCAL_SECONDS if local else SUPPRESSED_KINDS_SHARED_SECONDS)
    return kinds


def suppressed_kinds_changed() -> None:
    """Call after writing Suppression rows: now (for this transaction's own reads) and
    again once committed (a read in between may have cached the kinds as they were)."""
    def move_on():
        cache.set(SUPPRESSED_KINDS_VERSION_KEY, uuid.uuid4().hex, timeout=None)

    move_on()
    transaction.on_commit(move_on)


def suppressed_among(pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The erased identifiers among normalised (kind, value) pairs. Hashing every key of a
    million-row import costs seconds: only the kinds someone was erased under are hashed
    (no query at all while nobody has been, once the kinds are cached), and asked in slices."""
    pairs = sorted(set(pairs))
    if not pairs:
        return set()
    kinds = suppressed_kinds()
    pairs = [pair for pair in pairs if pair[0] in kinds]
    found = set()
    for start in range(0, len(pairs), 2000):
        by_digest: dict[str, set[tuple[str, str]]] = {}
        for kind, value in pairs[start:start + 2000]:
            for digest in _digests(kind, value):
                by_digest.setdefault(digest, set()).add((kind, value))
        for digest in Suppression.objects.filter(digest__in=list(by_digest)).values_list("digest", flat=True):
            found |= by_digest[digest]
    return found


def identifiers_suppress(pairs: Iterable[tuple[str, str]], *, request_id: int | None = None) -> int:
    """Keep these (kind, value) identifiers of an erased person out from now on, noting
    the erasure request behind them; returns how many were given. An identifier suppressed
    before stays as it was. Call inside the erasure's transaction."""
    pairs = sorted(set(pairs))
    Suppression.objects.bulk_create(
        [Suppression(digest=identifier_digest(kind, value), kind=kind, request_id=request_id) for kind, value in pairs],
        ignore_conflicts=True,
    )
    suppressed_kinds_changed()
    return len(pairs)


def suppression_error(kind: str, value: str) -> ValidationError:
    return ValidationError(
        _("%(kind)s %(value)s belonged to a person whose data was erased at their request; it cannot be stored "
          "again.") % {"kind": kind, "value": value}, code="suppressed")


def identities_refuse_suppressed(fields: dict, identities: Iterable[tuple[str, str]] = ()) -> None:
    """ValidationError when the phone or email in `fields` (keyed by that field) or one of
    `identities` (keyed "identities") belonged to an erased person. Values are normalised
    here; ones that do not normalise are left to the caller's own checks."""
    keyed: dict[tuple[str, str], str] = {}
    for kind, value, key in [*((f, fields.get(f), f) for f in ("phone", "email")),
                             *((k, v, "identities") for k, v in identities)]:
        try:
            normalised = normalise_identity(kind, value) if value else ""
        except NormalisationError:
            continue
        if normalised:
            keyed.setdefault((kind, normalised), key)
    found = suppressed_among(keyed)
    if found:
        errors: dict[str, list] = {}
        for kind, value in sorted(found):
            errors.setdefault(keyed[(kind, value)], []).append(suppression_error(kind, value))
        raise ValidationError(errors)
