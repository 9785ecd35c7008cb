"""Every Celery task: routed to its queue, under time limits, retried only where safe, and
idempotent — run twice (a redelivered message, two workers), it changes nothing more."""
import re
from pathlib import Path

import pytest

from campaigns.models import Delivery
from campaigns.tasks import campaign_run, drain
from cdp.actors import Actor
from cdp.celery import app
from cdp.queues import QUEUES, ROUTES
from cdp.retrying import TRANSIENT_ERRORS
from profiles.importing.jobs import import_job_create
from profiles.importing.undo import import_undo_queue
from profiles.models import ImportJob, ImportStatus, Profile, ProfileActivity, ProfileTag
from profiles.tasks import recompute_all_metrics, run_import, undo_import
from segments.tasks import refresh_rule_tags
from tests.campaigns.conftest import campaign_for, consenting, receiver, segment_of, webhook  # noqa: F401
from tests.concurrency import run_together
from tests.factories import ProfileFactory, order

ROOT = Path(__file__).resolve().parents[2]
OUR_TASKS = sorted(name for name in app.tasks if name.split(".")[0] in {"cdp", "profiles", "consent", "segments",
                                                                           "campaigns"})


def test_every_route_names_a_real_task_and_a_known_queue():
    assert set(ROUTES) <= set(OUR_TASKS)
    assert set(ROUTES.values()) <= set(QUEUES)
    assert app.conf.task_routes["profiles.tasks.run_import"] == {"queue": "imports"}
    assert app.conf.task_routes["segments.tasks.recompute_segment"] == {"queue": "segments"}
    assert app.conf.task_routes["campaigns.tasks.drain"] == {"queue": "deliveries"}
    # consent checks, the schedulers' ticks and housekeeping stay on the short default queue
    for name in ("consent.tasks.check_consent_state", "segments.tasks.recompute_due_segments", "campaigns.tasks.tick"):
        assert name not in app.conf.task_routes
    assert app.conf.task_default_queue == "default"


def test_make_run_starts_a_worker_on_every_queue():
    makefile = (ROOT / "Makefile").read_text()
    queues = re.search(r"celery -A cdp worker .*-Q (\S+)", makefile).group(1).split(",")
    assert sorted(queues) == sorted(QUEUES)


@pytest.mark.parametrize("name", OUR_TASKS)
def test_every_task_has_a_soft_and_a_hard_time_limit(name):
    task = app.tasks[name]
    soft = task.soft_time_limit or app.conf.task_soft_time_limit
    hard = task.time_limit or app.conf.task_time_limit
    assert soft and hard and soft < hard


def test_long_tasks_get_longer_limits_than_the_default():
    default = app.conf.task_soft_time_limit
    assert app.tasks["profiles.tasks.run_import"].soft_time_limit > default
    assert app.tasks["segments.tasks.recompute_segment"].soft_time_limit > default
    assert app.tasks["campaigns.tasks.drain"].time_limit < 90  # below its slot's expiry


def test_retries_are_bounded_and_only_for_transient_errors():
    for name in OUR_TASKS:
        task = app.tasks[name]
        if getattr(task, "autoretry_for", ()):
            assert tuple(task.autoretry_for) == TRANSIENT_ERRORS and task.max_retries <= 5, name
    # deliveries retry per message in the outbox: Celery never retries a drain
    assert not getattr(app.tasks["campaigns.tasks.drain"], "autoretry_for", ())


def _queued_import(folder, rows: int) -> ImportJob:
    path = folder / "customers.csv"
    lines = ["客户编号,姓名,手机,城市"] + [f"CRM{i:06d},客户{i},139{i:08d},上海" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    job, _table = import_job_create(path=str(path), name="customers.csv", actor=Actor.system("test"),
                                    precedence=["crm_id", "phone"])
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED)
    return job


@pytest.mark.django_db
def test_an_import_and_its_undo_delivered_twice_run_once(tmp_path):
    # given a queued import
    job = _queued_import(tmp_path, rows=20)

    # when its message is delivered twice, then it is imported once
    assert run_import(job.pk) == ImportStatus.DONE
    assert run_import(job.pk) == "skipped"
    job.refresh_from_db()
    assert (job.created, Profile.objects.count()) == (20, 20)

    # and its undo, delivered twice, undoes it once
    assert import_undo_queue(job=job)
    assert undo_import(job.pk) != "skipped"
    assert undo_import(job.pk) == "skipped"
    assert not Profile.objects.exists()


@pytest.mark.postgres
@pytest.mark.usefixtures("seeded_transactional_db")
def test_two_workers_starting_an_import_at_once_run_it_once(tmp_path):
    # given a queued import, and two workers given its message at the same moment
    job = _queued_import(tmp_path, rows=200)
    outcomes = []

    run_together(lambda _n: outcomes.append(run_import(job.pk)), [1, 2])

    # then one ran it and the other skipped it
    assert sorted(outcomes) == sorted([ImportStatus.DONE, "skipped"]), ImportJob.objects.get(pk=job.pk).error
    assert Profile.objects.count() == 200 and ImportJob.objects.get(pk=job.pk).created == 200


@pytest.mark.django_db
def test_refreshing_rule_tags_twice_changes_nothing_more():
    from segments.rule_tags import rule_tag_save

    from profiles.models import Tag, TagCategory, TagKind

    ProfileFactory.create_batch(3, city="上海")
    tag = rule_tag_save(tag=Tag(name="上海", slug="sh", kind=TagKind.RULE,
                                category=TagCategory.objects.get(code="basic")),
                        definition={"field": "city", "op": "eq", "value": "上海"})
    refresh_rule_tags([tag.pk])
    rows, entries = ProfileTag.objects.count(), ProfileActivity.objects.count()
    assert rows == 3
    refresh_rule_tags([tag.pk])
    assert (ProfileTag.objects.count(), ProfileActivity.objects.count()) == (rows, entries)


@pytest.mark.django_db
def test_recomputing_metrics_twice_gives_the_same_figures():
    person = ProfileFactory()
    order(person, days_ago=3, amount=120)
    recompute_all_metrics()
    first = Profile.objects.values("order_count", "total_spent", "lifecycle_stage").get(pk=person.pk)
    recompute_all_metrics()
    assert Profile.objects.values("order_count", "total_spent", "lifecycle_stage").get(pk=person.pk) == first
    assert first["order_count"] == 1


@pytest.mark.django_db
def test_a_campaign_launched_twice_sends_each_message_once(receiver, webhook, admin_user):  # noqa: F811
    from campaigns.services.lifecycle import campaign_launch

    campaign = campaign_for(segment_of(consenting(n=5)), webhook, ignore_quiet_hours=True)
    campaign_launch(campaign=campaign, user=admin_user)

    campaign_run(campaign.pk)
    campaign_run(campaign.pk)  # the launch's message again
    drain(webhook.pk, 0)  # and a drain with nothing left to send

    assert Delivery.objects.filter(campaign=campaign).count() == 5
    assert Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENT).count() == 5
    assert len(receiver.keys_seen) == 5 and receiver.duplicates == 0
