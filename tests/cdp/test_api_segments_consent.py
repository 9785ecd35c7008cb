"""Segments shared with a partner, members for a purpose (consent-filtered), consent
routes and suppression of erased people."""
import datetime

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from consent.models import ConsentRecord, DoNotContact
from consent.services import consent_record
from cdp.actors import Actor
from cdp.models import Partner
from profiles.models import Suppression
from profiles.services.suppression import identifier_digest
from segments.models import Segment, SegmentMembership
from tests.factories import IdentityFactory, ProfileFactory

from .test_api_fixtures import *  # noqa: F401,F403
from .test_api_fixtures import assert_error

pytestmark = pytest.mark.django_db
STAFF = Actor.system("test")


@pytest.fixture
def segment(partner):
    segment = Segment.objects.create(name="上海女性", slug="sh-women", kind="static")
    segment.shared_with.add(partner)
    return segment


def grant(profile, purpose="email_marketing", status="granted"):
    consent_record(profile=profile, purpose_code=purpose, status=status, source="admin", actor=STAFF,
                   captured_at=timezone.now() - datetime.timedelta(minutes=1))


def test_a_partner_lists_only_segments_shared_with_it(api, segment, other_partner):
    hidden = Segment.objects.create(name="secret", slug="secret", kind="static")
    hidden.shared_with.add(other_partner)
    assert [s["slug"] for s in api.get(reverse("api-segments")).json()["results"]] == ["sh-women"]
    assert api.get(reverse("api-segment", args=["sh-women"])).json()["name"] == "上海女性"
    for url in (reverse("api-segment", args=["secret"]), reverse("api-segment-members", args=["secret"]),
                reverse("api-segment", args=["missing"])):
        assert_error(api.get(url, {"purpose": "email_marketing"}), 404, "not_found")
    assert_error(api.get(reverse("api-profiles"), {"segment": "secret"}), 422, "unknown_segment")


def test_members_need_a_purpose_and_only_consenting_ones_come_back(api, segment, partner):
    consenting, silent, withdrawn, blocked = (ProfileFactory() for _ in range(4))
    for profile in (consenting, silent, withdrawn, blocked):
        SegmentMembership.objects.create(segment=segment, profile=profile)
    grant(consenting)
    grant(withdrawn)
    grant(withdrawn, status="withdrawn")
    grant(blocked)
    DoNotContact.objects.create(profile=blocked, channel="email", reason="complaint")
    url = reverse("api-segment-members", args=["sh-women"])
    assert_error(api.get(url), 400, "purpose_required")
    assert_error(api.get(url, {"purpose": "nope"}), 403, "purpose_not_registered")
    assert_error(api.get(url, {"purpose": "no pe"}), 400, "invalid")
    body = api.get(url, {"purpose": "email_marketing"}).json()
    assert [m["id"] for m in body["results"]] == [str(consenting.uuid)]
    assert set(body["results"][0]) == {"id", "name", "phone", "email", "identities"}
    assert_error(api.get(url, {"purpose": "sms_marketing"}), 403, "purpose_not_registered")
    Partner.objects.filter(pk=partner.pk).update(purposes=["email_marketing", "sms_marketing"])
    cache.clear()  # the partner is cached with its key for a few seconds
    assert api.get(url, {"purpose": "sms_marketing"}).json()["results"] == []

    member = reverse("api-segment-membership", args=["sh-women", consenting.uuid])
    assert api.get(member, {"purpose": "email_marketing"}).json()["member"] is True
    assert api.get(member, {"purpose": "sms_marketing"}).json() == {"member": False, "since": None}
    assert api.get(reverse("api-segment-membership", args=["sh-women", silent.uuid]),
                   {"purpose": "email_marketing"}).json()["member"] is False
    assert_error(api.get(member), 400, "purpose_required")


