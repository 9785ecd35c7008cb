"""Demo consent: the opt-ins a shop collects (app pop-up, WeChat, sign-up and paper forms),
some withdrawn later. The first customers' entries come as a CRM exports them, through the
consent import (so that the demo also shows an import with its report); the rest are
recorded straight through consent_record_many in large batches, the set-based write an
import's batch takes too, without writing and parsing a file of millions of rows."""
from __future__ import annotations

import csv
import datetime
import os
import random
import tempfile
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp.actors import Actor
from profiles.importing.jobs import import_job_create
from profiles.importing.pipeline import import_run
from profiles.models import ImportKind, Profile, ProfileStatus

from .services import ConsentEntry, consent_record_many

FILE_NAME = "crm-consent-export.csv"
# purpose → (share of customers who granted it, the evidence)
GRANTS = {
    "analytics": (0.72, "App 首次启动隐私弹窗"),
    "personalisation": (0.55, "App 首次启动隐私弹窗"),
    "app_push": (0.61, "App 系统通知授权"),
    "wechat_marketing": (0.48, "微信公众号关注并勾选营销消息"),
    "email_marketing": (0.37, "官网注册页勾选订阅"),
    "sms_marketing": (0.33, "门店会员登记表（纸质，已扫描）"),
}
WITHDRAWN_SHARE = 0.08  # of the grants, withdrawn later (退订)
WITHDRAWN_EVIDENCE = "短信回复 TD 退订"
PROGRESS_EVERY_SECONDS = 5.0  # how often a long run says how far it got
IMPORTED_CUSTOMERS = 2_000  # whose consent goes through the import, as a CRM file
CHUNK_CUSTOMERS = 15_000  # the others, per call (and transaction): about 50,000 entries
# On PostgreSQL one writer records these purposes and another the rest (see _recorded):
# about 1.5 entries a customer each.
FIRST_WRITER_PURPOSES = frozenset({"analytics", "wechat_marketing", "sms_marketing"})


def demo_consent(*, seed: int = 1, now: datetime.datetime | None = None,
                 progress: Callable[[str], None] | None = None) -> int:
    """Record consent for the active demo customers with a phone and no consent yet;
    returns the number of ledger entries written. Each customer draws from their own
    seeded generator, so running it again adds nothing for the same customers.
    `progress` is told how far it got, every few seconds (a long step at 1M customers)."""
    now = now or timezone.now()
    report = _Throttled(progress)
    customers = (Profile.objects.filter(status=ProfileStatus.ACTIVE, consent_records__isnull=True).exclude(phone="")
                 .order_by("pk").only("id", "uuid", "birth_date", "phone"))
    total = customers.count()
    if not total:
        return 0
    first = list(customers[:IMPORTED_CUSTOMERS])
    recorded = _imported(first, seed=seed, now=now, report=report, total=total)
    if total > len(first):
        recorded += _recorded(customers.filter(pk__gt=first[-1].pk), seed=seed, now=now, report=report,
                              done=len(first), total=total)
    report.now(_("Consent: %(rows)s ledger entries recorded.") % {"rows": recorded})
    return recorded


def _draws(customer: Profile, seed: int, now: datetime.datetime) -> Iterator[tuple[str, str, datetime.datetime, str]]:
    """(purpose, status, captured at, evidence) of one customer's entries, from their own generator."""
    randomness = random.Random(seed * 1_000_003 + customer.pk)
    for purpose, (share, evidence) in GRANTS.items():
        if randomness.random() >= share:
            continue
        granted_at = now - datetime.timedelta(days=randomness.uniform(5, 540))
        yield purpose, "granted", granted_at, evidence
        if randomness.random() < WITHDRAWN_SHARE:
            yield purpose, "withdrawn", granted_at + (now - granted_at) * randomness.uniform(0.2, 0.9), WITHDRAWN_EVIDENCE


def _imported(customers: list[Profile], *, seed: int, now: datetime.datetime, report: _Throttled, total: int) -> int:
    """The customers' entries as a CRM consent export, brought in through the consent import."""
    words = {"granted": "同意", "withdrawn": "撤回"}
    handle, path = tempfile.mkstemp(prefix="cdp-demo-consent-", suffix=".csv")
    rows = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["手机号", "用途", "同意状态", "同意时间", "凭证"])
            for done, customer in enumerate(customers, start=1):
                report(lambda: _("Consent: drawn for %(done)s of %(total)s customers…") % {"done": done, "total": total})
                for purpose, status, captured_at, evidence in _draws(customer, seed, now):
                    writer.writerow([customer.phone, purpose, words[status], _local(captured_at), evidence])
                    rows += 1
        if not rows:
            return 0
        job, _table = import_job_create(path=path, name=FILE_NAME, kind=ImportKind.CONSENT,
                                        actor=Actor.system("demo"), source="demo-crm")
        report.now(_("Consent: importing %(rows)s ledger entries…") % {"rows": rows})
        return import_run(job, on_progress=lambda running: report(
            lambda: _("Consent: %(percent)s%% imported…") % {"percent": int(running.progress * 100)})).created
    finally:
        if os.path.exists(path):
            os.remove(path)


