"""Data subject requests (GDPR Arts. 15–18, PIPL Arts. 44–47): recording, extending,
completing and refusing them, the access export and erasure.

Access export format ("cdp-subject-export", version 1) — one JSON object:

* ``format``, ``version``, ``exported_at``, ``customer`` (the public id);
* ``profile``: the profile import's columns (name, gender, birth_date, phone, email,
  country, province, city, occupation), one column per identity kind holding its first
  value (crm_id, wechat_openid …), ``tags`` (names separated by "; ", the tags staff,
  imports or the API gave; rule and interest tags are recomputed, not imported),
  ``traits`` (custom traits by key), plus uuid, status, created_at, updated_at and
  ``metrics`` (computed, informational);
* ``identities``, ``events`` (the event import's columns: event_name, occurred_at, amount,
  source, external_id, properties), ``tags`` (with source, reason, who and when),
  ``consent_history`` (the consent import's columns: purpose, consent_status, captured_at,
  notice_version, evidence, expires_at, guardian_consent, and the rest of the evidence),
  ``do_not_contact``, ``data_requests``, ``activity``, ``merges``, ``imports``,
  ``partner_disclosures``;
* one more list per kind of row that an app above consent keeps about the customer,
  named after its relation (``segment_memberships``): consent may not import those apps,
  so their rows are found through the model relations pointing at Profile.

Every list covers the customer and the profiles merged into them. The CSV zip holds the
same data, one file per section (nested values as JSON text), formula-safe.

Erasure deletes every row that hangs off the customer with ON DELETE CASCADE (events,
identities, tags, activity, consent state, do-not-contact, and whatever higher apps keep,
such as segment memberships), anonymises the profile, pseudonymises the ledger, suppresses
the person's identifiers (profiles.services.suppression) and queues notices to partners — in
one transaction.
"""
import datetime
import io
import json
import zipfile

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.audit import audit_record
from cdp.exports import csv_lines
from cdp.models import AuditLog
from profiles import activity
from profiles.metrics import metrics_recompute
from profiles.models import (
    Event,
    Gender,
    Identity,
    ImportBatch,
    ImportChange,
    ImportJob,
    ImportRowError,
    Profile,
    ProfileActivity,
    ProfileMerge,
    ProfileStatus,
    ProfileTag,
    TagSource,
)
from profiles.normalisers import NormalisationError, normalise_email, normalise_phone
from profiles.services.suppression import identifier_digest, identifiers_suppress

from .erasure_copies import erasure_copies_scrub
from .models import (
    ConsentRecord,
    ConsentState,
    DataSubjectRequest,
    DoNotContact,
    ErasureNotice,
)
from .selectors import ledger_profile_ids
from .subject_summary import subject_language, subject_summary_html

EXPORT_FORMAT = "cdp-subject-export"
EXPORT_VERSION = 1
# The profile import's column names (profiles.importing.mapping.PROFILE_FIELDS; a test
# keeps them equal), so that the export reads back into the importer.
PROFILE_COLUMNS = ("name", "gender", "birth_date", "phone", "email", "country", "province", "city", "occupation")
METRIC_FIELDS = ("first_seen_at", "last_seen_at", "order_count", "total_spent", "last_order_at", "rfm_recency",
                 "rfm_frequency", "rfm_monetary", "lifecycle_stage", "metrics_updated_at")
# GDPR Art. 12(3): the answer may be extended by two further months.
MAX_EXTENSION_DAYS = 60
DSR = DataSubjectRequest


# --- recording and answering requests ----------------------------------------------------------

def data_request_create(*, kind: str, requester: str, actor: Actor, profile: Profile | None = None,
                        contact: str = "", details: str = "",
                        received_at: datetime.datetime | None = None) -> DataSubjectRequest:
    """Record a request; it is due 30 days after it was received."""
    if kind not in DSR.Kind.values:
        raise ValidationError(_("Unknown request kind “%(kind)s”.") % {"kind": kind}, code="invalid_request_kind")
    if not requester.strip():
        raise ValidationError(_("Say who made the request and how they asked."), code="requester_required")
    with transaction.atomic():
        request = DSR(kind=kind, profile=profile, requester=requester.strip()[:150], contact=contact[:200],
                      details=details, received_at=received_at or timezone.now(), handled_by=actor.user)
        request.save()
        _log(request, "received", actor)
    return request


