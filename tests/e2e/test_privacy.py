import json

from django.contrib.auth.models import Group

from cdp.actors import Actor
from consent.models import ConsentRecord, DataSubjectRequest
from profiles import services
from profiles.models import Profile, ProfileStatus
from tests.e2e.conftest import log_in
from tests.factories import EventFactory

PRIVACY_OFFICER = "隐私专员 privacy officer"


def test_privacy_officer_records_withdraws_exports_erases_and_sees_a_reimport_refused(page, live_server,
                                                                                     django_user_model, tmp_path):
    # given a customer with a phone, an email, a CRM id and some behaviour
    na = services.profile_create(actor=Actor.system("e2e"), source="admin", name="李娜", phone="13900139000",
                                 email="li.na@example.com", city="杭州", identities=[("crm_id", "CRM-7788")])
    for _ in range(3):
        EventFactory(profile=na, name="order", amount=199)
    officer = django_user_model.objects.create_user("officer", password="officer-pw-1", is_staff=True)
    officer.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
    log_in(page, live_server, "officer", "officer-pw-1")
    profile_url = f"{live_server.url}/admin/profiles/profile/{na.pk}/change/"

    # when the officer records an SMS marketing grant from a paper form
    page.goto(profile_url)
    page.click("#consent tr[data-purpose=sms_marketing] .consent-grant")
    page.select_option("#id_source", "paper")
    page.select_option("#id_evidence_channel", "sms")
    page.fill("#id_evidence_reference", "纸质同意书 No.0042")
    page.click("#consent-form input[type=submit]")
    # then the page shows it granted
    row = page.locator("#consent tr[data-purpose=sms_marketing]")
    assert "consent-allowed" in row.get_attribute("class")

    # when she withdraws it, it is blocked and both entries are in the history
    row.locator(".consent-withdraw").click()
    page.click("#consent-form input[type=submit]")
    assert "consent-blocked" in page.locator("#consent tr[data-purpose=sms_marketing]").get_attribute("class")
    page.click("#consent-history summary")
    history = page.inner_text("#consent-history")
    assert "纸质同意书 No.0042" in history and history.count("短信营销") == 2
    assert ConsentRecord.objects.filter(profile=na).count() == 2

    # when the person asks for their data, the officer downloads it as JSON
    page.click("#new-data-request")
    page.select_option("#id_kind", "access")
    page.fill("#id_requester", "李娜（电话来访）")
    page.click("input[name=_continue]")
    with page.expect_download() as download:
        page.click("#export-json")
    exported = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert exported["format"] == "cdp-subject-export" and exported["profile"]["name"] == "李娜"
    assert len(exported["consent_history"]) == 2

    # when the person asks to be erased, the officer confirms by typing the name
    page.goto(profile_url)
    page.click("#new-data-request")
    page.select_option("#id_kind", "erasure")
    page.fill("#id_requester", "李娜（邮件）")
    page.click("input[name=_continue]")
    page.click(".dsr-tools a.danger")
    page.fill("#id_confirmation", "李娜")
    page.click("#erase-form input[type=submit]")
    # then the profile is anonymised and the request completed
    na.refresh_from_db()
    assert na.status == ProfileStatus.ERASED and na.name == "" and na.phone == ""
    assert DataSubjectRequest.objects.get(kind="erasure").status == DataSubjectRequest.Status.COMPLETED
    assert not Profile.objects.filter(phone="+8613900139000").exists()

    # when the old CRM file with her row is imported again, the preview refuses that row
    crm_file = tmp_path / "crm.csv"
    crm_file.write_text("姓名,手机,邮箱\n李娜,139 0013 9000,li.na@example.com\n王强,13700137000,\n", encoding="utf-8")
    page.goto(f"{live_server.url}/admin/profiles/importjob/")
    page.click("#content-main .object-tools a.addlink")
    page.set_input_files("input[name=file]", str(crm_file))
    page.click("#import-upload input[type=submit]")
    page.wait_for_selector("#mapping-table")
    page.click("#import-mapping input[name=preview]")
    page.wait_for_selector("#import-counts")
    assert page.inner_text("#import-counts .count-failed") == "1"
    assert page.inner_text("#import-counts .count-created") == "1"
    assert "13900139000" in page.inner_text("#import-errors")
    assert not Profile.objects.filter(phone="+8613900139000").exists()


def test_members_page_masks_phones_and_reveals_one_with_an_audited_click(page, live_server, django_user_model):
    from cdp.models import AuditLog
    from segments.models import Segment
    from segments.services import segment_recompute, segment_save

    # given a segment of two customers in 杭州 and a privacy officer, who may see personal data
    lei = services.profile_create(actor=Actor.system("e2e"), source="admin", name="李雷", phone="13900139001", city="杭州")
    services.profile_create(actor=Actor.system("e2e"), source="admin", name="韩梅梅", phone="13900139002", city="杭州")
    segment = segment_save(segment=Segment(name="杭州客户", slug="hangzhou"),
                           definition={"field": "city", "op": "eq", "value": "杭州"})
    segment_recompute(segment_id=segment.pk)
    officer = django_user_model.objects.create_user("officer", password="officer-pw-1", is_staff=True)
    officer.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
    log_in(page, live_server, "officer", "officer-pw-1")

    # when she opens the members page
    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/members/")
    # then it speaks Chinese and every phone is masked
    assert "成员" in page.inner_text("#content")
    table = page.inner_text("#members")
    assert "139****9001" in table and "139****9002" in table and "13900139001" not in table
    assert not AuditLog.objects.filter(action="reveal_personal_data").exists()

    # when she reveals 李雷's phone
    row = page.locator("#members tr.member", has_text="李雷")
    row.get_by_role("button", name="查看完整").click()
    # then his full phone shows, the other stays masked, and the reveal is in the audit log
    page.wait_for_function("document.querySelector('#members').innerText.includes('+8613900139001')")
    table = page.inner_text("#members")
    assert "139****9002" in table and "+8613900139002" not in table
    entry = AuditLog.objects.get(action="reveal_personal_data")
    assert (entry.actor_user, entry.target) == (officer, str(lei.uuid))


def test_a_requesters_contact_is_masked_until_the_officer_reveals_it(page, live_server, django_user_model):
    from cdp.models import AuditLog
    from consent.requests import data_request_create

    # given an access request whose answer goes to an email, and a privacy officer
    fang = services.profile_create(actor=Actor.system("e2e"), source="admin", name="王芳", city="上海")
    dsr = data_request_create(kind="access", requester="王芳", profile=fang, contact="wang.fang@example.com",
                              actor=Actor.system("e2e"))
    officer = django_user_model.objects.create_user("officer", password="officer-pw-1", is_staff=True)
    officer.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
    log_in(page, live_server, "officer", "officer-pw-1")
    # when she opens the request, the contact is masked
    page.goto(f"{live_server.url}/admin/consent/datasubjectrequest/{dsr.pk}/change/")
    assert page.inner_text("#dsr-contact") == "w***@example.com"
    # when she reveals it, the full address shows and the reveal is audited
    page.get_by_role("button", name="查看完整").click()
    page.wait_for_function("document.getElementById('dsr-contact').innerText.includes('wang.fang@')")
    assert AuditLog.objects.get(action="reveal_personal_data").details["fields"] == ["contact"]
