"""Behaviour events and the registry of event names."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KT
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .profiles import AttributeType, Profile


class EventDefinition(models.Model):
    """A known event name with its label and properties, offered in the segment builder."""

    name = models.SlugField(_("event name"), max_length=64, unique=True)
    label = models.CharField(_("label"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    properties = models.JSONField(
        _("properties"), default=list, blank=True,
        help_text=_('A list like [{"name": "category", "type": "string", "label": "品类"}].'),
    )
    has_amount = models.BooleanField(_("carries an amount"), default=False)
    is_builtin = models.BooleanField(_("built in"), default=False, editable=False)
    review_pending = models.BooleanField(
        _("waiting for review"), default=False,
        help_text=_("Registered by itself when a tracking SDK first sent this name; check its label and properties, "
                    "then untick."),
    )

    class Meta:
        verbose_name = _("event definition")
        verbose_name_plural = _("event definitions")
        ordering = ["name"]

    def __str__(self):
        return f"{gettext(self.label)} ({self.name})"

    def clean(self):
        if not isinstance(self.properties, list) or not all(
            isinstance(p, dict) and p.get("name") and p.get("type") in AttributeType.values
            for p in self.properties
        ):
            raise ValidationError(
                {"properties": _("Each property needs a name and a type (string, number, boolean, date or choice).")}
            )
        # Optional labels of known values, shown instead of the codes: {"values": {"alipay": "支付宝"}}.
        if not all(isinstance(p.get("values", {}), dict)
                   and all(isinstance(k, str) and isinstance(v, str) and v for k, v in p.get("values", {}).items())
                   for p in self.properties):
            raise ValidationError({"properties": _('A property\'s "values" label known values, like '
                                                   '{"alipay": "支付宝"}: each a value and its label.')})


def event_property_path(name: str, compared=None) -> str:
    """The lookup path of an event property: the category column when the comparison is
    with text (`compared`: a string or a list of them), which its index serves; else
    the property inside the JSON."""
    values = compared if isinstance(compared, list | tuple) else [compared]
    if name == "category" and all(isinstance(value, str) for value in values):
        return "category"
    return f"properties__{name}"


class Event(models.Model):
    """Something the customer did: a view, a cart, an order, a payment, a click…"""

    # No database foreign-key constraint (see ProfileTag): events arrive by the million
    # from imports and the API, always for customers the same transaction found or made.
    profile = models.ForeignKey(
        Profile, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="events", db_index=False,
        db_constraint=False,
    )
    name = models.CharField(_("event"), max_length=64)
    occurred_at = models.DateTimeField(_("occurred at"))
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2, null=True, blank=True)
    source = models.CharField(_("source"), max_length=64, blank=True)
    external_id = models.CharField(
        _("external id"), max_length=128, null=True, blank=True,
        help_text=_("The sender's id for the event; a second event with the same source and id is a duplicate."),
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now, editable=False)
    # The product category, copied out of the properties by the database so that the
    # segment and analysis filters on it ("viewed lipstick") read one index, not the JSON.
    category = models.GeneratedField(
        expression=KT("properties__category"), output_field=models.TextField(), db_persist=True,
        verbose_name=_("category"),
    )

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            # The timeline: one profile's events, newest first, keyset-paginated.
            models.Index(fields=["profile", "-occurred_at", "-id"], name="event_timeline"),
            # Segments: "did E in a window"; covering profile_id on PostgreSQL.
            models.Index(fields=["name", "occurred_at"], include=["profile"], name="event_name_time"),
            # The same for events of one category; events without one are left out.
            models.Index(fields=["name", "category", "occurred_at"], include=["profile"], name="event_name_category_time",
                         condition=Q(category__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], condition=Q(external_id__isnull=False),
                name="event_source_external_id_unique",
            ),
        ]

    def __str__(self):
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"
