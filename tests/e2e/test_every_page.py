"""A screenshot review of every admin page, in Chinese, at 1440 px.

Given a small demo dataset (the demo generator plus a DSAR, an erased and a merged
customer, an import, a static segment, a campaign with a webhook destination, coupons,
a partner key, a saved analysis), an administrator in a Chinese browser visits every
page the admin index leads to — each changelist, add form and one change form per
model — and the custom pages (dashboard, profile page (erased and merged too), segment builder,
members, why, export, analyses, import pages, campaign, a finished campaign's result, the
campaigns overview, destinations, coupon pools (uploaded and generated: upload, top-up),
DSAR answers and erasure, consent, audit log…). Each page must answer without a server error or a script
error, show no English UI words in its content, draw no button in the browser's own grey,
nor a badge too faint to read, nor a choice broken over two lines, and not overflow 1440 px sideways.

Screenshots (full page) go to CDP_E2E_SCREENSHOTS when it is set, else to pytest's
tmp dir; they are for a person to look at, never committed.
"""
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib import admin
from django.utils import translation

from tests.e2e.conftest import log_in

# UI words that must not reach a Chinese screen. Codes, e-mail addresses, URLs, event
# names and the like are legitimately English; they are not in this list.
ENGLISH_UI_WORDS = {
    "Add", "Save", "Delete", "Search", "Change", "History", "Filter", "Filters", "Action", "Actions", "Go",
    "Yes", "No", "Unknown", "None", "Today", "Now", "All", "Any", "Show", "Hide", "Cancel", "Close", "Back",
    "Next", "Previous", "Submit", "Upload", "Download", "Export", "Import", "Preview", "Refresh", "Run",
    "Edit", "View", "Remove", "Select", "Clear", "Apply", "Reset", "Loading", "Error", "Warning", "Status",
    "Name", "Date", "Created", "Updated", "Total", "Count", "Customers", "Customer", "Members", "Segment",
    "Segments", "Tags", "Tag", "Consent", "Purpose", "Campaign", "Campaigns", "Results", "results", "Page",
    "of", "the", "and", "or", "is", "are", "was", "not", "with", "for", "from", "this", "that", "you", "your",
    "items", "selected", "ago", "days", "weeks", "minutes", "hours",
}
# Where English is content, not UI: codes, raw values, the data staff typed.
SKIP_SELECTOR = ("code, pre, kbd, samp, textarea, input, select, script, style, [translate=no], [lang=en], "
                 # the English columns and fields of bilingual rows (purpose names, notice texts)
                 "[class$='_en'], [class*='_en '], "
                 # other ways to say a phrase, in any language (named thresholds, tags)
                 ".field-synonyms")


def _english_model_names() -> set[str]:
    names = set()
    with translation.override("en"):
        for model in admin.site._registry:
            for name in (model._meta.verbose_name, model._meta.verbose_name_plural):
                names.add(str(name))
                names.add(str(name).capitalize())
    return {n for n in names if not re.fullmatch(r"[A-Z]{2,5}s?", n)}  # "RFM", "DSAR" stay as they are


FIND_TEXT = """(args) => {
    const [skip] = args;
    const root = document.querySelector('#content') || document.body;
    const out = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    let node;
    while ((node = walker.nextNode())) {
        const el = node.parentElement;
        if (!el || el.closest(skip)) continue;
        const style = getComputedStyle(el);
        if (style.display === 'none' || style.visibility === 'hidden' || el.closest('[hidden]')) continue;
        if (!el.getClientRects().length) continue;
        const text = node.textContent.trim();
        if (text) out.push(text);
    }
    for (const el of root.querySelectorAll('input[type=submit], input[type=button], button, [placeholder]')) {
        if (el.offsetParent === null) continue;
        if (el.matches('input[type=submit], input[type=button]') && el.value) out.push(el.value);
        if (el.getAttribute('placeholder')) out.push(el.getAttribute('placeholder'));
    }
    return out;
}"""

