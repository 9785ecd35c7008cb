"""A campaign's life: launch (or ask for approval), approve, pause, resume, cancel, and
the scheduled runs. Every step is audited; pausing and cancelling take effect at the
workers' next batch (seconds)."""
import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.actors import Actor
from cdp.audit import audit_record

from ..eligibility import funnel
from ..models import Campaign, Delivery
from .runs import campaign_check, run_decide

RECURRENCE = {Campaign.Schedule.DAILY: datetime.timedelta(days=1), Campaign.Schedule.WEEKLY: datetime.timedelta(days=7)}


def _audit(campaign: Campaign, actor: Actor, action: str, **details) -> None:
    audit_record(actor=actor, action=action, target=f"campaign:{campaign.pk}",
                 details={"campaign": campaign.name, **details})


def cap_is_looser(campaign: Campaign) -> bool:
    """A campaign's own cap allows more than the default: more messages or a shorter window."""
    if campaign.cap_messages is None:
        return False
    messages, days = settings.CAMPAIGN_FREQUENCY_CAP
    return campaign.cap_messages > messages or campaign.cap_days < days


def launch_size(campaign: Campaign) -> int:
    """How many messages a launch would send now (triggers: the segment's size, or 0)."""
    if campaign.audience_kind == Campaign.AudienceKind.SEGMENT:
        return funnel(campaign).to_send
    if campaign.audience_kind == Campaign.AudienceKind.TRIGGER_SEGMENT and campaign.segment_id:
        return campaign.segment.member_count
    return 0


def needs_approval(campaign: Campaign, user, size: int) -> bool:
    return size > settings.CAMPAIGN_APPROVAL_THRESHOLD and not user.has_perm("campaigns.approve_campaign")


@transaction.atomic
def campaign_launch(*, campaign: Campaign, user, now: datetime.datetime | None = None) -> Campaign:
    """Launch a draft: schedule it (now, at its time, or recurring) or, for a trigger,
    start watching. Larger than the approval threshold without the approval permission:
    it waits for an administrator. Raises ValidationError / PermissionDenied."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not user.has_perm("campaigns.launch_campaign"):
        raise PermissionDenied(_("You may not launch campaigns."))
    if campaign.status != Campaign.Status.DRAFT:
        raise ValidationError(_("Only a draft can be launched; this campaign is “%(status)s”.")
                              % {"status": campaign.get_status_display()}, code="not_draft")
    problems = campaign_check(campaign)
    if cap_is_looser(campaign) and not user.has_perm("campaigns.exceed_frequency_cap"):
        problems.append(_("The campaign's frequency cap is looser than the default (%(messages)s per %(days)s days); "
                          "only staff with the permission to exceed it may launch it.") % dict(
            zip(("messages", "days"), settings.CAMPAIGN_FREQUENCY_CAP)))
    if campaign.schedule == Campaign.Schedule.AT and (campaign.scheduled_at is None or campaign.scheduled_at <= now):
        problems.append(_("Choose a send time in the future."))
    if problems:
        raise ValidationError(problems, code="campaign_not_ready")
    size = launch_size(campaign)
    actor = Actor.staff(user)
    if needs_approval(campaign, user, size):
        campaign.status, campaign.approval_requested_by = Campaign.Status.AWAITING_APPROVAL, user
        campaign.save(update_fields=["status", "approval_requested_by", "updated_at"])
        _audit(campaign, actor, "campaign_approval_requested", size=size)
        return campaign
    _start(campaign, user, now)
    _audit(campaign, actor, "campaign_launched", size=size)
    return campaign


def _start(campaign: Campaign, user, now) -> None:
    campaign.launched_by, campaign.launched_at = user, now
    if campaign.is_trigger:
        campaign.status, campaign.trigger_evaluated_until = Campaign.Status.SENDING, now
    else:
        campaign.status = Campaign.Status.SCHEDULED
        campaign.next_run_at = campaign.scheduled_at if campaign.schedule != Campaign.Schedule.NOW and \
            campaign.scheduled_at else now
    campaign.save()


@transaction.atomic
def campaign_approve(*, campaign: Campaign, user, now: datetime.datetime | None = None) -> Campaign:
    """Four eyes: someone else with the approval permission lets a large launch go."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not user.has_perm("campaigns.approve_campaign"):
        raise PermissionDenied(_("You may not approve campaigns."))
    if campaign.status != Campaign.Status.AWAITING_APPROVAL:
        raise ValidationError(_("This campaign is not waiting for approval."), code="not_awaiting_approval")
    if campaign.approval_requested_by_id == user.pk:
        raise ValidationError(_("Someone other than the person who launched it must approve it."),
                              code="four_eyes")
    campaign.approved_by, campaign.approved_at = user, now
    _start(campaign, campaign.approval_requested_by or user, now)
    _audit(campaign, Actor.staff(user), "campaign_approved")
    return campaign


