"""manage.py campaign_send ID [--dry-run]: print a campaign's eligibility funnel and, without
--dry-run, decide its run (when it is launched and due) and send through the same services
as the workers: drain its destination until nothing is due, then print the outcome."""
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.eligibility import funnel
from campaigns.models import Campaign
from campaigns.selectors import campaign_progress
from campaigns.services.lifecycle import campaign_run_due
from campaigns.services.sending import BatchOutcome, campaigns_finish, destination_drain


class Command(BaseCommand):
    help = "Print a campaign's eligibility funnel and send it (the same services as the admin and the workers)."

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("--dry-run", action="store_true", help="Print the funnel only; decide and send nothing.")

    def handle(self, *args, campaign_id, dry_run, **options):
        campaign = Campaign.objects.select_related("purpose", "destination", "segment").filter(pk=campaign_id).first()
        if campaign is None:
            raise CommandError(_("No campaign with id %(id)s.") % {"id": campaign_id})
        self.stdout.write(f"{campaign.name} · {campaign.get_status_display()} · {campaign.purpose.get_channel_display()}"
                          f" · {campaign.destination}")
        if campaign.audience_kind == Campaign.AudienceKind.SEGMENT and campaign.segment_id:
            self._funnel(campaign)
        if dry_run:
            return
        if campaign.status not in (Campaign.Status.SCHEDULED, Campaign.Status.SENDING):
            raise CommandError(_("The campaign is “%(status)s”: only a launched (and approved) campaign is sent. "
                                 "Launch it in the admin first.") % {"status": campaign.get_status_display()})
        now = timezone.now()
        if campaign.next_run_at is not None and campaign.next_run_at <= now:
            if campaign_run_due(campaign_id=campaign.pk, now=now):
                self.stdout.write(_("Run decided."))
            else:
                campaign.refresh_from_db()
                raise CommandError(_("The run could not be decided: %(error)s")
                                   % {"error": campaign.last_error or campaign.get_status_display()})
        elif campaign.next_run_at is not None:
            self.stdout.write(_("The next run is due at %(when)s; sending what is queued.") % {
                "when": timezone.localtime(campaign.next_run_at).strftime("%Y-%m-%d %H:%M")})
        total = BatchOutcome()
        while True:
            outcome = destination_drain(destination_id=campaign.destination_id, budget_seconds=300)
            for field in ("sent", "retried", "dead", "stopped", "postponed"):
                setattr(total, field, getattr(total, field) + getattr(outcome, field))
            if not (outcome.sent or outcome.dead or outcome.stopped or outcome.retried):
                break
        campaigns_finish()
        self.stdout.write(_("Sent %(sent)s, to retry later %(retried)s, dead letters %(dead)s, stopped %(stopped)s, "
                            "waiting for quiet hours to end %(postponed)s.") % total.__dict__)
        campaign.refresh_from_db()
        progress = campaign_progress(campaign)
        self.stdout.write(" · ".join(f"{label} {count}" for _code, label, count in progress.rows()))
        self.stdout.write(_("Status: %(status)s") % {"status": campaign.get_status_display()})

    def _funnel(self, campaign: Campaign) -> None:
        counts = funnel(campaign)
        width = 12
        self.stdout.write(f"{_('In the audience'):<{width}} {counts.in_audience:>10,}")
        for row in counts.steps:
            self.stdout.write(f"{row.label:<{width}} {row.count:>10,}  (−{row.removed:,})")
        self.stdout.write(f"{_('Holdout (kept back, not sent)'):<{width}} {counts.holdout:>10,}")
        self.stdout.write(f"{_('To send'):<{width}} {counts.to_send:>10,}")
