"""Import benchmarks: a CRM export of N customers through the product's pipeline (new, then
the same rows again as updates), a plain COPY of the same rows for comparison, peak memory,
django-import-export's own best rate on a sample, and optionally an events file.

The files are generated into a temporary directory (deterministic), and every row written
is removed afterwards so the demo dataset stays as `generate_demo` made it. Phones use the
195 prefix and CRM ids "BIMP…", which the demo generator never produces.
"""
from __future__ import annotations

import csv
import datetime
import os
import resource
import tempfile
import time
import uuid

from common import Row, at_least, at_most
from django.db import connection, transaction
from django.utils import timezone

from cdp.actors import Actor
from profiles.demo import copy_escape
from profiles.importing.jobs import import_job_create
from profiles.importing.pipeline import import_run
from profiles.models import Event, Identity, ImportJob, Profile, ProfileActivity

CITIES = (("上海市", "上海"), ("北京市", "北京"), ("广州", "广东"), ("深圳市", "广东省"), ("杭州", "浙江"), ("成都", "四川省"))
HEADER = ["客户编号", "姓名", "手机号", "邮箱", "性别", "出生日期", "城市", "省份"]
PROFILE_TARGET_RATE = 40_000
UPDATE_TARGET_RATE = 15_000  # re-based by issue 20 (was 20,000)
EVENT_TARGET_RATE = 50_000
PEAK_MEMORY_LIMIT_MB = 1024
IMPORT_EXPORT_SAMPLE = 20_000


def crm_row(n: int, generation: int = 0) -> list[str]:
    """Row n of the CRM export as a Chinese CRM writes it (spaced phones, 男/女, 1995/3/2,
    上海市); generation 1 changes the city and the name, as a later export would."""
    city, province = CITIES[(n + generation) % len(CITIES)]
    phone = f"195{n:08d}"
    return [
        f"BIMP{n:08d}", f"客户{n}{'·新' if generation else ''}", f"{phone[:3]} {phone[3:7]} {phone[7:]}",
        f"bench.{n}@example.com", "男" if n % 2 else "女", f"{1960 + n % 40}/{1 + n % 12}/{1 + n % 28}",
        city, province,
    ]


def write_crm_file(path: str, rows: int, generation: int = 0) -> None:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for n in range(rows):
            writer.writerow(crm_row(n, generation))


def write_events_file(path: str, rows: int, customers: int) -> None:
    start = datetime.datetime(2024, 1, 1, 8, 0)
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["客户编号", "事件", "时间", "金额", "订单号"])
        for n in range(rows):
            moment = start + datetime.timedelta(minutes=n % 500_000)
            writer.writerow([f"BIMP{n % customers:08d}", "order", moment.strftime("%Y-%m-%d %H:%M:%S"),
                             f"{(n % 900) + 9.9:.2f}", f"BO{n:010d}"])


