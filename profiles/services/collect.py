"""Behaviour from tracking SDKs: what the collection endpoints (profiles.collect, speaking
Segment's and Sensors Data's protocols) hand over as `Message`s becomes ordinary events,
through the same bulk writer as the partner API (profiles.services.ingest).

Per batch, in one transaction:
1. each message's identities: the SDK's user id (as the source's `user_id_kind`), its
   anonymous id (kind anonymous_id, weak: a shared browser never links two people), and
   a phone or e-mail among identify traits;
2. erased people's identifiers are refused, and with a consent purpose on the source,
   the messages of customers who refused or withdrew it are dropped before anything of
   theirs is stored (counted only);
3. anonymous → known: a message that carries an anonymous id and a strong identity
   attaches the visitor's provisional profile (one that holds no strong identity) to the
   known customer — merging it, its events and timeline into them, or, for someone new,
   giving it the strong identity. A profile that is already someone known is never
   merged on an anonymous id;
4. event names the platform does not know are registered as definitions waiting for
   review, so that nothing sent is lost;
5. events are stored idempotently by (source, messageId): an SDK's retry is a duplicate;
6. identify traits update the customer's fields; the debugger's log and the hourly
   counts are written.
"""
from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from pypinyin import lazy_pinyin

from cdp.actors import Actor

from ..identity import CREATE, MERGE, UPDATE, resolve, strong_keys
from ..masking import mask_contact
from ..models import (
    CollectHourlyCount,
    CollectLog,
    CollectOutcome,
    CollectSource,
    EventDefinition,
    Identity,
    IdentityKind,
    Profile,
    ProfileStatus,
)
from ..normalisers import NormalisationError, normalise_identity
from ..registry import event_names, identity_kinds, registry_forget, strong_identity_kinds
from .bulk import bulk_writer
from .ingest import ACCEPTED, EARLIEST, MAX_FUTURE, REJECTED, Item, items_ingest
from .ingest import _owners as owners_of
from .merge import profiles_merge
from .profiles import profile_fields_normalise, profile_update
from .suppression import suppressed_among

Key = tuple[str, str]
EVENT_TYPES = ("track", "page", "screen", "group")  # message types that store an event
LOG_ACCEPTED_PER_BATCH = 50  # the debugger shows the newest 50; rejected ones are all kept (then trimmed)
LOG_KEEP = {CollectOutcome.ACCEPTED: 50, CollectOutcome.DUPLICATE: 50, CollectOutcome.DROPPED: 50,
            CollectOutcome.REJECTED: 500}
# Identify traits that are customer fields (Segment's reserved traits and their Chinese SDKs' usual names).
TRAIT_FIELDS = {
    "name": "name", "nickname": "name", "gender": "gender", "sex": "gender", "birthday": "birth_date",
    "city": "city", "province": "province", "country": "country", "occupation": "occupation", "title": "occupation",
    "phone": "phone", "mobile": "phone", "email": "email",
}
SENSITIVE_KEYS = re.compile(r"phone|mobile|email|name|address|ip|user_?id|anonymous_?id|distinct_?id|login_?id|"
                            r"openid|unionid|id_?card|birthday", re.I)


@dataclass
class Message:
    """One message as an SDK sent it, in the shape both protocols share."""

    protocol: str  # segment, sensors
    type: str  # track, page, screen, group, identify, alias
    message_id: str
    occurred_at: datetime.datetime | None
    event: str = ""  # the platform's event name, or the SDK's when the face knows no mapping
    properties: dict = field(default_factory=dict)
    amount: decimal.Decimal | None = None
    user_id: str = ""
    anonymous_id: str = ""
    traits: dict = field(default_factory=dict)
    library: str = ""  # "analytics-python 2.3.3"
    raw: dict = field(default_factory=dict)  # as sent, for the debugger (masked before it is kept)
    error: tuple[str, str] | None = None  # (code, message) when the face found it malformed
    # Filled here:
    outcome: str = ""
    reason: str = ""
    profile_id: int | None = None

    def reject(self, code: str, message: str) -> None:
        self.outcome, self.reason = CollectOutcome.REJECTED, f"{code}: {message}"


@dataclass
class CollectResult:
    accepted: int
    duplicates: int
    dropped: int
    rejected: int
    messages: list[Message]


