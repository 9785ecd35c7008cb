"""Each analysis against an independent Python computation over a small hand-built
history (seeded random, so the cases vary but the run is repeatable)."""
import datetime
import random
import sys
import statistics
import zoneinfo
from collections import Counter
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from profiles.metrics import metrics_recompute
from profiles.models import Event, Profile
from segments.analytics import (
    funnel,
    funnel_query,
    lifecycle,
    lifecycle_query,
    paths,
    paths_query,
    retention,
    retention_query,
    rfm,
    rfm_query,
)
from segments.analytics.paths import OTHER, PathsResult, paths_followed
from segments.analytics.rfm import group_of
from segments.analytics.segment_writes import segment_from_funnel_drop_off, segment_from_rfm_cells
from segments.models import Segment, SegmentMembership
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
NOW = datetime.datetime(2026, 6, 17, 4, 30, tzinfo=datetime.timezone.utc)  # a Wednesday, 12:30 in Shanghai
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
FUNNEL_NAMES = ["account_open_start", "account_open_submit", "account_open_complete"]
OTHER_NAMES = ["page_view", "product_view", "order", "share"]
CITIES = ["上海", "北京", "广州"]


@pytest.fixture
def history():
    """40 customers with up to 25 events each, who turned up 20 to 200 days ago."""
    rnd = random.Random(20261129)
    events = []
    for i in range(40):
        profile = ProfileFactory(city=rnd.choice(CITIES), gender=rnd.choice(["female", "male"]),
                                 birth_date=datetime.date(rnd.randint(1960, 2005), rnd.randint(1, 12), rnd.randint(1, 28)))
        span_days = rnd.choice([20, 45, 80, 120, 200])  # how long ago they turned up
        for _ in range(rnd.randint(0, 25)):
            at = NOW - datetime.timedelta(seconds=rnd.randint(60, span_days * 86400))
            name = rnd.choice(FUNNEL_NAMES + OTHER_NAMES)
            channel = rnd.choice(["app", "web"])
            amount = Decimal(rnd.randint(50, 3000)) if name == "order" else None
            events.append(Event(profile=profile, name=name, occurred_at=at, properties={"channel": channel},
                                amount=amount, source=rnd.choice(["app", "wechat"])))
        if rnd.random() < 0.7:  # an account-opening attempt: each step follows within days, or not
            at = NOW - datetime.timedelta(seconds=rnd.randint(3600, 150 * 86400))
            for name in FUNNEL_NAMES:
                events.append(Event(profile=profile, name=name, occurred_at=at, properties={"channel": "app"}, source="app"))
                if rnd.random() < 0.35:
                    break
                at += datetime.timedelta(seconds=rnd.randint(600, 12 * 86400))
    Event.objects.bulk_create(events)
    metrics_recompute(now=NOW)
    return Event.objects.order_by("occurred_at", "id")


def by_profile(events):
    grouped = {}
    for event in events:
        grouped.setdefault(event.profile_id, []).append(event)
    return grouped


# --- funnel ------------------------------------------------------------------------------

def expected_funnel(events, steps, start, end, window, matches=lambda step, e: True):
    """Per customer: the first step-1 event in [start, end), then each step's earliest
    event after the previous one and within step 1 + window."""
    reached = {}
    for profile_id, own in by_profile(events).items():
        firsts = [e for e in own if e.name == steps[0] and start <= e.occurred_at < end and matches(0, e)]
        if not firsts:
            continue
        times = [min(e.occurred_at for e in firsts)]
        for k, name in enumerate(steps[1:], start=1):
            later = [e.occurred_at for e in own if e.name == name and matches(k, e)
                     and times[-1] < e.occurred_at <= times[0] + window]
            if not later:
                break
            times.append(min(later))
        reached[profile_id] = times
    return reached


def test_funnel_counts_conversions_and_medians_match_a_python_walk(history):
    query = funnel_query({"steps": [{"event": n} for n in FUNNEL_NAMES], "window_days": 14, "days": 120}, NOW)
    result = funnel(query, NOW)

    reached = expected_funnel(history, FUNNEL_NAMES, NOW - datetime.timedelta(days=120), NOW, datetime.timedelta(days=14))
    counts = [sum(1 for times in reached.values() if len(times) > k) for k in range(3)]
    assert [s.count for s in result.steps] == counts
    assert counts[0] > counts[1] > 0  # the data exercises drop-off
    assert result.steps[1].from_previous == pytest.approx(counts[1] / counts[0])
    assert result.steps[2].from_first == pytest.approx(counts[2] / counts[0])
    assert result.steps[0].dropped == counts[0] - counts[1]
    for k in (1, 2):
        gaps = [(t[k] - t[k - 1]).total_seconds() for t in reached.values() if len(t) > k]
        assert result.steps[k].median_seconds == pytest.approx(statistics.median(gaps), abs=1)


