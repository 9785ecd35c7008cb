"""Consent entries import (issue 20): a CRM consent export of the dataset's customers (the
demo's draws: about 3.3 entries a customer, some withdrawn later) through the product's
consent import, beside a plain COPY of the same rows into the ledger in the same run (the
ceiling); the same file again (a re-import writes nothing); and the same entries recorded
straight through consent_record_many in 50,000-entry calls, as generate_demo does.

Customers are the first BENCH_CONSENT_CUSTOMERS (default 100,000) active ones with a
phone and no consent. Everything written is removed afterwards, so the dataset stays as
generate_demo made it: the ledger and the audit log refuse deletes, so the clean-up
passes their guards as run.py's emptying does (the bench database is disposable).
"""
from __future__ import annotations

import csv
import os
import tempfile
import time

from common import Row, at_least
from django.db import connection, transaction
from django.utils import timezone

from cdp.actors import Actor
from cdp.models import AuditLog
from consent.demo import FILE_NAME, _draws, _local
from consent.models import ConsentRecord, ConsentState, Purpose
from consent.services import ConsentEntry, consent_record_many
from profiles.importing.jobs import import_job_create
from profiles.importing.pipeline import import_run
from profiles.models import ImportJob, ImportKind, Profile, ProfileActivity, ProfileStatus

TARGET_RATE = 30_000  # entries/s on PostgreSQL
CUSTOMERS = int(os.environ.get("BENCH_CONSENT_CUSTOMERS", "100000"))
ACTOR = Actor.system("bench-consent")
WORDS = {"granted": "同意", "withdrawn": "撤回"}


def bench_consent_import(ctx) -> list[Row]:
    customers = list(Profile.objects.filter(status=ProfileStatus.ACTIVE, consent_records__isnull=True)
                     .exclude(phone="").order_by("pk").only("id", "uuid", "birth_date", "phone")[:CUSTOMERS])
    if not customers:
        return [Row("consent import: no customer without consent in the dataset", 0, "customers")]
    now = timezone.now()
    drawn = [(customer, *draw) for customer in customers for draw in _draws(customer, 1, now)]
    marks = _marks()
    rows: list[Row] = [Row("consent import customers", len(customers), "customers"),
                       Row("consent import rows in the file", len(drawn), "rows")]
    try:
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, FILE_NAME)
            with open(path, "w", encoding="utf-8", newline="") as file:
                writer = csv.writer(file)
                writer.writerow(["手机号", "用途", "同意状态", "同意时间", "凭证"])
                writer.writerows([customer.phone, purpose, WORDS[status], _local(captured_at), evidence]
                                 for customer, purpose, status, captured_at, evidence in drawn)
            copy_rate = len(drawn) / _plain_copy_seconds(drawn, now)
            job, seconds = _import(path)
            rate = job.created / seconds
            rows += [
                Row("consent import entries recorded", job.created, "entries"),
                Row("consent import rows failed (minors without a guardian)", job.failed, "rows"),
                at_least("consent import rate", rate, "entries/s", TARGET_RATE),
                Row("consent plain COPY of the same rows into the ledger (ceiling)", copy_rate, "entries/s"),
                Row("consent import / plain COPY", rate / copy_rate, "ratio"),
            ]
            ledger = ConsentRecord.objects.filter(pk__gt=marks["ledger"]).count()
            again, again_seconds = _import(path)
            rows += [
                Row("consent re-import of the same file", len(drawn) / again_seconds, "rows/s"),
                Row("consent re-import: entries added (must be 0)", ConsentRecord.objects.filter(
                    pk__gt=marks["ledger"]).count() - ledger, "entries", "= 0",
                    ConsentRecord.objects.filter(pk__gt=marks["ledger"]).count() == ledger and again.created == 0),
            ]
        _remove(marks, customers)
        started = time.perf_counter()
        recorded = 0
        for start in range(0, len(drawn), 50_000):
            results = consent_record_many([
                ConsentEntry(profile=customer, purpose_code=purpose, status=status, source="import",
                             captured_at=captured_at.replace(microsecond=0),
                             evidence={"reference": FILE_NAME, "text": evidence})
                for customer, purpose, status, captured_at, evidence in drawn[start:start + 50_000]],
                actor=ACTOR, as_ids=True)
            recorded += sum(1 for result in results if isinstance(result, int))
        service_rate = recorded / (time.perf_counter() - started)
        rows += [Row("consent recorded through consent_record_many, 50,000 a call (as generate_demo)", service_rate,
                     "entries/s"),
                 Row("consent_record_many / plain COPY", service_rate / copy_rate, "ratio")]
    finally:
        _remove(marks, customers)
    return rows


def _import(path: str) -> tuple[ImportJob, float]:
    job, _table = import_job_create(path=path, name=FILE_NAME, kind=ImportKind.CONSENT, actor=ACTOR,
                                    source="bench-crm")
    started = time.perf_counter()
    job = import_run(job)
    return job, time.perf_counter() - started


def _plain_copy_seconds(drawn: list, now) -> float:
    """The same entries COPYed into the ledger as they are stored (customers and purposes
    already resolved), with its indexes and foreign-key checks: the ceiling. Rolled back."""
    purposes = dict(Purpose.objects.values_list("code", "pk"))
    recorded_at = now.isoformat()
    columns = ("profile_id", "purpose_id", "status", "captured_at", "recorded_at", "source", "evidence_channel",
               "evidence_user_agent", "evidence_reference", "evidence_text", "guardian_consent", "actor_kind",
               "actor_label", "pseudonymised")
    started = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {ConsentRecord._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
                buffer = []
                for customer, purpose, status, captured_at, evidence in drawn:
                    buffer.append(f"{customer.pk}\t{purposes[purpose]}\t{status}\t{captured_at.isoformat()}\t"
                                  f"{recorded_at}\timport\t\t\t{FILE_NAME}\t{evidence}\tf\tsystem\tbench\tf\n")
                    if len(buffer) >= 10_000:
                        copy.write("".join(buffer))
                        buffer.clear()
                copy.write("".join(buffer))
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred foreign-key checks, now
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


def _marks() -> dict[str, int]:
    def last(model) -> int:
        return model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    return {"ledger": last(ConsentRecord), "activity": last(ProfileActivity), "audit": last(AuditLog)}


def _remove(marks: dict[str, int], customers: list[Profile]) -> None:
    """What the run wrote: states and timeline rows of these customers, ledger and audit
    rows after the marks, the bench's import jobs."""
    ids = [customer.pk for customer in customers]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # past the append-only guards
        cursor.execute(f"DELETE FROM {ConsentState._meta.db_table} WHERE profile_id = ANY(%s)", [ids])
        cursor.execute(f"DELETE FROM {ConsentRecord._meta.db_table} WHERE id > %s", [marks["ledger"]])
        cursor.execute(f"DELETE FROM {ProfileActivity._meta.db_table} WHERE id > %s AND type = 'consent_changed'",
                       [marks["activity"]])
        cursor.execute(f"DELETE FROM {AuditLog._meta.db_table} WHERE id > %s AND action = 'consent_recorded'",
                       [marks["audit"]])
    ImportJob.objects.filter(actor_label=ACTOR.label).delete()
