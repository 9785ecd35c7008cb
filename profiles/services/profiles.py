"""Writes to profiles and identities. Every path (admin, import, API, demo) comes here."""
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connections, router, transaction
from django.db.models.query import get_related_populators
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.one_statement import Statement

from .. import activity
from ..models import Identity, IdentityKind, Profile, ProfileMerge, ProfileStatus
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
from ..identity import CREATE, MERGE, resolve
from .merge import profiles_merge_all
from .suppression import identities_refuse_suppressed, suppressed_among, suppression_error

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
    """Create a profile; its phone and email become identities too. An erased person's
    phone, email or identity is refused (ValidationError keyed by the field)."""
    fields = profile_fields_normalise(data)
    identities = list(identities)
    identities_refuse_suppressed(fields, identities)
    profile = _profile_insert(fields)
    for kind, value in _identities_of(fields, identities):
        _identity_add(profile=profile, kind=kind, value=value, source=source, refuse_suppressed=False)
    activity.profile_created(profile=profile, source=source, actor=actor)
    return profile


def _profile_insert(fields: dict) -> Profile:
    profile = _profile_checked(fields)
    profile.save(force_insert=True)
    return profile


def _profile_checked(fields: dict) -> Profile:
    """A new profile, unsaved, its fields checked."""
    profile = Profile(**fields)
    # Field checks (choices, lengths) give translated errors; the table's constraints
    # concern fields services set themselves, and the database enforces them anyway
    # (checking them here cost a query each, half of an API upsert's time). The fields
    # not given hold their defaults.
    profile.full_clean(exclude=_other_fields(fields), validate_constraints=False)
    return profile


def _other_fields(names) -> list[str]:
    """The profile's fields not among `names` (and its public id, made by us): what a
    check of `names` may skip."""
    return [f.name for f in Profile._meta.fields if f.name not in names or f.name == "uuid"]


@transaction.atomic
def profile_update(*, profile: Profile, actor: Actor, source: str = "admin", **data) -> Profile:
    """Change editable fields; a blank value clears it. The edit lands on the timeline."""
    fields = profile_fields_normalise(data)
    profile = Profile.objects.select_for_update().get(pk=profile.pk)
    profile_require_active(profile)
    new_keys = {f: fields[f] for f in ("phone", "email") if f in fields and fields[f] != getattr(profile, f)}
    identities_refuse_suppressed(new_keys)  # an erased person's phone or email stays out
    changes = _profile_change(profile, fields)
    if not changes:
        return profile
    for kind, value in _identities_of(new_keys, ()):
        _identity_add(profile=profile, kind=kind, value=value, source=source, refuse_suppressed=False)
    activity.profile_edited(profile=profile, changes=changes, actor=actor)
    return profile


def _profile_change(profile: Profile, fields: dict, into: Statement | None = None) -> dict[str, tuple]:
    """Save the fields of a locked profile that differ (now, or in the statement `into`);
    returns field → (before, after)."""
    changes = {f: (getattr(profile, f), v) for f, v in fields.items() if getattr(profile, f) != v}
    if changes:
        for name, (_before, after) in changes.items():
            setattr(profile, name, after)
        profile.full_clean(exclude=_other_fields(changes), validate_constraints=False)
        if into is None:
            profile.save(update_fields=[*changes, "updated_at"])
        else:
            into.update(profile, [*changes, "updated_at"])
    return changes


@dataclass
class Upserted:
    profile: Profile
    created: bool
    merges: list[ProfileMerge] = field(default_factory=list)
    # All the profile's identities, in the order they were added; None after a merge.
    identities: list[Identity] | None = None


