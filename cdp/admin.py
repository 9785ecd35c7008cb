"""The cdp app's admin: the audit log (read-only) here, partners and API keys in
admin_partners."""
from django.contrib import admin

from . import admin_partners  # noqa: F401
from .admin_readonly import ReadOnlyAdmin
from .models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Who saw, exported, changed or erased personal data, when, and how much."""

    list_display = ("occurred_at", "action", "actor_kind", "actor_label", "partner", "target", "count", "ip_address")
    list_filter = ("action", "actor_kind", "partner")
    search_fields = ("=target", "actor_label")
    date_hierarchy = "occurred_at"
    list_select_related = ("partner",)
    show_full_result_count = False
