"""Celery tasks: take ids, call a service. Scheduled by beat (see CELERY_BEAT_SCHEDULE)."""
from celery import shared_task

from .metrics import metrics_recompute
from .models import InterestMapping
from .services.interests import interests_recompute
from .services.tags import tags_expire


@shared_task
def recompute_all_metrics() -> int:
    """Nightly: lifecycle stages and recency scores move with the calendar."""
    return metrics_recompute()


@shared_task
def recompute_interests(mapping_ids: list[int] | None = None) -> dict:
    """Nightly for every active mapping, or on demand for the given ones."""
    mappings = InterestMapping.objects.select_related("tag")
    mappings = mappings.filter(pk__in=mapping_ids) if mapping_ids is not None else mappings.filter(is_active=True)
    return interests_recompute(mappings=list(mappings))


@shared_task
def expire_tags() -> int:
    return tags_expire()