def remove_bench_rows() -> None:
    """Everything an earlier (or this) run created: by the CRM id and phone prefixes."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Profile._meta.db_table} WHERE phone LIKE '+86195%%' OR id IN "
            f"(SELECT profile_id FROM {Identity._meta.db_table} WHERE kind = 'crm_id' AND value LIKE 'BIMP%%')")
        ids = [row[0] for row in cursor.fetchall()]
        for start in range(0, len(ids), 50_000):
            chunk = ids[start:start + 50_000]
            for model in (Event, Identity, ProfileActivity):
                cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE profile_id = ANY(%s)", [chunk])
            cursor.execute(f"DELETE FROM profiles_profiletag WHERE profile_id = ANY(%s)", [chunk])
            cursor.execute(f"DELETE FROM {Profile._meta.db_table} WHERE id = ANY(%s)", [chunk])
    ImportJob.objects.filter(actor_label="bench").delete()


def plain_copy_seconds(rows: int) -> float:
    """A plain COPY of the same customers (already in canonical form) into the profile
    table, with its indexes: the floor any import is compared with. Rolled back."""
    started = time.perf_counter()
    with transaction.atomic():
        plain_copy_seconds_inner(rows)
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


def plain_copy_seconds_inner(rows: int) -> None:
    columns = ["uuid", "name", "gender", "birth_date", "phone", "email", "country", "province", "city",
               "occupation", "traits", "status", "order_count", "total_spent", "lifecycle_stage", "created_at",
               "updated_at"]
    now = timezone.now().isoformat()
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {Profile._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
        buffer = []
        for n in range(rows):
            city, province = CITIES[n % len(CITIES)]
            buffer.append("\t".join([
                str(uuid.uuid4()), copy_escape(f"客户{n}"), "male" if n % 2 else "female",
                f"{1960 + n % 40}-{1 + n % 12:02d}-{1 + n % 28:02d}", f"+86195{n:08d}", f"bench.{n}@example.com",
                "CN", province.removesuffix("省"), city.removesuffix("市"), "", "{}", "active", "0", "0",
                "prospect", now, now]) + "\n")
            if len(buffer) >= 5000:
                copy.write("".join(buffer))
                buffer.clear()
        copy.write("".join(buffer))


def plain_copy_with_identities_seconds(rows: int) -> float:
    """The same COPY plus each customer's three identities (phone, email, CRM id): what an
    import has to write at the least, so its floor. Rolled back."""
    started = time.perf_counter()
    with transaction.atomic():
        plain_copy_seconds_inner(rows)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, phone FROM {Profile._meta.db_table} WHERE phone LIKE '+86195%%'")
            ids = cursor.fetchall()
            now = timezone.now().isoformat()
            with cursor.cursor.copy(f"COPY {Identity._meta.db_table} (profile_id, kind, value, source, created_at) "
                                    "FROM STDIN") as copy:
                buffer = []
                for pk, phone in ids:
                    n = int(phone[6:])
                    buffer += [f"{pk}\tphone\t{phone}\tbench\t{now}\n",
                               f"{pk}\temail\tbench.{n}@example.com\tbench\t{now}\n",
                               f"{pk}\tcrm_id\tBIMP{n:08d}\tbench\t{now}\n"]
                    if len(buffer) >= 15_000:
                        copy.write("".join(buffer))
                        buffer.clear()
                copy.write("".join(buffer))
        connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred foreign-key checks, now
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


def timed_import(path: str, name: str, kind: str = "profiles") -> tuple[ImportJob, float]:
    job, _table = import_job_create(path=path, name=name, kind=kind, actor=Actor.system("bench"), source="bench")
    started = time.perf_counter()
    import_run(job)
    return job, time.perf_counter() - started


def import_export_rate(rows: int) -> float:
    """django-import-export on its own, at its fastest (bulk mode, skip_diff, no report of
    unchanged rows): new customers from a `rows`-row dataset. Rolled back."""
    import tablib
    from import_export import resources

    class ProfileResource(resources.ModelResource):
        class Meta:
            model = Profile
            fields = ("name", "phone", "email", "gender", "city", "province")
            import_id_fields = ()
            use_bulk = True
            batch_size = 1000
            skip_diff = True
            skip_unchanged = False
            report_skipped = False
            force_init_instance = True

    dataset = tablib.Dataset(headers=["name", "phone", "email", "gender", "city", "province"])
    for n in range(rows):
        city, province = CITIES[n % len(CITIES)]
        dataset.append([f"客户{n}", f"+86195{n:08d}", f"bench.{n}@example.com", "male" if n % 2 else "female",
                        city.removesuffix("市"), province.removesuffix("省")])
    started = time.perf_counter()
    with transaction.atomic():
        result = ProfileResource().import_data(dataset, dry_run=False, raise_errors=True, collect_failed_rows=False)
        seconds = time.perf_counter() - started
        assert not result.has_errors()
        transaction.set_rollback(True)
    return rows / seconds


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def bench_import_profiles(ctx) -> list[Row]:
    rows = ctx.args.import_rows
    remove_bench_rows()
    result: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cdp-bench-import-") as directory:
        first, second = os.path.join(directory, "crm.csv"), os.path.join(directory, "crm-later.csv")
        write_crm_file(first, rows)
        write_crm_file(second, rows, generation=1)
        copy_rate = rows / plain_copy_seconds(rows)
        floor_rate = rows / plain_copy_with_identities_seconds(rows)

        job, seconds = timed_import(first, "crm.csv")
        assert job.created == rows, (job.status, job.error, job.created, job.failed)
        new_rate = rows / seconds
        again, again_seconds = timed_import(first, "crm.csv")
        assert again.unchanged == rows, (again.status, again.error, again.unchanged)
        update, update_seconds = timed_import(second, "crm-later.csv")
        assert update.updated == rows, (update.status, update.error, update.updated, update.failed)
        update_rate = rows / update_seconds
        result += [
            Row("import: rows in the CRM file", rows, "rows"),
            Row("import: plain COPY of the same rows", copy_rate, "rows/s"),
            Row("import: plain COPY of the rows and their 3 identities", floor_rate, "rows/s"),
            at_least("import: new customers, end to end", new_rate, "rows/s", PROFILE_TARGET_RATE),
            at_least("import: new customers vs plain COPY", 100 * new_rate / copy_rate, "%", 50),
            Row("import: same file again (all unchanged)", rows / again_seconds, "rows/s"),
            at_least("import: the same customers again as updates", update_rate, "rows/s", UPDATE_TARGET_RATE),
        ]
        undo_started = time.perf_counter()
        from profiles.importing.undo import import_undo

        import_undo(job=update, actor=Actor.system("bench"))
        result.append(Row("import: undo of the update import", time.perf_counter() - undo_started, "s"))

        if ctx.args.import_events:
            events = os.path.join(directory, "orders.csv")
            write_events_file(events, ctx.args.import_events, rows)
            job, seconds = timed_import(events, "orders.csv", kind="events")
            assert job.created == ctx.args.import_events, (job.status, job.error, job.created, job.failed)
            result.append(at_least(f"import: {ctx.args.import_events:,} order events", ctx.args.import_events / seconds,
                                   "rows/s", EVENT_TARGET_RATE))
    result.append(at_most("import: peak memory of the process", peak_memory_mb(), "MB", PEAK_MEMORY_LIMIT_MB))
    remove_bench_rows()
    result.append(Row(f"django-import-export, {IMPORT_EXPORT_SAMPLE:,} new rows (bulk, skip_diff)",
                      import_export_rate(IMPORT_EXPORT_SAMPLE), "rows/s"))
    return result
