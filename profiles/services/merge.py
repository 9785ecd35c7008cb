"""Identity resolution, merging two profiles into one, and undoing a merge.

Survivor rule: the profile created first survives (ties: the lower id), so the id that
has been shared longest stays; staff may pick the other one when they merge by hand.

Field survivorship (the survivor's fields after a merge):
* name, birth date, occupation, phone, email: the survivor's value, or the merged
  profile's when the survivor's is empty ("non-empty");
* gender: the survivor's unless unknown;
* country, province, city: the most recently updated profile's non-empty value
  ("most recent");
* custom traits: both, the most recently updated profile winning on a shared key;
* created at: the oldest ("oldest").

Everything moves in one transaction: events, identities, tags (a tag both hold is kept
once), activity, and whatever higher apps register in MERGE_HOOKS (consent records,
segment memberships). What moved is recorded on the ProfileMerge row; unmerging moves
exactly that back and restores the survivor's fields.
"""
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.actors import Actor

from .. import activity
from ..identity import CONFLICT, CREATE, MERGE, UPDATE, resolve
from ..metrics import metrics_recompute
from ..models import (
    Event,
    Identity,
    IdentityKind,
    Profile,
    ProfileActivity,
    ProfileMerge,
    ProfileStatus,
    ProfileTag,
)
from ..normalisers import NormalisationError, normalise_identity
from .suppression import suppressed_among, suppression_error

NON_EMPTY_FIELDS = ("name", "birth_date", "occupation", "phone", "email")
MOST_RECENT_FIELDS = ("country", "province", "city")
TAG_COPY_FIELDS = ("tag_id", "source", "assigned_by_id", "assigned_by_label", "weight", "reason")


@dataclass(frozen=True)
class MergeHook:
    """Lets an app above profiles move its own rows on merge and move them back on
    unmerge. `move(survivor, merged)` returns JSON-able data that `restore(survivor,
    merged, data)` receives back."""

    name: str
    move: Callable[[Profile, Profile], object]
    restore: Callable[[Profile, Profile, object], None]


MERGE_HOOKS: list[MergeHook] = []


def survivor_of(a: Profile, b: Profile) -> tuple[Profile, Profile]:
    """(survivor, merged) by the documented rule: the older profile survives."""
    return (a, b) if (a.created_at, a.pk) <= (b.created_at, b.pk) else (b, a)


@transaction.atomic
def profiles_merge(*, survivor: Profile, merged: Profile, actor: Actor, reason: str = "") -> ProfileMerge:
    if survivor.pk == merged.pk:
        raise ValidationError(_("A customer cannot be merged with itself."), code="merge_same_profile")
    locked = {p.pk: p for p in Profile.objects.select_for_update().filter(pk__in=[survivor.pk, merged.pk]).order_by("pk")}
    survivor, merged = locked[survivor.pk], locked[merged.pk]
    for profile in (survivor, merged):
        if profile.status != ProfileStatus.ACTIVE:
            raise ValidationError(
                _("%(name)s is %(status)s and cannot be merged.") % {"name": profile, "status": profile.get_status_display()},
                code="merge_inactive_profile",
            )

    moved: dict[str, object] = {
        "events": _move(Event.objects.filter(profile=merged), survivor),
        "identities": _move(Identity.objects.filter(profile=merged), survivor),
        "activities": _move(ProfileActivity.objects.filter(profile=merged), survivor),
        "tombstones": _move_tombstones(merged, survivor),
    }
    shared_tags = ProfileTag.objects.filter(profile=merged, tag__in=ProfileTag.objects.filter(profile=survivor).values("tag"))
    moved["duplicate_tags"] = [
        {**{f: getattr(row, f) for f in TAG_COPY_FIELDS}, "assigned_at": row.assigned_at.isoformat(),
         "expires_at": row.expires_at.isoformat() if row.expires_at else None}
        for row in shared_tags
    ]
    shared_tags.delete()
    moved["tags"] = _move(ProfileTag.objects.filter(profile=merged), survivor)
    moved["hooks"] = {hook.name: hook.move(survivor, merged) for hook in MERGE_HOOKS}

    before = _fields(survivor)
    for name, value in _survivorship(survivor, merged).items():
        setattr(survivor, name, value)
    survivor.save()
    merged.status, merged.merged_into = ProfileStatus.MERGED, survivor
    merged.save(update_fields=["status", "merged_into", "updated_at"])

    record = ProfileMerge.objects.create(
        survivor=survivor, merged=merged, reason=reason[:255], actor_kind=actor.kind, actor_user=actor.user,
        actor_label=actor.label[:150], moved=moved, survivor_before=before,
    )
    counts = {"events": len(moved["events"]), "identities": len(moved["identities"]), "merge": record.pk}
    activity.profile_merged(survivor=survivor, merged=merged, counts=counts, actor=actor)
    metrics_recompute(profile_ids=[survivor.pk, merged.pk])
    return record