def data_request_extend(*, request: DataSubjectRequest, until: datetime.datetime, reason: str,
                        actor: Actor) -> DataSubjectRequest:
    """Push the deadline back, with a reason the person is told (at most two months
    beyond the 30 days)."""
    if not reason.strip():
        raise ValidationError(_("Give the reason for the extension: the person must be told why."),
                              code="extension_reason_required")
    with transaction.atomic():
        request = _locked_open(request)
        if until <= request.deadline:
            raise ValidationError(_("The new deadline must be after the current one (%(deadline)s).")
                                  % {"deadline": _local(request.deadline)}, code="extension_not_later")
        if until > request.due_at + datetime.timedelta(days=MAX_EXTENSION_DAYS):
            raise ValidationError(_("A request can be extended by at most %(days)s days beyond its due date.")
                                  % {"days": MAX_EXTENSION_DAYS}, code="extension_too_long")
        request.extended_until, request.extension_reason = until, reason.strip()[:300]
        request.status = DSR.Status.IN_PROGRESS
        request.handled_by = actor.user or request.handled_by
        request.save(update_fields=["extended_until", "extension_reason", "status", "handled_by"])
        # The reason stays on the request, not in the audit log: free text may name the person,
        # and the audit log can never be erased.
        _log(request, "extended", actor, {"until": until.isoformat()})
    return request


def data_request_complete(*, request: DataSubjectRequest, outcome: str, actor: Actor) -> DataSubjectRequest:
    """Close the request as answered, saying what was done."""
    if not outcome.strip():
        raise ValidationError(_("Say what was done to answer the request."), code="outcome_required")
    return _close(request, DSR.Status.COMPLETED, outcome.strip(), actor)


def data_request_refuse(*, request: DataSubjectRequest, reason: str, actor: Actor) -> DataSubjectRequest:
    """Close the request unanswered (e.g. identity not verified), with the reason."""
    if not reason.strip():
        raise ValidationError(_("Give the reason for refusing: the person must be told why."),
                              code="refusal_reason_required")
    return _close(request, DSR.Status.REFUSED, reason.strip(), actor)


def _close(request: DataSubjectRequest, status: str, outcome: str, actor: Actor) -> DataSubjectRequest:
    with transaction.atomic():
        request = _locked_open(request)
        request.status, request.outcome, request.completed_at = status, outcome, timezone.now()
        request.handled_by = actor.user or request.handled_by
        request.save(update_fields=["status", "outcome", "completed_at", "handled_by"])
        _log(request, status, actor)
    return request


def _locked_open(request: DataSubjectRequest) -> DataSubjectRequest:
    request = DSR.objects.select_for_update().get(pk=request.pk)
    if not request.is_open:
        raise ValidationError(_("This request is already closed (%(status)s).")
                              % {"status": request.get_status_display()}, code="request_closed")
    return request


def _log(request: DataSubjectRequest, status: str, actor: Actor, details: dict | None = None, count: int = 1) -> None:
    """On the customer's timeline (when the request names one) and in the audit log."""
    if request.profile_id:
        activity.data_request_logged(profile_id=request.profile_id, request_id=request.pk, kind=request.kind,
                                     status=status, actor=actor)
    target = str(request.profile.uuid) if request.profile_id else f"data-request:{request.pk}"
    audit_record(actor=actor, action=f"data_request_{status}", target=target, count=count,
                 details={"request": request.pk, "kind": request.kind, **(details or {})})


def _local(moment: datetime.datetime) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def subject_profile(profile: Profile) -> Profile:
    """The profile that holds the person's data now: a merged tombstone's survivor."""
    while profile.status == ProfileStatus.MERGED and profile.merged_into_id:
        profile = Profile.objects.get(pk=profile.merged_into_id)
    return profile


# --- access: the export ------------------------------------------------------------------------

