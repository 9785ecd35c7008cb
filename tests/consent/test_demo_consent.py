"""The demo's consent: the first customers' through the consent import, the others straight
through consent_record_many chunk by chunk; either way each customer's ledger is their own
draws, their states the latest entries, and running it again adds nothing."""
import datetime
import unicodedata

import pytest
from django.utils import timezone

from cdp.actors import Actor
from consent import demo
from consent.models import ConsentRecord, ConsentState
from profiles.models import ImportJob, Profile
from profiles.services import profile_create

pytestmark = pytest.mark.django_db


def test_imported_and_directly_recorded_customers_get_their_own_draws(monkeypatch):
    _each_customer_gets_their_own_draws(monkeypatch)


@pytest.mark.postgres
def test_two_writers_on_their_own_connections_record_the_same(seeded_transactional_db, monkeypatch):
    # (outside a transaction on PostgreSQL, one writer per group of purposes, each on its connection)
    _each_customer_gets_their_own_draws(monkeypatch)


def _each_customer_gets_their_own_draws(monkeypatch):
    # given 23 demo customers, of whom the first 5 go through the import, the rest in chunks of 7
    for i in range(23):
        profile_create(actor=Actor.system("t"), source="crm", name=f"客户{i}", phone=f"1380013{i:04d}",
                       birth_date=datetime.date(1990, 1, 1))
    monkeypatch.setattr(demo, "IMPORTED_CUSTOMERS", 5)
    monkeypatch.setattr(demo, "CHUNK_CUSTOMERS", 7)
    now = timezone.now().replace(microsecond=0)
    # when their consent is recorded
    recorded = demo.demo_consent(seed=4, now=now)
    # then each customer's ledger holds exactly their draws (to the second, as a CRM file gives them)
    assert recorded == ConsentRecord.objects.count() > 23
    for customer in Profile.objects.all():
        drawn = sorted((purpose, status, captured_at.replace(microsecond=0), unicodedata.normalize("NFKC", evidence))
                       for purpose, status, captured_at, evidence in demo._draws(customer, 4, now))
        stored = sorted((r.purpose.code, r.status, r.captured_at, r.evidence_text)
                        for r in ConsentRecord.objects.filter(profile=customer).select_related("purpose"))
        assert stored == drawn, customer.pk
    # the first five came through one import job, credited to the demo
    job = ImportJob.objects.get(kind="consent")
    assert set(ConsentRecord.objects.filter(actor_label="demo").values_list("source", flat=True)) == {"import"}
    assert job.created == ConsentRecord.objects.filter(
        profile__in=Profile.objects.order_by("pk")[:5]).count()
    # and the states are the latest entries
    latest = {}
    for entry in ConsentRecord.objects.order_by("captured_at", "pk"):
        latest[(entry.profile_id, entry.purpose_id)] = entry.pk
    assert {(s.profile_id, s.purpose_id): s.record_id for s in ConsentState.objects.all()} == latest
    # running it again adds nothing
    assert demo.demo_consent(seed=4, now=now) == 0