# Lets consent (above profiles) say who refused a purpose: `lookup(purpose_code, profile_ids)`.
_objectors: Callable[[str, set[int]], set[int]] | None = None


def consent_objectors_register(lookup: Callable[[str, set[int]], set[int]]) -> None:
    global _objectors
    _objectors = lookup


def collect_ingest(*, source: CollectSource, messages: list[Message], now: datetime.datetime | None = None) -> CollectResult:
    """Store a batch of SDK messages; each message's `outcome` says what became of it."""
    now = now or timezone.now()
    actor = Actor.system(source.event_source)
    for message in messages:
        if message.error:
            message.reject(*message.error)
    for attempt in (1, 2):  # idempotent: a batch that lost a race with a concurrent one is simply run again
        try:
            with transaction.atomic():  # the debugger's rows too: one commit per batch
                _ingest(source, [m for m in messages if not m.error], actor, now)
                collect_record(source=source, messages=messages, now=now)
            break
        except (IntegrityError, OperationalError) as error:
            race = isinstance(error, IntegrityError) or getattr(error.__cause__, "sqlstate", None) in ("40P01", "40001")
            if attempt == 2 or not race:
                raise
            for message in messages:
                if not message.error:
                    message.outcome, message.reason, message.profile_id = "", "", None
    counts = {outcome: sum(1 for m in messages if m.outcome == outcome) for outcome in CollectOutcome.values}
    return CollectResult(accepted=counts[CollectOutcome.ACCEPTED], duplicates=counts[CollectOutcome.DUPLICATE],
                         dropped=counts[CollectOutcome.DROPPED], rejected=counts[CollectOutcome.REJECTED],
                         messages=messages)


def _ingest(source: CollectSource, messages: list[Message], actor: Actor, now: datetime.datetime) -> None:
    kinds = identity_kinds()
    items = [_item(index, message, source, kinds, now) for index, message in enumerate(messages)]
    live = [(m, i) for m, i in zip(messages, items) if not m.outcome]
    _refuse_suppressed(live)
    live = [(m, i) for m, i in live if not m.outcome]
    if source.consent_purpose:
        _drop_objectors(source.consent_purpose, live)
        live = [(m, i) for m, i in live if not m.outcome]
    _register_names([i.name for m, i in live if i.record])
    _stitch([i for _m, i in live], kinds, actor, source.event_source)
    items_ingest([i for _m, i in live], identity_source=source.event_source, actor=actor, now=now,
                 created_source=source.event_source, suppression_checked=True)
    for message, item in live:
        message.profile_id = item.profile_id
        if item.status == REJECTED:
            message.reject(item.error["code"], item.error["message"])
        else:
            message.outcome = CollectOutcome.ACCEPTED if item.status == ACCEPTED else CollectOutcome.DUPLICATE
    for message, item in live:
        if message.type == "identify" and message.outcome == CollectOutcome.ACCEPTED and message.traits:
            _apply_traits(message, actor)


def _item(index: int, message: Message, source: CollectSource, kinds: dict, now) -> Item:
    properties = message.properties
    if message.library and "sdk" not in properties:  # which SDK and version sent it, as segments can ask
        properties = {**properties, "sdk": message.library[:100]}
    item = Item(index, external_id=message.message_id[:128], source=source.event_source, properties=properties,
                amount=message.amount, occurred_at=message.occurred_at, record=message.type in EVENT_TYPES)
    if item.record:
        item.name = event_name_of(message.event)
        if not item.name:
            message.reject("invalid_event", _("The event has no name."))
            return item
        if not EARLIEST <= message.occurred_at <= now + MAX_FUTURE:
            message.reject("out_of_range", _("The time must be after 2000-01-01 and not in the future."))
            return item
    if not message.message_id:
        message.reject("invalid", _("The message has no id (messageId)."))
        return item
    pairs = [(source.user_id_kind_id, message.user_id), (IdentityKind.ANONYMOUS_ID, message.anonymous_id)]
    pairs += [(kind, message.traits.get(trait)) for trait, kind in (("phone", "phone"), ("mobile", "phone"),
                                                                    ("email", "email"))]
    for kind, value in pairs:
        if value in (None, "") or kind not in kinds:
            continue
        try:
            normalised = normalise_identity(kind, value)
        except NormalisationError as error:
            if kind in (source.user_id_kind_id, IdentityKind.ANONYMOUS_ID):
                message.reject(error.code, str(error))
                return item
            continue  # a bad phone among traits does not cost the event; the field update reports it
        if normalised and (kind, normalised) not in item.keys:
            item.keys.append((kind, normalised))
    if not item.keys:
        message.reject("no_identity", _("The message has neither a user id nor an anonymous id."))
    return item


