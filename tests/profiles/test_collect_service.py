"""The collection core (profiles.services.collect): SDK messages become events through the
one bulk writer; anonymous visitors are stitched to known customers; consent and erasure
are enforced before anything is stored."""
import datetime
import uuid

import pytest
from django.utils import timezone

from cdp.actors import Actor
from consent.services import consent_record
from profiles.models import (
    CollectHourlyCount,
    CollectLog,
    Event,
    EventDefinition,
    Identity,
    Profile,
    ProfileActivity,
    ProfileStatus,
    Suppression,
)
from profiles.services.collect import Message, collect_ingest, event_name_of, masked
from profiles.services.sources import source_create, source_for_key, source_key_rotate
from profiles.services.suppression import identifier_digest
from tests.factories import IdentityFactory, ProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def source():
    return source_create(name="官网商城", code="shop-web")[0]


def msg(type_="track", event="product_view", **fields) -> Message:
    fields.setdefault("message_id", str(uuid.uuid4()))
    fields.setdefault("occurred_at", timezone.now() - datetime.timedelta(minutes=1))
    return Message(protocol="segment", type=type_, event=event, **fields)


def test_an_anonymous_visitor_gets_a_provisional_profile_with_their_events(source):
    result = collect_ingest(source=source, messages=[msg(anonymous_id="anon-1"), msg(anonymous_id="anon-1")])

    assert result.accepted == 2
    visitor = Identity.objects.get(kind_id="anonymous_id", value="anon-1").profile
    assert Event.objects.filter(profile=visitor, source="sdk-shop-web").count() == 2


def test_a_retried_message_is_a_duplicate(source):
    message_id = str(uuid.uuid4())
    collect_ingest(source=source, messages=[msg(anonymous_id="anon-1", message_id=message_id)])

    again = collect_ingest(source=source, messages=[msg(anonymous_id="anon-1", message_id=message_id)])

    assert (again.accepted, again.duplicates) == (0, 1)
    assert Event.objects.count() == 1


def test_signing_in_merges_the_visitor_into_the_known_customer(source):
    customer = ProfileFactory()
    IdentityFactory(profile=customer, kind_id="crm_id", value="U100")
    collect_ingest(source=source, messages=[msg(anonymous_id="anon-1"), msg(anonymous_id="anon-1")])
    visitor = Identity.objects.get(value="anon-1").profile

    collect_ingest(source=source, messages=[msg("identify", event="", anonymous_id="anon-1", user_id="U100")])

    visitor.refresh_from_db()
    assert visitor.status == ProfileStatus.MERGED and visitor.merged_into_id == customer.pk
    assert Event.objects.filter(profile=customer).count() == 2
    assert Identity.objects.get(value="anon-1").profile_id == customer.pk


def test_a_visitor_who_signs_up_keeps_their_profile_and_gains_the_user_id(source):
    collect_ingest(source=source, messages=[msg(anonymous_id="anon-1")])
    visitor = Identity.objects.get(value="anon-1").profile

    collect_ingest(source=source, messages=[msg("identify", event="", anonymous_id="anon-1", user_id="U200",
                                                traits={"phone": "13800138000", "name": "王芳"})])

    assert Identity.objects.get(kind_id="crm_id", value="U200").profile_id == visitor.pk
    visitor.refresh_from_db()
    assert (visitor.phone, visitor.name) == ("+8613800138000", "王芳")
    assert Profile.objects.count() == 1


def test_a_shared_browser_never_merges_two_known_customers(source):
    first, second = ProfileFactory(), ProfileFactory()
    IdentityFactory(profile=first, kind_id="crm_id", value="U1")
    IdentityFactory(profile=second, kind_id="crm_id", value="U2")
    collect_ingest(source=source, messages=[msg(anonymous_id="shared", user_id="U1")])

    collect_ingest(source=source, messages=[msg(anonymous_id="shared", user_id="U2", event="order")])

    assert Profile.objects.filter(status=ProfileStatus.MERGED).count() == 0
    assert Event.objects.get(name="order").profile_id == second.pk
    assert Identity.objects.get(value="shared").profile_id == first.pk


