import json

import pytest
from django.contrib.auth.models import Permission
from django.db import OperationalError
from django.test import Client
from django.urls import reverse
from django.utils import translation

from cdp.actors import Actor
from profiles.models import AttributeDefinition, AttributeType, Profile, TagCategory
from profiles.services.tags import tag_assign
from segments import builder
from segments.models import Segment
from tests.factories import ProfileFactory, TagFactory, order

pytestmark = pytest.mark.django_db
PREVIEW_URL = "/admin/segments/segment/builder/preview/"
SHANGHAI = {"field": "city", "op": "eq", "value": "上海"}


def post_preview(client, definition):
    return client.post(PREVIEW_URL, json.dumps({"definition": definition}), content_type="application/json")


@pytest.fixture
def viewer(django_user_model):
    """Staff who may view segments, and nothing about personal data."""
    user = django_user_model.objects.create_user("viewer", password="pw-for-tests", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_segment"))
    client = Client()
    client.force_login(user)
    return client


# --- the catalogue ------------------------------------------------------------------------

def test_options_list_fields_with_translated_labels_operators_and_choices():
    with translation.override("zh-hans"):
        fields = {f["name"]: f for f in builder.builder_options()["fields"]}
    assert fields["city"]["label"] == "城市" and fields["city"]["type"] == "text"
    assert fields["gender"]["choices"][:2] == [{"value": "male", "label": "男"}, {"value": "female", "label": "女"}]
    assert fields["age"]["operators"] == ["gte", "lte", "between", "is_set", "is_empty"]
    assert "anniversary_within_days" in fields["birth_date"]["operators"]
    assert "anniversary_within_days" not in fields["last_order_at"]["operators"]


def test_options_include_custom_traits_tags_categories_and_events():
    AttributeDefinition.objects.create(key="vip_level", label="会员等级", type=AttributeType.CHOICE, choices=["金", "银"])
    AttributeDefinition.objects.create(key="newsletter", label="订阅", type=AttributeType.BOOLEAN)
    interest = TagCategory.objects.get(code="interest")
    sport = TagCategory.objects.create(name="运动", parent=interest)
    TagFactory(name="喜欢运动鞋", slug="sneaker-lover", category=sport)
    TagFactory(name="旧标签", slug="old", is_active=False)
    Segment.objects.create(name="上海", slug="shanghai", definition=SHANGHAI)
    with translation.override("zh-hans"):
        options = builder.builder_options()
    fields = {f["name"]: f for f in options["fields"]}
    assert fields["traits.vip_level"]["choices"] == [{"value": "金", "label": "金"}, {"value": "银", "label": "银"}]
    assert [c["value"] for c in fields["traits.newsletter"]["choices"]] == [True, False]
    assert options["tags"][0] == {"value": "sneaker-lover", "label": "喜欢运动鞋", "group": "兴趣标签 › 运动", "active": True}
    assert options["tags"][-1]["active"] is False  # retired tags last, still named
    categories = {c["value"]: c["label"] for c in options["categories"]}
    assert categories["interest"] == "兴趣标签" and categories[str(sport.pk)] == "兴趣标签 › 运动"
    events = {e["value"]: e for e in options["events"]}
    assert events["order"]["label"] == "下单" and events["order"]["has_amount"] is True
    assert events["order"]["properties"][0]["name"] == "category" and events["order"]["properties"][0]["type"] == "string"
    assert {"value": "shanghai", "label": "上海", "group": "shanghai"} in options["segments"]
    assert all(p["value"] and p["label"] for p in options["purposes"])


def test_a_new_condition_source_is_one_entry(monkeypatch):
    monkeypatch.setitem(builder.OPTION_SOURCES, "purposes", lambda: [{"value": "email_marketing", "label": "邮件营销"}])
    assert builder.builder_options()["purposes"] == [{"value": "email_marketing", "label": "邮件营销"}]


def test_options_take_a_bounded_number_of_queries(django_assert_max_num_queries):
    for i in range(30):
        TagFactory()
    with django_assert_max_num_queries(9):  # one per list: fields, traits, tags, categories, events, purposes, segments, campaigns…
        builder.builder_options()


# --- the preview endpoint -----------------------------------------------------------------

def test_preview_counts_and_samples_with_phones_masked(viewer):
    shanghai = ProfileFactory(name="王芳", city="上海", phone="+8613800138000")
    ProfileFactory(name="", email="", city="上海", phone="+8613900139000")
    ProfileFactory(city="北京")
    response = post_preview(viewer, SHANGHAI)
    assert response.status_code == 200
    answer = response.json()
    assert answer["count"] == 2 and answer["errors"] == [] and answer["timed_out"] is False
    sample = {row["uuid"]: row for row in answer["sample"]}
    assert sample[str(shanghai.uuid)] == {
        "name": "王芳", "uuid": str(shanghai.uuid), "phone": "138****8000", "city": "上海",
        "url": reverse("admin:profiles_profile_change", args=[shanghai.pk]),
    }
    assert "13900139000" not in response.content.decode()  # a nameless customer is not shown by phone
    assert {row["name"] for row in answer["sample"]} == {"王芳", "139****9000"}


def test_preview_masks_phones_for_superusers_too(staff_user):
    ProfileFactory(city="上海", phone="+8613800138000")
    client = Client()
    client.force_login(staff_user)
    assert post_preview(client, SHANGHAI).json()["sample"][0]["phone"] == "138****8000"


def test_preview_of_behaviour_and_tags(viewer):
    tag = TagFactory(slug="sneaker-lover")
    buyer = ProfileFactory(city="上海", gender="female")
    tag_assign(tag=tag, profiles=Profile.objects.filter(pk=buyer.pk), source="manual", actor=Actor.system("test"))
    order(buyer, days_ago=3, amount="300")
    order(buyer, days_ago=10, amount="300")
    ProfileFactory(city="上海", gender="female")
    definition = {"all": [
        SHANGHAI, {"field": "gender", "op": "eq", "value": "female"}, {"tag": "sneaker-lover", "op": "has"},
        {"event": "order", "count": {"op": "gte", "value": 2}, "within": {"days": 30}},
    ]}
    answer = post_preview(viewer, definition).json()
    assert answer["count"] == 1 and answer["sample"][0]["uuid"] == str(buyer.uuid)


def test_a_bad_definition_answers_errors_naming_the_node(viewer):
    answer = post_preview(viewer, {"all": [SHANGHAI, {"field": "salary", "op": "eq", "value": 1},
                                           {"event": "order", "count": {"op": "gte", "value": "x"}}]}).json()
    assert answer["count"] is None and answer["sample"] == []
    paths = {e["path"] for e in answer["errors"]}
    assert paths == {"all[1].field", "all[2].count.value"}
    assert all(e["message"] for e in answer["errors"])


def test_a_malformed_request_is_a_400_with_an_error(viewer):
    response = viewer.post(PREVIEW_URL, "not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "$"


def test_a_preview_that_times_out_says_so(viewer, monkeypatch):
    import segments.selectors as selectors

    ProfileFactory(city="上海")

    def too_slow(timeout_ms):
        raise OperationalError("canceling statement due to statement timeout")
    monkeypatch.setattr(selectors, "statement_timeout", too_slow)
    monkeypatch.setattr(selectors, "is_timeout", lambda error: True)
    answer = post_preview(viewer, SHANGHAI).json()
    assert answer["timed_out"] is True and answer["count"] is None and answer["timeout_seconds"] > 0


def test_preview_needs_view_permission_on_segments(django_user_model):
    user = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    assert post_preview(client, SHANGHAI).status_code == 403


def test_preview_needs_staff(client):
    assert post_preview(client, SHANGHAI).status_code == 302  # to the admin login


def test_preview_is_post_only_and_checks_csrf(django_user_model, viewer):
    assert viewer.get(PREVIEW_URL).status_code == 405
    user = django_user_model.objects.get(username="viewer")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert post_preview(strict, SHANGHAI).status_code == 403
    strict.get("/admin/")  # sets the CSRF cookie
    token = strict.cookies["csrftoken"].value
    response = strict.post(PREVIEW_URL, json.dumps({"definition": SHANGHAI}), content_type="application/json",
                           HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200


def test_preview_takes_a_bounded_number_of_queries(viewer, django_assert_max_num_queries):
    ProfileFactory.create_batch(25, city="上海")
    # session, user, permissions, the statement timeout, count, sample: not one per customer
    with django_assert_max_num_queries(10):
        assert post_preview(viewer, SHANGHAI).json()["count"] == 25


# --- the widget on the segment form -------------------------------------------------------

def test_segment_form_shows_the_builder_with_its_catalogue_and_preview_url(staff_user, client):
    client.force_login(staff_user)
    segment = Segment.objects.create(name="上海", slug="shanghai", definition=SHANGHAI)
    page = client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()
    assert "segments/condition-builder.js" in page and "segments/condition-builder.css" in page
    assert 'class="condition-builder"' in page and 'id="id_definition-builder-config"' in page
    assert PREVIEW_URL in page
    assert "&quot;上海&quot;" in page or '"上海"' in page  # the definition is in the textarea


def test_the_widget_is_reusable_on_any_form():
    from django import forms

    class RuleForm(forms.Form):
        rule = forms.JSONField(widget=builder.ConditionBuilderWidget())

    form = RuleForm(initial={"rule": SHANGHAI})
    html = str(form["rule"])
    assert 'name="rule"' in html and "id_rule-builder-config" in html and PREVIEW_URL in html
    assert "segments/condition-builder.js" in str(form.media)


def test_the_definition_the_builder_writes_is_saved_as_is(staff_user, client):
    client.force_login(staff_user)
    definition = {"any": [SHANGHAI, {"not": {"tag_category": "interest", "op": "has_any"}},
                          {"sequence": [{"event": "account_open_start", "within": {"days": 30}},
                                        {"event": "account_open_complete"}], "op": "not_then", "within_days": 7}]}
    response = client.post(reverse("admin:segments_segment_add"), {
        "name": "开户流失", "slug": "drop-off", "description": "", "kind": "dynamic",
        "definition": json.dumps(definition, ensure_ascii=False), "refresh_every_minutes": "",
        "snapshots-TOTAL_FORMS": "0", "snapshots-INITIAL_FORMS": "0",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Segment.objects.get(slug="drop-off").definition == definition


def test_preview_and_form_refuse_a_segment_that_refers_to_itself(viewer, staff_user, client):
    Segment.objects.create(name="上海", slug="shanghai", definition=SHANGHAI)
    Segment.objects.create(name="回环", slug="loop", definition={"segment": "shanghai", "op": "in"})
    looping = {"all": [SHANGHAI, {"segment": "loop", "op": "in"}]}
    response = viewer.post(PREVIEW_URL, json.dumps({"definition": looping, "defining": "shanghai"}),
                           content_type="application/json")
    assert [e["path"] for e in response.json()["errors"]] == ["all[1].segment"]
    client.force_login(staff_user)
    shanghai = Segment.objects.get(slug="shanghai")
    response = client.post(reverse("admin:segments_segment_change", args=[shanghai.pk]), {
        "name": "上海", "slug": "shanghai", "description": "", "kind": "dynamic",
        "definition": json.dumps(looping), "refresh_every_minutes": "",
        "snapshots-TOTAL_FORMS": "0", "snapshots-INITIAL_FORMS": "0",
    })
    assert response.status_code == 200 and "all[1].segment" in response.content.decode()
    assert Segment.objects.get(slug="shanghai").definition == SHANGHAI
