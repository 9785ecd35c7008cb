import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from profiles.models import Profile, ProfileActivity
from segments.models import Segment, SegmentMembership
from segments.services import segment_freeze, segment_from_list, segment_recompute, segment_save
from segments.tasks import recompute_due_segments
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
SHANGHAI = {"field": "city", "op": "eq", "value": "上海"}


def members(segment):
    return set(SegmentMembership.objects.filter(segment=segment).values_list("profile__name", flat=True))


@pytest.fixture
def segment():
    return segment_save(segment=Segment(name="上海客户", slug="shanghai"), definition=SHANGHAI)


def test_recompute_enters_and_exits_customers_with_timeline_entries(segment):
    a, b = ProfileFactory(name="甲", city="上海"), ProfileFactory(name="乙", city="上海")
    ProfileFactory(name="丙", city="北京")
    first = segment_recompute(segment_id=segment.pk)
    assert members(segment) == {"甲", "乙"} and (first.entered, first.exited, first.member_count) == (2, 0, 2)
    Profile.objects.filter(pk=b.pk).update(city="杭州")
    second = segment_recompute(segment_id=segment.pk)
    assert members(segment) == {"甲"} and (second.entered, second.exited) == (0, 1)
    assert list(ProfileActivity.objects.filter(profile=b).order_by("id").values_list("type", flat=True)) == [
        "segment_entered", "segment_exited",
    ]
    assert "上海客户" in ProfileActivity.objects.filter(profile=a).get().summary
    segment.refresh_from_db()
    assert (segment.member_count, segment.calculated_version, segment.snapshots.count()) == (1, 1, 2)


def test_a_calculation_for_an_old_version_writes_nothing(segment):
    ProfileFactory(city="上海")
    segment_save(segment=segment, definition={"field": "city", "op": "eq", "value": "北京"})
    assert segment.version == 2
    assert segment_recompute(segment_id=segment.pk, version=1) is None
    assert not SegmentMembership.objects.exists()
    assert segment_recompute(segment_id=segment.pk, version=2) is not None


def test_saving_the_same_definition_keeps_the_version(segment):
    segment_save(segment=segment, definition=SHANGHAI)
    assert segment.version == 1


def test_an_invalid_definition_is_refused_before_saving():
    with pytest.raises(ValidationError):
        segment_save(segment=Segment(name="坏", slug="bad"), definition={"field": "password", "op": "eq", "value": 1})
    assert not Segment.objects.exists()


def test_a_failed_calculation_is_counted_and_shown(segment):
    Segment.objects.filter(pk=segment.pk).update(definition={"field": "nope", "op": "eq", "value": 1})
    with pytest.raises(ValidationError):
        segment_recompute(segment_id=segment.pk)
    segment.refresh_from_db()
    assert segment.error_count == 1 and "nope" in segment.last_error


def test_merged_or_erased_customers_are_not_members(segment):
    ProfileFactory(city="上海", status="erased")
    segment_recompute(segment_id=segment.pk)
    assert not SegmentMembership.objects.exists()


def test_due_segments_are_recomputed_by_the_scheduler(segment):
    ProfileFactory(city="上海")
    Segment.objects.filter(pk=segment.pk).update(refresh_every_minutes=5,
                                                 last_calculated_at=timezone.now() - datetime.timedelta(minutes=6))
    assert recompute_due_segments() == 1  # eager Celery in tests: recomputed now
    assert SegmentMembership.objects.count() == 1
    assert recompute_due_segments() == 0


def test_admin_saves_a_valid_definition_and_refuses_a_bad_one(client, staff_user, django_capture_on_commit_callbacks):
    client.force_login(staff_user)
    ProfileFactory(city="上海")
    url = reverse("admin:segments_segment_add")
    form = {"name": "上海客户", "slug": "shanghai", "description": "", "kind": "dynamic", "refresh_every_minutes": "",
            "snapshots-TOTAL_FORMS": "0", "snapshots-INITIAL_FORMS": "0"}
    bad = client.post(url, {**form, "definition": '{"field": "password", "op": "eq", "value": 1}'})
    assert bad.status_code == 200 and "password" in bad.text and not Segment.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        good = client.post(url, {**form, "definition": '{"field": "city", "op": "eq", "value": "上海"}'})
    assert good.status_code == 302
    assert Segment.objects.get().member_count == 1


