"""Quiet hours in Asia/Shanghai at their boundaries, and templates refused with the line
and the token when they are wrong."""
import datetime
import zoneinfo

import pytest

from campaigns.content import ContentError, sms_parts, sms_text, template_compile, template_render
from campaigns.quiet_hours import quiet_until, send_time

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def at(hour, minute=0, day=5):
    return datetime.datetime(2026, 12, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize("moment,expected", [
    (at(20, 59), None),                   # a minute before: sends
    (at(21, 0), at(8, 0, day=6)),         # the window includes its start
    (at(23, 30), at(8, 0, day=6)),
    (at(0, 0, day=6), at(8, 0, day=6)),   # after midnight: the same morning
    (at(7, 59, day=6), at(8, 0, day=6)),
    (at(8, 0, day=6), None),              # and excludes its end
])
def test_sms_quiet_hours_boundaries_in_shanghai(settings, moment, expected):
    settings.CAMPAIGN_QUIET_HOURS = {"sms": ["21:00", "08:00"]}
    assert quiet_until("sms", moment) == expected
    assert send_time("sms", moment) == (expected or moment)


def test_channels_without_quiet_hours_and_campaigns_that_ignore_them_send_at_once(settings):
    settings.CAMPAIGN_QUIET_HOURS = {"sms": ["21:00", "08:00"]}
    assert quiet_until("email", at(23)) is None
    assert send_time("sms", at(23), ignore=True) == at(23)


def test_a_window_within_one_day(settings):
    settings.CAMPAIGN_QUIET_HOURS = {"app_push": ["12:00", "14:00"]}
    assert quiet_until("app_push", at(13)) == at(14)
    assert quiet_until("app_push", at(14)) is None


def test_tokens_render_in_a_context_of_strings_only():
    template = template_compile("{{ name }}，{% if coupon %}券码 {{ coupon|upper }}{% endif %}")
    assert template_render(template, {"name": "王芳", "coupon": "abc123"}) == "王芳，券码 ABC123"
    assert template_render(template, {"name": "王芳"}) == "王芳，"


@pytest.mark.parametrize("source,line,word", [
    ("您好 {{ nmae }}", 1, "nmae"),                        # unknown token
    ("第一行\n{{ name.__class__ }}", 2, "name.__class__"),  # no attribute access
    ("{{ name }}\n\n{% if name %}", 3, "if"),              # syntax error (unclosed)
    ("{% load static %}", 1, "load"),
    ("{% include 'x.html' %}", 1, "include"),
    ("{{ name|safe }}", 1, "safe"),                         # filters outside the list
    ("{% if secret %}x{% endif %}", 1, "secret"),           # unknown token in a condition
])
def test_a_wrong_template_is_refused_with_its_line_and_token(source, line, word):
    with pytest.raises(ContentError) as error:
        template_compile(source)
    assert error.value.line == line and word in error.value.message


def test_sms_text_carries_signature_and_opt_out_and_counts_parts():
    text = sms_text("双十一会员日，全场满300减50", "星河商城")
    assert text == "【星河商城】双十一会员日，全场满300减50 拒收请回复R"
    assert sms_parts(text) == 1
    assert sms_parts("字" * 70) == 1 and sms_parts("字" * 71) == 2 and sms_parts("字" * 134) == 2
    assert sms_parts("字" * 135) == 3
    assert sms_text("您好 拒收请回复R", "") == "您好 拒收请回复R"  # not added twice
