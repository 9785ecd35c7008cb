"""Partner access policy: a partner reads only its own customers and the members of
segments shared with it (unless its key has profiles:read_all), and gets contact data
(phone, email, identities) only where consent for a purpose it is registered for counts."""
import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from cdp.models import PartnerCustomer, Scope
from consent.models import DoNotContact
from consent.services import consent_record
from segments.models import Segment, SegmentMembership
from tests.factories import IdentityFactory, ProfileFactory

from .test_api_fixtures import *  # noqa: F401,F403
from .test_api_fixtures import assert_error, client_with, key_for

pytestmark = pytest.mark.django_db
STAFF = Actor.system("test")
PROFILES = reverse("api-profiles")


def grant(profile, purpose="email_marketing"):
    consent_record(profile=profile, purpose_code=purpose, status="granted", source="admin", actor=STAFF,
                   captured_at=timezone.now() - datetime.timedelta(minutes=1))


def customer(phone, email):
    profile = ProfileFactory(phone=phone, email=email)
    IdentityFactory(profile=profile, kind_id="phone", value=phone)
    IdentityFactory(profile=profile, kind_id="wechat_openid", value=f"o-{phone}")
    return profile


@pytest.fixture
def shared(partner):
    segment = Segment.objects.create(name="上海女性", slug="sh-women", kind="static")
    segment.shared_with.add(partner)
    return segment


@pytest.fixture
def reader(partner):
    """A key with profiles:read only."""
    return client_with(key_for(partner, [Scope.PROFILES_READ]))


def test_the_segment_filter_gives_no_contact_data_without_consent_for_a_registered_purpose(reader, shared):
    # given members of a shared segment: one consented to email marketing (the partner's
    # registered purpose), one to SMS only (not registered), one silent, one blocked on email
    consenting, sms_only, silent, blocked = (customer(f"+861390000000{i}", f"m{i}@example.com") for i in range(4))
    for profile in (consenting, sms_only, silent, blocked):
        SegmentMembership.objects.create(segment=shared, profile=profile)
    grant(consenting)
    grant(sms_only, "sms_marketing")
    grant(blocked)
    DoNotContact.objects.create(profile=blocked, channel="email", reason="complaint")
    # when the partner lists the segment's customers with profiles:read only
    body = reader.get(PROFILES, {"segment": "sh-women"}).json()
    # then it sees them all, but contact data only of the one whose registered purpose counts
    rows = {row["id"]: row for row in body["results"]}
    assert set(rows) == {str(p.uuid) for p in (consenting, sms_only, silent, blocked)}
    shown = rows[str(consenting.uuid)]
    assert (shown["phone"], shown["email"], shown["contact_withheld"]) == (consenting.phone, consenting.email, False)
    assert {i["kind"] for i in shown["identities"]} == {"phone", "wechat_openid"}
    for profile in (sms_only, silent, blocked):
        row = rows[str(profile.uuid)]
        assert (row["phone"], row["email"], row["identities"], row["contact_withheld"]) == ("", "", [], True), row


def test_the_same_customer_read_by_id_or_lookup_follows_the_same_rule(reader, shared):
    silent = customer("+8613900000010", "s@example.com")
    SegmentMembership.objects.create(segment=shared, profile=silent)
    for response in (reader.get(reverse("api-profile", args=[silent.uuid])),
                     reader.get(reverse("api-profile-lookup"), {"phone": "13900000010"})):
        assert response.status_code == 200, response.content
        assert (response.json()["phone"], response.json()["identities"]) == ("", [])


def test_members_for_a_purpose_the_partner_is_not_registered_for_are_refused(api, shared):
    # given a consenting member of a shared segment
    member = customer("+8613900000020", "c@example.com")
    SegmentMembership.objects.create(segment=shared, profile=member)
    grant(member, "sms_marketing")
    # when the partner declares a purpose it is not registered for
    members = api.get(reverse("api-segment-members", args=["sh-women"]), {"purpose": "sms_marketing"})
    check = api.get(reverse("api-segment-membership", args=["sh-women", member.uuid]), {"purpose": "sms_marketing"})
    # then it is refused: the purpose is not the partner's to declare
    assert_error(members, 403, "purpose_not_registered")
    assert_error(check, 403, "purpose_not_registered")


