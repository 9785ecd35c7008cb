"""System activity on a profile's timeline (written only by profiles.activity)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .profiles import Profile


class ActorKind(models.TextChoices):
    STAFF = "staff", _("Staff")
    PARTNER = "partner", _("Partner")
    SYSTEM = "system", _("System")


class ProfileActivity(models.Model):
    """What happened to a profile that is not customer behaviour (tags, consent,
    segments, merges, imports, edits, notes). Written only by `profiles.activity`."""

    class Type(models.TextChoices):
        CREATED = "created", _("Created")
        EDITED = "edited", _("Edited")
        NOTE = "note", _("Note")
        IMPORTED = "imported", _("Imported")
        TAG_ADDED = "tag_added", _("Tag added")
        TAG_REMOVED = "tag_removed", _("Tag removed")
        CONSENT_CHANGED = "consent_changed", _("Consent changed")
        SEGMENT_ENTERED = "segment_entered", _("Entered segment")
        SEGMENT_EXITED = "segment_exited", _("Left segment")
        MERGED = "merged", _("Merged")
        UNMERGED = "unmerged", _("Unmerged")
        DSAR = "dsar", _("Data subject request")

    # No database foreign-key constraints here (see ProfileTag): rows are written
    # set-based in bulk; deletions cascade through the ORM.
    profile = models.ForeignKey(
        Profile, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="activities",
        db_index=False, db_constraint=False,
    )
    type = models.CharField(_("type"), max_length=32, choices=Type.choices)
    params = models.JSONField(_("details"), default=dict, blank=True)
    actor_kind = models.CharField(_("by"), max_length=16, choices=ActorKind.choices, default=ActorKind.SYSTEM)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("staff member"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+", db_index=False, db_constraint=False,
    )
    actor_label = models.CharField(_("actor"), max_length=150, blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        indexes = [models.Index(fields=["profile", "-occurred_at", "-id"], name="activity_timeline")]
        constraints = [
            models.CheckConstraint(condition=Q(actor_kind__in=ActorKind.values), name="activity_actor_kind_valid"),
        ]

    def __str__(self):
        return f"{self.get_type_display()} @ {self.occurred_at:%Y-%m-%d %H:%M}"

    @property
    def summary(self) -> str:
        from ..activity import summarise

        return summarise(self)
