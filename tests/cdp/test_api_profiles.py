"""Profiles over the partner API: upsert by identities, fetch, lookup, list, tags."""
import pytest
from django.urls import reverse

from cdp.models import AuditLog
from profiles.models import Identity, Profile, ProfileActivity, ProfileStatus, ProfileTag, TagKind
from profiles.registry import identity_kinds
from tests.factories import IdentityFactory, ProfileFactory, TagFactory

from .test_api_fixtures import *  # noqa: F401,F403
from .test_api_fixtures import assert_error

pytestmark = pytest.mark.django_db
UPSERT = reverse("api-profiles")


def test_upsert_creates_a_customer_with_normalised_identities(api, partner):
    response = api.post(UPSERT, {
        "identities": [{"kind": "phone", "value": "138 0013 8000"}, {"kind": "crm_id", "value": "CRM-1"}],
        "name": " 张伟 ", "gender": "男", "city": "上海市", "email": "Zhang.Wei@Example.COM",
    }, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] is True
    profile = Profile.objects.get(uuid=body["profile"]["id"])
    assert (profile.name, profile.gender, profile.city, profile.phone, profile.email) == (
        "张伟", "male", "上海", "+8613800138000", "zhang.wei@example.com")
    assert set(profile.identities.values_list("kind_id", "value")) == {
        ("phone", "+8613800138000"), ("crm_id", "CRM-1"), ("email", "zhang.wei@example.com")}
    assert "id" in body["profile"] and "pk" not in body["profile"]
    audit = AuditLog.objects.get(action="api_call")
    assert (audit.partner, audit.target, audit.details["status"], audit.details["method"]) == (
        partner, str(profile.uuid), 201, "POST")
    assert audit.details["route"] == "api/v1/profiles/"
    assert ProfileActivity.objects.filter(profile=profile, type="created", actor_kind="partner").exists()


def test_upsert_finds_the_customer_by_any_identity_and_updates_fields(api):
    profile = ProfileFactory(city="北京")
    IdentityFactory(profile=profile, kind_id="crm_id", value="CRM-9")
    response = api.post(UPSERT, {"identities": [{"kind": "crm_id", "value": "CRM-9"},
                                                {"kind": "wechat_openid", "value": "oAbC"}], "city": "杭州"},
                        format="json")
    assert response.status_code == 200, response.content
    assert response.json()["created"] is False
    profile.refresh_from_db()
    assert profile.city == "杭州"
    assert Identity.objects.filter(profile=profile, kind_id="wechat_openid", value="oAbC").exists()
    assert Profile.objects.count() == 1


