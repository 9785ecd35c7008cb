"""The readable summary beside a data subject's access export: their language, labels
instead of codes, times in the display time zone."""
import datetime
import io
import zipfile

import pytest
from django.urls import reverse
from django.utils import timezone

from cdp.actors import Actor
from consent.requests import data_request_create, data_request_export
from consent.services import consent_record
from tests.factories import EventFactory, ProfileFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
PAID_AT = datetime.datetime(2026, 3, 1, 0, 30, tzinfo=datetime.timezone.utc)  # 08:30 in Shanghai


def access_request(**profile_fields):
    profile = ProfileFactory(name="王芳", gender="female", **profile_fields)
    EventFactory(profile=profile, name="payment", occurred_at=PAID_AT, properties={"method": "alipay"},
                 source="mini_program")
    consent_record(profile=profile, purpose_code="sms_marketing", status="granted", source="web_form", actor=SYSTEM,
                   captured_at=PAID_AT)
    return data_request_create(kind="access", requester="王芳（邮件）", profile=profile, actor=SYSTEM)


def test_a_chinese_customer_reads_a_chinese_summary_in_shanghai_time():
    # given an access request from a customer in China
    request = access_request(country="CN")
    # when staff download the readable summary
    name, content, content_type = data_request_export(request=request, file_format="summary", actor=SYSTEM)
    html = content.decode("utf-8")
    # then it is a page in Chinese, with labels, not codes, and local times, not UTC
    assert name.endswith("-summary.html") and content_type.startswith("text/html")
    for expected in ('lang="zh-hans"', "您的个人信息副本", "王芳", "女", "支付", "支付方式: 支付宝", "小程序",
                     "2026-03-01 08:30", "Asia/Shanghai", "已同意"):
        assert expected in html, expected
    for raw in ("alipay", "female", "T00:30", "granted"):
        assert raw not in html, raw


def test_a_customer_abroad_reads_it_in_english_and_staff_may_choose():
    request = access_request(country="DE")
    html = data_request_export(request=request, file_format="summary", actor=SYSTEM)[1].decode("utf-8")
    for expected in ('lang="en"', "A copy of your personal information", "Payment method: Alipay", "Female",
                     "2026-03-01 08:30", "Granted"):
        assert expected in html, expected
    chinese = data_request_export(request=request, file_format="summary", actor=SYSTEM, language="zh-hans")[1]
    assert "支付宝" in chinese.decode("utf-8")


def test_the_csv_zip_holds_the_summary_beside_the_data():
    request = access_request(country="CN")
    content = data_request_export(request=request, file_format="csv", actor=SYSTEM)[1]
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert {"summary.html", "events.csv", "profile.csv"} <= set(archive.namelist())
        assert "支付宝" in archive.read("summary.html").decode("utf-8")


def test_staff_download_it_from_the_request_page(client, staff_user):
    request = access_request(country="CN")
    client.force_login(staff_user)
    page = client.get(reverse("admin:consent_datasubjectrequest_change", args=[request.pk])).text
    assert 'id="export-summary-zh"' in page and 'id="export-summary-en"' in page
    url = reverse("admin:consent_datasubjectrequest_export", args=[request.pk, "summary"])
    response = client.post(url, {"language": "en"})
    assert response.status_code == 200 and "Payment method: Alipay" in response.content.decode("utf-8")
    assert "summary.html" in response["Content-Disposition"]
