"""What came of a campaign: treated customers against the holdout, set-based.

Treated are the deliveries that left (sent or delivered), from their send time; the
holdout are the deliveries kept back (status `holdout`), from their would-be send time
(when they were decided). A customer converted when a goal event (the campaign's
conversion event and property filters) occurred after that time and at most
`attribution_days` later. Two queries read everything: one per variant and group, one per
group and day of first conversion. The statistics come from statsmodels and scipy.

Results are stored (CampaignResult) and recomputed by the tick while the window is open,
and for CAMPAIGN_RESULT_LATE_HOURS after it closed (events that occurred inside it but
arrive late); then they are frozen.
"""
import datetime
import math
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import (Case, Count, DateTimeField, DecimalField, Exists, F, FloatField, Max, Min, OuterRef, Q, Subquery,
                              Sum, Value, When)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from profiles.models import Event
from segments.conditions.compile import events_matching
from segments.conditions.parse import parse

from .models import Campaign, CampaignResult, Coupon, Delivery

TREATED = (Delivery.Status.SENT, Delivery.Status.DELIVERED)
MEASURED = (Delivery.Status.HOLDOUT, *TREATED)
ALPHA = 0.05
POWER = 0.8
REFRESH_EVERY = datetime.timedelta(minutes=10)  # the tick recomputes an open result at most this often


def goal_events(campaign: Campaign, now: datetime.datetime):
    """All events that count as a conversion for the campaign (for everyone)."""
    return events_matching(parse({"event": campaign.goal_event, "where": campaign.goal_where or []}), now)


SEND_TIME = Case(When(status=Delivery.Status.HOLDOUT, then=F("created_at")), default=F("sent_at"))
IS_TREATED = Case(When(status=Delivery.Status.HOLDOUT, then=Value(False)), default=Value(True))


def _measured(campaign: Campaign, now: datetime.datetime, bounds=None):
    """The measured deliveries, each with its send time, first conversion and revenue.
    `bounds` (the first and last send time) narrow them first to the customers with a goal
    event between the first send and the last window's end: a semi-join on the events'
    (name, time) index, so that the per-customer look-ups run for those few only."""
    window = datetime.timedelta(days=campaign.attribution_days)
    deliveries = Delivery.objects.filter(campaign=campaign, status__in=MEASURED).annotate(send_time=SEND_TIME)
    if not campaign.goal_event:
        return deliveries.annotate(first_at=Value(None, output_field=DateTimeField()),
                                   spent=Value(0.0, output_field=FloatField()))
    if bounds is not None:
        first_send, last_send = bounds
        active = goal_events(campaign, now).filter(occurred_at__gt=first_send, occurred_at__lte=last_send + window)
        deliveries = deliveries.filter(profile_id__in=active.order_by().values("profile_id"))
    conversions = goal_events(campaign, now).filter(
        profile_id=OuterRef("profile_id"), occurred_at__gt=OuterRef("send_time"),
        occurred_at__lte=OuterRef("send_time") + window).order_by()
    first = conversions.values("profile_id").annotate(first=Min("occurred_at")).values("first")
    revenue = conversions.values("profile_id").annotate(total=Sum("amount")).values("total")
    return deliveries.annotate(
        first_at=Subquery(first),
        spent=Cast(Coalesce(Subquery(revenue), Value(0), output_field=DecimalField(max_digits=14, decimal_places=2)),
                   FloatField()))


def _send_bounds(campaign: Campaign):
    bounds = Delivery.objects.filter(campaign=campaign, status__in=MEASURED).annotate(send_time=SEND_TIME).aggregate(
        first=Min("send_time"), last=Max("send_time"))
    return (bounds["first"], bounds["last"]) if bounds["first"] else None


