"""Tracking sources: websites, mini programs, apps and servers that send behaviour through
the Segment- and Sensors Data-compatible collection endpoints (profiles.collect), each
with its own write key, allowed browser origins and consent rule; plus what the admin
shows of their traffic (the last messages, the rejected ones, counts per hour)."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .profiles import IdentityKind


class CollectSource(models.Model):
    """One website, app, mini program or server that sends events with one write key."""

    class Kind(models.TextChoices):
        WEB = "web", _("Website (browser)")
        MINI_PROGRAM = "mini_program", _("WeChat mini program")
        APP = "app", _("Mobile app")
        SERVER = "server", _("Server")

    name = models.CharField(_("name"), max_length=100)
    code = models.SlugField(
        _("code"), max_length=40, unique=True,
        help_text=_("Short unique code; events from this source are stored with “sdk-<code>” as their source."),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.WEB)
    # The write key: `<prefix>.<secret>`, shown once; only its hash is kept (see profiles.collect.keys).
    key_prefix = models.CharField(_("key prefix"), max_length=8, unique=True, editable=False)
    key_hash = models.CharField(_("hashed key"), max_length=200, editable=False)
    key_created_at = models.DateTimeField(_("key made at"), default=timezone.now, editable=False)
    allowed_origins = models.JSONField(
        _("allowed origins"), default=list, blank=True,
        help_text=_("Browser pages that may send with this key, e.g. https://shop.example.cn. "
                    "Empty: browsers may not send (servers and apps always may)."),
    )
    user_id_kind = models.ForeignKey(
        IdentityKind, verbose_name=_("user id is a"), on_delete=models.PROTECT, default=IdentityKind.CRM_ID,
        related_name="+",
        help_text=_("Which identity the SDK's user id (Segment userId, Sensors login id) is, e.g. the CRM id."),
    )
    # A consent purpose's code (consent.Purpose.code): profiles sit below consent in the layering.
    consent_purpose = models.CharField(
        _("needs consent for"), max_length=64, blank=True,
        help_text=_("A purpose code, e.g. analytics: events of customers who refused or withdrew it are dropped "
                    "at the door (counted, never stored). Empty: no consent needed."),
    )
    is_active = models.BooleanField(_("active"), default=True, help_text=_("An inactive source's key stops working."))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("tracking source")
        verbose_name_plural = _("tracking sources")
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def event_source(self) -> str:
        """Event.source of this source's events."""
        return f"sdk-{self.code}"


class CollectOutcome(models.TextChoices):
    ACCEPTED = "accepted", _("accepted")
    DUPLICATE = "duplicate", _("duplicate")
    DROPPED = "dropped", _("dropped (no consent)")
    REJECTED = "rejected", _("rejected")


class CollectLog(models.Model):
    """A message a source sent, as the debugger shows it: masked, with what became of it.
    Kept short (the newest per source and outcome, see profiles.services.collect)."""

    source = models.ForeignKey(CollectSource, on_delete=models.CASCADE, related_name="log")
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    protocol = models.CharField(_("protocol"), max_length=16)  # segment, sensors
    type = models.CharField(_("type"), max_length=16)  # track, identify, page, screen, group, alias
    name = models.CharField(_("event"), max_length=200, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=CollectOutcome.choices)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    library = models.CharField(_("library"), max_length=100, blank=True)
    # Nullable without a constraint: erasure deletes the person's rows by this id.
    profile_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    payload = models.JSONField(_("message (masked)"), default=dict, blank=True)

    class Meta:
        verbose_name = _("collected message")
        verbose_name_plural = _("collected messages")
        indexes = [models.Index(fields=["source", "outcome", "-received_at"], name="collect_log_recent")]


class CollectHourlyCount(models.Model):
    """Messages per source and hour by outcome: the source page's traffic chart."""

    source = models.ForeignKey(CollectSource, on_delete=models.CASCADE, related_name="hourly_counts")
    hour = models.DateTimeField(_("hour"))
    accepted = models.PositiveIntegerField(default=0)
    duplicate = models.PositiveIntegerField(default=0)
    dropped = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "hour"], name="collect_hourly_unique")]
