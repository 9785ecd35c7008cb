"""An independent reading of the condition language, for tests: it interprets the JSON
definition over plain Python objects (customers, their tags and events loaded into
memory) without parse.py or compile.py, following the meaning documented in
segments/conditions (registry, nodes and parse docstrings, DESIGN.md §4, issue 5).

Where it and the compiled SQL disagree, one of them misreads the documented meaning."""
from __future__ import annotations

import calendar
import datetime
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from profiles.models import AttributeDefinition, Event, Profile, ProfileTag, Tag, TagCategory, age_on
from profiles.normalisers import normalise_city, normalise_email, normalise_gender, normalise_phone, normalise_province
from campaigns.models import Campaign, Delivery
from segments.models import Segment

TEXT, CHOICE, NUMBER, DATE, DATETIME = "text", "choice", "number", "date", "datetime"
FIELD_TYPES = {
    "name": TEXT, "phone": TEXT, "email": TEXT, "country": TEXT, "province": TEXT, "city": TEXT,
    "occupation": TEXT, "gender": CHOICE, "lifecycle_stage": CHOICE, "birth_date": DATE,
    "age": NUMBER, "birth_year": NUMBER, "order_count": NUMBER, "total_spent": NUMBER,
    "rfm_recency": NUMBER, "rfm_frequency": NUMBER, "rfm_monetary": NUMBER,
    "created_at": DATETIME, "first_seen_at": DATETIME, "last_seen_at": DATETIME, "last_order_at": DATETIME,
}
MESSAGE_FIELDS = ("campaign_id", "channel", "status", "created_at", "sent_at", "delivered_at", "opened_at", "clicked_at",
                  "unsubscribed_at")
TRAIT_TYPES = {"string": TEXT, "choice": CHOICE, "number": NUMBER, "boolean": CHOICE, "date": DATE}


@dataclass
class EventRow:
    name: str
    occurred_at: datetime.datetime
    properties: dict
    amount: Decimal | None


@dataclass
class Message:
    """One campaign message (a delivery) to the customer, with what became of it."""

    campaign_id: int
    channel: str
    status: str
    created_at: datetime.datetime
    sent_at: datetime.datetime | None
    delivered_at: datetime.datetime | None
    opened_at: datetime.datetime | None
    clicked_at: datetime.datetime | None
    unsubscribed_at: datetime.datetime | None


@dataclass
class CampaignGoal:
    name: str
    goal_event: str
    goal_where: list
    attribution_days: int


@dataclass
class Customer:
    pk: int
    name: str
    attributes: dict  # field name → value, as stored
    traits: dict
    tags: dict[str, tuple[float | None, int]]  # slug → (weight, category id)
    events: list[EventRow] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


@dataclass
class World:
    customers: list[Customer]
    category_parents: dict[int, int | None]
    root_codes: dict[str, int]
    trait_types: dict[str, str]
    segments: dict[str, tuple[dict | None, set[int]]]  # slug → (definition if dynamic, frozen members)
    campaigns: dict[int, CampaignGoal] = field(default_factory=dict)
    tag_names: dict[str, str] = field(default_factory=dict)  # a tag's name → its slug (tags are named either way)

    @classmethod
    def load(cls) -> World:
        """Every active customer with their tags and events, read once."""
        customers = {}
        for profile in Profile.objects.filter(status="active"):
            attributes = {name: getattr(profile, name) for name in FIELD_TYPES if name not in ("age", "birth_year")}
            customers[profile.pk] = Customer(profile.pk, profile.name, attributes, dict(profile.traits), {})
        for row in ProfileTag.objects.values("profile_id", "tag__slug", "weight", "tag__category_id"):
            if row["profile_id"] in customers:
                customers[row["profile_id"]].tags[row["tag__slug"]] = (row["weight"], row["tag__category_id"])
        for event in Event.objects.all():
            if event.profile_id in customers:
                customers[event.profile_id].events.append(
                    EventRow(event.name, event.occurred_at, event.properties, event.amount))
        for row in Delivery.objects.values("profile_id", *MESSAGE_FIELDS):
            if row["profile_id"] in customers:
                customers[row["profile_id"]].messages.append(Message(**{key: row[key] for key in MESSAGE_FIELDS}))
        categories = list(TagCategory.objects.values("pk", "parent_id", "code"))
        return cls(
            customers=list(customers.values()),
            category_parents={c["pk"]: c["parent_id"] for c in categories},
            root_codes={c["code"]: c["pk"] for c in categories if c["code"]},
            trait_types={d.key: TRAIT_TYPES[d.type] for d in AttributeDefinition.objects.all()},
            segments={
                segment.slug: (segment.definition if segment.kind == "dynamic" else None,
                               set(segment.memberships.values_list("profile_id", flat=True)))
                for segment in Segment.objects.all()
            },
            tag_names=dict(Tag.objects.values_list("name", "slug")),
            campaigns={c.pk: CampaignGoal(c.name, c.goal_event, c.goal_where or [], c.attribution_days)
                       for c in Campaign.objects.all()},
        )

    def members(self, definition: dict, now: datetime.datetime) -> set[str]:
        return {c.name for c in self.customers if Evaluation(self, now).meets(definition, c)}