# Pages that fetch part of themselves after loading (builder preview, timeline, counts…).
FETCHES_AFTER_LOAD = re.compile(r"^/admin/$|/segments/|/profiles/profile/|/campaigns/campaign/\d|/importjob/\d")

# Buttons the browser draws itself (grey, outset border) next to the admin's styled ones.
UNSTYLED_BUTTONS = """() => [...document.querySelectorAll(
        '#content button, #content input[type=submit], #content input[type=button]')]
    .filter((b) => b.offsetParent !== null)
    .filter((b) => getComputedStyle(b).borderTopStyle === 'outset')
    .map((b) => (b.innerText || b.value || b.title).trim().slice(0, 40))"""

# Coloured badges (a background set on the element itself) whose text is hard to read on
# it: WCAG contrast below 3:1.
FAINT_BADGES = """() => {
    const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = (c) => { const v = rgb(c).map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
                         return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
    return [...document.querySelectorAll('#content [style*=background]')]
        .filter((el) => el.offsetParent !== null && el.innerText.trim())
        .filter((el) => {
            const style = getComputedStyle(el);
            if (style.backgroundColor === 'rgba(0, 0, 0, 0)') return false;
            const [a, b] = [lum(style.color), lum(style.backgroundColor)].sort((x, y) => y - x);
            return (a + 0.05) / (b + 0.05) < 3;
        })
        .map((el) => el.innerText.trim().slice(0, 40));
}"""

# A condition in the segment builder drawn wider than the group around it.
STICKING_OUT = """() => [...document.querySelectorAll('#content .cb-node .cb-node')]
    .filter((node) => node.getBoundingClientRect().right > node.parentElement.closest('.cb-node').getBoundingClientRect().right + 1)
    .map((node) => node.dataset.path || node.className)"""

# A choice's label broken over two lines ("跨境传输（欧盟总部）" above "(cross_border_eu)").
BROKEN_CHOICES = """() => [...document.querySelectorAll('#content label')]
    .filter((label) => label.querySelector('input[type=checkbox], input[type=radio]') && label.offsetParent !== null)
    .filter((label) => {
        const style = getComputedStyle(label);
        const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.4;
        return label.getClientRects().length > 1 || label.getBoundingClientRect().height > line * 1.6;
    })
    .map((label) => label.innerText.trim().slice(0, 40))"""

# English in a text that is data, not UI: e-mail addresses, URLs, identifiers, file names.
DATA_LIKE = re.compile(r"\{.*\}|\[.*\]|\S+@\S+|https?://\S+|\b[\w.-]+\.(csv|xlsx|txt|json|zip)\b|\b\w+:\w+\b"
                       r"|\b\w*[_\d]\w*\b|\+\d[\d ]+")
# Known, reported to the owner of those templates (imports): the job's source shows its code.
ELSEWHERE: set[tuple[str, str]] = set()


def untranslated(texts: list[str], words: set[str]) -> list[str]:
    found = []
    for text in texts:
        cleaned = DATA_LIKE.sub(" ", text)
        if not re.search(r"[A-Za-z]", cleaned):
            continue
        tokens = set(re.findall(r"[A-Za-z][A-Za-z'-]*", cleaned))
        # a phrase of two or more English words, or a single UI word / model name
        phrase = re.search(r"\b[A-Za-z]{2,}\s+[a-z]{2,}\s+[a-z]{2,}\b", cleaned)
        if tokens & words or phrase or cleaned.strip() in words:
            found.append(text[:120])
    return found


