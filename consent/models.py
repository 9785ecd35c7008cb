"""Consent and privacy: purposes, notices, the append-only consent ledger and the current
state derived from it, do-not-contact, data subject requests and the partners to tell of
an erasure. The erased people's identifiers themselves live in profiles (Suppression)."""
import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from profiles import models as profiles_models
from profiles.models import Profile


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PHONE = "phone", _("Phone call")
    WECHAT = "wechat", _("WeChat")
    APP_PUSH = "app_push", _("App push")
    NONE = "none", _("No channel")


class LawfulBasis(models.TextChoices):
    CONSENT = "consent", _("Consent")
    CONTRACT = "contract", _("Contract")
    LEGAL_OBLIGATION = "legal_obligation", _("Legal obligation")
    LEGITIMATE_INTEREST = "legitimate_interest", _("Legitimate interest")


class PiplCategory(models.TextChoices):
    MARKETING = "marketing", _("Marketing")
    PERSONALISATION = "personalisation", _("Personalisation")
    ANALYTICS = "analytics", _("Analytics")
    SENSITIVE = "sensitive", _("Sensitive personal information")
    THIRD_PARTY = "third_party", _("Sharing with a third party")
    CROSS_BORDER = "cross_border", _("Cross-border transfer")


def _localised(zh: str, en: str) -> str:
    return zh if (get_language() or "zh-hans").startswith("zh") and zh else (en or zh)


class Purpose(models.Model):
    """Why personal data is processed. Purposes based on consent count only with a
    current grant (unknown = not granted); the other lawful bases count unless the
    person objected (a denial or withdrawal on record)."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    description_zh = models.TextField(_("description (Chinese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices, default=Channel.NONE)
    lawful_basis = models.CharField(_("lawful basis"), max_length=24, choices=LawfulBasis.choices,
                                    default=LawfulBasis.CONSENT)
    pipl_category = models.CharField(_("PIPL category"), max_length=24, choices=PiplCategory.choices)
    recipient = models.CharField(_("recipient"), max_length=150, blank=True,
                                 help_text=_("Required for sharing with a third party and cross-border transfer."))
    recipient_country = models.CharField(_("recipient country"), max_length=2, blank=True,
                                         help_text=_("ISO code, e.g. DE; required for cross-border transfer."))
    # Grants under an older notice than this do not count (a notice that requires
    # re-consent was published): kept here so that the state query stays one join.
    reconsent_from_version = models.PositiveIntegerField(_("re-consent required from notice version"), default=0,
                                                         editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("purpose")
        verbose_name_plural = _("purposes")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="purpose_channel_valid"),
            models.CheckConstraint(condition=Q(lawful_basis__in=LawfulBasis.values), name="purpose_basis_valid"),
            models.CheckConstraint(condition=Q(pipl_category__in=PiplCategory.values), name="purpose_category_valid"),
            models.CheckConstraint(
                condition=~Q(pipl_category__in=["third_party", "cross_border"]) | ~Q(recipient=""),
                name="purpose_sharing_names_recipient",
            ),
            models.CheckConstraint(
                condition=~Q(pipl_category="cross_border") | ~Q(recipient_country=""),
                name="purpose_cross_border_names_country",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def name(self) -> str:
        return _localised(self.name_zh, self.name_en)

    @property
    def description(self) -> str:
        return _localised(self.description_zh, self.description_en)

    @property
    def needs_consent(self) -> bool:
        return self.lawful_basis == LawfulBasis.CONSENT


class Notice(models.Model):
    """The text shown to the person when asking, versioned per purpose."""

    purpose = models.ForeignKey(Purpose, verbose_name=_("purpose"), on_delete=models.PROTECT, related_name="notices")
    version = models.PositiveIntegerField(_("version"))
    text_zh = models.TextField(_("text (Chinese)"))
    text_en = models.TextField(_("text (English)"), blank=True)
    requires_reconsent = models.BooleanField(
        _("requires re-consent"), default=False,
        help_text=_("Consent given under earlier versions stops counting once this version is published."),
    )
    published_at = models.DateTimeField(_("published at"), default=timezone.now)

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["purpose", "-version"]
        constraints = [models.UniqueConstraint(fields=["purpose", "version"], name="notice_version_unique")]

    def __str__(self):
        return f"{self.purpose.code} v{self.version}"

    @property
    def text(self) -> str:
        return _localised(self.text_zh, self.text_en)


class ConsentStatus(models.TextChoices):
    GRANTED = "granted", _("Granted")
    DENIED = "denied", _("Denied")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class ConsentSource(models.TextChoices):
    ADMIN = "admin", _("Admin")
    API = "api", _("API")
    IMPORT = "import", _("Import")
    WEB_FORM = "web_form", _("Web form")
    PAPER = "paper", _("Offline paper form")


class LedgerQuerySet(models.QuerySet):
    """Refuses bulk updates and deletes: the ledger only grows."""

    def update(self, **kwargs):
        raise LedgerIsAppendOnly(_("The consent ledger is append-only: entries cannot be changed."))

    def delete(self):
        raise LedgerIsAppendOnly(_("The consent ledger is append-only: entries cannot be deleted."))

    def pseudonymise(self, **personal_fields) -> int:
        """Erasure's one exception: overwrite the evidence of these entries, keep the rest."""
        return super().update(pseudonymised=True, **personal_fields)


