"""Event retention: expired events go (a whole partition dropped on PostgreSQL, batches
elsewhere), audited, and the customers' metrics stay what they were."""
import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from cdp.models import AuditLog
from profiles import partitions
from profiles.metrics import metrics_recompute
from profiles.models import Event, EventRetention, EventRollup, Profile
from profiles.retention import retention_apply
from profiles.services.merge import profiles_merge, profiles_unmerge
from tests.factories import EventFactory, ProfileFactory, order

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)
METRICS = ("first_seen_at", "last_seen_at", "order_count", "total_spent", "last_order_at", "rfm_recency",
           "rfm_frequency", "rfm_monetary", "lifecycle_stage")


def metrics_of(*profiles) -> dict:
    metrics_recompute(now=NOW)
    return {p.pk: {f: getattr(p, f) for f in METRICS} for p in Profile.objects.filter(pk__in=[p.pk for p in profiles])}


def days_ago(days: float) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


def test_names_without_a_policy_are_kept():
    EventFactory(name="page_view", occurred_at=days_ago(2000))
    assert retention_apply(now=NOW) == {"deleted": {}, "partitions_dropped": []}
    assert Event.objects.count() == 1


def test_a_policy_keeps_at_least_sixty_days():
    with pytest.raises(ValidationError) as raised:
        EventRetention(event_name="page_view", keep_days=30).full_clean()
    assert "keep_days" in raised.value.message_dict


def test_expired_events_are_deleted_in_batches_and_metrics_are_kept():
    shopper, browser = ProfileFactory(), ProfileFactory()
    for days in (400, 380, 370, 10):
        order(shopper, days_ago=days, amount="100.50", now=NOW)
    for days in (500, 300, 5):
        EventFactory(profile=shopper, name="page_view", occurred_at=days_ago(days))
    EventFactory(profile=browser, name="page_view", occurred_at=days_ago(800))
    EventFactory(profile=browser, name="add_to_cart", occurred_at=days_ago(800))
    before = metrics_of(shopper, browser)
    assert before[shopper.pk]["order_count"] == 4
    EventRetention.objects.create(event_name="order", keep_days=365)
    EventRetention.objects.create(event_name="page_view", keep_days=90)

    result = retention_apply(now=NOW, batch=2, actor=Actor.system("retention"))

    assert result["deleted"] == {"order": 3, "page_view": 3}
    assert sorted(Event.objects.values_list("name", flat=True)) == ["add_to_cart", "order", "page_view"]
    assert metrics_of(shopper, browser) == before  # orders, spend, RFM and first seen included
    rollup = EventRollup.objects.get(profile=shopper, name="order")
    assert (rollup.events, rollup.amount_total) == (3, Decimal("301.50"))
    audits = AuditLog.objects.filter(action=AuditLog.Action.EVENTS_EXPIRED)
    assert {(a.target, a.count) for a in audits} == {("order", 3), ("page_view", 3)}
    policy = EventRetention.objects.get(event_name="order")
    assert (policy.last_deleted, policy.last_applied_at) == (3, NOW)

    # A second run finds nothing more, and rollups grow when later events expire.
    assert retention_apply(now=NOW)["deleted"] == {"order": 0, "page_view": 0}
    assert retention_apply(now=NOW + datetime.timedelta(days=370))["deleted"]["order"] == 1
    assert EventRollup.objects.get(profile=shopper, name="order").events == 4


def test_a_customer_whose_every_event_expired_keeps_their_metrics():
    customer = ProfileFactory()
    order(customer, days_ago=700, amount="88", now=NOW)
    EventFactory(profile=customer, name="page_view", occurred_at=days_ago(710))
    before = metrics_of(customer)
    EventRetention.objects.create(event_name="order", keep_days=365)
    EventRetention.objects.create(event_name="page_view", keep_days=365)
    retention_apply(now=NOW)
    assert not Event.objects.filter(profile=customer).exists()
    assert metrics_of(customer) == before
    assert before[customer.pk]["order_count"] == 1 and before[customer.pk]["lifecycle_stage"] == "churned"
    metrics_recompute(profile_ids=[customer.pk], now=NOW)  # the named-customers path agrees
    assert {f: getattr(Profile.objects.get(pk=customer.pk), f) for f in METRICS} == before[customer.pk]


