"""Saving something that queues background work still answers when the broker is down:
the save stands, the user is told, and the scheduler does the work once the queue is back."""
import pytest
from django.urls import reverse
from django.utils.translation import gettext, override

from segments.models import Segment
from segments.tasks import recompute_due_segments
from tests.factories import ProfileFactory, TagFactory

from .brokers import celery_through, closed_port_url

pytestmark = pytest.mark.usefixtures("seeded_transactional_db")  # commit callbacks run as in production

QUEUE_DOWN = ("The task queue cannot be reached right now. What you saved is kept; the scheduled refresh does "
              "the work once the queue is back.")


def zh(message: str) -> str:
    with override("zh-hans"):
        return gettext(message)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_saving_a_segment_with_the_broker_down_answers_and_the_scheduler_catches_up(staff_client):
    # given a customer in Shanghai and a broker nobody listens on
    ProfileFactory(city="上海")
    form = {"name": "上海客户", "slug": "shanghai", "description": "", "kind": "dynamic", "refresh_every_minutes": "",
            "definition": '{"field": "city", "op": "eq", "value": "上海"}',
            "snapshots-TOTAL_FORMS": "0", "snapshots-INITIAL_FORMS": "0"}

    # when a segment is saved
    with celery_through(closed_port_url()):
        response = staff_client.post(reverse("admin:segments_segment_add"), form, follow=True)

    # then the save stands and the user reads that the work comes later
    assert response.status_code == 200
    segment = Segment.objects.get()
    assert segment.calculated_version is None
    assert zh(QUEUE_DOWN) in response.text

    # and when the queue is back, the scheduler's next round calculates the stale segment
    assert recompute_due_segments() == 1
    segment.refresh_from_db()
    assert (segment.calculated_version, segment.member_count) == (segment.version, 1)
    assert recompute_due_segments() == 0


def test_recompute_now_with_the_broker_down_answers(staff_client):
    # given a calculated segment
    ProfileFactory(city="上海")
    segment = Segment.objects.create(name="上海客户", slug="shanghai", definition={"field": "city", "op": "eq", "value": "上海"})

    # when "recompute now" is asked while the broker is down
    with celery_through(closed_port_url()):
        response = staff_client.post(reverse("admin:segments_segment_changelist"), {
            "action": "recompute_now", "_selected_action": [segment.pk]}, follow=True)

    # then the list answers with the warning
    assert response.status_code == 200 and zh(QUEUE_DOWN) in response.text


def test_refreshing_a_rule_tag_with_the_broker_down_answers(staff_client):
    tag = TagFactory(name="上海", slug="sh", kind="rule", rule_definition={"field": "city", "op": "eq", "value": "上海"})
    with celery_through(closed_port_url()):
        response = staff_client.post(reverse("admin:profiles_tag_changelist"), {
            "action": "refresh_rules_now", "_selected_action": [tag.pk]}, follow=True)
    assert response.status_code == 200 and zh(QUEUE_DOWN) in response.text



def test_retry_now_with_the_broker_down_answers_and_leaves_the_segment_to_its_schedule(staff_client):
    # given a failing segment waiting for its next attempt
    segment = Segment.objects.create(name="上海客户", slug="shanghai", definition={"field": "city", "op": "eq", "value": "上海"})
    Segment.objects.filter(pk=segment.pk).update(failures_in_a_row=1, last_error="boom")

    # when staff retry it now while the broker is down
    with celery_through(closed_port_url()):
        response = staff_client.post(reverse("admin:segments_segment_retry", args=[segment.pk]), follow=True)

    # then the page answers with a warning, and the segment is not left marked as queued
    assert response.status_code == 200
    with override("zh-hans"):
        assert gettext("The task queue cannot be reached right now; “%(name)s” is tried again on its schedule.") % {
            "name": segment.name} in response.text
    segment.refresh_from_db()
    assert segment.queued_at is None and segment.failures_in_a_row == 1
