"""Behaviour triggers: a campaign that starts per customer when they enter a segment, or
when they do an event A (with property filters) and not event B within N minutes.

Evaluated set-based on every tick from a durable cursor (`trigger_evaluated_until`):
the A events whose "unless" window closed since the last tick (plus a margin for events
that arrive late), the customers who did no B in their window, then the eligibility
steps as for any send. A customer is triggered at most once per campaign every
`trigger_once_per_days`; triggered deliveries of one day share that day's run.
"""
import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from profiles.models import Event, Profile, ProfileStatus
from segments.conditions.compile import events_matching
from segments.conditions.parse import parse
from segments.models import SegmentMembership

from ..eligibility import eligible, funnel
from ..models import Campaign, CampaignRun, Delivery
from ..quiet_hours import send_time
from .lifecycle import campaign_halt
from .runs import campaign_check, channel_lock, outbox_write


def triggered_profiles(campaign: Campaign, since: datetime.datetime, until: datetime.datetime, now) -> Q:
    """Customers whose trigger fired in (since, until] — for an event trigger, A events
    in that range, its window having closed by `until` + window."""
    if campaign.audience_kind == Campaign.AudienceKind.TRIGGER_SEGMENT:
        entered = SegmentMembership.objects.filter(segment_id=campaign.segment_id, profile_id=OuterRef("pk"),
                                                   entered_at__gt=since, entered_at__lte=until)
        return Q(Exists(entered))
    node = parse({"event": campaign.trigger_event, "where": campaign.trigger_where or []})
    starts = events_matching(node, now).filter(profile_id=OuterRef("pk"), occurred_at__gt=since,
                                               occurred_at__lte=until)
    if campaign.trigger_unless_event:
        window = datetime.timedelta(minutes=campaign.trigger_within_minutes)
        followed = Event.objects.filter(profile_id=OuterRef("profile_id"), name=campaign.trigger_unless_event,
                                        occurred_at__gte=OuterRef("occurred_at"))
        if window:
            followed = followed.filter(occurred_at__lte=OuterRef("occurred_at") + window)
        starts = starts.exclude(Exists(followed))
    return Q(Exists(starts))


def _day_run(campaign: Campaign, now: datetime.datetime) -> CampaignRun:
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    run = CampaignRun.objects.filter(campaign=campaign, started_at=day_start).first()
    return run or CampaignRun.objects.create(campaign=campaign, started_at=day_start, funnel={})


@transaction.atomic
def trigger_evaluate(*, campaign_id: int, now: datetime.datetime | None = None) -> int:
    """Write the deliveries of one trigger campaign's customers triggered since its
    cursor, and move the cursor. Returns how many deliveries (holdout included)."""
    now = now or timezone.now()
    campaign = (Campaign.objects.select_for_update(skip_locked=True).select_related("purpose", "destination")
                .filter(pk=campaign_id, status=Campaign.Status.SENDING).first())
    if campaign is None or not campaign.is_trigger:
        return 0
    problems = campaign_check(campaign)
    if problems:
        raise ValidationError(problems, code="campaign_not_ready")
    window = datetime.timedelta(minutes=campaign.trigger_within_minutes if campaign.trigger_unless_event else 0)
    margin = datetime.timedelta(seconds=settings.CAMPAIGN_TRIGGER_MARGIN_SECONDS)
    until = now - window
    since = (campaign.trigger_evaluated_until or campaign.launched_at or now) - window - margin
    if until <= since:
        return 0
    channel_lock(campaign.purpose.channel)
    recently = Delivery.objects.filter(campaign=campaign, profile_id=OuterRef("pk"),
                                       created_at__gt=now - datetime.timedelta(days=campaign.trigger_once_per_days))
    candidates = Profile.objects.filter(triggered_profiles(campaign, since, until, now),
                                        status=ProfileStatus.ACTIVE).exclude(Exists(recently))
    run = _day_run(campaign, now)
    counts = funnel(campaign, now, candidates)
    written = outbox_write(run=run, queryset=eligible(campaign, now, candidates), now=now,
                           send_at=send_time(campaign.purpose.channel,
                                             now + datetime.timedelta(minutes=campaign.delay_minutes),
                                             ignore=campaign.ignore_quiet_hours))
    if counts.in_audience:
        totals = run.funnel or {}
        run.funnel = {key: totals.get(key, 0) + value for key, value in counts.as_dict().items()}
        run.save(update_fields=["funnel"])
    campaign.trigger_evaluated_until = now
    campaign.save(update_fields=["trigger_evaluated_until"])
    return written


def triggers_evaluate(now: datetime.datetime | None = None) -> int:
    now = now or timezone.now()
    ids = Campaign.objects.filter(status=Campaign.Status.SENDING, audience_kind__in=[
        Campaign.AudienceKind.TRIGGER_SEGMENT, Campaign.AudienceKind.TRIGGER_EVENT]).values_list("pk", flat=True)
    written = 0
    for campaign_id in list(ids):
        try:
            written += trigger_evaluate(campaign_id=campaign_id, now=now)
        except ValidationError as error:  # e.g. its event no longer registered, its coupons used up
            campaign_halt(campaign=Campaign.objects.get(pk=campaign_id), reason=" ".join(error.messages))
    return written
