"""A worker killed mid-batch (SIGKILL while the destination holds its request): its rows
stay `sending` until they are stale, then go again with the same idempotency keys, so the
receiver, de-duplicating by key, takes every message exactly once and nothing else is
sent twice. PostgreSQL: the worker is another process on the test database."""
import datetime
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.services.runs import run_decide
from campaigns.services.sending import deliveries_reclaim, destination_drain
from tests.worker.test_worker_e2e import _test_database_url

from .conftest import campaign_for, consenting, segment_of

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
DRAIN = "import django; django.setup(); from campaigns.services.sending import destination_drain; " \
        "destination_drain(destination_id={id}, budget_seconds=60)"


def test_a_batch_whose_worker_was_killed_goes_again_with_its_keys_and_nothing_goes_twice(
        seeded_transactional_db, webhook, receiver, settings):
    settings.CAMPAIGN_QUIET_HOURS = {}
    webhook.batch_size = 20
    webhook.save()
    campaign = campaign_for(segment_of(consenting(n=60)), webhook)
    campaign.status = Campaign.Status.SENDING
    campaign.save()
    run_decide(campaign=campaign)
    receiver.delay = 30  # the destination holds the first batch: the worker dies waiting for it

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
           "DJANGO_SETTINGS_MODULE": "cdp.settings", "DATABASE_URL": _test_database_url(), "CONN_MAX_AGE": "0",
           "CDP_CAMPAIGN_QUIET_HOURS": "{}", "CDP_CAMPAIGN_REQUESTS_PER_CLAIM": "1"}
    worker = subprocess.Popen([sys.executable, "-c", DRAIN.format(id=webhook.pk)], cwd=ROOT, env=env)
    try:
        assert receiver.received.wait(60), "the worker never sent its first batch"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    receiver.delay = 0

    in_flight = set(Delivery.objects.filter(status=Delivery.Status.SENDING).values_list("pk", flat=True))
    assert len(in_flight) == 20 and Delivery.objects.filter(status=Delivery.Status.QUEUED).count() == 40
    stale = timezone.now() + datetime.timedelta(seconds=settings.CAMPAIGN_SENDING_STALE_SECONDS + 1)
    assert deliveries_reclaim(now=stale) == 20
    destination_drain(destination_id=webhook.pk, budget_seconds=30)

    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 60
    # the killed batch went twice with the same keys (the receiver's de-duplication caught it)
    sent_keys = [m["key"] for m in receiver.messages]
    repeated = {key for key in sent_keys if sent_keys.count(key) > 1}
    assert repeated == {f"cdp-{pk}" for pk in in_flight}
    assert len(receiver.keys_seen) == 60
