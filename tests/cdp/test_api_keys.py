"""Partner API keys: stored hashed, shown once, revocable, expiring, scoped."""
import io
import re
import time

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from cdp.api.keys import KEY_CACHE_SECONDS, api_key_create, api_key_find, api_key_find_cached, api_key_revoke
from cdp.models import AuditLog, Partner, PartnerAPIKey, Scope

from .test_api_fixtures import *  # noqa: F401,F403
from .test_api_fixtures import assert_error, client_with, key_for

pytestmark = pytest.mark.django_db


def test_create_partner_prints_the_key_once_and_stores_only_its_hash():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_partner", "Shop backend", "--scopes", "profiles:read", "events:write", stdout=out, stderr=err)
    key = out.getvalue().strip()
    api_key = PartnerAPIKey.objects.get()
    assert api_key.partner.code == "shop-backend"
    assert key.startswith(api_key.prefix + ".") and len(key) == 41
    assert key not in api_key.hashed_key and api_key.hashed_key.startswith("sha512$$")
    assert api_key.scopes == ["profiles:read", "events:write"]
    assert key not in err.getvalue()
    assert api_key_find(key) == api_key


def test_create_partner_refuses_unknown_scopes():
    with pytest.raises(Exception, match="profiles:delete"):
        call_command("create_partner", "X", "--scopes", "profiles:delete", stdout=io.StringIO(), stderr=io.StringIO())
    assert not PartnerAPIKey.objects.exists()


def test_a_wrong_secret_with_a_real_prefix_is_not_a_key(partner):
    api_key, key = api_key_create(partner=partner, name="k", scopes=[Scope.PROFILES_READ])
    assert api_key_find(key[:-1] + ("a" if key[-1] != "a" else "b")) is None
    assert api_key_find(api_key.prefix) is None
    assert api_key_find("") is None


def test_revoked_expired_and_inactive_partner_keys_are_refused(partner, revoked_key, expired_key, monkeypatch):
    url = reverse("api-tags")
    assert_error(client_with(revoked_key).get(url), 401, "key_revoked")
    assert_error(client_with(expired_key).get(url), 401, "key_expired")
    assert_error(client_with("nonsense.key").get(url), 401, "invalid_key")
    live = key_for(partner)
    assert client_with(live).get(url).status_code == 200
    Partner.objects.filter(pk=partner.pk).update(is_active=False)
    later = time.time() + KEY_CACHE_SECONDS + 1  # the key row cached with its partner has expired by then
    monkeypatch.setattr(time, "time", lambda: later)
    assert_error(client_with(live).get(url), 401, "partner_inactive")


def test_a_revoked_key_stops_working_at_once_though_its_row_was_cached(partner):
    api_key, key = api_key_create(partner=partner, name="k", scopes=[Scope.PROFILES_READ])
    url = reverse("api-tags")
    assert client_with(key).get(url).status_code == 200
    api_key_revoke(api_key=api_key)
    assert_error(client_with(key).get(url), 401, "key_revoked")


def test_authentication_reads_the_key_once_per_cache_period_and_still_checks_the_secret(
        partner, django_assert_num_queries):
    api_key, key = api_key_create(partner=partner, name="k", scopes=[Scope.PROFILES_READ])
    assert api_key_find_cached(key) == api_key
    with django_assert_num_queries(0):
        assert api_key_find_cached(key) == api_key
        assert api_key_find_cached(key[:-1] + ("a" if key[-1] != "a" else "b")) is None
    PartnerAPIKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now())
    cache.clear()
    assert api_key_find_cached(key).has_expired()


def test_the_key_works_in_the_x_api_key_header_too(partner):
    key = key_for(partner)
    assert client_with(None).get(reverse("api-tags"), HTTP_X_API_KEY=key).status_code == 200


def test_revocation_is_final(partner):
    api_key, _key = api_key_create(partner=partner, name="k", scopes=[Scope.PROFILES_READ])
    api_key_revoke(api_key=api_key)
    first = PartnerAPIKey.objects.get().revoked_at
    api_key_revoke(api_key=PartnerAPIKey.objects.get())
    assert PartnerAPIKey.objects.get().revoked_at == first


def test_the_admin_shows_a_new_key_once_and_revokes_keys(client, staff_user, partner):
    client.force_login(staff_user)
    response = client.post(reverse("admin:cdp_partnerapikey_add"), {
        "partner": partner.pk, "name": "shop", "scopes": ["profiles:read", "events:write"], "expires_at_0": "",
        "expires_at_1": "",
    }, follow=True)
    assert response.status_code == 200
    api_key = PartnerAPIKey.objects.get()
    shown = [str(m) for m in response.context["messages"]]
    key = next(found.group(0) for message in shown
               if (found := re.search(re.escape(api_key.prefix) + r"\.\w+", message)))
    assert api_key_find(key) == api_key
    page = client.get(reverse("admin:cdp_partnerapikey_change", args=[api_key.pk])).text
    assert key not in page
    client.post(reverse("admin:cdp_partnerapikey_changelist"),
                {"action": "revoke", "_selected_action": [api_key.pk]}, follow=True)
    assert PartnerAPIKey.objects.get().is_revoked
    assert client.get(reverse("admin:cdp_partner_changelist")).status_code == 200