# Whole values compared with city, province, gender, phone and email mean what the importer stores.
WHOLE_VALUE_NORMALISERS = {"city": normalise_city, "province": normalise_province, "gender": normalise_gender,
                           "phone": normalise_phone, "email": normalise_email}


def display_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def moment(text: str, as_datetime: bool):
    """"2026-01-31" or an ISO datetime; a datetime without a zone is in the display zone."""
    if len(text) == 10:
        day = datetime.date.fromisoformat(text)
        return datetime.datetime.combine(day, datetime.time.min, display_zone()) if as_datetime else day
    value = datetime.datetime.fromisoformat(text)
    if not as_datetime:
        return value.date()
    return value if value.tzinfo else value.replace(tzinfo=display_zone())


def json_equal(stored, wanted) -> bool:
    """JSON equality: numbers by value, but true is not 1 and "1" is not 1."""
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return type(stored) is type(wanted) and stored == wanted
    if isinstance(stored, (int, float, Decimal)) and isinstance(wanted, (int, float, Decimal)):
        return Decimal(str(stored)) == Decimal(str(wanted))
    return type(stored) is type(wanted) and stored == wanted


def json_key(value) -> str:
    """A property value as text, as the database's distinct count sees it (1 and "1" alike)."""
    if value is None:
        return "\0none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compare(left, op: str, right) -> bool:
    if op == "between":
        return right[0] <= left <= right[1]
    return {"eq": lambda: left == right, "ne": lambda: left != right, "gt": lambda: left > right,
            "gte": lambda: left >= right, "lt": lambda: left < right, "lte": lambda: left <= right}[op]()


