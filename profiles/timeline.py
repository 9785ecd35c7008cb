"""One customer's activity timeline: behaviour events and system activity in one
reverse-chronological stream, keyset-paginated (no OFFSET, no page numbers).

Order: newest first; at the same instant events before activity; then newest id first.
A cursor names the last entry shown: "<occurred_at ISO>|<e or a>|<id>".
"""
import datetime
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import DecimalField, F, Q, Value
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property

from cdp.actors import actor_display

from .activity import details_display, summarise
from .event_labels import EventLabels, source_label
from .models import Event, Profile, ProfileActivity

EVENT, ACTIVITY = "e", "a"
PAGE_SIZE = 30  # a screenful; "load more" brings the next

# Icons by event name or activity type; anything else gets the default.
ICONS = {
    "page_view": "📄", "product_view": "👀", "add_to_cart": "🛒", "order": "🧾", "payment": "💳",
    "share": "🔗", "campaign_open": "✉️", "campaign_click": "👆", "support_chat": "💬",
    "account_open_start": "📝", "account_open_submit": "📨", "account_open_complete": "✅",
    ProfileActivity.Type.CREATED: "✨", ProfileActivity.Type.EDITED: "✏️", ProfileActivity.Type.NOTE: "🗒️",
    ProfileActivity.Type.IMPORTED: "📥", ProfileActivity.Type.TAG_ADDED: "🏷️", ProfileActivity.Type.TAG_REMOVED: "🏷️",
    ProfileActivity.Type.CONSENT_CHANGED: "🛡️", ProfileActivity.Type.SEGMENT_ENTERED: "➕",
    ProfileActivity.Type.SEGMENT_EXITED: "➖", ProfileActivity.Type.MERGED: "🔀", ProfileActivity.Type.UNMERGED: "↩️",
    ProfileActivity.Type.DSAR: "📋",
}


@dataclass(frozen=True)
class Cursor:
    occurred_at: datetime.datetime
    kind: str
    id: int

    def __str__(self):
        return f"{self.occurred_at.isoformat()}|{self.kind}|{self.id}"

    @classmethod
    def parse(cls, text: str | None) -> "Cursor | None":
        """None for a missing or malformed cursor (the first page)."""
        try:
            when, kind, pk = (text or "").split("|")
            occurred_at = parse_datetime(when)
            if occurred_at is None or kind not in (EVENT, ACTIVITY):
                return None
            return cls(occurred_at, kind, int(pk))
        except ValueError:
            return None


@dataclass
class TimelineFilter:
    """Which entries to show: types are "e:<event name>" or "a:<activity type>"."""

    types: list[str] = field(default_factory=list)
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None

    def wants(self, kind: str) -> bool:
        return not self.types or any(t.startswith(f"{kind}:") for t in self.types)

    def names(self, kind: str) -> list[str]:
        return [t[2:] for t in self.types if t.startswith(f"{kind}:")]


@dataclass
class Entry:
    kind: str
    id: int
    occurred_at: datetime.datetime
    type: str
    icon: str
    title: str
    summary: str = ""
    details: dict = field(default_factory=dict)
    amount: object = None
    source: str = ""
    actor: str = ""

    @cached_property
    def local_time(self) -> datetime.datetime:
        return timezone.localtime(self.occurred_at)

    @property
    def day_label(self) -> str:
        return date_format(self.local_time, "Y-m-d l")

    @property
    def time_label(self) -> str:
        return self.local_time.strftime("%H:%M")

    @property
    def details_text(self) -> str:
        """One "key: value" line per detail (rendered as one block, cheaper than a loop)."""
        return "\n".join(f"{key}: {value}" for key, value in self.details.items())

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.occurred_at, self.kind, self.id)


def profile_timeline(
    profile: Profile, *, after: Cursor | None = None, filters: TimelineFilter | None = None, limit: int = PAGE_SIZE,
    labels: EventLabels | None = None,
) -> tuple[list[Entry], Cursor | None]:
    """One page of entries older than `after`, and the cursor of the next page (None at
    the end). One query whatever the size of the history (on PostgreSQL each side an index
    range scan cut at the page size), and one for the event labels unless the caller read
    them already."""
    filters = filters or TimelineFilter()
    events = activities = None
    if filters.wants(EVENT):
        events = _window(Event.objects.filter(profile=profile), after, EVENT, filters)
        if names := filters.names(EVENT):
            events = events.filter(name__in=names)
        labels = labels if labels is not None else EventLabels.load()
    if filters.wants(ACTIVITY):
        activities = _window(ProfileActivity.objects.filter(profile=profile), after, ACTIVITY, filters)
        if types := filters.names(ACTIVITY):
            activities = activities.filter(type__in=types)
    if events is not None and activities is not None:
        entries = _both(events, activities, limit, labels)
    else:
        entries = [_event_entry(e, labels) for e in events[: limit + 1]] if events is not None else []
        entries += [_activity_entry(a) for a in activities[: limit + 1]] if activities is not None else []
    entries.sort(key=lambda e: (e.occurred_at, e.kind == EVENT, e.id), reverse=True)
    page = entries[:limit]
    return page, (page[-1].cursor if len(entries) > limit else None)


