import pytest
from django.db import connection


def pytest_collection_modifyitems(config, items):
    """`postgres` tests need PostgreSQL features (two connections, triggers…)."""
    if connection.vendor != "postgresql":
        skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        username="operator", password="pw-for-tests", is_staff=True, is_superuser=True
    )
