"""Batch event ingest for the partner API, set-based.

One request of up to 1,000 events costs a fixed number of statements whatever its size:
the identity kinds and event names (2, cached 30 s: profiles.registry), the
suppression check (1), the profiles named by public id (1), the identities the events
carry with their owners' public ids (1), new profiles and their identities and "created"
timeline rows (3, only when there are new people), and the events themselves as one
INSERT … ON CONFLICT DO NOTHING RETURNING, which tells accepted from duplicate (all
written by the bulk writer, profiles.services.bulk, which imports use too). Only an
event whose identities point at several customers takes the slow path: it merges them
as any API call does (the identity resolver, profiles.identity, decides who each event
is for the whole batch). It runs in the caller's transaction when there is one (the API
view's, which also holds the audit row).

Idempotency: an event is identified by (source, external_id), the source being the
partner's code (plus "/<source>" when the partner names one), so partners cannot collide
with each other's ids; resending a batch reports its events as duplicates and creates
nobody a second time (their identities now exist).
"""
from __future__ import annotations

import datetime
import decimal
import functools
import re
import uuid
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from cdp.actors import Actor
from profiles import activity
from profiles.identity import CREATE, MERGE, UPDATE, resolve
from profiles.models import Event, Identity, IdentityKind, Profile, ProfileStatus
from profiles.normalisers import NormalisationError, normalise_identity
from profiles.services.bulk import bulk_writer
from profiles.services.merge import profiles_merge_all
from profiles.services.suppression import suppressed_among

from ..registry import event_names, identity_kinds, strong_identity_kinds

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"
MAX_FUTURE = datetime.timedelta(days=1)  # clock skew tolerated
EARLIEST = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
SOURCE_MAX = 64
SUB_SOURCE_MAX = 40  # as documented; less when the partner's code is longer than 23 characters
CANONICAL_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")

Key = tuple[str, str]


@dataclass
class Item:
    index: int
    external_id: str = ""
    source: str = ""
    name: str = ""
    occurred_at: datetime.datetime | None = None
    properties: dict = field(default_factory=dict)
    amount: decimal.Decimal | None = None
    profile_uuid: uuid.UUID | None = None
    keys: list[Key] = field(default_factory=list)
    profile_id: int | None = None
    status: str = ""
    error: dict | None = None
    malformed: bool = False  # the event does not have the documented shape (see MalformedBatch)
    record: bool = True  # False: only who it is matters (an SDK's identify), no event is stored

    def reject(self, code: str, message, path: str | None = None) -> None:
        self.status = REJECTED
        self.error = {"code": code, "message": str(message), "fields": {path: [str(message)]} if path else {}}

    def refuse(self, code: str, message, path: str | None = None) -> None:
        """Not an event of the documented shape: the whole batch is refused (MalformedBatch)."""
        self.reject(code, message, path)
        self.malformed = True

    def result(self, uuids: dict[int, uuid.UUID]) -> dict:
        row = {"index": self.index, "external_id": self.external_id or None, "status": self.status}
        if self.status == REJECTED:
            row["error"] = self.error
        elif self.profile_id in uuids:
            row["profile"] = str(uuids[self.profile_id])
        return row


class MalformedBatch(Exception):
    """Some events do not have the documented shape (types, required fields, lengths,
    formats): a client bug, answered with a 400 for the whole batch before anything is
    stored. Events of the right shape that the platform cannot take (unknown event name,
    invalid phone, erased person …) are rejected one by one instead."""

    def __init__(self, items: list[Item]):
        super().__init__("malformed events")
        self.fields: dict[str, list[str]] = {}
        for item in items:
            for path, messages in (item.error["fields"] or {"": [item.error["message"]]}).items():
                name = f"events.{item.index}.{path}" if path else f"events.{item.index}"
                self.fields.setdefault(name, []).extend(messages)
        self.code = items[0].error["code"] if len({item.error["code"] for item in items}) == 1 else "invalid"


@dataclass
class IngestResult:
    results: list[dict]
    accepted: int
    duplicates: int
    rejected: int
    profiles_created: int
    profile_ids: set[int]


