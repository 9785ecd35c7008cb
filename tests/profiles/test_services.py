import datetime

import pytest
from django.core.exceptions import ValidationError

from cdp.actors import Actor
from profiles import services
from profiles.models import Identity, ProfileActivity
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


def test_create_normalises_fields_and_records_identities_and_timeline():
    profile = services.profile_create(
        actor=SYSTEM, source="admin", identities=[("crm_id", " CRM-9 ")],
        name=" 王  芳 ", gender="女士", birth_date="1995年3月2日", phone="138 0013 8000",
        email=" Wang.Fang@Example.COM ", city="上海市", province="上海市",
    )
    assert (profile.name, profile.gender, profile.birth_date) == ("王 芳", "female", datetime.date(1995, 3, 2))
    assert (profile.phone, profile.email, profile.city) == ("+8613800138000", "wang.fang@example.com", "上海")
    assert set(profile.identities.values_list("kind", "value")) == {
        ("phone", "+8613800138000"), ("email", "wang.fang@example.com"), ("crm_id", "CRM-9"),
    }
    assert list(profile.activities.values_list("type", "params")) == [("created", {"source": "admin"})]


def test_create_reports_every_invalid_field_at_once():
    with pytest.raises(ValidationError) as error:
        services.profile_create(actor=SYSTEM, source="admin", phone="12345", email="not-an-email", gender="x")
    assert set(error.value.error_dict) == {"phone", "email", "gender"}


def test_create_refuses_fields_that_are_not_editable():
    with pytest.raises(ValidationError):
        services.profile_create(actor=SYSTEM, source="api", status="erased", order_count=10)


def test_an_identity_of_another_customer_is_refused_and_nothing_is_written():
    services.profile_create(actor=SYSTEM, source="admin", phone="13800138000")
    with pytest.raises(ValidationError) as error:
        services.profile_create(actor=SYSTEM, source="admin", name="另一个人", phone="+86 138-0013-8000")
    assert error.value.code == "identity_taken"
    assert not Identity.objects.filter(profile__name="另一个人").exists()


def test_update_records_before_and_after_on_the_timeline():
    profile = services.profile_create(actor=SYSTEM, source="admin", name="李雷", city="北京")
    user_actor = Actor.system("staff-stand-in")
    services.profile_update(profile=profile, actor=user_actor, city="Shanghai", name="李雷")
    edit = profile.activities.get(type=ProfileActivity.Type.EDITED)
    assert edit.params == {"changes": {"city": ["北京", "上海"]}}
    assert edit.actor_label == "staff-stand-in"
    assert "北京 → 上海" in edit.summary


def test_update_without_changes_writes_nothing():
    profile = services.profile_create(actor=SYSTEM, source="admin", name="韩梅梅")
    services.profile_update(profile=profile, actor=SYSTEM, name="韩梅梅")
    assert not profile.activities.filter(type="edited").exists()


def test_new_phone_becomes_an_identity_and_the_old_one_is_kept():
    profile = services.profile_create(actor=SYSTEM, source="admin", phone="13800138000")
    services.profile_update(profile=profile, actor=SYSTEM, phone="13900139000")
    assert set(profile.identities.filter(kind="phone").values_list("value", flat=True)) == {
        "+8613800138000", "+8613900139000",
    }


def test_identity_add_normalises_and_is_idempotent():
    profile = ProfileFactory()
    first = services.identity_add(profile=profile, kind="email", value=" A@B.CN ", source="api")
    again = services.identity_add(profile=profile, kind="email", value="a@b.cn", source="api")
    assert first.pk == again.pk and first.value == "a@b.cn"


def test_identity_of_unknown_kind_is_refused():
    with pytest.raises(ValidationError) as error:
        services.identity_add(profile=ProfileFactory(), kind="qq_number", value="10001", source="api")
    assert error.value.code == "unknown_identity_kind"


def test_notes_land_on_the_timeline_and_empty_ones_are_refused():
    profile = ProfileFactory()
    services.note_add(profile=profile, text="  客户来电咨询退货  ", actor=SYSTEM)
    assert profile.activities.get().summary.endswith("客户来电咨询退货")
    with pytest.raises(ValidationError):
        services.note_add(profile=profile, text="   ", actor=SYSTEM)


@pytest.mark.parametrize("status", ["erased", "merged"])
def test_a_note_or_an_edit_on_an_erased_or_merged_customer_is_refused(status):
    # given a customer who was erased, or merged into another
    survivor, gone = ProfileFactory(name="幸存者"), ProfileFactory()
    gone.status, gone.merged_into = status, survivor if status == "merged" else None
    gone.save()
    # when staff add a note or edit a field, then each is refused with a code, and nothing is written
    for write in (lambda: services.note_add(profile=gone, text="回访", actor=SYSTEM),
                  lambda: services.profile_update(profile=gone, actor=SYSTEM, name="新名字")):
        with pytest.raises(ValidationError) as error:
            write()
        assert error.value.code == "profile_not_active"
    assert not ProfileActivity.objects.filter(profile=gone).exists()
    if status == "merged":
        assert "幸存者" in error.value.messages[0]
