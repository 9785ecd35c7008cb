"""Statements per partner API call: a single upsert reads what rarely changes (the key and
its partner, the partner's purposes, identity kinds, the kinds erased people had) from
caches, looks up the owners of its identities, and ends with one statement that writes the
customer (new: with its identities; known: the change), its timeline row, the audit row and
the partner's link to the customer, and reads what the answer needs."""
import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from cdp.models import AuditLog, Partner, PartnerCustomer
from consent.models import Purpose
from consent.requests import data_request_create, profile_erase
from consent.services import consent_record
from profiles.api.access import contactable_ids
from profiles.models import Profile
from tests.factories import IdentityFactory, ProfileFactory, TagFactory, tag_on

from .test_api_fixtures import *  # noqa: F401,F403
from .test_api_fixtures import assert_error, client_with, key_for

pytestmark = pytest.mark.django_db
UPSERT = reverse("api-profiles")
SYSTEM = Actor.system("test")
# On PostgreSQL the closing statement is one; elsewhere each of its writes and its read is one.
POSTGRES = connection.vendor == "postgresql"


def statements(captured) -> list[str]:
    """What a request sends; the savepoints are the test's own transaction."""
    return [q["sql"] for q in captured if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def warm(api):
    """The first call of a process fills the caches; the budget is for every later one."""
    assert api.post(UPSERT, {"identities": [{"kind": "crm_id", "value": "WARM"}]}, format="json").status_code == 201


def test_a_new_customer_costs_five_statements(api, partner):
    warm(api)
    with CaptureQueriesContext(connection) as captured:
        response = api.post(UPSERT, {"identities": [{"kind": "crm_id", "value": "CRM-N"}],
                                     "email": "N@Example.com", "city": "上海"}, format="json")
    assert response.status_code == 201, response.content
    # the owners' look-up, the closing statement (the customer, its identities, its timeline
    # entry, the link, the audit row); elsewhere those five writes one by one
    assert len(statements(captured)) <= (2 if POSTGRES else 6), "\n".join(statements(captured))
    profile = Profile.objects.get(uuid=response.json()["profile"]["id"])
    assert set(profile.identities.values_list("kind_id", "value")) == {("crm_id", "CRM-N"),
                                                                       ("email", "n@example.com")}
    assert PartnerCustomer.objects.filter(partner=partner, profile_uuid=profile.uuid).exists()
    audit = AuditLog.objects.get(action="api_call", target=str(profile.uuid))
    assert (audit.partner, audit.details["status"], audit.details["route"]) == (partner, 201, "api/v1/profiles/")
    body = response.json()["profile"]
    assert (body["tags"], body["contact_withheld"], body["email"]) == ([], True, "")
    assert list(profile.activities.values_list("type", flat=True)) == ["created"]
    assert (profile.city, profile.email) == ("上海", "n@example.com")


@pytest.mark.parametrize("basis, withheld", [("consent", True), ("contract", False), ("legitimate_interest", False)])
def test_a_new_customer_answers_with_contact_data_exactly_when_the_consent_rules_allow_it(basis, withheld):
    # given a partner registered for a purpose of this lawful basis (and one that needs consent)
    Purpose.objects.create(code="service_notices", name_zh="服务通知", name_en="Service notices", channel="sms",
                           lawful_basis=basis, pipl_category="personalisation")
    partner = Partner.objects.create(name="Courier", code="courier", purposes=["email_marketing", "service_notices"])
    client = client_with(key_for(partner))
    # when it creates a customer (the answer is computed without reading the new row back)
    response = client.post(UPSERT, {"identities": [{"kind": "crm_id", "value": f"CRM-{basis}"}],
                                    "phone": "13800138000"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()["profile"]
    # then it says what the consent rules say of the stored customer
    profile = Profile.objects.get(uuid=body["id"])
    assert (profile.pk not in contactable_ids(partner, [profile.pk])) is withheld
    assert (body["contact_withheld"], body["phone"]) == (withheld, "" if withheld else "+8613800138000")


def test_a_known_customer_costs_four_statements_and_gets_its_tags_and_contact_data(api, partner):
    # given a customer who consented to the partner's purpose and has two tags
    known = ProfileFactory(city="北京", email="k@example.com")
    IdentityFactory(profile=known, kind_id="crm_id", value="CRM-K")
    consent_record(profile=known, purpose_code="email_marketing", status="granted", source="admin", actor=SYSTEM,
                   captured_at=timezone.now() - datetime.timedelta(minutes=1))
    for slug in ("vip", "sneakers"):
        tag_on(known, TagFactory(slug=slug))
    warm(api)
    # when the partner sends a change
    with CaptureQueriesContext(connection) as captured:
        response = api.post(UPSERT, {"identities": [{"kind": "crm_id", "value": "CRM-K"}], "city": "上海"},
                            format="json")
    # then: the owners' look-up, the closing statement (the change, its timeline entry, the link,
    # the audit row, the read); elsewhere those five one by one
    assert response.status_code == 200, response.content
    assert len(statements(captured)) <= (2 if POSTGRES else 6), "\n".join(statements(captured))
    body = response.json()["profile"]
    assert (body["city"], body["tags"], body["email"], body["contact_withheld"]) == (
        "上海", ["sneakers", "vip"], "k@example.com", False)
    known.refresh_from_db()
    assert known.city == "上海"
    assert list(known.activities.filter(type="edited").values_list("params", flat=True)) == [
        {"changes": {"city": ["北京", "上海"]}}]
    assert AuditLog.objects.filter(action="api_call", target=str(known.uuid), details__status=200).count() == 1
    assert PartnerCustomer.objects.filter(partner=partner, profile_uuid=known.uuid).count() == 1
    # and a customer without consent or tags answers without contact data
    other = ProfileFactory(email="o@example.com")
    IdentityFactory(profile=other, kind_id="crm_id", value="CRM-O")
    body = api.post(UPSERT, {"identities": [{"kind": "crm_id", "value": "CRM-O"}]}, format="json").json()["profile"]
    assert (body["tags"], body["email"], body["contact_withheld"]) == ([], "", True)


def test_the_kinds_erased_people_had_are_read_again_once_someone_is_erased(api, staff_user):
    # given a customer upserted while nobody was erased: no look-up of suppressed identifiers
    warm(api)
    with CaptureQueriesContext(connection) as captured:
        created = api.post(UPSERT, {"identities": [{"kind": "phone", "value": "139 0000 0888"}]}, format="json")
    assert created.status_code == 201
    assert not [sql for sql in statements(captured) if "consent_suppression" in sql]
    # when that person is erased
    profile = Profile.objects.get(uuid=created.json()["profile"]["id"])
    request = data_request_create(kind="erasure", requester="by phone", contact="13900000888", profile=profile,
                                  actor=SYSTEM)
    profile_erase(profile=profile, request=request, actor=Actor.staff(staff_user))
    # then their phone cannot come back, though the kinds were cached before the erasure
    assert_error(api.post(UPSERT, {"identities": [{"kind": "phone", "value": "13900000888"}]}, format="json"),
                 422, "suppressed")
    # and other kinds still cost no look-up
    with CaptureQueriesContext(connection) as captured:
        assert api.post(UPSERT, {"identities": [{"kind": "crm_id", "value": "CRM-E"}]},
                        format="json").status_code == 201
    assert not [sql for sql in statements(captured) if "consent_suppression" in sql]
