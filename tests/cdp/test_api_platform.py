"""Cross-cutting behaviour of the partner API: the permission matrix, the error shape,
limits (body size, page size, rate), auditing, the schema and docs, garbage input."""
import json
import time

import pytest

from cdp.api.keys import KEY_CACHE_SECONDS
from cdp.models import AuditLog, Partner, PartnerCustomer, Scope
from segments.models import Segment
from tests.factories import IdentityFactory, ProfileFactory, TagFactory

from .test_api_fixtures import *  # noqa: F401,F403
from .test_api_fixtures import assert_error, client_with, key_for

pytestmark = pytest.mark.django_db
UUID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def world(partner, other_partner):
    """A customer, a tag, a segment shared with `partner` and one shared only with the other."""
    profile = ProfileFactory()
    IdentityFactory(profile=profile, kind_id="crm_id", value="C1")
    PartnerCustomer.objects.create(partner=partner, profile_uuid=profile.uuid)  # one of the partner's customers
    TagFactory(slug="vip")
    mine = Segment.objects.create(name="mine", slug="mine", kind="static")
    mine.shared_with.add(partner)
    theirs = Segment.objects.create(name="theirs", slug="theirs", kind="static")
    theirs.shared_with.add(other_partner)
    return {"profile": str(profile.uuid)}


# (method, url template, scope needed, body, whether the route names a segment)
ROUTES = [
    ("get", "/api/v1/profiles/", Scope.PROFILES_READ, None, False),
    ("post", "/api/v1/profiles/", Scope.PROFILES_WRITE, {"identities": [{"kind": "crm_id", "value": "C1"}]}, False),
    ("get", "/api/v1/profiles/lookup/?crm_id=C1", Scope.PROFILES_READ, None, False),
    ("get", "/api/v1/profiles/{profile}/", Scope.PROFILES_READ, None, False),
    ("patch", "/api/v1/profiles/{profile}/", Scope.PROFILES_WRITE, {"city": "上海"}, False),
    ("get", "/api/v1/profiles/{profile}/tags/", Scope.PROFILES_READ, None, False),
    ("get", "/api/v1/profiles/{profile}/recommendations/", Scope.PROFILES_READ, None, False),
    ("post", "/api/v1/profiles/{profile}/tags/", Scope.TAGS_WRITE, {"tag": "vip"}, False),
    ("delete", "/api/v1/profiles/{profile}/tags/vip/", Scope.TAGS_WRITE, None, False),
    ("get", "/api/v1/tags/", Scope.PROFILES_READ, None, False),
    ("post", "/api/v1/events/batch/", Scope.EVENTS_WRITE, {"events": []}, False),
    ("get", "/api/v1/segments/", Scope.SEGMENTS_READ, None, False),
    ("get", "/api/v1/segments/parse/?q=上海+女性", Scope.SEGMENTS_READ, None, False),
    ("get", "/api/v1/segments/{segment}/", Scope.SEGMENTS_READ, None, True),
    ("get", "/api/v1/segments/{segment}/members/?purpose=email_marketing", Scope.SEGMENTS_READ, None, True),
    ("get", "/api/v1/segments/{segment}/members/{profile}/?purpose=email_marketing", Scope.SEGMENTS_READ, None, True),
    ("get", "/api/v1/purposes/", Scope.CONSENT_READ, None, False),
    ("get", "/api/v1/profiles/{profile}/consent/", Scope.CONSENT_READ, None, False),
    ("post", "/api/v1/profiles/{profile}/consent/", Scope.CONSENT_WRITE,
     {"purpose": "email_marketing", "status": "granted"}, False),
    ("get", "/api/v1/profiles/{profile}/consent/history/", Scope.CONSENT_READ, None, False),
]
IDS = [f"{m} {u.split('?')[0]}" for m, u, *_ in ROUTES]
IMPORT_OPERATIONS = [("get", "/api/v1/imports/"), ("post", "/api/v1/imports/"), ("get", "/api/v1/imports/{id}/"),
                     ("post", "/api/v1/imports/{id}/parts/"), ("post", "/api/v1/imports/{id}/start/"),
                     ("get", "/api/v1/imports/{id}/failed-rows/")]


def call(client, method, url, body, world, segment="mine"):
    url = url.format(segment=segment, **world)
    return getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)