def _counts(campaign: Campaign, now: datetime.datetime) -> tuple[list[dict], list[dict]]:
    """Two queries: the deliveries' counts per variant and group (no events read), then
    the converted customers per variant, group and day of their first conversion."""
    rows = list(Delivery.objects.filter(campaign=campaign, status__in=MEASURED)
                .annotate(send_time=SEND_TIME, treated=IS_TREATED).order_by().values("variant_id", "treated").annotate(
        n=Count("pk"),
        delivered=Count("pk", filter=Q(status=Delivery.Status.DELIVERED) | Q(delivered_at__isnull=False)),
        opened=Count("pk", filter=Q(opened_at__isnull=False)),
        clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
        unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
        first_send=Min("send_time"), last_send=Max("send_time"),
    ))
    for row in rows:
        row.update(converted=0, revenue=0.0, revenue_squares=0.0, clicked_not_converted=row["clicked"])
    sends = [row for row in rows if row["first_send"]]
    if not campaign.goal_event or not sends:
        return rows, []
    bounds = (min(row["first_send"] for row in sends), max(row["last_send"] for row in sends))
    converted = list(_measured(campaign, now, bounds).filter(first_at__isnull=False)
                     .annotate(treated=IS_TREATED, day=TruncDate("first_at")).order_by()
                     .values("variant_id", "treated", "day").annotate(
        converted=Count("pk"),
        revenue=Coalesce(Sum("spent"), Value(0.0)),
        revenue_squares=Coalesce(Sum(F("spent") * F("spent"), output_field=FloatField()), Value(0.0)),
        clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
    ))
    by_group = {(row["variant_id"], row["treated"]): row for row in rows}
    days: dict[tuple, int] = {}
    for item in converted:
        row = by_group[(item["variant_id"], item["treated"])]
        row["converted"] += item["converted"]
        row["revenue"] += float(item["revenue"])
        row["revenue_squares"] += float(item["revenue_squares"])
        row["clicked_not_converted"] -= item["clicked"]
        days[(item["treated"], item["day"])] = days.get((item["treated"], item["day"]), 0) + item["converted"]
    return rows, [{"treated": treated, "day": day, "n": n} for (treated, day), n in sorted(
        days.items(), key=lambda item: (item[0][1], item[0][0]))]


def _merge(rows: list[dict]) -> dict:
    keys = ("n", "converted", "revenue", "revenue_squares", "delivered", "opened", "clicked",
            "clicked_not_converted", "unsubscribed")
    merged = {key: sum(row[key] or 0 for row in rows) for key in keys}
    merged["revenue"], merged["revenue_squares"] = float(merged["revenue"]), float(merged["revenue_squares"])
    return merged


def _finite(value):
    return None if value is None or not math.isfinite(value) else float(value)


