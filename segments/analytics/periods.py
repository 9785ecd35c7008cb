"""Calendar periods in the display time zone (weeks start on Monday), as boundaries
that SQL compares with a CASE, so grouping by week or month is exact and the same on
SQLite and PostgreSQL."""
from __future__ import annotations

import datetime

from django.utils import timezone

from .common import db_time, local_midnight

WEEK, MONTH = "week", "month"


def period_starts(period: str, count: int, now: datetime.datetime) -> list[datetime.datetime]:
    """count + 1 boundaries: the starts of the last `count` periods (the current one
    last) and the end of the current one."""
    today = timezone.localdate(now)
    if period == WEEK:
        this = today - datetime.timedelta(days=today.weekday())
        days = [this - datetime.timedelta(weeks=count - 1 - i) for i in range(count + 1)]
    else:
        index = today.year * 12 + today.month - 1
        days = [datetime.date(i // 12, i % 12 + 1, 1) for i in range(index - count + 1, index + 2)]
    return [local_midnight(day) for day in days]


def period_case(column_sql: str, starts: list[datetime.datetime]) -> tuple[str, list]:
    """SQL numbering `column` by period: 0 for [starts[0], starts[1]), 1 for the next…;
    NULL outside them."""
    whens = " ".join(f"WHEN {column_sql} < %s THEN {i}" for i in range(len(starts) - 1))
    return (f"(CASE WHEN {column_sql} < %s THEN NULL {whens} ELSE NULL END)",
            [db_time(starts[0]), *(db_time(moment) for moment in starts[1:])])


def period_label(period: str, start: datetime.datetime) -> str:
    day = timezone.localtime(start).date()
    return day.strftime("%Y-%m") if period == MONTH else day.isoformat()