def event_name_of(name: str) -> str:
    """An SDK's event name as a registry name: lower case, words joined by "_", Chinese
    in pinyin ("Signed Up" → signed_up, "领取优惠券" → ling_qu_you_hui_quan)."""
    if not name:
        return ""
    name = "_".join(lazy_pinyin(name.strip().lstrip("$"))) if re.search(r"[^\x00-\x7f]", name) else name.strip().lstrip("$")
    slug = re.sub(r"[^a-z0-9]+", "_", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()).strip("_")
    return slug[:64]


def _refuse_suppressed(live: list[tuple[Message, Item]]) -> None:
    suppressed = suppressed_among({key for _m, item in live for key in item.keys})
    for message, item in live:
        if any(key in suppressed for key in item.keys):
            message.reject("suppressed", _("This person asked to be erased; their identities cannot be stored again."))


def _owners(keys: set[Key]) -> dict[Key, int]:
    """Who holds each of these identities (the bulk writer's look-up, one probe per key)."""
    return owners_of(keys, {})


def _drop_objectors(purpose: str, live: list[tuple[Message, Item]]) -> None:
    """Messages of customers who refused or withdrew the source's purpose are counted and dropped."""
    if _objectors is None:
        raise ValidationError("No consent look-up is registered (consent.apps registers it).")
    owners = _owners({key for _m, item in live for key in item.keys})
    objecting = _objectors(purpose, set(owners.values()))
    for message, item in live:
        who = {owners[key] for key in item.keys if key in owners}
        if who & objecting:
            message.outcome = CollectOutcome.DROPPED
            message.reason = _("The customer refused or withdrew consent for “%(purpose)s”.") % {"purpose": purpose}
            message.profile_id = min(who & objecting)


def _register_names(names: list[str]) -> None:
    """Names never seen before become event definitions waiting for review."""
    new = sorted(set(names) - event_names())
    if not new:
        return
    EventDefinition.objects.bulk_create(
        [EventDefinition(name=name, label=name, review_pending=True) for name in new], ignore_conflicts=True)
    registry_forget()


def _stitch(items: list[Item], kinds: dict, actor: Actor, identity_source: str) -> None:
    """Anonymous → known, before the events are resolved (see the module's docstring)."""
    strong_kinds = strong_identity_kinds()
    pairs = {}
    for item in items:
        anonymous = [k for k in item.keys if k[0] == IdentityKind.ANONYMOUS_ID]
        strong = strong_keys(item.keys, strong_kinds)
        if anonymous and strong:
            pairs.setdefault(anonymous[0], set()).update(strong)
    if not pairs:
        return
    owners = _owners(set(pairs) | {k for keys in pairs.values() for k in keys})
    visitors = {owners[a] for a in pairs if a in owners}
    known = set(Identity.objects.filter(profile_id__in=visitors, kind_id__in=strong_kinds)
                .values_list("profile_id", flat=True).distinct())
    for anonymous, strong in pairs.items():
        visitor = owners.get(anonymous)
        if visitor is None or visitor in known:
            continue  # nobody yet (the writer attaches it), or someone known: a shared browser links nobody
        [decision] = resolve([sorted(strong)], owners, strong_kinds, on_conflict=MERGE)
        if decision.action == CREATE:  # someone new: the visitor's profile becomes theirs
            _claim(visitor, list(decision.new_keys), identity_source)
            owners.update({k: visitor for k in strong})
            known.add(visitor)
            continue
        # Several customers: the visitor goes to the first; the events' resolution merges the rest.
        survivor = Profile.objects.get(pk=decision.profile_id if decision.action == UPDATE else decision.profile_ids[0])
        try:
            profiles_merge(survivor=survivor, merged=Profile.objects.get(pk=visitor), actor=actor,
                           reason=_("the anonymous visitor signed in"))
        except ValidationError:  # merged or erased meanwhile
            continue
        owners = {k: (survivor.pk if pid == visitor else pid) for k, pid in owners.items()}


