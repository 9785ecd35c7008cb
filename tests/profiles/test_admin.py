import pytest
from django.urls import reverse

from cdp.actors import Actor
from profiles import services
from profiles.models import Profile, ProfileActivity
from tests.factories import EventFactory, IdentityFactory, ProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def profile_form(**fields):
    """A complete add/change form POST: the fields plus both inlines' management forms."""
    data = {
        "name": "", "gender": "unknown", "phone": "", "email": "", "country": "CN", "province": "", "city": "",
        "occupation": "", "traits": "{}", "birth_date": "",
    }
    for prefix in ("identities", "profile_tags"):
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return data | fields


def changelist(admin_client, model="profile", **params):
    return admin_client.get(reverse(f"admin:profiles_{model}_changelist"), params)


def test_profile_list_runs_a_bounded_number_of_queries(admin_client, django_assert_max_num_queries):
    for _ in range(60):
        profile = ProfileFactory()
        IdentityFactory(profile=profile)
    with django_assert_max_num_queries(12):
        response = changelist(admin_client)
    assert response.status_code == 200


@pytest.mark.parametrize("typed", ["138 0013 8000", "+86 13800138000", "0086-13800138000", "13800138000"])
def test_search_finds_a_customer_by_phone_typed_any_way(admin_client, typed):
    services.profile_create(actor=Actor.system("t"), source="admin", name="王芳", phone="13800138000")
    ProfileFactory(name="别人")
    response = changelist(admin_client, q=typed)
    assert [p.name for p in response.context["cl"].result_list] == ["王芳"]


@pytest.mark.parametrize("typed", ["Wang.Fang@Example.com", "芳", "CRM-42", "oWx_OpenId_1"])
def test_search_finds_by_email_partial_name_and_any_identity(admin_client, typed):
    profile = services.profile_create(
        actor=Actor.system("t"), source="admin", name="王芳", email="wang.fang@example.com",
        identities=[("crm_id", "CRM-42"), ("wechat_openid", "oWx_OpenId_1")],
    )
    ProfileFactory(name="李雷")
    response = changelist(admin_client, q=typed)
    assert list(response.context["cl"].result_list) == [profile]


def test_search_by_public_id(admin_client):
    profile = ProfileFactory()
    response = changelist(admin_client, q=str(profile.uuid))
    assert list(response.context["cl"].result_list) == [profile]


def test_add_form_normalises_and_records_the_creation(admin_client, staff_user):
    response = admin_client.post(reverse("admin:profiles_profile_add"), profile_form(
        name="赵敏", gender="female", phone="139 0013 9000", email="ZHAO@QQ.COM", city="杭州市",
    ))
    assert response.status_code == 302, response.context["adminform"].form.errors
    profile = Profile.objects.get(name="赵敏")
    assert (profile.phone, profile.email, profile.city) == ("+8613900139000", "zhao@qq.com", "杭州")
    created = profile.activities.get()
    assert (created.type, created.actor_kind, created.actor_user) == ("created", "staff", staff_user)


def test_change_form_records_the_edit_on_the_timeline(admin_client):
    profile = services.profile_create(actor=Actor.system("t"), source="admin", name="周杰", city="北京")
    url = reverse("admin:profiles_profile_change", args=[profile.pk])
    response = admin_client.post(url, profile_form(name="周杰", city="上海"))
    assert response.status_code == 302
    edit = profile.activities.get(type=ProfileActivity.Type.EDITED)
    assert edit.params == {"changes": {"city": ["北京", "上海"]}}


def test_a_phone_of_another_customer_is_a_form_error_not_a_crash(admin_client):
    services.profile_create(actor=Actor.system("t"), source="admin", name="甲", phone="13800138000")
    response = admin_client.post(reverse("admin:profiles_profile_add"), profile_form(name="乙", phone="+86 138 0013 8000"))
    assert response.status_code == 200
    assert "phone" in response.context["adminform"].form.errors
    assert not Profile.objects.filter(name="乙").exists()


