"""Campaigns: who gets which message on which channel, once, and what came of it.

A Campaign names a purpose (which fixes the channel and the consent that must count), an
audience (a segment, or a trigger), a destination and up to four content variants. Each
time it runs, a CampaignRun decides eligibility per customer and writes one Delivery row
per customer in the same transaction (the transactional outbox); workers drain queued
deliveries per destination. Holdout customers get a Delivery row too, with status
`holdout`, so that results compare the two groups from one table.
"""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import Channel, Purpose
from profiles.models import Profile
from segments.models import Segment


class Destination(models.Model):
    """Where messages go: a vendor or a partner system, with its configuration. The
    secret (API key, signing secret, SMTP password) is write-only: forms never show it
    again and logs never print it."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", _("Partner webhook")
        EMAIL = "email", _("E-mail")
        ALIYUN_SMS = "aliyun_sms", _("Alibaba Cloud SMS")
        WECHAT = "wechat", _("WeChat official account")
        AUDIENCE_FILE = "audience_file", _("Audience file")

    name = models.CharField(_("name"), max_length=150)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    config = models.JSONField(_("settings"), default=dict, blank=True)
    secret = models.TextField(_("secret"), blank=True)
    rate_per_second = models.PositiveIntegerField(
        _("messages per second"), default=100, validators=[MinValueValidator(1)],
        help_text=_("The vendor's limit; all workers together stay under it."))
    batch_size = models.PositiveIntegerField(_("messages per request"), default=100,
                                             validators=[MinValueValidator(1), MaxValueValidator(1000)])
    max_attempts = models.PositiveSmallIntegerField(_("attempts before giving up"), default=5,
                                                    validators=[MinValueValidator(1), MaxValueValidator(20)])
    cost_per_message = models.DecimalField(_("cost per message (¥)"), max_digits=8, decimal_places=4, default=0)
    is_active = models.BooleanField(_("active"), default=True)
    last_test_at = models.DateTimeField(_("last connection test"), null=True, blank=True, editable=False)
    last_test_result = models.CharField(_("result of the last test"), max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("destination")
        verbose_name_plural = _("channels and destinations")
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(kind__in=["webhook", "email", "aliyun_sms", "wechat",
                                                                    "audience_file"]),
                                              name="destination_kind_valid")]

    def __str__(self):
        return self.name


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        FINISHED = "finished", _("Finished")
        CANCELLED = "cancelled", _("Cancelled")

    class AudienceKind(models.TextChoices):
        SEGMENT = "segment", _("Members of a segment")
        TRIGGER_SEGMENT = "trigger_segment", _("Trigger: entered a segment")
        TRIGGER_EVENT = "trigger_event", _("Trigger: did an event (and not another one)")

    class Schedule(models.TextChoices):
        NOW = "now", _("Now")
        AT = "at", _("At a time")
        DAILY = "daily", _("Every day")
        WEEKLY = "weekly", _("Every week")

    name = models.CharField(_("name"), max_length=150)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    purpose = models.ForeignKey(Purpose, verbose_name=_("purpose"), on_delete=models.PROTECT, related_name="+",
                                help_text=_("Fixes the channel and the consent that must count."))
    destination = models.ForeignKey(Destination, verbose_name=_("destination"), on_delete=models.PROTECT,
                                    related_name="campaigns")
    audience_kind = models.CharField(_("audience"), max_length=16, choices=AudienceKind.choices,
                                     default=AudienceKind.SEGMENT)
    segment = models.ForeignKey(Segment, verbose_name=_("segment"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+")
    trigger_event = models.CharField(_("event that starts it"), max_length=64, blank=True)
    trigger_where = models.JSONField(_("property filters"), default=list, blank=True,
                                     help_text=_('Like the segment builder: [{"property": "category", "op": "eq", '
                                                 '"value": "shoes"}].'))
    trigger_unless_event = models.CharField(_("unless this event follows"), max_length=64, blank=True)
    trigger_within_minutes = models.PositiveIntegerField(_("within (minutes)"), default=0)
    delay_minutes = models.PositiveIntegerField(_("wait before sending (minutes)"), default=0)
    trigger_once_per_days = models.PositiveIntegerField(_("at most once per customer every (days)"), default=1,
                                                        validators=[MinValueValidator(1)])
    schedule = models.CharField(_("when"), max_length=8, choices=Schedule.choices, default=Schedule.NOW)
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    holdout_percent = models.PositiveSmallIntegerField(
        _("holdout (%)"), default=10, validators=[MaxValueValidator(50)],
        help_text=_("Kept back as a control group, never sent; chosen from the customer and the campaign."))
    cap_messages = models.PositiveSmallIntegerField(
        _("frequency cap: messages"), null=True, blank=True,
        help_text=_("At most this many messages per customer on the channel in the window, across all "
                    "campaigns. Empty: the default."))
    cap_days = models.PositiveSmallIntegerField(_("frequency cap: days"), null=True, blank=True,
                                                validators=[MinValueValidator(1)])
    ignore_quiet_hours = models.BooleanField(_("send during quiet hours"), default=False)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.DRAFT)
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True, editable=False)
    approval_requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, editable=False,
                                              on_delete=models.SET_NULL, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("approved by"), null=True, blank=True,
                                    editable=False, on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True, editable=False)
    launched_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("launched by"), null=True, blank=True,
                                    editable=False, on_delete=models.SET_NULL, related_name="+")
    launched_at = models.DateTimeField(_("launched at"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True, editable=False)
    trigger_evaluated_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(_("why it stopped"), blank=True, editable=False)
    # The goal: what counts as a conversion, and for how long after the send.
    goal_event = models.CharField(_("conversion event"), max_length=64, blank=True,
                                  help_text=_("The event that counts as a conversion, e.g. order. Empty: no goal."))
    goal_where = models.JSONField(_("conversion property filters"), default=list, blank=True,
                                  help_text=_('Like the segment builder: [{"property": "category", "op": "eq", '
                                              '"value": "shoes"}].'))
    attribution_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"), default=7, validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text=_("Conversions count this many days after the send (or the holdout's would-be send time)."))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at"]
        permissions = [
            ("launch_campaign", _("Can launch, pause and cancel campaigns")),
            ("approve_campaign", _("Can approve large campaigns")),
            ("exceed_frequency_cap", _("Can give a campaign a looser frequency cap than the default")),
            ("view_campaign_results", _("Can read campaign results")),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(audience_kind="segment") | Q(segment__isnull=False),
                                   name="campaign_segment_audience_names_segment"),
            models.CheckConstraint(condition=Q(cap_messages__isnull=True, cap_days__isnull=True)
                                   | Q(cap_messages__isnull=False, cap_days__isnull=False),
                                   name="campaign_cap_both_or_neither"),
        ]

    def __str__(self):
        return self.name

    @property
    def channel(self) -> str:
        return self.purpose.channel

    @property
    def is_trigger(self) -> bool:
        return self.audience_kind != self.AudienceKind.SEGMENT

    @property
    def is_editable(self) -> bool:
        """Only a draft: what an approver approves is what was asked for (to change a
        campaign awaiting approval, cancel it and copy it as a new draft)."""
        return self.status == self.Status.DRAFT

    def frequency_cap(self) -> tuple[int, int]:
        """(messages, days) that count for this campaign."""
        if self.cap_messages is not None:
            return self.cap_messages, self.cap_days
        return tuple(settings.CAMPAIGN_FREQUENCY_CAP)


class Variant(models.Model):
    """One version of the message. Customers are split between a campaign's variants by
    weight, deterministically from the customer and the campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(_("variant"), max_length=1, default="A")
    weight = models.PositiveSmallIntegerField(_("share (%)"), default=100,
                                              validators=[MinValueValidator(1), MaxValueValidator(100)])
    subject = models.CharField(_("subject"), max_length=200, blank=True, help_text=_("E-mail only."))
    body = models.TextField(_("message"), blank=True,
                            help_text=_("Tokens: {{ name }}, {{ city }}, {{ tier }}, {{ top_interest }}, "
                                        "{{ coupon }}, {{ link }}."))
    link_url = models.URLField(_("link"), max_length=500, blank=True,
                               help_text=_("Where {{ link }} leads; clicks are counted through our redirect."))
    sms_template_code = models.CharField(_("SMS template code"), max_length=64, blank=True,
                                         help_text=_("The vendor's approved template, e.g. SMS_123456789."))
    sms_sign_name = models.CharField(_("SMS signature (签名)"), max_length=40, blank=True)
    wechat_template_id = models.CharField(_("WeChat template id"), max_length=100, blank=True)
    coupon_pool = models.ForeignKey("CouponPool", verbose_name=_("coupon codes"), null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["campaign", "label"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "label"], name="variant_label_unique"),
            models.CheckConstraint(condition=Q(label__in=["A", "B", "C", "D"]), name="variant_label_valid"),
        ]

    def __str__(self):
        return f"{self.campaign} · {self.label}"