def events_ingest(raw_events: list, *, partner_code: str, actor: Actor, now: datetime.datetime | None = None) -> IngestResult:
    """The partner API's batch: parse every event as documented, then `items_ingest`."""
    now = now or timezone.now()
    kinds, names = identity_kinds(), event_names()
    items = [_parse(index, raw, partner_code, kinds, names, now) for index, raw in enumerate(raw_events)]
    malformed = [item for item in items if item.malformed]
    if malformed:
        raise MalformedBatch(malformed)
    return items_ingest(items, identity_source=partner_code, actor=actor, now=now)


def items_ingest(items: list[Item], *, identity_source: str, actor: Actor, now: datetime.datetime,
                 created_source: str = "api", suppression_checked: bool = False) -> IngestResult:
    """Store parsed items (those without a status yet): resolve who each is, creating new
    people, and insert the events of items that `record` one. `identity_source` is stored
    on new identities; `created_source` on the "created" timeline rows of new people.
    `suppression_checked`: the caller refused erased people's identities already, before
    it acted on them (the SDK collection stitches visitors first)."""
    _mark_batch_duplicates(items)
    if not suppression_checked:
        _reject_suppressed([item for item in items if not item.status])
    live = [item for item in items if not item.status]
    created = 0
    uuids: dict[int, uuid.UUID] = {}  # public ids of the profiles met on the way, for the results
    with transaction.atomic(savepoint=False):  # part of the caller's transaction, if any
        _resolve_profile_uuids(live, uuids)
        live = [item for item in live if not item.status]
        created = _resolve_identities(live, actor, uuids, identity_source, created_source)
        _follow_concurrent_merges([item for item in live if not item.status and item.record])
        inserted = _insert_events([item for item in live if not item.status and item.record], now)
    for item in live:
        if not item.status:
            item.status = ACCEPTED if not item.record or (item.source, item.external_id) in inserted else DUPLICATE
    unknown = {item.profile_id for item in items if item.status in (ACCEPTED, DUPLICATE)} - set(uuids) - {None}
    if unknown:  # survivors of merges
        uuids.update(Profile.objects.filter(pk__in=unknown).values_list("pk", "uuid"))
    counts = {status: sum(1 for item in items if item.status == status) for status in (ACCEPTED, DUPLICATE, REJECTED)}
    return IngestResult(
        results=[item.result(uuids) for item in items], accepted=counts[ACCEPTED], duplicates=counts[DUPLICATE],
        rejected=counts[REJECTED], profiles_created=created,
        profile_ids={item.profile_id for item in items if item.status == ACCEPTED},
    )


# --- parsing one event ------------------------------------------------------------------

def _text(raw: dict, name: str, item: Item, *, required: bool, max_length: int) -> str:
    """A string field, as the schema documents it."""
    value = raw.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        if value is None:
            item.refuse("required", _("This field is required."), name)
        else:
            item.refuse("invalid", _("Must be a string."), name)
        return ""
    if not value:
        item.refuse("required" if required else "blank", _("This field may not be blank."), name)
    elif len(value) > max_length:  # as sent: the schema's maxLength counts the spaces too
        item.refuse("too_long", _("At most %(n)s characters.") % {"n": max_length}, name)
    return value.strip() or value  # spaces around are dropped; a value of spaces only is kept as it is


def _parse(index: int, raw, partner_code: str, kinds: dict, names: set, now) -> Item:
    item = Item(index)
    if not isinstance(raw, dict):
        item.refuse("invalid", _("Each event must be a JSON object."))
        return item
    unknown = sorted(set(raw) - {"external_id", "source", "name", "occurred_at", "properties", "amount", "profile",
                                  "identities"})
    if unknown:
        item.refuse("unknown_field", _("This field cannot be set."), unknown[0])
        return item
    item.external_id = _text(raw, "external_id", item, required=True, max_length=128)
    sub_source = _text(raw, "source", item, required=False,
                       max_length=min(SUB_SOURCE_MAX, SOURCE_MAX - len(partner_code) - 1))
    item.source = f"{partner_code}/{sub_source}" if sub_source else partner_code
    item.name = _text(raw, "name", item, required=True, max_length=64)
    _parse_time(raw.get("occurred_at"), item, now)
    _parse_amount(raw.get("amount"), item)
    properties = raw.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        item.refuse("invalid", _("Must be a JSON object."), "properties")
    item.properties = properties
    if item.malformed:
        return item
    _parse_who(raw, item, kinds)
    if item.malformed:
        return item
    # The shape is right; what follows depends on the platform's registries and data.
    if item.name not in names:
        item.reject("unknown_event", _("“%(name)s” is not a registered event name.") % {"name": item.name}, "name")
    elif item.occurred_at is not None and not EARLIEST <= item.occurred_at <= now + MAX_FUTURE:
        item.reject("out_of_range", _("The time must be after 2000-01-01 and not in the future."), "occurred_at")
    return item


