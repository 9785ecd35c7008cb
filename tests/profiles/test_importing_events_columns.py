"""An events file's columns that match no field are kept as event properties (a registered
property by its name or label: 品类 → category, which the events' category column is made
from), shown in the mapping and changeable; the preview names every ignored column."""
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from cdp.actors import Actor
from profiles.importing.jobs import import_job_create
from profiles.importing.mapping import guess_mapping
from profiles.importing.pipeline import import_run
from profiles.models import Event, ImportJob
from profiles.models.events import event_property_path
from tests.factories import IdentityFactory, ProfileFactory

ACTOR = Actor.system("tests")
pytestmark = pytest.mark.django_db

ORDERS = ("手机号,姓名,事件,下单时间,实付金额,订单号,category,渠道,备注\n"
          "13800138000,张伟,order,2024-03-01 12:30:00,199.00,SO-1,shoes,小程序,加急\n"
          "13800138000,张伟,order,2024-03-02 12:30:00,99.00,SO-2,skincare,,\n")


@pytest.fixture(autouse=True)
def _customer():
    profile = ProfileFactory(phone="+8613800138000")
    IdentityFactory(profile=profile, kind_id="phone", value="+8613800138000")
    return profile


def write(tmp_path, text=ORDERS, name="orders.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_unmatched_columns_of_an_events_file_become_properties_by_default():
    mapping = guess_mapping("events", ["手机号", "姓名", "事件", "下单时间", "category", "品类", "渠道", "备注", "Coupon"])
    assert mapping == {"手机号": "phone", "姓名": "", "事件": "event_name", "下单时间": "occurred_at",
                       "category": "property:category",
                       "品类": "property",  # category is taken by the column before: this one keeps its own name
                       "渠道": "property:channel", "备注": "property", "Coupon": "property"}
    # a customer file's unknown columns stay ignored until mapped (they are not events' properties)
    assert guess_mapping("profiles", ["手机", "备注"])["备注"] == ""


def test_the_category_column_lands_in_the_events_category(tmp_path):
    # given an order file whose category column the importer did not know before
    job, _table = import_job_create(path=str(write(tmp_path)), name="orders.csv", kind="events", actor=ACTOR)
    # when it is imported with the mapping it guessed
    import_run(job)
    # then nothing was dropped silently: the category is the event's category, segments find it
    assert (job.created, job.failed) == (2, 0)
    first = Event.objects.get(external_id="SO-1")
    assert first.properties == {"category": "shoes", "channel": "小程序", "备注": "加急"}
    assert first.category == "shoes"
    assert Event.objects.filter(**{event_property_path("category", "shoes"): "shoes"}).count() == 1
    # and the personal name column was ignored, not copied into events
    assert "张伟" not in str(first.properties)


def test_a_property_column_can_be_ignored_or_renamed_in_the_mapping(tmp_path):
    job, _table = import_job_create(path=str(write(tmp_path)), name="orders.csv", kind="events", actor=ACTOR)
    job.mapping.update({"备注": "", "渠道": "property"})
    job.save()
    import_run(job)
    assert Event.objects.get(external_id="SO-1").properties == {"category": "shoes", "渠道": "小程序"}


@pytest.fixture
def staff_client(client, staff_user, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    client.force_login(staff_user)
    return client


def test_the_mapping_and_the_preview_show_properties_and_ignored_columns(staff_client):
    # given an order file uploaded in the admin
    staff_client.post(reverse("admin:profiles_importjob_upload"), {
        "file": SimpleUploadedFile("orders.csv", ORDERS.encode()), "kind": "events", "source": "crm"})
    job = ImportJob.objects.get()
    # then the mapping screen offers the registered properties, with category chosen for its column
    page = staff_client.get(reverse("admin:profiles_importjob_mapping", args=[job.pk])).content.decode()
    assert 'value="property:category" selected' in page
    # when it is previewed
    staff_client.post(reverse("admin:profiles_importjob_mapping", args=[job.pk]), {
        **{f"column-{i}": job.mapping[h] for i, h in enumerate(job.headers)}, "precedence": "phone",
        "error_policy": "skip"})
    job.refresh_from_db()
    assert job.dry_run and job.created == 2
    detail = staff_client.get(reverse("admin:profiles_importjob_change", args=[job.pk])).content.decode()
    # then the ignored column is named as ignored, and the kept ones as properties
    ignored = detail.split('id="import-ignored"')[1].split("</p>")[0]
    assert "姓名" in ignored and "备注" not in ignored
    assert "备注 →" in detail and "category →" in detail


class _Out:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_the_command_line_shows_what_each_column_becomes(tmp_path):
    out = _Out()
    call_command("import_file", str(write(tmp_path)), "--kind", "events", stdout=out, stderr=_Out())
    assert "备注 → property" in out.text and "category → property:category" in out.text
    assert "姓名 → （忽略）" in out.text
    assert Event.objects.count() == 2