@pytest.fixture
def wide_page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("CDP_E2E_SCREENSHOTS") or tmp_path / "every-page")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def demo_dataset(user, media_root: Path) -> dict:
    """The demo generator at a small size, plus one of everything it does not make."""
    import io

    from django.core.management import call_command
    from campaigns.models import CouponPool, Coupon, Destination
    from cdp.actors import Actor
    from cdp.api.keys import api_key_create
    from cdp.partners import partner_get_or_create
    from consent.requests import data_request_create, profile_erase
    from consent.services import do_not_contact_add
    from profiles.importing.files import upload_dir
    from profiles.importing.jobs import import_job_create
    from profiles.importing.pipeline import import_run
    from profiles.models import Profile, TagCategory
    from profiles.services.merge import profiles_merge
    from segments.models import SavedAnalysis, Segment
    from tests.campaigns.conftest import SECRET, campaign_for, consenting, segment_of

    call_command("generate_demo", profiles=40, events_per_profile=8, seed=1, stdout=io.StringIO())
    actor = Actor.staff(user)
    people = list(Profile.objects.filter(status="active").order_by("pk")[:6])
    dsr = data_request_create(kind="access", requester=people[0].name, profile=people[0],
                              contact="someone@example.com", actor=actor)
    erase_request = data_request_create(kind="erasure", requester=people[1].name, profile=people[1], actor=actor)
    profile_erase(profile=people[1], request=erase_request, actor=actor)
    open_erasure = data_request_create(kind="erasure", requester=people[5].name, profile=people[5], actor=actor)
    profiles_merge(survivor=people[2], merged=people[3], actor=actor, reason="同一个人")
    dnc = do_not_contact_add(profile=people[4], channel="sms", reason="complaint", actor=actor)

    def upload(name):
        path = f"{upload_dir()}/{name}"
        with open(path, "w", encoding="utf-8") as file:
            file.write("crm_id,name,phone,city\n" + "".join(f"I{n},导入客户{n},+86137{n:08d},杭州\n" for n in range(5))
                       + "I9,坏行,12,杭州\n")
        return import_job_create(path=path, name=name, actor=actor)[0]

    job = upload("客户.csv")
    import_run(job, actor=actor)
    draft = upload("新客户.csv")

    static = segment_of(consenting(n=3, city="上海"), slug="spring-list")
    static.name, static.member_count = "春季名单", 3
    static.save()
    destination = Destination.objects.create(name="合作方推送", kind="webhook", config={"url": "http://127.0.0.1:9/hook"},
                                             secret=SECRET)
    campaign = campaign_for(static, destination, name="春季促销")
    pool = CouponPool.objects.create(name="满100减20")
    Coupon.objects.bulk_create([Coupon(pool=pool, code=f"SPRING{n:02d}") for n in range(3)])
    finished, generated = finished_campaign_with_coupons(
        destination, list(Profile.objects.filter(status="active").order_by("pk")[6:12]))
    partner, _created = partner_get_or_create(name="天猫旗舰店")
    api_key_create(partner=partner, name="订单同步", scopes=["events:write"])
    analysis = SavedAnalysis.objects.create(name="开户漏斗", kind="funnel", owner=user,
                                            parameters={"steps": [{"event": "product_view"}, {"event": "add_to_cart"},
                                                                  {"event": "order"}], "window_days": 7, "days": 90})
    dynamic = Segment.objects.exclude(kind=Segment.Kind.STATIC).order_by("pk").first()
    member = dynamic.memberships.select_related("profile").first() if dynamic else None
    return {"profile": people[0], "erased": people[1], "merged": people[3], "dsr": dsr, "erasure": erase_request,
            "dnc": dnc, "other": people[5], "open_erasure": open_erasure, "job": job, "draft": draft, "static": static, "dynamic": dynamic,
            "member": member.profile if member else people[0], "campaign": campaign, "destination": destination,
            "finished": finished, "generated_pool": generated, "pool": pool, "analysis": analysis, "category": TagCategory.objects.get(code="interest")}


