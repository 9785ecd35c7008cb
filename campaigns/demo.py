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


RESULT_DEMOS = (
    # name, which slice of customers, treated and holdout conversion (one customer in every N)
    ("演示：618 复购券短信（有提升）", 0, 8, 50),
    ("演示：会员日短信（无显著差异）", 1, 20, 20),
)


@transaction.atomic
def demo_results(*, customers: int = 2000, now=None) -> list[Campaign]:
    """Two finished campaigns with a 10 % holdout and their results, so that a new user
    sees both kinds: one whose message clearly raised orders (about 14 % against 2 %), one
    where treated and holdout bought alike (差异不显著). Their orders are demo events
    (source "demo-campaign") 1–6 days after the send, besides the customers' own."""
    import datetime
    from decimal import Decimal

    from django.utils import timezone

    from profiles.models import Event, Profile

    from .models import CampaignRun, Delivery
    from .results import result_refresh

    now = now or timezone.now()
    send = (now - datetime.timedelta(days=20)).replace(minute=0, second=0, microsecond=0)
    destination = Destination.objects.filter(name=DESTINATION).first()
    if destination is None:
        demo_campaigns()
        destination = Destination.objects.get(name=DESTINATION)
    sms = Purpose.objects.get(code="sms_marketing")
    made = []
    for name, offset, treated_every, holdout_every in RESULT_DEMOS:
        if Campaign.objects.filter(name=name).exists():
            continue
        ids = list(Profile.objects.filter(status="active").order_by("pk").values_list("pk", flat=True)
                   [offset * customers:(offset + 1) * customers])
        if len(ids) < 100:
            continue
        campaign = Campaign.objects.create(name=name, purpose=sms, destination=destination, segment=None,
                                           audience_kind=Campaign.AudienceKind.TRIGGER_EVENT, trigger_event="order",
                                           status=Campaign.Status.FINISHED, launched_at=send, finished_at=send,
                                           holdout_percent=10, goal_event="order", attribution_days=7)
        variant = Variant.objects.create(campaign=campaign, label="A", weight=100, sms_sign_name="星河商城",
                                         body="{{ name }}，您的专属复购券已到账：{{ link }}",
                                         link_url="https://shop.example.com/618")
        run = CampaignRun.objects.create(campaign=campaign, started_at=send)
        deliveries, orders = [], []
        for i, pk in enumerate(ids):
            holdout = i % 10 == 0
            clicked = not holdout and i % 4 == 1
            deliveries.append(Delivery(
                run=run, campaign=campaign, variant=variant, destination=destination, profile_id=pk, channel="sms",
                status=Delivery.Status.HOLDOUT if holdout else Delivery.Status.DELIVERED, created_at=send,
                not_before=send, sent_at=None if holdout else send, delivered_at=None if holdout else send,
                clicked_at=send + datetime.timedelta(hours=2) if clicked else None))
            if ((i // 10) % holdout_every == 0) if holdout else (i % treated_every == 1):
                orders.append(Event(profile_id=pk, name="order", source="demo-campaign",
                                        occurred_at=send + datetime.timedelta(days=1 + i % 6, hours=3),
                                        amount=Decimal(100 + (i * 37) % 200), properties={"campaign": name}))
        Delivery.objects.bulk_create(deliveries, batch_size=5000)
        Event.objects.bulk_create(orders, batch_size=5000)
        made.append(campaign)
    for campaign in made:
        result_refresh(campaign_id=campaign.pk, now=now)
    return made
