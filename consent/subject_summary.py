"""The readable summary that goes with a data subject's access export: the same data as
the machine-readable file, for the person to read — in Chinese or English (their
language), labels instead of codes, times in the display time zone (settings.TIME_ZONE,
Asia/Shanghai), not UTC. One self-contained HTML page, printable."""
import datetime
from collections import Counter

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from profiles.activity import CONSENT_SOURCE_LABELS, CONSENT_STATUS_LABELS, summarise
from profiles.event_labels import EventLabels, source_label
from profiles.models import Gender, IdentityKind, LifecycleStage, ProfileActivity, TagSource

from .models import Channel, DataSubjectRequest, Purpose

LANGUAGES = ("zh-hans", "en")
# The machine-readable file's sections, named for the reader beside their file names.
SECTION_LABELS = {
    "identities": gettext_lazy("How we recognise you"), "events": gettext_lazy("What you did"),
    "tags": gettext_lazy("Tags we gave you"), "consent_history": gettext_lazy("Your consent"),
    "do_not_contact": gettext_lazy("Do not contact:"), "data_requests": gettext_lazy("Your requests"),
    "activity": gettext_lazy("Changes to your record"), "partner_disclosures": gettext_lazy("Shared with partners"),
}
LATEST_EVENTS = 20  # the full list is in the machine-readable file


def subject_language(profile) -> str:
    """The person's language when staff do not choose: Chinese unless they live abroad."""
    country = (getattr(profile, "country", "") or "").strip().upper()
    return "en" if country and country not in ("CN", "中国", "CHINA") else "zh-hans"


def subject_summary_html(export: dict, *, language: str) -> bytes:
    """The summary of `export` (consent.requests.profile_data_export's dict) in `language`."""
    language = language if language in LANGUAGES else "zh-hans"
    with translation.override(language), timezone.override(settings.TIME_ZONE):
        context = _context(export, language)
        return render_to_string("consent/subject_summary.html", context).encode("utf-8")


def _when(value) -> str:
    moment = parse_datetime(value) if isinstance(value, str) else value
    if moment is None:
        return value or ""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, datetime.timezone.utc)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def _context(export: dict, language: str) -> dict:
    english = language == "en"
    labels = EventLabels.load()
    profile = export.get("profile") or {}
    kinds = {kind.code: str(kind) for kind in IdentityKind.objects.all()}
    purposes = {p.code: (p.name_en if english else p.name_zh) or p.code for p in Purpose.objects.all()}
    genders = dict(Gender.choices)
    basics = [
        (_("Name"), profile.get("name")),
        (_("Gender"), genders.get(profile.get("gender"), profile.get("gender"))),
        (_("Birth date"), (parse_date(profile.get("birth_date") or "") or profile.get("birth_date") or "")),
        (_("Mobile phone"), profile.get("phone")),
        (_("Email"), profile.get("email")),
        (_("Region"), " ".join(p for p in (profile.get("country"), profile.get("province"), profile.get("city")) if p)),
        (_("Occupation"), profile.get("occupation")),
        (_("Customer since"), _when(profile.get("created_at"))),
        (_("Lifecycle stage"), dict(LifecycleStage.choices).get((profile.get("metrics") or {}).get("lifecycle_stage"), "")),
    ]
    events = export.get("events") or []
    counts = Counter(e.get("event_name") for e in events)
    firsts, lasts = {}, {}
    for event in events:  # in time order
        firsts.setdefault(event.get("event_name"), event.get("occurred_at"))
        lasts[event.get("event_name")] = event.get("occurred_at")
    activity_types = dict(ProfileActivity.Type.choices)
    dsr_kinds, dsr_statuses = dict(DataSubjectRequest.Kind.choices), dict(DataSubjectRequest.Status.choices)
    sections_in_file = [(name, str(SECTION_LABELS.get(name, "")), len(rows)) for name, rows in export.items()
                        if isinstance(rows, list) and name.isidentifier()]
    return {
        "language": language,
        "title": _("A copy of your personal information: summary"),
        "exported_at": _when(export.get("exported_at")),
        "time_zone": settings.TIME_ZONE,
        "customer": export.get("customer"),
        "basics": [(label, value) for label, value in basics if value],
        "traits": sorted((profile.get("traits") or {}).items()),
        "identities": [(kinds.get(i.get("kind"), i.get("kind")), i.get("value"), _when(i.get("created_at")))
                       for i in export.get("identities") or []],
        "event_counts": [(labels.event(name), count, _when(firsts[name]), _when(lasts[name]))
                         for name, count in counts.most_common()],
        "latest_events": [
            (_when(e.get("occurred_at")), labels.event(e.get("event_name")),
             " · ".join(f"{k}: {v}" for k, v in labels.properties(e.get("event_name"), e.get("properties") or {}).items()
                        if v and not isinstance(v, dict | list)),
             e.get("amount"), source_label(e.get("source") or ""))
            for e in reversed(events[-LATEST_EVENTS:])
        ],
        "event_total": len(events),
        "tags": [(t.get("tag_name"), str(TagSource(t["source"]).label) if t.get("source") in TagSource.values
                  else t.get("source"), _when(t.get("assigned_at"))) for t in export.get("tags") or []],
        "consent": [(purposes.get(r.get("purpose"), r.get("purpose")),
                     CONSENT_STATUS_LABELS.get(r.get("consent_status"), r.get("consent_status")),
                     _when(r.get("captured_at")), CONSENT_SOURCE_LABELS.get(r.get("source"), r.get("source")),
                     r.get("evidence") or "") for r in export.get("consent_history") or []],
        "do_not_contact": [(dict(Channel.choices).get(d.get("channel"), d.get("channel")), _when(d.get("created_at")),
                            _when(d.get("lifted_at")) if d.get("lifted_at") else "") for d in export.get("do_not_contact") or []],
        "requests": [(dsr_kinds.get(r.get("kind"), r.get("kind")), dsr_statuses.get(r.get("status"), r.get("status")),
                      _when(r.get("received_at")), _when(r.get("completed_at")) if r.get("completed_at") else "")
                     for r in export.get("data_requests") or []],
        "disclosures": [(d.get("partner"), _when(d.get("occurred_at")), d.get("records"))
                        for d in export.get("partner_disclosures") or []],
        "activity": [(_when(a.get("occurred_at")), activity_types.get(a.get("type"), a.get("type")),
                      summarise(ProfileActivity(type=a.get("type"), params=a.get("details") or {})))
                     for a in (export.get("activity") or [])[-LATEST_EVENTS:][::-1]],
        "activity_total": len(export.get("activity") or []),
        "sections_in_file": sections_in_file,
        "merges": len(export.get("merges") or []),
    }
