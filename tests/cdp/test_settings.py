"""Configuration comes from the environment; production settings pass the deploy checks."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def settings_under(env: dict, module: str = "cdp.settings", expr: str = "") -> dict:
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
        "'name': str(settings.DATABASES['default']['NAME']), 'broker': settings.CELERY_BROKER_URL, "
        "'debug': settings.DEBUG, 'language': settings.LANGUAGE_CODE, 'tz': settings.TIME_ZONE}))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DEBUG"}}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        env={**clean, "DJANGO_SETTINGS_MODULE": module, "CDP_VAR_DIR": env.pop("CDP_VAR_DIR", str(ROOT / "var")), **env},
    )
    return json.loads(result.stdout)


def test_defaults_run_on_a_laptop(tmp_path):
    settings = settings_under({"CDP_VAR_DIR": str(tmp_path)})
    assert settings["engine"] == "django.db.backends.sqlite3"
    assert settings["name"] == str(tmp_path / "db.sqlite3")
    assert settings["broker"] == "filesystem://"
    assert (tmp_path / "celery-broker").is_dir()
    assert (settings["language"], settings["tz"], settings["debug"]) == ("zh-hans", "Asia/Shanghai", True)


def test_urls_switch_to_postgresql_and_a_real_broker():
    settings = settings_under({
        "DATABASE_URL": "postgres://cdp:secret@db.internal:5432/cdp",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    })
    assert settings["engine"] == "django.db.backends.postgresql"
    assert settings["name"] == "cdp"
    assert settings["broker"] == "redis://127.0.0.1:6379/0"


def test_production_settings_pass_check_deploy():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cdp.settings.production",
        "SECRET_KEY": "x7!kq2-" * 10,
        "ALLOWED_HOSTS": "cdp.example.com",
        "CDP_SUPPRESSION_KEY": "s9#" * 16,
    }
    env.pop("DEBUG", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set while browser tests run
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update({"DJANGO_SETTINGS_MODULE": "cdp.settings.production", "ALLOWED_HOSTS": "cdp.example.com"})
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_migrations_match_the_models():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