def _claim(profile_id: int, keys: list[Key], identity_source: str) -> None:
    bulk_writer().identities_insert_new([(profile_id, kind, value) for kind, value in keys], identity_source)


def _apply_traits(message: Message, actor: Actor) -> None:
    """Identify traits that are customer fields; a value that does not fit is noted, never fatal."""
    fields = {}
    for trait, value in message.traits.items():
        target = TRAIT_FIELDS.get(trait)
        if target and value not in (None, "") and target not in fields:
            fields[target] = value if isinstance(value, str) else str(value)
    good = {}
    for name, value in fields.items():
        try:
            good.update(profile_fields_normalise({name: value}))
        except ValidationError:
            message.reason = _("Trait “%(name)s” was not understood and was left out.") % {"name": name}
    profile = Profile.objects.filter(pk=message.profile_id, status=ProfileStatus.ACTIVE).first()
    if not good or profile is None:
        return
    # Fill only what is empty: a CRM's or a staff member's value wins over a web form's.
    good = {name: value for name, value in good.items() if getattr(profile, name) in ("", None, "unknown")}
    if good:
        try:
            with transaction.atomic():
                profile_update(profile=profile, actor=actor, source="sdk", **good)
        except ValidationError as error:
            message.reason = "; ".join(error.messages)[:300]


# --- what the admin shows -----------------------------------------------------------------

def collect_record(*, source: CollectSource, messages: list[Message], now: datetime.datetime) -> None:
    """The debugger's log (the newest accepted messages of the batch, every other one) and
    the hourly counts."""
    if not messages:
        return
    keep = [m for m in messages if m.outcome != CollectOutcome.ACCEPTED]
    keep += [m for m in messages if m.outcome == CollectOutcome.ACCEPTED][-LOG_ACCEPTED_PER_BATCH:]
    CollectLog.objects.bulk_create([
        CollectLog(source=source, received_at=now, protocol=m.protocol, type=m.type[:16], name=m.event[:200],
                   outcome=m.outcome, reason=m.reason[:300], library=m.library[:100], profile_id=m.profile_id,
                   payload=masked(m.raw))
        for m in keep])
    hour = now.replace(minute=0, second=0, microsecond=0)
    counts = {outcome: sum(1 for m in messages if m.outcome == outcome) for outcome in CollectOutcome.values}
    updated = CollectHourlyCount.objects.filter(source=source, hour=hour).update(
        **{outcome: F(outcome) + n for outcome, n in counts.items() if n})
    if not updated:
        try:
            with transaction.atomic():
                CollectHourlyCount.objects.create(source=source, hour=hour, **counts)
        except IntegrityError:  # another request made the hour's row first
            CollectHourlyCount.objects.filter(source=source, hour=hour).update(
                **{outcome: F(outcome) + n for outcome, n in counts.items() if n})


def collect_log_trim() -> int:
    """Keep the newest rows per source and outcome (LOG_KEEP); run by the periodic task."""
    removed = 0
    for source_id in CollectSource.objects.values_list("pk", flat=True):
        for outcome, keep in LOG_KEEP.items():
            old = CollectLog.objects.filter(source_id=source_id, outcome=outcome).order_by("-received_at", "-pk")[keep:]
            ids = list(old.values_list("pk", flat=True)[:10_000])
            if ids:
                removed += CollectLog.objects.filter(pk__in=ids).delete()[0]
    return removed


def masked(value, key: str = ""):
    """The message as the debugger may show it: identifiers and contact data masked."""
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in list(value.items())[:100]}
    if isinstance(value, list):
        return [masked(v, key) for v in value[:50]]
    if isinstance(value, str):
        if "@" in value or re.fullmatch(r"\+?\d[\d\- ]{6,}", value):
            return mask_contact(value)
        if key and SENSITIVE_KEYS.search(key):
            return f"{value[:2]}***{value[-2:]}" if len(value) > 6 else value[:1] + "***"
        return value[:200]
    return value