def finished_campaign_with_coupons(destination, people):
    """A finished campaign with a holdout, clicks, orders and coupons of a generated pool
    (one redeemed), and its result computed while the attribution window is open."""
    import datetime
    from decimal import Decimal

    from django.utils import timezone

    from campaigns.models import Campaign, Coupon, CouponPool, Delivery, Variant
    from campaigns.results import result_refresh
    from campaigns.services.coupons import coupons_generate
    from consent.models import Purpose
    from profiles.models import Event

    send = timezone.now() - datetime.timedelta(days=2)
    campaign = Campaign.objects.create(name="会员复购券", purpose=Purpose.objects.get(code="sms_marketing"),
                                       destination=destination, audience_kind="trigger_event", trigger_event="order",
                                       goal_event="order", attribution_days=7, holdout_percent=50,
                                       status=Campaign.Status.FINISHED, launched_at=send, finished_at=send)
    pool = CouponPool.objects.create(name="复购券（生成）", source=CouponPool.Source.GENERATE, prefix="VIP-",
                                     code_length=8)
    coupons_generate(pool=pool, count=20)
    variant = Variant.objects.create(campaign=campaign, label="A", weight=100, body="{{ name }}，您的券码 {{ coupon }}",
                                     sms_sign_name="星河商城", coupon_pool=pool)
    run = campaign.runs.create(started_at=send)
    treated, held = people[:4], people[4:6]
    Delivery.objects.bulk_create(
        [Delivery(run=run, campaign=campaign, variant=variant, destination=destination, profile_id=p.pk,
                  channel="sms", status="delivered", created_at=send, sent_at=send, delivered_at=send,
                  clicked_at=send if i < 3 else None) for i, p in enumerate(treated)]
        + [Delivery(run=run, campaign=campaign, variant=variant, destination=destination, profile_id=p.pk,
                    channel="sms", status="holdout", created_at=send) for p in held])
    for coupon, delivery in zip(Coupon.objects.filter(pool=pool).order_by("pk"),
                                Delivery.objects.filter(campaign=campaign, status="delivered").order_by("pk")):
        coupon.delivery = delivery
        coupon.save()
    code = Coupon.objects.get(delivery__profile_id=treated[0].pk).code
    Event.objects.create(profile=treated[0], name="order", occurred_at=send + datetime.timedelta(days=1),
                         amount=Decimal("199.00"), properties={"coupon": code})
    result_refresh(campaign_id=campaign.pk)
    return campaign, pool


