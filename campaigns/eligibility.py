"""Who may get a campaign's message right now, decided set-based in the database.

The audience (segment members, merged customers resolved to their survivor, active only)
passes the steps of `STEPS` in order; each step's flag is one SQL expression, so the
funnel is one query and the outbox is one INSERT … SELECT over the same flags.
"""
import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, Case, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import Channel
from cdp.sql import tune_for_analysis
from consent.selectors import consent_joined
from profiles.models import Identity, Profile, ProfileStatus
from segments.models import SegmentMembership

from .buckets import GLOBAL_CONTROL_SALT, Bucket, holdout_salt
from .models import Campaign, Delivery

# Statuses of a delivery that count against a customer's frequency cap: on its way or out.
CAP_COUNTS = [Delivery.Status.QUEUED, Delivery.Status.SENDING, Delivery.Status.SENT, Delivery.Status.DELIVERED]
# The identity kind that is the address on channels without a profile column.
CHANNEL_IDENTITY = {Channel.WECHAT: "wechat_openid", Channel.APP_PUSH: "push_token"}
# A mainland mobile number in E.164; numbers of other countries are taken as they are.
CN_MOBILE = r"^\+861[3-9][0-9]{9}$"


@dataclass(frozen=True)
class Step:
    code: str
    label: str


# In order; each removes customers from those the previous steps kept.
STEPS = [
    Step("consent", _("Consent counts")),
    Step("contactable", _("Not blocked on the channel")),
    Step("address", _("Has an address for the channel")),
    Step("under_cap", _("Under the frequency cap")),
    Step("not_global_control", _("Not in the global control group")),
]


@dataclass(frozen=True)
class FunnelRow:
    code: str
    label: str
    count: int
    removed: int


@dataclass(frozen=True)
class Funnel:
    in_audience: int
    steps: list[FunnelRow]
    holdout: int
    to_send: int

    def as_dict(self) -> dict:
        return {"in_audience": self.in_audience, "holdout": self.holdout, "to_send": self.to_send,
                **{row.code: row.count for row in self.steps}}


def audience(campaign: Campaign) -> QuerySet:
    """The segment's active members; a member merged into another customer counts as
    that survivor (once)."""
    members = SegmentMembership.objects.filter(segment_id=campaign.segment_id).values("profile_id")
    survivors = Profile.objects.filter(pk__in=members, merged_into__isnull=False).values("merged_into_id")
    return Profile.objects.filter(Q(pk__in=members) | Q(pk__in=survivors), status=ProfileStatus.ACTIVE)


def address_q(channel: str) -> Q:
    if channel == Channel.SMS:
        return Q(phone__regex=CN_MOBILE) | (Q(phone__startswith="+") & ~Q(phone__startswith="+86"))
    if channel == Channel.PHONE:
        return ~Q(phone="")
    if channel == Channel.EMAIL:
        return ~Q(email="")
    if channel in CHANNEL_IDENTITY:
        return Q(Exists(Identity.objects.filter(profile_id=OuterRef("pk"), kind_id=CHANNEL_IDENTITY[channel])))
    return Q()


def address_expression(channel: str):
    """The column or subquery that is each customer's address on the channel."""
    if channel in (Channel.SMS, Channel.PHONE):
        return "phone"
    if channel == Channel.EMAIL:
        return "email"
    if channel in CHANNEL_IDENTITY:
        return Subquery(Identity.objects.filter(profile_id=OuterRef("pk"), kind_id=CHANNEL_IDENTITY[channel])
                        .order_by("-created_at").values("value")[:1])
    return None


def over_cap(channel: str, messages: int, days: int, now: datetime.datetime) -> QuerySet:
    """Ids of customers who already have `messages` or more on the channel in the window."""
    from django.db.models import Count

    return (Delivery.objects.filter(channel=channel, status__in=CAP_COUNTS,
                                    created_at__gt=now - datetime.timedelta(days=days))
            .values("profile_id").annotate(n=Count("id")).filter(n__gte=messages).values("profile_id"))


