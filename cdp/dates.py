"""Dates as people type them. Django's parsers raise ValueError for a well-formed but
impossible date ("2026-02-30", "2026-13-01"); here that is no date, like any other
text that is not one, so that the caller's own error message tells the user what to fix."""
import datetime

from django.utils.dateparse import parse_date, parse_datetime


def typed_date(text) -> datetime.date | None:
    try:
        return parse_date(str(text or ""))
    except ValueError:
        return None


def typed_moment(text) -> datetime.datetime | datetime.date | None:
    """A datetime ("2026-01-31 09:30") or, failing that, a date."""
    try:
        return parse_datetime(str(text or "")) or parse_date(str(text or ""))
    except ValueError:
        return None
