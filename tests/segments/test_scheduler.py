"""The segment scheduler: a failing segment backs off (2, 4, 8 … minutes, capped) instead of
being queued every minute; a segment queued or being calculated is not queued again; two
calculations never run at once; a second delivery of a calculation changes nothing; the
segment's page shows the failure and retries it on demand."""
import datetime

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, override

from segments.models import Segment, SegmentSnapshot
from segments.scheduling import retry_delay, segment_calculation_claim, segments_due
from segments.tasks import recompute_due_segments, recompute_segment
from tests.concurrency import run_together
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db

SHANGHAI = {"field": "city", "op": "eq", "value": "上海"}
BROKEN = {"field": "nope", "op": "eq", "value": 1}  # saved before the field went away: fails when calculated


@pytest.fixture
def failing():
    ProfileFactory(city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai", definition=SHANGHAI)
    Segment.objects.filter(pk=segment.pk).update(definition=BROKEN)
    return segment


def test_a_failing_segment_backs_off_instead_of_being_queued_every_minute(failing, caplog):
    # when the scheduler runs and the calculation fails
    before = timezone.now()
    assert recompute_due_segments() == 0  # queued, and failed
    failing.refresh_from_db()

    # then the failure is kept, counted and logged, and the next attempt is 2 minutes away
    assert failing.failures_in_a_row == 1 and failing.error_count == 1 and "nope" in failing.last_error
    assert failing.calculating_since is None and failing.queued_at is None
    wait = (failing.next_attempt_at - before).total_seconds()
    assert settings.CDP_SEGMENT_RETRY_BASE_SECONDS <= wait < settings.CDP_SEGMENT_RETRY_BASE_SECONDS + 5
    assert "segment %s: calculation failed (1 in a row)" % failing.pk in caplog.text

    # and the next minutes' rounds leave it alone
    assert segments_due(timezone.now()) == ([], [])
    assert recompute_due_segments() == 0
    assert Segment.objects.get(pk=failing.pk).failures_in_a_row == 1

    # when its wait is over it is tried again, and a second failure doubles the wait
    Segment.objects.filter(pk=failing.pk).update(next_attempt_at=timezone.now() - datetime.timedelta(seconds=1))
    before = timezone.now()
    recompute_due_segments()
    failing.refresh_from_db()
    assert failing.failures_in_a_row == 2
    wait = (failing.next_attempt_at - before).total_seconds()
    assert 2 * settings.CDP_SEGMENT_RETRY_BASE_SECONDS <= wait < 2 * settings.CDP_SEGMENT_RETRY_BASE_SECONDS + 5

    # and once the definition works again, a success clears the count
    Segment.objects.filter(pk=failing.pk).update(definition=SHANGHAI, next_attempt_at=timezone.now())
    assert recompute_due_segments() == 1
    failing.refresh_from_db()
    assert (failing.failures_in_a_row, failing.next_attempt_at, failing.member_count) == (0, None, 1)
    assert failing.last_error == ""


def test_the_wait_grows_exponentially_up_to_its_cap():
    base, cap = settings.CDP_SEGMENT_RETRY_BASE_SECONDS, settings.CDP_SEGMENT_RETRY_MAX_SECONDS
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3)] == [base, 2 * base, 4 * base]
    assert retry_delay(1000).total_seconds() == cap


