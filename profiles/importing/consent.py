"""The consent import kind, and the refusal to bring back erased people.

The consent kind needs the consent app, which sits above profiles: profiles never imports
it. The consent app's service and selectors are handed in by `consent_kind_register`,
called from consent's AppConfig.ready() like the other registries; without them the
consent kind says it is unavailable. Erased people are refused by
profiles.services.suppression, which needs nothing from consent.

A batch of consent rows goes through `consent_record_many`, the batch form of
`consent_record`: the ledger, the current states, the timeline entries and the audit rows
stay consistent, and an invalid row fails alone. Re-importing a row whose purpose already
has that status captured at that time changes nothing. Undo appends correcting ledger
entries — the ledger is append-only — that bring each purpose back to the status it had
before the import (withdrawn if the import gave the first grant).
"""
from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _

from ..models import Profile
from .rows import Issue, Row, no_customer_issue

_hooks: dict[str, Callable] = {}

STATUS_WORDS = {
    "granted": "granted", "grant": "granted", "yes": "granted", "y": "granted", "true": "granted", "1": "granted",
    "同意": "granted", "已同意": "granted", "授权": "granted", "已授权": "granted", "是": "granted",
    "denied": "denied", "deny": "denied", "no": "denied", "n": "denied", "false": "denied", "0": "denied",
    "拒绝": "denied", "不同意": "denied", "否": "denied",
    "withdrawn": "withdrawn", "withdraw": "withdrawn", "撤回": "withdrawn", "已撤回": "withdrawn",
    "取消": "withdrawn", "退订": "withdrawn",
}


def consent_kind_register(*, record_many: Callable, entry: type, history: Callable, states: Callable,
                          recorded: Callable, records: Callable) -> None:
    """`record_many(entries, actor=…)` with `entry`: consent.services.consent_record_many
    and ConsentEntry; `history(profile)`: the profile's ledger, newest first
    (consent.selectors.consent_history); `states(ids)`: {(profile id, purpose code):
    status} of their current states; `recorded(ids)`: their ledgers' (profile id, purpose
    code, status, captured at); `records(q)`: ledger entries matching a Q on their id."""
    _hooks.update(record_many=record_many, entry=entry, history=history, states=states,
                  recorded=recorded, records=records)


def consent_available() -> bool:
    return "record_many" in _hooks


def suppressed_issue(row: Row, key: tuple[str, str]) -> Issue:
    return Issue(row.key_columns.get(key, ""), _(
        "%(kind)s %(value)s belonged to a person whose data was erased at their request; it cannot be imported "
        "again.") % {"kind": key[0], "value": key[1]}, "suppressed")