@transaction.atomic
def profiles_unmerge(*, merge: ProfileMerge, actor: Actor) -> ProfileMerge:
    """Put both profiles back as they were before `merge`. Events that arrived for the
    survivor after the merge stay with it."""
    merge = ProfileMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at:
        raise ValidationError(_("This merge was already undone."), code="merge_already_undone")
    survivor, merged = (Profile.objects.select_for_update().get(pk=pk) for pk in (merge.survivor_id, merge.merged_id))
    if survivor.status != ProfileStatus.ACTIVE:
        raise ValidationError(_("The surviving profile is no longer active (it was erased or merged); it cannot be "
                                "unmerged."), code="merge_survivor_inactive")
    if merged.merged_into_id != survivor.pk:
        raise ValidationError(
            _("The merged profile has since been merged elsewhere; undo that merge first."), code="merge_superseded"
        )
    moved = merge.moved
    for hook in reversed(MERGE_HOOKS):
        if hook.name in moved.get("hooks", {}):
            hook.restore(survivor, merged, moved["hooks"][hook.name])
    Event.objects.filter(pk__in=moved["events"], profile=survivor).update(profile=merged)
    Identity.objects.filter(pk__in=moved["identities"], profile=survivor).update(profile=merged)
    ProfileActivity.objects.filter(pk__in=moved["activities"], profile=survivor).update(profile=merged)
    ProfileTag.objects.filter(pk__in=moved["tags"], profile=survivor).update(profile=merged)
    ProfileTag.objects.bulk_create([ProfileTag(profile=merged, **row) for row in moved["duplicate_tags"]], ignore_conflicts=True)
    Profile.objects.filter(pk__in=moved["tombstones"]).update(merged_into=merged)

    for name, value in merge.survivor_before.items():
        setattr(survivor, name, Profile._meta.get_field(name).to_python(value))
    survivor.save()
    merged.status, merged.merged_into = ProfileStatus.ACTIVE, None
    merged.save(update_fields=["status", "merged_into", "updated_at"])
    merge.undone_at, merge.undone_by_label = timezone.now(), actor.label[:150]
    merge.save(update_fields=["undone_at", "undone_by_label"])
    activity.profile_unmerged(survivor=survivor, merged=merged, merge_id=merge.pk, actor=actor)
    metrics_recompute(profile_ids=[survivor.pk, merged.pk])
    return merge


@dataclass
class Resolution:
    """Who an incoming set of identities belongs to."""

    profile: Profile | None  # None: nobody yet (create one)
    unknown: list[tuple[str, str]] = field(default_factory=list)  # identities nobody holds
    others: list[Profile] = field(default_factory=list)  # further owners: a conflict, or merged if allowed
    merges: list[ProfileMerge] = field(default_factory=list)


