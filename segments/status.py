"""Whether a segment's members are being calculated, and how far along, for the pages that
would otherwise show the previous (or, for a new segment, a zero) member count.

A dynamic segment is calculating while its calculated version lags its version. The
progress is an estimate: the time since the calculation was queued (noted in the cache
when staff save or ask for it; a new segment's creation time otherwise) against how long
the segment's last calculation took."""
import datetime
from dataclasses import dataclass

from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Segment

STARTED_KEY = "segment-calculation-started:{pk}:{version}"
DEFAULT_EXPECTED_SECONDS = 10  # no calculation yet to go by


@dataclass(frozen=True)
class CalculationStatus:
    calculating: bool
    failed: bool = False
    progress: float | None = None  # 0…1, None when there is nothing to estimate from
    text: str = ""


def segment_calculation_queued(*, segment: Segment, now: datetime.datetime | None = None) -> None:
    """Note when the calculation of the segment's current version was asked for."""
    now = now or timezone.now()
    cache.set(STARTED_KEY.format(pk=segment.pk, version=segment.version), now.timestamp(), 24 * 3600)


def segment_calculation_status(segment: Segment, now: datetime.datetime | None = None) -> CalculationStatus:
    if segment.kind != Segment.Kind.DYNAMIC or segment.calculated_version == segment.version:
        return CalculationStatus(calculating=False)
    if segment.last_error and segment.error_count:
        return CalculationStatus(calculating=False, failed=True,
                                 text=_("The calculation failed; it is tried again on the next round."))
    now = now or timezone.now()
    started = cache.get(STARTED_KEY.format(pk=segment.pk, version=segment.version))
    if started is None and segment.calculated_version is None:
        started = segment.created_at.timestamp()
    last = segment.snapshots.order_by("-calculated_at").values_list("duration_ms", flat=True).first()
    expected = max(1.0, (last / 1000) if last else DEFAULT_EXPECTED_SECONDS)
    if started is None:
        return CalculationStatus(calculating=True, text=_("Calculating…"))
    elapsed = max(0, int(now.timestamp() - started))
    progress = min(0.95, elapsed / expected)  # never "done" before the worker says so
    if elapsed > expected * 3:
        text = _("Calculating… %(elapsed)s s so far, longer than usual (the last took %(last)s s).")
    elif last:
        text = _("Calculating… %(elapsed)s s of about %(last)s s.")
    else:
        text = _("Calculating… %(elapsed)s s so far.")
    return CalculationStatus(calculating=True, progress=round(progress, 2),
                             text=text % {"elapsed": elapsed, "last": round(expected)})