def test_invalid_phone_gets_a_message_that_says_what_to_fix(admin_client):
    response = admin_client.post(reverse("admin:profiles_profile_add"), profile_form(name="丙", phone="12345"))
    assert response.status_code == 200
    assert "12345" in response.context["adminform"].form.errors["phone"][0]


def test_profile_page_opens_with_identities_and_metrics(admin_client):
    profile = services.profile_create(
        actor=Actor.system("t"), source="admin", name="钱多多", phone="13700137000", identities=[("crm_id", "C-1")]
    )
    response = admin_client.get(reverse("admin:profiles_profile_change", args=[profile.pk]))
    assert response.status_code == 200
    assert "C-1" in response.text and "137****7000" in response.text


def test_recompute_action_updates_the_selected_customers(admin_client):
    profile = ProfileFactory()
    EventFactory(profile=profile, name="order", amount=100)
    admin_client.post(reverse("admin:profiles_profile_changelist"), {
        "action": "recompute_metrics", "_selected_action": [profile.pk],
    })
    profile.refresh_from_db()
    assert profile.order_count == 1


@pytest.mark.parametrize("model", ["event", "profileactivity", "eventdefinition", "identitykind", "attributedefinition"])
def test_other_lists_open(admin_client, model, django_assert_max_num_queries):
    EventFactory.create_batch(5)
    with django_assert_max_num_queries(12):
        assert changelist(admin_client, model).status_code == 200


def test_event_list_filters_by_registered_event_name(admin_client):
    EventFactory(name="order", amount=1)
    EventFactory(name="page_view")
    response = changelist(admin_client, "event", name="order")
    assert [e.name for e in response.context["cl"].result_list] == ["order"]


def test_event_list_filter_names_events_in_the_admin_language(admin_client):
    response = changelist(admin_client, "event")
    assert "下单" in response.text and "Account opening completed" not in response.text


def test_builtin_identity_kinds_cannot_be_deleted(admin_client):
    response = admin_client.get(reverse("admin:profiles_identitykind_delete", args=["phone"]))
    assert response.status_code == 403


def test_a_filtered_list_counts_only_up_to_the_cap(admin_client, settings):
    settings.CDP_ADMIN_COUNT_CAP = 3
    for i in range(5):
        ProfileFactory(name=f"客户{i}", city="上海")
    response = changelist(admin_client, q="客户")
    assert response.context["cl"].result_count == 3 and response.context["cl"].paginator.capped
    assert "3+" in response.text
    assert not changelist(admin_client, q="客户1").context["cl"].paginator.capped


# --- personal data in the admin (masking, audited reveals, lookups that are no oracle) ---------

ANALYST = "分析师 analyst"


@pytest.fixture
def analyst_client(client, django_user_model):
    """Staff in the seeded analyst role: they view customers and their identities, but may
    not see phones and emails unmasked."""
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("analyst", password="pw-for-tests", is_staff=True)
    user.groups.add(Group.objects.get(name=ANALYST))
    client.force_login(user)
    return client


def wang_fang():
    return services.profile_create(actor=Actor.system("t"), source="admin", name="王芳", phone="13912345678",
                                   email="wang.fang@example.com", identities=[("crm_id", "CRM-42")])


def test_the_edit_form_masks_identity_values_for_staff_without_the_permission(analyst_client):
    # given a customer whose phone and email are identities too
    profile = wang_fang()
    # when an analyst opens the edit form
    response = analyst_client.get(reverse("admin:profiles_profile_change", args=[profile.pk]) + "?edit=1")
    # then the identities table shows them masked (CRM ids are pseudonymous keys, shown as they are)
    assert response.status_code == 200
    assert "13912345678" not in response.text and "wang.fang@example.com" not in response.text
    assert "139****5678" in response.text and "w***@example.com" in response.text and "CRM-42" in response.text


