"""Fixtures and helpers shared by the partner API tests (imported by the test_api_* modules)."""
import datetime

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from cdp.api.keys import api_key_create, api_key_revoke
from cdp.models import Partner, Scope


@pytest.fixture(autouse=True)
def fresh_rate_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def partner(db):
    """Registered for email marketing: it gets contact data of customers who consented to it."""
    return Partner.objects.create(name="Shop backend", code="shop", purposes=["email_marketing"])


@pytest.fixture
def other_partner(db):
    return Partner.objects.create(name="Agency", code="agency")


def key_for(partner, scopes=tuple(Scope.values), **kwargs) -> str:
    return api_key_create(partner=partner, name="test", scopes=scopes, **kwargs)[1]


def client_with(key: str | None) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def api(partner) -> APIClient:
    """A client holding a key of `partner` with every scope."""
    return client_with(key_for(partner))


@pytest.fixture
def revoked_key(partner):
    api_key, key = api_key_create(partner=partner, name="old", scopes=Scope.values)
    api_key_revoke(api_key=api_key)
    return key


@pytest.fixture
def expired_key(partner):
    return key_for(partner, expires_at=timezone.now() - datetime.timedelta(minutes=1))


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "fields"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body
