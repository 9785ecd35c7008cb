"""Deciding a run: who gets which variant, written to the outbox in one transaction.

Eligibility is decided now, from the state of consent, do-not-contact, addresses and
caps at this moment (not when the segment was calculated). Decisions on one channel are
serialised (an advisory lock), so two campaigns deciding at once both see each other's
deliveries when they count the frequency cap.
"""
import time
import zlib

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Case, CharField, Count, DateTimeField, F, IntegerField, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.sql import constant, insert_from_select, statistics_refresh, transaction_lock, tune_for_analysis

from segments.conditions.parse import parse

from ..buckets import Bucket, variant_salt
from ..content import ContentError, template_compile
from ..eligibility import address_expression, eligible, funnel, with_holdout
from ..models import Campaign, CampaignRun, Coupon, CouponPool, Delivery, Destination, Variant
from ..quiet_hours import send_time

CHANNEL_LOCK = 7302  # advisory lock namespace: decisions per channel (frequency caps)
COUPON_POOL_LOCK = 7303  # advisory lock namespace: hand-outs from one coupon pool (never the same code twice)
# Which destinations can carry which channel; webhooks and files carry any.
DESTINATION_CHANNELS = {
    Destination.Kind.EMAIL: {"email"},
    Destination.Kind.ALIYUN_SMS: {"sms"},
    Destination.Kind.WECHAT: {"wechat"},
}


def campaign_check(campaign: Campaign) -> list[str]:
    """What stops this campaign from being sent, in the reader's language (empty: ready)."""
    problems = []
    channels = DESTINATION_CHANNELS.get(campaign.destination.kind)
    if channels and campaign.purpose.channel not in channels:
        problems.append(_("The destination “%(destination)s” cannot deliver on the purpose's channel (%(channel)s).")
                        % {"destination": campaign.destination, "channel": campaign.purpose.get_channel_display()})
    if not campaign.destination.is_active:
        problems.append(_("The destination “%(destination)s” is switched off.") % {"destination": campaign.destination})
    if not campaign.purpose.is_active:
        problems.append(_("The purpose “%(purpose)s” is no longer active.") % {"purpose": campaign.purpose})
    if campaign.audience_kind == Campaign.AudienceKind.SEGMENT and campaign.segment_id is None:
        problems.append(_("Choose the segment to send to."))
    if campaign.audience_kind == Campaign.AudienceKind.TRIGGER_SEGMENT and campaign.segment_id is None:
        problems.append(_("Choose the segment whose new members start the campaign."))
    if campaign.audience_kind == Campaign.AudienceKind.TRIGGER_EVENT:
        problems += trigger_problems(campaign)
    variants = list(campaign.variants.all())
    if not variants:
        problems.append(_("Write the message (at least one variant)."))
    elif sum(v.weight for v in variants) != 100:
        problems.append(_("The variants' shares add up to %(total)s %%, not 100 %%.") % {
            "total": sum(v.weight for v in variants)})
    for variant in variants:
        for field in ("subject", "body"):
            try:
                template_compile(getattr(variant, field))
            except ContentError as error:
                problems.append(_("Variant %(label)s, %(field)s: %(error)s") % {
                    "label": variant.label, "field": Variant._meta.get_field(field).verbose_name, "error": error})
        if campaign.destination.kind == Destination.Kind.ALIYUN_SMS and not (
                variant.sms_template_code and variant.sms_sign_name):
            problems.append(_("Variant %(label)s needs the SMS template code and signature approved by the vendor.")
                            % {"label": variant.label})
        if campaign.destination.kind == Destination.Kind.WECHAT and not variant.wechat_template_id:
            problems.append(_("Variant %(label)s needs the WeChat template id.") % {"label": variant.label})
    return problems


def trigger_problems(campaign: Campaign) -> list[str]:
    """What is wrong with an event trigger: its events must be registered and its
    property filters valid, as in a segment's behaviour condition."""
    if not campaign.trigger_event:
        return [_("Choose the event that starts the campaign.")]
    problems = []
    for event, where in ((campaign.trigger_event, campaign.trigger_where or []),
                         (campaign.trigger_unless_event, [])):
        if event:
            try:
                parse({"event": event, "where": where})
            except ValidationError as error:
                problems += error.messages
    return problems