# The columns both sides of the timeline's UNION give, events' and activities' in turn.
_COLUMNS = ("entry_kind", "id", "occurred_at", "entry_type", "entry_data", "entry_amount", "entry_source",
            "entry_actor_kind", "entry_actor_label")


def _both(events, activities, limit: int, labels: EventLabels) -> list[Entry]:
    """Events and activities in one statement: each side's newest `limit + 1` (by its own
    index), then the newest of both. SQLite cannot cut the sides of a UNION: there the
    whole history is sorted (SQLite is for laptops)."""
    cut = connection.features.supports_slicing_ordering_in_compound
    events = events.annotate(
        entry_kind=Value(EVENT), entry_type=F("name"), entry_data=F("properties"), entry_amount=F("amount"),
        entry_source=F("source"), entry_actor_kind=Value(""), entry_actor_label=Value(""),
    ).values_list(*_COLUMNS)
    activities = activities.annotate(
        entry_kind=Value(ACTIVITY), entry_type=F("type"), entry_data=F("params"),
        entry_amount=Value(None, output_field=DecimalField()), entry_source=Value(""),
        entry_actor_kind=F("actor_kind"), entry_actor_label=F("actor_label"),
    ).values_list(*_COLUMNS)
    if cut:
        both = events[: limit + 1].union(activities[: limit + 1], all=True)
    else:
        both = events.order_by().union(activities.order_by(), all=True).order_by(
            "-occurred_at", "-entry_kind", "-id")[: limit + 1]
    entries = []
    for kind, pk, occurred_at, type_, data, amount, source, actor_kind, actor_label in both:
        if kind == EVENT:
            entries.append(_event_entry(Event(id=pk, occurred_at=occurred_at, name=type_, properties=data, amount=amount,
                                              source=source), labels))
        else:
            entries.append(_activity_entry(ProfileActivity(id=pk, occurred_at=occurred_at, type=type_, params=data,
                                                           actor_kind=actor_kind, actor_label=actor_label)))
    return entries


def _window(queryset, after: Cursor | None, kind: str, filters: TimelineFilter):
    if filters.since:
        queryset = queryset.filter(occurred_at__gte=filters.since)
    if filters.until:
        queryset = queryset.filter(occurred_at__lt=filters.until)
    if after is not None:
        older = Q(occurred_at__lt=after.occurred_at)
        if kind == after.kind:
            older |= Q(occurred_at=after.occurred_at, id__lt=after.id)
        elif kind == ACTIVITY:  # activity sorts after the events of the same instant
            older |= Q(occurred_at=after.occurred_at)
        # occurred_at <= t bounds the index range scan; `older` settles ties at t.
        queryset = queryset.filter(occurred_at__lte=after.occurred_at).filter(older)
    return queryset.order_by("-occurred_at", "-id")


def _event_entry(event: Event, labels: EventLabels) -> Entry:
    """Names and known values in the reader's language: "品类: 户外", not "category: outdoor"."""
    properties = event.properties if isinstance(event.properties, dict) else {}
    return Entry(
        kind=EVENT, id=event.pk, occurred_at=event.occurred_at, type=event.name, icon=ICONS.get(event.name, "•"),
        title=labels.event(event.name), summary=_property_summary(event.name, properties, labels),
        details=labels.properties(event.name, properties), amount=event.amount, source=source_label(event.source),
    )


def _activity_entry(activity: ProfileActivity) -> Entry:
    return Entry(
        kind=ACTIVITY, id=activity.pk, occurred_at=activity.occurred_at, type=activity.type,
        icon=ICONS.get(activity.type, "•"), title=str(activity.get_type_display()), summary=summarise(activity),
        details=details_display(activity),
        actor=actor_display(activity.actor_kind, activity.actor_label) or str(activity.get_actor_kind_display()),
    )


def _property_summary(event: str, properties: dict, labels: EventLabels) -> str:
    shown = [f"{labels.property(key, event)}: {labels.value(key, value, event)}"
             for key, value in properties.items() if not isinstance(value, dict | list)]
    return " · ".join(shown[:4])
