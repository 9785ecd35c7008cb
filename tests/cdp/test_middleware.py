import pytest
from django.urls import reverse

from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize("params", [
    {"status__exact": "active\x00"}, {"q": "王\x00"}, {"gender": "\x00"}, {"tags": "vip\x00"}, {"o\x00": "1"},
])
def test_a_nul_character_in_an_admin_list_address_is_a_clear_400(admin_client, params):
    # given a customer list (PostgreSQL refuses text holding NUL, a 500 before)
    ProfileFactory()
    # when the address carries a NUL byte (%00) in a filter, the search or a parameter's name
    response = admin_client.get(reverse("admin:profiles_profile_changelist"), params)
    # then the answer says what is wrong, in Chinese
    assert response.status_code == 400
    assert "URL 不能包含 NUL 字符（%00）" in response.content.decode()


def test_addresses_without_nul_pass(admin_client):
    assert admin_client.get(reverse("admin:profiles_profile_changelist"), {"q": "王"}).status_code == 200