class LedgerIsAppendOnly(Exception):
    pass


class ConsentRecord(models.Model):
    """One entry of the append-only ledger. Never updated or deleted by the application
    (on PostgreSQL a trigger refuses it), except that erasure pseudonymises the evidence
    and keeps the row as proof."""

    # No index of its own: consent_ledger_by_profile starts with it (one index less per entry).
    profile = models.ForeignKey(Profile, verbose_name=_("customer"), on_delete=models.PROTECT,
                                related_name="consent_records", db_index=False)
    purpose = models.ForeignKey(Purpose, verbose_name=_("purpose"), on_delete=models.PROTECT, related_name="records")
    status = models.CharField(_("status"), max_length=16, choices=ConsentStatus.choices)
    notice_version = models.PositiveIntegerField(_("notice version"), null=True, blank=True)
    captured_at = models.DateTimeField(_("captured at"), help_text=_("When the person gave or withdrew it."))
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    source = models.CharField(_("source"), max_length=16, choices=ConsentSource.choices)
    evidence_channel = models.CharField(_("evidence channel"), max_length=16, choices=Channel.choices, blank=True)
    evidence_ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    evidence_user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    evidence_reference = models.CharField(_("form or document reference"), max_length=200, blank=True)
    evidence_text = models.TextField(_("evidence notes"), blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    guardian_consent = models.BooleanField(_("given by a guardian"), default=False)
    actor_kind = models.CharField(_("by"), max_length=16, default="staff")
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("staff member"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(_("recorded by"), max_length=150, blank=True)
    pseudonymised = models.BooleanField(_("pseudonymised"), default=False, editable=False)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent ledger")
        ordering = ["-captured_at", "-id"]
        indexes = [models.Index(fields=["profile", "purpose", "-captured_at"], name="consent_ledger_by_profile")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ConsentStatus.values), name="consent_record_status_valid"),
            models.CheckConstraint(condition=Q(source__in=ConsentSource.values), name="consent_record_source_valid"),
        ]

    def __str__(self):
        return f"{self.purpose.code} · {self.get_status_display()} · {self.captured_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerIsAppendOnly(_("The consent ledger is append-only: entries cannot be changed."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerIsAppendOnly(_("The consent ledger is append-only: entries cannot be deleted."))