@pytest.mark.parametrize("method, url, scope, body, names_segment", ROUTES, ids=IDS)
def test_permission_matrix(world, partner, revoked_key, expired_key, method, url, scope, body, names_segment):
    assert_error(call(client_with(None), method, url, body, world), 401, "not_authenticated")
    assert_error(call(client_with(revoked_key), method, url, body, world), 401, "key_revoked")
    assert_error(call(client_with(expired_key), method, url, body, world), 401, "key_expired")
    others = [s for s in Scope.values if s != scope and not (
        # the taxonomy and tag lists are readable with tags:write too; purposes with any consent or segments scope
        (url in ("/api/v1/tags/", "/api/v1/profiles/{profile}/tags/") and method == "get" and s == Scope.TAGS_WRITE)
        or (url == "/api/v1/purposes/" and s in (Scope.CONSENT_WRITE, Scope.SEGMENTS_READ)))]
    assert_error(call(client_with(key_for(partner, others)), method, url, body, world), 403, "missing_scope")
    allowed = client_with(key_for(partner, [scope]))
    response = call(allowed, method, url, body, world)
    assert response.status_code in (200, 201, 204), response.content
    if names_segment:
        assert_error(call(allowed, method, url, body, world, segment="theirs"), 404, "not_found")


def test_every_call_is_audited_with_partner_key_route_and_status(world, partner):
    key = key_for(partner, [Scope.PROFILES_READ])
    client_with(key).get(f"/api/v1/profiles/{world['profile']}/")
    client_with(key).post("/api/v1/events/batch/", {"events": []}, format="json")
    client_with(None).get("/api/v1/tags/")
    rows = list(AuditLog.objects.filter(action="api_call").order_by("id"))
    assert [(r.partner, r.target, r.details["status"]) for r in rows] == [
        (partner, world["profile"], 200), (partner, "", 403)]
    # calls nobody is authenticated for are counted per address and minute (test_api_keys)
    assert AuditLog.objects.filter(action="api_auth_failed").count() == 1
    assert rows[0].details["key"] == key.split(".")[0]
    assert rows[0].details["route"] == "api/v1/profiles/<uuid:profile_id>/"


def test_bodies_over_the_limit_are_refused_with_413(api, settings):
    settings.CDP_API_MAX_BODY_BYTES = 1000
    body = json.dumps({"events": [{"external_id": "x" * 2000}]})
    assert_error(api.post("/api/v1/events/batch/", body, content_type="application/json"), 413, "body_too_large")


