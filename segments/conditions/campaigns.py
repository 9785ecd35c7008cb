"""Campaign behaviour in the condition language: "received campaign X but did not click
it", "clicked any SMS campaign this month", "converted at least twice this year".

Campaigns sit above segments (DESIGN.md's layering: segments ← campaigns), so nothing in
segments imports them. The campaigns app registers what the language needs here when it
starts (campaigns.apps → campaigns.conditions), as consent registers its look-ups with
profiles. Without it (an installation without campaigns) a campaign condition is refused
with a message, never silently matched."""
from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet

# What campaigns record per customer and message, in the order a message goes through.
ACTIONS = ("sent", "received", "opened", "clicked", "converted", "unsubscribed", "held_out")
# A message's later actions, for "… but did not …" on the same message.
WITHOUT_ACTIONS = {
    "sent": ("received", "opened", "clicked", "converted", "unsubscribed"),
    "received": ("opened", "clicked", "converted", "unsubscribed"),
    "opened": ("clicked", "converted", "unsubscribed"),
    "clicked": ("converted", "unsubscribed"),
    "converted": ("unsubscribed",),
    "unsubscribed": (),
    "held_out": (),
}
ANY = "any"


@dataclass(frozen=True)
class CampaignSource:
    """What the campaigns app tells the language.

    `find(ref)`: the campaign ids a reference names (an id, or a name: several when a name
    is shared). `names(ids)`: id → name for those that exist. `messages(action=, campaign_id=,
    channel=, start=, end=, without=, now=)`: one row per message (delivery) that had the
    action, its moment in [start, end) when given, and not the `without` action; rows have
    `profile_id`. `options()`: the builder's campaign picker, [{value, label, group}]."""

    find: Callable[[object], list[int]]
    names: Callable[[list[int]], dict[int, str]]
    messages: Callable[..., QuerySet]
    options: Callable[[], list[dict]]


_source: CampaignSource | None = None


def campaign_source_register(source: CampaignSource | None) -> None:
    global _source
    _source = source


def campaign_source() -> CampaignSource | None:
    return _source


def campaign_messages(node, start: datetime.datetime | None, end: datetime.datetime | None,
                      now: datetime.datetime) -> QuerySet:
    """The messages a campaign node asks about, for everyone (see CampaignSource.messages)."""
    return _source.messages(action=node.action, campaign_id=node.campaign_id, channel=node.channel, start=start,
                            end=end, without=node.without, now=now)