def variant_case(campaign: Campaign) -> Case | Value:
    """Each customer's variant id from their variant bucket and the variants' weights."""
    variants = list(campaign.variants.order_by("label"))
    if len(variants) == 1:
        return constant(variants[0].pk, IntegerField())
    whens, upper = [], 0
    for variant in variants[:-1]:
        upper += variant.weight * 100
        whens.append(When(variant_bucket__lt=upper, then=constant(variant.pk, IntegerField())))
    return Case(*whens, default=constant(variants[-1].pk, IntegerField()), output_field=IntegerField())


def channel_lock(channel: str) -> None:
    transaction_lock(CHANNEL_LOCK, zlib.crc32(channel.encode()) & 0x7FFFFFFF)


def outbox_write(*, run: CampaignRun, queryset, now, send_at=None) -> int:
    """INSERT … SELECT one delivery per customer of `queryset` (the eligible customers,
    see eligibility.eligible): `holdout` rows for the holdout, `queued` for the rest, due
    at `send_at` (default: now, or when the channel's quiet hours end)."""
    campaign = run.campaign
    channel = campaign.purpose.channel
    address = address_expression(channel)
    first_id = Delivery.objects.filter(run=run).order_by("-pk").values_list("pk", flat=True).first() or 0
    rows = with_holdout(campaign, queryset).annotate(variant_bucket=Bucket(variant_salt(campaign.pk))).values(
        d_run=constant(run.pk, IntegerField()),
        d_campaign=constant(campaign.pk, IntegerField()),
        d_variant=variant_case(campaign),
        d_destination=constant(campaign.destination_id, IntegerField()),
        d_profile=F("pk"),
        d_channel=constant(channel, CharField()),
        d_address=F(address) if isinstance(address, str) else (address if address is not None
                                                                else constant("", CharField())),
        d_status=Case(When(holdout=True, then=Value(Delivery.Status.HOLDOUT)), default=Value(Delivery.Status.QUEUED),
                      output_field=CharField()),
        d_created=constant(now, DateTimeField()),
        d_not_before=constant(send_at or send_time(channel, now, ignore=campaign.ignore_quiet_hours),
                              DateTimeField()),
        d_attempts=constant(0, IntegerField()),
        d_empty=constant("", CharField()),
    )
    written = insert_from_select(Delivery, {
        "run_id": "d_run", "campaign_id": "d_campaign", "variant_id": "d_variant",
        "destination_id": "d_destination", "profile_id": "d_profile", "channel": "d_channel",
        "address": "d_address", "status": "d_status", "created_at": "d_created", "not_before": "d_not_before",
        "attempts": "d_attempts", "vendor_id": "d_empty", "error": "d_empty",
    }, rows)
    statistics_refresh(Delivery, rows_added=written)
    coupons_assign(run, after_id=first_id)
    return written


