"""The metrics rules, and the set-based recompute checked against a plain Python one."""
import datetime
import random
from decimal import Decimal

import pytest
from django.utils import timezone

from profiles import metrics
from profiles.metrics import metrics_recompute
from profiles.models import Profile
from tests.factories import EventFactory, ProfileFactory, order

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def seen(profile, *days_ago):
    for days in days_ago:
        EventFactory(profile=profile, occurred_at=NOW - datetime.timedelta(days=days))


def recomputed(profile) -> Profile:
    metrics_recompute(now=NOW)
    return Profile.objects.get(pk=profile.pk)


@pytest.mark.parametrize(
    "days_ago, stage",
    [
        ((), "prospect"),
        ((3,), "new"),
        ((29, 3), "new"),
        ((45, 10), "active"),
        ((80, 10), "returning"),
        ((45,), "dormant"),
        ((89,), "dormant"),
        ((91,), "churned"),
        ((400, 200), "churned"),
    ],
)
def test_lifecycle_stage_rules(days_ago, stage):
    profile = ProfileFactory()
    seen(profile, *days_ago)
    assert recomputed(profile).lifecycle_stage == stage


@pytest.mark.parametrize(
    "orders, expected_rfm",
    [
        ([], (None, None, None)),
        ([(10, "100")], (5, 1, 1)),
        ([(45, "300")], (4, 1, 2)),
        ([(100, "500"), (200, "600")], (3, 2, 3)),
        ([(200, "1000")] * 3, (2, 3, 4)),
        ([(300, "1000")] * 5, (1, 4, 4)),
        ([(5, "1000")] * 8, (5, 5, 5)),
    ],
)
def test_rfm_scores_use_fixed_thresholds(orders, expected_rfm):
    profile = ProfileFactory()
    for days, amount in orders:
        order(profile, days_ago=days, amount=amount, now=NOW)
    profile = recomputed(profile)
    assert (profile.rfm_recency, profile.rfm_frequency, profile.rfm_monetary) == expected_rfm


def test_orders_and_spending_come_from_order_events_only():
    profile = ProfileFactory()
    order(profile, days_ago=5, amount="199.90", now=NOW)
    order(profile, days_ago=50, amount="800.10", now=NOW)
    EventFactory(profile=profile, name="payment", amount=Decimal("199.90"), occurred_at=NOW - datetime.timedelta(days=5))
    seen(profile, 100)
    profile = recomputed(profile)
    assert profile.order_count == 2
    assert profile.total_spent == Decimal("1000.00")
    assert profile.last_order_at == NOW - datetime.timedelta(days=5)
    assert profile.first_seen_at == NOW - datetime.timedelta(days=100)
    assert profile.last_seen_at == NOW - datetime.timedelta(days=5)
    assert profile.metrics_updated_at == NOW


def test_a_profile_whose_events_are_gone_returns_to_prospect():
    profile = ProfileFactory()
    order(profile, days_ago=5, amount="10", now=NOW)
    assert recomputed(profile).order_count == 1
    profile.events.all().delete()
    profile = recomputed(profile)
    assert (profile.order_count, profile.total_spent, profile.rfm_recency, profile.lifecycle_stage) == (
        0, Decimal("0"), None, "prospect",
    )


def test_recomputing_some_profiles_leaves_the_others_alone():
    touched, untouched = ProfileFactory(), ProfileFactory()
    order(touched, days_ago=1, amount="10", now=NOW)
    order(untouched, days_ago=1, amount="10", now=NOW)
    assert metrics_recompute(profile_ids=[touched.pk], now=NOW) == 1
    untouched.refresh_from_db()
    assert untouched.order_count == 0 and untouched.metrics_updated_at is None


def test_named_customers_are_recomputed_in_chunks_with_the_same_result(monkeypatch):
    """Several statements (2 customers each) for 5 customers, with and without events."""
    monkeypatch.setattr(metrics, "IDS_PER_STATEMENT", 2)
    buyers = [ProfileFactory() for _ in range(3)]
    idle = [ProfileFactory(order_count=7) for _ in range(2)]  # stale figures to reset
    for n, buyer in enumerate(buyers, start=1):
        order(buyer, days_ago=n, amount="100", now=NOW)
    assert metrics_recompute(profile_ids=[p.pk for p in buyers + idle], now=NOW) == 5
    assert [Profile.objects.get(pk=p.pk).order_count for p in buyers + idle] == [1, 1, 1, 0, 0]


def python_metrics(events, now):
    """An independent, obvious implementation of the documented rules."""
    if not events:
        return (0, Decimal("0"), None, None, None, "prospect")
    times = [e[1] for e in events]
    orders = [e for e in events if e[0] == "order"]
    spent = sum((e[2] for e in orders), Decimal("0"))
    days = lambda t: (now - t).total_seconds() / 86400  # noqa: E731
    if orders:
        last = max(e[1] for e in orders)
        r = next((5 - i for i, d in enumerate(metrics.RECENCY_DAYS) if days(last) <= d), 1)
        f = next((5 - i for i, n in enumerate(metrics.FREQUENCY_ORDERS) if len(orders) >= n), 1)
        m = next((5 - i for i, a in enumerate(metrics.MONETARY_YUAN) if spent >= a), 1)
    else:
        r = f = m = None
    if days(min(times)) <= 30:
        stage = "new"
    elif days(max(times)) <= 30:
        stage = "active" if any(30 < days(t) <= 60 for t in times) else "returning"
    elif days(max(times)) <= 90:
        stage = "dormant"
    else:
        stage = "churned"
    return (len(orders), spent, r, f, m, stage)


def test_set_based_recompute_agrees_with_python_on_random_histories():
    rng = random.Random(7)
    expected = {}
    for _ in range(60):
        profile = ProfileFactory()
        events = []
        for _ in range(rng.randint(0, 12)):
            name = rng.choice(["order", "page_view", "product_view"])
            # whole hours avoid sub-second ties at the window edges
            when = NOW - datetime.timedelta(hours=rng.randint(1, 24 * 400))
            amount = Decimal(rng.randint(1, 400000)) / 100 if name == "order" else None
            EventFactory(profile=profile, name=name, occurred_at=when, amount=amount)
            events.append((name, when, amount))
        expected[profile.pk] = python_metrics(events, NOW)
    metrics_recompute(now=NOW)
    actual = {
        p.pk: (p.order_count, p.total_spent, p.rfm_recency, p.rfm_frequency, p.rfm_monetary, p.lifecycle_stage)
        for p in Profile.objects.all()
    }
    assert actual == expected
