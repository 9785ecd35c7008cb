"""Hostile JSON never becomes a 500: numbers that overflow, NaN/Infinity, NUL bytes,
lone surrogates and absurd nesting are refused with a 400 in the stable error shape,
on SQLite and PostgreSQL, and nothing of the request is stored."""
import pytest
from django.test import Client
from django.urls import reverse

from profiles.models import Event, Profile
from tests.factories import ProfileFactory

from .test_api_fixtures import *  # noqa: F401,F403
from .test_api_fixtures import assert_error, client_with, key_for

pytestmark = pytest.mark.django_db
EVENTS = reverse("api-events-batch")
PROFILES = reverse("api-profiles")
WHEN = "2026-11-27T20:15:00+08:00"


def raw_event(**fields) -> str:
    """One event as JSON text, with `fields` spliced in as raw JSON."""
    base = {"external_id": '"e-1"', "name": '"order"', "occurred_at": f'"{WHEN}"',
            "identities": '[{"kind": "crm_id", "value": "C-1"}]'}
    base.update(fields)
    return '{"events": [{' + ", ".join(f'"{k}": {v}' for k, v in base.items()) + "}]}"


DEEP = '{"a": ' * 1000 + "1" + "}" * 1000
HOSTILE_EVENTS = {
    "amount 9e99": raw_event(amount="9e99"),
    "1e400 in a property": raw_event(properties='{"price": 1e400}'),
    "NaN in a property": raw_event(properties='{"price": NaN}'),
    "-Infinity amount": raw_event(amount="-Infinity"),
    "NUL in a property value": raw_event(properties='{"note": "a\\u0000b"}'),
    "NUL in a property key": raw_event(properties='{"no\\u0000te": "x"}'),
    "NUL in an external id": raw_event(external_id='"e\\u00001"'),
    "NUL in a source": raw_event(source='"po\\u0000s"'),
    "NUL in an identity value": raw_event(identities='[{"kind": "crm_id", "value": "C\\u00001"}]'),
    "lone surrogate in a property": raw_event(properties='{"note": "\\ud800"}'),
    "lone surrogate in a key": raw_event(properties='{"\\udfff": 1}'),
    "nested 1,000 deep": raw_event(properties=DEEP),
}


@pytest.mark.parametrize("body", HOSTILE_EVENTS.values(), ids=HOSTILE_EVENTS.keys())
def test_hostile_event_batches_are_refused_with_a_400(api, body):
    # given a batch whose JSON carries something no database column can hold
    # when it is sent
    response = api.post(EVENTS, body, content_type="application/json")
    # then it is refused as bad input, in the stable error shape, and nothing is stored
    assert response.status_code == 400, response.content
    assert_error(response, 400, response.json()["code"])
    assert not Event.objects.exists()
    assert not Profile.objects.exists()


def test_an_amount_too_large_for_its_column_names_the_field(api):
    # given an amount with more digits than the column holds
    # when it is sent
    response = api.post(EVENTS, raw_event(amount="9000000000000"), content_type="application/json")
    # then the batch is refused with the reason, not a server error
    body = assert_error(response, 400, "invalid")
    assert body["fields"] == {"events.0.amount": ["At most 12 digits before the point and 2 after."]}


def test_a_lone_surrogate_in_a_trait_is_refused(api):
    # given a customer upsert with a lone surrogate in a trait
    body = '{"identities": [{"kind": "crm_id", "value": "C-9"}], "traits": {"nick": "\\udc00x"}}'
    # when it is sent
    response = api.post(PROFILES, body, content_type="application/json")
    # then it is a 400 naming the problem, and nobody is created
    body = assert_error(response, 400, "invalid_json")
    assert "surrogate" in body["message"] or "代理" in body["message"]
    assert not Profile.objects.exists()


def test_the_error_says_what_is_wrong_in_the_callers_language(partner):
    # given a Chinese-speaking caller
    client = client_with(key_for(partner))
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key_for(partner)}", HTTP_ACCEPT_LANGUAGE="zh-hans")
    # when it sends a NaN
    response = client.post(EVENTS, raw_event(amount="NaN"), content_type="application/json")
    # then the message is in Chinese
    body = assert_error(response, 400, "invalid_json")
    assert "NaN" in body["message"] and any("\u4e00" <= ch <= "\u9fff" for ch in body["message"])


@pytest.mark.parametrize("url", [
    "/api/v1/profiles/?city=%00", "/api/v1/profiles/lookup/?crm_id=a%00b", "/api/v1/segments/a%00b/",
])
def test_nul_bytes_in_urls_are_refused(api, url):
    # given a URL carrying a NUL byte
    # when it is called
    response = api.get(url)
    # then it is a 4xx in the stable error shape, not a database error
    assert 400 <= response.status_code < 500, response.content
    assert set(response.json()) == {"code", "message", "fields"}


def test_a_customer_with_a_nul_in_a_field_is_refused(api):
    ProfileFactory()
    body = '{"identities": [{"kind": "crm_id", "value": "C-9"}], "name": "Li\\u0000 Na"}'
    response = api.post(PROFILES, body, content_type="application/json")
    assert_error(response, 400, "invalid_json")
    assert Profile.objects.count() == 1


def boom(request):
    raise RuntimeError("unexpected")


urlpatterns = [  # for the test below: an API route that fails in a way nobody planned
    __import__("django.urls").urls.path("api/v1/boom/", boom),
]


@pytest.mark.urls(__name__)
def test_any_unexpected_error_under_the_api_is_json_not_html(partner):
    # given an API route that raises something unexpected
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    # when it is called
    response = client.get("/api/v1/boom/")
    # then the partner gets the stable JSON error, not Django's HTML page
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert_error(response, 500, "server_error")