@transaction.atomic
def campaign_pause(*, campaign: Campaign, user) -> Campaign:
    campaign = _locked_for_control(campaign, user)
    if campaign.status not in (Campaign.Status.SCHEDULED, Campaign.Status.SENDING):
        raise ValidationError(_("Only a scheduled or sending campaign can be paused."), code="not_running")
    campaign.status = Campaign.Status.PAUSED
    campaign.save(update_fields=["status", "updated_at"])
    _audit(campaign, Actor.staff(user), "campaign_paused")
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign, user) -> Campaign:
    campaign = _locked_for_control(campaign, user)
    if campaign.status != Campaign.Status.PAUSED:
        raise ValidationError(_("Only a paused campaign can be resumed."), code="not_paused")
    started = campaign.runs.exists() or campaign.is_trigger
    campaign.status = Campaign.Status.SENDING if started else Campaign.Status.SCHEDULED
    campaign.save(update_fields=["status", "updated_at"])
    _audit(campaign, Actor.staff(user), "campaign_resumed")
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, user, now: datetime.datetime | None = None) -> Campaign:
    """Stop for good: nothing more is sent; queued messages are stopped."""
    now = now or timezone.now()
    campaign = _locked_for_control(campaign, user)
    if campaign.status in (Campaign.Status.FINISHED, Campaign.Status.CANCELLED):
        raise ValidationError(_("This campaign has already ended."), code="ended")
    campaign.status, campaign.next_run_at, campaign.finished_at = Campaign.Status.CANCELLED, None, now
    campaign.save(update_fields=["status", "next_run_at", "finished_at", "updated_at"])
    stopped = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.STOPPED, error=_("The campaign was cancelled."))
    _audit(campaign, Actor.staff(user), "campaign_cancelled", stopped=stopped)
    return campaign


def campaign_halt(*, campaign: Campaign, reason: str) -> None:
    """Pause a campaign the system cannot go on with (a trigger that no longer parses, a
    coupon pool run dry), saying why on its page and in the audit log."""
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED, last_error=reason[:2000])
    _audit(campaign, Actor.system("campaigns"), "campaign_paused", reason=reason)


def _locked_for_control(campaign: Campaign, user) -> Campaign:
    if not user.has_perm("campaigns.launch_campaign"):
        raise PermissionDenied(_("You may not control campaigns."))
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def runs_due(*, now: datetime.datetime | None = None) -> list[int]:
    """Decide the runs whose time has come (one per campaign and due time). Returns the
    ids of the campaigns that ran."""
    now = now or timezone.now()
    ran = []
    due = Campaign.objects.filter(status__in=[Campaign.Status.SCHEDULED, Campaign.Status.SENDING],
                                  audience_kind=Campaign.AudienceKind.SEGMENT, next_run_at__lte=now)
    for campaign_id in due.values_list("pk", flat=True):
        if campaign_run_due(campaign_id=campaign_id, now=now):
            ran.append(campaign_id)
    return ran


@transaction.atomic
def campaign_run_due(*, campaign_id: int, now: datetime.datetime | None = None) -> bool:
    """Run the campaign if it is (still) due; the row lock makes a second worker skip it."""
    now = now or timezone.now()
    campaign = (Campaign.objects.select_for_update(skip_locked=True)
                .filter(pk=campaign_id, status__in=[Campaign.Status.SCHEDULED, Campaign.Status.SENDING],
                        next_run_at__lte=now).select_related("purpose", "destination").first())
    if campaign is None:
        return False
    try:
        with transaction.atomic():
            run_decide(campaign=campaign, now=now)
    except ValidationError as error:
        campaign_halt(campaign=campaign, reason=" ".join(error.messages))
        return False
    step = RECURRENCE.get(campaign.schedule)
    campaign.next_run_at = campaign.next_run_at + step if step else None
    while step and campaign.next_run_at <= now:
        campaign.next_run_at += step
    campaign.status, campaign.last_error = Campaign.Status.SENDING, ""
    campaign.save(update_fields=["next_run_at", "status", "last_error", "updated_at"])
    return True
