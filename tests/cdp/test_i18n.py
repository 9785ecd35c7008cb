import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_admin_speaks_chinese_by_default_even_to_an_english_browser(client):
    response = client.get(reverse("admin:login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert response.status_code == 200
    assert "用户名" in response.text  # "Username"
    assert "客户数据平台" in response.text  # our site header, from our catalogue


def test_the_language_switch_turns_the_admin_english(client, staff_user):
    client.force_login(staff_user)
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("admin:index")}, follow=True)
    assert "Customer Data Platform" in response.text
    assert "Customers" in response.text
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/admin/"})
    assert "客户" in client.get(reverse("admin:index")).text


def test_an_unknown_language_cookie_falls_back_to_chinese(client):
    client.cookies["django_language"] = "xx"
    assert "用户名" in client.get(reverse("admin:login")).text


def test_the_switch_is_on_every_admin_page(client, staff_user):
    client.force_login(staff_user)
    assert 'name="language"' in client.get(reverse("admin:profiles_profile_changelist")).text
    client.logout()
    assert 'name="language"' in client.get(reverse("admin:login")).text