def test_the_edit_form_masks_identities_for_permitted_staff_too_and_audits_what_it_shows(admin_client, staff_user):
    # given a customer and a superuser
    profile = wang_fang()
    # when the superuser opens the edit form (its phone and email fields are shown to be edited)
    response = admin_client.get(reverse("admin:profiles_profile_change", args=[profile.pk]) + "?edit=1")
    # then the identities are masked (the profile page's reveal shows them), and what is shown is audited
    assert response.text.count("+8613912345678") == 1  # the phone field's value, nowhere else
    assert "139****5678" in response.text
    from cdp.models import AuditLog

    entry = AuditLog.objects.get(action="reveal_personal_data")
    assert (entry.actor_user, entry.target, entry.details["fields"]) == (staff_user, str(profile.uuid), ["phone", "email"])


@pytest.mark.parametrize("lookup", ["phone__startswith", "phone__contains", "phone__regex", "phone__gt", "email__istartswith",
                                    "phone__range", "email__endswith"])
def test_staff_without_the_permission_cannot_filter_phones_or_emails_by_part(analyst_client, lookup):
    # given a customer and an analyst who sees the phone masked
    profile = wang_fang()
    ProfileFactory(name="别人", phone="+8613700000000", email="other@example.com")
    # when the analyst filters the list by a part of a phone or email (an oracle, one digit at a time)
    response = changelist(analyst_client, **{lookup: "+86139", "id__exact": str(profile.pk)})
    # then the filter is refused with a message, and nothing is filtered by it
    assert response.status_code == 302
    followed = analyst_client.get(response["Location"])
    assert "只能按完整的手机号或邮箱筛选" in followed.text
    assert lookup not in response["Location"]


def test_staff_without_the_permission_filter_and_search_by_a_full_phone_or_email(analyst_client):
    profile = wang_fang()
    ProfileFactory(name="别人")
    for params in ({"phone": "+8613912345678"}, {"phone__exact": "+8613912345678"},
                   {"email__iexact": "Wang.Fang@example.com"}, {"q": "139 1234 5678"}, {"q": "wang.fang@example.com"}):
        response = changelist(analyst_client, **params)
        assert list(response.context["cl"].result_list) == [profile], params


def test_staff_with_the_permission_may_filter_by_part(admin_client):
    profile = wang_fang()
    ProfileFactory(name="别人", phone="+8613700000000")
    response = changelist(admin_client, phone__startswith="+86139")
    assert list(response.context["cl"].result_list) == [profile]


def test_staff_without_the_permission_cannot_sort_by_phone_or_email(analyst_client):
    # given customers whose phones sort differently from their ids
    ProfileFactory(phone="+8613900000000")
    ProfileFactory(phone="+8613700000000")
    # when the analyst asks for the list ordered by the phone column (its rank is an oracle)
    response = changelist(analyst_client, o="1")
    # then the phone plays no part in the order
    assert "phone" not in " ".join(map(str, response.context["cl"].queryset.query.order_by))


@pytest.mark.parametrize("model, lookup", [("event", "profile__phone__startswith"),
                                           ("profileactivity", "profile__email__startswith"),
                                           ("event", "profile__identities__value__startswith")])
def test_other_customer_lists_refuse_pattern_lookups_on_personal_data(analyst_client, model, lookup):
    EventFactory()
    response = changelist(analyst_client, model, **{lookup: "+86"})
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert lookup not in response["Location"]


def test_money_in_the_customer_and_event_lists_is_grouped_by_thousands(admin_client):
    # given a customer who spent ¥24,934 with an order of ¥12,345.50
    profile = ProfileFactory(total_spent=24934)
    EventFactory(profile=profile, name="order", amount=12345.5)
    # when staff open the customer list and the event list
    customers, events = changelist(admin_client).text, changelist(admin_client, model="event").text
    # then the amounts read with thousands separators
    assert "¥24,934.00" in customers and "¥12,345.50" in events


def names_in(response) -> set[str]:
    return {profile.name for profile in response.context["cl"].result_list}


@pytest.mark.parametrize("typed", ["上海", "上海市", "Shanghai", "shanghai "])
def test_search_by_a_city_name_finds_the_customers_in_that_city(admin_client, typed):
    # given customers in Shanghai (one recorded by province only) and in Beijing
    ProfileFactory(name="甲", city="上海", province="上海")
    ProfileFactory(name="乙", city="", province="上海")
    ProfileFactory(name="丙", city="北京", province="北京")
    # when staff search for Shanghai written any way, then they find the Shanghai customers
    assert names_in(changelist(admin_client, q=typed)) == {"甲", "乙"}


