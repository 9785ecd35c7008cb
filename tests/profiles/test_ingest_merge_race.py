"""An event written while its profile is being merged follows the merge (profiles.services.
ingest._follow_concurrent_merges): a browser's page view and its identify arrive together,
the identify merges the anonymous visitor into the known customer, and the page view must
not stay behind on the merged visitor. PostgreSQL only: SQLite runs one writer at a time."""
import datetime
import threading
import time
import uuid

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from cdp.actors import Actor
from profiles.models import Event, Identity
from profiles.services.collect import Message, collect_ingest
from profiles.services.merge import profiles_merge
from profiles.services.sources import source_create
from tests.factories import IdentityFactory, ProfileFactory


def page_view(anonymous_id: str) -> Message:
    return Message(protocol="segment", type="page", event="page_view", message_id=str(uuid.uuid4()),
                   occurred_at=timezone.now() - datetime.timedelta(seconds=1), anonymous_id=anonymous_id)


def waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


def test_an_event_sent_while_its_visitor_is_merged_lands_on_the_survivor(seeded_transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("needs two PostgreSQL connections writing at once")
    source = source_create(name="官网商城", code="shop-web")[0]
    customer = ProfileFactory()
    IdentityFactory(profile=customer, kind_id="crm_id", value="U100")
    collect_ingest(source=source, messages=[page_view("anon-1")])
    visitor = Identity.objects.get(kind_id="anonymous_id", value="anon-1").profile
    merged, release, errors = threading.Event(), threading.Event(), []

    def merge():  # the identify's merge, holding its transaction open
        try:
            with transaction.atomic():
                profiles_merge(survivor=customer, merged=visitor, actor=Actor.system("test"))
                merged.set()
                release.wait(30)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            merged.set()
            connections.close_all()

    def send():  # the page view, read before the merge commits
        try:
            collect_ingest(source=source, messages=[page_view("anon-1")])
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connections.close_all()

    merging = threading.Thread(target=merge)
    merging.start()
    merged.wait(30)
    sending = threading.Thread(target=send)
    sending.start()
    deadline = time.monotonic() + 30
    while not waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    merging.join()
    sending.join()

    assert errors == []
    assert not Event.objects.filter(profile=visitor).exists()
    assert Event.objects.filter(profile=customer, name="page_view").count() == 2