def test_the_profile_page_lists_the_customers_segments(client, staff_user, segment):
    client.force_login(staff_user)
    profile = ProfileFactory(city="上海")
    segment_recompute(segment_id=segment.pk)
    page = client.get(reverse("admin:profiles_profile_change", args=[profile.pk])).text
    assert 'id="segments"' in page and "上海客户" in page


def test_a_tag_used_by_a_segment_cannot_be_deleted(segment):
    from profiles.services.tags import tag_delete
    from tests.factories import TagFactory

    tag = TagFactory(slug="vip")
    segment_save(segment=segment, definition={"all": [SHANGHAI, {"not": {"tag": "vip", "op": "has"}}]})
    with pytest.raises(ValidationError) as error:
        tag_delete(tag=tag)
    assert "上海客户" in error.value.messages[0]


def test_why_shows_met_and_missed_conditions_for_a_customer(client, staff_user, segment):
    client.force_login(staff_user)
    segment_save(segment=segment, definition={"all": [SHANGHAI, {"field": "gender", "op": "eq", "value": "female"}]})
    member = ProfileFactory(city="上海", gender="female", name="芳")
    outsider = ProfileFactory(city="上海", gender="male", name="雷")
    segment_recompute(segment_id=segment.pk)
    url = reverse("admin:segments_segment_why", args=[segment.pk])
    inside = client.get(url, {"profile": str(member.uuid)})
    assert inside.context["explanation"].matched and inside.context["member"]
    outside = client.get(url, {"profile": str(outsider.uuid)})
    tree = outside.context["explanation"]
    assert not tree.matched and [c.matched for c in tree.children] == [True, False]
    assert "城市 = 上海" in outside.text and "性别 = 女" in outside.text  # the label, not the code
    assert "没有客户匹配" in client.get(url, {"profile": "nobody-at-all"}).text
    page = client.get(reverse("admin:profiles_profile_change", args=[member.pk])).text
    assert f"{url}?profile={member.uuid}" in page


def test_freezing_copies_the_current_members_into_a_static_segment(segment):
    ProfileFactory.create_batch(3, city="上海")
    segment_recompute(segment_id=segment.pk)
    frozen = segment_freeze(segment=segment)
    assert frozen.kind == "static" and frozen.member_count == 3
    ProfileFactory(city="上海")
    segment_recompute(segment_id=segment.pk)
    assert segment_recompute(segment_id=frozen.pk) is None  # static lists are not recomputed
    assert SegmentMembership.objects.filter(segment=frozen).count() == 3


def test_a_static_segment_from_a_list_reports_the_lines_that_matched_nobody():
    from cdp.actors import Actor
    from profiles import services

    services.profile_create(actor=Actor.system("t"), source="t", name="甲", phone="13800138000")
    services.profile_create(actor=Actor.system("t"), source="t", name="乙", email="yi@example.com")
    services.profile_create(actor=Actor.system("t"), source="t", name="丙", identities=[("crm_id", "C-9")])
    lines = ["138 0013 8000", "YI@EXAMPLE.COM", "", "C-9", "13900000000", "not a customer"]
    segment, unmatched = segment_from_list(name="活动名单", slug="campaign", lines=lines)
    assert members(segment) == {"甲", "乙", "丙"} and segment.kind == "static"
    assert [(line.number, line.text) for line in unmatched] == [(5, "13900000000"), (6, "not a customer")]


