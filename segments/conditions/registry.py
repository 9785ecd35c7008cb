"""What may be queried: every field a condition can name, its type and operators. A
client never sends a raw field path; names outside this registry are validation errors."""
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from profiles.models import AttributeDefinition, AttributeType, Gender, LifecycleStage

TEXT, CHOICE, NUMBER, DATE, DATETIME = "text", "choice", "number", "date", "datetime"

OPERATORS = {
    TEXT: {"eq", "ne", "in", "not_in", "contains", "starts_with", "is_set", "is_empty"},
    CHOICE: {"eq", "ne", "in", "not_in", "is_set", "is_empty"},
    NUMBER: {"eq", "ne", "gt", "gte", "lt", "lte", "between", "is_set", "is_empty"},
    DATE: {"before", "after", "on_or_before", "on_or_after", "between", "within_last_days", "more_than_days_ago",
           "anniversary_within_days", "is_set", "is_empty"},
    DATETIME: {"before", "after", "on_or_before", "on_or_after", "between", "within_last_days", "more_than_days_ago",
               "is_set", "is_empty"},
}
COUNT_OPERATORS = {"eq", "ne", "gt", "gte", "lt", "lte", "between"}
AMOUNT_OPERATORS = {"eq", "ne", "gt", "gte", "lt", "lte"}
PROPERTY_OPERATORS = {"eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte"}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    type: str
    lookup: str  # the ORM path on Profile
    choices: tuple = ()
    nullable: bool = False  # stored as NULL (not "") when unknown
    # A covering index (INCLUDE id, status) answers a condition on it without reading
    # the profiles, so compile.py may restrict events aggregates to the customers it finds.
    covered: bool = False


PROFILE_FIELDS = {
    spec.name: spec
    for spec in (
        FieldSpec("name", pgettext_lazy("person", "name"), TEXT, "name"),
        FieldSpec("gender", _("gender"), CHOICE, "gender", tuple(Gender.values)),
        FieldSpec("birth_date", _("birth date"), DATE, "birth_date", nullable=True),
        FieldSpec("age", _("age"), NUMBER, "birth_date", nullable=True),  # compiled to birth date ranges
        FieldSpec("birth_year", _("birth year"), NUMBER, "birth_date__year", nullable=True),
        FieldSpec("phone", _("phone"), TEXT, "phone"),
        FieldSpec("email", _("email"), TEXT, "email"),
        FieldSpec("country", _("country"), TEXT, "country"),
        FieldSpec("province", _("province"), TEXT, "province"),
        FieldSpec("city", _("city"), TEXT, "city"),
        FieldSpec("occupation", _("occupation"), TEXT, "occupation"),
        FieldSpec("created_at", _("created at"), DATETIME, "created_at"),
        FieldSpec("first_seen_at", _("first seen"), DATETIME, "first_seen_at", nullable=True),
        FieldSpec("last_seen_at", _("last seen"), DATETIME, "last_seen_at", nullable=True),
        FieldSpec("last_order_at", _("last order"), DATETIME, "last_order_at", nullable=True),
        FieldSpec("order_count", _("orders"), NUMBER, "order_count"),
        FieldSpec("total_spent", _("total spent"), NUMBER, "total_spent", covered=True),
        FieldSpec("rfm_recency", _("R score"), NUMBER, "rfm_recency", nullable=True),
        FieldSpec("rfm_frequency", _("F score"), NUMBER, "rfm_frequency", nullable=True),
        FieldSpec("rfm_monetary", _("M score"), NUMBER, "rfm_monetary", nullable=True),
        FieldSpec("lifecycle_stage", _("lifecycle stage"), CHOICE, "lifecycle_stage", tuple(LifecycleStage.values)),
    )
}

_TRAIT_TYPES = {
    AttributeType.STRING: TEXT, AttributeType.CHOICE: CHOICE, AttributeType.NUMBER: NUMBER,
    AttributeType.BOOLEAN: CHOICE, AttributeType.DATE: DATE,
}


def field_spec(name: str) -> FieldSpec | None:
    """The spec of a profile field, or of a registered custom trait named "traits.<key>"."""
    if name in PROFILE_FIELDS:
        return PROFILE_FIELDS[name]
    if name.startswith("traits."):
        definition = AttributeDefinition.objects.filter(key=name.removeprefix("traits.")).first()
        if definition:
            choices = tuple(definition.choices) if definition.type == AttributeType.CHOICE else ()
            if definition.type == AttributeType.BOOLEAN:
                choices = (True, False)
            return FieldSpec(name, definition.label, _TRAIT_TYPES[definition.type], f"traits__{definition.key}",
                             choices, nullable=True)
    return None
