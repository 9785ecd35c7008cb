"""Demo campaigns for `generate_demo`: drafts ready to preview, test and launch on the demo
data, sending to an audience file in a local folder (under CDP_VAR_DIR/audiences), so that
`make run` shows the whole loop without any vendor account."""
from django.conf import settings
from django.db import transaction

from consent.models import Purpose
from segments.models import Segment

from .models import Campaign, Destination, Variant

DESTINATION = "演示：受众文件（本地文件夹）"


@transaction.atomic
def demo_campaigns() -> list[Campaign]:
    """The demo destination and draft campaigns that are not there yet."""
    destination, _ = Destination.objects.get_or_create(name=DESTINATION, kind=Destination.Kind.AUDIENCE_FILE, defaults={
        "config": {"storage": "folder", "path": str(settings.VAR_DIR / "audiences"), "hash": False,
                   "phone_format": "e164"},
        "batch_size": 500, "rate_per_second": 5000,
    })
    sms = Purpose.objects.get(code="sms_marketing")
    drafts = [
        ("双十一：上海运动鞋会员短信", dict(
            audience_kind=Campaign.AudienceKind.SEGMENT,
            segment=Segment.objects.filter(slug="shanghai-sneaker-women").first()),
         "{{ name }}，双十一运动鞋会员专享：满 300 减 50，{{ link }}"),
        ("购物车放弃提醒（1 小时未下单）", dict(
            audience_kind=Campaign.AudienceKind.TRIGGER_EVENT, trigger_event="add_to_cart",
            trigger_unless_event="order", trigger_within_minutes=60, trigger_once_per_days=7),
         "{{ name }}，您购物车里的{% if top_interest %}「{{ top_interest }}」{% else %}商品{% endif %}还在等您：{{ link }}"),
    ]
    created = []
    for name, audience, body in drafts:
        if Campaign.objects.filter(name=name).exists() or (
                audience["audience_kind"] == Campaign.AudienceKind.SEGMENT and audience["segment"] is None):
            continue
        campaign = Campaign.objects.create(name=name, purpose=sms, destination=destination, **audience)
        Variant.objects.create(campaign=campaign, label="A", weight=100, body=body, sms_sign_name="星河商城",
                               link_url="https://shop.example.com/1111")
        created.append(campaign)
    return created
