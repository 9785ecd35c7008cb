from celery import shared_task
from django.db.models import F, Q
from django.utils import timezone

from .models import Segment
from .rule_tags import rule_tags_refresh
from .services import segment_recompute


@shared_task
def recompute_segment(segment_id: int, version: int | None = None, if_stale: bool = False) -> int | None:
    """Queued on save (with the saved version) and on demand; a stale one does nothing.
    `if_stale` (the scheduler's catch-up): nothing either if that version is calculated by now."""
    if if_stale and Segment.objects.filter(pk=segment_id, calculated_version=version).exists():
        return None
    snapshot = segment_recompute(segment_id=segment_id, version=version)
    return snapshot.member_count if snapshot else None


@shared_task
def recompute_due_segments() -> int:
    """Every minute (beat): queue the dynamic segments not calculated for their current
    version (their save could not queue it: the broker was down), then those whose refresh
    interval has passed, the longest-waiting first. One whose last calculation failed waits
    for a save or "recompute now" rather than failing again every minute."""
    stale, due = segments_due(timezone.now())
    for segment in stale:
        recompute_segment.delay(segment.pk, segment.version, if_stale=True)
    for segment in due:
        recompute_segment.delay(segment.pk, segment.version)
    return len(stale) + len(due)


def segments_due(now) -> tuple[list[Segment], list[Segment]]:
    """The scheduler's choice (also `manage.py segment_recompute --due`): the dynamic segments
    not calculated for their current version and not failing, then those whose refresh
    interval has passed, the longest-waiting first."""
    dynamic = Segment.objects.filter(kind=Segment.Kind.DYNAMIC)
    stale = list(dynamic.filter(Q(calculated_version__isnull=True) | ~Q(calculated_version=F("version")),
                                last_error="").order_by("created_at", "pk"))
    due = [
        segment for segment in dynamic.filter(refresh_every_minutes__isnull=False).exclude(
            pk__in=[segment.pk for segment in stale]).order_by("last_calculated_at")
        if segment.last_calculated_at is None
        or (now - segment.last_calculated_at).total_seconds() >= segment.refresh_every_minutes * 60
    ]
    return stale, due


@shared_task
def refresh_rule_tags(tag_ids: list[int] | None = None) -> dict:
    """Every CDP_RULE_TAGS_EVERY_SECONDS (beat) for all active rule tags; queued with the
    saved tag's id after a rule is saved, and by the admin's "refresh now"."""
    results = rule_tags_refresh(tag_ids=tag_ids)
    return {
        "refreshed": sum(1 for result in results if not result.error),
        "failed": [result.tag_id for result in results if result.error],
    }