def profile_data_export(profile: Profile) -> dict:
    """Everything held about the person, as JSON-ready data (see the module docstring)."""
    profile = subject_profile(profile)
    ids = ledger_profile_ids(profile.pk)
    profiles = list(Profile.objects.filter(pk__in=ids))
    uuids = [str(p.uuid) for p in profiles]
    identities = list(Identity.objects.filter(profile_id__in=ids).order_by("kind_id", "created_at", "pk"))
    tags = list(ProfileTag.objects.filter(profile_id__in=ids).select_related("tag__category").order_by("assigned_at"))

    data = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": timezone.now(),
        "customer": str(profile.uuid),
        "profile": _profile_row(profile, identities, tags),
        "identities": [{"kind": i.kind_id, "value": i.value, "source": i.source, "created_at": i.created_at}
                       for i in identities],
        "events": [
            {"event_name": e.name, "occurred_at": e.occurred_at, "amount": e.amount, "source": e.source,
             "external_id": e.external_id, "properties": e.properties, "received_at": e.received_at}
            for e in Event.objects.filter(profile_id__in=ids).order_by("occurred_at", "pk").iterator(chunk_size=5000)
        ],
        "tags": [
            {"tag": t.tag.slug, "tag_name": t.tag.name, "category": t.tag.category.name, "source": t.source,
             "reason": t.reason, "weight": t.weight, "assigned_at": t.assigned_at, "assigned_by": t.assigned_by_label,
             "expires_at": t.expires_at}
            for t in tags
        ],
        "consent_history": [
            {"purpose": r.purpose.code, "consent_status": r.status, "captured_at": r.captured_at,
             "notice_version": r.notice_version, "evidence": r.evidence_text, "expires_at": r.expires_at,
             "guardian_consent": r.guardian_consent, "source": r.source, "evidence_channel": r.evidence_channel,
             "evidence_ip": r.evidence_ip, "evidence_user_agent": r.evidence_user_agent,
             "evidence_reference": r.evidence_reference, "recorded_at": r.recorded_at, "recorded_by": r.actor_label,
             "pseudonymised": r.pseudonymised}
            for r in ConsentRecord.objects.filter(profile_id__in=ids).select_related("purpose")
            .order_by("captured_at", "pk")
        ],
        "do_not_contact": [
            {"channel": d.channel, "reason": d.reason, "note": d.note, "created_at": d.created_at,
             "created_by": d.created_by, "lifted_at": d.lifted_at, "lifted_by": d.lifted_by,
             "lift_reason": d.lift_reason}
            for d in DoNotContact.objects.filter(profile_id__in=ids).order_by("created_at")
        ],
        "data_requests": [
            {"kind": r.kind, "status": r.status, "requester": r.requester, "contact": r.contact,
             "details": r.details, "received_at": r.received_at, "due_at": r.due_at,
             "extended_until": r.extended_until, "extension_reason": r.extension_reason,
             "completed_at": r.completed_at, "outcome": r.outcome}
            for r in DSR.objects.filter(profile_id__in=ids).order_by("received_at")
        ],
        "activity": [
            {"type": a.type, "summary": a.summary, "details": a.params, "occurred_at": a.occurred_at,
             "by": a.actor_kind, "actor": a.actor_label}
            for a in ProfileActivity.objects.filter(profile_id__in=ids).order_by("occurred_at", "pk")
        ],
        "merges": [
            {"survivor": str(m.survivor.uuid), "merged": str(m.merged.uuid), "merged_at": m.merged_at,
             "reason": m.reason, "undone_at": m.undone_at}
            for m in ProfileMerge.objects.filter(models.Q(survivor_id__in=ids) | models.Q(merged_id__in=ids))
            .select_related("survivor", "merged").order_by("merged_at")
        ],
        "imports": _imports(ids, [i.pk for i in identities]),
        "partner_disclosures": [
            {"partner": row.actor_label, "occurred_at": row.occurred_at, "action": row.action,
             "method": row.details.get("method", ""), "route": row.details.get("route", ""), "records": row.count}
            for row in AuditLog.objects.filter(target__in=uuids, actor_kind="partner").order_by("occurred_at")
        ],
    }
    for name, rows in _other_apps_rows(ids).items():
        data[name] = rows
    # Dates, decimals and UUIDs as JSON text, so that the dict is exactly what the file holds.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False))