def test_the_rate_limit_is_per_partner(partner, other_partner, settings, monkeypatch):
    settings.CDP_API_REQUESTS_PER_MINUTE = 3
    clock = [time.time() // 60 * 60 + 1]  # the start of a rate window, which the calls below stay in
    monkeypatch.setattr(time, "time", lambda: clock[0])
    mine, theirs = client_with(key_for(partner)), client_with(key_for(partner))
    for _ in range(3):
        assert mine.get("/api/v1/tags/").status_code == 200
    response = theirs.get("/api/v1/tags/")  # another key of the same partner shares the budget
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1
    assert client_with(key_for(other_partner)).get("/api/v1/tags/").status_code == 200
    Partner.objects.filter(pk=partner.pk).update(requests_per_minute=10)
    clock[0] += KEY_CACHE_SECONDS + 1  # the partner row cached with the key has expired by then
    assert mine.get("/api/v1/tags/").status_code == 200


def test_unknown_routes_and_methods_answer_in_the_error_shape(api):
    assert_error(api.get("/api/v1/nothing/"), 404, "not_found")
    assert_error(api.get("/api/v2/profiles/"), 404, "not_found")
    assert_error(api.put("/api/v1/tags/", {}, format="json"), 405, "method_not_allowed")


def test_messages_follow_accept_language(partner):
    client = client_with(None)
    assert "API" in client.get("/api/v1/tags/", HTTP_ACCEPT_LANGUAGE="en").json()["message"]
    chinese = client_with(None)
    chinese.defaults.pop("HTTP_ACCEPT_LANGUAGE")
    assert chinese.get("/api/v1/tags/").status_code == 401


GARBAGE = [b"", b"null", b"[]", b"\"text\"", b"123", b"{\"identities\": null}", b"{\"identities\": [null]}",
           b"{\"identities\": [[]]}", b"{\"identities\": {\"kind\": 1}}", b"{\"traits\": []}", b"{\"name\": {}}",
           b"{\"identities\": [{\"kind\": \"phone\", \"value\": 13800138000}]}", b"\xff\xfe", b"{\"a\":" * 50,
           b"{\"identities\": [{\"kind\": \"crm_id\", \"value\": \"\\u0000\"}]}",
           b"{\"events\": [{\"identities\": [{\"kind\": \"phone\", \"value\": [1]}]}]}",
           b"{\"events\": [{\"external_id\": \"a\", \"name\": \"order\", \"occurred_at\": 5}]}",
           b"{\"tag\": null}", b"{\"purpose\": [], \"status\": {}}", b"{\"birth_date\": 1e400}"]


@pytest.mark.parametrize("url", [
    "/api/v1/profiles/", "/api/v1/events/batch/", "/api/v1/profiles/{profile}/", "/api/v1/profiles/{profile}/tags/",
    "/api/v1/profiles/{profile}/consent/",
])
def test_garbage_never_becomes_a_500(api, world, url):
    url = url.format(**world)
    for body in GARBAGE:
        for method in ("post", "patch"):
            response = getattr(api, method)(url, body, content_type="application/json")
            assert response.status_code < 500, (body, response.content)
            assert set(response.json()) >= {"code", "message"} or response.status_code in (200, 201), body
    for query in ("?cursor=%00", "?page_size=-1", "?updated_since=yesterday", "?phone=%ff", "?segment=",
                  "?city=" + "x" * 5000):
        assert api.get("/api/v1/profiles/" + query).status_code < 500
        assert api.get("/api/v1/profiles/lookup/" + query).status_code < 500


def test_the_schema_and_docs_are_served_with_examples_for_every_operation(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    # The import routes' permissions are checked in tests/profiles/test_import_api.py (multipart bodies).
    assert len(operations) == len(ROUTES) + len(IMPORT_OPERATIONS)
    for path, method, op in operations:
        success = next(code for code in op["responses"] if code.startswith("2"))
        body = op["responses"][success].get("content", {})
        content = body.get("application/json", {})
        has_example = "examples" in content or success == "204" or (body and not content)  # a CSV download
        assert has_example, (path, method)
        assert op.get("security") == [{"ApiKey": []}], (path, method)
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert client.get("/api/docs/").status_code == 200


def test_responses_conform_to_the_schema(api, world):
    """Validate real responses of the main routes against their OpenAPI schema."""
    import jsonschema

    schema = client_with(None).get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]

    def validate(path, method, status, body):
        op = schema["paths"][path][method]
        spec = op["responses"][str(status)]["content"]["application/json"]["schema"]
        document = {"components": {"schemas": components}, **spec}
        jsonschema.validate(body, _nullable_to_types(document))

    created = api.post("/api/v1/profiles/", {"identities": [{"kind": "crm_id", "value": "S1"}], "name": "x"},
                       format="json")
    validate("/api/v1/profiles/", "post", 201, created.json())
    validate("/api/v1/profiles/", "get", 200, api.get("/api/v1/profiles/").json())
    validate("/api/v1/profiles/{profile_id}/", "get", 200, api.get(f"/api/v1/profiles/{world['profile']}/").json())
    batch = api.post("/api/v1/events/batch/", {"events": [
        {"external_id": "1", "name": "order", "occurred_at": "2026-11-27T20:15:00+08:00",
         "identities": [{"kind": "crm_id", "value": "S1"}]},
        {"external_id": "2", "name": "no-such-event", "occurred_at": "2026-11-27T20:15:00+08:00",
         "identities": [{"kind": "crm_id", "value": "S1"}]}]}, format="json")
    validate("/api/v1/events/batch/", "post", 200, batch.json())
    validate("/api/v1/tags/", "get", 200, api.get("/api/v1/tags/").json())
    validate("/api/v1/segments/", "get", 200, api.get("/api/v1/segments/").json())
    validate("/api/v1/profiles/{profile_id}/consent/", "get", 200,
             api.get(f"/api/v1/profiles/{world['profile']}/consent/").json())
    validate("/api/v1/profiles/", "post", 400, api.post("/api/v1/profiles/", {}, format="json").json())


def _nullable_to_types(node):
    """OpenAPI 3.0's `nullable: true` → JSON Schema's type list, recursively."""
    if isinstance(node, dict):
        node = {key: _nullable_to_types(value) for key, value in node.items()}
        if node.pop("nullable", False):
            if "type" in node:
                node["type"] = [node["type"], "null"]
            else:
                node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_nullable_to_types(item) for item in node]
    return node


def test_calls_that_never_reach_a_view_are_audited_too(api, settings):
    settings.CDP_API_MAX_BODY_BYTES = 10
    api.post("/api/v1/events/batch/", {"events": []}, format="json")
    api.get("/api/v1/nothing/")
    assert [(r.details["status"], r.details["route"]) for r in AuditLog.objects.order_by("id")] == [
        (413, "/api/v1/events/batch/"), (404, "/api/v1/nothing/")]


def test_head_needs_the_same_scope_as_get(partner, world):
    client = client_with(key_for(partner, [Scope.EVENTS_WRITE]))
    assert client.head(f"/api/v1/profiles/{world['profile']}/").status_code == 403
