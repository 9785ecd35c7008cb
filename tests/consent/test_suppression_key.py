"""Production refuses to start without its own key for the suppression hashes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "x7!kq2-" * 10


def production_check(**overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "CDP_SUPPRESSION_KEY", "DEBUG"}}
    env.update({"DJANGO_SETTINGS_MODULE": "cdp.settings.production", "ALLOWED_HOSTS": "cdp.example.com",
                "SECRET_KEY": SECRET, **overrides})
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, env=env)


def test_production_refuses_to_start_without_a_suppression_key():
    result = production_check()
    assert result.returncode != 0 and "CDP_SUPPRESSION_KEY" in result.stderr


@pytest.mark.parametrize("key", [SECRET, "too-short"])
def test_production_refuses_the_secret_key_or_a_short_key(key):
    result = production_check(CDP_SUPPRESSION_KEY=key)
    assert result.returncode != 0 and "CDP_SUPPRESSION_KEY" in result.stderr


def test_production_starts_with_its_own_suppression_key():
    result = production_check(CDP_SUPPRESSION_KEY="s9#" * 16)
    assert result.returncode == 0, result.stderr
