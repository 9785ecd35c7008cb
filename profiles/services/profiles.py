"""Writes to profiles and identities. Every path (admin, import, API, demo) comes here."""
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from cdp.actors import Actor

from .. import activity
from ..models import Identity, IdentityKind, Profile
from ..normalisers import (
    NormalisationError,
    normalise_city,
    normalise_date,
    normalise_email,
    normalise_gender,
    normalise_identity,
    normalise_name,
    normalise_phone,
    normalise_province,
)

EDITABLE_FIELDS = (
    "name", "gender", "birth_date", "phone", "email", "country", "province", "city", "occupation", "traits",
)
_NORMALISERS = {
    "name": normalise_name,
    "gender": normalise_gender,
    "birth_date": normalise_date,
    "phone": normalise_phone,
    "email": normalise_email,
    "province": normalise_province,
    "city": normalise_city,
}


def profile_fields_normalise(data: dict) -> dict:
    """Normalised copies of the editable fields in `data`; ValidationError keyed by field."""
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(_("These fields cannot be set: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    cleaned, errors = {}, {}
    for field, value in data.items():
        normalise = _NORMALISERS.get(field)
        try:
            cleaned[field] = normalise(value) if normalise else value
        except NormalisationError as exc:
            errors[field] = exc.as_validation_error()
    if cleaned.get("gender") == "":
        cleaned["gender"] = "unknown"
    if "country" in cleaned:
        cleaned["country"] = (cleaned["country"] or "").strip().upper()
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def profile_create(
    *, actor: Actor, source: str, identities: Iterable[tuple[str, str]] = (), **data
) -> Profile:
    """Create a profile; its phone and email become identities too."""
    fields = profile_fields_normalise(data)
    profile = Profile(**fields)
    # Field checks (choices, lengths) give translated errors; the table's constraints
    # concern fields services set themselves, and the database enforces them anyway
    # (checking them here cost a query each, half of an API upsert's time).
    profile.full_clean(exclude=["uuid"], validate_constraints=False)
    profile.save(force_insert=True)
    for kind, value in _identities_of(fields, identities):
        identity_add(profile=profile, kind=kind, value=value, source=source)
    activity.profile_created(profile=profile, source=source, actor=actor)
    return profile


@transaction.atomic
def profile_update(*, profile: Profile, actor: Actor, source: str = "admin", **data) -> Profile:
    """Change editable fields; a blank value clears it. The edit lands on the timeline."""
    fields = profile_fields_normalise(data)
    profile = Profile.objects.select_for_update().get(pk=profile.pk)
    changes = {f: (getattr(profile, f), v) for f, v in fields.items() if getattr(profile, f) != v}
    if not changes:
        return profile
    for field, (_before, after) in changes.items():
        setattr(profile, field, after)
    profile.full_clean(exclude=["uuid"], validate_constraints=False)
    profile.save(update_fields=[*changes, "updated_at"])
    new_keys = {f: fields[f] for f in ("phone", "email") if f in changes}
    for kind, value in _identities_of(new_keys, ()):
        identity_add(profile=profile, kind=kind, value=value, source=source)
    activity.profile_edited(profile=profile, changes=changes, actor=actor)
    return profile


def identity_add(*, profile: Profile, kind: str, value: str, source: str) -> Identity:
    """Attach an identity (normalised); ValidationError if it identifies someone else."""
    try:
        value = normalise_identity(kind, value)
    except NormalisationError as exc:
        raise exc.as_validation_error() from exc
    if not IdentityKind.objects.filter(code=kind).exists():
        raise ValidationError(_("Unknown identity kind “%(kind)s”.") % {"kind": kind}, code="unknown_identity_kind")
    existing = Identity.objects.filter(kind_id=kind, value=value).select_related("profile").first()
    if existing:
        if existing.profile_id != profile.pk:
            raise ValidationError(
                _("%(kind)s %(value)s already identifies another customer (%(other)s).")
                % {"kind": kind, "value": value, "other": existing.profile.uuid},
                code="identity_taken",
            )
        return existing
    return Identity.objects.create(profile=profile, kind_id=kind, value=value, source=source)


def note_add(*, profile: Profile, text: str, actor: Actor):
    text = text.strip()
    if not text:
        raise ValidationError(_("A note cannot be empty."), code="empty_note")
    return activity.note_added(profile=profile, text=text, actor=actor)


def _identities_of(fields: dict, identities: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    keys = [(IdentityKind.PHONE, fields.get("phone")), (IdentityKind.EMAIL, fields.get("email")), *identities]
    seen, result = set(), []
    for kind, value in keys:
        if value and (kind, value) not in seen:
            seen.add((kind, value))
            result.append((kind, value))
    return result
