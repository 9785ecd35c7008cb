"""The only writer of ProfileActivity rows: one small function per timeline entry type.

Rows store a type and JSON params, never rendered text, so that each staff member reads
the summary in their own language (`summarise`).
"""
from collections.abc import Iterable

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cdp.actors import Actor

from .models import ProfileActivity, Profile

Type = ProfileActivity.Type

SUMMARIES = {
    Type.CREATED: _("Profile created (source: %(source)s)"),
    Type.EDITED: _("Edited: %(fields)s"),
    Type.NOTE: _("Note: %(text)s"),
}


def _row(profile_id: int, type_: str, params: dict, actor: Actor, when=None) -> ProfileActivity:
    return ProfileActivity(
        profile_id=profile_id,
        type=type_,
        params=params,
        actor_kind=actor.kind,
        actor_user=actor.user,
        actor_label=actor.label[:150],
        occurred_at=when or timezone.now(),
    )


def _save(row: ProfileActivity) -> ProfileActivity:
    row.save(force_insert=True)
    return row


def profile_created(*, profile: Profile, source: str, actor: Actor) -> ProfileActivity:
    return _save(_row(profile.pk, Type.CREATED, {"source": source}, actor))


def profile_edited(*, profile: Profile, changes: dict[str, tuple], actor: Actor) -> ProfileActivity:
    """`changes` maps field name → (before, after), stored as strings for display."""
    params = {"changes": {field: [_display(before), _display(after)] for field, (before, after) in changes.items()}}
    return _save(_row(profile.pk, Type.EDITED, params, actor))


def note_added(*, profile: Profile, text: str, actor: Actor) -> ProfileActivity:
    return _save(_row(profile.pk, Type.NOTE, {"text": text}, actor))


def profiles_created_bulk(*, profile_ids: Iterable[int], source: str, actor: Actor, batch_size: int = 5000) -> None:
    """One "created" row per profile, inserted in batches (imports, demo data)."""
    now = timezone.now()
    ProfileActivity.objects.bulk_create(
        (_row(pk, Type.CREATED, {"source": source}, actor, now) for pk in profile_ids), batch_size=batch_size
    )


def summarise(activity: ProfileActivity) -> str:
    template = SUMMARIES.get(activity.type)
    if template is None:
        return str(activity.get_type_display())
    params = dict(activity.params)
    if activity.type == Type.EDITED:
        params["fields"] = ", ".join(
            f"{field}: {before or '∅'} → {after or '∅'}" for field, (before, after) in params.get("changes", {}).items()
        )
    try:
        return str(template) % params
    except (KeyError, TypeError, ValueError):
        return str(activity.get_type_display())


def _display(value) -> str:
    return "" if value is None else str(value)