def test_an_unknown_event_name_is_registered_for_review_and_the_event_kept(source):
    collect_ingest(source=source, messages=[msg(event="Coupon Claimed", anonymous_id="a"), msg(event="领取优惠券",
                                                                                             anonymous_id="a")])

    pending = set(EventDefinition.objects.filter(review_pending=True).values_list("name", flat=True))
    assert pending == {"coupon_claimed", "ling_qu_you_hui_quan"}
    assert Event.objects.filter(name__in=pending).count() == 2


def test_event_names_become_registry_names():
    assert event_name_of("Order Completed") == "order_completed"
    assert event_name_of("$pageview") == "pageview"
    assert event_name_of("BuyProduct") == "buy_product"
    assert event_name_of("  ") == ""


def test_an_erased_persons_identifiers_are_refused(source):
    Suppression.objects.create(digest=identifier_digest("crm_id", "GONE1"), kind="crm_id")

    result = collect_ingest(source=source, messages=[msg(user_id="GONE1")])

    assert result.rejected == 1 and "suppressed" in result.messages[0].reason
    assert not Event.objects.exists() and not Identity.objects.filter(value="GONE1").exists()


def test_events_of_customers_who_refused_the_sources_purpose_are_dropped_and_counted(source):
    source.consent_purpose = "analytics"
    source.save()
    refused, agreed = ProfileFactory(), ProfileFactory()
    IdentityFactory(profile=refused, kind_id="crm_id", value="NO")
    IdentityFactory(profile=agreed, kind_id="crm_id", value="YES")
    consent_record(profile=refused, purpose_code="analytics", status="denied", source="admin", actor=Actor.system("t"))

    result = collect_ingest(source=source, messages=[msg(user_id="NO", anonymous_id="dev-x"), msg(user_id="YES")])

    assert (result.accepted, result.dropped) == (1, 1)
    assert list(Event.objects.values_list("profile_id", flat=True)) == [agreed.pk]
    assert not Identity.objects.filter(value="dev-x").exists()
    hour = CollectHourlyCount.objects.get(source=source)
    assert (hour.accepted, hour.dropped) == (1, 1)


def test_a_message_without_any_id_is_rejected_with_the_reason_logged(source):
    result = collect_ingest(source=source, messages=[msg(raw={"event": "x"})])

    assert result.rejected == 1
    log = CollectLog.objects.get(source=source)
    assert log.outcome == "rejected" and "no_identity" in log.reason


def test_the_debugger_log_masks_contact_data_and_ids():
    assert masked({"userId": "U123456789", "traits": {"phone": "+8613800138000", "email": "wang@example.com",
                                                      "plan": "gold"}}) == {
        "userId": "U1***89", "traits": {"phone": "138****8000", "email": "w***@example.com", "plan": "gold"}}


def test_write_keys_are_checked_rotated_and_refused_when_inactive(source):
    created, key = source_create(name="App", code="app")
    assert source_for_key(key) == created
    assert source_for_key(key + "x") is None and source_for_key("garbage") is None

    new_key = source_key_rotate(source=created)

    assert source_for_key(key) is None and source_for_key(new_key) == created
    created.is_active = False
    created.save()
    from django.core.cache import cache
    cache.clear()
    assert source_for_key(new_key) is None


def test_new_people_from_an_sdk_have_a_created_row_naming_the_source(source):
    collect_ingest(source=source, messages=[msg(user_id="NEW1")])

    created = ProfileActivity.objects.get(type="created")
    assert created.params == {"source": "sdk-shop-web"}


def test_events_keep_the_source_and_the_sdk_that_sent_them(source):
    collect_ingest(source=source, messages=[msg(anonymous_id="a", library="analytics-python 2.4.0",
                                                properties={"category": "lipstick"})])

    event = Event.objects.get()
    assert event.source == "sdk-shop-web"
    assert event.properties == {"category": "lipstick", "sdk": "analytics-python 2.4.0"}
