"""Writes for consent: the ledger and its current state, notices, do-not-contact.
Data subject requests (access, erasure) live in consent.requests."""
import datetime
import functools
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.audit import audit_record, audit_record_many
from cdp.sql import statistics_refresh, transaction_lock
from profiles import activity
from profiles.models import Profile, born_by

from . import ledger_batch
from .models import (
    Channel,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    ConsentStatus,
    DoNotContact,
    DoNotContactReason,
    Notice,
    Purpose,
)
from .selectors import ADULT_AGE, consent_state_drift, is_minor, ledger_profile_ids

EVIDENCE_FIELDS = ("channel", "ip", "user_agent", "reference", "text")
PURPOSE_LOCK = 7301  # advisory lock namespace: consent changes vs. exports, per purpose


def purpose_lock(purpose: Purpose, *, shared: bool) -> None:
    """Exports hold it shared for their transaction, ledger writes exclusively: an
    export sees every withdrawal committed before it started, and a withdrawal made
    during an export waits for it (and so is recorded after it)."""
    transaction_lock(PURPOSE_LOCK, purpose.pk, shared=shared)


@dataclass(frozen=True)
class ConsentEntry:
    """One ledger entry to record (see consent_record for the meaning of each field)."""

    profile: Profile
    purpose_code: str
    status: str
    source: str
    captured_at: datetime.datetime | None = None
    notice_version: int | None = None
    evidence: dict | None = None
    expires_at: datetime.datetime | None = None
    guardian_consent: bool = False


def consent_record(*, profile: Profile, purpose_code: str, status: str, source: str, actor: Actor,
                   captured_at: datetime.datetime | None = None, notice_version: int | None = None,
                   evidence: dict | None = None, expires_at: datetime.datetime | None = None,
                   guardian_consent: bool = False) -> ConsentRecord:
    """Append a ledger entry and bring the current state up to date, in one transaction.
    An entry captured before the current state's (a back-filled paper form) joins the
    history without overriding the newer state. `evidence` keys: channel, ip,
    user_agent, reference, text. Raises ValidationError with a code for bad input."""
    (result,) = consent_record_many([ConsentEntry(
        profile=profile, purpose_code=purpose_code, status=status, source=source, captured_at=captured_at,
        notice_version=notice_version, evidence=evidence, expires_at=expires_at, guardian_consent=guardian_consent,
    )], actor=actor)
    if isinstance(result, ValidationError):
        raise result
    return result


# From this many entries a batch is written set-based, through a staging table
# (consent.ledger_batch); fewer (a staff member's or a partner's entry) take the ORM path,
# which needs fewer statements.
SET_BASED_FROM = 100


def consent_record_many(entries: list[ConsentEntry], *, actor: Actor,
                        as_ids: bool = False) -> list[ConsentRecord | int | ValidationError]:
    """consent_record for many entries at once (an import's batch), in one transaction
    and a fixed number of statements: the entry recorded, or the ValidationError that
    kept it out, for each entry in order. Entries of one customer and purpose are
    recorded in the order given. `as_ids`: each recorded entry's ledger id instead of the
    record (an import's batch: no model instance per entry)."""
    now = timezone.now()
    purposes = {p.code: p for p in Purpose.objects.filter(code__in={e.purpose_code for e in entries}, is_active=True)}
    notices: dict[int, list[int]] = {}
    for purpose_id, version in Notice.objects.filter(purpose__in=purposes.values()).order_by("version").values_list(
            "purpose_id", "version"):
        notices.setdefault(purpose_id, []).append(version)
    results: list = [None] * len(entries)
    valid: list[tuple[int, ConsentEntry, Purpose, int | None]] = []
    for index, entry in enumerate(entries):
        try:
            purpose, notice_version = _checked(entry, purposes, notices, now)
        except ValidationError as error:
            results[index] = error
        else:
            valid.append((index, entry, purpose, notice_version))
    if not valid:
        return results
    with transaction.atomic():
        for purpose in sorted({purpose for _i, _e, purpose, _n in valid}, key=lambda p: p.pk):
            purpose_lock(purpose, shared=False)
        now = timezone.now()  # after any wait for an export: the entries are recorded after it
        active = ledger_batch.active_profiles_locked({entry.profile.pk for _i, entry, _p, _n in valid})
        kept = []
        for item in valid:
            if item[1].profile.pk in active:
                kept.append(item)
            else:
                results[item[0]] = ValidationError(_("Consent can only be recorded on an active customer."),
                                                   code="profile_not_active")
        if len(kept) >= SET_BASED_FROM:
            _record_set_based(kept, results, actor=actor, now=now, as_ids=as_ids)
        elif kept:
            _record_rows(kept, results, actor=actor, now=now, as_ids=as_ids)
        if len(kept) >= 1000:  # an import's batch, not a staff member's or partner's entry
            # Campaign sends and exports read states per customer: fresh statistics keep
            # those reads on the index (on stale ones PostgreSQL scans the states).
            statistics_refresh(ConsentRecord, rows_added=len(kept))
            statistics_refresh(ConsentState, rows_added=len(kept))
    return results