def test_search_by_a_province_finds_its_cities_customers(admin_client):
    ProfileFactory(name="深圳客户", city="深圳", province="广东")
    ProfileFactory(name="杭州客户", city="杭州", province="浙江")
    assert names_in(changelist(admin_client, q="广东省")) == {"深圳客户"}
    assert names_in(changelist(admin_client, q="Hangzhou")) == {"杭州客户"}


def test_the_sidebar_filters_by_city_province_lifecycle_segment_and_consent(admin_client):
    from consent.services import consent_record
    from segments.models import Segment, SegmentMembership

    # given customers in three cities, a segment holding two of them and one consent
    sh = ProfileFactory(name="上海客户", city="上海", province="上海", lifecycle_stage="active")
    sz = ProfileFactory(name="深圳客户", city="深圳", province="广东", lifecycle_stage="churned")
    ProfileFactory(name="广州客户", city="广州", province="广东", lifecycle_stage="active")
    segment = Segment.objects.create(name="高价值名单", slug="vip-list", kind=Segment.Kind.STATIC)
    SegmentMembership.objects.bulk_create([SegmentMembership(segment=segment, profile=p) for p in (sh, sz)])
    consent_record(profile=sz, purpose_code="sms_marketing", status="granted", source="admin",
                   actor=Actor.system("t"))
    # when staff filter the list, then each filter keeps exactly its customers
    listed = changelist(admin_client).text
    for title in ("以 城市", "以 省份", "以 生命周期阶段", "以 人群", "以 同意用途"):
        assert title in listed, title
    assert names_in(changelist(admin_client, city="上海")) == {"上海客户"}
    assert names_in(changelist(admin_client, province="广东")) == {"深圳客户", "广州客户"}
    assert names_in(changelist(admin_client, province="广东", lifecycle_stage__exact="active")) == {"广州客户"}
    assert names_in(changelist(admin_client, segment=segment.pk)) == {"上海客户", "深圳客户"}
    assert names_in(changelist(admin_client, consent="sms_marketing")) == {"深圳客户"}
    # and the city choices follow the chosen province
    specs = changelist(admin_client, province="广东").context["cl"].filter_specs
    cities = {value for value, _label in next(f for f in specs if f.parameter_name == "city").lookup_choices}
    assert {"深圳", "广州"} <= cities and "上海" not in cities


@pytest.mark.parametrize("params", [{"segment": "999999"}, {"segment": "abc"}, {"consent": "no_such_purpose"},
                                    {"province": "不存在省"}])
def test_an_unknown_filter_value_matches_nobody_or_is_ignored_never_a_500(admin_client, params):
    ProfileFactory(name="甲", city="上海")
    response = changelist(admin_client, **params)
    assert response.status_code in (200, 302)


def test_the_filtered_list_runs_a_bounded_number_of_queries(admin_client, django_assert_max_num_queries):
    for _ in range(30):
        ProfileFactory(city="上海", province="上海")
    with django_assert_max_num_queries(16):
        response = changelist(admin_client, city="上海", province="上海", consent="sms_marketing", segment="1")
    assert response.status_code == 200


def test_the_event_list_names_events_and_sources_in_chinese(admin_client, django_assert_max_num_queries):
    # given events of built-in kinds from the app and the mini program
    profile = ProfileFactory(name="李雷")
    EventFactory(profile=profile, name="product_view", source="mini_program")
    EventFactory(profile=profile, name="add_to_cart", source="app")
    # when staff read the event list in Chinese
    with django_assert_max_num_queries(12):
        response = changelist(admin_client, model="event")
    # then each event is named by its label (the code beside it) and its source by its label
    page = response.content.decode()
    assert "浏览商品 (product_view)" in page and "加入购物车 (add_to_cart)" in page
    assert "小程序" in page and ">mini_program<" not in page