def test_upsert_merges_customers_whose_identities_arrive_together(api):
    older = ProfileFactory(phone="+8613800000001")
    IdentityFactory(profile=older, kind_id="phone", value="+8613800000001")
    newer = ProfileFactory(phone="")
    IdentityFactory(profile=newer, kind_id="crm_id", value="CRM-2")
    response = api.post(UPSERT, {"identities": [{"kind": "phone", "value": "13800000001"},
                                                {"kind": "crm_id", "value": "CRM-2"}]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["profile"]["id"] == str(older.uuid)
    assert response.json()["merged"] == [str(newer.uuid)]
    newer.refresh_from_db()
    assert newer.status == ProfileStatus.MERGED


@pytest.mark.parametrize("field, value", [
    ("status", "erased"), ("order_count", 99), ("lifecycle_stage", "active"), ("id", 5), ("uuid", "x"),
    ("total_spent", "1000"), ("merged_into", None), ("created_at", "2020-01-01T00:00:00Z"),
])
def test_no_mass_assignment_of_undeclared_fields(api, field, value):
    profile = ProfileFactory()
    IdentityFactory(profile=profile, kind_id="crm_id", value="CRM-3")
    response = api.post(UPSERT, {"identities": [{"kind": "crm_id", "value": "CRM-3"}], field: value}, format="json")
    body = assert_error(response, 400, "unknown_field")
    assert field in body["fields"]
    response = api.patch(reverse("api-profile", args=[profile.uuid]), {field: value}, format="json")
    assert_error(response, 400, "unknown_field")
    profile.refresh_from_db()
    assert profile.status == ProfileStatus.ACTIVE and profile.order_count == 0


def test_bad_values_come_back_with_their_paths(api):
    response = api.post(UPSERT, {"identities": [{"kind": "phone", "value": "12"}, {"kind": "nope", "value": "x"}],
                                 "birth_date": "02/03/1995"}, format="json")
    # well-formed (the schema allows these strings) but not acceptable values: 422
    body = assert_error(response, 422, "invalid")
    assert set(body["fields"]) >= {"identities.0.value", "identities.1.kind"}
    response = api.post(UPSERT, {"name": "无标识"}, format="json")
    assert_error(response, 422, "no_identity")
    response = api.post(UPSERT, {"identities": [{"kind": "crm_id", "value": "C"}], "birth_date": "02/03/1995"},
                        format="json")
    body = assert_error(response, 422, "invalid_date")
    assert "birth_date" in body["fields"]


def test_fetch_by_uuid_and_merged_profiles_point_at_their_survivor(api):
    survivor = ProfileFactory()
    merged = ProfileFactory(status=ProfileStatus.MERGED, merged_into=survivor)
    assert api.get(reverse("api-profile", args=[survivor.uuid])).json()["id"] == str(survivor.uuid)
    body = api.get(reverse("api-profile", args=[merged.uuid])).json()
    assert (body["status"], body["merged_into"]) == ("merged", str(survivor.uuid))
    assert_error(api.patch(reverse("api-profile", args=[merged.uuid]), {"city": "x"}, format="json"),
                 409, "profile_merged")
    erased = ProfileFactory(status=ProfileStatus.ERASED)
    assert_error(api.get(reverse("api-profile", args=[erased.uuid])), 404, "not_found")
    assert_error(api.get("/api/v1/profiles/not-a-uuid/"), 404, "not_found")


def test_lookup_by_any_identity_normalised(api):
    profile = ProfileFactory()
    IdentityFactory(profile=profile, kind_id="phone", value="+8613800138000")
    IdentityFactory(profile=profile, kind_id="wechat_unionid", value="uNiOn")
    url = reverse("api-profile-lookup")
    assert api.get(url, {"phone": "0086-138 0013 8000"}).json()["id"] == str(profile.uuid)
    assert api.get(url, {"wechat_unionid": "uNiOn"}).json()["id"] == str(profile.uuid)
    assert api.get(url, {"kind": "wechat_unionid", "value": "uNiOn"}).json()["id"] == str(profile.uuid)
    assert_error(api.get(url, {"wechat_unionid": "union"}), 404, "not_found")
    assert_error(api.get(url, {"phone": "abc"}), 422, "invalid_phone")
    assert_error(api.get(url), 422, "one_identity_required")
    assert_error(api.get(url, {"phone": "13800138000", "email": "a@b.cn"}), 422, "one_identity_required")
    assert_error(api.get(url, {"kind": "shoe_size", "value": "42"}), 422, "unknown_identity_kind")


def test_list_filters_and_cursor_pagination(api, django_assert_max_num_queries):
    tag = TagFactory(slug="vip")
    shanghai = [ProfileFactory(city="上海", lifecycle_stage="active") for _ in range(3)]
    ProfileFactory(city="北京")
    ProfileTag.objects.create(profile=shanghai[0], tag=tag)
    url = reverse("api-profiles")
    with django_assert_max_num_queries(8):
        page = api.get(url, {"city": "上海市", "page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    rest = api.get(page["next"]).json()
    seen = {p["id"] for p in page["results"] + rest["results"]}
    assert seen == {str(p.uuid) for p in shanghai}
    assert [p["id"] for p in api.get(url, {"tag": "vip"}).json()["results"]] == [str(shanghai[0].uuid)]
    assert len(api.get(url, {"lifecycle_stage": "active"}).json()["results"]) == 3
    assert len(api.get(url, {"updated_since": "2100-01-01T00:00:00Z"}).json()["results"]) == 0
    assert_error(api.get(url, {"lifecycle_stage": "zombie"}), 400, "invalid_choice")
    assert_error(api.get(url, {"cursor": "garbage"}), 422, "invalid_cursor")
    assert_error(api.get(url, {"page_size": "ten"}), 400, "invalid")
    assert_error(api.get(url, {"updated_since": ""}), 400, "blank")
    assert len(api.get(url, {"page_size": 100000}).json()["results"]) == 4  # capped, not an error


def test_page_size_is_capped(api, settings):
    settings.CDP_API_MAX_PAGE_SIZE = 2
    ProfileFactory.create_batch(3)
    assert len(api.get(reverse("api-profiles"), {"page_size": 50}).json()["results"]) == 2


def test_tags_assign_list_and_remove(api):
    profile = ProfileFactory()
    tag = TagFactory(slug="launch-2026")
    url = reverse("api-profile-tags", args=[profile.uuid])
    assert api.post(url, {"tag": "launch-2026", "reason": "came"}, format="json").json() == {
        "tag": "launch-2026", "added": True}
    assert api.post(url, {"tag": "launch-2026"}, format="json").json()["added"] is False
    listed = api.get(url).json()
    assert [(t["tag"], t["source"], t["reason"]) for t in listed] == [("launch-2026", "api", "came")]
    assert api.delete(reverse("api-profile-tag", args=[profile.uuid, "launch-2026"])).status_code == 204
    assert api.delete(reverse("api-profile-tag", args=[profile.uuid, "launch-2026"])).status_code == 204
    assert not ProfileTag.objects.filter(profile=profile, tag=tag).exists()
    assert_error(api.post(url, {"tag": "nope"}, format="json"), 422, "unknown_tag")
    TagFactory(slug="computed", kind=TagKind.INTEREST)
    assert_error(api.post(url, {"tag": "computed"}, format="json"), 409, "tag_not_manual")
    TagFactory(slug="old", is_active=False)
    assert_error(api.post(url, {"tag": "old"}, format="json"), 422, "tag_retired")


def test_the_taxonomy_is_a_tree_with_tags(api):
    TagFactory(slug="sneakers", name="喜欢运动鞋")
    roots = api.get(reverse("api-tags")).json()
    assert {root["code"] for root in roots} >= {"basic", "behavioural", "interest", "value"}
    interest = next(root for root in roots if root["code"] == "interest")
    assert "sneakers" in [tag["slug"] for tag in interest["tags"]]


@pytest.mark.parametrize("known", [False, True])
def test_an_upsert_costs_a_fixed_handful_of_queries(api, known, django_assert_max_num_queries):
    """The key and the identity kinds (both cached a while), the suppression check, one
    look-up of the owners that locks the customer, the writes, the partner's link to the
    customer and the audit row in one transaction, the tags for the answer, and whether
    its contact data may be shown (the partner's purposes, the customer's consent)."""
    if known:
        IdentityFactory(profile=ProfileFactory(city="北京"), kind_id="crm_id", value="CRM-Q")
    body = {"identities": [{"kind": "crm_id", "value": "CRM-Q"}, {"kind": "email", "value": "q@example.com"}],
            "city": "上海"}
    identity_kinds()  # read once per 30 s per process, not per call
    with django_assert_max_num_queries(14):
        response = api.post(UPSERT, body, format="json")
    assert response.status_code == (200 if known else 201), response.content
    assert sorted(i["kind"] for i in response.json()["profile"]["identities"]) == ["crm_id", "email"]
    assert AuditLog.objects.filter(action="api_call").count() == 1


def test_a_failed_upsert_is_rolled_back_and_audited_with_its_error(api, partner):
    shared_tablet = ProfileFactory()
    IdentityFactory(profile=shared_tablet, kind_id="device_id", value="ipad-1")
    response = api.post(UPSERT, {"identities": [{"kind": "crm_id", "value": "CRM-NEW"},
                                                {"kind": "device_id", "value": "IPAD-1"}]}, format="json")
    assert_error(response, 422, "identity_taken")
    assert not Identity.objects.filter(kind_id="crm_id", value="CRM-NEW").exists()
    assert Profile.objects.count() == 1
    audit = AuditLog.objects.get(action="api_call")
    assert (audit.partner, audit.details["status"]) == (partner, 422)


def test_an_upsert_that_changes_nothing_writes_nothing_but_its_audit_row(api):
    profile = ProfileFactory(city="上海")
    IdentityFactory(profile=profile, kind_id="crm_id", value="CRM-S")
    updated_at = profile.updated_at
    response = api.post(UPSERT, {"identities": [{"kind": "crm_id", "value": "CRM-S"}], "city": "上海"}, format="json")
    assert response.status_code == 200, response.content
    profile.refresh_from_db()
    assert profile.updated_at == updated_at
    assert not ProfileActivity.objects.filter(profile=profile, type="edited").exists()
    assert AuditLog.objects.filter(action="api_call", target=str(profile.uuid)).count() == 1


@pytest.mark.postgres
def test_concurrent_upserts_of_one_person_make_one_customer_and_lose_no_field(seeded_transactional_db, partner):
    """Four calls about the same new person at once: one creates the customer, the others
    wait for its lock or retry after losing the race for its identities, and update it."""
    from tests.concurrency import run_together

    from .test_api_fixtures import client_with, key_for

    key = key_for(partner)
    fields = ["name", "city", "occupation", "province"]
    values = {"name": "王芳", "city": "上海", "occupation": "设计师", "province": "上海"}
    statuses = []

    def send(field):
        response = client_with(key).post(UPSERT, {
            "identities": [{"kind": "crm_id", "value": "CRM-RACE"}, {"kind": "email", "value": "race@example.com"}],
            field: values[field]}, format="json")
        statuses.append(response.status_code)

    run_together(send, fields)
    assert sorted(statuses) == [200, 200, 200, 201]
    profile = Profile.objects.get()
    assert {field: getattr(profile, field) for field in fields} == values
    assert Identity.objects.filter(profile=profile).count() == 2
    assert AuditLog.objects.filter(action="api_call").count() == len(fields)


@pytest.mark.parametrize("value", ["   ", "\x1e"])
def test_an_identity_of_spaces_is_a_value_the_platform_refuses_not_a_malformed_request(api, value):
    # given an identity value the schema allows (one character or more) that normalises to nothing
    body = {"identities": [{"kind": "crm_id", "value": value}]}
    # when it is upserted
    response = api.post(UPSERT, body, format="json")
    # then it is a 422 naming the value, and nobody is created
    body = assert_error(response, 422, "empty_identity")
    assert list(body["fields"]) == ["identities.0.value"]
    assert not Profile.objects.exists()


def test_lengths_count_the_spaces_as_sent(api):
    # given a name one character over its documented maxLength (200), the extra one a space
    body = {"identities": [{"kind": "crm_id", "value": "LEN-1"}], "name": " " + "名" * 200}
    # when it is upserted
    response = api.post(UPSERT, body, format="json")
    # then it breaks the schema: a 400, not a customer with the name trimmed
    assert assert_error(response, 400, "max_length")["fields"] == {"name": [
        "Ensure this field has no more than 200 characters."]}
    assert not Profile.objects.exists()
