"""The only writer of ProfileActivity rows: one small function per timeline entry type.

Rows store a type and JSON params, never rendered text, so that each staff member reads
the summary in their own language (`summarise`).
"""
import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import (
    CharField,
    DateTimeField,
    F,
    IntegerField,
    JSONField,
    QuerySet,
)
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from cdp.actors import Actor
from cdp.one_statement import Statement
from cdp.sql import constant, insert_from_select

from .event_labels import EventLabels
from .masking import mask_email, mask_phone
from .models import Profile, ProfileActivity, Tag, TagSource

Type = ProfileActivity.Type

SUMMARIES = {
    Type.CREATED: _("Profile created (source: %(source)s)"),
    Type.EDITED: _("Edited: %(fields)s"),
    Type.NOTE: _("Note: %(text)s"),
    Type.TAG_ADDED: _("Tag “%(tag_name)s” added (%(source_label)s)"),
    Type.TAG_REMOVED: _("Tag “%(tag_name)s” removed (%(source_label)s)"),
    Type.SEGMENT_ENTERED: _("Entered segment “%(segment_name)s”"),
    Type.SEGMENT_EXITED: _("Left segment “%(segment_name)s”"),
    Type.MERGED: _("Merged: %(merged_name)s → %(survivor_name)s (%(events)s events, %(identities)s identities moved)"),
    Type.UNMERGED: _("Unmerged: %(merged_name)s separated again from %(survivor_name)s"),
    Type.CONSENT_CHANGED: _("Consent for “%(purpose_name)s”: %(status_label)s (%(source_label)s)"),
    Type.DSAR: _("Data subject request (%(kind_label)s): %(status_label)s"),
    Type.IMPORTED: _("%(action_label)s by import #%(job)s (%(file)s)"),
}
IMPORT_ACTIONS = {
    "created": _("Created"),
    "updated": _("Updated"),
    "undone": _("Import undone: changes reverted"),
}
# The apps above profiles store codes; these say them in the reader's language.
CONSENT_STATUS_LABELS = {
    "granted": _("Granted"), "denied": _("Denied"), "withdrawn": _("Withdrawn"),
    "do_not_contact": _("do not contact"), "do_not_contact_lifted": _("do-not-contact lifted"),
}
CONSENT_SOURCE_LABELS = {
    "admin": _("Admin"), "api": _("API"), "import": _("Import"), "web_form": _("Web form"),
    "paper": _("Offline paper form"), "erasure": _("Erasure"),
}
DSAR_KIND_LABELS = {
    "access": _("Access / export"), "erasure": _("Erasure"), "rectification": _("Rectification"),
    "restriction": _("Restriction of processing"),
}
DSAR_STATUS_LABELS = {
    "received": _("Received"), "in_progress": _("In progress"), "completed": _("Completed"), "refused": _("Refused"),
    "extended": _("Extended"), "exported": _("Data exported"),
}

# Rule tags keep their reason in English (ProfileTag.reason and the timeline's params), so
# that a refresh can tell which rule version a customer's tag names whatever language the
# job ran in; readers see it translated by `tag_reason_display`.
RULE_MATCHED = gettext_noop("rule v%(version)s matched on %(date)s")
RULE_UNMATCHED = gettext_noop("rule v%(version)s no longer matched on %(date)s")
_RULE_REASON = re.compile(r"^rule v(?P<version>\d+) (?P<what>matched|no longer matched) on (?P<date>\d{4}-\d{2}-\d{2})$")


def rule_reason(*, version: int, date: str, matched: bool = True) -> str:
    """The stored (English) reason of a rule tag; `date` is YYYY-MM-DD."""
    return (RULE_MATCHED if matched else RULE_UNMATCHED) % {"version": version, "date": date}


