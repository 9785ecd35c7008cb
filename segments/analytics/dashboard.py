"""The admin index's figures, computed together and cached for a few minutes (their age
is shown). Plain values only, so the cache holds no model instances and the page labels
them in the reader's language."""
from __future__ import annotations

import datetime

from django.core.cache import cache
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from cdp.replica import on_replica
from consent.models import Purpose
from consent.selectors import consent_q
from profiles.models import Event, EventDefinition, ImportJob, LifecycleStage, Profile, ProfileStatus

from ..models import Segment

CACHE_KEY = "cdp:dashboard:v1"
CACHE_SECONDS = 300
MAIN_PURPOSES = ("email_marketing", "sms_marketing", "wechat_marketing", "app_push")
ACTIVE_STAGES = (LifecycleStage.NEW, LifecycleStage.ACTIVE, LifecycleStage.RETURNING)  # seen in the last 30 days
EVENT_DAYS = 30


def dashboard_figures(*, refresh: bool = False, now: datetime.datetime | None = None) -> dict:
    """The cached figures (computed now if missing, stale or `refresh`)."""
    figures = None if refresh else cache.get(CACHE_KEY)
    if figures is None:
        figures = on_replica(dashboard_compute, now or timezone.now())
        cache.set(CACHE_KEY, figures, CACHE_SECONDS)
    return figures


def dashboard_compute(now: datetime.datetime) -> dict:
    active = Profile.objects.filter(status=ProfileStatus.ACTIVE)
    # this week = the last seven calendar days, today included (what the linked list filters on)
    since_day = timezone.localdate(now) - datetime.timedelta(days=6)
    since = timezone.make_aware(datetime.datetime.combine(since_day, datetime.time.min))
    stages = dict(active.order_by().values_list("lifecycle_stage").annotate(n=Count("pk")))
    customers = sum(stages.values())  # every customer has a stage: one scan, not two
    return {
        "computed_at": now.isoformat(),
        "customers": customers,
        "new_this_week": active.filter(created_at__gte=since).count(),
        "new_since": since_day.isoformat(),
        "active_30_days": sum(stages.get(stage.value, 0) for stage in ACTIVE_STAGES),
        "lifecycle": [(stage.value, stages.get(stage.value, 0)) for stage in LifecycleStage],
        "consent": _consent(active, customers, now),
        "segments": list(Segment.objects.order_by("-member_count", "name").values(
            "pk", "name", "kind", "member_count", "last_calculated_at", "last_error")[:10]),
        "segment_count": Segment.objects.count(),
        "imports": _imports(),
        "events_per_day": _events_per_day(now),
    }


def _consent(active, customers: int, now: datetime.datetime) -> list[dict]:
    rows = []
    for purpose in Purpose.objects.filter(code__in=MAIN_PURPOSES, is_active=True).order_by("code"):
        allowed = active.filter(consent_q(purpose, now)).count()
        rows.append({"code": purpose.code, "name_zh": purpose.name_zh, "name_en": purpose.name_en, "allowed": allowed,
                     "share": allowed / customers if customers else 0.0})
    return rows


def _imports() -> dict:
    by_status = dict(ImportJob.objects.order_by().values_list("status").annotate(n=Count("pk")))
    recent = list(ImportJob.objects.order_by("-created_at").values(
        "pk", "file_name", "status", "created_at", "rows_read", "created", "updated", "failed")[:5])
    return {"by_status": by_status, "recent": recent}


def _events_per_day(now: datetime.datetime) -> list[tuple[str, int]]:
    """Events per local day over the last 30 days. The closed days are counted once an
    hour (they hardly change: only late-arriving events); today is counted each time."""
    today = timezone.localdate(now)
    first_day = today - datetime.timedelta(days=EVENT_DAYS - 1)
    key = f"{CACHE_KEY}:events-per-day:{first_day.isoformat()}"
    closed = cache.get(key)
    if closed is None:
        closed = _count_per_day(first_day, today)
        cache.set(key, closed, 3600)
    per_day = {**closed, **_count_per_day(today, today + datetime.timedelta(days=1))}
    days = [first_day + datetime.timedelta(days=i) for i in range(EVENT_DAYS)]
    return [(day.isoformat(), per_day.get(day.isoformat(), 0)) for day in days]


def _count_per_day(first_day: datetime.date, end_day: datetime.date) -> dict[str, int]:
    """Events per local day in [first_day, end_day). Filtering on the registered names
    lets PostgreSQL read the (name, occurred_at) index instead of every event (events
    with an unregistered name are refused on the way in)."""
    zone = timezone.get_current_timezone()
    names = list(EventDefinition.objects.values_list("name", flat=True))
    start = timezone.make_aware(datetime.datetime.combine(first_day, datetime.time.min))
    end = timezone.make_aware(datetime.datetime.combine(end_day, datetime.time.min))
    rows = (Event.objects.filter(name__in=names, occurred_at__gte=start, occurred_at__lt=end).order_by()
            .annotate(day=TruncDate("occurred_at", tzinfo=zone)).values_list("day").annotate(n=Count("*")))
    return {day.isoformat(): n for day, n in rows}
