"""Quiet hours per channel, in the display time zone: a message due inside the window
waits until it opens (settings.CAMPAIGN_QUIET_HOURS, e.g. {"sms": ("21:00", "08:00")})."""
import datetime

from django.conf import settings
from django.utils import timezone


def quiet_window(channel: str) -> tuple[datetime.time, datetime.time] | None:
    window = settings.CAMPAIGN_QUIET_HOURS.get(channel)
    if not window:
        return None
    start, end = (datetime.time.fromisoformat(value) for value in window)
    return start, end


def quiet_until(channel: str, moment: datetime.datetime) -> datetime.datetime | None:
    """When the quiet hours around `moment` end, or None when `moment` is not in them.
    The window includes its start and excludes its end (21:00 waits, 08:00 sends)."""
    window = quiet_window(channel)
    if window is None:
        return None
    start, end = window
    local = timezone.localtime(moment)
    clock = local.time()
    quiet = (clock >= start or clock < end) if start > end else (start <= clock < end)
    if not quiet:
        return None
    opening = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if opening <= local:
        opening += datetime.timedelta(days=1)
    return opening


def send_time(channel: str, moment: datetime.datetime, *, ignore: bool = False) -> datetime.datetime:
    """The first moment at or after `moment` outside the channel's quiet hours."""
    if ignore:
        return moment
    return quiet_until(channel, moment) or moment