def tag_reason_display(reason: str) -> str:
    """A tag's reason in the reader's language: rule reasons are translated, reasons
    typed by staff are shown as they were typed."""
    found = _RULE_REASON.match(reason or "")
    if not found:
        return _weighted_events_display(reason)
    template = RULE_MATCHED if found["what"] == "matched" else RULE_UNMATCHED
    return gettext(template) % {"version": found["version"], "date": found["date"]}


_WEIGHTED_EVENT = re.compile(r"\b([a-z][a-z0-9_]*)×")


def _weighted_events_display(reason: str) -> str:
    """An interest reason names events with their weights ("product_view×1"): shown by
    the events' labels ("商品浏览×1")."""
    if not reason or "×" not in reason:
        return reason
    labels = EventLabels.load()
    return _WEIGHTED_EVENT.sub(lambda found: f"{labels.event(found[1])}×", reason)


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


def _save(row: ProfileActivity, into: Statement | None = None) -> ProfileActivity:
    """Insert the row now, or as part of the caller's statement (cdp.one_statement) `into`."""
    if into is None:
        row.save(force_insert=True)
    else:
        into.insert([row])
    return row


def profile_created(*, profile: Profile, source: str, actor: Actor, into: Statement | None = None,
                    profile_id=None) -> ProfileActivity:
    """`profile_id`: the key when the profile is inserted in the same statement `into`
    (Statement.insert_returning)."""
    return _save(_row(profile_id if profile_id is not None else profile.pk, Type.CREATED, {"source": source}, actor),
                 into)


def profile_edited(*, profile: Profile, changes: dict[str, tuple], actor: Actor,
                   into: Statement | None = None) -> ProfileActivity:
    """`changes` maps field name → (before, after), stored as strings for display."""
    params = {"changes": {field: [_shown_in_history(field, before), _shown_in_history(field, after)]
                          for field, (before, after) in changes.items()}}
    return _save(_row(profile.pk, Type.EDITED, params, actor), into)


# The history tells that a phone or email changed, never the numbers: everyone who may
# open the customer reads it, including staff who may only see them masked.
_MASKED_IN_HISTORY = {"phone": mask_phone, "email": mask_email}


def _shown_in_history(field: str, value) -> str:
    text = _display(value)
    return _MASKED_IN_HISTORY[field](text) if text and field in _MASKED_IN_HISTORY else text


def note_added(*, profile: Profile, text: str, actor: Actor) -> ProfileActivity:
    return _save(_row(profile.pk, Type.NOTE, {"text": text}, actor))


def profiles_created_bulk(*, profile_ids: Iterable[int], source: str, actor: Actor, batch_size: int = 5000) -> None:
    """One "created" row per profile, inserted in batches (imports, demo data)."""
    now = timezone.now()
    ProfileActivity.objects.bulk_create(
        (_row(pk, Type.CREATED, {"source": source}, actor, now) for pk in profile_ids), batch_size=batch_size
    )


def profiles_created(*, profiles: QuerySet[Profile], source: str, actor: Actor) -> int:
    """One "created" row for each profile in `profiles`, in one INSERT … SELECT (API ingest)."""
    return _record_for(profiles, Type.CREATED, {"source": source}, actor)


def tag_added(*, profiles: QuerySet[Profile], tag: Tag, source: str, reason: str, actor: Actor) -> int:
    """One "tag added" row for each profile in `profiles`, in one INSERT … SELECT."""
    return _record_for(profiles, Type.TAG_ADDED, _tag_params(tag, source, reason), actor)


def tag_removed(*, profiles: QuerySet[Profile], tag: Tag, source: str, reason: str, actor: Actor) -> int:
    return _record_for(profiles, Type.TAG_REMOVED, _tag_params(tag, source, reason), actor)


def segment_entered(*, profiles: QuerySet, segment_slug: str, segment_name: str, version: int,
                    actor: Actor) -> int:
    """One "entered segment" row per profile, in one INSERT … SELECT (`profiles`: see _record_for)."""
    params = {"segment": segment_slug, "segment_name": segment_name, "version": version}
    return _record_for(profiles, Type.SEGMENT_ENTERED, params, actor)