def compare(treated: dict, control: dict) -> dict:
    """Treated against control: conversion rates, absolute and relative lift with 95 %
    intervals, the p-value of the two-proportion z-test (pooled), the customers needed at
    80 % power for the observed lift, and revenue per customer with the incremental
    revenue's interval. Without a control group (0 % holdout) only the rates."""
    from scipy.stats import norm
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest

    n_t, c_t, n_c, c_c = treated["n"], treated["converted"], control["n"], control["converted"]
    out = {"treated_rate": c_t / n_t if n_t else None, "control_rate": c_c / n_c if n_c else None,
           "has_control": bool(n_c), "significant": False}
    if not n_t or not n_c:
        return out
    p_t, p_c = c_t / n_t, c_c / n_c
    out["lift"] = p_t - p_c
    if 0 < c_t + c_c < n_t + n_c:
        _stat, p_value = proportions_ztest([c_t, c_c], [n_t, n_c])
        out["p_value"] = _finite(p_value)
        low, high = confint_proportions_2indep(c_t, n_t, c_c, n_c, method="wald", compare="diff", alpha=ALPHA)
        out["lift_low"], out["lift_high"] = _finite(low), _finite(high)
        out["significant"] = out["p_value"] is not None and out["p_value"] < ALPHA
    else:  # nobody converted (or everybody did): no difference to test
        out["p_value"], out["lift_low"], out["lift_high"] = 1.0, 0.0, 0.0
    if c_c and c_t:
        out["relative_lift"] = p_t / p_c - 1
        low, high = confint_proportions_2indep(c_t, n_t, c_c, n_c, method="log", compare="ratio", alpha=ALPHA)
        out["relative_lift_low"], out["relative_lift_high"] = _finite(low - 1), _finite(high - 1)
    elif c_c:
        out["relative_lift"] = -1.0
    if p_t != p_c:
        ratio = n_c / n_t
        per_treated = NormalIndPower().solve_power(effect_size=abs(proportion_effectsize(p_t, p_c)), alpha=ALPHA,
                                                   power=POWER, ratio=ratio, alternative="two-sided")
        needed = math.ceil(per_treated) + math.ceil(per_treated * ratio)
        out["customers_needed"] = needed
        out["customers_more"] = max(0, needed - n_t - n_c)
    # Revenue per customer (every customer of the group, converted or not).
    mean_t, mean_c = treated["revenue"] / n_t, control["revenue"] / n_c
    out["revenue_per_treated"], out["revenue_per_control"] = mean_t, mean_c
    variance = sum(max(0.0, (group["revenue_squares"] - group["n"] * mean ** 2) / (group["n"] - 1)) / group["n"]
                   for group, mean in ((treated, mean_t), (control, mean_c)) if group["n"] > 1)
    incremental = (mean_t - mean_c) * n_t
    out["incremental_revenue"] = incremental
    if variance > 0:
        low, high = norm.interval(1 - ALPHA, loc=mean_t - mean_c, scale=math.sqrt(variance))
        out["incremental_revenue_low"], out["incremental_revenue_high"] = low * n_t, high * n_t
    else:
        out["incremental_revenue_low"] = out["incremental_revenue_high"] = incremental
    return out


def _group(rows, *, treated: bool, variant_id=None) -> dict:
    return _merge([row for row in rows if row["treated"] == treated
                   and (variant_id is None or row["variant_id"] == variant_id)])


def _with_money(comparison: dict, group: dict, cost_per_message: float) -> dict:
    cost = cost_per_message * group["n"]
    comparison["cost"] = cost
    incremental = comparison.get("incremental_revenue")
    comparison["roi"] = (incremental - cost) / cost if cost and incremental is not None else None
    return comparison


def result_compute(campaign: Campaign, now: datetime.datetime | None = None) -> dict:
    """The whole result of a campaign, as stored in CampaignResult.data."""
    from cdp.sql import tune_for_analysis

    now = now or timezone.now()
    with transaction.atomic():
        tune_for_analysis()  # no JIT: compiling the per-customer look-ups cost more (2 s) than they take
        rows, days = _counts(campaign, now)
    cost_per_message = float(campaign.destination.cost_per_message)
    treated, holdout = _group(rows, treated=True), _group(rows, treated=False)
    overall = _with_money(compare(treated, holdout), treated, cost_per_message)
    variants = []
    labels = dict(campaign.variants.values_list("pk", "label"))
    first_label = min(labels.values()) if labels else None
    first_variant = _group(rows, treated=True, variant_id=next((pk for pk, label in labels.items()
                                                                 if label == first_label), None))
    for pk, label in sorted(labels.items(), key=lambda item: item[1]):
        group = _group(rows, treated=True, variant_id=pk)
        entry = {"label": label, "counts": group,
                 "vs_holdout": _with_money(compare(group, holdout), group, cost_per_message)}
        if label != first_label:
            entry["vs_first"] = compare(group, first_variant)
        variants.append(entry)
    last_send = max((row["last_send"] for row in rows if row["last_send"]), default=None)
    coupons = Coupon.objects.filter(delivery__campaign=campaign)
    return {
        "goal": campaign.goal_event, "attribution_days": campaign.attribution_days,
        "treated": treated, "holdout": holdout, "overall": overall, "variants": variants,
        "first_label": first_label,
        "daily": [{"treated": row["treated"], "day": row["day"].isoformat(), "n": row["n"]} for row in days],
        "coupons": {"issued": coupons.count(), "redeemed": coupons.filter(redeemed_at__isnull=False).count()},
        "last_send": last_send.isoformat() if last_send else None,
    }


