"""Profiles, their identities and the registry of custom traits."""
import datetime
import decimal
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from ..normalisers import normalise_date


class Gender(models.TextChoices):
    MALE = "male", _("Male")
    FEMALE = "female", _("Female")
    UNKNOWN = "unknown", _("Unknown")


class ProfileStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    MERGED = "merged", _("Merged")
    ERASED = "erased", _("Erased")


class LifecycleStage(models.TextChoices):
    """See `profiles.metrics` for the rules; analytics use the same ones."""

    PROSPECT = "prospect", _("Prospect (no activity yet)")
    NEW = "new", _("New")
    ACTIVE = "active", _("Active")
    RETURNING = "returning", _("Returning")
    DORMANT = "dormant", _("Dormant")
    CHURNED = "churned", _("Churned")


class AttributeType(models.TextChoices):
    STRING = "string", _("Text")
    NUMBER = "number", _("Number")
    BOOLEAN = "boolean", _("Yes/no")
    DATE = "date", _("Date")
    CHOICE = "choice", _("Choice")


class AttributeDefinition(models.Model):
    """Registers a custom trait: the only keys `Profile.traits` may hold, and their type."""

    key = models.SlugField(_("key"), max_length=64, unique=True)
    label = models.CharField(_("label"), max_length=100)
    type = models.CharField(_("type"), max_length=16, choices=AttributeType.choices)
    choices = models.JSONField(
        _("choices"), default=list, blank=True, help_text=_("Allowed values, for the choice type.")
    )
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("attribute definition")
        verbose_name_plural = _("attribute definitions")
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(
                condition=Q(type__in=AttributeType.values), name="attribute_type_valid"
            ),
        ]

    def __str__(self):
        return f"{self.label} ({self.key})"

    def clean(self):
        if self.type == AttributeType.CHOICE and not self.choices:
            raise ValidationError({"choices": _("A choice attribute needs at least one choice.")})
        if not isinstance(self.choices, list):
            raise ValidationError({"choices": _("Choices must be a list of values.")})

    def coerce(self, value):
        """The stored (JSON) form of `value` for this type; ValidationError if it does not fit."""
        if value is None or value == "":
            return None
        try:
            if self.type == AttributeType.STRING:
                return str(value)
            if self.type == AttributeType.NUMBER:
                if isinstance(value, bool):
                    raise ValueError
                number = decimal.Decimal(str(value).strip())
                if not number.is_finite():
                    raise ValueError
                return int(number) if number == number.to_integral_value() else float(number)
            if self.type == AttributeType.BOOLEAN:
                if isinstance(value, bool):
                    return value
                text = str(value).strip().lower()
                if text in {"1", "true", "yes", "y", "是", "真"}:
                    return True
                if text in {"0", "false", "no", "n", "否", "假"}:
                    return False
                raise ValueError
            if self.type == AttributeType.DATE:
                return normalise_date(value).isoformat()
            if self.type == AttributeType.CHOICE:
                if str(value) not in [str(c) for c in self.choices]:
                    raise ValueError
                return str(value)
        except (ValueError, ArithmeticError, TypeError):
            pass
        raise ValidationError(
            _("“%(value)s” is not a valid %(type)s for %(label)s."),
            code="invalid_trait",
            params={"value": value, "type": self.get_type_display(), "label": self.label},
        )


