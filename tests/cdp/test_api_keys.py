"""Partner API keys: stored hashed, shown once, revocable, expiring, scoped."""
import io
import re
import time

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from cdp.api.keys import KEY_CACHE_SECONDS, api_key_create, api_key_find, api_key_find_cached, api_key_revoke
from cdp.models import Partner, PartnerAPIKey, Scope

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
