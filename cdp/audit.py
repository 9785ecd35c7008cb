"""The only writer of audit log rows."""
from django.http import HttpRequest

from .actors import Actor
from .models import AuditLog


def audit_record(*, actor: Actor, action: str, target: str = "", details: dict | None = None,
                 count: int = 1, request: HttpRequest | None = None) -> AuditLog:
    return AuditLog.objects.create(
        action=action, actor_kind=actor.kind, actor_user=actor.user, actor_label=actor.label[:150],
        target=target, details=details or {}, count=count,
        ip_address=request.META.get("REMOTE_ADDR") if request else None,
    )


def audit_record_many(*, actor: Actor, action: str, entries: list[tuple[str, dict]]) -> list[AuditLog]:
    """One row per (target, details), in one INSERT: a batch's worth of audit_record."""
    return AuditLog.objects.bulk_create([AuditLog(
        action=action, actor_kind=actor.kind, actor_user=actor.user, actor_label=actor.label[:150],
        target=target, details=details, count=1,
    ) for target, details in entries])
