"""`manage.py generate_demo --help` prints its help (its texts are translated lazily)."""
import pytest
from django.core.management import call_command
from django.utils import translation


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_generate_demo_help_prints_the_description_and_options(language, capsys):
    # given the command whose help texts are lazy translations
    # when its help is asked for
    with translation.override(language), pytest.raises(SystemExit) as exited:
        call_command("generate_demo", "--help")
    # then it prints the help and exits cleanly
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "--events-per-profile" in out and "--seed" in out
