from cdp.actors import Actor
from profiles.models import Profile, ProfileTag, Tag, TagCategory
from profiles.services.tags import tag_assign
from tests.e2e.conftest import log_in
from tests.factories import ProfileFactory, TagFactory


def test_bulk_tagging_every_filtered_customer_then_merging_duplicate_tags(page, live_server, admin_login):
    # given 120 women and some men, a canonical tag and a duplicate of it
    interest = TagCategory.objects.get(code="interest")
    canonical = TagFactory(name="喜欢运动鞋", slug="sneaker-lover", category=interest)
    duplicate = TagFactory(name="运动鞋控", slug="sneaker-fan", category=interest)
    ProfileFactory.create_batch(120, gender="female")
    men = ProfileFactory.create_batch(5, gender="male")
    tag_assign(tag=duplicate, profiles=Profile.objects.filter(pk__in=[m.pk for m in men]), source="manual",
               actor=Actor.system("e2e"))
    log_in(page, live_server, *admin_login)

    # when staff filter to women, select all of them (more than one page) and add the tag
    page.goto(f"{live_server.url}/admin/profiles/profile/?gender__exact=female")
    page.check("#action-toggle")
    assert "120" in page.inner_text(".actions .question")  # "选中所有的 120 个 客户"
    page.click(".actions .question a")
    page.select_option("select[name=action]", "add_tag")
    page.select_option("select[name=tag]", label="喜欢运动鞋")
    page.click("button[name=index]")
    # then a confirmation page states the exact number first
    assert "将为 120 位客户添加标签“喜欢运动鞋”" in page.inner_text("#bulk-tag-will-change")
    page.click("#bulk-tag-confirm")
    # then all 120 have it, and the page says so in Chinese
    page.wait_for_selector("text=已为 120 位客户添加标签“喜欢运动鞋”。")
    assert ProfileTag.objects.filter(tag=canonical).count() == 120

    # when staff merge the duplicate tag into the canonical one from the tag list
    page.goto(f"{live_server.url}/admin/profiles/tag/")
    page.check(f"input[name=_selected_action][value='{duplicate.pk}']")
    page.select_option("select[name=action]", "merge_tags")
    page.select_option("select[name=target]", label="喜欢运动鞋")
    page.click("button[name=index]")
    page.wait_for_selector("text=已合并到“喜欢运动鞋”：转移了 5 位客户。")
    # then every customer holds the canonical tag once, and the duplicate is retired
    assert ProfileTag.objects.filter(tag=canonical).count() == 125
    assert not Tag.objects.get(pk=duplicate.pk).is_active

    # and the taxonomy tree shows the count
    page.goto(f"{live_server.url}/admin/profiles/tagcategory/")
    assert "兴趣标签" in page.content()
    assert page.locator("#tag-tree a[href$='?tags=sneaker-lover']").inner_text() == "125"