def _profile_row(profile: Profile, identities: list[Identity], tags: list[ProfileTag]) -> dict:
    row = {"uuid": profile.uuid, "status": profile.status}
    row.update({field: getattr(profile, field) for field in PROFILE_COLUMNS})
    for identity in identities:
        if identity.kind_id not in ("phone", "email"):  # those two are profile columns already
            row.setdefault(identity.kind_id, identity.value)
    importable = {TagSource.MANUAL, TagSource.IMPORT, TagSource.API}
    row["tags"] = "; ".join(t.tag.name for t in tags if t.source in importable)
    row["traits"] = profile.traits
    row["created_at"], row["updated_at"] = profile.created_at, profile.updated_at
    row["metrics"] = {field: getattr(profile, field) for field in METRIC_FIELDS}
    return row


def _imports(profile_ids: list[int], identity_ids: list[int]) -> list[dict]:
    """Import jobs that created the customer, added one of their identities or changed
    their fields (with the values before the change)."""
    roles: dict[int, set[str]] = {}
    wanted_profiles, wanted_identities = set(profile_ids), set(identity_ids)
    for job_id, profile_ranges, identity_ranges in ImportBatch.objects.values_list(
            "job_id", "profile_ids", "identity_ids").iterator(chunk_size=1000):
        if _in_ranges(wanted_profiles, profile_ranges):
            roles.setdefault(job_id, set()).add("created")
        if _in_ranges(wanted_identities, identity_ranges):
            roles.setdefault(job_id, set()).add("identity_added")
    before: dict[int, list[dict]] = {}
    for change in ImportChange.objects.filter(profile_id__in=profile_ids):
        roles.setdefault(change.job_id, set()).add("updated")
        before.setdefault(change.job_id, []).append(change.before)
    return [
        {"import": job.pk, "kind": job.kind, "file_name": job.file_name, "source": job.source,
         "started_by": job.actor_label, "created_at": job.created_at, "finished_at": job.finished_at,
         "status": job.status, "what": sorted(roles[job.pk]), "values_before": before.get(job.pk, [])}
        for job in ImportJob.objects.filter(pk__in=list(roles)).order_by("created_at")
    ]


def _in_ranges(wanted: set[int], ranges: list) -> bool:
    """Whether any of `wanted` falls into [[first, last], …] (or a plain list of ids)."""
    for item in ranges or []:
        first, last = (item[0], item[-1]) if isinstance(item, list) else (item, item)
        if any(first <= pk <= last for pk in wanted):
            return True
    return False


# Relations consent handles itself: the rest (apps above consent) are found generically.
_OWN_MODELS = {Event, Identity, ProfileTag, ProfileActivity, ProfileMerge, Profile, ConsentRecord, ConsentState,
               DoNotContact, DSR}


def _relations_to_profile() -> list[models.ForeignObjectRel]:
    """Every foreign key of a managed model that points at Profile, hidden ones
    (related_name="+") included, except a profile's own link to its survivor."""
    return [rel for rel in Profile._meta.get_fields(include_hidden=True)
            if rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)
            and rel.related_model is not Profile and rel.related_model._meta.managed]


def _other_relations() -> list[models.ForeignObjectRel]:
    """Relations from models consent does not know (segment memberships, …) to Profile."""
    return [rel for rel in _relations_to_profile() if rel.related_model not in _OWN_MODELS]


def _other_apps_rows(profile_ids: list[int]) -> dict[str, list[dict]]:
    sections = {}
    for rel in _other_relations():
        model = rel.related_model
        relations = [f for f in model._meta.concrete_fields if f.is_relation and f is not rel.field]
        rows = model._base_manager.filter(**{f"{rel.field.name}__in": profile_ids})
        rows = rows.select_related(*[f.name for f in relations]).order_by("pk")
        name = rel.get_accessor_name() or f"{model._meta.app_label}_{model._meta.model_name}"
        sections[name] = [_plain_row(obj, rel.field) for obj in rows]
    return sections


