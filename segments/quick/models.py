"""Named thresholds: what phrases like 高消费, 高购买频率 and 高价值 mean in the quick
audience box, set by staff (seeded from the RFM score bounds in profiles.metrics). A rule
tag with the same name wins over its threshold (see lexicon.py)."""
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from profiles.models.tags import synonyms_split


class ThresholdMeasure(models.TextChoices):
    TOTAL_SPENT = "total_spent", _("total spent (yuan)")
    ORDER_COUNT = "order_count", _("number of orders")
    RFM_RECENCY = "rfm_recency", _("R score")
    RFM_FREQUENCY = "rfm_frequency", _("F score")
    RFM_MONETARY = "rfm_monetary", _("M score")
    ORDERS_WITHIN = "orders_within", _("orders in the window")
    SPEND_WITHIN = "spend_within", _("spend in the window (yuan)")


WINDOWED = {ThresholdMeasure.ORDERS_WITHIN, ThresholdMeasure.SPEND_WITHIN}


class ThresholdOperator(models.TextChoices):
    GTE = "gte", "≥"
    GT = "gt", ">"
    LTE = "lte", "≤"
    LT = "lt", "<"


class NamedThreshold(models.Model):
    name = models.CharField(_("phrase"), max_length=50, unique=True,
                            help_text=_("As marketers write it, e.g. 高消费."))
    synonyms = models.CharField(
        _("other ways to say it"), max_length=500, blank=True,
        help_text=_("Separated by commas, in any language, e.g. 消费高, high spend, big spenders."))
    measure = models.CharField(_("measure"), max_length=20, choices=ThresholdMeasure.choices)
    op = models.CharField(_("comparison"), max_length=3, choices=ThresholdOperator.choices,
                          default=ThresholdOperator.GTE)
    value = models.DecimalField(_("value"), max_digits=14, decimal_places=2, validators=[MinValueValidator(0)])
    window_days = models.PositiveIntegerField(
        _("window (days)"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("For orders or spend in a window: the last N days."))
    description = models.CharField(_("description"), max_length=200, blank=True)

    class Meta:
        app_label = "segments"
        verbose_name = _("named threshold")
        verbose_name_plural = _("named thresholds")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(value__gte=0), name="named_threshold_value_not_negative"),
        ]

    def __str__(self):
        return self.name

    def phrases(self) -> list[str]:
        """The name and each synonym, as typed (empty ones dropped)."""
        return [self.name, *synonyms_split(self.synonyms)]

    def clean(self):
        if self.measure in WINDOWED and not self.window_days:
            raise ValidationError({"window_days": _("Orders or spend in a window need the window's number of days.")})
        if self.measure not in WINDOWED and self.window_days:
            raise ValidationError({"window_days": _("Only orders or spend in a window take a number of days.")})
        if self.measure in (ThresholdMeasure.RFM_RECENCY, ThresholdMeasure.RFM_FREQUENCY,
                            ThresholdMeasure.RFM_MONETARY) and not Decimal(1) <= (self.value or 0) <= Decimal(5):
            raise ValidationError({"value": _("An RFM score is from 1 to 5.")})

    def condition(self) -> dict:
        """The condition (condition language) the phrase stands for."""
        value = int(self.value) if self.value == int(self.value) else float(self.value)
        if self.measure == ThresholdMeasure.ORDERS_WITHIN:
            return {"event": "order", "count": {"op": self.op, "value": int(self.value)},
                    "within": {"days": self.window_days}}
        if self.measure == ThresholdMeasure.SPEND_WITHIN:
            return {"event": "order", "sum": {"op": self.op, "value": value}, "within": {"days": self.window_days}}
        return {"field": self.measure, "op": self.op, "value": value}


def _lexicon_changed(**kwargs):
    from .lexicon import lexicon_changed

    lexicon_changed()


# What the quick audience box's lexicon is built from: a change is seen by every process.
for _sender in ("profiles.Tag", "profiles.TagCategory", "profiles.InterestMapping", "profiles.EventDefinition",
                "consent.Purpose", "segments.Segment", "segments.NamedThreshold"):
    models.signals.post_save.connect(_lexicon_changed, sender=_sender, dispatch_uid=f"quick-audience-{_sender}-save")
    models.signals.post_delete.connect(_lexicon_changed, sender=_sender,
                                       dispatch_uid=f"quick-audience-{_sender}-delete")
