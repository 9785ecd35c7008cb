"""cdp.one_statement: writes that depend on a row inserted in the same statement, and
updates, land exactly as if each had been saved alone."""
import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from cdp.one_statement import Statement
from profiles.models import Identity, Profile, ProfileActivity

pytestmark = pytest.mark.django_db


def test_rows_that_refer_to_a_row_inserted_before_them_get_its_key():
    statement = Statement()
    profile = Profile(name="Li Lei", city="上海")
    profile_id = statement.insert_returning(profile)
    statement.insert([Identity(profile_id=profile_id, kind_id="crm_id", value="C-1", source="t"),
                      Identity(profile_id=profile_id, kind_id="email", value="l@example.com", source="t")])
    statement.insert([ProfileActivity(profile_id=profile_id, type="created", params={"source": "t"},
                                      actor_kind="system", actor_label="t")])
    with CaptureQueriesContext(connection) as captured:
        assert statement.run() == []
    assert len(captured) == (1 if connection.vendor == "postgresql" else 3)
    stored = Profile.objects.get(pk=profile.pk)
    assert (stored.uuid, stored.name) == (profile.uuid, "Li Lei")
    assert set(stored.identities.values_list("kind_id", "value")) == {("crm_id", "C-1"), ("email", "l@example.com")}
    assert stored.activities.get().type == "created"


def test_an_update_saves_the_fields_named_and_the_last_change_time():
    profile = Profile.objects.create(name="Han Meimei", city="北京")
    before = profile.updated_at
    profile.city, profile.name = "上海", "not saved"
    statement = Statement()
    statement.update(profile, ["city", "updated_at"])
    statement.run()
    stored = Profile.objects.get(pk=profile.pk)
    assert (stored.city, stored.name) == ("上海", "Han Meimei")
    assert stored.updated_at > before


def test_an_update_of_a_row_that_is_gone_fails_and_writes_nothing():
    profile = Profile.objects.create(name="Gone")
    Profile.objects.filter(pk=profile.pk).delete()
    statement = Statement()
    statement.insert([Profile(name="Other")])
    statement.update(profile, ["name"])
    with pytest.raises(DatabaseError), transaction.atomic():
        statement.run()
    assert not Profile.objects.filter(name="Other").exists()


def test_a_statement_that_inserts_with_returning_cannot_also_read():
    statement = Statement()
    statement.insert_returning(Profile(name="X"))
    statement.read(Profile.objects.values_list("name"))
    with pytest.raises(ValueError):
        statement.run()
