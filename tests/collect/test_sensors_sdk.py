"""The official sa-sdk-python (pip SensorsAnalyticsSDK) against a live server: what it
sends is what the endpoint stores, with its own encoding, batching and error handling.
Run with `--liveserver 127.0.0.1:<port>` to pin the server's port."""
import pytest
import sensorsanalytics

from profiles.models import Event, Identity, Profile, ProfileStatus
from profiles.services.sources import source_create
from tests.factories import IdentityFactory, ProfileFactory


@pytest.fixture
def server_url(seeded_transactional_db, live_server):
    _source, key = source_create(name="会员服务端", code="member-server", kind="server")
    return f"{live_server.url}/collect/sa?project=default&token={key}"


def test_the_default_consumer_sends_events_and_profiles_one_by_one(server_url):
    sa = sensorsanalytics.SensorsAnalytics(sensorsanalytics.DefaultConsumer(server_url), project_name="default")

    sa.track("U100", "ViewProduct", {"commodity_id": "SKU-1", "commodity_name": "跑鞋", "present_price": 399},
             is_login_id=True)
    sa.profile_set("U100", {"$name": "王芳", "gender": "女", "$city": "上海", "mobile": "13800138000"},
                   is_login_id=True)
    sa.close()

    event = Event.objects.get()
    assert (event.name, event.source, event.properties["product_id"]) == ("product_view", "sdk-member-server", "SKU-1")
    profile = Identity.objects.get(kind_id="crm_id", value="U100").profile
    assert event.profile_id == profile.pk
    assert (profile.name, profile.gender, profile.city, profile.phone) == ("王芳", "female", "上海", "+8613800138000")


def test_the_batch_consumer_sends_gzipped_batches_and_track_signup_links_the_device(server_url):
    customer = ProfileFactory()
    IdentityFactory(profile=customer, kind_id="crm_id", value="U200")
    sa = sensorsanalytics.SensorsAnalytics(sensorsanalytics.BatchConsumer(server_url, max_size=50))

    for n in range(120):  # three requests of at most 50
        sa.track("device-abc", "$pageview", {"$url": f"https://shop.example.cn/p/{n}", "$url_path": f"/p/{n}"})
    sa.track_signup("U200", "device-abc")
    sa.track("U200", "SubmitOrder", {"order_id": "SO-1", "order_amount": 299}, is_login_id=True)
    sa.close()

    assert Event.objects.filter(name="page_view", profile=customer).count() == 120
    assert Event.objects.get(name="order").amount == 299
    visitor = Identity.objects.get(kind_id="anonymous_id", value="device-abc")
    assert visitor.profile_id == customer.pk
    assert Profile.objects.filter(status=ProfileStatus.MERGED, merged_into=customer).count() == 1


def test_the_sdk_raises_on_a_wrong_write_key_and_nothing_is_stored(server_url):
    bad_url = server_url.rsplit("token=", 1)[0] + "token=AAAAAAAA.wrong"
    sa = sensorsanalytics.SensorsAnalytics(sensorsanalytics.DefaultConsumer(bad_url))

    with pytest.raises(sensorsanalytics.SensorsAnalyticsNetworkException):
        sa.track("U1", "Login", {})

    assert not Event.objects.exists()


def test_the_debug_consumer_checks_with_dry_run_and_stores_without(server_url, capsys):
    """DebugConsumer posts to …/debug (the last path segment replaced) and raises on an answer ≥ 300."""
    dry = sensorsanalytics.SensorsAnalytics(sensorsanalytics.DebugConsumer(server_url, write_data=False))
    dry.track("U1", "Login", {"channel": "app"}, is_login_id=True)
    assert not Event.objects.exists() and "valid message" in capsys.readouterr().out

    real = sensorsanalytics.SensorsAnalytics(sensorsanalytics.DebugConsumer(server_url, write_data=True))
    real.track("U1", "Login", {"channel": "app"}, is_login_id=True)
    assert Event.objects.get().name == "login"

    with pytest.raises(sensorsanalytics.SensorsAnalyticsDebugException):
        real.track("U1", "Login", {"$time": 4_102_444_800_000}, is_login_id=True)  # 2100: out of range
    assert "out_of_range" in capsys.readouterr().out