def coupons_assign(run: CampaignRun, *, after_id: int = 0) -> None:
    """Give each queued delivery of the run (newer than `after_id`) whose variant hands
    out coupons one unused code of the variant's pool — unless its customer already holds a
    code of this campaign (an earlier run of a recurring campaign): one code per customer
    per campaign, never a second. That code stays with the delivery that first carried it
    (its redemption counts from that send) and goes out again with the new one (see
    sending._claimed). Raises ValidationError (and so rolls the run back) when a pool has
    too few codes left."""
    quote = connection.ops.quote_name
    coupon_table, delivery_table = quote(Coupon._meta.db_table), quote(Delivery._meta.db_table)
    _coupons_follow(run, after_id)
    holders = Coupon.objects.filter(delivery__campaign_id=run.campaign_id).values("delivery__profile_id")
    for variant in Variant.objects.filter(campaign_id=run.campaign_id, coupon_pool__isnull=False).select_related(
            "coupon_pool"):
        # Two campaigns on different channels (not serialised by the channel lock) may share
        # a pool: without this, the later one's UPDATE re-assigns the codes the earlier one
        # took, once that commits, and its customers lose them.
        transaction_lock(COUPON_POOL_LOCK, variant.coupon_pool_id)
        deliveries = Delivery.objects.filter(run=run, variant=variant, status=Delivery.Status.QUEUED,
                                             pk__gt=after_id).exclude(profile_id__in=holders)
        needed = deliveries.count()
        free = Coupon.objects.filter(pool_id=variant.coupon_pool_id, delivery__isnull=True)
        if not needed:
            continue
        if free.count() < needed:
            pool = variant.coupon_pool
            if pool.source == CouponPool.Source.GENERATE:
                message = _("The coupon pool “%(pool)s” has %(free)s codes left; variant %(label)s needs "
                            "%(needed)s. Generate more codes.")
            else:
                message = _("The coupon pool “%(pool)s” has %(free)s codes left; variant %(label)s needs "
                            "%(needed)s. Upload more codes.")
            raise ValidationError(message % {"pool": pool, "free": free.count(), "label": variant.label,
                                             "needed": needed},
                code="coupons_exhausted")
        with connection.cursor() as cursor:
            cursor.execute(f"""
                UPDATE {coupon_table} SET delivery_id = pairs.delivery_id
                FROM (SELECT c.id AS coupon_id, d.id AS delivery_id
                      FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM {coupon_table}
                            WHERE pool_id = %s AND delivery_id IS NULL) c
                      JOIN (SELECT nd.id, ROW_NUMBER() OVER (ORDER BY nd.id) AS n FROM {delivery_table} nd
                            WHERE nd.run_id = %s AND nd.variant_id = %s AND nd.status = %s AND nd.id > %s
                            AND NOT EXISTS (SELECT 1 FROM {delivery_table} held
                                            JOIN {coupon_table} hc ON hc.delivery_id = held.id
                                            WHERE held.profile_id = nd.profile_id AND held.campaign_id = %s)
                            ) d ON c.n = d.n) pairs
                WHERE {coupon_table}.id = pairs.coupon_id""",
                [variant.coupon_pool_id, run.pk, variant.pk, Delivery.Status.QUEUED, after_id, run.campaign_id])


def _coupons_follow(run: CampaignRun, after_id: int) -> None:
    """A code whose message never went out (dead, stopped before sending) moves to its
    customer's new message of this run, so its redemption counts from the send that
    carried it. (Customers holding several codes of the campaign, from before one code per
    customer, keep theirs where they are.)"""
    stranded = dict(Coupon.objects.filter(delivery__campaign_id=run.campaign_id, delivery__sent_at__isnull=True)
                    .exclude(delivery__status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING])
                    .exclude(delivery__run=run).values_list("delivery__profile_id", "pk"))
    pooled = Variant.objects.filter(campaign_id=run.campaign_id, coupon_pool__isnull=False).values("pk")
    moves = []
    profiles = sorted(stranded)
    for start in range(0, len(profiles), 5000):
        chunk = profiles[start:start + 5000]
        several = set(Coupon.objects.filter(delivery__campaign_id=run.campaign_id, delivery__profile_id__in=chunk)
                      .values("delivery__profile_id").annotate(n=Count("pk")).filter(n__gt=1)
                      .values_list("delivery__profile_id", flat=True))
        new = Delivery.objects.filter(run=run, status=Delivery.Status.QUEUED, pk__gt=after_id, variant__in=pooled,
                                      profile_id__in=chunk).values_list("profile_id", "pk")
        moves += [Coupon(pk=stranded[profile_id], delivery_id=pk) for profile_id, pk in new
                  if profile_id not in several]
    Coupon.objects.bulk_update(moves, ["delivery"], batch_size=5000)


@transaction.atomic
def run_decide(*, campaign: Campaign, now=None) -> CampaignRun:
    """Decide who gets the campaign now and write the outbox; the funnel is kept on the
    run. Raises ValidationError when the campaign cannot be sent as it is."""
    problems = campaign_check(campaign)
    if problems:
        raise ValidationError(problems, code="campaign_not_ready")
    now = now or timezone.now()
    started = time.monotonic()
    tune_for_analysis()
    channel_lock(campaign.purpose.channel)
    run = CampaignRun.objects.create(campaign=campaign, started_at=now)
    counts = funnel(campaign, now)
    outbox_write(run=run, queryset=eligible(campaign, now), now=now)
    run.funnel = counts.as_dict()
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.save(update_fields=["funnel", "duration_ms"])
    return run