def test_members_are_cursor_paginated(api, segment):
    profiles = ProfileFactory.create_batch(5)
    for profile in profiles:
        SegmentMembership.objects.create(segment=segment, profile=profile)
        grant(profile)
    url = reverse("api-segment-members", args=["sh-women"])
    first = api.get(url, {"purpose": "email_marketing", "page_size": 3}).json()
    second = api.get(first["next"]).json()
    assert {m["id"] for m in first["results"] + second["results"]} == {str(p.uuid) for p in profiles}
    assert second["next"] is None


def test_record_a_withdrawal_and_read_state_and_history(api):
    profile = ProfileFactory()
    grant(profile)
    url = reverse("api-profile-consent", args=[profile.uuid])
    response = api.post(url, {"purpose": "email_marketing", "status": "withdrawn",
                              "evidence": {"channel": "email", "reference": "unsubscribe link"}}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["source"]) == ("withdrawn", "api")
    record = ConsentRecord.objects.filter(profile=profile).order_by("-id").first()
    assert (record.actor_kind, record.actor_label, record.evidence_reference) == (
        "partner", "Shop backend", "unsubscribe link")
    states = {row["purpose"]: row for row in api.get(url).json()}
    assert states["email_marketing"]["status"] == "withdrawn"
    assert states["email_marketing"]["allowed"] is False
    history = api.get(reverse("api-profile-consent-history", args=[profile.uuid])).json()["results"]
    assert [h["status"] for h in history] == ["withdrawn", "granted"]
    assert api.get(reverse("api-purposes")).status_code == 200


def test_consent_input_errors(api):
    profile = ProfileFactory()
    url = reverse("api-profile-consent", args=[profile.uuid])
    assert_error(api.post(url, {"purpose": "nope", "status": "granted"}, format="json"), 422, "unknown_purpose")
    assert_error(api.post(url, {"purpose": "email_marketing", "status": "maybe"}, format="json"), 400, "invalid_choice")
    assert_error(api.post(url, {"purpose": "email_marketing", "status": "granted", "evidence": {"photo": 1}},
                          format="json"), 400, "unknown_field")
    future = (timezone.now() + datetime.timedelta(days=1)).isoformat()
    assert_error(api.post(url, {"purpose": "email_marketing", "status": "granted", "captured_at": future},
                          format="json"), 422, "captured_in_future")
    for bad in ({"captured_at": "2026-11-28 10:00"}, {"captured_at": "2026-11-28T10:00:00"}, {"guardian_consent": "yes"},
                {"notice_version": "2"}, {"notice_version": 10**12}, {"evidence": {"ip": 5}}):
        assert_error(api.post(url, {"purpose": "email_marketing", "status": "granted", **bad}, format="json"),
                     400, "invalid" if "notice_version" not in bad or bad["notice_version"] == "2" else "max_value")
    assert_error(api.post(url, {"purpose": "email_marketing", "status": "granted", "evidence": {"ip": "1.2.3"}},
                          format="json"), 422, "invalid_ip")


def test_identities_of_erased_people_are_refused(api):
    Suppression.objects.create(digest=identifier_digest("phone", "+8613900000777"), kind="phone")
    response = api.post(reverse("api-profiles"), {"identities": [{"kind": "phone", "value": "139 0000 0777"}]},
                        format="json")
    assert_error(response, 422, "suppressed")
    body = api.post(reverse("api-events-batch"), {"events": [
        {"external_id": "s", "name": "order", "occurred_at": "2026-11-27T20:15:00+08:00",
         "identities": [{"kind": "phone", "value": "13900000777"}]}]}, format="json").json()
    assert body["results"][0]["error"]["code"] == "suppressed"
    profile = ProfileFactory()
    IdentityFactory(profile=profile, kind_id="crm_id", value="CRM-S")
    response = api.patch(reverse("api-profile", args=[profile.uuid]),
                         {"identities": [{"kind": "phone", "value": "13900000777"}]}, format="json")
    assert_error(response, 422, "suppressed")
