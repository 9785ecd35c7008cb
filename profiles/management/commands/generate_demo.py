"""`manage.py generate_demo`: realistic, deterministic demo customers and behaviour."""
import datetime
import os

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.demo import demo_campaigns, demo_results
from consent.demo import demo_consent
from profiles.collect.demo_source import demo_source_ensure
from profiles.demo import demo_generate, demo_taxonomy
from profiles.services.recommendations import recommendations_refresh_all
from segments.demo import demo_segments
from segments.rule_tags import rule_tags_refresh
from profiles.models import Profile


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CommandError(_("“%(value)s” is not a date like 2025-06-18.") % {"value": value}) from None


def _end_of(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(23, 59)))


class Command(BaseCommand):
    help = gettext_lazy(
        "Generate demo customers (Chinese names, phones, WeChat ids…) with 18 months of "
        "e-commerce events, then recompute their metrics. The same seed and anchor date "
        "always give the same data."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # argparse formats the description with a regex, which needs a str, not a lazy translation.
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--profiles", type=int, default=3000, help=gettext_lazy("Number of customers to add."))
        parser.add_argument(
            "--events-per-profile", type=int, default=30,
            help=gettext_lazy("Average number of events per customer (each varies)."),
        )
        parser.add_argument("--seed", type=int, default=1, help=gettext_lazy("Random seed: the same seed gives the same data."))
        parser.add_argument(
            "--anchor-date", type=_date, default=None, metavar="YYYY-MM-DD",
            help=gettext_lazy("The history runs up to this day (default: today)."),
        )
        parser.add_argument(
            "--if-empty", action="store_true",
            help=gettext_lazy("Do nothing when customers already exist."),
        )
        parser.add_argument(
            "--bare", action="store_true",
            help=gettext_lazy("Customers, identities and events only: no demo tags, consent or saved segments."),
        )
        parser.add_argument(
            "--workers", type=int, default=None,
            help=gettext_lazy("Generator processes on PostgreSQL (default: one per CPU)."),
        )

    def handle(self, *args, profiles, events_per_profile, seed, anchor_date, if_empty, workers, bare, **options):
        if profiles < 0 or events_per_profile < 0:
            raise CommandError(_("Counts cannot be negative."))
        if seed < 0:
            raise CommandError(_("The seed cannot be negative."))
        if not bare:
            demo_source_ensure()  # the demo shop's tracking source, also for a database made before it existed
        if if_empty and Profile.objects.exists():
            self.stdout.write(_("Customers already exist: no demo data generated."))
            return
        try:
            demo_generate(
                profiles=profiles, events_per_profile=events_per_profile, seed=seed,
                anchor_date=anchor_date, stdout=self.stdout, workers=workers,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not bare:
            self.stdout.write(_("Tagging the demo customers…"))
            demo_taxonomy()
            rule_tags_refresh()
            # The profile pages' recommendation cards, before the nightly run; ranges of
            # customers at a time on every core.
            recommendations_refresh_all(workers=workers or os.cpu_count() or 1)
            self.stdout.write(_("Recording their consent…"))
            demo_consent(seed=seed, now=_end_of(anchor_date) if anchor_date else None, progress=self.stdout.write)
            self.stdout.write(_("Saving and calculating example segments…"))
            demo_segments()
            demo_campaigns()
            demo_results()
