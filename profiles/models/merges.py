"""Merges of two profiles, recorded so that an unmerge restores both as they were."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .profiles import Profile


class ProfileMerge(models.Model):
    survivor = models.ForeignKey(Profile, verbose_name=_("survivor"), on_delete=models.PROTECT, related_name="merges_absorbed")
    merged = models.ForeignKey(Profile, verbose_name=_("merged profile"), on_delete=models.PROTECT, related_name="merges_into")
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    actor_kind = models.CharField(_("by"), max_length=16, default="staff")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("staff member"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )
    actor_label = models.CharField(_("actor"), max_length=150, blank=True)
    merged_at = models.DateTimeField(_("merged at"), default=timezone.now)
    # What moved (row ids per kind), rows deleted as duplicates, and the survivor's
    # fields before the merge: everything an unmerge needs.
    moved = models.JSONField(_("what moved"), default=dict, editable=False)
    survivor_before = models.JSONField(_("survivor before the merge"), default=dict, editable=False)
    undone_at = models.DateTimeField(_("unmerged at"), null=True, blank=True)
    undone_by_label = models.CharField(_("unmerged by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("merge")
        verbose_name_plural = _("merges")
        ordering = ["-merged_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(survivor=models.F("merged")), name="merge_two_profiles"),
        ]

    def __str__(self):
        return f"{self.merged} → {self.survivor}"