def test_admin_builds_a_static_segment_from_an_uploaded_gb18030_file(client, staff_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from cdp.actors import Actor
    from profiles import services

    client.force_login(staff_user)
    services.profile_create(actor=Actor.system("t"), source="t", name="甲", phone="13800138000")
    upload = SimpleUploadedFile("名单.csv", "手机号\n13800138000\n陌生号码\n".encode("gb18030"))
    response = client.post(reverse("admin:segments_segment_from_list"),
                           {"name": "名单", "slug": "list-1", "lines": "", "file": upload})
    assert response.status_code == 200 and response.context["segment"].member_count == 1
    assert [line.text for line in response.context["unmatched"]] == ["手机号", "陌生号码"]
    again = client.post(reverse("admin:segments_segment_from_list"), {"name": "x", "slug": "list-1", "lines": "1"})
    assert "slug" in again.context["form"].errors


def test_breakdown_and_overlap_of_members(client, staff_user, segment):
    import datetime as dt

    from segments.selectors import segment_breakdown, segment_overlaps

    today = timezone.localdate()
    ProfileFactory(city="上海", gender="female", birth_date=today.replace(year=today.year - 30))
    ProfileFactory(city="上海", gender="female", birth_date=None)
    ProfileFactory(city="上海", gender="male", birth_date=today.replace(year=today.year - 20) - dt.timedelta(days=1))
    segment_recompute(segment_id=segment.pk)
    women = segment_save(segment=Segment(name="女性", slug="women"), definition={"field": "gender", "op": "eq", "value": "female"})
    segment_recompute(segment_id=women.pk)
    breakdown = segment_breakdown(segment, today=today)
    assert dict(breakdown["gender"]) == {"女": 2, "男": 1}
    assert dict(breakdown["age"]) == {"未知": 1, "18–24": 1, "25–34": 1}
    assert breakdown["city"] == [("上海", 3)]
    assert segment_overlaps(segment) == [("女性", women.pk, 2)]
    client.force_login(staff_user)
    page = client.get(reverse("admin:segments_segment_change", args=[segment.pk])).text
    assert 'id="breakdown"' in page and "女性" in page


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_and_calculations_write_only_the_newest_version(monkeypatch):
    """Two connections (threads): a calculation holds its segment while it runs, a save
    waits for it and bumps the version, and a calculation for a version that is no longer
    the newest writes nothing, even when it was queued while the newer one ran."""
    import threading

    from django.db import connection

    import segments.services as services

    ProfileFactory(name="沪", city="上海")
    ProfileFactory(name="京", city="北京")
    segment = segment_save(segment=Segment(name="客户", slug="racing"), definition=SHANGHAI)
    inside, proceed = threading.Event(), threading.Event()
    compile_condition = services.compile_condition

    def pausing_compile(node, now):  # the calculation, holding its lock, waits for the test
        if threading.current_thread().name == "paused":
            inside.set()
            assert proceed.wait(10)
        return compile_condition(node, now)

    monkeypatch.setattr(services, "compile_condition", pausing_compile)
    results = {}

    def run(name, fn, **kwargs):
        def target():
            try:
                results[name] = fn(**kwargs)
            finally:
                connection.close()
        thread = threading.Thread(target=target, name=name)
        thread.start()
        return thread

    def waits(thread) -> bool:
        thread.join(0.5)
        return thread.is_alive()

    # A save during a calculation waits for it, then makes it obsolete.
    calculating = run("paused", segment_recompute, segment_id=segment.pk, version=1)
    assert inside.wait(10)
    saving = run("save", segment_save, segment=Segment.objects.get(pk=segment.pk),
                 definition={"field": "city", "op": "eq", "value": "北京"})
    assert waits(saving)
    proceed.set()
    calculating.join(10)
    saving.join(10)
    assert results["paused"].version == 1 and results["save"].version == 2
    assert members(segment) == {"沪"}  # written while version 1 was the newest

    # The newest calculation runs; a stale one queued meanwhile waits, then writes nothing.
    inside.clear()
    proceed.clear()
    newest = run("paused", segment_recompute, segment_id=segment.pk, version=2)
    assert inside.wait(10)
    stale = run("stale", segment_recompute, segment_id=segment.pk, version=1)
    assert waits(stale)
    proceed.set()
    newest.join(10)
    stale.join(10)
    assert results["stale"] is None and results["paused"].version == 2
    assert members(segment) == {"京"}
    segment.refresh_from_db()
    assert (segment.version, segment.calculated_version, segment.member_count) == (2, 2, 1)
    assert sorted(segment.snapshots.values_list("version", flat=True)) == [1, 2]