def consent_rows_write(runner, rows: list[Row], owners: dict):
    """(outcomes, ids of the ledger entries added) for one batch of consent rows, recorded
    together by consent_record_many."""
    from .pipeline import Outcome

    outcomes, profile_ids = [], {}
    for row in rows:
        profile_id = runner._owner(row, owners)
        if row.issues:
            outcomes.append(Outcome("fail", row))
        elif profile_id is None:
            row.issues.append(no_customer_issue())
            outcomes.append(Outcome("fail", row))
        else:
            profile_ids[row.number] = profile_id
    # What recording needs of a customer: the id, the public id (audit rows) and the birth
    # date (a minor's grant needs a guardian), not the whole row.
    profiles = Profile.objects.only("id", "uuid", "birth_date").in_bulk(set(profile_ids.values()))
    # A row already in the ledger (a re-import: the same status at the same time, or with
    # no time the current status) changes nothing; a row repeating an earlier row of the
    # batch shares that row's outcome.
    current, recorded = _hooks["states"](list(profiles)), _hooks["recorded"](list(profiles))
    entries, entry_rows, twins = [], [], {}
    for row in rows:
        if row.number not in profile_ids:
            continue
        profile = profiles[profile_ids[row.number]]
        consent = row.consent
        status = STATUS_WORDS.get(consent["consent_status"].casefold())
        notice = consent.get("notice_version") or None
        if status is None:
            row.issues.append(Issue("", _("“%(value)s” is not a consent status: use granted, denied or withdrawn "
                                          "(同意 / 拒绝 / 撤回).") % {"value": consent["consent_status"]},
                                    "invalid_status"))
        if notice is not None and not notice.isdigit():
            row.issues.append(Issue("", _("“%(value)s” is not a notice version number.") % {"value": notice},
                                    "invalid_notice_version"))
        if row.issues:
            outcomes.append(Outcome("fail", row, profile.pk))
            continue
        captured_at = consent.get("captured_at")
        same = (profile.pk, consent["purpose"], status, captured_at)
        if (same in recorded if captured_at is not None
                else current.get((profile.pk, consent["purpose"])) == status):
            outcomes.append(Outcome("unchanged", row, profile.pk))
            continue
        if same in twins:
            twins[same].append(row)
            continue
        twins[same] = []
        evidence = {key: value for key, value in (("reference", runner.job.file_name),
                                                  ("text", consent.get("evidence", ""))) if value}
        entries.append(_hooks["entry"](
            profile=profile, purpose_code=consent["purpose"], status=status, source="import",
            captured_at=captured_at, notice_version=int(notice) if notice else None, evidence=evidence,
            expires_at=consent.get("expires_at"), guardian_consent=bool(consent.get("guardian_consent"))))
        entry_rows.append((row, twins[same]))
    added = []
    for (row, repeats), result in zip(entry_rows, _hooks["record_many"](entries, actor=runner.actor, as_ids=True)):
        profile_id = profile_ids[row.number]
        if isinstance(result, ValidationError):
            for failed in (row, *repeats):
                failed.issues.append(Issue("", " ".join(result.messages), result.code or "invalid"))
                outcomes.append(Outcome("fail", failed, profile_id))
        else:
            added.append(result)
            outcomes.append(Outcome("create", row, profile_id))
            outcomes += [Outcome("unchanged", repeat, profile_id) for repeat in repeats]
    return outcomes, added


def consent_undo(job, ranges: list[list[int]], actor) -> None:
    """Correcting ledger entries for what the import recorded (see the module docstring),
    written together by consent_record_many."""
    if not ranges or not consent_available():
        return
    from ..services.bulk import ranges_q

    added = {pk for first, last in ranges for pk in range(first, last + 1)}
    touched = {(entry.profile_id, entry.purpose.code): None
               for entry in _hooks["records"](ranges_q(ranges)).select_related("purpose")}
    profiles = Profile.objects.in_bulk({profile_id for profile_id, _code in touched})
    ledgers = _ledgers(list(profiles))
    evidence = {"text": _("undo of import #%(job)s") % {"job": job.pk}}
    corrections = []
    for profile_id, purpose_code in touched:
        profile = profiles.get(profile_id)
        if profile is None:
            continue
        ledger = ledgers.get((profile_id, purpose_code))
        if ledger is None:  # a customer others were merged into: their ledgers count too
            ledger = list(_hooks["history"](profile).filter(purpose__code=purpose_code))
        before = next((e for e in ledger if e.pk not in added and e.pk < min(added)), None)
        current = ledger[0] if ledger else None
        wanted = before.status if before is not None else "withdrawn"
        if current is None or current.status == wanted or (before is None and current.status != "granted"):
            continue
        corrections.append(_hooks["entry"](profile=profile, purpose_code=purpose_code, status=wanted, source="import",
                                           evidence=evidence))
    for result in _hooks["record_many"](corrections, actor=actor):
        if isinstance(result, ValidationError):
            raise result  # undo is all or nothing


def _ledgers(profile_ids: list[int]) -> dict[tuple[int, str], list]:
    """(profile id, purpose code) → its ledger entries, newest first, a query per 2,000
    customers, for the customers nobody was merged into (the others are left out)."""
    ledgers: dict[tuple[int, str], list] = {}
    for start in range(0, len(profile_ids), 2000):
        chunk = profile_ids[start:start + 2000]
        survivors = set(Profile.objects.filter(merged_into_id__in=chunk).values_list("merged_into_id", flat=True))
        entries = _hooks["records"](Q(profile_id__in=[pk for pk in chunk if pk not in survivors]))
        for entry in entries.select_related("purpose").order_by("-captured_at", "-id"):
            ledgers.setdefault((entry.profile_id, entry.purpose.code), []).append(entry)
    return ledgers