def segment_exited(*, profiles: QuerySet, segment_slug: str, segment_name: str, version: int,
                   actor: Actor) -> int:
    params = {"segment": segment_slug, "segment_name": segment_name, "version": version}
    return _record_for(profiles, Type.SEGMENT_EXITED, params, actor)


def consent_changed(*, profile_id: int, purpose_code: str, purpose_names: tuple[str, str], status: str,
                    source: str, actor: Actor, when=None) -> ProfileActivity:
    """A ledger entry or a do-not-contact change; `status` is a consent status or
    "do_not_contact" / "do_not_contact_lifted" (then the names are the channel's).
    `purpose_names` is (Chinese, English): each reader sees their language."""
    return consents_changed([ConsentChange(profile_id, purpose_code, purpose_names, status, source, when)],
                            actor=actor)[0]


@dataclass(frozen=True)
class ConsentChange:
    profile_id: int
    purpose_code: str
    purpose_names: tuple[str, str]
    status: str
    source: str
    when: datetime.datetime | None = None


def consents_changed(changes: list[ConsentChange], *, actor: Actor) -> list[ProfileActivity]:
    """consent_changed for many entries, in one INSERT."""
    return ProfileActivity.objects.bulk_create([_row(change.profile_id, Type.CONSENT_CHANGED, {
        "purpose": change.purpose_code, "purpose_name": change.purpose_names[0],
        "purpose_name_en": change.purpose_names[1], "status": change.status, "source": change.source,
    }, actor, change.when) for change in changes])


def data_request_logged(*, profile_id: int, request_id: int, kind: str, status: str, actor: Actor) -> ProfileActivity:
    return _save(_row(profile_id, Type.DSAR, {"request": request_id, "kind": kind, "status": status}, actor))


def profiles_imported(*, profiles: QuerySet[Profile], action: str, params: dict, actor: Actor) -> int:
    """One "imported" row per profile an import created, updated or reverted (`action`:
    created / updated / undone), in one INSERT … SELECT."""
    return _record_for(profiles, Type.IMPORTED, {**params, "action": action}, actor)


def _tag_params(tag: Tag, source: str, reason: str) -> dict:
    return {"tag": tag.slug, "tag_name": tag.name, "source": source, "reason": reason}


def _record_for(profiles: QuerySet, type_: str, params: dict, actor: Actor) -> int:
    """`profiles`: customers, or any rows whose primary keys are customers' ids (a segment
    recompute's temporary table)."""
    rows = profiles.order_by().annotate(
        a_profile=F("pk"),
        a_type=constant(type_, CharField()),
        a_params=constant(params, JSONField()),
        a_actor_kind=constant(actor.kind, CharField()),
        a_actor_user=constant(actor.user.pk if actor.user else None, IntegerField()),
        a_actor_label=constant(actor.label[:150], CharField()),
        a_when=constant(timezone.now(), DateTimeField()),
    ).values("a_profile", "a_type", "a_params", "a_actor_kind", "a_actor_user", "a_actor_label", "a_when")
    columns = {
        "profile_id": "a_profile", "type": "a_type", "params": "a_params", "actor_kind": "a_actor_kind",
        "actor_user_id": "a_actor_user", "actor_label": "a_actor_label", "occurred_at": "a_when",
    }
    return insert_from_select(ProfileActivity, columns, rows)


def profile_merged(*, survivor: Profile, merged: Profile, counts: dict, actor: Actor) -> None:
    """The same entry on both timelines (the tombstone keeps its own copy)."""
    params = {**_pair(survivor, merged), **counts}
    ProfileActivity.objects.bulk_create([_row(p.pk, Type.MERGED, params, actor) for p in (survivor, merged)])