class IdentityKind(models.Model):
    """A kind of key that identifies a person: built-in (phone, email, CRM id, WeChat
    ids, device id) or added by staff for a partner's own ids."""

    PHONE = "phone"
    EMAIL = "email"
    CRM_ID = "crm_id"
    WECHAT_OPENID = "wechat_openid"
    WECHAT_UNIONID = "wechat_unionid"
    WECHAT_ID = "wechat_id"
    DEVICE_ID = "device_id"
    ANONYMOUS_ID = "anonymous_id"

    code = models.SlugField(_("code"), max_length=40, primary_key=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    is_builtin = models.BooleanField(_("built in"), default=False, editable=False)
    merge_on = models.BooleanField(
        _("strong enough to merge on"), default=True,
        help_text=_(
            "When an import or API call brings this identity and it belongs to another customer, treat both as "
            "the same person. Turn off for keys several people may share, such as device ids."
        ),
    )

    class Meta:
        verbose_name = _("identity kind")
        verbose_name_plural = _("identity kinds")
        ordering = ["code"]

    def __str__(self):
        # Built-in names are English source strings with zh_Hans translations.
        return gettext(self.name)


class Profile(models.Model):
    uuid = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(pgettext_lazy("person", "name"), max_length=200, blank=True)
    gender = models.CharField(
        _("gender"), max_length=16, choices=Gender.choices, default=Gender.UNKNOWN
    )
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True, help_text=_("E.164, e.g. +8613800138000"))
    email = models.CharField(_("email"), max_length=254, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, default="CN")
    province = models.CharField(_("province"), max_length=50, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True)
    occupation = models.CharField(_("occupation"), max_length=100, blank=True)
    traits = models.JSONField(_("custom traits"), default=dict, blank=True)

    status = models.CharField(
        _("status"), max_length=16, choices=ProfileStatus.choices, default=ProfileStatus.ACTIVE
    )
    merged_into = models.ForeignKey(
        "self", verbose_name=_("merged into"), null=True, blank=True,
        on_delete=models.PROTECT, related_name="merged_profiles",
        db_index=False,  # almost always empty: a partial index (Meta) holds only the merged ones
    )

    # Computed from events by profiles.metrics; never edited by hand.
    first_seen_at = models.DateTimeField(_("first seen"), null=True, blank=True, editable=False)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True, editable=False)
    order_count = models.PositiveIntegerField(_("orders"), default=0, editable=False)
    total_spent = models.DecimalField(
        _("total spent"), max_digits=14, decimal_places=2, default=decimal.Decimal("0"), editable=False
    )
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True, editable=False)
    rfm_recency = models.PositiveSmallIntegerField(_("R score"), null=True, blank=True, editable=False)
    rfm_frequency = models.PositiveSmallIntegerField(_("F score"), null=True, blank=True, editable=False)
    rfm_monetary = models.PositiveSmallIntegerField(_("M score"), null=True, blank=True, editable=False)
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=16, choices=LifecycleStage.choices,
        default=LifecycleStage.PROSPECT, editable=False,
    )
    metrics_updated_at = models.DateTimeField(_("metrics updated"), null=True, blank=True, editable=False)

    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        permissions = [("view_personal_data", _("Can see personal data (phones, emails) unmasked"))]
        indexes = [
            # Tombstones by their survivor (merges, the consent ledger, a partner's reach): every
            # new customer would otherwise write an empty entry into a full index.
            models.Index(fields=["merged_into"], condition=models.Q(merged_into__isnull=False),
                         name="profile_merged_into"),
            models.Index(fields=["phone"], name="profile_phone"),
            models.Index(fields=["email"], name="profile_email"),
            models.Index(fields=["city"], name="profile_city"),
            models.Index(fields=["province"], name="profile_province"),  # the list's filter and place search
            models.Index(fields=["created_at"], name="profile_created"),
            models.Index(fields=["lifecycle_stage"], name="profile_lifecycle"),
            # Segments on money spent ("spent ≥ 3,000") pick their few customers from here,
            # without reading the table (covering id and status) on PostgreSQL.
            models.Index(fields=["total_spent"], include=["id", "status"], name="profile_total_spent"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(gender__in=Gender.values), name="profile_gender_valid"),
            models.CheckConstraint(condition=Q(status__in=ProfileStatus.values), name="profile_status_valid"),
            models.CheckConstraint(
                condition=Q(lifecycle_stage__in=LifecycleStage.values), name="profile_lifecycle_valid"
            ),
            # A merged profile is a tombstone pointing at its survivor; nothing else points.
            models.CheckConstraint(
                condition=(Q(status=ProfileStatus.MERGED) & Q(merged_into__isnull=False))
                | (~Q(status=ProfileStatus.MERGED) & Q(merged_into__isnull=True)),
                name="profile_merged_into_iff_merged",
            ),
            models.CheckConstraint(condition=Q(total_spent__gte=0), name="profile_total_spent_not_negative"),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__range": (1, 5)}),
                    name=f"profile_{field}_1_to_5",
                )
                for field in ("rfm_recency", "rfm_frequency", "rfm_monetary")
            ],
        ]

    def __str__(self):
        # Never the phone or email in clear: this text is shown in lists, titles and the
        # admin's log to staff who may only see them masked.
        from ..masking import mask_email, mask_phone  # masking imports the models

        return self.name or mask_phone(self.phone) or mask_email(self.email) or str(self.uuid)

    def clean(self):
        errors = {}
        if self.birth_date and self.birth_date > timezone.localdate():
            errors["birth_date"] = _("The birth date is in the future.")
        if not isinstance(self.traits, dict):
            errors["traits"] = _("Custom traits must be an object of key → value.")
        else:
            try:
                self.traits = clean_traits(self.traits)
            except ValidationError as exc:
                errors["traits"] = exc.messages
        if errors:
            raise ValidationError(errors)

    @property
    def age(self) -> int | None:
        return age_on(self.birth_date, timezone.localdate()) if self.birth_date else None


def age_on(birth_date: datetime.date, day: datetime.date) -> int:
    """Whole years completed on `day` (a 29 February birthday completes on 1 March)."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def born_by(years: int, today: datetime.date) -> datetime.date:
    """The latest birth date of someone at least `years` old on `today`; agrees with
    age_on (when today is 29 February, that year back may only have a 28th)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def clean_traits(traits: dict) -> dict:
    """Traits coerced to their registered types; ValidationError naming unknown keys."""
    definitions = {d.key: d for d in AttributeDefinition.objects.filter(key__in=list(traits))}
    unknown = sorted(set(traits) - set(definitions))
    if unknown:
        raise ValidationError(
            _("Unknown custom trait(s): %(keys)s. Register them as attribute definitions first."),
            code="unknown_trait",
            params={"keys": ", ".join(unknown)},
        )
    cleaned = {key: definitions[key].coerce(value) for key, value in traits.items()}
    return {key: value for key, value in cleaned.items() if value is not None}


class Identity(models.Model):
    """One key that identifies a person. (kind, value) is unique: one key, one profile."""

    # Imports write three identities per customer in bulk: without database foreign-key
    # constraints (see ProfileTag), whose checks at commit cost a third of an import's
    # database time. The services write them for existing customers and kinds; deleting
    # either goes through the ORM (cascade, or protect).
    profile = models.ForeignKey(Profile, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="identities",
                                db_constraint=False)
    # No index of its own: the unique (kind, value) index serves lookups by kind.
    kind = models.ForeignKey(IdentityKind, verbose_name=_("kind"), on_delete=models.PROTECT, db_column="kind",
                             db_index=False, db_constraint=False)
    value = models.CharField(_("value"), max_length=255)
    source = models.CharField(_("source"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="identity_kind_value_unique"),
            models.CheckConstraint(condition=~Q(value=""), name="identity_value_not_blank"),
        ]

    def __str__(self):
        # Masked like Profile's: the admin shows this text (an inline's row, the log).
        from ..masking import mask_identity  # masking imports the models

        return f"{self.kind_id}: {mask_identity(self.kind_id, self.value)}"
