"""The events table partitioned by month on PostgreSQL: rows routed to their month, the
maintenance making months ahead, and the (source, external_id) de-duplication kept
across partitions by the key table and its triggers."""
import datetime

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from profiles import partitions
from profiles.models import Event
from profiles.tasks import maintain_event_partitions
from tests.factories import EventFactory, ProfileFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
NOW = timezone.now()
FAR = datetime.datetime(2031, 5, 17, 8, tzinfo=datetime.UTC)  # a month with no partition yet


def partition_of(event) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM profiles_event WHERE id = %s", [event.pk])
        return cursor.fetchone()[0]


def keys() -> set[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT source, external_id, event_id FROM profiles_event_key")
        return set(cursor.fetchall())


def test_events_go_to_their_month_and_strays_move_when_it_is_made():
    assert partitions.is_partitioned()
    current = EventFactory(occurred_at=NOW)
    assert partition_of(current) == partitions.partition_name(partitions.month_start(NOW))
    stray = EventFactory(occurred_at=FAR, source="shop", external_id="o-9")
    assert partition_of(stray) == partitions.DEFAULT_PARTITION

    assert partitions.partitions_create([datetime.date(2031, 5, 1)]) == ["profiles_event_p203105"]

    assert partition_of(stray) == "profiles_event_p203105"
    assert Event.objects.get(pk=stray.pk).external_id == "o-9"
    assert ("shop", "o-9", stray.pk) in keys()
    with pytest.raises(IntegrityError), transaction.atomic():
        EventFactory(occurred_at=NOW, source="shop", external_id="o-9")


def test_the_maintenance_makes_the_months_ahead_once(settings):
    settings.CDP_EVENT_PARTITIONS_AHEAD = 14
    made = maintain_event_partitions()
    month = partitions.month_start(NOW)
    names = set()
    for _ in range(15):
        names.add(partitions.partition_name(month))
        month = partitions.next_month(month)
    assert names <= {p["name"] for p in partitions.partitions_list()}
    assert set(made) <= names and partitions.partition_name(month) not in made
    assert maintain_event_partitions() == []


def test_the_command_lists_the_partitions(capsys):
    call_command("event_partitions", "--ahead", "1")
    out = capsys.readouterr().out
    assert partitions.partition_name(partitions.month_start(NOW)) in out and partitions.DEFAULT_PARTITION in out


def test_a_duplicate_in_another_month_is_refused_by_a_plain_insert_and_skipped_on_conflict():
    profile = ProfileFactory()
    first = EventFactory(profile=profile, occurred_at=NOW, source="shop", external_id="o-1")
    with pytest.raises(IntegrityError, match="event_source_external_id_unique"), transaction.atomic():
        EventFactory(profile=profile, occurred_at=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
                     source="shop", external_id="o-1")
    created = Event.objects.bulk_create([
        Event(profile=profile, name="order", occurred_at=datetime.datetime(2019, 3, 1, tzinfo=datetime.UTC),
              source="shop", external_id="o-1"),
        Event(profile=profile, name="order", occurred_at=NOW, source="shop", external_id="o-2"),
    ], ignore_conflicts=True)
    assert len(created) == 2
    assert sorted(Event.objects.values_list("external_id", flat=True)) == ["o-1", "o-2"]
    assert Event.objects.get(external_id="o-1").pk == first.pk
    EventFactory(profile=profile, source="pos", external_id="o-1")  # another source: another event


def test_deleting_an_event_frees_its_key_and_moving_it_keeps_it():
    event = EventFactory(occurred_at=NOW, source="shop", external_id="o-1")
    Event.objects.filter(pk=event.pk).update(occurred_at=FAR)  # into the default partition
    assert partition_of(event) == partitions.DEFAULT_PARTITION
    assert keys() == {("shop", "o-1", event.pk)}
    Event.objects.filter(pk=event.pk).update(external_id="o-2")
    assert keys() == {("shop", "o-2", event.pk)}
    EventFactory(occurred_at=NOW, source="shop", external_id="o-1")
    Event.objects.filter(external_id="o-2").delete()
    EventFactory(occurred_at=NOW, source="shop", external_id="o-2")
    assert {k[1] for k in keys()} == {"o-1", "o-2"}
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE profiles_event")
    assert keys() == set()


def test_the_migration_both_ways_keeps_every_row_and_the_de_duplication():
    profile = ProfileFactory()
    events = [EventFactory(profile=profile, occurred_at=at, source="shop", external_id=f"o-{i}",
                           properties={"category": "shoes"})
              for i, at in enumerate([NOW, FAR, datetime.datetime(2015, 2, 3, tzinfo=datetime.UTC)])]
    events.append(EventFactory(profile=profile, occurred_at=NOW))
    rows = sorted(Event.objects.values_list("id", "occurred_at", "external_id", "category"))
    with connection.cursor() as cursor:
        partitions.convert_to_plain(cursor)
        assert not partitions.is_partitioned()
        assert sorted(Event.objects.values_list("id", "occurred_at", "external_id", "category")) == rows
        partitions.convert_to_partitioned(cursor)
    assert partitions.is_partitioned()
    assert sorted(Event.objects.values_list("id", "occurred_at", "external_id", "category")) == rows
    assert {p["name"] for p in partitions.partitions_list()} >= {"profiles_event_p201502", "profiles_event_p203105"}
    assert keys() == {("shop", f"o-{i}", e.pk) for i, e in enumerate(events[:3])}
    with pytest.raises(IntegrityError), transaction.atomic():
        EventFactory(profile=profile, source="shop", external_id="o-2")
    assert EventFactory(profile=profile).pk > max(e.pk for e in events)  # the ids carry on