def coupons_redeem(campaign: Campaign, now: datetime.datetime | None = None) -> int:
    """Record redemptions: a coupon of the campaign is redeemed by the first order event
    (the goal event, else `order`) of its customer that carries its code in the `coupon`
    property, after it was sent. Set-based; returns how many were newly redeemed."""
    now = now or timezone.now()
    carrying = Event.objects.alias(coupon_code=KT("properties__coupon")).filter(
        name=campaign.goal_event or "order", profile_id=OuterRef("delivery__profile_id"),
        coupon_code=OuterRef("code"), occurred_at__gte=OuterRef("delivery__sent_at"), occurred_at__lte=now)
    first = carrying.order_by().values("profile_id").annotate(first=Min("occurred_at")).values("first")
    redeemed = (Coupon.objects.filter(delivery__campaign=campaign, delivery__sent_at__isnull=False,
                                      redeemed_at__isnull=True)
                .annotate(first=Subquery(first)).filter(first__isnull=False))
    # UPDATE … FROM a join is not portable: the pairs are read once, then written in batches.
    pairs = list(redeemed.values_list("pk", "first"))
    Coupon.objects.bulk_update([Coupon(pk=pk, redeemed_at=at) for pk, at in pairs], ["redeemed_at"],
                               batch_size=5000)
    return len(pairs)


def window_closes(campaign: Campaign, data: dict) -> datetime.datetime | None:
    """When the attribution window of the last send closes; None while more may be sent."""
    if campaign.status not in (Campaign.Status.FINISHED, Campaign.Status.CANCELLED) or not data.get("last_send"):
        return None
    return (datetime.datetime.fromisoformat(data["last_send"])
            + datetime.timedelta(days=campaign.attribution_days))