def _parse_time(value, item: Item, now) -> None:
    if value is None:
        item.refuse("required", _("This field is required."), "occurred_at")
        return
    try:
        parsed = parse_datetime(value) if isinstance(value, str) and RFC3339.match(value) else None
    except ValueError:
        parsed = None
    if parsed is None:
        item.refuse("invalid_datetime", _("Use ISO 8601 with an offset, e.g. 2026-11-28T10:00:00+08:00."), "occurred_at")
    elif timezone.is_naive(parsed):
        item.refuse("invalid_datetime", _("Add a UTC offset, e.g. +08:00 or Z."), "occurred_at")
    else:
        try:
            item.occurred_at = parsed.astimezone(datetime.UTC)  # PostgreSQL refuses offsets beyond ±15:59
        except OverflowError:
            item.reject("out_of_range", _("The time must be after 2000-01-01 and not in the future."), "occurred_at")


AMOUNT_LIMIT = 10**12  # Event.amount: 14 digits, 2 after the point
AMOUNT_PATTERN = r"^-?[0-9]{1,12}(\.[0-9]{1,2})?$"


def _parse_amount(value, item: Item) -> None:
    """A decimal string like "199.00" (or a whole number); never a float, which is not exact."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (str, int)) or (
            isinstance(value, str) and not re.match(AMOUNT_PATTERN, value)):
        item.refuse("invalid", _("A decimal string like \"199.00\"."), "amount")
        return
    amount = decimal.Decimal(value)
    if abs(amount) >= AMOUNT_LIMIT:
        item.refuse("invalid", _("At most 12 digits before the point and 2 after."), "amount")
        return
    item.amount = amount


@functools.lru_cache(maxsize=50_000, typed=True)  # typed: 1 and 1.0 normalise differently
def _normalised(kind: str, value: str | int | float | None) -> str:
    """normalise_identity, remembered per process: a customer's events repeat their
    identities, within a batch and from batch to batch."""
    return normalise_identity(kind, value)


def _parse_who(raw: dict, item: Item, kinds: dict) -> None:
    profile = raw.get("profile")
    identities = raw.get("identities")
    if profile is not None:
        if isinstance(profile, str) and CANONICAL_UUID.match(profile):
            item.profile_uuid = uuid.UUID(profile)
        if item.profile_uuid is None:
            item.refuse("invalid", _("Not a valid public id."), "profile")
            return
    if identities is None:
        identities = []
    if not isinstance(identities, list):
        item.refuse("invalid", _("Must be a list of {kind, value}."), "identities")
        return
    for position, identity in enumerate(identities):  # the shape of every identity first
        path = f"identities.{position}"
        if not isinstance(identity, dict) or set(identity) != {"kind", "value"}:
            item.refuse("invalid", _("Must be an object with kind and value."), path)
            return
        kind, value = identity["kind"], identity["value"]
        if not isinstance(kind, str) or not 0 < len(kind) <= 40:
            item.refuse("invalid", _("A kind of at most 40 characters."), f"{path}.kind")
            return
        if not isinstance(value, str) or not 0 < len(value) <= 255:
            item.refuse("invalid", _("A string of at most 255 characters."), f"{path}.value")
            return
    for position, identity in enumerate(identities):
        path = f"identities.{position}"
        kind = identity["kind"]
        if kind not in kinds:
            item.reject("unknown_identity_kind", _("Unknown identity kind “%(kind)s”.") % {"kind": kind}, f"{path}.kind")
            return
        try:
            value = _normalised(kind, identity["value"])
        except NormalisationError as error:
            item.reject(error.code, error, f"{path}.value")
            return
        if value and (kind, value) not in item.keys:
            item.keys.append((kind, value))
    if item.profile_uuid is None and not item.keys:
        item.reject("no_identity", _("Give the customer's public id (profile) or at least one identity."), "identities")


def _reject_suppressed(items: list[Item]) -> None:
    """Identities of erased people must not bring them back: one look-up for the batch."""
    suppressed = suppressed_among({key for item in items for key in item.keys})
    for item in items:
        if any(key in suppressed for key in item.keys):
            item.reject("suppressed", _("This person asked to be erased; their identities cannot be stored again."),
                        "identities")


def _mark_batch_duplicates(items: list[Item]) -> None:
    """The second event with the same (source, external_id) in one batch is a duplicate."""
    seen: set[Key] = set()
    for item in items:
        if item.status or not item.record:
            continue
        key = (item.source, item.external_id)
        if key in seen:
            item.status = DUPLICATE
        seen.add(key)


# --- who each event belongs to ----------------------------------------------------------

def _resolve_profile_uuids(items: list[Item], uuids: dict[int, uuid.UUID]) -> None:
    wanted = {item.profile_uuid for item in items if item.profile_uuid}
    if not wanted:
        return
    found = {
        row[0]: row[1:] for row in Profile.objects.filter(uuid__in=wanted).values_list("uuid", "pk", "status", "merged_into_id")
    }
    for item in items:
        if item.profile_uuid is None:
            continue
        pk, status, merged_into = found.get(item.profile_uuid, (None, None, None))
        if pk is None or status == ProfileStatus.ERASED:
            item.reject("profile_not_found", _("No customer has this public id."), "profile")
        else:
            item.profile_id = merged_into or pk  # a merged profile's events go to its survivor
            if not merged_into:
                uuids[pk] = item.profile_uuid


def _resolve_identities(items: list[Item], actor: Actor, uuids: dict[int, uuid.UUID], identity_source: str,
                        created_source: str) -> int:
    """Give every item a profile_id, creating profiles for new people; returns how many
    were created. Who each is, the identity resolver decides (profiles.identity), the whole
    batch at once: events of one new person share a profile, and strong identities of
    several customers merge them. New identities go to the profile the event resolved to."""
    owners = _owners({key for item in items for key in item.keys}, uuids)
    claimed: dict[Key, int] = {}  # identities new to the database, for an existing profile
    for item in items:  # an event naming its customer by public id brings them its new identities
        if item.profile_id is not None:
            for key in item.keys:
                if key not in owners:
                    claimed.setdefault(key, item.profile_id)
    pending = [item for item in items if item.profile_id is None]
    decisions = resolve([item.keys for item in pending], {**owners, **claimed}, strong_identity_kinds(),
                        on_conflict=MERGE)

    survivors: dict[int, int] = {}
    for profile_ids in {decision.profile_ids for decision in decisions if decision.action == MERGE}:
        # rare: strong identities of several customers arrive together: merge them
        survivor, merges = profiles_merge_all(profile_ids, actor=actor)
        uuids[survivor.pk] = survivor.uuid
        survivors.update({merge.merged_id: merge.survivor_id for merge in merges})

    def follow(pid: int) -> int:
        while pid in survivors:
            pid = survivors[pid]
        return pid

    new_people: dict[int, _NewPerson] = {}
    for item, decision in zip(pending, decisions):
        if decision.action == CREATE:
            group = new_people.setdefault(decision.group, _NewPerson([], []))
            group.items.append(item)
            group.keys.extend(key for key in decision.new_keys if key not in group.keys)
            continue
        item.profile_id = decision.profile_id if decision.action == UPDATE else decision.profile_ids[0]
        for key in decision.new_keys:
            claimed.setdefault(key, item.profile_id)
    for item in items:
        item.profile_id = follow(item.profile_id) if item.profile_id is not None else None
    claimed = {key: follow(pid) for key, pid in claimed.items()}

    groups = list(new_people.values())
    created = _create_profiles(groups, uuids)
    # Their source: the partner's code, so it is shown the identities it sent.
    new_identities = [(pid, kind, value) for (kind, value), pid in claimed.items()]
    new_identities += [(pid, kind, value) for pid, keys in created.items() for kind, value in keys]
    taken = bulk_writer().identities_insert_new(new_identities, identity_source)
    if taken:  # a concurrent request got there first: follow its owners, drop our empty profiles
        actual = _owners(taken, uuids)
        for group in groups:
            owner = next((actual[key] for key in group.keys if key in actual), None)
            for item in group.items if owner is not None else ():
                item.profile_id = owner
        kept = set(Identity.objects.filter(profile_id__in=list(created)).values_list("profile_id", flat=True))
        orphans = set(created) - kept
        Profile.objects.filter(pk__in=orphans).delete()
        for pid in orphans:
            created.pop(pid)
    if created:
        activity.profiles_created(profiles=Profile.objects.filter(pk__in=list(created)), source=created_source, actor=actor)
    return len(created)


def _owners(keys, uuids: dict[int, uuid.UUID]) -> dict[Key, int]:
    """Who holds each of these identities (their public ids go to `uuids`)."""
    if not keys:
        return {}
    if connection.vendor == "postgresql":
        # One probe of the (kind, value) index per key: for hundreds of keys PostgreSQL
        # plans "kind IN (…) AND value IN (…)" as a scan of the whole table.
        kinds, values = zip(*keys)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT i.kind, i.value, i.profile_id, p.uuid FROM {Identity._meta.db_table} i "
                f"JOIN unnest(%s::varchar[], %s::varchar[]) AS k(kind, value) ON i.kind = k.kind AND i.value = k.value "
                f"JOIN {Profile._meta.db_table} p ON p.id = i.profile_id",
                [list(kinds), list(values)])
            rows = cursor.fetchall()
    else:
        rows = Identity.objects.filter(kind_id__in={k for k, _v in keys}, value__in={v for _k, v in keys}).values_list(
            "kind_id", "value", "profile_id", "profile__uuid")
    owners = {}
    for kind, value, pid, public_id in rows:
        if (kind, value) in keys:
            owners[(kind, value)] = pid
            uuids[pid] = public_id
    return owners


@dataclass
class _NewPerson:
    keys: list[Key]
    items: list[Item]


def _create_profiles(groups: list[_NewPerson], uuids: dict[int, uuid.UUID]) -> dict[int, list[Key]]:
    """One profile per new person, its phone and email filled from its identities, all in
    one bulk insert (this runs for hundreds of people per request)."""
    if not groups:
        return {}
    rows = [{
        "uuid": uuid.uuid4(),
        "phone": next((v for k, v in group.keys if k == IdentityKind.PHONE), ""),
        "email": next((v for k, v in group.keys if k == IdentityKind.EMAIL), ""),
    } for group in groups]
    created: dict[int, list[Key]] = {}
    for pk, row, group in zip(bulk_writer().profiles_insert(rows), rows, groups):
        uuids[pk] = row["uuid"]
        for item in group.items:
            item.profile_id = pk
        created[pk] = group.keys
    return created


def _follow_concurrent_merges(items: list[Item]) -> None:
    """Events of a profile merged since its identities were read go to the survivor.

    A merge moves the merged profile's events in its own transaction; an event inserted
    for that profile by a concurrent request (an SDK sends a page view while the same
    browser's identify merges the visitor) would stay behind on the merged profile. The
    profiles are locked FOR KEY SHARE first (the lock the events' foreign key takes anyway,
    so nothing new waits on it but a merge's FOR UPDATE): a merge that got there first has
    committed when the lock is granted, and its survivor is followed; one that comes later
    waits for this transaction, and its move then sees these events."""
    pending = {item.profile_id for item in items if item.profile_id is not None}
    survivors: dict[int, int] = {}
    while pending:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT id, merged_into_id FROM {Profile._meta.db_table} WHERE id = ANY(%s) "
                               f"ORDER BY id FOR KEY SHARE", [sorted(pending)])
                rows = cursor.fetchall()
        else:
            rows = list(Profile.objects.filter(pk__in=pending).values_list("pk", "merged_into_id"))
        moved = {pid: into for pid, into in rows if into is not None and pid not in survivors}
        survivors.update(moved)
        pending = set(moved.values()) - set(survivors)
    for item in items:
        while item.profile_id in survivors:
            item.profile_id = survivors[item.profile_id]


def _insert_events(items: list[Item], now) -> set[Key]:
    return bulk_writer().events_insert_new([{
        "profile_id": item.profile_id, "name": item.name, "occurred_at": item.occurred_at,
        "properties": item.properties, "amount": item.amount, "source": item.source, "external_id": item.external_id,
    } for item in items], received_at=now)