def profile_unmerged(*, survivor: Profile, merged: Profile, merge_id: int, actor: Actor) -> None:
    params = {**_pair(survivor, merged), "merge": merge_id}
    ProfileActivity.objects.bulk_create([_row(p.pk, Type.UNMERGED, params, actor) for p in (survivor, merged)])


def _pair(survivor: Profile, merged: Profile) -> dict:
    return {
        "survivor": str(survivor.uuid), "survivor_name": str(survivor),
        "merged": str(merged.uuid), "merged_name": str(merged),
    }


def _labelled_params(activity: ProfileActivity) -> dict:
    """The row's params plus their labels in the reader's language (*_label keys)."""
    params = dict(activity.params or {})
    if "source" in params and params["source"] in TagSource.values:
        params["source_label"] = TagSource(params["source"]).label
    if activity.type == Type.CONSENT_CHANGED:
        params["status_label"] = CONSENT_STATUS_LABELS.get(params.get("status"), params.get("status"))
        params["source_label"] = CONSENT_SOURCE_LABELS.get(params.get("source"), params.get("source"))
        if not (get_language() or "zh").startswith("zh") and params.get("purpose_name_en"):
            params["purpose_name"] = params["purpose_name_en"]
    if activity.type == Type.DSAR:
        params["kind_label"] = DSAR_KIND_LABELS.get(params.get("kind"), params.get("kind"))
        params["status_label"] = DSAR_STATUS_LABELS.get(params.get("status"), params.get("status"))
    if activity.type == Type.IMPORTED:
        params["action_label"] = IMPORT_ACTIONS.get(params.get("action"), params.get("action", ""))
    if activity.type == Type.EDITED:
        params["fields"] = ", ".join(
            f"{field}: {before or '∅'} → {after or '∅'}" for field, (before, after) in params.get("changes", {}).items()
        )
    return params


def summarise(activity: ProfileActivity) -> str:
    template = SUMMARIES.get(activity.type)
    if template is None:
        return str(activity.get_type_display())
    params = _labelled_params(activity)
    try:
        summary = str(template) % params
    except (KeyError, TypeError, ValueError):
        return str(activity.get_type_display())
    reason = tag_reason_display(params.get("reason")) if activity.type in (Type.TAG_ADDED, Type.TAG_REMOVED) else ""
    return f"{summary} — {reason}" if reason else summary


# What a timeline entry's "details" show, by param: (label, the key holding the shown
# value). Codes and the other language's copies stay out; unknown params are shown as stored.
DETAIL_PARAMS = {
    "tag_name": (_("tag"), "tag_name"), "tag": (_("slug"), "tag"),
    "segment_name": (_("segment"), "segment_name"), "segment": (_("slug"), "segment"),
    "purpose_name": (_("purpose"), "purpose_name"), "purpose": None, "purpose_name_en": None,
    "status": (_("status"), "status_label"), "source": (_("source"), "source_label"),
    "kind": (_("kind"), "kind_label"), "action": (_("action"), "action_label"),
    "reason": (_("reason"), "reason_label"), "version": (_("version"), "version"),
    "changes": (_("changes"), "fields"), "text": (_("text"), "text"), "file": (_("file"), "file"),
    "events": (_("events"), "events"), "identities": (_("identities"), "identities"),
    "request": (_("request"), "request"),
}


def details_display(activity: ProfileActivity) -> dict[str, str]:
    """{label: value} for a timeline entry's details, in the reader's language."""
    params = _labelled_params(activity)
    params["reason_label"] = tag_reason_display(params.get("reason") or "")
    shown = {}
    for key, value in (activity.params or {}).items():
        if key not in DETAIL_PARAMS:
            shown[key] = _display(value)
        elif DETAIL_PARAMS[key] is not None:
            label, source = DETAIL_PARAMS[key]
            shown[str(label)] = _display(params.get(source, value))
    return shown


def _display(value) -> str:
    return "" if value is None else str(value)
