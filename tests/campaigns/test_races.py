"""A withdrawal racing a send, on PostgreSQL with two connections: one committed before
the message leaves stops it; one made while the batch is on its way waits for it."""
import threading
import time

import pytest
from django.db import connections, transaction
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.services.runs import run_decide
from campaigns.services.sending import destination_drain
from cdp.actors import Actor
from consent.models import ConsentRecord
from consent.services import consent_record

from .conftest import campaign_for, consenting, segment_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queued(seeded_transactional_db, webhook, settings):
    settings.CAMPAIGN_QUIET_HOURS = {}
    person = consenting()[0]
    campaign = campaign_for(segment_of([person]), webhook)
    campaign.status = Campaign.Status.SENDING
    campaign.save()
    run_decide(campaign=campaign)
    return person


def in_thread(target):
    def run():
        try:
            target()
        finally:
            connections.close_all()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def withdraw(person):
    consent_record(profile=person, purpose_code="sms_marketing", status="withdrawn", source="api",
                   actor=Actor.system("test"))


def test_a_withdrawal_committing_while_the_worker_checks_stops_the_message(queued, webhook, receiver):
    # given a withdrawal whose transaction holds the purpose lock and commits a moment later
    started = threading.Event()

    def slow_withdrawal():
        with transaction.atomic():
            withdraw(queued)
            started.set()
            time.sleep(1.0)

    withdrawal = in_thread(slow_withdrawal)
    started.wait(5)
    # when the worker sends meanwhile, its last-moment check waits for the withdrawal
    outcome = destination_drain(destination_id=webhook.pk, budget_seconds=10)
    withdrawal.join()
    # then the message is stopped and nothing reached the destination
    assert outcome.stopped == 1 and outcome.sent == 0
    assert not receiver.messages
    assert Delivery.objects.get().status == Delivery.Status.STOPPED


def test_a_withdrawal_made_while_the_batch_is_out_waits_for_it(queued, webhook, receiver):
    receiver.delay = 1.0
    finished = {}

    def worker():
        destination_drain(destination_id=webhook.pk, budget_seconds=10)
        finished["send"] = timezone.now()

    sender = in_thread(worker)
    assert receiver.received.wait(5)  # the batch is on its way
    withdraw(queued)  # waits for the sender's transaction to end
    finished["withdrawal"] = timezone.now()
    sender.join()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT
    recorded = ConsentRecord.objects.get(status="withdrawn").recorded_at
    assert recorded >= delivery.sent_at  # the ledger orders the withdrawal after the send
    assert finished["withdrawal"] >= finished["send"] - timezone.timedelta(seconds=0.05)
