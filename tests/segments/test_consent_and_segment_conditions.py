import pytest
from django.core.exceptions import ValidationError

from cdp.actors import Actor
from consent.services import consent_record, do_not_contact_add
from profiles.models import Profile
from segments.conditions import compile_condition, describe, explain, parse
from segments.models import Segment
from segments.services import segment_freeze, segment_recompute, segment_save
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def matching(definition):
    from django.utils import timezone

    return set(Profile.objects.filter(compile_condition(parse(definition), timezone.now())).values_list("name", flat=True))


def test_consent_granted_and_not_granted_unknown_counting_as_not_granted():
    yes, no, unknown = ProfileFactory(name="yes"), ProfileFactory(name="no"), ProfileFactory(name="unknown")
    consent_record(profile=yes, purpose_code="sms_marketing", status="granted", source="admin", actor=SYSTEM)
    consent_record(profile=no, purpose_code="sms_marketing", status="granted", source="admin", actor=SYSTEM)
    consent_record(profile=no, purpose_code="sms_marketing", status="withdrawn", source="admin", actor=SYSTEM)
    assert matching({"consent": "sms_marketing", "op": "granted"}) == {"yes"}
    assert matching({"consent": "sms_marketing", "op": "not_granted"}) == {"no", "unknown"}
    # do-not-contact is a separate list, applied by exports, not by the consent condition
    do_not_contact_add(profile=yes, channel="sms", reason="complaint", actor=SYSTEM)
    assert matching({"consent": "sms_marketing"}) == {"yes"}
    assert "短信营销" in describe(parse({"consent": "sms_marketing"})) or "SMS" in describe(parse({"consent": "sms_marketing"}))


def test_unknown_purpose_and_bad_op_are_validation_errors_with_paths():
    with pytest.raises(ValidationError) as caught:
        parse({"all": [{"consent": "nope"}, {"consent": "sms_marketing", "op": "maybe"}]})
    text = " ".join(caught.value.messages)
    assert "all[0].consent" in text and "all[1].op" in text


def test_membership_of_a_dynamic_segment_is_evaluated_from_its_definition():
    ProfileFactory(name="sh", city="上海"), ProfileFactory(name="bj", city="北京")
    segment_save(segment=Segment(name="上海", slug="sh"), definition={"field": "city", "op": "eq", "value": "上海"})
    assert matching({"segment": "sh", "op": "in"}) == {"sh"}
    assert matching({"segment": "sh", "op": "not_in"}) == {"bj"}


def test_membership_of_a_static_segment_is_its_frozen_list():
    sh = ProfileFactory(name="sh", city="上海")
    dynamic = segment_save(segment=Segment(name="上海", slug="sh"), definition={"field": "city", "op": "eq", "value": "上海"})
    segment_recompute(segment_id=dynamic.pk)
    frozen = segment_freeze(segment=dynamic)
    ProfileFactory(name="later", city="上海")
    assert matching({"segment": frozen.slug}) == {"sh"}
    assert explain(parse({"segment": frozen.slug}), sh, __import__("django.utils.timezone").utils.timezone.now()).matched


def test_cycles_are_refused_directly_and_through_other_segments():
    a = segment_save(segment=Segment(name="A", slug="a"), definition={"field": "city", "op": "eq", "value": "上海"})
    with pytest.raises(ValidationError) as caught:
        segment_save(segment=a, definition={"segment": "a"})
    assert "a → a" in " ".join(caught.value.messages)
    segment_save(segment=Segment(name="B", slug="b"), definition={"segment": "a"})
    with pytest.raises(ValidationError) as caught:
        segment_save(segment=a, definition={"any": [{"segment": "b"}, {"field": "city", "op": "eq", "value": "北京"}]})
    assert "a → b → a" in " ".join(caught.value.messages)


def test_unknown_segment_is_a_validation_error():
    with pytest.raises(ValidationError):
        parse({"segment": "ghost"})


def test_consent_by_the_state_last_recorded():
    import datetime

    from django.utils import timezone

    people = {name: ProfileFactory(name=name) for name in ("granted", "refused", "withdrew", "expired", "never")}
    consent_record(profile=people["granted"], purpose_code="sms_marketing", status="granted", source="admin",
                   actor=SYSTEM)
    consent_record(profile=people["refused"], purpose_code="sms_marketing", status="denied", source="admin",
                   actor=SYSTEM)
    consent_record(profile=people["withdrew"], purpose_code="sms_marketing", status="granted", source="admin",
                   actor=SYSTEM)
    consent_record(profile=people["withdrew"], purpose_code="sms_marketing", status="withdrawn", source="admin",
                   actor=SYSTEM)
    consent_record(profile=people["expired"], purpose_code="sms_marketing", status="granted", source="admin",
                   actor=SYSTEM, captured_at=timezone.now() - datetime.timedelta(days=400),
                   expires_at=timezone.now() - datetime.timedelta(days=35))
    states = {op: matching({"consent": "sms_marketing", "op": op}) for op in (
        "state_granted", "state_denied", "state_withdrawn", "state_expired", "state_never_asked")}
    assert states == {"state_granted": {"granted"}, "state_denied": {"refused"}, "state_withdrawn": {"withdrew"},
                      "state_expired": {"expired"}, "state_never_asked": {"never"}}
    assert matching({"consent": "sms_marketing", "op": "not_granted"}) == {"refused", "withdrew", "expired", "never"}
    assert "撤回" in describe(parse({"consent": "sms_marketing", "op": "state_withdrawn"}))
