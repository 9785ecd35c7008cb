"""A first import of a CRM export whose tags are not in the taxonomy yet, in the browser and in
Chinese: the preview warns about each unknown tag (with the rows naming it) while every
person would be created; the staff member chooses to create the missing tags under a
category, previews again and imports."""
from profiles.models import Profile, ProfileTag, Tag, TagCategory, TagKind
from tests.e2e.conftest import log_in
from tests.factories import TagFactory

CRM = ("客户编号,姓名,手机,标签\n"
       "C1,张伟,13800138000,高价值、美妆\n"
       "C2,李娜,13900139000,高价值；VIP\n"
       "C3,王芳,13700137000,美妆|高价值\n"
       "C4,刘洋,13600136000,VIP\n")


def test_unknown_tags_are_warned_in_the_preview_then_created_under_a_chosen_category(page, live_server, admin_login,
                                                                                      settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    path = tmp_path / "crm_tags.csv"
    path.write_text(CRM, encoding="utf-8")
    # given a taxonomy that knows VIP only, and a staff member in the admin
    TagFactory(name="VIP", slug="vip")
    log_in(page, live_server, *admin_login)

    # when they upload the CRM export
    page.goto(f"{live_server.url}/admin/profiles/importjob/new/")
    page.set_input_files("input[name=file]", str(path))
    page.click("#import-upload input[type=submit]")

    # then the mapping screen reads the tags column, and offers what to do with tags it does not know
    page.wait_for_selector("#mapping-table")
    assert page.locator("select[data-header='标签']").input_value() == "tags"
    assert "标签体系中还没有的标签" in page.inner_text("#import-mapping")
    assert page.locator("#id_new_tags_category").input_value() == ""

    # when they preview with the default (leave unknown tags out)
    page.click("#import-mapping input[name=preview]")

    # then every person would be created, and the preview warns about each unknown tag with its rows
    page.wait_for_selector("#import-counts")
    assert page.inner_text("#import-counts .count-created") == "4"
    assert page.inner_text("#import-counts .count-failed") == "0"
    note = page.inner_text("#import-unknown-tags-note")
    assert "2 个标签不在标签体系中" in note and "3 行用到" in note and "客户照常导入" in note
    rows = page.locator("#import-unknown-tags tbody tr")
    assert rows.count() == 2
    assert [rows.nth(i).locator(".unknown-tag-name").inner_text() for i in range(2)] == ["高价值", "美妆"]
    assert [rows.nth(i).locator(".unknown-tag-rows").inner_text() for i in range(2)] == ["3", "2"]
    assert "不在标签体系中，因此未添加" in page.inner_text("#content-main")  # the rows' warnings
    assert not Profile.objects.exists() and not Tag.objects.filter(name="高价值").exists()

    # when they go back to the mapping and choose to create the missing tags under 价值标签
    page.click("#change-mapping")
    page.wait_for_selector("#mapping-table")
    value = TagCategory.objects.get(code="value")
    option = page.locator(f"#id_new_tags_category option[value='{value.pk}']")
    assert "在 价值标签 下新建为手动标签" in option.inner_text()
    page.select_option("#id_new_tags_category", str(value.pk))
    page.click("#import-mapping input[name=preview]")

    # then the preview says the two tags would be created there, and still writes nothing
    page.wait_for_selector("#import-unknown-tags-note")
    assert "将在 价值标签 下新建 2 个" in page.inner_text("#import-unknown-tags-note")
    assert "新建的标签" in page.inner_text("#content-main")
    assert not Tag.objects.filter(name__in=["高价值", "美妆"]).exists() and not Profile.objects.exists()

    # when they import
    page.click("#run-import")
    page.wait_for_selector("#undo-import")

    # then every person is imported with their tags, the new ones manual tags of 价值标签
    assert Profile.objects.count() == 4
    assert sorted(Tag.objects.filter(category=value).values_list("name", "kind")) == [
        ("美妆", TagKind.MANUAL), ("高价值", TagKind.MANUAL)]
    zhang = Profile.objects.get(name="张伟")
    assert set(ProfileTag.objects.filter(profile=zhang).values_list("tag__name", flat=True)) == {"高价值", "美妆"}
    assert "已在 价值标签 下新建 2 个" in page.inner_text("#import-unknown-tags-note")