def with_steps(campaign: Campaign, now: datetime.datetime, queryset: QuerySet) -> tuple[QuerySet, dict[str, Q]]:
    """`queryset` with what the steps read joined in, and each step's condition (an
    empty Q where a step keeps everyone). Consent and do-not-contact are LEFT JOINs,
    not a subquery per customer: the funnel reads half a million flags at once."""
    purpose, channel = campaign.purpose, campaign.purpose.channel
    messages, days = campaign.frequency_cap()
    control = settings.CAMPAIGN_GLOBAL_CONTROL_PERCENT * 100
    queryset, consent, contactable = consent_joined(queryset, purpose, now)
    if control:
        queryset = queryset.annotate(global_bucket=Bucket(GLOBAL_CONTROL_SALT))
    return queryset, {
        "consent": consent,
        "contactable": contactable,
        "address": address_q(channel),
        "under_cap": ~Q(pk__in=over_cap(channel, messages, days, now)) if channel != Channel.NONE else Q(),
        "not_global_control": Q(global_bucket__gte=control) if control else Q(),
    }


def with_holdout(campaign: Campaign, queryset: QuerySet) -> QuerySet:
    """`queryset` with a boolean `holdout` column: kept back as the campaign's control group."""
    holdout = Q(holdout_bucket__lt=campaign.holdout_percent * 100) if campaign.holdout_percent else Q(pk__isnull=True)
    return queryset.annotate(holdout_bucket=Bucket(holdout_salt(campaign.pk))).annotate(
        holdout=ExpressionWrapper(holdout, output_field=BooleanField()))


def eligible(campaign: Campaign, now: datetime.datetime, queryset: QuerySet | None = None) -> QuerySet:
    """The customers of `queryset` (default: the audience) that every step keeps."""
    queryset, conditions = with_steps(campaign, now, audience(campaign) if queryset is None else queryset)
    return queryset.filter(*[condition for condition in conditions.values() if condition])


def flagged(campaign: Campaign, now: datetime.datetime, queryset: QuerySet | None = None) -> QuerySet:
    """The customers of `queryset` (default: the audience) with one boolean column per
    step (`ok_<code>`) and `holdout`."""
    queryset, conditions = with_steps(campaign, now, audience(campaign) if queryset is None else queryset)
    return with_holdout(campaign, queryset.annotate(**{f"ok_{code}": _flag(condition)
                                                       for code, condition in conditions.items() if condition}))


def _flag(condition: Q) -> Case:
    """True or false, never NULL (a missing joined row makes its comparisons NULL)."""
    return Case(When(condition, then=Value(True)), default=Value(False), output_field=BooleanField())


def funnel(campaign: Campaign, now: datetime.datetime | None = None, queryset: QuerySet | None = None) -> Funnel:
    """How many customers of `queryset` (default: the audience) each step keeps, in one query."""
    now = now or timezone.now()
    with transaction.atomic():
        tune_for_analysis()
        return _funnel(campaign, now, queryset)


def _funnel(campaign: Campaign, now: datetime.datetime, queryset: QuerySet | None) -> Funnel:
    inner = flagged(campaign, now, queryset)
    flags = [name for name in inner.query.annotations if name.startswith("ok_")]
    sql, params = inner.values("pk", *flags, "holdout").query.sql_with_params()
    true = "TRUE" if connection.vendor == "postgresql" else "1"
    sums, kept = [], []
    for step in STEPS:
        name = f"ok_{step.code}"
        if name in flags:
            kept.append(f"s.{name} = {true}")
        sums.append("SUM(CASE WHEN " + (" AND ".join(kept) or "1=1") + " THEN 1 ELSE 0 END)")
    all_kept = " AND ".join(kept) or "1=1"
    sums.append(f"SUM(CASE WHEN {all_kept} AND s.holdout = {true} THEN 1 ELSE 0 END)")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), {', '.join(sums)} FROM ({sql}) s", params)
        total, *counts = [value or 0 for value in cursor.fetchone()]
    *step_counts, holdout = counts
    rows, previous = [], total
    for step, count in zip(STEPS, step_counts):
        rows.append(FunnelRow(step.code, str(step.label), count, previous - count))
        previous = count
    return Funnel(in_audience=total, steps=rows, holdout=holdout, to_send=previous - holdout)


def removed_at(campaign: Campaign, code: str, now: datetime.datetime | None = None) -> QuerySet:
    """The customers the step `code` removed (kept by every step before it), or the
    holdout for "holdout": the list behind each number of the funnel."""
    now = now or timezone.now()
    if code == "holdout":
        return with_holdout(campaign, eligible(campaign, now)).filter(holdout=True)
    queryset, conditions = with_steps(campaign, now, audience(campaign))
    codes = [step.code for step in STEPS]
    for earlier in codes[:codes.index(code)]:
        if conditions[earlier]:
            queryset = queryset.filter(conditions[earlier])
    if not conditions[code]:
        return queryset.none()
    return queryset.annotate(kept=_flag(conditions[code])).filter(kept=False)
