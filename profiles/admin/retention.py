"""Event retention policies: how long events of each name are kept (profiles.retention)."""
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..models import EventDefinition, EventRetention


@admin.register(EventRetention)
class EventRetentionAdmin(admin.ModelAdmin):
    list_display = ("event_name", "keep_days", "is_active", "last_applied_at", "last_deleted")
    list_filter = ("is_active",)
    search_fields = ("event_name", "purpose")
    readonly_fields = ("created_at", "last_applied_at", "last_deleted")
    fieldsets = (
        (None, {"fields": ("event_name", "keep_days", "is_active", "purpose")}),
        (_("Last run"), {"fields": ("created_at", "last_applied_at", "last_deleted"),
                         "description": _("Applied nightly: a month's partition whose events have all expired is "
                                          "dropped whole, other expired events are deleted in batches. The orders, "
                                          "spend and other metrics of the customers stay as they were. Every "
                                          "deletion is in the audit log.")}),
    )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "event_name":
            # The registered names as a reminder; a name not registered yet may still be typed.
            names = ", ".join(EventDefinition.objects.values_list("name", flat=True)[:60])
            field.help_text = _("Registered event names: %(names)s") % {"names": names}
        return field
