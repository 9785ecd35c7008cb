"""Names and values a Chinese marketer can read: event properties and their known values,
the system's jobs as actors, interest reasons, and the tag taxonomy's roots."""
import pytest
from django.urls import reverse
from django.utils import translation

from cdp.actors import Actor
from profiles import activity, services
from profiles.activity import tag_reason_display
from profiles.event_labels import EventLabels
from profiles.models import EventDefinition, TagCategory
from profiles.timeline import profile_timeline
from tests.factories import EventFactory, ProfileFactory, TagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_the_timeline_names_event_properties_and_known_values_in_chinese(admin_client):
    # given a payment by Alipay and an order of outdoor gear in the mini program
    profile = ProfileFactory()
    EventFactory(profile=profile, name="payment", properties={"method": "alipay", "order_id": "A1"})
    EventFactory(profile=profile, name="order", source="mini_program", properties={"category": "outdoor", "channel": "app"})
    # when the staff member opens the customer
    text = admin_client.get(reverse("admin:profiles_profile_change", args=[profile.pk])).text
    # then names and values are labelled, values nobody labelled shown as sent
    for expected in ("支付方式: 支付宝", "订单号: A1", "品类: 户外用品", "渠道: App", "· 小程序"):
        assert expected in text
    for raw in ("method: alipay", "category: outdoor", "mini_program"):
        assert raw not in text


def test_an_english_reader_sees_the_same_details_in_english():
    profile = ProfileFactory()
    EventFactory(profile=profile, name="payment", properties={"method": "wechat_pay"})
    with translation.override("en"):
        (entry,), _next = profile_timeline(profile)
        assert entry.title == "Payment" and entry.summary == "Payment method: WeChat Pay"
        assert entry.details_text == "Payment method: WeChat Pay"


def test_staff_label_the_values_of_their_own_events():
    # given an event definition staff registered, with Chinese labels
    EventDefinition.objects.create(name="coupon_claim", label="领券", properties=[
        {"name": "tier", "type": "string", "label": "档位", "values": {"gold": "金卡"}}])
    labels = EventLabels.load()
    # then they are shown as typed, unknown values as stored
    assert labels.event("coupon_claim") == "领券"
    assert labels.properties("coupon_claim", {"tier": "gold", "x": 1}) == {"档位": "金卡", "x": "1"}


def test_jobs_acting_on_a_customer_are_named_in_the_readers_language(admin_client):
    # given a tag a segment calculation and the rule tags gave
    profile = ProfileFactory()
    tag = TagFactory(name="喜欢运动鞋")
    for job in ("segment", "rule tags"):
        activity.tag_added(profiles=type(profile).objects.filter(pk=profile.pk), tag=tag, source="rule",
                           reason="", actor=Actor.system(job))
    text = admin_client.get(reverse("admin:profiles_profile_change", args=[profile.pk])).text
    assert "· 人群计算" in text and "· 规则标签刷新" in text
    assert "· segment<" not in text and "rule tags" not in text


def test_activity_details_are_labelled_not_raw_params():
    profile = ProfileFactory()
    tag = TagFactory(name="喜欢运动鞋", slug="sneaker-lover")
    activity.tag_added(profiles=type(profile).objects.filter(pk=profile.pk), tag=tag, source="manual", reason="",
                       actor=Actor.system("segment"))
    (entry,), _next = profile_timeline(profile)
    assert entry.details["标签"] == "喜欢运动鞋" and "tag_name" not in entry.details


def test_interest_reasons_name_events_by_their_labels():
    reason = "interest weight ≥ 0.5 (product_view×1, order×3; half-life 30 days)"
    assert "浏览商品×1, 下单×3" in tag_reason_display(reason)


def test_searching_the_taxonomy_in_chinese_finds_the_seeded_roots(admin_client):
    # given the four seeded roots
    assert TagCategory.objects.get(code="behavioural").name == "行为标签"
    # when a Chinese marketer searches 行为
    text = admin_client.get(reverse("admin:profiles_tagcategory_changelist"), {"q": "行为"}).text
    # then the root is found
    assert "行为标签" in text


def test_english_staff_see_and_find_the_roots_in_english(client, django_user_model):
    user = django_user_model.objects.create_user("en", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    with translation.override("en"):
        assert TagCategory.objects.get(code="interest").display_name == "Interest tags"
    client.cookies["django_language"] = "en"
    text = client.get(reverse("admin:profiles_tagcategory_changelist"), {"q": "Behavioural"}).text
    assert "Behavioural tags" in text and "1 tag category" in text


def test_a_renamed_root_keeps_its_new_name():
    root = TagCategory.objects.get(code="value")
    root.name = "会员价值"
    root.save()
    with translation.override("en"):
        assert root.display_name == "会员价值"


def test_the_import_match_order_is_shown_by_kind_names(admin_client, settings, tmp_path):
    from pathlib import Path

    from django.core.files.uploadedfile import SimpleUploadedFile

    from profiles.models import ImportJob

    # given a CRM file uploaded for import
    settings.MEDIA_ROOT = str(tmp_path / "media")
    content = (Path(__file__).parent / "data" / "crm_gb18030.csv").read_bytes()
    admin_client.post(reverse("admin:profiles_importjob_upload"), {
        "file": SimpleUploadedFile("crm.csv", content), "kind": "profiles", "source": "crm",
        "mode": "create_or_update", "error_policy": "skip"})
    job = ImportJob.objects.get()
    # when staff look at its mapping
    text = admin_client.get(reverse("admin:profiles_importjob_mapping", args=[job.pk])).text
    # then the match order reads as names, and each code is explained
    order = " → ".join(str(kind) for kind in map(_kind, job.precedence))
    assert f"按以下顺序识别客户： {order}" in text and "CRM" in order and "手机" in order
    assert "<code>crm_id</code> CRM" in text


def _kind(code):
    from profiles.models import IdentityKind

    return IdentityKind.objects.get(code=code)


@pytest.mark.parametrize("values", [["gold"], {"gold": ""}, {"gold": 1}])
def test_value_labels_that_are_not_a_value_to_label_map_are_refused(values):
    from django.core.exceptions import ValidationError

    definition = EventDefinition(name="coupon_claim", label="领券", properties=[
        {"name": "tier", "type": "string", "label": "档位", "values": values}])
    with pytest.raises(ValidationError) as error:
        definition.full_clean()
    assert "已知取值提供名称" in str(error.value)


def test_the_activity_list_names_the_systems_jobs_in_chinese(admin_client):
    profile = ProfileFactory()
    activity.note_added(profile=profile, text="回访", actor=Actor.system("segment"))
    text = admin_client.get(reverse("admin:profiles_profileactivity_changelist")).text
    assert "人群计算" in text and ">segment<" not in text