@dataclass
class Evaluation:
    world: World
    now: datetime.datetime

    @property
    def today(self) -> datetime.date:
        return self.now.astimezone(display_zone()).date()

    def meets(self, node: dict, customer: Customer) -> bool:
        if "all" in node:
            return all(self.meets(child, customer) for child in node["all"])
        if "any" in node:
            return any(self.meets(child, customer) for child in node["any"])
        if "not" in node:
            return not self.meets(node["not"], customer)
        if "field" in node:
            return self.field(node, customer)
        if "tag" in node or "tags" in node or "tag_category" in node:
            return self.tag(node, customer)
        if "event" in node:
            return self.event(node, customer)
        if "sequence" in node:
            return self.sequence(node, customer)
        if "campaign" in node:
            return self.campaign(node, customer)
        if "segment" in node:
            return self.segment(node, customer)
        raise ValueError(node)  # consent: not evaluated here yet

    def segment(self, node: dict, customer: Customer) -> bool:
        """A dynamic segment by its definition (as fresh as the rest), a static one by
        its frozen list."""
        definition, frozen = self.world.segments[node["segment"]]
        inside = self.meets(definition, customer) if definition is not None else customer.pk in frozen
        return inside if node.get("op", "in") == "in" else not inside

    # --- fields: "empty" is NULL, "" for text, and the unknown gender -------------------

    def field(self, node: dict, customer: Customer) -> bool:
        name, op, wanted = node["field"], node["op"], node.get("value")
        if name.startswith("traits."):
            key = name.removeprefix("traits.")
            kind, value = self.world.trait_types[key], customer.traits.get(key)
            if kind == DATE and value is not None:
                value = datetime.date.fromisoformat(value)
        else:
            kind = FIELD_TYPES[name]
            birth = customer.attributes["birth_date"]
            if name == "age":
                value = age_on(birth, self.today) if birth else None
            elif name == "birth_year":
                value = birth.year if birth else None
            else:
                value = customer.attributes[name]
        empty = value is None or value == "" or (name == "gender" and value == "unknown")
        if op == "is_empty":
            return empty
        if op == "is_set":
            return not empty
        if name == "age":
            return self.age(op, wanted, customer.attributes["birth_date"])
        wanted = self.typed(kind, wanted)
        if name in WHOLE_VALUE_NORMALISERS and op in ("eq", "ne", "in", "not_in"):  # as imports store them
            normalise = WHOLE_VALUE_NORMALISERS[name]
            wanted = [normalise(w) for w in wanted] if isinstance(wanted, list) else normalise(wanted)
        if op == "ne":
            return value is None or value != wanted
        if op == "not_in":
            return value is None or value not in wanted
        if value is None:
            return False
        if kind == NUMBER:
            value = Decimal(str(value))
        if op in ("eq", "gt", "gte", "lt", "lte"):
            return compare(value, op, wanted)
        if op == "in":
            return value in wanted
        if op == "contains":
            return wanted.lower() in value.lower()
        if op == "starts_with":
            return value.lower().startswith(wanted.lower())
        if op == "between":
            return wanted[0] <= value <= wanted[1]
        if op == "before":
            return value < wanted
        if op == "after":
            return value > wanted
        if op == "on_or_after":
            return value >= wanted
        if op == "on_or_before":  # a day given for a time takes in the whole day
            if isinstance(value, datetime.datetime) and wanted.astimezone(display_zone()).time() == datetime.time.min:
                return value < wanted + datetime.timedelta(days=1)
            return value <= wanted
        if op == "within_last_days":
            return value >= self.days_ago(kind, wanted)
        if op == "more_than_days_ago":
            return value < self.days_ago(kind, wanted)
        if op == "anniversary_within_days":
            upcoming = {(d.month, d.day) for d in (self.today + datetime.timedelta(days=k) for k in range(wanted + 1))}
            return (value.month, value.day) in upcoming
        raise ValueError(op)

    def typed(self, kind: str, wanted):
        if isinstance(wanted, list):
            return [self.typed(kind, item) for item in wanted]
        if kind == NUMBER and not isinstance(wanted, bool) and wanted is not None:
            return Decimal(str(wanted))
        if kind in (DATE, DATETIME) and isinstance(wanted, str):
            return moment(wanted, as_datetime=kind == DATETIME)
        return wanted

    def days_ago(self, kind: str, days: int):
        return self.now - datetime.timedelta(days=days) if kind == DATETIME else self.today - datetime.timedelta(days=days)

    def age(self, op: str, wanted, birth: datetime.date | None) -> bool:
        if birth is None:
            return False
        age = age_on(birth, self.today)
        low, high = wanted if op == "between" else (wanted, None) if op == "gte" else (None, wanted)
        return (low is None or age >= low) and (high is None or age <= high)

    # --- tags -----------------------------------------------------------------------------

    def tag(self, node: dict, customer: Customer) -> bool:
        op, held = node["op"], customer.tags
        slugs = set(self.world.tag_names.values())
        named = {key: self.world.tag_names.get(value, value) if value not in slugs else value
                 for key, value in node.items() if key == "tag"}
        if "tags" in node:
            named["tags"] = [self.world.tag_names.get(v, v) if v not in slugs else v for v in node["tags"]]
        node = {**node, **named}
        if "tag_category" in node:
            category = node["tag_category"]
            root = self.world.root_codes.get(category) or int(category)
            return any(self.under(category_id, root) for _weight, category_id in held.values())
        if op == "has":
            return node["tag"] in held
        if op == "has_not":
            return node["tag"] not in held
        if op == "weight_gte":
            weight = held.get(node["tag"], (None, None))[0]
            return weight is not None and weight >= node["value"]
        if op == "has_any":
            return any(slug in held for slug in node["tags"])
        if op == "has_all":
            return all(slug in held for slug in node["tags"])
        raise ValueError(op)

    def under(self, category_id: int | None, root: int) -> bool:
        while category_id is not None:
            if category_id == root:
                return True
            category_id = self.world.category_parents[category_id]
        return False

    # --- behaviour ------------------------------------------------------------------------

    def matching(self, node: dict, customer: Customer, use_window: bool = True) -> list[EventRow]:
        window = node.get("within") if use_window else None
        return [e for e in customer.events if e.name == node["event"] and self.in_window(e, window)
                and all(self.property_matches(e.properties, item) for item in node.get("where", []))
                and self.amount_matches(e.amount, node.get("amount")) and self.at_local_time(e, node)]

    @staticmethod
    def at_local_time(event: EventRow, node: dict) -> bool:
        local = event.occurred_at.astimezone(display_zone())
        if "days_of_week" in node and local.isoweekday() not in node["days_of_week"]:
            return False
        if "time_of_day" in node:
            start, end = (int(t[:-3]) * 60 + int(t[-2:]) for t in (node["time_of_day"]["from"], node["time_of_day"]["to"]))
            minute = local.hour * 60 + local.minute
            return start <= minute < end if start < end else (minute >= start or minute < end)
        return True

    def in_window(self, event: EventRow, window: dict | None) -> bool:
        return self.moment_in_window(event.occurred_at, window)

    def moment_in_window(self, at: datetime.datetime, window: dict | None) -> bool:
        if window is None:
            return True
        for unit in ("minutes", "hours", "days", "weeks"):
            if unit in window:
                return at >= self.now - datetime.timedelta(**{unit: window[unit]})
        if "months" in window:  # the same day of the month N months back (the month's last day if shorter)
            month = self.now.month - 1 - window["months"]
            year, month = self.now.year + month // 12, month % 12 + 1
            day = min(self.now.day, calendar.monthrange(year, month)[1])
            return at >= self.now.replace(year=year, month=month, day=day)
        if "period" in window:
            start, end = self.period(window["period"])
            return start <= at < end
        start, end = (moment(text, as_datetime=True) for text in window["between"])
        return start <= at < end

    def period(self, name: str) -> tuple[datetime.datetime, datetime.datetime]:
        """A calendar period's [start, end) at display-zone midnights (weeks from Monday)."""
        today = self.now.astimezone(display_zone()).date()
        day = datetime.timedelta(days=1)
        if name in ("today", "yesterday"):
            first = today if name == "today" else today - day
            last = first + day
        elif name in ("this_week", "last_week"):
            first = today - today.weekday() * day - (7 * day if name == "last_week" else 0 * day)
            last = first + 7 * day
        elif name == "this_year":
            first, last = datetime.date(today.year, 1, 1), datetime.date(today.year + 1, 1, 1)
        else:
            first = today.replace(day=1)
            if name == "last_month":
                first = (first - day).replace(day=1)
            last = (first + 32 * day).replace(day=1)
        midnight = lambda d: datetime.datetime.combine(d, datetime.time.min, tzinfo=display_zone())  # noqa: E731
        return midnight(first), midnight(last)

    @staticmethod
    def property_matches(properties: dict, item: dict) -> bool:
        """A missing property equals nothing: "ne" / "not_in" hold for it, like a field's
        empty value; comparisons and "contains" do not."""
        key, op, wanted = item["property"], item["op"], item.get("value")
        present = key in properties and properties[key] is not None
        value = properties.get(key)
        if op == "eq":
            return present and json_equal(value, wanted)
        if op == "ne":
            return not (present and json_equal(value, wanted))
        if op == "in":
            return present and any(json_equal(value, w) for w in wanted)
        if op == "not_in":
            return not (present and any(json_equal(value, w) for w in wanted))
        if op == "contains":
            return present and str(wanted).lower() in str(value).lower()
        if not present or isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return compare(Decimal(str(value)), op, Decimal(str(wanted)))

    @staticmethod
    def amount_matches(amount: Decimal | None, spec: dict | None) -> bool:
        if spec is None:
            return True
        wanted = Decimal(str(spec["value"]))
        if spec["op"] == "ne":
            return amount is None or amount != wanted
        return amount is not None and compare(amount, spec["op"], wanted)

    def event(self, node: dict, customer: Customer) -> bool:
        if "first_within_days" in node:
            times = [e.occurred_at for e in self.matching(node, customer)]
            return bool(times) and min(times) >= self.now - datetime.timedelta(days=node["first_within_days"])
        if "last_more_than_days_ago" in node:
            times = [e.occurred_at for e in self.matching(node, customer)]
            return bool(times) and max(times) < self.now - datetime.timedelta(days=node["last_more_than_days_ago"])
        if "share" in node:  # of the events at any time, the share at the node's times
            timeless = {k: v for k, v in node.items() if k not in ("time_of_day", "days_of_week")}
            everything = self.matching(timeless, customer)
            if not everything:
                return False
            at_times = [e for e in everything if self.at_local_time(e, node)]
            share = Decimal(len(at_times)) / Decimal(len(everything))
            return compare(share, node["share"]["op"], Decimal(str(node["share"]["value"])))
        events = self.matching(node, customer)
        if "distinct" in node:
            spec = node["distinct"]
            values = {json_key(e.properties.get(spec["of"])) for e in events} - {json_key(None)}
            return compare(len(values), spec["op"], spec["value"])
        for measure in ("sum", "avg", "min", "max"):
            if measure in node:
                spec = node[measure]
                if "of" in spec:  # numbers only: a text or a boolean is no number
                    values = [Decimal(str(v)) for v in (e.properties.get(spec["of"]) for e in events)
                              if isinstance(v, (int, float)) and not isinstance(v, bool)]
                else:
                    values = [e.amount for e in events if e.amount is not None]
                wanted = spec["value"]
                wanted = [Decimal(str(w)) for w in wanted] if isinstance(wanted, list) else Decimal(str(wanted))
                if measure == "sum":  # the sum of nothing is 0
                    return compare(sum(values, Decimal(0)), spec["op"], wanted)
                if not values:  # an average, least or greatest of nothing meets nothing
                    return False
                got = {"avg": lambda: sum(values, Decimal(0)) / len(values), "min": lambda: min(values),
                       "max": lambda: max(values)}[measure]()
                return compare(got, spec["op"], wanted)
        spec = node.get("count", {"op": "gte", "value": 1})
        return compare(len(events), spec["op"], spec["value"])

    def sequence(self, node: dict, customer: Customer) -> bool:
        steps = node["sequence"]
        gaps = [datetime.timedelta(days=step.get("within_days", node.get("within_days", 0))) for step in steps[1:]]
        rows = [self.matching(step, customer, use_window=i == 0) for i, step in enumerate(steps)]  # only the first
        excluded = self.matching(node["not_between"], customer, use_window=False) if "not_between" in node else []
        drop_off = node.get("op", "then") == "not_then"
        last_done = len(steps) - (2 if drop_off else 1)

        def followed(k: int, row: EventRow, first: EventRow) -> bool:
            """Step k's row `row` (first step's row `first`) goes on as the sequence asks."""
            if k == last_done:
                if any(first.occurred_at < e.occurred_at < row.occurred_at for e in excluded) and k >= 1:
                    return False
                if not drop_off:
                    return True
                gap = gaps[k]
                return row.occurred_at <= self.now - gap and not any(
                    row.occurred_at < e.occurred_at <= row.occurred_at + gap for e in rows[k + 1])
            gap = gaps[k]
            return any(row.occurred_at < e.occurred_at <= row.occurred_at + gap and followed(k + 1, e, first)
                       for e in rows[k + 1])

        return any(followed(0, first, first) for first in rows[0])



    # --- campaigns: per message, what happened and when ------------------------------------

    def campaign(self, node: dict, customer: Customer) -> bool:
        """How many of the customer's messages (of the campaign, or of any on the channel)
        had the action inside the window and not the `without` action, compared."""
        ref = node["campaign"]
        if ref == "any":
            wanted = None
        elif isinstance(ref, int) or str(ref).isdigit():
            wanted = int(ref)
        else:
            wanted = next(pk for pk, goal in self.world.campaigns.items() if goal.name == ref)
        messages = [m for m in customer.messages if (wanted is None or m.campaign_id == wanted)
                    and (not node.get("channel") or m.channel == node["channel"])]
        window, without = node.get("within"), node.get("without")
        n = sum(1 for m in messages if self.message_had(m, node["action"], window, customer)
                and not (without and self.message_had(m, without, None, customer)))
        spec = node.get("count", {"op": "gte", "value": 1})
        return compare(n, spec["op"], spec["value"])

    def message_had(self, message: Message, action: str, window: dict | None, customer: Customer) -> bool:
        left = message.status in ("sent", "delivered") and message.sent_at is not None
        if action == "converted":  # the campaign's goal event within its attribution days of the send
            goal = self.world.campaigns[message.campaign_id]
            if not left or not goal.goal_event:
                return False
            until = message.sent_at + datetime.timedelta(days=goal.attribution_days)
            return any(e.name == goal.goal_event and message.sent_at < e.occurred_at <= until
                       and all(self.property_matches(e.properties, item) for item in goal.goal_where)
                       and self.moment_in_window(e.occurred_at, window) for e in customer.events)
        at = {
            "sent": message.sent_at if left else None,
            "received": message.delivered_at or (message.sent_at if message.status == "delivered" else None),
            "opened": message.opened_at, "clicked": message.clicked_at, "unsubscribed": message.unsubscribed_at,
            "held_out": message.created_at if message.status == "holdout" else None,
        }[action]
        return at is not None and self.moment_in_window(at, window)