def test_a_merge_moves_the_rollups_and_an_unmerge_takes_them_back():
    survivor, merged = ProfileFactory(), ProfileFactory()
    order(survivor, days_ago=500, amount="10", now=NOW)
    order(survivor, days_ago=3, amount="1", now=NOW)
    order(merged, days_ago=600, amount="20", now=NOW)
    order(merged, days_ago=4, amount="2", now=NOW)
    EventRetention.objects.create(event_name="order", keep_days=365)
    retention_apply(now=NOW)
    actor = Actor.system("retention")

    merge = profiles_merge(survivor=survivor, merged=merged, actor=actor)
    survivor.refresh_from_db()
    assert (survivor.order_count, survivor.total_spent) == (4, Decimal("33"))
    rollup = EventRollup.objects.get(profile=survivor, name="order")
    assert (rollup.events, rollup.first_at) == (2, days_ago(600))

    profiles_unmerge(merge=merge, actor=actor)
    survivor.refresh_from_db()
    merged.refresh_from_db()
    assert (survivor.order_count, survivor.total_spent) == (2, Decimal("11"))
    assert (merged.order_count, merged.total_spent) == (2, Decimal("22"))
    assert EventRollup.objects.get(profile=survivor, name="order").first_at == days_ago(500)


@pytest.mark.postgres
def test_retention_drops_a_partition_and_keeps_metrics():
    old = (NOW - datetime.timedelta(days=800)).replace(day=10, hour=12)  # a month of its own, long expired
    month = partitions.month_start(old)
    partitions.partitions_create([month])
    name = partitions.partition_name(month)
    shopper = ProfileFactory()
    order(shopper, days_ago=(NOW - old).days, amount="500", now=NOW)
    EventFactory(profile=shopper, name="page_view", occurred_at=old, source="app", external_id="pv-1")
    order(shopper, days_ago=2, amount="50", now=NOW)
    before = metrics_of(shopper)
    EventRetention.objects.create(event_name="order", keep_days=730)
    EventRetention.objects.create(event_name="page_view", keep_days=90)

    result = retention_apply(now=NOW)

    assert name in result["partitions_dropped"]
    assert name not in {p["name"] for p in partitions.partitions_list()}
    assert result["deleted"] == {"order": 1, "page_view": 1}
    assert metrics_of(shopper) == before
    assert before[shopper.pk]["order_count"] == 2 and before[shopper.pk]["total_spent"] == Decimal("550")
    audit = AuditLog.objects.get(action=AuditLog.Action.EVENTS_EXPIRED, target=name)
    assert audit.details["deleted"] == {"order": 1, "page_view": 1} and audit.count == 2
    # The dropped event's key went with it: the same event may be sent again.
    EventFactory(profile=shopper, name="page_view", occurred_at=NOW, source="app", external_id="pv-1")


@pytest.mark.postgres
def test_a_partition_with_an_event_still_kept_is_not_dropped():
    old = (NOW - datetime.timedelta(days=800)).replace(day=10, hour=12)
    month = partitions.month_start(old)
    partitions.partitions_create([month])
    customer = ProfileFactory()
    EventFactory(profile=customer, name="page_view", occurred_at=old)
    EventFactory(profile=customer, name="support_chat", occurred_at=old)  # no policy: kept
    EventRetention.objects.create(event_name="page_view", keep_days=90)
    result = retention_apply(now=NOW)
    assert result == {"deleted": {"page_view": 1}, "partitions_dropped": []}
    assert list(Event.objects.values_list("name", flat=True)) == ["support_chat"]


def test_the_admin_sets_a_policy_and_refuses_less_than_sixty_days(client, staff_user):
    client.force_login(staff_user)
    url = reverse("admin:profiles_eventretention_add")
    page = client.get(url)
    assert page.status_code == 200 and "保留天数" in page.content.decode()
    refused = client.post(url, {"event_name": "page_view", "keep_days": "30", "is_active": "on", "purpose": ""})
    assert refused.status_code == 200 and "60" in refused.content.decode()
    assert not EventRetention.objects.exists()
    saved = client.post(url, {"event_name": "page_view", "keep_days": "180", "is_active": "on",
                              "purpose": "行为分析只需半年"})
    assert saved.status_code == 302
    assert EventRetention.objects.get().keep_days == 180
    assert client.get(reverse("admin:profiles_eventretention_changelist")).status_code == 200