def _plain_row(obj: models.Model, profile_field: models.Field) -> dict:
    row = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or field is profile_field:
            continue
        if field.is_relation:
            related = getattr(obj, field.name)
            row[field.name] = str(related) if related is not None else None
        else:
            row[field.name] = field.value_from_object(obj)
    return row


def export_json_bytes(export: dict) -> bytes:
    return json.dumps(export, ensure_ascii=False, indent=2).encode("utf-8")


def export_csv_zip(export: dict, summary: bytes | None = None) -> bytes:
    """One CSV per section of the export; nested values (properties, traits) as JSON; and
    the readable summary (consent.subject_summary) beside them when given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if summary is not None:
            archive.writestr("summary.html", summary)
        header = {key: export[key] for key in ("format", "version", "exported_at", "customer")}
        archive.writestr("export.json", json.dumps(header, ensure_ascii=False, indent=2))
        profile = dict(export["profile"])
        metrics = profile.pop("metrics", {})
        traits = profile.pop("traits", {}) or {}
        flat_profile = {**profile, **{f"trait:{key}": value for key, value in traits.items()}, **metrics}
        archive.writestr("profile.csv", csv_bytes(list(flat_profile), [flat_profile]))
        for name, rows in export.items():
            if not isinstance(rows, list):
                continue
            columns = list(dict.fromkeys(key for row in rows for key in row))
            cells = [{key: _cell(value) for key, value in row.items()} for row in rows]
            archive.writestr(f"{name}.csv", csv_bytes(columns, cells))
    return buffer.getvalue()


def csv_bytes(columns: list[str], rows: list[dict]) -> bytes:
    """A formula-safe CSV (cdp.exports) with a header row; missing keys are empty cells."""
    lines = csv_lines([columns, *([row.get(column, "") for column in columns] for row in rows)])
    return "".join(lines).encode("utf-8")


def _cell(value):
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


def export_record_count(export: dict) -> int:
    """How many records a file holds: the profile plus every row of every section."""
    return 1 + sum(len(rows) for rows in export.values() if isinstance(rows, list))


def data_request_export(*, request: DataSubjectRequest, file_format: str, actor: Actor,
                        http_request=None, language: str | None = None) -> tuple[str, bytes, str]:
    """The export of the request's customer as (file name, content, content type),
    audited (who, when, how many records) and on the customer's timeline. "summary" is
    the readable page for the person, in `language` (default: theirs); the CSV zip holds it too."""
    if request.profile_id is None:
        raise ValidationError(_("Link the request to a customer first."), code="request_without_customer")
    if file_format not in ("json", "csv", "summary"):
        raise ValidationError(_("Unknown export format “%(format)s”.") % {"format": file_format},
                              code="invalid_export_format")
    export = profile_data_export(request.profile)
    count = export_record_count(export)
    with transaction.atomic():
        if request.status == DSR.Status.RECEIVED:
            DSR.objects.filter(pk=request.pk).update(status=DSR.Status.IN_PROGRESS)
        activity.data_request_logged(profile_id=request.profile_id, request_id=request.pk, kind=request.kind,
                                     status="exported", actor=actor)
        audit_record(actor=actor, action="subject_data_exported", target=export["customer"], count=count,
                     details={"request": request.pk, "format": file_format}, request=http_request)
    stem = f"cdp-subject-export-{export['customer']}"
    if file_format == "json":
        return f"{stem}.json", export_json_bytes(export), "application/json"
    summary = subject_summary_html(export, language=language or subject_language(request.profile))
    if file_format == "summary":
        return f"{stem}-summary.html", summary, "text/html; charset=utf-8"
    return f"{stem}.zip", export_csv_zip(export, summary=summary), "application/zip"


# --- erasure -----------------------------------------------------------------------------------

def _cascading_relations() -> list[models.ForeignObjectRel]:
    """Every relation whose rows go with the profile (events, identities, tags, activity,
    consent state, do-not-contact, segment memberships, …): erasure deletes them all."""
    return [rel for rel in _relations_to_profile() if rel.on_delete is models.CASCADE]


def erasure_preview(profile: Profile) -> dict:
    """What erasing the customer would delete or change, by section, for the
    confirmation page."""
    ids = ledger_profile_ids(profile.pk)
    counts = {}
    for rel in _cascading_relations():
        found = rel.related_model._base_manager.filter(**{f"{rel.field.name}__in": ids}).count()
        if found:
            counts[str(rel.related_model._meta.verbose_name_plural)] = found
    partners = sorted(_partner_recipients([str(p.uuid) for p in Profile.objects.filter(pk__in=ids)]))
    return {
        "profiles": len(ids),
        "deleted": counts,
        "ledger_rows": ConsentRecord.objects.filter(profile_id__in=ids).count(),
        "identifiers": len(_identifiers(ids)),
        "partners": partners,
    }


def profile_erase(*, profile: Profile, request: DataSubjectRequest, actor: Actor) -> dict:
    """Erase the person for an erasure request, in one transaction that cannot be undone.
    Returns what was done (counts), also written to the audit log."""
    if actor.user is None or not actor.user.has_perm("consent.erase_profile"):
        raise PermissionDenied(_("You may not erase customers."))
    with transaction.atomic():
        profile = Profile.objects.select_for_update().get(pk=profile.pk)
        request = DSR.objects.select_for_update().get(pk=request.pk)
        if profile.status == ProfileStatus.MERGED:
            raise ValidationError(_("This customer was merged into another one: erase that customer instead (it "
                                    "holds this one's data)."), code="erase_merged_profile")
        if profile.status == ProfileStatus.ERASED:
            raise ValidationError(_("This customer has already been erased."), code="already_erased")
        ids = ledger_profile_ids(profile.pk)
        # The request may name a profile since merged into this one: the same person.
        if request.kind != DSR.Kind.ERASURE or request.profile_id not in ids or not request.is_open:
            raise ValidationError(_("Erasure needs an open erasure request for this customer."),
                                  code="erasure_request_required")
        Profile.objects.select_for_update().filter(pk__in=ids).order_by("pk").first()  # lock the tombstones too
        uuids = [str(pk) for pk in Profile.objects.filter(pk__in=ids).values_list("uuid", flat=True)]
        identifiers = _identifiers(ids)  # before the identities go
        partners = _partner_recipients(uuids)
        other_request_ids = list(DSR.objects.filter(profile_id__in=ids).values_list("pk", flat=True))

        deleted = {}
        for rel in _cascading_relations():
            _total, per_model = rel.related_model._base_manager.filter(**{f"{rel.field.name}__in": ids}).delete()
            for label, count in per_model.items():
                if count:
                    deleted[label] = deleted.get(label, 0) + count
        deleted["profiles.ImportChange"] = ImportChange.objects.filter(profile_id__in=ids).delete()[0]
        # Copies that do not hang off the profile: import reports, failed rows, uploads, other timelines…
        copies = erasure_copies_scrub(identifiers=identifiers, profile_ids=ids)
        deleted["profiles.ImportRowError"] = copies.get("import_errors", 0)

        Profile.objects.filter(pk__in=ids).update(
            name="", gender=Gender.UNKNOWN, birth_date=None, phone="", email="", country="", province="", city="",
            occupation="", traits={}, updated_at=timezone.now(),
        )
        Profile.objects.filter(pk=profile.pk).update(status=ProfileStatus.ERASED)
        metrics_recompute(profile_ids=ids)  # no events left: metrics back to empty
        _scrub_merges(ids, uuids)
        _scrub_admin_log(ids, other_request_ids, profile.uuid)
        DSR.objects.filter(pk__in=other_request_ids).update(requester="—", contact="", details="")

        pseudonymised = _ledger_pseudonymise(ids)
        identifiers_suppress(identifiers, request_id=request.pk)
        subject_digest = identifier_digest("uuid", str(profile.uuid))
        ErasureNotice.objects.bulk_create(
            [ErasureNotice(recipient=name, subject_digest=subject_digest, request=request) for name in sorted(partners)]
        )

        outcome = _("Erased: %(count)s records deleted, %(ledger)s consent records pseudonymised, %(ids)s identifiers "
                    "suppressed, %(partners)s partners to notify.") % {
            "count": sum(deleted.values()), "ledger": pseudonymised, "ids": len(identifiers),
            "partners": len(partners)}
        DSR.objects.filter(pk=request.pk).update(status=DSR.Status.COMPLETED, completed_at=timezone.now(),
                                                 outcome=outcome, handled_by=actor.user)
        # The one timeline entry left: that the person was erased, and under which request.
        activity.data_request_logged(profile_id=profile.pk, request_id=request.pk, kind=DSR.Kind.ERASURE,
                                     status=DSR.Status.COMPLETED, actor=actor)
        result = {"request": request.pk, "profiles": len(ids), "deleted": deleted, "copies_scrubbed": copies,
                  "ledger_pseudonymised": pseudonymised, "suppressed": len(identifiers),
                  "partners_notified": sorted(partners)}
        audit_record(actor=actor, action="profile_erased", target=str(profile.uuid), details=result,
                     count=sum(deleted.values()))
    return result


def _identifiers(profile_ids: list[int]) -> set[tuple[str, str]]:
    """Every normalised identifier the person had: identities, and the profiles' own
    phone and email fields."""
    found = set(Identity.objects.filter(profile_id__in=profile_ids).values_list("kind_id", "value"))
    for phone, email in Profile.objects.filter(pk__in=profile_ids).values_list("phone", "email"):
        for kind, value, normalise in (("phone", phone, normalise_phone), ("email", email, normalise_email)):
            try:
                normalised = normalise(value)
            except NormalisationError:
                normalised = value.strip()  # stored before validation existed: suppress it as it is
            if normalised:
                found.add((kind, normalised))
    return found


def _partner_recipients(uuids: list[str]) -> set[str]:
    """Partners that received the person's data through the API (the audit log's
    partner rows about them)."""
    rows = AuditLog.objects.filter(target__in=uuids, actor_kind="partner").exclude(actor_label="")
    return set(rows.values_list("actor_label", flat=True).distinct())


def _scrub_merges(profile_ids: list[int], uuids: list[str]) -> None:
    """Merge records keep that a merge happened, not the fields it overwrote; timelines
    of people once merged with this one and separated again lose this one's name."""
    ProfileMerge.objects.filter(survivor_id__in=profile_ids).update(survivor_before={}, reason="")
    ProfileMerge.objects.filter(merged_id__in=profile_ids).update(reason="")
    undone = ProfileMerge.objects.filter(models.Q(survivor_id__in=profile_ids) | models.Q(merged_id__in=profile_ids),
                                         undone_at__isnull=False)
    others = {pk for pair in undone.values_list("survivor_id", "merged_id") for pk in pair} - set(profile_ids)
    merge_types = [ProfileActivity.Type.MERGED, ProfileActivity.Type.UNMERGED]
    for entry in ProfileActivity.objects.filter(profile_id__in=others, type__in=merge_types):
        params = dict(entry.params)
        for role in ("merged", "survivor"):
            if params.get(role) in uuids:
                params[f"{role}_name"] = params[role]
        if params != entry.params:
            ProfileActivity.objects.filter(pk=entry.pk).update(params=params)


def _scrub_admin_log(profile_ids: list[int], request_ids: list[int], profile_uuid) -> None:
    """The admin's history shows an object's name as it was (the customer's name, the
    request's requester): replace it with the public id."""
    for model, pks in ((Profile, profile_ids), (DSR, request_ids)):
        LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(model),
                                object_id__in=[str(pk) for pk in pks]).update(object_repr=str(profile_uuid))


def _ledger_pseudonymise(profile_ids: list[int]) -> int:
    """Clear the evidence of the person's ledger rows and keep the rows as proof. On
    PostgreSQL the ledger's trigger allows this only while cdp.erasure is on in this
    transaction; it is switched off again straight after."""
    on_postgres = connection.vendor == "postgresql"
    with transaction.atomic():
        if on_postgres:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL cdp.erasure = 'on'")
        count = ConsentRecord.objects.filter(profile_id__in=profile_ids).pseudonymise(
            evidence_ip=None, evidence_user_agent="", evidence_reference="", evidence_text="")
        if on_postgres:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL cdp.erasure = 'off'")
    return count
