"""manage.py segment_recompute [NAME ... | --all | --due] [--lang CODE]

Calculates dynamic segments now, in this process, through the same service as the workers,
and prints for each its members, how many entered and exited, and how long it took. NAME
is a slug or a name; --all takes every dynamic segment; --due those the scheduler would
queue now (not calculated for their current version, or their refresh interval passed).
A segment that fails is reported and the others go on; the exit status is then 1.
"""
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from segments.models import Segment
from segments.services import segment_recompute
from segments.tasks import segments_due

from ._common import (
    add_language_argument,
    command_language,
    segment_describe,
    segment_find,
)


class Command(BaseCommand):
    help = "Recalculate segments now and print their members, entered and exited."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME", help="a segment's slug or name")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--all", action="store_true", help="every dynamic segment")
        group.add_argument("--due", action="store_true", help="the segments the scheduler would calculate now")
        add_language_argument(parser)

    def handle(self, *args, names, all, due, lang, **options):
        with translation.override(command_language(lang)):
            self._recompute(self._segments(names, all, due))

    def _segments(self, names: list[str], every: bool, due: bool) -> list[Segment]:
        if bool(names) + every + due != 1:
            raise CommandError(_("Name the segments to calculate, or use --all or --due."))
        if every:
            return list(Segment.objects.filter(kind=Segment.Kind.DYNAMIC).order_by("name", "pk"))
        if due:
            stale, waiting = segments_due(timezone.now())
            return stale + waiting
        segments = []
        for name in names:
            segment = segment_find(name)
            if segment is None:
                raise CommandError(_("No segment with the slug or name “%(name)s”.") % {"name": name})
            if segment.kind == Segment.Kind.STATIC:
                raise CommandError(_("“%(segment)s” is a static list: it is not recalculated.") % {
                    "segment": segment_describe(segment)})
            segments.append(segment)
        return segments

    def _recompute(self, segments: list[Segment]) -> None:
        if not segments:
            self.stdout.write(_("No segment to calculate."))
            return
        failed = 0
        for segment in segments:
            try:
                snapshot = segment_recompute(segment_id=segment.pk)
            except Exception as error:  # noqa: BLE001 - reported with the segment; the others go on
                failed += 1
                self.stderr.write(_("%(segment)s: failed: %(error)s") % {"segment": segment_describe(segment),
                                                                          "error": error})
                continue
            if snapshot is None:  # made static or deleted meanwhile
                self.stdout.write(_("%(segment)s: not calculated (no longer a dynamic segment).") % {
                    "segment": segment_describe(segment)})
                continue
            self.stdout.write(_("%(segment)s: members %(members)s, entered %(entered)s, exited %(exited)s "
                                "(%(ms)s ms)") % {"segment": segment_describe(segment),
                                                  "members": snapshot.member_count, "entered": snapshot.entered,
                                                  "exited": snapshot.exited, "ms": snapshot.duration_ms})
        if failed:
            raise CommandError(_("%(failed)s of %(total)s segments failed.") % {"failed": failed,
                                                                                 "total": len(segments)})
