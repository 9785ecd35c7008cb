"""The condition language's typed nodes. `parse` builds them from JSON; `compile` turns
them into a Django Q; nothing else reads the JSON."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Union


@dataclass(frozen=True)
class Group:
    op: str  # "all" | "any"
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class FieldCondition:
    """A profile attribute, computed metric or custom trait ("traits.<key>")."""

    field: str
    op: str
    value: object = None


@dataclass(frozen=True)
class TagCondition:
    op: str  # has | has_not | has_any | has_all | in_category | weight_gte
    tags: tuple[str, ...] = ()
    category: str = ""  # a root code (basic, interest…) or a category id
    weight: float | None = None


@dataclass(frozen=True)
class PropertyFilter:
    property: str
    op: str
    value: object = None


@dataclass(frozen=True)
class Window:
    """Rolling (the last `amount` `unit`s: minutes, hours, days, weeks or months), a
    calendar `period` in the display time zone (today, yesterday, this_week, last_week,
    this_month, last_month, this_year), or absolute [start, end)."""

    amount: int | None = None
    unit: str = "days"
    period: str = ""
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None


@dataclass(frozen=True)
class EventCondition:
    """Behaviour: performed `event` (matching `where` and `amount`) inside `window`,
    measured by `measure`: count (op, value), first_within (days), last_before (days ago)
    or sum / avg of the amount (op, value)."""

    event: str
    measure: str = "count"  # count | first_within | last_before | sum | avg | min | max | distinct | share
    op: str = "gte"
    value: Decimal | int | None = 1
    window: Window | None = None
    where: tuple[PropertyFilter, ...] = field(default_factory=tuple)
    amount: tuple[str, Decimal] | None = None  # (op, value) on each event's amount
    # Local time of day [from, to) in minutes after midnight (from > to wraps past midnight),
    # and ISO days of the week (1 = Monday), in the display time zone.
    time_of_day: tuple[int, int] | None = None
    days_of_week: tuple[int, ...] = ()
    of: str = ""  # the property sum/avg/min/max/distinct measure ("": the amount)


@dataclass(frozen=True)
class SequenceCondition:
    """Did the `steps` in order, each within `gaps[i]` days after the step before it (op
    "then"); or all but the last, and not the last within its gap once that has passed
    (op "not_then"). `excluding`: an event that must not happen between the first step and
    the last one done. `steps[0].window` bounds the first step."""

    steps: tuple[EventCondition, ...]
    gaps: tuple[int, ...]  # len(steps) - 1
    op: str = "then"
    excluding: EventCondition | None = None


@dataclass(frozen=True)
class ConsentCondition:
    """Processing for the purpose is allowed now (op "granted") or not ("not_granted");
    unknown is not granted, see consent.selectors.consent_q."""

    purpose: str
    op: str = "granted"


@dataclass(frozen=True)
class CampaignCondition:
    """What campaigns did with the customer and the customer with them, counted per
    message: `action` (sent, received, opened, clicked, converted, unsubscribed, held_out)
    on a message of campaign `campaign_id` (None: any campaign, of `channel` when given),
    inside `window` (the action's moment; a conversion's: its goal event), not followed on
    the same message by `without` (received but did not click), compared (op, value) with
    how many such messages the customer has."""

    action: str
    campaign_id: int | None = None
    channel: str = ""
    without: str = ""
    op: str = "gte"
    value: int | tuple[int, int] | None = 1
    window: Window | None = None


@dataclass(frozen=True)
class SegmentCondition:
    """Member of another segment (op "in") or not ("not_in"). A dynamic segment is
    evaluated from its definition (`definition`, parsed), so the answer is as fresh as
    the rest of the condition; a static one from its frozen list."""

    segment: str
    op: str = "in"
    segment_id: int | None = None
    definition: "Node | None" = None


Node = Union[Group, Not, FieldCondition, TagCondition, EventCondition, SequenceCondition, ConsentCondition,
             CampaignCondition, SegmentCondition]