def result_refresh(*, campaign_id: int, now: datetime.datetime | None = None) -> CampaignResult | None:
    """Recompute and store a campaign's result, unless it is frozen already; frozen once
    its window closed more than CAMPAIGN_RESULT_LATE_HOURS ago."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("destination").filter(pk=campaign_id).first()
    if campaign is None:
        return None
    stored = CampaignResult.objects.filter(campaign=campaign).first()
    if stored is not None and stored.is_final:
        return stored
    started = time.monotonic()
    coupons_redeem(campaign, now)
    data = result_compute(campaign, now)
    closes = window_closes(campaign, data)
    final = closes is not None and now >= closes + datetime.timedelta(hours=settings.CAMPAIGN_RESULT_LATE_HOURS)
    with transaction.atomic():
        result, _created = CampaignResult.objects.update_or_create(campaign=campaign, defaults={
            "computed_at": now, "window_closes_at": closes, "is_final": final, "data": data,
            "duration_ms": int((time.monotonic() - started) * 1000)})
    return result


def results_due(now: datetime.datetime | None = None) -> int:
    """For the tick: refresh the results of every launched campaign that is not frozen."""
    now = now or timezone.now()
    fresh = CampaignResult.objects.filter(Q(is_final=True) | Q(computed_at__gt=now - REFRESH_EVERY),
                                          campaign_id=OuterRef("pk"))
    due = Campaign.objects.filter(launched_at__isnull=False).exclude(Exists(fresh)).values_list("pk", flat=True)
    count = 0
    for campaign_id in due:
        result_refresh(campaign_id=campaign_id, now=now)
        count += 1
    return count


RESULT_SEGMENTS = {
    "clicked_not_converted": _("clicked but did not convert"),
    "converted": _("converted"),
}


def result_customers(campaign: Campaign, kind: str, now: datetime.datetime | None = None):
    """The treated customers of a result group (RESULT_SEGMENTS), as a profile_id queryset."""
    now = now or timezone.now()
    if kind == "converted":  # only customers with a goal event in the windows' span can have converted
        chosen = _measured(campaign, now, _send_bounds(campaign)).filter(status__in=TREATED, first_at__isnull=False)
    elif kind == "clicked_not_converted":
        chosen = _measured(campaign, now).filter(status__in=TREATED, clicked_at__isnull=False, first_at__isnull=True)
    else:
        raise ValidationError(_("Unknown result group."), code="result_group_unknown")
    return chosen.order_by().values("profile_id").distinct()


def segment_from_result(*, campaign: Campaign, kind: str, actor, now: datetime.datetime | None = None):
    """A static segment of the customers of one result group, written set-based."""
    from cdp.audit import audit_record
    from cdp.sql import insert_from_select
    from segments.models import Segment, SegmentMembership, SegmentSnapshot
    from segments.slugs import segment_slug_suggest

    now = now or timezone.now()
    customers = result_customers(campaign, kind, now)
    name = f"{campaign.name} · {RESULT_SEGMENTS[kind]} @ {timezone.localtime(now):%Y-%m-%d %H:%M}"[:150]
    with transaction.atomic():
        segment = Segment.objects.create(name=name, slug=segment_slug_suggest(name), kind=Segment.Kind.STATIC,
                                         description=str(_("Made from the result of campaign “%(name)s”.")
                                                         % {"name": campaign.name}))
        rows = customers.annotate(m_segment=Value(segment.pk), m_at=Value(now, output_field=DateTimeField())
                                  ).values("m_segment", "profile_id", "m_at")
        count = insert_from_select(SegmentMembership, {"segment_id": "m_segment", "profile_id": "profile_id",
                                                       "entered_at": "m_at"}, rows)
        segment.member_count, segment.last_calculated_at, segment.calculated_version = count, now, 1
        segment.save(update_fields=["member_count", "last_calculated_at", "calculated_version"])
        SegmentSnapshot.objects.create(segment=segment, version=1, calculated_at=now, member_count=count,
                                       entered=count, exited=0, duration_ms=0)
        audit_record(actor=actor, action="campaign.segment_from_result", target=f"campaign:{campaign.pk}",
                     details={"segment": segment.pk, "group": kind, "members": count})
    return segment


def global_control_result(*, since: datetime.datetime, until: datetime.datetime, goal_event: str = "order"):
    """The global control group (customers no campaign ever messages, CAMPAIGN_GLOBAL_CONTROL_PERCENT)
    against everyone else: who did the goal event in [since, until). The lift of all campaigns
    together, intention-to-treat (the rest counts whether or not a campaign reached them).
    None when there is no global control group. One query over the active customers."""
    from profiles.models import Profile, ProfileStatus

    from .buckets import GLOBAL_CONTROL_SALT, Bucket

    control = settings.CAMPAIGN_GLOBAL_CONTROL_PERCENT * 100
    if not control:
        return None
    did = Event.objects.filter(profile_id=OuterRef("pk"), name=goal_event, occurred_at__gte=since,
                               occurred_at__lt=until)
    rows = (Profile.objects.filter(status=ProfileStatus.ACTIVE).annotate(global_bucket=Bucket(GLOBAL_CONTROL_SALT))
            .annotate(in_control=Case(When(global_bucket__lt=control, then=Value(True)), default=Value(False)))
            .order_by().values("in_control").annotate(n=Count("pk"), converted=Count("pk", filter=Exists(did))))
    from cdp.sql import tune_for_analysis

    with transaction.atomic():
        tune_for_analysis()
        rows = list(rows)
    groups = {bool(row["in_control"]): row for row in rows}
    empty = {"n": 0, "converted": 0}
    rest, held = groups.get(False, empty), groups.get(True, empty)
    out = compare({**rest, "revenue": 0.0, "revenue_squares": 0.0}, {**held, "revenue": 0.0, "revenue_squares": 0.0})
    for key in ("revenue_per_treated", "revenue_per_control", "incremental_revenue", "incremental_revenue_low",
                "incremental_revenue_high"):
        out.pop(key, None)  # orders counted, not their amounts
    return {"rest": rest, "control": held, "comparison": out}