def custom_pages(data: dict) -> list[str]:
    profile, dynamic, static = data["profile"], data["dynamic"], data["static"]
    member = data["member"]
    pages = [
        "/admin/",
        f"/admin/profiles/profile/{profile.pk}/change/",
        f"/admin/profiles/profile/{data['erased'].pk}/change/",
        f"/admin/profiles/profile/{data['merged'].pk}/change/",
        "/admin/profiles/profile/duplicates/",
        f"/admin/profiles/profile/compare/?a={profile.pk}&b={data['other'].pk}",
        "/admin/profiles/importjob/new/",
        f"/admin/profiles/importjob/{data['draft'].pk}/mapping/",
        f"/admin/profiles/importjob/{data['draft'].pk}/change/",
        f"/admin/profiles/importjob/{data['job'].pk}/change/",
        f"/admin/consent/consentrecord/record/{profile.uuid}/",
        f"/admin/consent/consentrecord/record/{profile.uuid}/?status=withdrawn",
        f"/admin/consent/consentrecord/do-not-contact/{profile.uuid}/",
        f"/admin/consent/donotcontact/{data['dnc'].pk}/lift/",
        f"/admin/consent/datasubjectrequest/{data['dsr'].pk}/change/",
        f"/admin/consent/datasubjectrequest/{data['erasure'].pk}/change/",
        f"/admin/consent/datasubjectrequest/{data['open_erasure'].pk}/change/",
        f"/admin/consent/datasubjectrequest/{data['open_erasure'].pk}/erase/",
        f"/admin/consent/datasubjectrequest/{data['dsr'].pk}/extend/",
        f"/admin/consent/datasubjectrequest/{data['dsr'].pk}/complete/",
        f"/admin/consent/datasubjectrequest/{data['dsr'].pk}/refuse/",
        "/admin/segments/segment/add/",
        "/admin/segments/segment/from-list/",
        f"/admin/segments/segment/{static.pk}/change/",
        f"/admin/segments/segment/{static.pk}/members/",
        f"/admin/segments/segment/{static.pk}/export/",
        "/admin/segments/savedanalysis/funnel/?run=1&step_1=product_view&step_2=add_to_cart&step_3=order"
        "&window_days=7&days=90",
        f"/admin/segments/savedanalysis/open/{data['analysis'].pk}/",
        f"/admin/profiles/tagcategory/{data['category'].pk}/change/",
        f"/admin/campaigns/campaign/{data['campaign'].pk}/change/",
        f"/admin/campaigns/destination/{data['destination'].pk}/change/",
        f"/admin/campaigns/campaign/{data['finished'].pk}/change/",
        f"/admin/campaigns/campaign/{data['finished'].pk}/result/",
        "/admin/campaigns/campaign/overview/",
        "/admin/campaigns/couponpool/add/",
        f"/admin/campaigns/couponpool/{data['pool'].pk}/change/",
        f"/admin/campaigns/couponpool/{data['pool'].pk}/upload/",
        f"/admin/campaigns/couponpool/{data['generated_pool'].pk}/change/",
        f"/admin/campaigns/couponpool/{data['generated_pool'].pk}/generate/",
        "/admin/password_change/",
    ]
    if dynamic:
        pages += [
            f"/admin/segments/segment/{dynamic.pk}/change/",
            f"/admin/segments/segment/{dynamic.pk}/members/",
            f"/admin/segments/segment/{dynamic.pk}/why/?profile={member.uuid}",
            f"/admin/segments/segment/{dynamic.pk}/export/",
        ]
    return pages


def slug_of(url: str) -> str:
    parts = urlsplit(url)
    name = (parts.path.strip("/").removeprefix("admin").strip("/") or "index").replace("/", "_")
    if parts.query:
        name += "_" + re.sub(r"\W+", "-", parts.query)[:40]
    return name