def test_a_segment_being_calculated_is_neither_queued_again_nor_calculated_twice():
    # given a due segment that a worker is calculating
    ProfileFactory(city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai", definition=SHANGHAI, refresh_every_minutes=1)
    Segment.objects.filter(pk=segment.pk).update(calculating_since=timezone.now())

    # then the scheduler leaves it alone, and a second calculation does nothing
    assert segments_due(timezone.now()) == ([], [])
    assert recompute_due_segments() == 0
    assert recompute_segment(segment.pk, segment.version) is None
    assert not SegmentSnapshot.objects.exists()


def test_a_queued_segment_is_not_queued_again():
    ProfileFactory(city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai", definition=SHANGHAI)
    Segment.objects.filter(pk=segment.pk).update(queued_at=timezone.now())
    assert recompute_due_segments() == 0
    assert Segment.objects.get(pk=segment.pk).calculated_version is None


def test_a_calculation_whose_worker_died_counts_as_a_failure_and_is_tried_again():
    # given a segment claimed longer ago than the task's hard time limit allows
    ProfileFactory(city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai", definition=SHANGHAI)
    long_ago = timezone.now() - datetime.timedelta(seconds=settings.CDP_SEGMENT_CLAIM_STALE_SECONDS + 1)
    Segment.objects.filter(pk=segment.pk).update(calculating_since=long_ago, queued_at=long_ago)

    # when the scheduler runs: the lost calculation is a failure, and the segment waits
    assert recompute_due_segments() == 0
    segment.refresh_from_db()
    assert (segment.calculating_since, segment.failures_in_a_row) == (None, 1)
    assert segment.next_attempt_at > timezone.now()
    with override("zh-hans"):
        assert segment.last_error.startswith(gettext(
            "The worker calculating it stopped without finishing (killed at the hard time limit, out of "
            "memory, or restarted). It is tried again later.")[:10])

    # and once the wait is over it is calculated
    Segment.objects.filter(pk=segment.pk).update(next_attempt_at=timezone.now())
    assert recompute_due_segments() == 1
    segment.refresh_from_db()
    assert (segment.member_count, segment.failures_in_a_row, segment.queued_at) == (1, 0, None)


def test_a_stale_claim_does_not_stop_a_new_calculation():
    ProfileFactory(city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai", definition=SHANGHAI)
    long_ago = timezone.now() - datetime.timedelta(seconds=settings.CDP_SEGMENT_CLAIM_STALE_SECONDS + 1)
    Segment.objects.filter(pk=segment.pk).update(calculating_since=long_ago)
    assert recompute_segment(segment.pk, segment.version) == 1


def test_a_second_delivery_of_a_calculation_changes_nothing():
    # given a calculation asked for at some moment, and done
    ProfileFactory(city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai", definition=SHANGHAI)
    asked = timezone.now().timestamp()
    assert recompute_segment(segment.pk, segment.version, requested_at=asked) == 1

    # when the same message is delivered again (a worker died before acknowledging it)
    ProfileFactory(city="上海")  # even if the data moved on meanwhile
    assert recompute_segment(segment.pk, segment.version, requested_at=asked) is None

    # then nothing more was calculated
    assert SegmentSnapshot.objects.filter(segment=segment).count() == 1
    assert Segment.objects.get(pk=segment.pk).member_count == 1


@pytest.mark.postgres
@pytest.mark.usefixtures("seeded_transactional_db")
def test_two_workers_starting_at_once_claim_a_calculation_once():
    # given a segment and eight connections ready to claim it at the same moment
    segment = Segment.objects.create(name="上海客户", slug="shanghai", definition=SHANGHAI)
    results = []

    # when they all try
    run_together(lambda _n: results.append(segment_calculation_claim(segment_id=segment.pk, now=timezone.now())),
                 list(range(8)))

    # then exactly one of them has it
    assert sorted(results) == [False] * 7 + [True]


def test_the_segment_page_shows_the_failure_and_retries_it_now(failing, admin_client):
    # given a segment that failed twice and waits for its next attempt
    recompute_due_segments()
    Segment.objects.filter(pk=failing.pk).update(failures_in_a_row=2)
    failing.refresh_from_db()
    url = reverse("admin:segments_segment_change", args=[failing.pk])

    # then its page says so, with the error, and offers to retry now
    page = admin_client.get(url).text
    with override("zh-hans"):
        assert gettext("Failed %(count)s times in a row, last at %(time)s.").split("%")[0] in page
        assert gettext("Next automatic attempt: %(time)s.").split("%")[0] in page
        assert gettext("Retry now") in page
    assert "nope" in page and 'id="segment-retry-now"' in page

    # when the definition is fixed and staff retry now (before the wait is over)
    Segment.objects.filter(pk=failing.pk).update(definition=SHANGHAI)
    response = admin_client.post(reverse("admin:segments_segment_retry", args=[failing.pk]))

    # then it is calculated at once and the failure is cleared
    assert response.status_code == 302 and response["Location"] == url
    failing.refresh_from_db()
    assert (failing.member_count, failing.failures_in_a_row, failing.next_attempt_at) == (1, 0, None)
    assert 'id="segment-retry-now"' not in admin_client.get(url).text


def test_retry_now_is_also_an_action_on_the_list(failing, admin_client):
    recompute_due_segments()
    Segment.objects.filter(pk=failing.pk).update(definition=SHANGHAI)
    response = admin_client.post(reverse("admin:segments_segment_changelist"), {
        "action": "retry_now", "_selected_action": [failing.pk]}, follow=True)
    assert response.status_code == 200
    assert Segment.objects.get(pk=failing.pk).failures_in_a_row == 0


def test_retry_now_needs_the_change_permission(failing, client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_segment"))
    client.force_login(viewer)
    assert client.post(reverse("admin:segments_segment_retry", args=[failing.pk])).status_code == 403
    assert client.get(reverse("admin:segments_segment_retry", args=[failing.pk])).status_code in (403, 405)