def _record_of(entry: ConsentEntry, purpose: Purpose, notice_version: int | None, actor: Actor,
               now: datetime.datetime) -> ConsentRecord:
    evidence = entry.evidence or {}
    return ConsentRecord(
        profile_id=entry.profile.pk, purpose=purpose, status=entry.status, notice_version=notice_version,
        captured_at=entry.captured_at or now, recorded_at=now, source=entry.source,
        evidence_channel=evidence.get("channel", ""), evidence_ip=evidence.get("ip") or None,
        evidence_user_agent=(evidence.get("user_agent") or "")[:300],
        evidence_reference=(evidence.get("reference") or "")[:200], evidence_text=evidence.get("text", ""),
        expires_at=entry.expires_at, guardian_consent=entry.guardian_consent,
        actor_kind=actor.kind, actor_user=actor.user, actor_label=actor.label[:150],
    )


def _record_rows(kept: list, results: list, *, actor: Actor, now: datetime.datetime, as_ids: bool) -> None:
    """The ORM path: the ledger rows, then the states read and upserted, the timeline and
    the audit rows, each one statement."""
    written = [(index, _record_of(entry, purpose, notice_version, actor, now), entry)
               for index, entry, purpose, notice_version in kept]
    records = ConsentRecord.objects.bulk_create([record for _index, record, _entry in written])
    for index, record, _entry in written:
        results[index] = record.pk if as_ids else record
    _states_advance(records)
    activity.consents_changed([activity.ConsentChange(
        profile_id=record.profile_id, purpose_code=record.purpose.code,
        purpose_names=(record.purpose.name_zh, record.purpose.name_en), status=record.status,
        source=record.source, when=now) for record in records], actor=actor)
    audit_record_many(actor=actor, action="consent_recorded", entries=[
        (str(entry.profile.uuid), {"purpose": record.purpose.code, "status": record.status, "source": record.source,
                                   "record": record.pk}) for _index, record, entry in written])


def _record_set_based(kept: list, results: list, *, actor: Actor, now: datetime.datetime, as_ids: bool) -> None:
    """The same writes through a staging table (consent.ledger_batch): one tuple per
    entry in Python, one statement per table in the database."""
    staged = []
    for _index, entry, purpose, notice_version in kept:
        evidence = entry.evidence or {}
        staged.append(ledger_batch.StagedEntry(
            entry.profile.pk, purpose.pk, entry.status, notice_version, entry.captured_at or now, entry.source,
            evidence.get("channel", ""), evidence.get("ip") or None, (evidence.get("user_agent") or "")[:300],
            (evidence.get("reference") or "")[:200], evidence.get("text", ""), entry.expires_at,
            entry.guardian_consent, str(entry.profile.uuid)))
    ids = ledger_batch.ledger_ids_take(len(staged))
    ledger_batch.ledger_write(staged, ids, actor=actor, now=now)
    for (index, entry, purpose, notice_version), pk in zip(kept, ids):
        if as_ids:
            results[index] = pk
        else:
            record = _record_of(entry, purpose, notice_version, actor, now)
            record.pk, record._state.adding, record._state.db = pk, False, connection.alias
            results[index] = record