def _bad(ip: str = "10.0.0.1"):
    client = client_with("AbCdEfGh.not-the-secret-of-any-key-at-all")
    client.defaults["REMOTE_ADDR"] = ip
    return client


@pytest.fixture
def frozen_minute(monkeypatch):
    """time.time() pinned to the start of a minute (the throttle's window); advance it by hand."""
    clock = [time.time() // 60 * 60 + 1]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    return clock


def test_invalid_keys_are_throttled_per_client_ip(partner, settings, frozen_minute):
    # given an address that keeps presenting an invalid key
    settings.CDP_API_FAILED_AUTH_PER_MINUTE = 5
    for _ in range(5):
        assert_error(_bad().get("/api/v1/tags/"), 401, "invalid_key")
    # when it tries again within the minute
    response = _bad().get("/api/v1/tags/")
    # then it is refused without its key being checked, and told when to come back
    assert_error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    # and other addresses are not affected
    good = client_with(key_for(partner))
    good.defaults["REMOTE_ADDR"] = "10.0.0.2"
    assert good.get("/api/v1/tags/").status_code == 200
    assert_error(_bad("10.0.0.3").get("/api/v1/tags/"), 401, "invalid_key")
    # and the next minute the address may try again
    frozen_minute[0] += 60
    assert_error(_bad().get("/api/v1/tags/"), 401, "invalid_key")


def test_failed_calls_are_audited_once_per_ip_and_minute(settings, frozen_minute):
    # given many calls with a bad key (and some with none) from one address in one minute
    settings.CDP_API_FAILED_AUTH_PER_MINUTE = 1000
    for _ in range(40):
        _bad().get("/api/v1/tags/")
    anonymous = client_with(None)
    anonymous.defaults["REMOTE_ADDR"] = "10.0.0.1"
    anonymous.get("/api/v1/tags/")
    # then the append-only audit log has one row for them, not 41
    rows = list(AuditLog.objects.order_by("id"))
    assert [(r.action, r.ip_address, r.details["status"]) for r in rows] == [("api_auth_failed", "10.0.0.1", 401)]
    # when the address fails again the next minute
    frozen_minute[0] += 60
    _bad().get("/api/v1/tags/")
    # then one more row, which says how many calls failed the minute before
    latest = AuditLog.objects.order_by("-id").first()
    assert AuditLog.objects.count() == 2
    assert latest.details["calls_in_previous_minute"] == 41


def _create(*args) -> Partner:
    out = io.StringIO()
    call_command("create_partner", *args, stdout=out, stderr=io.StringIO())
    return api_key_find(out.getvalue().strip()).partner


def test_chinese_names_get_unique_pinyin_codes_and_never_another_partners_key():
    # given a partner that got the old fallback code, and a Chinese-named partner
    earlier = Partner.objects.create(name="Agency", code="partner")
    wechat_shop = _create("微信商城", "--scopes", "all")
    # when two more Chinese-named partners are made, one spelled the same in pinyin
    lookalike = _create("危信商城", "--scopes", "profiles:read")
    emoji = _create("🛒🛍", "--scopes", "profiles:read")
    # then each is a new partner with its own code; nobody's key landed on another partner
    assert wechat_shop.code == "wei-xin-shang-cheng" and wechat_shop.name == "微信商城"
    assert lookalike.code == "wei-xin-shang-cheng-2" and lookalike.pk != wechat_shop.pk
    assert emoji.code.startswith("partner-") and emoji.pk != earlier.pk
    assert not PartnerAPIKey.objects.filter(partner=earlier).exists()
    assert Partner.objects.count() == 4


def test_running_create_partner_again_for_the_same_name_adds_a_key_to_it():
    first = _create("微信商城", "--scopes", "profiles:read")
    again = _create("微信商城", "--scopes", "events:write")
    assert again.pk == first.pk
    assert PartnerAPIKey.objects.filter(partner=first).count() == 2


def test_a_code_that_is_not_a_slug_is_refused():
    with pytest.raises(CommandError, match="slug|字母，数字"):  # Django's slug message, in the active language
        call_command("create_partner", "X", "--code", "微信 商城", "--scopes", "profiles:read",
                     stdout=io.StringIO(), stderr=io.StringIO())


def test_junk_calls_without_a_key_are_audited_once_per_ip_and_minute(partner, frozen_minute):
    # given calls without a key to routes that do not exist
    anonymous = client_with(None)
    for number in range(20):
        assert_error(anonymous.get(f"/api/v1/nothing-{number}/"), 404, "not_found")
    # then one audit row holds them; a caller with a valid key is audited call by call
    assert [row.action for row in AuditLog.objects.all()] == ["api_auth_failed"]
    client_with(key_for(partner)).get("/api/v1/nothing/")
    assert AuditLog.objects.filter(action="api_call", partner=partner).count() == 1
