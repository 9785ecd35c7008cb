"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Locally they skip when /usr/bin/chromium is missing; CI sets CDP_E2E_REQUIRED=1 so that
a missing browser fails the run instead.
"""
import os
import shutil

import pytest

CHROMIUM = os.environ.get("CDP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def default_language(settings):
    """Data a browser test builds is written in the product's language: Django leaves the
    language of a thread's last request active, so an earlier test's English would leak
    into stored texts (a tag's reason, an erasure's outcome) and show on the pages."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CDP_E2E_REQUIRED") == "1":
            pytest.fail(f"Chromium not found at {CHROMIUM}; install Debian's chromium package")
        pytest.skip(f"no browser at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the tests' own ORM calls
    # are still synchronous, so Django's async-safety guard must stand aside meanwhile.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US")  # an English browser: the admin still speaks Chinese
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def admin_login(django_user_model):
    password = "browser-test-pw-1"
    django_user_model.objects.create_superuser("staff", "staff@example.com", password)
    return "staff", password


def log_in(page, live_server, username, password):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


@pytest.fixture(autouse=True)
def _seeded_rows(seeded_transactional_db):
    """Live-server tests flush the database after each test, seeded rows included
    (serialized rollback cannot put them back: Playwright's event loop gives the test
    another connection object)."""
