"""Batch event ingest: per-item results, idempotency, profile resolution in bulk."""
import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from profiles.models import Event, Identity, Profile, ProfileActivity
from tests.factories import IdentityFactory, ProfileFactory

from .test_api_fixtures import *  # noqa: F401,F403
from .test_api_fixtures import assert_error

pytestmark = pytest.mark.django_db
URL = reverse("api-events-batch")
WHEN = "2026-11-27T20:15:00+08:00"


def event(external_id, **fields):
    return {"external_id": external_id, "name": "order", "occurred_at": WHEN, **fields}


def phone(value):
    return [{"kind": "phone", "value": value}]


def test_a_batch_resolves_known_and_new_customers_and_reports_each_event(api, partner):
    known = ProfileFactory()
    IdentityFactory(profile=known, kind_id="crm_id", value="CRM-1")
    events = [
        event("o-1", identities=[{"kind": "crm_id", "value": "CRM-1"}], amount="299.00", properties={"sku": "A"}),
        event("o-2", identities=phone("139 0000 0001")),
        event("o-3", identities=phone("+86 13900000001") + [{"kind": "email", "value": "New@Example.com"}]),
        event("o-4", profile=str(known.uuid), name="page_view"),
        event("o-5", identities=phone("12")),
        event("o-6", name="pageview", identities=phone("13900000002")),
        event("o-1", identities=[{"kind": "crm_id", "value": "CRM-1"}]),
    ]
    response = api.post(URL, {"events": events}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["accepted", "accepted", "accepted", "accepted", "rejected", "rejected", "duplicate"]
    assert (body["accepted"], body["duplicates"], body["rejected"], body["profiles_created"]) == (4, 1, 2, 1)
    results = body["results"]
    assert results[0]["profile"] == results[3]["profile"] == str(known.uuid)
    assert results[1]["profile"] == results[2]["profile"] != str(known.uuid)
    assert results[4]["error"]["code"] == "invalid_phone" and "identities.0.value" in results[4]["error"]["fields"]
    assert results[5]["error"]["code"] == "unknown_event"
    new = Profile.objects.get(uuid=results[1]["profile"])
    assert (new.phone, new.email) == ("+8613900000001", "new@example.com")
    assert set(new.identities.values_list("kind_id", "value")) == {("phone", "+8613900000001"),
                                                                   ("email", "new@example.com")}
    assert ProfileActivity.objects.filter(profile=new, type="created").count() == 1
    order = Event.objects.get(external_id="o-1")
    assert (order.source, order.amount, order.properties, order.profile_id) == ("shop", 299, {"sku": "A"}, known.pk)
    assert order.occurred_at == datetime.datetime(2026, 11, 27, 12, 15, tzinfo=datetime.UTC)


def test_resending_a_batch_is_idempotent(api):
    events = [event(f"e-{i}", identities=phone(f"1390000{i:04d}")) for i in range(20)]
    first = api.post(URL, {"events": events}, format="json").json()
    again = api.post(URL, {"events": events}, format="json").json()
    assert (first["accepted"], first["profiles_created"]) == (20, 20)
    assert (again["accepted"], again["duplicates"], again["profiles_created"]) == (0, 20, 0)
    assert [r["profile"] for r in again["results"]] == [r["profile"] for r in first["results"]]
    assert Event.objects.count() == 20 and Profile.objects.count() == 20


def test_partners_cannot_collide_on_external_ids(api, other_partner):
    from .test_api_fixtures import client_with, key_for

    api.post(URL, {"events": [event("same", identities=phone("13900000009"))]}, format="json")
    other = client_with(key_for(other_partner)).post(
        URL, {"events": [event("same", identities=phone("13900000009"), source="pos")]}, format="json").json()
    assert other["accepted"] == 1
    assert set(Event.objects.values_list("source", flat=True)) == {"shop", "agency/pos"}


def test_new_identities_join_the_profile_an_event_resolved_to(api):
    known = ProfileFactory()
    IdentityFactory(profile=known, kind_id="crm_id", value="CRM-7")
    body = api.post(URL, {"events": [
        event("a", identities=[{"kind": "crm_id", "value": "CRM-7"}, {"kind": "wechat_openid", "value": "oX"}]),
        event("b", identities=[{"kind": "wechat_openid", "value": "oX"}]),
    ]}, format="json").json()
    assert {r["profile"] for r in body["results"]} == {str(known.uuid)}
    assert Identity.objects.get(kind_id="wechat_openid", value="oX").profile_id == known.pk
    assert body["profiles_created"] == 0


def test_events_naming_two_customers_merge_them(api):
    a, b = ProfileFactory(), ProfileFactory()
    IdentityFactory(profile=a, kind_id="crm_id", value="CRM-A")
    IdentityFactory(profile=b, kind_id="phone", value="+8613900000111")
    body = api.post(URL, {"events": [
        event("m", identities=[{"kind": "crm_id", "value": "CRM-A"}, {"kind": "phone", "value": "13900000111"}]),
        event("n", identities=phone("13900000111")),
    ]}, format="json").json()
    assert body["accepted"] == 2
    assert {r["profile"] for r in body["results"]} == {str(a.uuid)}
    assert Event.objects.filter(profile=a).count() == 2


def test_a_shared_device_id_alone_does_not_link_people(api):
    tablet = ProfileFactory()
    IdentityFactory(profile=tablet, kind_id="device_id", value="shared-tablet")
    body = api.post(URL, {"events": [
        event("d1", identities=[{"kind": "device_id", "value": "SHARED-TABLET"}, {"kind": "phone", "value": "13900000222"}]),
        event("d2", identities=[{"kind": "device_id", "value": "shared-tablet"}]),
    ]}, format="json").json()
    first, second = body["results"]
    assert first["profile"] != str(tablet.uuid)
    assert second["profile"] == str(tablet.uuid)


@pytest.mark.parametrize("bad, code, path", [
    ({"occurred_at": "1999-01-01T00:00:00Z"}, "out_of_range", "occurred_at"),
    ({"name": "pageview"}, "unknown_event", "name"),
    ({"profile": "6f1c2a7e-3b1d-4c55-9d0e-2f8a4b6c9e01"}, "profile_not_found", "profile"),
    ({"identities": [{"kind": "shoe", "value": "42"}]}, "unknown_identity_kind", "identities.0.kind"),
    ({"identities": [{"kind": "phone", "value": "12"}]}, "invalid_phone", "identities.0.value"),
    ({"identities": []}, "no_identity", "identities"),
])
def test_events_the_platform_cannot_take_are_rejected_alone(api, bad, code, path):
    body = api.post(URL, {"events": [event("ok", identities=phone("13900000333")),
                                     {**event("bad", identities=phone("13900000444")), **bad}]}, format="json").json()
    ok, rejected = body["results"]
    assert ok["status"] == "accepted"
    assert rejected["status"] == "rejected"
    assert rejected["error"]["code"] == code, rejected
    assert path in rejected["error"]["fields"]


@pytest.mark.parametrize("bad, code, path", [
    ({"occurred_at": "yesterday"}, "invalid_datetime", "occurred_at"),
    ({"occurred_at": "2026-11-27T20:15:00"}, "invalid_datetime", "occurred_at"),
    ({"amount": "12.345"}, "invalid", "amount"),
    ({"amount": "NaN"}, "invalid", "amount"),
    ({"amount": 19.9}, "invalid", "amount"),
    ({"amount": True}, "invalid", "amount"),
    ({"amount": "1000000000000"}, "invalid", "amount"),
    ({"properties": [1, 2]}, "invalid", "properties"),
    ({"profile": "nope"}, "invalid", "profile"),
    ({"identities": "13800138000"}, "invalid", "identities"),
    ({"identities": [{"kind": "phone"}]}, "invalid", "identities.0"),
    ({"external_id": "x" * 129}, "too_long", "external_id"),
    ({"external_id": " " + "x" * 128}, "too_long", "external_id"),
    ({"external_id": {"a": 1}}, "invalid", "external_id"),
    ({"external_id": 17}, "invalid", "external_id"),
    ({"external_id": ""}, "required", "external_id"),
    ({"name": None}, "required", "name"),
    ({"status": "accepted"}, "unknown_field", "status"),
])
def test_an_event_not_of_the_documented_shape_refuses_the_batch(api, bad, code, path):
    # given a batch with one event that does not match the documented schema (a client bug)
    events = [event("ok", identities=phone("13900000333")), {**event("bad", identities=phone("13900000444")), **bad}]
    # when it is sent
    response = api.post(URL, {"events": events}, format="json")
    # then the whole batch is a 400 naming the event and field, and nothing is stored
    body = assert_error(response, 400, code)
    assert f"events.1.{path}" in body["fields"], body
    assert not Event.objects.exists()


def test_an_event_that_is_not_an_object_refuses_the_batch(api):
    body = assert_error(api.post(URL, {"events": [event("a", identities=phone("13900000333")), "x"]}, format="json"),
                        400, "invalid")
    assert list(body["fields"]) == ["events.1"]


def test_too_many_events_and_bad_bodies(api, settings):
    settings.CDP_API_MAX_BATCH_EVENTS = 3
    assert_error(api.post(URL, {"events": [event(str(i), identities=phone("13900000555")) for i in range(4)]},
                          format="json"), 400, "too_many_events")
    assert_error(api.post(URL, {"events": "x"}, format="json"), 400, "invalid")
    assert_error(api.post(URL, [1, 2], format="json"), 400, "invalid")
    assert_error(api.post(URL, "{not json", content_type="application/json"), 400, "parse_error")
    assert_error(api.post(URL, "a=b", content_type="text/plain"), 415, "unsupported_media_type")


def test_future_events_are_refused(api):
    soon = (timezone.now() + datetime.timedelta(days=3)).isoformat()
    body = api.post(URL, {"events": [event("f", occurred_at=soon, identities=phone("13900000666"))]}, format="json")
    assert body.json()["results"][0]["error"]["code"] == "out_of_range"


def test_ingest_costs_a_bounded_number_of_queries(api, django_assert_max_num_queries):
    known = [ProfileFactory() for _ in range(5)]
    for i, profile in enumerate(known):
        IdentityFactory(profile=profile, kind_id="crm_id", value=f"K-{i}")
    events = [event(f"q-{i}", identities=[{"kind": "crm_id", "value": f"K-{i % 5}"}]) for i in range(100)]
    events += [event(f"n-{i}", identities=phone(f"1370000{i:04d}")) for i in range(100)]
    with django_assert_max_num_queries(20):
        body = api.post(URL, {"events": events}, format="json").json()
    assert (body["accepted"], body["profiles_created"]) == (200, 100)


@pytest.mark.postgres
def test_concurrent_batches_naming_the_same_new_people_create_each_person_once(seeded_transactional_db, partner):
    """Two partners' servers send overlapping batches at the same moment: every person is
    created once, every event stored once, and no request fails."""
    from tests.concurrency import run_together

    from .test_api_fixtures import client_with, key_for

    key = key_for(partner)
    events = [event(f"c-{i}", identities=phone(f"1360000{i % 50:04d}")) for i in range(200)]
    statuses = []

    def send(order):
        statuses.append(client_with(key).post(URL, {"events": events[::order]}, format="json").status_code)

    run_together(send, [1, -1])
    assert statuses == [200, 200]
    assert Event.objects.count() == 200
    assert Identity.objects.filter(kind_id="phone").count() == 50
    assert Profile.objects.count() == 50


def test_odd_utc_offsets_are_stored_in_utc(api):
    """Python accepts offsets up to ±23:59, PostgreSQL only ±15:59 (found by schemathesis)."""
    body = api.post(URL, {"events": [event("tz", occurred_at="2026-11-27T20:15:00-19:05",
                                           identities=phone("13900000888"))]}, format="json").json()
    assert body["accepted"] == 1
    assert Event.objects.get(external_id="tz").occurred_at == datetime.datetime(2026, 11, 28, 15, 20, tzinfo=datetime.UTC)
    assert api.get(reverse("api-profiles"), {"updated_since": "1485-12-23T07:50:13-19:05"}).status_code == 200


def test_a_batch_is_audited_once_with_the_number_of_events_accepted(api, partner):
    from cdp.models import AuditLog

    events = [event("a-1", identities=phone("13900000801")), event("a-2", identities=phone("13900000802")),
              event("a-2", identities=phone("13900000802"))]
    assert api.post(URL, {"events": events}, format="json").status_code == 200
    audit = AuditLog.objects.get(action="api_call")
    assert (audit.partner, audit.count, audit.details["status"]) == (partner, 2, 200)