@transaction.atomic(savepoint=False)  # one transaction with the caller's: no savepoint round trips
def profile_upsert(
    *, identities: list[tuple[str, str]], strong_kinds: set[str], actor: Actor, source: str,
    into: Statement | None = None, **data
) -> Upserted:
    """Find the customer by normalised identities (and the phone and email in `data`),
    update the fields given, or create the customer when nobody matches; identities
    nobody holds yet are added. Who it is, the identity resolver decides (profiles.identity:
    only kinds in `strong_kinds` decide between customers), and when strong identities
    point at several customers they are merged. A phone or email sent only as an identity
    fills the customer's own field when that is empty; a new customer's key that someone
    else holds, even a device id, is refused (identity_taken).

    The common cases cost a fixed handful of statements: one look-up of the owners that
    also locks the customer, the writes that change something (identities in one INSERT),
    the timeline row; merges take the general path.

    `into`: the caller's last statement of the transaction (cdp.one_statement), where the
    common cases put their writes (the new customer, its identities and timeline row; or
    the change and its timeline row) instead of sending them one by one: a single round
    trip with the caller's own writes. Nothing is written before the caller runs it, and
    its read does not see these writes; a new customer's key and its identities' keys
    are set once it ran. Merges write at once."""
    fields = profile_fields_normalise(data)
    keys = list(dict.fromkeys([*identities, *_identities_of(fields, ())]))
    held = _identities_of_owners_locked(keys)
    suppressed = suppressed_among(key for key in keys if key not in held)  # no query when all are known
    if suppressed:
        raise ValidationError({"identities": [suppression_error(kind, value) for kind, value in sorted(suppressed)]})
    owners = {key: identity.profile for key, identity in held.items() if key in keys}
    [decision] = resolve([keys], {key: profile.pk for key, profile in owners.items()}, strong_kinds,
                         on_conflict=MERGE)
    if decision.action == MERGE:
        survivor, merges = profiles_merge_all(decision.profile_ids, actor=actor)
        fill = _fill_from_identities(data, identities, survivor)
        profile = profile_update(profile=survivor, actor=actor, source=source, **data, **fill)
        for kind, value in decision.new_keys:
            identity_add(profile=profile, kind=kind, value=value, source=source)
        return Upserted(profile, created=False, merges=merges)

    found = None if decision.action == CREATE else next(p for p in owners.values() if p.pk == decision.profile_id)
    fields.update(profile_fields_normalise(_fill_from_identities(data, identities, found)))
    changes = {}
    if found is None:
        if into is None:
            profile = _profile_insert(fields)
            profile_id = profile.pk
        else:
            profile = _profile_checked(fields)
            profile_id = into.insert_returning(profile)
        new_keys = _identities_of(fields, identities)
    else:
        profile, profile_id = found, found.pk
        changes = _profile_change(profile, fields, into)
        changed_keys = _identities_of({f: fields[f] for f in ("phone", "email") if f in changes}, ())
        new_keys = list(dict.fromkeys([*changed_keys, *decision.new_keys]))
    for kind, value in new_keys:
        holder = owners.get((kind, value))
        if holder is not None and holder.pk != profile.pk:
            raise _identity_taken(kind, value, holder)
    added = [Identity(profile_id=profile_id, kind_id=kind, value=value, source=source)
             for kind, value in new_keys if (kind, value) not in owners]
    if into is None:
        added = Identity.objects.bulk_create(added)
    else:
        into.insert(added)
    if found is None:
        activity.profile_created(profile=profile, source=source, actor=actor, into=into, profile_id=profile_id)
    elif changes:
        activity.profile_edited(profile=profile, changes=changes, actor=actor, into=into)
    had = [identity for identity in held.values() if identity.profile_id == profile.pk]
    return Upserted(profile, created=found is None, identities=[*had, *added])


def _identities_of_owners_locked(keys: list[tuple[str, str]]) -> dict[tuple[str, str], Identity]:
    """Every identity of the profiles that hold any of these keys, with its profile, in
    one query that also locks those profiles (in id order, as merges lock them, so that
    two calls cannot deadlock)."""
    if not keys:
        return {}
    kinds, values = list(dict.fromkeys(k for k, _v in keys)), list(dict.fromkeys(v for _k, v in keys))
    sql, compiler = _owners_query(kinds, values)
    with connections[compiler.using].cursor() as cursor:
        cursor.execute(sql, [*kinds, *values])
        rows = cursor.fetchall()
    # As QuerySet iteration builds them (ModelIterable), without compiling the query again.
    klass_info, select = compiler.klass_info, compiler.select
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    names = [column[0].target.attname for column in select[start:end]]
    populators = get_related_populators(klass_info, select, compiler.using)
    found = {}
    for row in compiler.results_iter([rows]):
        identity = Identity.from_db(compiler.using, names, row[start:end])
        for populator in populators:
            populator.populate(row, identity)
        found[(identity.kind_id, identity.value)] = identity
    return found


