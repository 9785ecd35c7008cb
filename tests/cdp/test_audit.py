import pytest
from django.db import DatabaseError, transaction

from cdp.actors import Actor
from cdp.audit import audit_record
from cdp.models import AuditLog

pytestmark = pytest.mark.django_db


def test_audit_records_who_did_what_to_whom(staff_user, rf):
    entry = audit_record(actor=Actor.staff(staff_user), action=AuditLog.Action.REVEAL_PERSONAL_DATA,
                         target="some-uuid", request=rf.get("/", REMOTE_ADDR="10.1.2.3"))
    assert (entry.actor_user, entry.actor_label, entry.target, entry.ip_address) == (
        staff_user, "operator", "some-uuid", "10.1.2.3",
    )


@pytest.mark.postgres
@pytest.mark.parametrize("change", [
    lambda: AuditLog.objects.update(target="rewritten"),
    lambda: AuditLog.objects.all().delete(),
])
def test_the_database_refuses_to_change_or_delete_audit_rows(change):
    audit_record(actor=Actor.system("t"), action=AuditLog.Action.REVEAL_PERSONAL_DATA, target="x")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        change()
    assert AuditLog.objects.get().target == "x"
