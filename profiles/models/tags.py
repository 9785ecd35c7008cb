"""The tag taxonomy: a tree of categories, tags, tags on profiles, interest mappings."""
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from .profiles import Profile


# code: (the stored Chinese name, its English source string)
SEEDED_ROOT_NAMES = {
    "basic": ("基础标签", gettext_noop("Basic tags")),
    "behavioural": ("行为标签", gettext_noop("Behavioural tags")),
    "interest": ("兴趣标签", gettext_noop("Interest tags")),
    "value": ("价值标签", gettext_noop("Value tags")),
}


class TagCategory(models.Model):
    """A node in the taxonomy tree. The four roots (basic, behavioural, interest, value)
    are seeded; staff add sub-categories under them."""

    name = models.CharField(_("name"), max_length=100)
    parent = models.ForeignKey(
        "self", verbose_name=_("parent category"), null=True, blank=True,
        on_delete=models.PROTECT, related_name="children",
    )
    description = models.TextField(_("description"), blank=True)
    code = models.SlugField(
        _("code"), max_length=40, null=True, blank=True, unique=True, editable=False,
        help_text=_("Set on the four seeded roots, which code refers to."),
    )

    class Meta:
        verbose_name = _("tag category")
        verbose_name_plural = _("tag categories")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="tag_category_name_unique_per_parent"),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="tag_category_not_own_parent"),
        ]

    def __str__(self):
        return " › ".join(c.display_name for c in self.path())

    @property
    def display_name(self) -> str:
        # The seeded roots are stored in Chinese (migration 0017), shown in the reader's
        # language while staff keep the seeded name; other names are shown as typed.
        seeded = SEEDED_ROOT_NAMES.get(self.code)
        if seeded and self.name in seeded:
            return gettext(seeded[1])
        return gettext(self.name)

    def path(self) -> list["TagCategory"]:
        """Root first, this category last."""
        node, chain = self, []
        while node is not None and node not in chain:
            chain.append(node)
            node = node.parent
        return chain[::-1]

    def clean(self):
        if self.code and self.parent_id:
            raise ValidationError({"parent": _("A root category cannot be moved under another one.")})
        if self.pk and self.parent_id:
            node = self.parent
            while node is not None:
                if node.pk == self.pk:
                    raise ValidationError({"parent": _("A category cannot be placed under itself or its own sub-category.")})
                node = node.parent


class TagKind(models.TextChoices):
    MANUAL = "manual", _("Manual")
    RULE = "rule", _("Rule")
    INTEREST = "interest", _("Computed interest")


colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour like #1677ff."))


def synonyms_split(text: str) -> list[str]:
    """The words of a comma-separated list (，、 and ; too), blanks dropped."""
    return [word.strip() for word in re.split(r"[,，、;；]", text or "") if word.strip()]


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=100)
    synonyms = models.CharField(
        _("other names"), max_length=500, blank=True,
        help_text=_("What marketers also call it, separated by commas, e.g. 跑鞋, sneakers: the quick audience box "
                    "understands them."))
    slug = models.SlugField(
        _("slug"), max_length=100, unique=True, allow_unicode=True,
        help_text=_("Stable name used by segments, imports and the API."),
    )
    category = models.ForeignKey(TagCategory, verbose_name=_("category"), on_delete=models.PROTECT, related_name="tags")
    description = models.TextField(_("description"), blank=True, help_text=_("What it means and how it is set."))
    colour = models.CharField(_("colour"), max_length=7, default="#1677ff", validators=[colour_validator])
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="owned_tags",
    )
    kind = models.CharField(_("kind"), max_length=16, choices=TagKind.choices, default=TagKind.MANUAL)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("A retired tag keeps its history but cannot be assigned any more.")
    )
    merged_into = models.ForeignKey(
        "self", verbose_name=_("merged into"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="merged_tags", editable=False,
    )
    profile_count = models.PositiveIntegerField(_("customers"), default=0, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    # Rule tags: a condition in the segments' language, refreshed on a schedule. Every
    # change of the condition bumps the version, which the tag's reason names.
    rule_definition = models.JSONField(_("rule"), default=dict, blank=True)
    rule_version = models.PositiveIntegerField(_("rule version"), default=0, editable=False)
    rule_refreshed_at = models.DateTimeField(_("rule last refreshed"), null=True, blank=True, editable=False)
    rule_error = models.TextField(_("rule error"), blank=True, editable=False)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=TagKind.values), name="tag_kind_valid"),
            models.CheckConstraint(
                condition=Q(merged_into__isnull=True) | Q(is_active=False), name="tag_merged_is_retired"
            ),
        ]

    def __str__(self):
        return self.name


class TagSource(models.TextChoices):
    MANUAL = "manual", _("Manual")
    IMPORT = "import", _("Import")
    API = "api", _("API")
    RULE = "rule", _("Rule")
    INTEREST = "interest", _("Interest score")


