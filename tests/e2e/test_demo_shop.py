"""The demo shop with the real tracking SDKs in Chromium: Segment's analytics.js and the
Sensors Data web SDK, both vendored and loaded from the live server, sending to its own
collection endpoints with the demo source's write key. A visitor browses a product, adds
it to the cart, logs in as a known customer and orders; the events arrive with the demo
source, the anonymous part of the visit is stitched onto the customer, and the customer's
timeline in the admin shows it.

The SDKs send asynchronously, so the database is polled for what should arrive, up to a
bound (arrival, not speed, is what is checked)."""
import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection

from cdp.actors import Actor
from profiles import services
from profiles.collect.demo_source import (
    DEMO_SOURCE_CODE,
    demo_source_ensure,
    demo_write_key,
)
from profiles.models import Event, Identity, Profile, ProfileStatus
from profiles.services.sources import source_for_key
from tests.e2e.conftest import log_in

SOURCE = f"sdk-{DEMO_SOURCE_CODE}"
ARRIVAL_BOUND_SECONDS = 30


def arrived(check, seconds=ARRIVAL_BOUND_SECONDS):
    """Wait until check() holds, at most `seconds` (the assertion after it then fails)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


@pytest.fixture
def shop(settings, live_server):
    settings.CDP_DEMO_SHOP = True
    if connection.vendor == "sqlite":
        # The live server shares SQLite's in-memory test database between its request
        # threads through one connection; the SDKs send several requests at once, which
        # that one connection cannot serve together. PostgreSQL runs them concurrently.
        httpd, lock = live_server.thread.httpd, threading.Lock()
        app = httpd.get_app()

        def one_at_a_time(environ, start_response):
            with lock:
                return app(environ, start_response)

        httpd.set_app(one_at_a_time)
    source = demo_source_ensure(origins=[live_server.url])
    cache.clear()  # an earlier test's demo source (same key, another row) may still be cached for 5 s
    assert source_for_key(demo_write_key()) == source
    return f"{live_server.url}/collect/demo-shop/"


def outside_requests(page, live_server) -> list[str]:
    """Every request the page makes that does not go to the live server (a CDN would show here)."""
    outside = []
    page.on("request", lambda request: None if request.url.startswith((live_server.url, "data:"))
            else outside.append(request.url))
    return outside


def shop_visit(page, shop: str, sdk: str, login: str) -> None:
    page.goto(f"{shop}?sdk={sdk}")
    assert page.get_attribute("#sdk-current", "data-sdk") == sdk
    page.click("a[data-product=LIP00001]")
    page.wait_for_selector("h1:text('丝绒哑光唇膏·正红')")
    page.click("#add-to-cart")
    page.wait_for_selector("#shop-status:text('已加入购物车。')")
    page.fill("#login-id", login)
    page.click("#login-button")
    page.wait_for_selector(f"#member-name:text('已登录： {login}')")
    page.click("#nav-cart")
    page.wait_for_selector("#cart-lines :text('丝绒哑光唇膏·正红')")
    assert page.inner_text("#cart-total") == "¥229.00"
    page.click("#place-order")
    page.wait_for_selector("#shop-status:text('谢谢！订单已提交。')")


# home, product and cart pages; one product view, one add to cart, one order
VISIT = {"page_view": 3, "product_view": 1, "add_to_cart": 1, "order": 1}


def shop_events(customer: Profile) -> dict[str, int]:
    names = Event.objects.filter(profile=customer, source=SOURCE).values_list("name", flat=True)
    counts = Counter(names)
    return {name: counts[name] for name in VISIT}


def check_arrived_and_stitched(customer: Profile) -> None:
    arrived(lambda: shop_events(customer) == VISIT)
    assert shop_events(customer) == VISIT
    # the visit began anonymously: its id now belongs to the customer, the visitor's profile is merged into them
    anonymous = Identity.objects.get(kind_id="anonymous_id", profile=customer)
    assert Profile.objects.filter(status=ProfileStatus.MERGED, merged_into=customer).exists()
    viewed = Event.objects.get(profile=customer, source=SOURCE, name="product_view")
    assert (viewed.properties["product_id"], viewed.properties["category"]) == ("LIP00001", "lipstick")
    assert Decimal(str(viewed.properties["price"])) == Decimal(229)
    order = Event.objects.get(profile=customer, source=SOURCE, name="order")
    assert order.amount == Decimal("229.00")
    stray = Event.objects.filter(source=SOURCE).exclude(profile=customer)
    assert not stray.exists(), [(e.name, e.profile_id, e.properties) for e in stray]
    assert anonymous.value


def check_see_me_and_timeline(page, live_server, admin_login, customer: Profile, shop: str, sdk: str) -> None:
    log_in(page, live_server, *admin_login)
    # staff trying the shop follow "see me in the admin" to the customer this browser now is
    page.goto(f"{shop}?sdk={sdk}")
    page.click("#see-me")
    page.wait_for_url(f"{live_server.url}/admin/profiles/profile/{customer.pk}/change/")
    timeline = page.inner_text("#timeline-entries")
    for title in ("浏览商品", "加入购物车", "下单"):
        assert title in timeline, timeline
    assert "¥229" in timeline


def test_segment_analytics_js_visit_lands_on_the_customer_who_logs_in_by_phone(page, live_server, shop,
                                                                              admin_login):
    # given a known customer with a phone
    customer = services.profile_create(actor=Actor.system("e2e"), source="admin", name="王芳", phone="13800138000")
    outside = outside_requests(page, live_server)

    # when a visitor browses with analytics.js, adds to the cart, logs in with that phone and orders
    shop_visit(page, shop, "segment", "13800138000")

    # then page views, the product view, the cart and the order arrive from the demo source on the customer
    check_arrived_and_stitched(customer)
    assert outside == []  # nothing from a CDN: settings passed in, the SDK served by us
    # and staff trying the shop find the customer through "see me" and the visit on their timeline
    check_see_me_and_timeline(page, live_server, admin_login, customer, shop, "segment")


def test_sensors_web_sdk_visit_lands_on_the_member_who_logs_in(page, live_server, shop, admin_login):
    # given a known customer with a member number (the demo source's user id is the CRM id)
    customer = services.profile_create(actor=Actor.system("e2e"), source="admin", name="李娜",
                                       identities=[("crm_id", "M20250001")])
    outside = outside_requests(page, live_server)

    # when a visitor browses with the Sensors Data SDK, adds to the cart, logs in and orders
    shop_visit(page, shop, "sensors", "M20250001")

    # then the events arrive from the demo source and the anonymous visit is the member's
    check_arrived_and_stitched(customer)
    assert outside == []
    check_see_me_and_timeline(page, live_server, admin_login, customer, shop, "sensors")