class ConsentState(models.Model):
    """The latest ledger entry per customer and purpose (by capture time), written in
    the same transaction as the entry. Whether it counts right now (expiry, notice
    version, guardian consent for minors) is decided by consent.selectors at query time."""

    profile = models.ForeignKey(Profile, verbose_name=_("customer"), on_delete=models.CASCADE,
                                related_name="consent_states")
    # No index of its own: consent_state_unique starts with it.
    purpose = models.ForeignKey(Purpose, verbose_name=_("purpose"), on_delete=models.PROTECT, related_name="states",
                                db_index=False)
    status = models.CharField(_("status"), max_length=16, choices=ConsentStatus.choices)
    notice_version = models.PositiveIntegerField(_("notice version"), null=True, blank=True)
    captured_at = models.DateTimeField(_("captured at"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    guardian_consent = models.BooleanField(_("given by a guardian"), default=False)
    # Never looked up by record, and ledger entries are never deleted: no index to keep up.
    record = models.ForeignKey(ConsentRecord, on_delete=models.PROTECT, related_name="+", db_index=False)

    class Meta:
        verbose_name = _("consent state")
        verbose_name_plural = _("consent states")
        constraints = [models.UniqueConstraint(fields=["purpose", "profile"], name="consent_state_unique")]
        indexes = [models.Index(fields=["purpose", "status", "profile"], name="consent_state_lookup")]


class DoNotContactReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    BOUNCED = "bounced", _("Bounced")
    COMPLAINT = "complaint", _("Complaint")
    MANUAL = "manual", _("Set by staff")


class DoNotContact(models.Model):
    """Never contact this customer on this channel, whatever their purpose consents say.
    Lifting it is a deliberate staff action (kept: lifted_at / lifted_by); imports and
    the API can add entries but never lift them."""

    profile = models.ForeignKey(Profile, verbose_name=_("customer"), on_delete=models.CASCADE,
                                related_name="do_not_contact")
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    reason = models.CharField(_("reason"), max_length=16, choices=DoNotContactReason.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("since"), default=timezone.now)
    created_by = models.CharField(_("set by"), max_length=150, blank=True)
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.CharField(_("lifted by"), max_length=150, blank=True)
    lift_reason = models.CharField(_("why lifted"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("do-not-contact entry")
        verbose_name_plural = _("do not contact")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "channel"], condition=Q(lifted_at__isnull=True),
                                    name="dnc_one_active_per_channel"),
            models.CheckConstraint(condition=Q(reason__in=DoNotContactReason.values), name="dnc_reason_valid"),
        ]

    def __str__(self):
        return f"{self.get_channel_display()} · {self.get_reason_display()}"


DSR_RESPONSE_DAYS = 30


class DataSubjectRequest(models.Model):
    """A person exercising their rights (GDPR Arts. 15–18, PIPL Arts. 44–47): answered
    within 30 days of receipt, or by the extended date with a reason."""

    class Kind(models.TextChoices):
        ACCESS = "access", _("Access / export")
        ERASURE = "erasure", _("Erasure")
        RECTIFICATION = "rectification", _("Rectification")
        RESTRICTION = "restriction", _("Restriction of processing")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")
        REFUSED = "refused", _("Refused")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    profile = models.ForeignKey(Profile, verbose_name=_("customer"), null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="data_requests")
    requester = models.CharField(_("requester"), max_length=150, help_text=_("Name and how they asked."))
    contact = models.CharField(_("contact for the answer"), max_length=200, blank=True)
    details = models.TextField(_("details"), blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    due_at = models.DateTimeField(_("due"), editable=False)
    extended_until = models.DateTimeField(_("extended until"), null=True, blank=True)
    extension_reason = models.CharField(_("reason for the extension"), max_length=300, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RECEIVED)
    handled_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("handled by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    outcome = models.TextField(_("outcome"), blank=True)

    class Meta:
        verbose_name = _("data subject request")
        verbose_name_plural = _("data subject requests")
        ordering = ["status", "due_at"]
        permissions = [("erase_profile", _("Can erase a customer (cannot be undone)"))]
        constraints = [
            models.CheckConstraint(condition=Q(extended_until__isnull=True) | ~Q(extension_reason=""),
                                   name="dsr_extension_has_reason"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · {self.requester}"

    def save(self, *args, **kwargs):
        if not self.due_at:
            self.due_at = self.received_at + datetime.timedelta(days=DSR_RESPONSE_DAYS)
        super().save(*args, **kwargs)

    @property
    def deadline(self) -> datetime.datetime:
        return self.extended_until or self.due_at

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.RECEIVED, self.Status.IN_PROGRESS)


class Suppression(profiles_models.Suppression):
    """The suppressed identifiers (profiles.Suppression, written and read only through
    profiles.services.suppression) as the privacy pages list them: under consent and
    privacy, with the permission (consent.view_suppression) they always had."""

    class Meta:
        proxy = True
        verbose_name = _("suppressed identifier")
        verbose_name_plural = _("suppressed identifiers")


class ErasureNotice(models.Model):
    """Tells a partner that received a person's data that the person was erased
    (PIPL Art. 47, GDPR Art. 19). Queued at erasure, sent by a task."""

    recipient = models.CharField(_("recipient"), max_length=150)
    subject_digest = models.CharField(_("person (hashed)"), max_length=64)
    request = models.ForeignKey(DataSubjectRequest, verbose_name=_("request"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="erasure_notices")
    queued_at = models.DateTimeField(_("queued at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("erasure notice to a partner")
        verbose_name_plural = _("erasure notices to partners")
