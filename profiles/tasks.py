from celery import shared_task

from .metrics import metrics_recompute


@shared_task
def recompute_all_metrics() -> int:
    """Nightly: lifecycle stages and recency scores move with the calendar."""
    return metrics_recompute()
