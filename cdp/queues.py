"""Which Celery queue each task goes to, so that slow work never holds up urgent work.

Four queues, each of which can have workers of its own on its own machines:

* ``imports`` — customer, event and consent files (minutes to hours for 10M rows) and their undo.
* ``segments`` — segment recomputes, rule tags, and the nightly analytics (metrics, interest
  scores, recommendations): set-based statements over the whole customer base.
* ``deliveries`` — campaign decisions and the drains that hand messages to destinations.
* ``default`` — everything short: the schedulers' ticks (segments, campaigns), housekeeping,
  tag expiry and the consent checks. A consent withdrawal takes effect in the request's
  own transaction (the ledger and the current state), and every drain checks consent again
  at the moment of sending, so nothing about a withdrawal waits in a queue; what follows it
  runs here, behind nothing long.

``CDP_QUEUE_PREFIX`` prefixes every name (several installations on one broker, or the
worker tests, each on queues of their own).
"""
from __future__ import annotations

DEFAULT, IMPORTS, SEGMENTS, DELIVERIES = "default", "imports", "segments", "deliveries"
QUEUES = (DEFAULT, IMPORTS, SEGMENTS, DELIVERIES)

ROUTES = {
    "profiles.tasks.run_import": IMPORTS,
    "profiles.tasks.undo_import": IMPORTS,
    "profiles.import_sources.poll_import_source": IMPORTS,  # imports the watched source's new files
    "segments.tasks.recompute_segment": SEGMENTS,
    "segments.tasks.refresh_rule_tags": SEGMENTS,
    "profiles.tasks.recompute_all_metrics": SEGMENTS,
    "profiles.tasks.recompute_interests": SEGMENTS,
    "profiles.tasks.recompute_recommendations": SEGMENTS,
    "profiles.tasks.apply_event_retention": SEGMENTS,  # batched deletes over the whole events table
    "campaigns.tasks.campaign_run": DELIVERIES,
    "campaigns.tasks.drain": DELIVERIES,
    # Not listed, so on the default queue: segments.tasks.recompute_due_segments,
    # campaigns.tasks.tick, profiles.import_sources.poll_import_sources (which only queues the
    # polls), consent.tasks.*, the housekeeping tasks and tag expiry.
}


def queue_names(prefix: str = "") -> list[str]:
    return [prefix + queue for queue in QUEUES]


def task_routes(prefix: str = "") -> dict[str, dict[str, str]]:
    return {task: {"queue": prefix + queue} for task, queue in ROUTES.items()}
