"""The bulk writer's contract (profiles.services.bulk), on SQLite's portable path and on
PostgreSQL's COPY path: what imports, the partner API and the SDK collection rely on."""
import datetime
import decimal
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from profiles.models import Event, Identity, Profile
from profiles.services.bulk import bulk_writer, copy_text, id_ranges, ranges_q
from tests.factories import IdentityFactory, ProfileFactory

pytestmark = pytest.mark.django_db


def test_new_customers_come_back_in_order_with_the_given_values_and_defaults():
    public_id = uuid.uuid4()
    ids = bulk_writer().profiles_insert(
        [{"name": "张伟", "uuid": public_id}, {"phone": "+8613800138000"}, {"name": "李娜", "country": "HK"}],
        defaults={"country": "SG"})
    profiles = [Profile.objects.get(pk=pk) for pk in ids]
    assert [p.name for p in profiles] == ["张伟", "", "李娜"]
    assert profiles[0].uuid == public_id and profiles[1].uuid not in (public_id, profiles[2].uuid)
    assert profiles[1].phone == "+8613800138000"
    assert [p.country for p in profiles] == ["SG", "SG", "HK"]  # the row, else the defaults
    assert profiles[0].gender == "unknown" and profiles[0].traits == {} and profiles[0].status == "active"
    assert all(p.created_at and p.updated_at for p in profiles)


def test_identities_someone_holds_already_are_skipped_and_named():
    holder, newcomer = ProfileFactory(), ProfileFactory()
    IdentityFactory(profile=holder, kind_id="phone", value="+8613800138000")
    taken = bulk_writer().identities_insert_new(
        [(newcomer.pk, "phone", "+8613800138000"), (newcomer.pk, "email", "li@example.com")], "partner-a")
    assert taken == {("phone", "+8613800138000")}
    assert Identity.objects.get(kind_id="phone").profile_id == holder.pk
    assert Identity.objects.get(kind_id="email").profile_id == newcomer.pk
    assert Identity.objects.get(kind_id="email").source == "partner-a"


def test_an_event_stored_already_is_skipped_and_the_others_reported_inserted():
    profile = ProfileFactory()
    now = timezone.now()
    row = {"profile_id": profile.pk, "name": "order_paid", "occurred_at": now - datetime.timedelta(hours=1),
           "properties": {"sku": "口红-01"}, "amount": decimal.Decimal("199.00"), "source": "shop"}
    writer = bulk_writer()
    assert writer.events_insert_new([{**row, "external_id": "A1"}], received_at=now) == {("shop", "A1")}
    inserted = writer.events_insert_new([{**row, "external_id": "A1"}, {**row, "external_id": "A2"}], received_at=now)
    assert inserted == {("shop", "A2")}
    event = Event.objects.get(external_id="A2")
    assert (event.properties, event.amount, event.received_at) == ({"sku": "口红-01"}, decimal.Decimal("199.00"), now)
    assert Event.objects.filter(source="shop").count() == 2


def test_imported_ids_are_kept_as_ranges_that_find_the_rows_again():
    ids = bulk_writer().events_insert([
        {"profile_id": ProfileFactory().pk, "name": "page_view", "occurred_at": timezone.now(), "properties": {},
         "source": "crm", "external_id": f"E{n}"} for n in range(5)])
    ranges = id_ranges(ids)
    assert ranges == [[min(ids), max(ids)]]  # taken in one go: one range
    assert set(Event.objects.filter(ranges_q(ranges)).values_list("pk", flat=True)) == set(ids)


def test_copy_text_writes_rows_formatted_as_copy_text():
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    profile = ProfileFactory()
    line = "{pid}\tphone\t{value}\tdemo\t2026-12-01 10:00:00+00\n"
    copy_text(Identity, ["profile_id", "kind", "value", "source", "created_at"],
              [line.format(pid=profile.pk, value="+8613800138000").encode(),
               line.format(pid=profile.pk, value="+8613900139000")])  # bytes or text, chunk by chunk
    assert sorted(profile.identities.values_list("value", flat=True)) == ["+8613800138000", "+8613900139000"]