# The look-up's SQL per connection and number of kinds and values: building and compiling the query cost
# as much as running it (an API upsert's hottest path). Only the parameters change.
_OWNERS_SQL: dict[tuple, tuple] = {}


def _owners_query(kinds: list[str], values: list[str]):
    """(SQL, its compiler) of the look-up; the parameters are kinds then values."""
    using = router.db_for_read(Identity)
    # Per connection (each thread has its own): the compiler keeps the one it compiled for.
    shape = (connections[using], len(kinds), len(values))
    cached = _OWNERS_SQL.get(shape)
    if cached is None:
        holders = Identity.objects.filter(kind_id__in=kinds, value__in=values)
        rows = (Identity.objects.filter(profile__in=holders.values("profile_id")).select_related("profile")
                .select_for_update(of=("profile",)).order_by("profile_id", "pk"))
        compiler = rows.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        if list(params) != [*kinds, *values]:  # not the layout the cache relies on: no caching
            raise ImproperlyConfigured("The owners' look-up compiled with unexpected parameters.")
        cached = _OWNERS_SQL[shape] = (sql, compiler)
    return cached


def _fill_from_identities(data: dict, identities, profile: Profile | None) -> dict:
    """The phone and email sent only as identities (not as fields in `data`), for a
    profile that has none yet."""
    fill = {}
    for kind in (IdentityKind.PHONE, IdentityKind.EMAIL):
        value = next((v for k, v in identities if k == kind), "")
        if value and kind not in data and not (profile and getattr(profile, kind)):
            fill[kind] = value
    return fill


def _identity_taken(kind: str, value: str, holder: Profile) -> ValidationError:
    return ValidationError(
        _("%(kind)s %(value)s already identifies another customer (%(other)s).")
        % {"kind": kind, "value": value, "other": holder.uuid},
        code="identity_taken",
    )


def identity_add(*, profile: Profile, kind: str, value: str, source: str) -> Identity:
    """Attach an identity (normalised); ValidationError if it identifies someone else or
    belonged to an erased person."""
    return _identity_add(profile=profile, kind=kind, value=value, source=source, refuse_suppressed=True)


def _identity_add(*, profile: Profile, kind: str, value: str, source: str, refuse_suppressed: bool) -> Identity:
    try:
        value = normalise_identity(kind, value)
    except NormalisationError as exc:
        raise exc.as_validation_error() from exc
    if not IdentityKind.objects.filter(code=kind).exists():
        raise ValidationError(_("Unknown identity kind “%(kind)s”.") % {"kind": kind}, code="unknown_identity_kind")
    existing = Identity.objects.filter(kind_id=kind, value=value).select_related("profile").first()
    if existing:
        if existing.profile_id != profile.pk:
            raise _identity_taken(kind, value, existing.profile)
        return existing
    if refuse_suppressed and suppressed_among([(kind, value)]):
        raise suppression_error(kind, value)
    return Identity.objects.create(profile=profile, kind_id=kind, value=value, source=source)


def profile_require_active(profile: Profile) -> None:
    """Erased and merged customers are read-only: a write to one is refused with a
    message that says why (and, for a merge, who to work on instead). Reads the status
    from the database, not from a possibly stale instance."""
    status, survivor_id = Profile.objects.filter(pk=profile.pk).values_list("status", "merged_into").get()
    if status == ProfileStatus.ACTIVE:
        return
    if status == ProfileStatus.MERGED and survivor_id:
        survivor = Profile.objects.get(pk=survivor_id)
        raise ValidationError(
            _("This customer was merged into “%(survivor)s” and can no longer be changed; work on that customer "
              "instead.") % {"survivor": survivor}, code="profile_not_active",
        )
    raise ValidationError(_("This customer was erased and can no longer be changed."), code="profile_not_active")


def note_add(*, profile: Profile, text: str, actor: Actor):
    text = text.strip()
    if not text:
        raise ValidationError(_("A note cannot be empty."), code="empty_note")
    profile_require_active(profile)
    return activity.note_added(profile=profile, text=text, actor=actor)


def _identities_of(fields: dict, identities: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    keys = [(IdentityKind.PHONE, fields.get("phone")), (IdentityKind.EMAIL, fields.get("email")), *identities]
    seen, result = set(), []
    for kind, value in keys:
        if value and (kind, value) not in seen:
            seen.add((kind, value))
            result.append((kind, value))
    return result
