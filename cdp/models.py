"""Platform-wide records: the audit log."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditLog(models.Model):
    """Append-only record of privileged actions: who saw, exported, changed or erased
    personal data, when, and how much. The application never updates or deletes a row;
    on PostgreSQL a trigger refuses it too."""

    class Action(models.TextChoices):
        REVEAL_PERSONAL_DATA = "reveal_personal_data", _("Personal data revealed")

    action = models.CharField(_("action"), max_length=40, choices=Action.choices)
    actor_kind = models.CharField(_("by"), max_length=16, default="staff")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("staff member"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )
    actor_label = models.CharField(_("actor"), max_length=150, blank=True)
    target = models.CharField(_("target"), max_length=100, blank=True, help_text=_("e.g. a customer's public id"))
    details = models.JSONField(_("details"), default=dict, blank=True)
    count = models.PositiveIntegerField(_("records"), default=1)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["target", "-occurred_at"], name="audit_target_time")]

    def __str__(self):
        return f"{self.get_action_display()} · {self.actor_label} · {self.occurred_at:%Y-%m-%d %H:%M}"
