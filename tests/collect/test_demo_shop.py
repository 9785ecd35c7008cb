"""The demo shop's switch and its source's key (profiles.collect.demo_shop / demo_source); the
shop in a browser with the real SDKs is tests/e2e/test_demo_shop.py."""
import pytest

from profiles.collect.demo_source import (
    DEMO_ORIGINS,
    DEMO_SOURCE_CODE,
    demo_source_ensure,
    demo_write_key,
)
from profiles.models import CollectSource
from profiles.services.sources import source_for_key, source_key_rotate

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_keys():
    """source_for_key keeps a key's source for a few seconds in the cache, which outlives a test."""
    from django.core.cache import cache

    cache.clear()


def test_the_shop_is_not_served_when_switched_off(client, settings):
    settings.CDP_DEMO_SHOP = False

    assert client.get("/collect/demo-shop/").status_code == 404
    assert client.get("/collect/demo-shop/cart/").status_code == 404
    assert demo_source_ensure() is None


def test_the_demo_key_comes_from_the_secret_key(settings):
    settings.CDP_DEMO_SHOP = True
    key = demo_write_key()
    settings.SECRET_KEY = "another-deployment-secret-" + "x" * 40

    assert demo_write_key() != key  # no deployment shares another's demo key


def test_a_rotated_demo_key_is_put_back_and_the_page_says_when_it_does_not_work(client, settings):
    settings.CDP_DEMO_SHOP = True
    source = demo_source_ensure()
    source_key_rotate(source=source)
    assert "not-ready" in client.get("/collect/demo-shop/").content.decode()

    demo_source_ensure()

    assert source_for_key(demo_write_key()) is not None
    assert "not-ready" not in client.get("/collect/demo-shop/").content.decode()


def test_the_demo_source_allows_the_local_origins_and_keeps_an_administrators_changes(settings):
    settings.CDP_DEMO_SHOP = True
    source = demo_source_ensure()
    assert source.allowed_origins == list(DEMO_ORIGINS) and source.name == "演示商城"
    source.allowed_origins = [*source.allowed_origins, "https://shop.example.cn"]
    source.is_active = False
    source.save()

    again = demo_source_ensure(origins=["http://127.0.0.1:8765"])

    assert again.pk == source.pk
    assert again.allowed_origins == [*DEMO_ORIGINS, "https://shop.example.cn", "http://127.0.0.1:8765"]
    assert not again.is_active  # a deactivated demo source stays off
    assert source_for_key(demo_write_key()) is None


def test_the_shop_pages_show_the_products_in_chinese_with_the_chosen_sdk(client, settings):
    settings.CDP_DEMO_SHOP = True
    demo_source_ensure()

    home = client.get("/collect/demo-shop/?sdk=sensors").content.decode()
    product = client.get("/collect/demo-shop/p/SKN00001/").content.decode()

    assert "玻尿酸补水·精华" in home and "sensorsdata.min.js" in home and "analytics-next" not in home
    assert "护肤" in product and "¥468.00" in product and "analytics-next.umd.js" in product
    assert demo_write_key() in product
    assert client.get("/collect/demo-shop/p/NOPE/").status_code == 404
    assert client.get("/collect/demo-shop/?sdk=<script>").status_code == 200  # an unknown SDK: the default


def test_see_me_sends_staff_to_the_customer_of_this_browser(client, settings, admin_user):
    from profiles.models import Identity
    from tests.factories import IdentityFactory

    settings.CDP_DEMO_SHOP = True
    demo_source_ensure()
    assert client.get("/collect/demo-shop/me/?anonymous_id=a-1").status_code == 302  # to the admin login
    customer = IdentityFactory(kind_id="anonymous_id", value="a-1").profile
    client.force_login(admin_user)

    assert client.get("/collect/demo-shop/me/?anonymous_id=a-1").url == f"/admin/profiles/profile/{customer.pk}/change/"
    assert client.get("/collect/demo-shop/me/?anonymous_id=nobody").status_code == 404
    assert Identity.objects.count() == 1


def test_the_shop_allows_the_address_it_is_served_at(client, settings):
    """`make run PORT=8799` or another host name: the page's own origin may send."""
    settings.CDP_DEMO_SHOP = True
    settings.ALLOWED_HOSTS = ["*"]
    demo_source_ensure()

    assert client.get("/collect/demo-shop/", HTTP_HOST="127.0.0.1:8799").status_code == 200

    source = CollectSource.objects.get(code=DEMO_SOURCE_CODE)
    assert "http://127.0.0.1:8799" in source.allowed_origins
    assert source_for_key(demo_write_key()) is not None