def _recorded(customers, *, seed: int, now: datetime.datetime, report: _Throttled, done: int, total: int) -> int:
    """The other customers' entries, CHUNK_CUSTOMERS at a time. On PostgreSQL (outside a
    transaction) each chunk's entries go to two writers, one per group of purposes, each
    recording on a connection of its own: a ledger write locks its purposes, so writers of
    different purposes run at once (one statement uses one core), and one that reaches a
    chunk's customers while the other still holds them waits for it. Otherwise a thread
    draws a chunk's entries while this one records the previous chunk's."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        return _recorded_in_parallel(customers, seed=seed, now=now, report=report, done=done, total=total)
    actor = Actor.system("demo")
    recorded, drawing, chunks = 0, None, _chunks(customers)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-consent-draw") as drawer:
        while True:
            chunk = next(chunks, [])
            following = drawer.submit(_entries, chunk, seed, now) if chunk else None
            if drawing is not None:
                results = consent_record_many(drawing.result(), actor=actor, as_ids=True)
                recorded += sum(1 for result in results if isinstance(result, int))
                report(lambda: _("Consent: drawn for %(done)s of %(total)s customers…") % {
                    "done": done, "total": total})
            if following is None:
                return recorded
            drawing, done = following, done + len(chunk)


def _recorded_in_parallel(customers, *, seed: int, now: datetime.datetime, report: _Throttled, done: int,
                          total: int) -> int:
    """_recorded with one writer thread (and connection) per group of purposes; this thread
    draws. Each writer takes its chunks in order; at most two chunks wait per writer."""
    actor = Actor.system("demo")
    writers = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"demo-consent-write-{n}") for n in (1, 2)]
    pending: deque = deque()  # (customers drawn so far, the writers' futures for one chunk)
    recorded = 0

    def harvest() -> int:
        drawn, futures = pending.popleft()
        written = sum(future.result() for future in futures)
        report(lambda: _("Consent: drawn for %(done)s of %(total)s customers…") % {"done": drawn, "total": total})
        return written

    try:
        for chunk in _chunks(customers):
            entries = _entries(chunk, seed, now)
            done += len(chunk)
            first = [entry for entry in entries if entry.purpose_code in FIRST_WRITER_PURPOSES]
            rest = [entry for entry in entries if entry.purpose_code not in FIRST_WRITER_PURPOSES]
            pending.append((done, [writers[0].submit(_write, first, actor), writers[1].submit(_write, rest, actor)]))
            while len(pending) > 2:
                recorded += harvest()
        while pending:
            recorded += harvest()
    finally:
        for writer in writers:
            writer.submit(_connection_close)
            writer.shutdown(wait=True)
    return recorded


def _chunks(customers) -> Iterator[list[Profile]]:
    """`customers`, CHUNK_CUSTOMERS at a time. Their ids are read once, at the start: asked
    for every chunk, "no consent yet" joins the ledger as it grows (3.3M entries at 1M
    customers: seconds a chunk)."""
    ids = list(customers.values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK_CUSTOMERS):
        wanted = ids[start:start + CHUNK_CUSTOMERS]
        keep = set(wanted)
        yield [customer for customer in Profile.objects.filter(pk__gte=wanted[0], pk__lte=wanted[-1]).order_by("pk")
               .only("id", "uuid", "birth_date", "phone") if customer.pk in keep]


def _connection_close() -> None:
    connection.close()  # the calling (writer) thread's own connection


def _write(entries: list[ConsentEntry], actor: Actor) -> int:
    if not entries:
        return 0
    return sum(1 for result in consent_record_many(entries, actor=actor, as_ids=True) if isinstance(result, int))


def _entries(customers: list[Profile], seed: int, now: datetime.datetime) -> list[ConsentEntry]:
    # As the import stores a CRM file's entries: the capture time to the second, the
    # evidence NFKC-normalised (full-width brackets and commas become ASCII).
    return [ConsentEntry(profile=customer, purpose_code=purpose, status=status, source="import",
                         captured_at=captured_at.replace(microsecond=0),
                         evidence={"reference": FILE_NAME, "text": unicodedata.normalize("NFKC", evidence)})
            for customer in customers for purpose, status, captured_at, evidence in _draws(customer, seed, now)]


class _Throttled:
    """Passes a message on at most every `every` seconds; the message is only made when passed."""

    def __init__(self, progress: Callable[[str], None] | None, every: float | None = None):
        self.progress, self.last = progress, time.monotonic()
        self.every = PROGRESS_EVERY_SECONDS if every is None else every

    def __call__(self, message: Callable[[], str]) -> None:
        if self.progress is not None and time.monotonic() - self.last >= self.every:
            self.now(message())

    def now(self, message: str) -> None:
        if self.progress is not None:
            self.last = time.monotonic()
            self.progress(message)


def _local(moment: datetime.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")