def identities_resolve(
    identities: Iterable[tuple[str, str]], *, actor: Actor, merge: bool = False
) -> Resolution:
    """Find the customer these identities belong to, by the identity resolver
    (profiles.identity): only kinds marked "strong enough to merge on" decide between
    customers; a shared device id alone never links two. When strong identities point at
    several customers, merge them if `merge` is set (the survivor rule decides), else
    report them in `others` as a conflict. An erased person's identifier is refused
    (ValidationError, code "suppressed") before anything is merged."""
    normalised = []
    for kind, value in identities:
        try:
            value = normalise_identity(kind, value)
        except NormalisationError as error:
            raise error.as_validation_error() from error
        if value:
            normalised.append((kind, value))
    strong = set(IdentityKind.objects.filter(merge_on=True).values_list("code", flat=True))
    owners: dict[tuple[str, str], Profile] = {}
    for identity in Identity.objects.filter(
        kind_id__in={k for k, _v in normalised}, value__in={v for _k, v in normalised}
    ).select_related("profile"):
        if (identity.kind_id, identity.value) in normalised:
            owners[(identity.kind_id, identity.value)] = identity.profile
    unknown = [key for key in normalised if key not in owners]
    suppressed = suppressed_among(unknown)  # an erased person's identifier decides nothing
    if suppressed:
        raise ValidationError([suppression_error(kind, value) for kind, value in sorted(suppressed)])
    [decision] = resolve([normalised], {key: p.pk for key, p in owners.items()}, strong,
                         on_conflict=MERGE if merge else CONFLICT)
    profiles = {p.pk: p for p in owners.values()}
    if decision.action == CREATE:
        return Resolution(profile=None, unknown=unknown)
    if decision.action == UPDATE:
        return Resolution(profile=profiles[decision.profile_id], unknown=unknown)
    if decision.action == CONFLICT:
        first, *others = distinct_oldest_first(profiles[pk] for pk in decision.profile_ids)
        return Resolution(profile=first, unknown=unknown, others=others)
    survivor, merges = profiles_merge_all(decision.profile_ids, actor=actor)
    return Resolution(profile=survivor, unknown=unknown, merges=merges)


def profiles_merge_all(profile_ids: Iterable[int], *, actor: Actor) -> tuple[Profile, list[ProfileMerge]]:
    """Merge these customers into one, as the identity resolver decided (`MERGE`): the
    survivor rule picks who stays. Returns the survivor (fresh from the database) and the
    merges made."""
    survivor, *others = distinct_oldest_first(Profile.objects.filter(pk__in=list(profile_ids)))
    merges = []
    for other in others:
        survivor, absorbed = survivor_of(survivor, other)
        merges.append(profiles_merge(survivor=survivor, merged=absorbed, actor=actor,
                                     reason=_("the same identities arrived together")))
    survivor.refresh_from_db()
    return survivor, merges


def distinct_oldest_first(profiles: Iterable[Profile]) -> list[Profile]:
    """Each profile once, in survivor order (oldest first)."""
    seen: dict[int, Profile] = {}
    for profile in profiles:
        seen.setdefault(profile.pk, profile)
    return sorted(seen.values(), key=lambda p: (p.created_at, p.pk))


def _move(queryset, survivor: Profile) -> list[int]:
    ids = list(queryset.values_list("pk", flat=True))
    queryset.model.objects.filter(pk__in=ids).update(profile=survivor)
    return ids


def _move_tombstones(merged: Profile, survivor: Profile) -> list[int]:
    """Earlier merges into `merged` now point at the new survivor (no chains)."""
    ids = list(Profile.objects.filter(merged_into=merged).values_list("pk", flat=True))
    Profile.objects.filter(pk__in=ids).update(merged_into=survivor)
    return ids


def _fields(profile: Profile) -> dict:
    values = {name: getattr(profile, name) for name in (*NON_EMPTY_FIELDS, *MOST_RECENT_FIELDS, "gender", "traits")}
    values["birth_date"] = values["birth_date"].isoformat() if values["birth_date"] else None
    values["created_at"] = profile.created_at.isoformat()
    return values


def _survivorship(survivor: Profile, merged: Profile) -> dict:
    recent, older = (merged, survivor) if merged.updated_at > survivor.updated_at else (survivor, merged)
    values = {name: getattr(survivor, name) or getattr(merged, name) for name in NON_EMPTY_FIELDS}
    values.update({name: getattr(recent, name) or getattr(older, name) for name in MOST_RECENT_FIELDS})
    values["gender"] = survivor.gender if survivor.gender != "unknown" else merged.gender
    values["traits"] = {**(older.traits or {}), **(recent.traits or {})}
    values["created_at"] = min(survivor.created_at, merged.created_at)
    return values
