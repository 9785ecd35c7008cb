import importlib
from pathlib import Path

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


def reseed() -> None:
    """Run the data migrations' `seed` functions and the role seeding again (after a
    transactional test's flush emptied the seeded tables)."""
    from django.apps import apps

    from cdp.roles import roles_seed

    for app in ("profiles", "consent", "segments", "campaigns"):
        for path in sorted((Path(__file__).resolve().parents[1] / app / "migrations").glob("0*.py")):
            module = importlib.import_module(f"{app}.migrations.{path.stem}")
            if hasattr(module, "seed"):
                module.seed(apps, None)
    roles_seed()


@pytest.fixture
def seeded_transactional_db(transactional_db):
    """A transactional database with the seeded rows (purposes, identity kinds, tag roots,
    roles) present, as migrations left them."""
    reseed()


@pytest.fixture(autouse=True)
def fresh_registries():
    """Identity kinds and event names are cached per process for 30 s (profiles.registry):
    a name one test registers must not leak into the next."""
    from django.core.cache import cache

    from profiles.recommendations import popular_forget
    from profiles.registry import registry_forget
    from profiles.services.suppression import SUPPRESSED_KINDS_KEY

    registry_forget()
    cache.delete(SUPPRESSED_KINDS_KEY)  # the kinds erased people had, cached a few seconds (tests write rows directly)
    popular_forget()  # the popular products and categories, cached until the similarity is computed again
    yield
    registry_forget()


@pytest.fixture(autouse=True)
def product_language():
    """Every test starts in the product's language (zh_Hans): a request an earlier test
    made (the partner API follows Accept-Language) leaves its language on the thread."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)
