"""A large import started while the broker is down: the page answers, says so, and the
job goes back to where it was instead of staying "queued" forever."""
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import override_settings
from django.urls import reverse

from profiles.models import ImportJob, ImportStatus

from .brokers import celery_through, closed_port_url
from .test_queueing import staff_client, zh  # noqa: F401 (fixture)

DATA = Path(__file__).parents[1] / "profiles" / "data"
pytestmark = pytest.mark.usefixtures("seeded_transactional_db")  # commit callbacks run as in production

IMPORT_QUEUE_DOWN = ("The task queue cannot be reached right now, so the file has not started; it is kept. "
                     "Try again in a few minutes.")



def test_a_large_import_with_the_broker_down_is_put_back_to_run_again(staff_client, settings, tmp_path):
    # given an uploaded, previewed file too large to run in the request
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with open(DATA / "crm_gb18030.csv", "rb") as file:
        staff_client.post(reverse("admin:profiles_importjob_upload"), {
            "file": file, "kind": "profiles", "source": "crm", "mode": "create_or_update", "error_policy": "skip"})
    job = ImportJob.objects.get()
    mapping = {f"column-{i}": job.mapping[h] for i, h in enumerate(job.headers)}
    staff_client.post(reverse("admin:profiles_importjob_mapping", args=[job.pk]), {**mapping, "precedence": "crm_id"})
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED

    # when it is run while the broker is down
    with override_settings(CDP_IMPORT_INLINE_BYTES=10), celery_through(closed_port_url()):
        response = staff_client.post(reverse("admin:profiles_importjob_run", args=[job.pk]), follow=True)

    # then the page answers, says so, and the job can be run again (not "queued" forever)
    assert response.status_code == 200 and zh(IMPORT_QUEUE_DOWN) in response.text
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED and not job.is_running
    assert default_storage.exists(job.file_path)  # the upload is kept
