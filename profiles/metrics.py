"""Computed customer metrics, recomputed from events set-based.

The rules (documented in the README too; the lifecycle analysis shares them):

* first/last seen: the first and last event of any kind.
* orders, total spent, last order: events named ``order`` and their amounts.
* RFM scores 1–5 by fixed thresholds (so one customer's score never depends on who else
  is in the database, and recomputing one profile agrees with recomputing all):
  - R (recency of the last order): ≤30 days → 5, ≤60 → 4, ≤120 → 3, ≤240 → 2, older → 1;
  - F (number of orders): ≥8 → 5, ≥5 → 4, ≥3 → 3, 2 → 2, 1 → 1;
  - M (total spent, CNY): ≥8,000 → 5, ≥3,000 → 4, ≥1,000 → 3, ≥300 → 2, less → 1;
  - no order: no scores.
* Events deleted by a retention policy (profiles.retention) still count, through their
  rollups (per customer and event name: how many, their amounts, first and last time).
* Lifecycle stage, with W = 30 days:
  - prospect: no event yet;
  - new: first seen within the last W days;
  - active: seen within the last W days and also in the W days before;
  - returning: seen within the last W days, not in the W days before, but earlier;
  - dormant: last seen 30–90 days ago;
  - churned: last seen more than 90 days ago.
"""
import datetime
from collections.abc import Iterable
from decimal import Decimal

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from cdp.sql import tune_for_analysis

from .models import Event, EventRollup, LifecycleStage, Profile

ORDER_EVENT = "order"
LIFECYCLE_WINDOW_DAYS = 30
CHURNED_AFTER_DAYS = 90
RECENCY_DAYS = (30, 60, 120, 240)  # R5 … R2 upper bounds
FREQUENCY_ORDERS = (8, 5, 3, 2)  # F5 … F2 lower bounds
MONETARY_YUAN = (8000, 3000, 1000, 300)  # M5 … M2 lower bounds


# Customers per statement when some are named: with more, PostgreSQL's estimate of their
# events tips it into reading every event instead of their rows of the timeline index
# (20,000 customers: 0.6–2.8 s; 2,000: 20 ms).
IDS_PER_STATEMENT = 2000


def metrics_recompute(*, profile_ids: Iterable[int] | None = None, now: datetime.datetime | None = None) -> int:
    """Recompute metrics for the given profiles (all when None); returns rows updated."""
    now = now or timezone.now()
    if profile_ids is None:
        return _recompute(None, now)
    ids = list(profile_ids)
    with transaction.atomic():
        return sum(_recompute(ids[start:start + IDS_PER_STATEMENT], now)
                   for start in range(0, len(ids), IDS_PER_STATEMENT))


def _recompute(ids: list[int] | None, now: datetime.datetime) -> int:
    events = Event.objects.all() if ids is None else Event.objects.filter(profile_id__in=ids)
    rolled = EventRollup.objects.exists()  # without rollups the aggregate reads the events only
    with transaction.atomic():
        tune_for_analysis()  # no JIT: compiling the aggregate took longer than running it
        with_events = _update(_aggregates(events, now, rolled=rolled), now, returning=ids is not None)
        updated = len(with_events) if ids is not None else with_events
        if ids is None:
            without_events = Profile.objects.filter(~Exists(Event.objects.filter(profile_id=OuterRef("pk"))))
        else:
            without_events = Profile.objects.filter(pk__in=[pk for pk in ids if pk not in with_events])
        if rolled:
            # Customers whose every event has expired: their metrics from the rollups alone.
            rollups = EventRollup.objects.filter(profile__in=without_events.values("pk"))
            updated += _update(_scored(_rollup_aggregates(rollups), now), now, returning=False)
            without_events = without_events.filter(~Exists(EventRollup.objects.filter(profile_id=OuterRef("pk"))))
        updated += without_events.update(
            first_seen_at=None, last_seen_at=None, order_count=0, total_spent=Decimal("0"),
            last_order_at=None, rfm_recency=None, rfm_frequency=None, rfm_monetary=None,
            lifecycle_stage=LifecycleStage.PROSPECT, metrics_updated_at=now,
        )
    return updated


def _update(aggregates, now: datetime.datetime, *, returning: bool) -> set[int] | int:
    """UPDATE the profiles from the per-profile `aggregates`: the ids updated when
    `returning`, else how many."""
    try:
        sql, params = aggregates.query.sql_with_params()
    except EmptyResultSet:  # no customer named
        return set() if returning else 0
    table = connection.ops.quote_name(Profile._meta.db_table)
    columns = {
        "first_seen_at": "m_first_seen",
        "last_seen_at": "m_last_seen",
        "order_count": "m_order_count",
        "total_spent": "m_total_spent",
        "last_order_at": "m_last_order",
        "rfm_recency": "m_r",
        "rfm_frequency": "m_f",
        "rfm_monetary": "m_m",
        "lifecycle_stage": "m_stage",
    }
    assignments = ", ".join(f"{connection.ops.quote_name(col)} = m.{alias}" for col, alias in columns.items())
    updated_at = connection.ops.adapt_datetimefield_value(now)
    # Given ids, the update says which of them have events, so the others are known
    # without asking the events table (an anti-join over every event, for a few thousand ids).
    returning_sql = f" RETURNING {table}.id" if returning else ""
    with connection.cursor() as cursor:
        # One UPDATE … FROM (aggregate) statement: set-based on SQLite ≥ 3.33 and PostgreSQL.
        cursor.execute(
            f"UPDATE {table} SET {assignments}, metrics_updated_at = %s "
            f"FROM ({sql}) AS m WHERE {table}.id = m.profile_id{returning_sql}",
            (updated_at, *params),
        )
        if returning:
            return {row[0] for row in cursor.fetchall()}
        return cursor.rowcount  # SQLite counts rows once read


