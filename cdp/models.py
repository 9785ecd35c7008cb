"""Platform-wide records: the audit log, partners and their API keys."""
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
        API_CALL = "api_call", _("API call")
        API_AUTH_FAILED = "api_auth_failed", _("API calls with an invalid key")
        CONSENT_RECORDED = "consent_recorded", _("Consent recorded")
        NOTICE_PUBLISHED = "notice_published", _("Notice published")
        DO_NOT_CONTACT_ADDED = "do_not_contact_added", _("Do-not-contact set")
        DO_NOT_CONTACT_LIFTED = "do_not_contact_lifted", _("Do-not-contact lifted")
        SEGMENT_EXPORTED = "segment_exported", _("Segment exported")
        DATA_REQUEST_RECEIVED = "data_request_received", _("Data subject request received")
        DATA_REQUEST_EXTENDED = "data_request_extended", _("Data subject request extended")
        DATA_REQUEST_COMPLETED = "data_request_completed", _("Data subject request completed")
        DATA_REQUEST_REFUSED = "data_request_refused", _("Data subject request refused")
        SUBJECT_DATA_EXPORTED = "subject_data_exported", _("Personal data exported for a request")
        PROFILE_ERASED = "profile_erased", _("Customer erased")
        IMPORT_UNDONE = "import_undone", _("Import undone")
        CONSENT_STATE_REPAIRED = "consent_state_repaired", _("Consent states rebuilt from the ledger")
        CAMPAIGN_LAUNCHED = "campaign_launched", _("Campaign launched")
        CAMPAIGN_APPROVAL_REQUESTED = "campaign_approval_requested", _("Campaign approval requested")
        CAMPAIGN_APPROVED = "campaign_approved", _("Campaign approved")
        CAMPAIGN_PAUSED = "campaign_paused", _("Campaign paused")
        CAMPAIGN_RESUMED = "campaign_resumed", _("Campaign resumed")
        CAMPAIGN_CANCELLED = "campaign_cancelled", _("Campaign cancelled")
        CAMPAIGN_RESENT = "campaign_resent", _("Campaign dead letters re-sent")
        CAMPAIGN_TEST_SENT = "campaign_test_sent", _("Campaign test message sent")
        EVENTS_EXPIRED = "events_expired", _("Expired events deleted")

    action = models.CharField(_("action"), max_length=40, choices=Action.choices)
    actor_kind = models.CharField(_("by"), max_length=16, default="staff")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("staff member"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )
    actor_label = models.CharField(_("actor"), max_length=150, blank=True)
    # Partners are deactivated, never deleted, once they have called the API.
    # No index of its own: audit_partner_time starts with it (every API call writes a row).
    partner = models.ForeignKey(
        "cdp.Partner", verbose_name=_("partner"), null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        db_index=False,
    )
    target = models.CharField(_("target"), max_length=100, blank=True, help_text=_("e.g. a customer's public id"))
    details = models.JSONField(_("details"), default=dict, blank=True)
    count = models.PositiveIntegerField(_("records"), default=1)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["target", "-occurred_at"], name="audit_target_time"),
            models.Index(fields=["partner", "-occurred_at"], name="audit_partner_time"),
        ]

    def __str__(self):
        return f"{self.get_action_display()} · {self.actor_label} · {self.occurred_at:%Y-%m-%d %H:%M}"


class Scope(models.TextChoices):
    """What an API key may do. A key holds a list of these; every route names the one it needs."""

    PROFILES_READ = "profiles:read", _("Read customer profiles")
    PROFILES_READ_ALL = "profiles:read_all", _("Read every customer, not only your own and shared segments' members")
    PROFILES_WRITE = "profiles:write", _("Create and update customer profiles")
    EVENTS_WRITE = "events:write", _("Send behaviour events")
    TAGS_WRITE = "tags:write", _("Assign and remove tags")
    SEGMENTS_READ = "segments:read", _("Read shared segments and their members")
    CONSENT_READ = "consent:read", _("Read consent")
    CONSENT_WRITE = "consent:write", _("Record consent")
    IMPORTS_WRITE = "imports:write", _("Upload files to import and follow their imports")


class Partner(models.Model):
    """An organisation that talks to the REST API: the shop, the app backend, an agency."""

    name = models.CharField(_("name"), max_length=150)
    code = models.SlugField(
        _("code"), max_length=40, unique=True,
        help_text=_("Short unique code; events a partner sends are stored with this code as their source."),
    )
    contact = models.CharField(_("contact"), max_length=254, blank=True, help_text=_("Who to call: name, email, phone."))
    is_active = models.BooleanField(_("active"), default=True, help_text=_("An inactive partner's keys stop working."))
    requests_per_minute = models.PositiveIntegerField(
        _("requests per minute"), null=True, blank=True,
        help_text=_("Empty: the platform default (CDP_API_REQUESTS_PER_MINUTE)."),
    )
    # Codes of consent purposes (consent.Purpose.code) the partner is registered for: it
    # gets customers' contact data only where consent for one of them counts. Codes, not a
    # foreign key: cdp is the bottom layer and does not depend on consent.
    purposes = models.JSONField(
        _("registered purposes"), default=list, blank=True,
        help_text=_("The partner receives phones, emails and identities only of customers whose consent for one "
                    "of these purposes counts (and who are not blocked on its channel)."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("partner")
        verbose_name_plural = _("partners")
        ordering = ["name"]

    def __str__(self):
        return self.name


class PartnerAPIKey(models.Model):
    """An API key of a partner. Only a hash of the key is stored (the key is shown once,
    when it is made); the prefix identifies it in lists and logs."""

    partner = models.ForeignKey(Partner, verbose_name=_("partner"), on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(_("name"), max_length=100, help_text=_("What uses this key, e.g. “shop backend”."))
    prefix = models.CharField(_("prefix"), max_length=8, unique=True, editable=False)
    hashed_key = models.CharField(_("hashed key"), max_length=200, editable=False)
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def clean(self):
        from django.core.exceptions import ValidationError

        if not isinstance(self.scopes, list) or not set(self.scopes) <= set(Scope.values):
            raise ValidationError({"scopes": _("Pick scopes from the list.")})

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def has_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class PartnerCustomer(models.Model):
    """A customer the partner itself sent: created or updated through the upsert route, or
    named in an event it sent. With shared segments' members these are the customers a
    partner may read (unless its key has profiles:read_all). The customer is named by its
    public id, not a foreign key: cdp is the bottom layer and does not depend on profiles."""

    partner = models.ForeignKey(Partner, verbose_name=_("partner"), on_delete=models.CASCADE, related_name="+")
    profile_uuid = models.UUIDField(_("customer's public id"))
    first_sent_at = models.DateTimeField(_("first sent at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer sent by a partner")
        verbose_name_plural = _("customers sent by partners")
        constraints = [models.UniqueConstraint(fields=["partner", "profile_uuid"], name="partner_customer_unique")]

    def __str__(self):
        return f"{self.partner_id} → {self.profile_uuid}"