# Looked up per entry: ConsentStatus.values builds its list on every access.
_STATUSES, _SOURCES, _EVIDENCE = frozenset(ConsentStatus.values), frozenset(ConsentSource.values), frozenset(
    EVIDENCE_FIELDS)
_ONE_DAY = datetime.timedelta(days=1)


def _checked(entry: ConsentEntry, purposes: dict[str, Purpose], notices: dict[int, list[int]],
             now: datetime.datetime) -> tuple[Purpose, int | None]:
    """(purpose, notice version) of a valid entry; ValidationError with a code otherwise."""
    purpose = purposes.get(entry.purpose_code)
    if purpose is None:
        raise ValidationError(_("Unknown purpose “%(code)s”.") % {"code": entry.purpose_code}, code="unknown_purpose")
    if entry.status not in _STATUSES:
        raise ValidationError(_("Unknown consent status “%(status)s”: use granted, denied or withdrawn.")
                              % {"status": entry.status}, code="invalid_status")
    if entry.source not in _SOURCES:
        raise ValidationError(_("Unknown source “%(source)s”.") % {"source": entry.source}, code="invalid_source")
    if entry.evidence and not _EVIDENCE.issuperset(entry.evidence):
        unknown = set(entry.evidence) - _EVIDENCE
        raise ValidationError(_("Unknown evidence fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
                              code="invalid_evidence")
    captured_at = entry.captured_at or now
    if captured_at > now + datetime.timedelta(minutes=5):
        raise ValidationError(_("The capture time is in the future."), code="captured_in_future")
    if entry.expires_at is not None and entry.expires_at <= captured_at:
        raise ValidationError(_("The expiry must be after the capture time."), code="expiry_before_capture")
    if entry.status == ConsentStatus.GRANTED and purpose.needs_consent and not entry.guardian_consent \
            and _maybe_minor(entry.profile.birth_date, captured_at) \
            and is_minor(entry.profile, timezone.localdate(captured_at)):
        raise ValidationError(_("This customer is under 14: a grant must come from a guardian (tick “given by a "
                                "guardian” and keep the evidence)."), code="guardian_required")
    versions = notices.get(purpose.pk, [])
    if entry.notice_version is None:
        return purpose, versions[-1] if versions else None
    if entry.notice_version not in versions:
        raise ValidationError(_("Notice version %(version)s does not exist for this purpose.")
                              % {"version": entry.notice_version}, code="unknown_notice")
    return purpose, entry.notice_version


def _maybe_minor(birth_date: datetime.date | None, captured_at: datetime.datetime) -> bool:
    """False when the customer was surely 14 or older on the capture day, whatever the
    time zone (a day before its date in its own zone): the exact local day, dear to
    compute for a million entries, is then not needed."""
    return birth_date is not None and birth_date > _adult_born_by(captured_at.date() - _ONE_DAY)


@functools.lru_cache(maxsize=4096)
def _adult_born_by(day: datetime.date) -> datetime.date:
    return born_by(ADULT_AGE, day)


def _states_advance(records: list[ConsentRecord]) -> None:
    """The current states after appending `records`: a state is its ledger's latest entry
    (by capture time, then id), so the new latest of a customer and purpose is the later
    of the current state's entry and the new ones."""
    latest: dict[tuple[int, int], ConsentRecord] = {}
    for record in records:
        key = (record.profile_id, record.purpose_id)
        if key not in latest or _later(record, latest[key]):
            latest[key] = record
    if not latest:
        return
    states = ConsentState.objects.filter(profile_id__in={p for p, _purpose in latest},
                                         purpose_id__in={purpose for _p, purpose in latest})
    for profile_id, purpose_id, captured_at, record_id in states.values_list(
            "profile_id", "purpose_id", "captured_at", "record_id"):
        new = latest.get((profile_id, purpose_id))
        if new is not None and (captured_at, record_id) > (new.captured_at, new.pk):
            del latest[(profile_id, purpose_id)]  # a back-filled entry: the newer state stays
    ConsentState.objects.bulk_create([ConsentState(
        profile_id=record.profile_id, purpose_id=record.purpose_id, status=record.status,
        notice_version=record.notice_version, captured_at=record.captured_at, expires_at=record.expires_at,
        guardian_consent=record.guardian_consent, record=record,
    ) for record in latest.values()], update_conflicts=True, unique_fields=["purpose", "profile"], update_fields=[
        "status", "notice_version", "captured_at", "expires_at", "guardian_consent", "record"])


def _later(record: ConsentRecord, other: ConsentRecord) -> bool:
    return (record.captured_at, record.pk) > (other.captured_at, other.pk)


def _state_refresh(profile_id: int, purpose: Purpose, ledger_ids: list[int]) -> None:
    """Make `profile_id`'s state for `purpose` the latest entry (by capture time) among
    the ledgers of `ledger_ids`, or no state when there is none."""
    latest = (ConsentRecord.objects.filter(profile_id__in=ledger_ids, purpose=purpose)
              .order_by("-captured_at", "-id").first())
    if latest is None:
        ConsentState.objects.filter(profile_id=profile_id, purpose=purpose).delete()
        return
    ConsentState.objects.update_or_create(
        profile_id=profile_id, purpose=purpose,
        defaults={"status": latest.status, "notice_version": latest.notice_version,
                  "captured_at": latest.captured_at, "expires_at": latest.expires_at,
                  "guardian_consent": latest.guardian_consent, "record": latest},
    )


def consent_states_rebuild(*, profile_id: int, ledger_ids: list[int]) -> None:
    """Derive every state of a profile again from the ledgers of `ledger_ids` (itself
    and the profiles merged into it) after a merge or an unmerge."""
    ids = ledger_ids
    purposes = set(ConsentRecord.objects.filter(profile_id__in=ids).values_list("purpose_id", flat=True))
    purposes |= set(ConsentState.objects.filter(profile_id=profile_id).values_list("purpose_id", flat=True))
    for purpose in Purpose.objects.filter(pk__in=purposes):
        _state_refresh(profile_id, purpose, ids)


def notice_publish(*, purpose: Purpose, text_zh: str, text_en: str = "", requires_reconsent: bool = False,
                   actor: Actor) -> Notice:
    """The next version of the purpose's notice. One that requires re-consent makes
    grants under earlier versions stop counting from now on."""
    with transaction.atomic():
        purpose = Purpose.objects.select_for_update().get(pk=purpose.pk)
        version = (purpose.notices.order_by("-version").values_list("version", flat=True).first() or 0) + 1
        notice = Notice.objects.create(purpose=purpose, version=version, text_zh=text_zh, text_en=text_en,
                                       requires_reconsent=requires_reconsent)
        if requires_reconsent:
            Purpose.objects.filter(pk=purpose.pk).update(reconsent_from_version=version)
        audit_record(actor=actor, action="notice_published", target=purpose.code,
                     details={"version": version, "requires_reconsent": requires_reconsent})
    return notice


def do_not_contact_add(*, profile: Profile, channel: str, reason: str, actor: Actor, note: str = "") -> DoNotContact:
    """Block a channel for the customer; adding one that is already active keeps the
    first (its reason and date stand)."""
    if channel not in Channel.values or channel == Channel.NONE:
        raise ValidationError(_("Unknown channel “%(channel)s”.") % {"channel": channel}, code="invalid_channel")
    if reason not in DoNotContactReason.values:
        raise ValidationError(_("Unknown reason “%(reason)s”.") % {"reason": reason}, code="invalid_reason")
    with transaction.atomic():
        Profile.objects.select_for_update().filter(pk=profile.pk).first()
        existing = DoNotContact.objects.filter(profile=profile, channel=channel, lifted_at__isnull=True).first()
        if existing:
            return existing
        entry = DoNotContact.objects.create(profile=profile, channel=channel, reason=reason, note=note[:300],
                                            created_by=actor.label[:150])
        label = Channel(channel)
        activity.consent_changed(profile_id=profile.pk, purpose_code=channel, purpose_names=_names(label),
                                 status="do_not_contact", source=actor.kind, actor=actor)
        audit_record(actor=actor, action="do_not_contact_added", target=str(profile.uuid),
                     details={"channel": channel, "reason": reason})
    return entry


def do_not_contact_lift(*, entry: DoNotContact, actor: Actor, reason: str) -> DoNotContact:
    """Only staff lift a block, with a reason; the entry stays as history."""
    if actor.kind != "staff":
        raise ValidationError(_("Only staff can lift a do-not-contact entry."), code="lift_staff_only")
    if not reason.strip():
        raise ValidationError(_("Say why the block is lifted (e.g. the customer subscribed again)."),
                              code="lift_reason_required")
    with transaction.atomic():
        entry = DoNotContact.objects.select_for_update().get(pk=entry.pk)
        if entry.lifted_at:
            return entry
        entry.lifted_at, entry.lifted_by, entry.lift_reason = timezone.now(), actor.label[:150], reason[:300]
        entry.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
        activity.consent_changed(profile_id=entry.profile_id, purpose_code=entry.channel,
                                 purpose_names=_names(Channel(entry.channel)), status="do_not_contact_lifted",
                                 source=actor.kind, actor=actor)
        audit_record(actor=actor, action="do_not_contact_lifted", target=str(entry.profile.uuid),
                     details={"channel": entry.channel, "reason": reason})
    return entry


def _names(choice) -> tuple[str, str]:
    """A choice's label in Chinese and in English, for the timeline."""
    from django.utils import translation

    with translation.override("zh-hans"):
        zh = str(choice.label)
    with translation.override("en"):
        en = str(choice.label)
    return zh, en


def merge_move(survivor: Profile, merged: Profile) -> dict:
    """Merge hook: ledger rows never move (they are proof of who agreed); the survivor's
    state is derived again from both ledgers. Do-not-contact entries move unless the
    survivor already blocks that channel."""
    merged_ledger = ledger_profile_ids(merged.pk)
    blocked = set(DoNotContact.objects.filter(profile=survivor, lifted_at__isnull=True).values_list("channel", flat=True))
    moving = DoNotContact.objects.filter(profile=merged).exclude(channel__in=blocked, lifted_at__isnull=True)
    moved = list(moving.values_list("pk", flat=True))
    DoNotContact.objects.filter(pk__in=moved).update(profile=survivor)
    consent_states_rebuild(profile_id=survivor.pk, ledger_ids=ledger_profile_ids(survivor.pk) + merged_ledger)
    return {"do_not_contact": moved, "merged_ledger": merged_ledger}


def merge_restore(survivor: Profile, merged: Profile, data: dict) -> None:
    DoNotContact.objects.filter(pk__in=data["do_not_contact"], profile=survivor).update(profile=merged)
    merged_ledger = set(data["merged_ledger"])
    own = [pk for pk in ledger_profile_ids(survivor.pk) if pk not in merged_ledger]
    consent_states_rebuild(profile_id=survivor.pk, ledger_ids=own)
    consent_states_rebuild(profile_id=merged.pk, ledger_ids=list(merged_ledger))


def consent_states_repair(*, actor: Actor) -> dict[str, int]:
    """Rewrite the current states that drifted from the ledger (consent_state_drift):
    unexpected ones are deleted, missing and different ones become a copy of the latest
    ledger entry. Audited with the counts (ids only: no personal data). Returns the counts."""
    with transaction.atomic():
        drift = consent_state_drift()
        counts = {kind: sum(1 for d in drift if d.kind == kind) for kind in ("missing", "different", "unexpected")}
        if not drift:
            return counts
        ConsentState.objects.filter(pk__in=[d.state_id for d in drift if d.kind == "unexpected"]).delete()
        records = ConsentRecord.objects.in_bulk([d.record_id for d in drift if d.kind != "unexpected"])
        ConsentState.objects.bulk_create([ConsentState(
            profile_id=d.profile_id, purpose_id=d.purpose_id, status=r.status, notice_version=r.notice_version,
            captured_at=r.captured_at, expires_at=r.expires_at, guardian_consent=r.guardian_consent, record=r,
        ) for d in drift if d.kind != "unexpected" for r in [records[d.record_id]]],
            update_conflicts=True, unique_fields=["purpose", "profile"],
            update_fields=["status", "notice_version", "captured_at", "expires_at", "guardian_consent", "record"])
        audit_record(actor=actor, action="consent_state_repaired", target="consent_state", count=len(drift),
                     details={**counts, "profiles": sorted({d.profile_id for d in drift})[:1000]})
    return counts
