from celery import shared_task
from django.utils import timezone

from .models import Segment
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
