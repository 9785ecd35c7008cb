from celery import shared_task
from django.utils import timezone

from .models import Segment
from .rule_tags import rule_tags_refresh
from .services import segment_recompute


@shared_task
def recompute_segment(segment_id: int, version: int | None = None) -> int | None:
    """Queued on save (with the saved version) and on demand; a stale one does nothing."""
    snapshot = segment_recompute(segment_id=segment_id, version=version)
    return snapshot.member_count if snapshot else None


@shared_task
def recompute_due_segments() -> int:
    """Every minute (beat): queue the dynamic segments whose refresh interval has passed,
    the longest-waiting first."""
    now = timezone.now()
    due = [
        segment for segment in Segment.objects.filter(kind=Segment.Kind.DYNAMIC, refresh_every_minutes__isnull=False)
        .order_by("last_calculated_at")
        if segment.last_calculated_at is None
        or (now - segment.last_calculated_at).total_seconds() >= segment.refresh_every_minutes * 60
    ]
    for segment in due:
        recompute_segment.delay(segment.pk, segment.version)
    return len(due)


@shared_task
def refresh_rule_tags(tag_ids: list[int] | None = None) -> dict:
    """Every CDP_RULE_TAGS_EVERY_SECONDS (beat) for all active rule tags; queued with the
    saved tag's id after a rule is saved, and by the admin's "refresh now"."""
    results = rule_tags_refresh(tag_ids=tag_ids)
    return {
        "refreshed": sum(1 for result in results if not result.error),
        "failed": [result.tag_id for result in results if result.error],
    }
