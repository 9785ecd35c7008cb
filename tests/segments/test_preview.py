import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from cdp.sql import is_timeout, statement_timeout
from profiles.models import ProfileStatus
from segments.selectors import segment_preview
from tests.factories import EventFactory, ProfileFactory, TagFactory, tag_on

pytestmark = pytest.mark.django_db
SHANGHAI = {"field": "city", "op": "eq", "value": "上海"}


def test_preview_counts_active_matches_and_samples_them():
    shanghai = [ProfileFactory(city="上海") for _ in range(3)]
    ProfileFactory(city="上海", status=ProfileStatus.MERGED, merged_into=shanghai[0])
    ProfileFactory(city="北京")
    preview = segment_preview(SHANGHAI, sample_size=2)
    assert preview.count == 3 and not preview.timed_out
    assert len(preview.sample) == 2 and {p.pk for p in preview.sample} <= {p.pk for p in shanghai}


def test_the_sample_is_the_biggest_spenders_newest_first_among_equals_and_the_count_is_exact():
    spent = [Decimal(v) for v in ("100", "9000", "500", "500", "0", "9000.50")]
    shanghai = [ProfileFactory(city="上海", total_spent=amount) for amount in spent]
    ProfileFactory(city="上海", total_spent=Decimal("99999"), status=ProfileStatus.MERGED, merged_into=shanghai[0])
    ProfileFactory(city="北京", total_spent=Decimal("99999"))
    preview = segment_preview(SHANGHAI, sample_size=4)
    assert preview.count == 6
    assert [p.pk for p in preview.sample] == [shanghai[5].pk, shanghai[1].pk, shanghai[3].pk, shanghai[2].pk]


def test_a_customer_matching_a_condition_several_ways_is_counted_once():
    both, one = ProfileFactory(), ProfileFactory()
    sneakers, lipstick = TagFactory(slug="sneakers"), TagFactory(slug="lipstick")
    tag_on(both, sneakers), tag_on(both, lipstick), tag_on(one, lipstick)
    for day in (1, 2, 3):
        EventFactory(profile=both, name="order", occurred_at=timezone.now() - datetime.timedelta(days=day))
    preview = segment_preview({"any": [{"tags": ["sneakers", "lipstick"], "op": "has_any"},
                                       {"event": "order", "within": {"days": 7}}]})
    assert preview.count == 2 and sorted(p.pk for p in preview.sample) == sorted([both.pk, one.pk])


def test_preview_of_a_bad_definition_is_a_validation_error():
    with pytest.raises(ValidationError):
        segment_preview({"field": "salary", "op": "eq", "value": 1})


SLOW_SQL = {
    "postgresql": "SELECT pg_sleep(2)",
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000000) SELECT count(*) FROM n",
}


def test_statement_timeout_aborts_a_slow_statement_recognisably():
    with pytest.raises(OperationalError) as caught:
        with transaction.atomic(), statement_timeout(50), connection.cursor() as cursor:
            cursor.execute(SLOW_SQL[connection.vendor])
    assert is_timeout(caught.value)
    with connection.cursor() as cursor:  # the connection is usable afterwards
        cursor.execute("SELECT 1")


def test_a_preview_that_times_out_says_so(monkeypatch):
    ProfileFactory(city="上海")
    import segments.selectors as selectors

    def slow(timeout_ms):
        raise OperationalError("interrupted")
    monkeypatch.setattr(selectors, "statement_timeout", slow)
    preview = segment_preview(SHANGHAI)
    assert preview.timed_out and preview.count is None


# --- the builder's preview endpoint: no masking oracle, no server errors ------------------------

PREVIEW_URL = "/admin/segments/segment/builder/preview/"


def post_preview(client, definition, raw: str | None = None):
    import json

    body = raw if raw is not None else json.dumps({"definition": definition})
    return client.post(PREVIEW_URL, body, content_type="application/json")