def test_funnel_with_property_filters_date_range_and_city_breakdown(history):
    start, end = datetime.date(2026, 2, 1), datetime.date(2026, 6, 10)
    steps = [{"event": "account_open_start", "where": [{"property": "channel", "op": "eq", "value": "app"}]},
             {"event": "account_open_submit"}]
    query = funnel_query({"steps": steps, "window_days": 30, "start": start.isoformat(), "end": end.isoformat(),
                          "breakdown": "city"}, NOW)
    result = funnel(query, NOW)

    local = lambda day: datetime.datetime.combine(day, datetime.time.min, tzinfo=SHANGHAI)  # noqa: E731
    reached = expected_funnel(history, ["account_open_start", "account_open_submit"], local(start),
                              local(end + datetime.timedelta(days=1)), datetime.timedelta(days=30),
                              matches=lambda k, e: k > 0 or e.properties["channel"] == "app")
    assert [s.count for s in result.steps] == [len(reached), sum(len(t) > 1 for t in reached.values())]
    cities = dict(Profile.objects.values_list("pk", "city"))
    expected = Counter()
    for profile_id, times in reached.items():
        expected[(cities[profile_id], 0)] += 1
        expected[(cities[profile_id], 1)] += len(times) > 1
    assert {(city, k): n for city, counts in result.breakdown for k, n in enumerate(counts) if n} == \
        {key: n for key, n in expected.items() if n}


def test_funnel_limited_to_a_segment_and_broken_down_by_source_and_age(history):
    members = list(Profile.objects.filter(city="上海").values_list("pk", flat=True))
    segment = Segment.objects.create(name="上海", slug="sh", kind=Segment.Kind.STATIC)
    SegmentMembership.objects.bulk_create([SegmentMembership(segment=segment, profile_id=pk) for pk in members])
    steps = [{"event": "account_open_start"}, {"event": "account_open_complete"}]
    for breakdown in ("source", "age", "gender"):
        result = funnel(funnel_query({"steps": steps, "days": 200, "segment": "sh", "breakdown": breakdown}, NOW), NOW)
        reached = expected_funnel([e for e in history if e.profile_id in members], [s["event"] for s in steps],
                                  NOW - datetime.timedelta(days=200), NOW, datetime.timedelta(days=7))
        assert result.steps[0].count == len(reached)
        assert sum(counts[0] for _label, counts in result.breakdown) == len(reached)
        assert sum(counts[1] for _label, counts in result.breakdown) == result.steps[1].count


def test_dropped_after_a_step_becomes_a_static_segment_of_exactly_those_customers(history):
    query = funnel_query({"steps": [{"event": n} for n in FUNNEL_NAMES], "window_days": 14, "days": 120}, NOW)
    segment = segment_from_funnel_drop_off(query=query, step=1, name="开户流失", now=NOW)

    reached = expected_funnel(history, FUNNEL_NAMES, NOW - datetime.timedelta(days=120), NOW, datetime.timedelta(days=14))
    dropped = {pk for pk, times in reached.items() if len(times) == 1}
    assert segment.kind == Segment.Kind.STATIC and segment.member_count == len(dropped) > 0
    assert set(segment.memberships.values_list("profile_id", flat=True)) == dropped
    assert funnel(query, NOW).steps[0].dropped == len(dropped)


@pytest.mark.parametrize("parameters", [
    {"steps": [{"event": "order"}]},
    {"steps": [{"event": "order"}, {"event": "no_such_event"}]},
    {"steps": [{"event": "order"}, {"event": "payment", "where": [{"property": "x", "op": "zz"}]}]},
    {"steps": [{"event": "order"}, {"event": "payment"}], "window_days": 0},
    {"steps": [{"event": "order"}, {"event": "payment"}], "start": "2026-05-01", "end": "2026-04-01"},
    {"steps": [{"event": "order"}, {"event": "payment"}], "start": "2026-02-30", "end": "2026-04-01"},
    {"steps": [{"event": "order"}, {"event": "payment"}], "breakdown": "salary"},
    {"steps": [{"event": "order"}, {"event": "payment"}], "segment": "missing"},
])
def test_bad_funnel_parameters_are_validation_errors(parameters):
    with pytest.raises(ValidationError):
        funnel_query(parameters, NOW)