def test_customers_outside_the_reach_do_not_exist_for_the_partner(reader, partner):
    # given a customer the partner never sent and that is in no segment shared with it
    stranger = customer("+8613900000030", "x@example.com")
    grant(stranger)
    # when the partner reads it by id, by identity, in the list, or its tags and consent
    # then each answers as if there were no such customer
    assert_error(reader.get(reverse("api-profile", args=[stranger.uuid])), 404, "not_found")
    assert_error(reader.get(reverse("api-profile-lookup"), {"phone": "13900000030"}), 404, "not_found")
    assert_error(reader.get(reverse("api-profile-tags", args=[stranger.uuid])), 404, "not_found")
    assert reader.get(PROFILES).json()["results"] == []
    consent_reader = client_with(key_for(partner, [Scope.CONSENT_READ]))
    assert_error(consent_reader.get(reverse("api-profile-consent", args=[stranger.uuid])), 404, "not_found")
    # and a key with profiles:read_all reaches it (contact data still by consent)
    wide = client_with(key_for(partner, [Scope.PROFILES_READ, Scope.PROFILES_READ_ALL]))
    response = wide.get(reverse("api-profile", args=[stranger.uuid]))
    assert response.status_code == 200 and response.json()["phone"] == stranger.phone


def test_customers_the_partner_sent_are_its_own(partner):
    # given customers the partner upserted and sent an event for, and one it never sent
    writer = client_with(key_for(partner, [Scope.PROFILES_WRITE, Scope.EVENTS_WRITE]))
    known = customer("+8613900000040", "k@example.com")
    IdentityFactory(profile=known, kind_id="crm_id", value="CRM-40")
    customer("+8613900000041", "n@example.com")
    upserted = writer.post(PROFILES, {"identities": [{"kind": "crm_id", "value": "CRM-NEW"}]}, format="json").json()
    sent = writer.post(reverse("api-events-batch"), {"events": [{
        "external_id": "e1", "name": "order", "occurred_at": "2026-11-27T20:15:00+08:00",
        "identities": [{"kind": "crm_id", "value": "CRM-40"}]}]}, format="json").json()
    assert sent["accepted"] == 1
    # when it lists customers
    rows = client_with(key_for(partner, [Scope.PROFILES_READ])).get(PROFILES).json()["results"]
    # then it finds exactly those it sent, with the identities it sent itself though no consent counts
    assert {row["id"] for row in rows} == {upserted["profile"]["id"], str(known.uuid)}
    mine = next(row for row in rows if row["id"] == upserted["profile"]["id"])
    assert (mine["identities"], mine["contact_withheld"]) == ([{"kind": "crm_id", "value": "CRM-NEW"}], True)
    assert PartnerCustomer.objects.filter(partner=partner).count() == 2


def test_a_partner_with_no_registered_purpose_never_gets_contact_data(other_partner, shared):
    # given a member who consented to everything, and a partner registered for nothing
    shared.shared_with.add(other_partner)
    member = customer("+8613900000050", "e@example.com")
    SegmentMembership.objects.create(segment=shared, profile=member)
    for purpose in ("email_marketing", "sms_marketing"):
        grant(member, purpose)
    # when it reads the member with every scope
    row = client_with(key_for(other_partner)).get(reverse("api-profile", args=[member.uuid])).json()
    # then the contact data is withheld
    assert (row["phone"], row["email"], row["identities"], row["contact_withheld"]) == ("", "", [], True)


def test_staff_register_a_partner_for_purposes_in_the_admin(client, staff_user, other_partner):
    # given a partner registered for nothing
    client.force_login(staff_user)
    url = reverse("admin:cdp_partner_change", args=[other_partner.pk])
    assert "email_marketing" in client.get(url).text
    # when staff tick two purposes
    response = client.post(url, {"name": other_partner.name, "code": other_partner.code, "contact": "",
                                 "is_active": "on", "requests_per_minute": "",
                                 "purposes": ["email_marketing", "sms_marketing"],
                                 "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"})
    # then the partner is registered for them
    assert response.status_code == 302, response.content
    other_partner.refresh_from_db()
    assert other_partner.purposes == ["email_marketing", "sms_marketing"]


def test_the_migration_makes_earlier_senders_customers_their_own(partner, other_partner):
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    from tests.factories import EventFactory

    # given customers the partner sent before PartnerCustomer existed: by an event from a
    # sub-source, by an identity it added; and one another partner sent
    by_event, by_identity, theirs = ProfileFactory(), ProfileFactory(), ProfileFactory()
    EventFactory(profile=by_event, source="shop/pos", external_id="x1")
    IdentityFactory(profile=by_identity, kind_id="crm_id", value="S-1", source="shop")
    EventFactory(profile=theirs, source="shopx", external_id="x2")
    # when the data migration runs (twice: it must add nothing the second time)
    backfill = importlib.import_module("cdp.migrations.0006_partner_customers_backfill").backfill
    editor = SimpleNamespace(connection=connection)  # what RunPython's function uses of its schema editor
    backfill(apps, editor)
    backfill(apps, editor)
    # then exactly the partner's customers are linked to it
    linked = set(PartnerCustomer.objects.filter(partner=partner).values_list("profile_uuid", flat=True))
    assert linked == {by_event.uuid, by_identity.uuid}
    assert not PartnerCustomer.objects.filter(partner=other_partner).exists()