class CampaignRun(models.Model):
    """One decision of who gets the message: a send (now, at a time, or each recurrence)
    or, for a trigger campaign, the standing run its triggered deliveries join. Keeps
    the eligibility funnel as it was when decided."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    started_at = models.DateTimeField(_("decided at"), default=timezone.now)
    funnel = models.JSONField(_("eligibility funnel"), default=dict)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)

    class Meta:
        verbose_name = _("campaign run")
        verbose_name_plural = _("campaign runs")
        ordering = ["-started_at"]


class Delivery(models.Model):
    """The outbox: one message to one customer in one run, written in the transaction
    that decided it, sent by a worker, updated by receipts. Its idempotency key is
    "cdp-<id>" (campaigns.destinations.delivery_key), the same on every attempt."""

    class Status(models.TextChoices):
        HOLDOUT = "holdout", _("Holdout (not sent)")
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")
        DEAD = "dead", _("Dead letter")
        STOPPED = "stopped", _("Stopped before sending")

    # No database foreign keys to the big tables: rows are written by the hundred thousand
    # in one INSERT … SELECT for customers that statement reads (as memberships do).
    run = models.ForeignKey(CampaignRun, on_delete=models.CASCADE, related_name="deliveries")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    variant = models.ForeignKey(Variant, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="+", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+", db_constraint=False,
                                db_index=False)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    address = models.CharField(_("address"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(_("decided at"), default=timezone.now)
    not_before = models.DateTimeField(_("not before"), default=timezone.now)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    opened_at = models.DateTimeField(_("opened at"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked at"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)
    vendor_id = models.CharField(_("vendor's message id"), max_length=100, blank=True)
    error = models.CharField(_("last error"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            # one message per person per run
            models.UniqueConstraint(fields=["run", "profile"], name="delivery_once_per_run"),
        ]
        indexes = [
            # workers: the next queued deliveries of a destination that are due
            models.Index(fields=["destination", "not_before"], condition=Q(status="queued"),
                         name="delivery_queue"),
            # frequency caps: a customer's recent messages on a channel
            models.Index(fields=["profile", "channel", "created_at"], name="delivery_cap"),
            models.Index(fields=["campaign", "status"], name="delivery_campaign_status"),
        ]


class Receipt(models.Model):
    """What a destination told us about a delivery, once per (delivery, kind)."""

    class Kind(models.TextChoices):
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")
        OPENED = "opened", _("Opened")
        CLICKED = "clicked", _("Clicked")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        COMPLAINED = "complained", _("Complained")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="receipts")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    detail = models.CharField(_("detail"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        constraints = [models.UniqueConstraint(fields=["delivery", "kind"], name="receipt_once_per_kind")]


class CouponPool(models.Model):
    """Single-use coupon codes, uploaded as a file or generated here (prefix + random
    characters from an alphabet without 0/O/1/I/L); each sent delivery takes one."""

    class Source(models.TextChoices):
        UPLOAD = "upload", _("Uploaded codes")
        GENERATE = "generate", _("Generated codes")

    name = models.CharField(_("name"), max_length=150)
    source = models.CharField(_("where the codes come from"), max_length=10, choices=Source.choices,
                              default=Source.UPLOAD)
    prefix = models.CharField(_("prefix"), max_length=20, blank=True,
                              help_text=_("Generated codes start with it, e.g. SPRING-."))
    code_length = models.PositiveSmallIntegerField(_("random characters"), null=True, blank=True,
                                                   help_text=_("How many random characters follow the prefix."))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("coupon pool")
        verbose_name_plural = _("coupon pools")
        constraints = [models.CheckConstraint(condition=Q(source="upload") | Q(code_length__gte=6),
                                              name="coupon_pool_generated_has_length")]

    def __str__(self):
        return self.name


class Coupon(models.Model):
    pool = models.ForeignKey(CouponPool, on_delete=models.CASCADE, related_name="coupons")
    code = models.CharField(_("code"), max_length=64)
    delivery = models.OneToOneField(Delivery, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="coupon")
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True, editable=False,
                                       help_text=_("When an order event of the customer carried the code."))

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        constraints = [models.UniqueConstraint(fields=["pool", "code"], name="coupon_code_unique")]
        indexes = [models.Index(fields=["pool"], condition=Q(delivery__isnull=True), name="coupon_free")]


class CampaignResult(models.Model):
    """What came of a campaign, computed from deliveries and events (campaigns.results):
    recomputed while its attribution window is open, frozen once it has closed. `data`
    holds the whole campaign and each variant, treated against the holdout."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="result")
    computed_at = models.DateTimeField(_("computed at"))
    window_closes_at = models.DateTimeField(_("attribution window closes"), null=True, blank=True)
    is_final = models.BooleanField(_("final"), default=False)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    data = models.JSONField(_("result"), default=dict)

    class Meta:
        verbose_name = _("campaign result")
        verbose_name_plural = _("campaign results")
