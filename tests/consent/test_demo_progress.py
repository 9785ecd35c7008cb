"""`generate_demo` says how far its long consent step got (15 minutes at 200,000 customers)."""
import io

import pytest
from django.core.management import call_command

from consent import demo
from consent.demo import demo_consent
from consent.models import ConsentRecord
from cdp.actors import Actor
from profiles.services import profile_create

pytestmark = pytest.mark.django_db


def test_the_consent_step_reports_its_progress(monkeypatch):
    # given demo customers with phones, and progress reported as often as possible
    for i in range(30):
        profile_create(actor=Actor.system("t"), source="crm", name=f"客户{i}", phone=f"1380013{i:04d}")
    monkeypatch.setattr(demo, "PROGRESS_EVERY_SECONDS", 0)
    told = []
    # when their consent is recorded
    recorded = demo_consent(seed=1, progress=told.append)
    # then it said how many customers were drawn, how much was imported, and the total
    assert recorded == ConsentRecord.objects.count() > 0, told
    assert any("30 / 30" in message or "30 of 30" in message for message in told)
    assert any("%" in message for message in told)
    assert f"{recorded}" in told[-1]


def test_generate_demo_prints_the_consent_progress(monkeypatch):
    monkeypatch.setattr(demo, "PROGRESS_EVERY_SECONDS", 0)
    out = io.StringIO()
    call_command("generate_demo", profiles=40, events_per_profile=5, seed=2, stdout=out)
    printed = out.getvalue()
    assert ("同意记录" in printed or "Consent:" in printed) and "%" in printed
