"""Erased people's identifiers never come back: every write of a phone, email or other
identity (profile_create, profile_update, profile_upsert, identity_add, and the import)
asks here first.

The hashes of erased identifiers live in the consent app (consent.Suppression), above
profiles in the layering: consent hands its look-up in at ready() through
`suppression_lookup_register`. Without it every check raises ImproperlyConfigured instead
of letting an erased person back in silently."""
from collections.abc import Callable, Iterable

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils.translation import gettext as _

from ..normalisers import NormalisationError, normalise_identity

Pairs = list[tuple[str, str]]
_lookup: Callable[[Pairs], set[tuple[str, str]]] | None = None


def suppression_lookup_register(lookup: Callable[[Pairs], set[tuple[str, str]]]) -> None:
    """`lookup(pairs)`: which of these normalised (kind, value) pairs were erased
    (consent.selectors.suppressed_identities)."""
    global _lookup
    _lookup = lookup


def suppressed_among(pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The erased identifiers among normalised (kind, value) pairs; no query for none."""
    pairs = sorted(set(pairs))
    if not pairs:
        return set()
    if _lookup is None:
        raise ImproperlyConfigured("No suppression look-up is registered (consent.apps.ConsentConfig.ready "
                                   "registers it): erased people's identifiers could come back.")
    return _lookup(pairs)


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
