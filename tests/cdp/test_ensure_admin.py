"""`manage.py ensure_admin`: one saved login per database."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from cdp.management.commands.ensure_admin import login_file_for

pytestmark = pytest.mark.django_db


def run() -> str:
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_a_second_database_keeps_the_first_databases_login(settings, tmp_path):
    # given the laptop database's saved login
    settings.VAR_DIR = tmp_path
    first = tmp_path / "admin-login.txt"
    first.write_text("admin\nfirst-database-pw\n", encoding="utf-8")
    # when ensure_admin runs against another database (the tests' own) that has no admin yet
    printed = run()
    # then that database gets its own login, in its own file, and the first one is untouched
    assert first.read_text(encoding="utf-8") == "admin\nfirst-database-pw\n"
    assert "first-database-pw" not in printed
    password = printed.split(" / ")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
    # and running it again prints the same login
    assert run() == printed


def test_each_database_has_its_own_login_file(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    laptop = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}
    shop = {"ENGINE": "django.db.backends.postgresql", "NAME": "cdp", "HOST": "127.0.0.1", "PORT": "5432"}
    staging = {**shop, "NAME": "cdp_staging"}
    assert login_file_for(laptop) == tmp_path / "admin-login.txt"
    assert len({login_file_for(laptop), login_file_for(shop), login_file_for(staging)}) == 3
