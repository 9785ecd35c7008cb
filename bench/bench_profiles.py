"""Profile benchmarks: the page of a customer with 100,000 events, admin search, merge."""
import datetime
import random
import statistics
import time

from common import Row, at_most
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from profiles import services
from profiles.models import Event, Identity, Profile, ProfileMerge
from profiles.services.merge import profiles_merge
from profiles.timeline import profile_timeline

HEAVY_CRM_ID = "BENCH-HEAVY-100K"
MERGE_CRM_IDS = ("BENCH-MERGE-A", "BENCH-MERGE-B")


def staff_client() -> Client:
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def timed(fn, runs: int) -> tuple[float, float]:
    """(median, p95) milliseconds of `runs` calls after one warm-up call."""
    fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def customer_with_events(crm_id: str, events: int, seed: int) -> Profile:
    """A fresh customer with `events` events (one left over by an interrupted run goes)."""
    Profile.objects.filter(identities__kind_id="crm_id", identities__value=crm_id).delete()
    profile = services.profile_create(actor=Actor.system("bench"), source="bench", name="压测客户",
                                      identities=[("crm_id", crm_id)])
    rng, now = random.Random(seed), timezone.now()
    names = ["product_view", "page_view", "add_to_cart", "order", "payment"]
    for start in range(0, events, 10_000):
        Event.objects.bulk_create([
            Event(profile=profile, name=rng.choice(names), occurred_at=now - datetime.timedelta(minutes=rng.randint(1, 600_000)),
                  properties={"category": "sneakers", "product_id": f"P{i}"}, source="bench")
            for i in range(start, min(start + 10_000, events))
        ])
    return profile


def bench_profile_page(ctx):
    profile = customer_with_events(HEAVY_CRM_ID, 100_000, seed=7)
    client, url = staff_client(), reverse("admin:profiles_profile_change", args=[profile.pk])
    cold = []  # the first page of a process also reads the registries and the popular lists
    with connection.execute_wrapper(lambda execute, sql, *args: cold.append(sql) or execute(sql, *args)):
        assert client.get(url).status_code == 200
    queries = []
    with connection.execute_wrapper(lambda execute, sql, *args: queries.append(sql) or execute(sql, *args)):
        assert client.get(url).status_code == 200
    median, p95 = timed(lambda: client.get(url), runs=30)
    more = reverse("admin:profiles_profile_timeline", args=[profile.pk])
    _first_page, cursor = profile_timeline(profile)
    deep_median, _p95 = timed(lambda: client.get(more, {"after": str(cursor)}), runs=20)
    Profile.objects.filter(pk=profile.pk).delete()  # leave the dataset as generate_demo made it
    return [
        at_most("profile page, 100k events (median)", median, "ms", 50),
        Row("profile page, 100k events (p95)", p95, "ms"),
        at_most("profile page SQL queries", len(queries), "queries", 12),
        Row("profile page SQL queries, first page of a process (cold caches)", len(cold), "queries"),
        Row("timeline load more (median)", deep_median, "ms"),
    ]


def bench_search(ctx):
    client, url = staff_client(), reverse("admin:profiles_profile_changelist")
    sample = Profile.objects.exclude(phone="").order_by("id")[1000]
    national = sample.phone.removeprefix("+86")
    typed_phone = f"{national[:3]} {national[3:7]} {national[7:]}"
    crm_id = Identity.objects.filter(kind_id="crm_id").order_by("id").values_list("value", flat=True)[2000]
    partial_name = sample.name[-1]  # one character of a given name, as staff type it
    rows = []
    for label, term, limit in (("phone typed with spaces", typed_phone, 50), ("CRM id", crm_id, 50),
                               ("partial name", partial_name, 300)):
        median, p95 = timed(lambda: client.get(url, {"q": term}), runs=15)
        rows += [at_most(f"admin search by {label} (median)", median, "ms", limit),
                 Row(f"admin search by {label} (p95)", p95, "ms")]
    return rows


def bench_merge(ctx):
    a = customer_with_events(MERGE_CRM_IDS[0], 10_000, seed=1)
    b = customer_with_events(MERGE_CRM_IDS[1], 10_000, seed=2)
    started = time.perf_counter()
    record = profiles_merge(survivor=a, merged=b, actor=Actor.system("bench"))
    seconds = time.perf_counter() - started
    # Clean up so the next run starts alike: the merge record first, then both customers.
    ProfileMerge.objects.filter(pk=record.pk).delete()
    Profile.objects.filter(pk=b.pk).delete()
    Profile.objects.filter(pk=a.pk).delete()
    return [at_most("merge two customers with 10k events each", seconds, "s", 1), Row("merge events moved", len(record.moved["events"]), "rows")]