def _aggregates(events, now: datetime.datetime, *, rolled: bool = False):
    day = datetime.timedelta(days=1)
    window_start = now - LIFECYCLE_WINDOW_DAYS * day
    previous_start = now - 2 * LIFECYCLE_WINDOW_DAYS * day
    is_order = Q(name=ORDER_EVENT)
    money = DecimalField(max_digits=14, decimal_places=2)
    first_seen, last_seen = Min("occurred_at"), Max("occurred_at")
    order_count, last_order = Count("id", filter=is_order), Max("occurred_at", filter=is_order)
    total_spent = Coalesce(Sum("amount", filter=is_order), Value(Decimal("0")), output_field=money)
    if rolled:
        # Plus the rollups of the customer's expired events (one row per event name).
        rollups = EventRollup.objects.filter(profile_id=OuterRef("profile_id")).order_by()
        of_all = rollups.values("profile_id")
        first_rolled = Subquery(of_all.annotate(x=Min("first_at")).values("x")[:1])
        last_rolled = Subquery(of_all.annotate(x=Max("last_at")).values("x")[:1])
        orders = rollups.filter(name=ORDER_EVENT)
        first_seen = Least(first_seen, Coalesce(first_rolled, first_seen))
        last_seen = Greatest(last_seen, Coalesce(last_rolled, last_seen))
        last_order = Coalesce(Greatest(last_order, Subquery(orders.values("last_at")[:1])), last_order,
                              Subquery(orders.values("last_at")[:1]))
        order_count = order_count + Coalesce(Subquery(orders.values("events")[:1]), Value(0))
        total_spent = total_spent + Coalesce(Subquery(orders.values("amount_total")[:1]), Value(Decimal("0")),
                                             output_field=money)
    return _scored(
        events.order_by()
        .values("profile_id")
        .annotate(
            m_first_seen=first_seen,
            m_last_seen=last_seen,
            m_order_count=order_count,
            m_total_spent=total_spent,
            m_last_order=last_order,
            m_seen_before=Max(
                Case(
                    When(occurred_at__gte=previous_start, occurred_at__lt=window_start, then=Value(1)),
                    default=Value(0),
                    output_field=IntegerField(),
                )
            ),
        ),
        now,
    )


def _rollup_aggregates(rollups):
    """The same per-customer figures from rollups alone (rolled-up events are older than
    the 60 days the lifecycle compares, so none was seen in the previous window)."""
    is_order = Q(name=ORDER_EVENT)
    return rollups.order_by().values("profile_id").annotate(
        m_first_seen=Min("first_at"),
        m_last_seen=Max("last_at"),
        m_order_count=Coalesce(Sum("events", filter=is_order), Value(0)),
        m_total_spent=Coalesce(Sum("amount_total", filter=is_order), Value(Decimal("0")),
                               output_field=DecimalField(max_digits=14, decimal_places=2)),
        m_last_order=Max("last_at", filter=is_order),
        m_seen_before=Value(0, output_field=IntegerField()),
    )


def _scored(aggregates, now: datetime.datetime):
    """RFM scores and lifecycle stage from the per-customer m_* figures."""
    day = datetime.timedelta(days=1)
    window_start = now - LIFECYCLE_WINDOW_DAYS * day
    churn_start = now - CHURNED_AFTER_DAYS * day
    return (
        aggregates
        .annotate(
            m_r=_score(
                [When(m_last_order__gte=now - days * day, then=Value(5 - i)) for i, days in enumerate(RECENCY_DAYS)],
                has_orders=Q(m_order_count__gt=0),
            ),
            m_f=_score(
                [When(m_order_count__gte=n, then=Value(5 - i)) for i, n in enumerate(FREQUENCY_ORDERS)],
                has_orders=Q(m_order_count__gt=0),
            ),
            m_m=_score(
                [When(m_total_spent__gte=amount, then=Value(5 - i)) for i, amount in enumerate(MONETARY_YUAN)],
                has_orders=Q(m_order_count__gt=0),
            ),
            m_stage=Case(
                When(m_first_seen__gte=window_start, then=Value(LifecycleStage.NEW.value)),
                When(m_last_seen__gte=window_start, m_seen_before=1, then=Value(LifecycleStage.ACTIVE.value)),
                When(m_last_seen__gte=window_start, then=Value(LifecycleStage.RETURNING.value)),
                When(m_last_seen__gte=churn_start, then=Value(LifecycleStage.DORMANT.value)),
                default=Value(LifecycleStage.CHURNED.value),
            ),
        )
    )


def _score(whens: list[When], *, has_orders: Q) -> Case:
    """The first matching threshold's score, 1 when none matches, NULL without orders."""
    return Case(
        When(~has_orders, then=Value(None)),
        *whens,
        default=Value(1),
        output_field=IntegerField(),
    )