class ProfileTag(models.Model):
    """A tag on a customer. Written set-based in hundreds of thousands at a time, so its
    references carry no database foreign-key constraint (PostgreSQL checks one row at a
    time, which took longer than the inserts themselves): the tag services are the only
    writers, they insert from existing rows under a lock on the tag, and deletions of
    customers and tags cascade through the ORM."""

    profile = models.ForeignKey(
        Profile, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="profile_tags",
        db_index=False, db_constraint=False,
    )
    tag = models.ForeignKey(
        Tag, verbose_name=_("tag"), on_delete=models.CASCADE, related_name="profile_tags", db_constraint=False
    )
    source = models.CharField(_("source"), max_length=16, choices=TagSource.choices, default=TagSource.MANUAL)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("assigned by"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+", db_index=False, db_constraint=False,
    )
    assigned_by_label = models.CharField(_("assigned by"), max_length=150, blank=True)
    assigned_at = models.DateTimeField(_("assigned at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    weight = models.FloatField(
        _("weight"), null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("Interest strength from 0 to 1."),
    )
    reason = models.CharField(_("reason"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("customer tag")
        verbose_name_plural = _("customer tags")
        constraints = [
            # (profile, tag) leads: a profile's tags; the tag FK index serves "who has tag X".
            models.UniqueConstraint(fields=["profile", "tag"], name="profile_tag_unique"),
            models.CheckConstraint(condition=Q(source__in=TagSource.values), name="profile_tag_source_valid"),
            models.CheckConstraint(
                condition=Q(weight__isnull=True) | Q(weight__gte=0, weight__lte=1), name="profile_tag_weight_0_1"
            ),
        ]

    @property
    def reason_display(self) -> str:
        """The reason in the reader's language (rule reasons are stored in English)."""
        from ..activity import tag_reason_display

        return tag_reason_display(self.reason)

    def __str__(self):
        return f"{self.profile} · {self.tag}"


class InterestMapping(models.Model):
    """Behaviour → interest: events named E whose property P is one of V feed tag T with a
    time-decayed score. See `profiles.services.interests` for the arithmetic."""

    tag = models.ForeignKey(
        Tag, verbose_name=_("interest tag"), on_delete=models.PROTECT, related_name="interest_mappings",
        limit_choices_to={"kind": TagKind.INTEREST},
    )
    event_weights = models.JSONField(
        _("events and weights"), default=dict,
        help_text=_('How much one event of each name counts, e.g. {"product_view": 1, "order": 3}.'),
    )
    property_name = models.CharField(_("property"), max_length=64, default="category")
    property_values = models.JSONField(_("property values"), default=list, help_text=_('e.g. ["sneakers"]'))
    half_life_days = models.PositiveIntegerField(
        _("half-life (days)"), default=30, validators=[MinValueValidator(1)],
        help_text=_("An event this many days old counts half as much as one today."),
    )
    saturation = models.FloatField(
        _("saturation"), default=3.0, validators=[MinValueValidator(0.1)],
        help_text=_("The decayed event count at which the interest weight reaches 0.5."),
    )
    threshold = models.FloatField(
        _("threshold"), default=0.3, validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("Customers whose weight reaches this get the tag; those below lose it."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("interest mapping")
        verbose_name_plural = _("interest mappings")
        constraints = [
            models.UniqueConstraint(fields=["tag"], name="interest_mapping_one_per_tag"),
            models.CheckConstraint(condition=Q(half_life_days__gte=1), name="interest_half_life_positive"),
            models.CheckConstraint(condition=Q(threshold__gte=0, threshold__lte=1), name="interest_threshold_0_1"),
        ]

    def __str__(self):
        return gettext("%(tag)s from %(events)s") % {"tag": self.tag, "events": ", ".join(self.event_weights)}

    def clean(self):
        errors = {}
        weights = self.event_weights
        if not isinstance(weights, dict) or not weights or not all(
            isinstance(name, str) and name and isinstance(w, int | float) and not isinstance(w, bool) and w > 0
            for name, w in weights.items()
        ):
            errors["event_weights"] = _('Give at least one event name with a positive weight, e.g. {"product_view": 1}.')
        if not isinstance(self.property_values, list) or not all(isinstance(v, str | int) for v in self.property_values):
            errors["property_values"] = _("List the property values as text, e.g. [\"sneakers\"].")
        if self.tag_id and self.tag.kind != TagKind.INTEREST:
            errors["tag"] = _("Only tags of kind “computed interest” can be fed by an interest mapping.")
        if errors:
            raise ValidationError(errors)


class InterestScore(models.Model):
    """One interest mapping's per-customer weights during a recompute: a temporary table
    that `profiles.services.interests` creates and drops (unmanaged: no migration)."""

    profile = models.OneToOneField(
        Profile, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    weight = models.FloatField()

    class Meta:
        managed = False
        db_table = "cdp_interest_scores"