def test_every_admin_page_reads_in_chinese_at_1440_px(wide_page, live_server, admin_login, settings, tmp_path,
                                                     screenshots):
    from django.contrib.auth import get_user_model

    settings.MEDIA_ROOT = str(tmp_path / "media")
    user = get_user_model().objects.get(username=admin_login[0])
    data = demo_dataset(user, tmp_path)
    words = ENGLISH_UI_WORDS | _english_model_names()

    page = wide_page
    errors_in_page: list[str] = []
    page.on("pageerror", lambda exc: errors_in_page.append(str(exc)))
    log_in(page, live_server, *admin_login)

    # every page the index leads to: changelists and add forms, then one change form each
    page.goto(f"{live_server.url}/admin/")
    listed = page.eval_on_selector_all(
        "#content-main .module a[href^='/admin/'], #nav-sidebar a[href^='/admin/']", "els => els.map(e => e.getAttribute('href'))")
    urls = list(dict.fromkeys(u for u in listed if u != "/admin/"))
    changelists = [u for u in urls if re.fullmatch(r"/admin/\w+/\w+/", u)]
    assert len(changelists) >= 20, changelists

    problems: list[str] = []
    visited: list[str] = []

    def visit(url: str) -> None:
        errors_in_page.clear()
        response = page.goto(f"{live_server.url}{url}")
        if FETCHES_AFTER_LOAD.search(url):
            page.wait_for_load_state("networkidle")
        visited.append(url)
        status = response.status if response else 0
        body = page.inner_text("body")
        if status >= 400:
            problems.append(f"{url}: HTTP {status}")
            return
        if "Traceback" in body or "Server Error" in body or page.locator("#traceback, #summary .exception_value").count():
            problems.append(f"{url}: an error page")
        english = [text for text in untranslated(page.evaluate(FIND_TEXT, [SKIP_SELECTOR]), words)
                   if not any(url.startswith(prefix) and text == known for prefix, known in ELSEWHERE)]
        if english:
            problems.append(f"{url}: English {english[:6]}")
        sticking_out = page.evaluate(STICKING_OUT)
        if sticking_out:
            problems.append(f"{url}: conditions wider than their group {sticking_out[:6]}")
        broken = page.evaluate(BROKEN_CHOICES)
        if broken:
            problems.append(f"{url}: choices broken over two lines {broken[:6]}")
        faint = page.evaluate(FAINT_BADGES)
        if faint:
            problems.append(f"{url}: badges hard to read {faint[:6]}")
        unstyled = page.evaluate(UNSTYLED_BUTTONS)
        if unstyled:
            problems.append(f"{url}: unstyled buttons {unstyled[:6]}")
        width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if width[0] > width[1]:
            problems.append(f"{url}: {width[0]} px wide at {width[1]} px")
        if errors_in_page:
            problems.append(f"{url}: script errors {errors_in_page[:3]}")
        if page.locator("#content canvas").count():
            page.wait_for_timeout(1000)  # the charts' entry animation, before the picture
        page.screenshot(path=str(screenshots / f"{len(visited):03d}-{slug_of(url)}.png"), full_page=True)

    for url in urls:
        visit(url)
        if url in changelists:
            first = page.locator("#result_list tbody tr").first.locator(
                f"a[href^='{url}'][href$='/change/'], th a[href^='{url}']")
            if first.count():
                change = first.first.get_attribute("href")
                visit(change)
            add = f"{url}add/"
            if add not in urls and page.locator(f"a[href='{add}']").count():
                visit(add)
    for url in custom_pages(data):
        if url not in visited:
            visit(url)
    # each analysis run with the defaults its form offers
    for kind in ("retention", "paths", "lifecycle", "rfm"):
        page.goto(f"{live_server.url}/admin/segments/savedanalysis/{kind}/")
        page.click("#analyse")
        page.wait_for_load_state("networkidle")
        visit(page.url.removeprefix(live_server.url))

    assert len(visited) >= 60, visited
    assert not problems, "\n".join(problems)


def test_the_dashboards_lifecycle_labels_are_not_cut_off(wide_page, live_server, admin_login):
    from django.core.cache import cache

    from profiles.metrics import metrics_recompute
    from tests.factories import ProfileFactory, order

    cache.clear()  # the dashboard keeps its figures for five minutes: not an earlier test's
    # given customers in several lifecycle stages, the longest label (潜在客户（尚无行为）) among them
    ProfileFactory.create_batch(3)
    for i in range(4):
        order(ProfileFactory(), days_ago=5 + 100 * i, amount="100")
    metrics_recompute()
    page = wide_page
    log_in(page, live_server, *admin_login)
    # when the administrator opens the dashboard at 1440 px
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_selector("#lifecycle-chart canvas")
    page.wait_for_timeout(800)  # the chart's entry animation
    # then every slice's label is shown whole: none is wider than the room ECharts left it
    # (it would shorten it with an ellipsis)
    labels = page.evaluate("""() => {
        const chart = echarts.getInstanceByDom(document.getElementById("lifecycle-chart"));
        const data = chart.getModel().getSeriesByIndex(0).getData();
        const measure = document.createElement("canvas").getContext("2d");
        return data.mapArray((i) => {
            const style = data.getItemGraphicEl(i).getTextContent().style;
            measure.font = `${style.fontSize || 12}px ${style.fontFamily || "sans-serif"}`;
            const lines = style.text.split("\\n").map((line) => measure.measureText(line).width);
            return {text: style.text, room: style.width, width: Math.max(...lines)};
        });
    }""")
    assert any("尚无行为" in label["text"] for label in labels), labels
    cut = [label for label in labels if label["room"] is not None and label["width"] > label["room"]]
    assert not cut, cut
