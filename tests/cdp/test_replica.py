"""Analyses, segment previews and export counts read from a real streaming replica, and
from the primary while the replica lags or is stopped.

Needs the clusters `.ci/replica` starts (a primary on :5434, its hot standby on :5433) and
DATABASE_URL / DATABASE_REPLICA_URL pointing at them; skipped otherwise, failed instead
when CDP_REPLICA_REQUIRED=1 (CI). Every test reads a count that differs between the two:
replay is paused on the standby, more customers are written to the primary, and the
answer says which database gave it."""
import os
import pathlib
import subprocess
import time

import pytest
from django.conf import settings
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from cdp.replica import REPLICA, replica_forget, replica_lag
from consent.models import Purpose
from consent.services import consent_record
from segments.analytics.dashboard import dashboard_figures
from segments.export import segment_export_count
from segments.models import Segment
from segments.selectors import segment_preview
from segments.services import segment_recompute, segment_save
from tests.factories import EventFactory, ProfileFactory

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / ".ci" / "replica"
IN_HANGZHOU = {"all": [{"field": "city", "op": "eq", "value": "杭州"}]}

if REPLICA not in settings.DATABASES:
    if os.environ.get("CDP_REPLICA_REQUIRED") == "1":
        raise RuntimeError("CDP_REPLICA_REQUIRED=1 but DATABASE_REPLICA_URL is not set: start .ci/replica and set it.")
    pytest.skip("No read replica configured (DATABASE_REPLICA_URL; .ci/replica starts one).", allow_module_level=True)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True, databases=["default", REPLICA])


@pytest.fixture(autouse=True)
def replica(settings):
    """The "replica" alias on the standby's copy of the test database (the test runner
    made it a mirror of the primary's connection, which the standby replays), checked
    afresh on every read."""
    wrapper, mirrored = connections[REPLICA], connections[REPLICA].settings_dict
    real = connections.settings[REPLICA]
    wrapper.close()
    wrapper.settings_dict = {**mirrored, "HOST": real["HOST"], "PORT": real["PORT"],
                             "TEST": {**mirrored["TEST"], "MIRROR": "default"}}  # never flushed: it is read-only
    settings.CDP_REPLICA_CHECK_SECONDS = 0
    settings.CDP_REPLICA_MAX_LAG_SECONDS = 3600
    replica_forget()
    yield wrapper
    _replay("resume")
    wrapper.close()
    wrapper.settings_dict = mirrored
    replica_forget()


def _replay(action: str) -> None:
    if connections[REPLICA].is_usable() or _standby_up():
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(f"SELECT pg_wal_replay_{action}()")


def _standby_up() -> bool:
    try:
        connections[REPLICA].ensure_connection()
        return True
    except Exception:
        return False


def _caught_up() -> None:
    deadline = time.monotonic() + 20
    while replica_lag() != 0:
        assert time.monotonic() < deadline, "the standby did not catch up with the primary in 20 s"
        time.sleep(0.1)


def _customers_in_hangzhou(count: int) -> None:
    """Customers in 杭州 who viewed a product and agreed to SMS marketing, and the
    segment of 杭州's customers recomputed."""
    for _ in range(count):
        profile = ProfileFactory(city="杭州")
        EventFactory(profile=profile, name="product_view", occurred_at=timezone.now())
        consent_record(profile=profile, purpose_code="sms_marketing", status="granted", source="admin",
                       actor=Actor.system("test"))
    segment = Segment.objects.filter(slug="hangzhou").first() or segment_save(
        segment=Segment(name="杭州客户", slug="hangzhou"), definition=IN_HANGZHOU)
    segment_recompute(segment_id=segment.pk)


def _three_on_the_replica_five_on_the_primary() -> None:
    _customers_in_hangzhou(3)
    _caught_up()
    _replay("pause")
    _customers_in_hangzhou(2)


def _export_count() -> int:
    return segment_export_count(segment=Segment.objects.get(slug="hangzhou"),
                                purpose=Purpose.objects.get(code="sms_marketing"))


def test_previews_analyses_dashboard_and_export_counts_read_from_the_replica_while_it_is_fresh(admin_client):
    _three_on_the_replica_five_on_the_primary()

    assert segment_preview(IN_HANGZHOU).count == 3
    response = admin_client.get(reverse("admin:segments_savedanalysis_paths"), {
        "run": "1", "event": "product_view", "direction": "after", "steps": "1", "within_days": "1", "days": "7"})
    assert response.status_code == 200 and response.context["result"].customers == 3
    assert dashboard_figures(refresh=True)["customers"] == 3
    assert _export_count() == 3


def test_a_replica_further_behind_than_allowed_is_left_for_the_primary(settings):
    _three_on_the_replica_five_on_the_primary()
    assert segment_preview(IN_HANGZHOU).count == 3

    settings.CDP_REPLICA_MAX_LAG_SECONDS = 0.5
    time.sleep(1)  # replay paused: the standby falls further behind every second
    assert replica_lag() > 0.5
    assert segment_preview(IN_HANGZHOU).count == 5
    assert _export_count() == 5 and dashboard_figures(refresh=True)["customers"] == 5

    _replay("resume")
    _caught_up()
    assert segment_preview(IN_HANGZHOU).count == 5


def test_a_stopped_replica_is_left_for_the_primary_even_in_the_middle_of_a_read(settings):
    _customers_in_hangzhou(4)
    _caught_up()
    settings.CDP_REPLICA_CHECK_SECONDS = 3600  # the check before the read still says fresh
    assert segment_preview(IN_HANGZHOU).count == 4
    subprocess.run([str(SCRIPT), "stop"], check=True)
    try:
        _customers_in_hangzhou(1)
        assert segment_preview(IN_HANGZHOU).count == 5  # the read failed on the replica, ran again on the primary
        replica_forget()
        assert replica_lag() is None
        assert segment_preview(IN_HANGZHOU).count == 5
    finally:
        subprocess.run([str(SCRIPT)], check=True, stdout=subprocess.DEVNULL)
    _caught_up()
    replica_forget()
    assert segment_preview(IN_HANGZHOU).count == 5
