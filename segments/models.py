"""Saved segments, their materialised membership and its size history."""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from profiles.models import Profile


class Segment(models.Model):
    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("Dynamic (recomputed)")
        STATIC = "static", _("Static (a frozen list)")

    name = models.CharField(_("name"), max_length=150)
    slug = models.SlugField(_("slug"), max_length=100, unique=True, allow_unicode=True)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.DYNAMIC)
    definition = models.JSONField(_("definition"), default=dict, blank=True)
    # Every save of the definition bumps the version; a calculation writes its result
    # only if the version it started from is still the current one.
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    refresh_every_minutes = models.PositiveIntegerField(
        _("refresh every (minutes)"), null=True, blank=True, help_text=_("Empty: only on save and on demand.")
    )
    member_count = models.PositiveIntegerField(_("members"), default=0, editable=False)
    last_calculated_at = models.DateTimeField(_("last calculated"), null=True, blank=True, editable=False)
    calculated_version = models.PositiveIntegerField(_("calculated version"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)
    error_count = models.PositiveIntegerField(_("failed calculations"), default=0, editable=False)
    # The scheduler's bookkeeping (segments/scheduling.py): queueing and calculating each
    # claim the segment with a conditional UPDATE, so it is never queued again while queued
    # or running, nor calculated twice at once; failures in a row push the next automatic
    # attempt further away.
    queued_at = models.DateTimeField(_("calculation queued at"), null=True, blank=True, editable=False)
    calculating_since = models.DateTimeField(_("calculating since"), null=True, blank=True, editable=False)
    failures_in_a_row = models.PositiveIntegerField(_("failures in a row"), default=0, editable=False)
    last_failed_at = models.DateTimeField(_("last failed at"), null=True, blank=True, editable=False)
    next_attempt_at = models.DateTimeField(_("next automatic attempt"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    # Partners see a segment over the API only when it is shared with them.
    shared_with = models.ManyToManyField(
        "cdp.Partner", verbose_name=_("shared with partners"), blank=True, related_name="shared_segments",
    )

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]
        permissions = [
            ("export_segment", _("Can export a segment's members")),
            # the purpose's own channel contact (phones for SMS, emails for email) unmasked
            ("export_contact_data", _("Can export contact data for a consented channel")),
        ]
        constraints = [models.CheckConstraint(condition=Q(kind__in=["dynamic", "static"]), name="segment_kind_valid")]

    def __str__(self):
        return self.name


class SegmentMembership(models.Model):
    """Written set-based like customer tags, so without database FK constraints (see
    profiles.models.tags.ProfileTag): checking each of a recompute's hundreds of
    thousands of rows against the segment doubled the insert's time. Deleting a segment
    cascades through the ORM."""

    # No index of its own: the unique (segment, profile) index serves lookups by segment,
    # and one index fewer to write makes a recompute's big inserts faster.
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships", db_constraint=False,
                                db_index=False)
    profile = models.ForeignKey(
        Profile, on_delete=models.CASCADE, related_name="segment_memberships", db_constraint=False
    )
    entered_at = models.DateTimeField(_("member since"), default=timezone.now)

    class Meta:
        verbose_name = _("segment member")
        verbose_name_plural = _("segment members")
        constraints = [models.UniqueConstraint(fields=["segment", "profile"], name="segment_membership_unique")]


class RecomputeChange(models.Model):
    """A row of a recompute's temporary table: a customer (by id) entering or leaving the
    segment. Unmanaged: segments.services makes the table inside the recompute's
    transaction; the model lets the ORM write timeline rows straight from it, without
    joining the customer table."""

    id = models.BigIntegerField(primary_key=True)
    entering = models.BooleanField()

    class Meta:
        managed = False
        db_table = "segment_recompute_changes"


class SegmentSnapshot(models.Model):
    """One calculation: size, who entered and left, how long it took."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="snapshots")
    version = models.PositiveIntegerField(_("version"))
    calculated_at = models.DateTimeField(_("calculated at"), default=timezone.now)
    member_count = models.PositiveIntegerField(_("members"))
    entered = models.PositiveIntegerField(_("entered"))
    exited = models.PositiveIntegerField(_("exited"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))

    class Meta:
        verbose_name = _("segment snapshot")
        verbose_name_plural = _("segment snapshots")
        ordering = ["-calculated_at", "-id"]

    def __str__(self):  # the admin shows it above each calculation's row
        return _("Calculation of version %(version)s") % {"version": self.version}


class SavedAnalysis(models.Model):
    """A behaviour analysis (funnel, retention, paths, lifecycle, RFM) saved with its
    parameters; reopening it runs it again on today's data."""

    class Kind(models.TextChoices):
        FUNNEL = "funnel", _("Funnel")
        RETENTION = "retention", _("Retention")
        PATHS = "paths", _("Paths")
        LIFECYCLE = "lifecycle", _("Lifecycle")
        RFM = "rfm", _("RFM")

    name = models.CharField(_("name"), max_length=150)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("saved analysis")
        verbose_name_plural = _("saved analyses")
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["funnel", "retention", "paths", "lifecycle", "rfm"]), name="saved_analysis_kind_valid"
            )
        ]

    def __str__(self):
        return self.name


# The quick audience box's named thresholds (segments/quick/).
from .quick.models import NamedThreshold  # noqa: E402,F401