@pytest.fixture
def analyst(django_user_model):
    """Staff in the seeded analyst role: they build segments but see phones and emails masked."""
    from django.contrib.auth.models import Group
    from django.test import Client

    user = django_user_model.objects.create_user("analyst", password="pw-for-tests", is_staff=True)
    user.groups.add(Group.objects.get(name="分析师 analyst"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def officer(django_user_model):
    from django.contrib.auth.models import Group
    from django.test import Client

    user = django_user_model.objects.create_user("officer", password="pw-for-tests", is_staff=True)
    user.groups.add(Group.objects.get(name="隐私专员 privacy officer"), Group.objects.get(name="分析师 analyst"))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("condition", [
    {"field": "email", "op": "starts_with", "value": "wang"},
    {"field": "phone", "op": "starts_with", "value": "+86139"},
    {"field": "phone", "op": "contains", "value": "1234"},
    {"all": [SHANGHAI, {"not": {"field": "email", "op": "contains", "value": "@example"}}]},
])
def test_preview_refuses_matching_phones_and_emails_by_part_without_the_permission(analyst, condition):
    # given a customer whose email is masked for the analyst
    ProfileFactory(city="上海", email="wang.fang@example.com", phone="+8613912345678")
    # when the analyst previews a condition on a part of an email or phone
    answer = post_preview(analyst, condition).json()
    # then there is no count (the oracle), only the problem at its node
    assert answer["count"] is None and answer["sample"] == []
    assert answer["errors"] and answer["errors"][0]["path"].endswith("op")
    assert "完整" in answer["errors"][0]["message"]


def test_preview_matches_whole_phones_and_emails_for_everyone(analyst):
    ProfileFactory(city="上海", email="wang.fang@example.com", phone="+8613912345678")
    ProfileFactory(city="上海", email="li.lei@example.com", phone="+8613700000000")
    for condition in ({"field": "email", "op": "eq", "value": "wang.fang@example.com"},
                      {"field": "phone", "op": "in", "value": ["+8613912345678", "+8613800000000"]}):
        assert post_preview(analyst, condition).json()["count"] == 1


def test_preview_matches_by_part_for_staff_who_may_see_personal_data(officer):
    ProfileFactory(city="上海", email="wang.fang@example.com")
    ProfileFactory(city="上海", email="li.lei@example.com")
    assert post_preview(officer, {"field": "email", "op": "starts_with", "value": "wang"}).json()["count"] == 1


def test_saving_a_segment_by_part_of_a_phone_is_refused_without_the_permission(analyst):
    from segments.models import Segment

    # when the analyst saves a segment matching phones that start with a prefix
    response = analyst.post("/admin/segments/segment/add/", {
        "name": "139", "slug": "p139", "description": "", "kind": "dynamic", "refresh_every_minutes": "",
        "definition": '{"field": "phone", "op": "starts_with", "value": "+86139"}',
    })
    # then the form says why and nothing is saved (its member count would be the oracle)
    assert response.status_code == 200 and "完整" in response.text
    assert not Segment.objects.exists()


@pytest.mark.parametrize("property_name", ["isnull", "exact", "startswith", "in", "contains", "regex", "gt", "key"])
def test_preview_with_a_property_named_like_a_lookup_is_no_server_error(analyst, property_name):
    from tests.factories import EventFactory

    # given an order whose property is named like a query lookup
    EventFactory(name="order", properties={property_name: "x"})
    for op, value, count in (("eq", "x", 1), ("ne", "x", 0), ("contains", "x", 1), ("in", ["x"], 1),
                             ("not_in", ["x"], 0), ("eq", "y", 0)):
        # when the builder previews a filter on it, then it is that property that is compared
        condition = {"event": "order", "where": [{"property": property_name, "op": op, "value": value}]}
        assert post_preview(analyst, condition).json()["count"] == count, (property_name, op)


def test_preview_of_a_deeply_nested_definition_is_an_error_not_a_crash(analyst):
    import json

    raw = '{"definition": ' + '{"all": [' * 3000 + json.dumps(SHANGHAI) + ']}' * 3000 + "}"
    for response in (post_preview(analyst, None, raw=raw), post_preview(analyst, {"all": [{"not": {"not": SHANGHAI}}] * 3})):
        assert response.status_code in (200, 400)
    answer = post_preview(analyst, None, raw=raw).json()
    assert answer["count"] is None and answer["errors"]


@pytest.mark.parametrize("condition", [
    {"field": "city", "op": "eq", "value": "上\x00海"},
    {"tag": "vip\x00", "op": "has"},
    {"event": "order\x00"},
    {"event": "order", "where": [{"property": "category", "op": "eq", "value": "\x00"}]},
    {"segment": "\x00"},
    {"field": "traits.x\x00", "op": "eq", "value": "a"},
])
def test_preview_with_a_nul_character_is_an_error_at_its_node(analyst, condition):
    # PostgreSQL refuses text holding NUL: it must never reach a query
    response = post_preview(analyst, condition)
    assert response.status_code == 200
    assert response.json()["count"] is None and response.json()["errors"]


def test_saving_a_segment_nested_beyond_reading_is_a_form_error(analyst):
    from segments.models import Segment

    deep = '{"all": [' * 3000 + json_text(SHANGHAI) + "]}" * 3000
    response = analyst.post("/admin/segments/segment/add/", {
        "name": "深", "slug": "deep", "description": "", "kind": "dynamic", "refresh_every_minutes": "",
        "definition": deep,
    })
    assert response.status_code == 200 and "嵌套过深" in response.text
    assert not Segment.objects.exists()


def json_text(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
