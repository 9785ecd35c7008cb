"""python manage.py event_partitions [--ahead N] [--retention]

PostgreSQL: creates this month's and the next N months' partitions of the events
(default CDP_EVENT_PARTITIONS_AHEAD; what beat does every few hours), then lists every
partition with its estimated rows. --retention then applies the event retention policies
(what beat does nightly) and prints what was deleted. On SQLite the events are one table:
the command says so, and --retention still applies the policies.
"""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from profiles.partitions import is_partitioned, partitions_ensure, partitions_list
from profiles.retention import retention_apply


class Command(BaseCommand):
    help = gettext_lazy("Create the events' monthly partitions ahead, list them, and optionally apply the retention "
                        "policies.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)  # argparse formats the description with a regex: a str, not a lazy string
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--ahead", type=int, default=None, help=gettext_lazy("Months ahead of this one (default: the setting)."))
        parser.add_argument("--retention", action="store_true", help=gettext_lazy("Apply the event retention policies too."))

    def handle(self, *args, ahead=None, retention=False, **options):
        if ahead is not None and not 0 <= ahead <= 120:
            raise CommandError(_("--ahead must be between 0 and 120 months."))
        if is_partitioned():
            for name in partitions_ensure(months_ahead=ahead):
                self.stdout.write(_("Created %(name)s") % {"name": name})
            for partition in partitions_list():
                self.stdout.write(f"{partition['name']:<28} {partition['bound']:<75} ~{partition['rows_estimate']:,}")
        else:
            self.stdout.write(_("The events table is not partitioned (only on PostgreSQL): nothing to create."))
        if retention:
            result = retention_apply()
            for name in result["partitions_dropped"]:
                self.stdout.write(_("Dropped %(name)s") % {"name": name})
            for name, count in sorted(result["deleted"].items()):
                self.stdout.write(_("%(event)s: %(count)s expired events deleted") % {"event": name, "count": count})