# --- retention ---------------------------------------------------------------------------

def week_start(moment):
    day = moment.astimezone(SHANGHAI).date()
    return day - datetime.timedelta(days=day.weekday())


def month_start(moment):
    return moment.astimezone(SHANGHAI).date().replace(day=1)


@pytest.mark.parametrize("period, cohort, return_event", [
    ("week", "first_seen", ""), ("week", "first_order", "order"), ("month", "first_seen", "page_view"),
])
def test_retention_matches_cohorts_computed_in_python(history, period, cohort, return_event):
    periods = 12 if period == "week" else 6
    result = retention(retention_query({"period": period, "periods": periods, "cohort": cohort,
                                        "return_event": return_event}), NOW)

    bucket = week_start if period == "week" else month_start
    current = bucket(NOW)
    if period == "week":
        starts = [current - datetime.timedelta(weeks=periods - 1 - i) for i in range(periods)]
    else:
        starts = []
        for i in range(periods - 1, -1, -1):
            month_index = current.year * 12 + current.month - 1 - i
            starts.append(datetime.date(month_index // 12, month_index % 12 + 1, 1))
    index = {start: i for i, start in enumerate(starts)}
    sizes, returned = Counter(), Counter()
    for profile_id, own in by_profile(history).items():
        pool = own if cohort == "first_seen" else [e for e in own if e.name == "order"]
        if not pool:
            continue
        first = index.get(bucket(min(e.occurred_at for e in pool)))
        if first is None:
            continue
        sizes[first] += 1
        for later in {index.get(bucket(e.occurred_at)) for e in own if not return_event or e.name == return_event}:
            if later is not None and later > first:
                returned[(first, later)] += 1
    assert [c.size for c in result.cohorts] == [sizes[i] for i in range(periods)]
    assert [c.returned for c in result.cohorts] == [[returned[(i, j)] for j in range(i + 1, periods)]
                                                     for i in range(periods)]
    assert sum(sizes.values()) > 0 and sum(returned.values()) > 0


# --- paths -------------------------------------------------------------------------------

@pytest.mark.parametrize("sample_every", [1, 2])
@pytest.mark.parametrize("direction", ["after", "before"])
def test_paths_follow_each_customers_first_event_like_python(history, direction, sample_every):
    """Every customer (the small history is answered exactly), and a sample of the
    customers whose id is a multiple of 2 with each count doubled."""
    query = paths_query({"event": "product_view", "direction": direction, "steps": 3, "within_days": 30, "days": 90}, NOW)
    result = paths(query, NOW) if sample_every == 1 else paths_followed(query, NOW, sample_every)
    assert result.sample_every == sample_every

    start = NOW - datetime.timedelta(days=90)
    flows, ended, customers = Counter(), Counter(), 0
    for profile_id, own in by_profile(history).items():
        if profile_id % sample_every:
            continue
        anchors = [e for e in own if e.name == "product_view" and start <= e.occurred_at < NOW]
        if not anchors:
            continue
        customers += 1
        anchor = min(anchors, key=lambda e: e.occurred_at)
        window = datetime.timedelta(days=30)
        if direction == "after":
            near = sorted((e for e in own if anchor.occurred_at < e.occurred_at <= anchor.occurred_at + window),
                          key=lambda e: (e.occurred_at, e.name))
        else:
            near = sorted((e for e in own if anchor.occurred_at - window <= e.occurred_at < anchor.occurred_at),
                          key=lambda e: (e.occurred_at, e.name), reverse=True)
        chain = ["product_view", *(e.name for e in near[:3])]
        for k in range(len(chain) - 1):
            flows[(k, chain[k], chain[k + 1])] += 1
        if len(chain) <= 3:  # the path stops before the third event followed
            ended[(len(chain) - 1, chain[-1])] += 1
    assert result.customers == customers * sample_every > 0
    assert {(k, a, b): n for k, a, b, n in result.flows} == {key: n * sample_every for key, n in flows.items()}
    assert {(k, name): n for k, name, n in result.ended()} == {key: n * sample_every for key, n in ended.items()} and ended


def test_paths_after_a_frequent_event_are_estimated_from_a_sample_with_their_margin(history, monkeypatch):
    """Above the threshold the fast mode answers from one customer in ten; asked for
    precision "exact", every customer is followed."""
    monkeypatch.setattr(sys.modules["segments.analytics.paths"], "EXACT_BELOW", 0)  # the package exports the function of that name
    parameters = {"event": "product_view", "steps": 3, "within_days": 30, "days": 200}
    sampled = paths(paths_query(parameters, NOW), NOW)
    exact = paths(paths_query({**parameters, "precision": "exact"}, NOW), NOW)
    assert (sampled.sample_every, exact.sample_every) == (10, 1)
    assert sampled.customers % 10 == 0 and all(n % 10 == 0 for *_rest, n in sampled.flows)
    assert sampled.margin(1000) == round(1.96 * (1000 * 9) ** 0.5) == 186 and exact.margin(1000) == 0


def test_where_paths_stop_counts_the_merged_other_events_too():
    """With more than ten events at a step the rarest become "…", which must still add up."""
    query = paths_query({"event": "product_view", "steps": 2, "days": 30}, NOW)
    flows = [(0, "product_view", "order", 5), (0, "product_view", OTHER, 4),
             (1, "order", "payment", 3), (1, OTHER, "order", 1), (1, OTHER, OTHER, 2)]
    result = PathsResult(query=query, customers=12, flows=flows, labels={})
    assert result.ended() == [(0, "product_view", 3), (1, "order", 2), (1, OTHER, 1)]


# --- lifecycle ---------------------------------------------------------------------------

def expected_stage(times, moment):
    """profiles.metrics' rules, written out again, at `moment`."""
    past = [t for t in times if t < moment]
    if not past:
        return None
    day = datetime.timedelta(days=1)
    first, last = min(past), max(past)
    if first >= moment - 30 * day:
        return "new"
    if last >= moment - 30 * day:
        return "active" if any(moment - 60 * day <= t < moment - 30 * day for t in past) else "returning"
    return "dormant" if last >= moment - 90 * day else "churned"


def test_lifecycle_per_week_applies_the_metrics_rules_at_each_week(history):
    result = lifecycle(lifecycle_query({"weeks": 12}), NOW)

    times = {pk: [e.occurred_at for e in own] for pk, own in by_profile(history).items()}
    for i, moment in enumerate(result.moments):
        expected = Counter(expected_stage(own, moment) for own in times.values())
        assert {stage: counts[i] for stage, counts in result.counts.items()} == \
            {stage: expected[stage] for stage in result.counts}, moment
    # and the last week is the stage stored on the profiles by profiles.metrics
    stored = Counter(Profile.objects.exclude(lifecycle_stage="prospect").values_list("lifecycle_stage", flat=True))
    assert {stage: counts[-1] for stage, counts in result.counts.items()} == {s: stored[s] for s in result.counts}


# --- RFM ---------------------------------------------------------------------------------

def test_rfm_grid_counts_customers_and_money_per_cell_and_group(history):
    result = rfm(rfm_query({}))

    cells, money = Counter(), Counter()
    for profile in Profile.objects.filter(rfm_recency__isnull=False):
        cells[(profile.rfm_recency, profile.rfm_frequency)] += 1
        money[(profile.rfm_recency, profile.rfm_frequency)] += profile.total_spent
    assert len(result.cells) == 25
    assert {(c.recency, c.frequency): c.customers for c in result.cells if c.customers} == dict(cells)
    assert {(c.recency, c.frequency): c.money for c in result.cells if c.customers} == dict(money)
    groups = Counter()
    for (r, f), n in cells.items():
        groups[group_of(r, f)] += n
    assert {code: n for code, _label, n, _money in result.groups if n} == dict(groups)
    assert result.without_orders == Profile.objects.filter(order_count=0).count()


def test_every_rfm_cell_has_one_named_group_and_a_cell_becomes_a_segment(history):
    assert group_of(5, 5) == "champions" and group_of(1, 5) == "cant_lose" and group_of(1, 1) == "hibernating"
    assert group_of(2, 3) == "at_risk" and group_of(4, 4) == "loyal"
    segment = segment_from_rfm_cells(cells=[(5, 1)], name="R5 F1", now=NOW)
    assert segment.kind == Segment.Kind.DYNAMIC and segment.definition["all"][0]["field"] == "rfm_recency"
