import csv
import io

from django.contrib.auth.models import Group, Permission

from cdp.actors import Actor
from consent.services import consent_record
from segments.models import Segment
from segments.services import segment_recompute, segment_save
from tests.e2e.conftest import log_in
from tests.factories import ProfileFactory

MARKETER = "营销 marketer"
SYSTEM = Actor.system("e2e")


def test_a_marketer_sees_the_count_per_purpose_and_downloads_usable_phones_for_sms(page, live_server,
                                                                                    django_user_model):
    # given a Shanghai segment: two customers consent to SMS, one to email only
    for name, phone, email, purpose in [("张伟", "+8613800138000", "zhang.wei@example.com", "sms_marketing"),
                                        ("李娜", "+8613900139000", "li.na@example.com", "sms_marketing"),
                                        ("王芳", "+8613700137000", "wang.fang@example.com", "email_marketing")]:
        profile = ProfileFactory(name=name, phone=phone, email=email, city="上海")
        consent_record(profile=profile, purpose_code=purpose, status="granted", source="admin", actor=SYSTEM)
    segment = segment_save(segment=Segment(name="上海客户", slug="shanghai"),
                           definition={"field": "city", "op": "eq", "value": "上海"})
    segment_recompute(segment_id=segment.pk)
    # and a marketer who was granted "export contact data for a consented channel"
    user = django_user_model.objects.create_user("marketer", password="marketer-pw-1", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETER))
    user.user_permissions.add(Permission.objects.get(codename="export_contact_data"))
    log_in(page, live_server, "marketer", "marketer-pw-1")

    # when she opens the export page, it speaks Chinese and asks for a purpose first
    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/export/")
    assert "导出“上海客户”" in page.inner_text("h1")
    assert "选择用途后" in page.inner_text("#export-count")
    email_box = page.locator("input[name=columns][value=email]")
    assert not email_box.is_checked()

    # when she picks email marketing: the email column is ticked and one customer will be exported
    page.select_option("#id_purpose", "email_marketing")
    page.wait_for_function("document.getElementById('export-count').textContent.includes('将导出')")
    assert page.inner_text("#export-count") == "将导出 1 位客户。"
    assert email_box.is_checked()
    assert "“邮箱”列不做掩码导出" in page.inner_text("#export-contact-note")

    # when she picks WeChat marketing, nobody may be exported: the page says why and offers no download
    page.select_option("#id_purpose", "wechat_marketing")
    page.wait_for_function("document.getElementById('export-count').textContent.includes('不能导出')")
    assert page.locator("#export-form input[type=submit]").is_disabled()

    # when she picks SMS marketing and downloads CSV
    page.select_option("#id_purpose", "sms_marketing")
    page.wait_for_function("document.getElementById('export-count').textContent.includes('将导出 2 位客户')")
    assert page.locator("input[name=columns][value=phone]").is_checked()
    page.select_option("#id_file_format", "csv")
    with page.expect_download() as download:
        page.click("#export-form input[type=submit]")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8-sig").read())))

    # then the file holds the two SMS customers with phones an SMS vendor can use, and emails masked
    assert sorted((row["姓名"], row["手机号"]) for row in rows) == [("张伟", "+8613800138000"), ("李娜", "+8613900139000")]
    assert {row["邮箱"] for row in rows} == {"z***@example.com", "l***@example.com"}
