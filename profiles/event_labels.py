"""Event names, property names and known property values in the reader's language.

The event definitions hold them: built-in ones as English source strings with zh_Hans
translations (values under the "event value" context), ones staff typed as they typed
them. A property's values are labelled in its definition as
{"name": "method", "type": "string", "label": "Payment method", "values": {"alipay": "Alipay"}}.
"""
from django.utils.translation import gettext, pgettext
from django.utils.translation import pgettext_lazy

from .models import EventDefinition

VALUE_CONTEXT = "event value"

# Where an event came from (Event.source); other sources are shown as sent.
SOURCE_LABELS = {
    "app": pgettext_lazy("event source", "App"),
    "mini_program": pgettext_lazy("event source", "Mini program"),
    "web": pgettext_lazy("event source", "Website"),
    "store": pgettext_lazy("event source", "Store"),
    "api": pgettext_lazy("event source", "API"),
    "import": pgettext_lazy("event source", "Import"),
    "shop": pgettext_lazy("event source", "Online shop"),
    "campaigns": pgettext_lazy("event source", "Campaigns"),
}


class EventLabels:
    """The labels of every event definition, read in one query; look-ups fall back to
    the raw name or value when nothing labels it."""

    def __init__(self, definitions):
        self._events: dict[str, str] = {}
        self._properties: dict[tuple[str, str], str] = {}
        self._values: dict[tuple[str, str], dict] = {}
        self._any_property: dict[str, str] = {}
        self._any_values: dict[str, dict] = {}
        for name, label, properties in definitions:
            self._events[name] = label
            for prop in properties if isinstance(properties, list) else []:
                if not isinstance(prop, dict) or not prop.get("name"):
                    continue
                key = (name, prop["name"])
                values = prop.get("values") if isinstance(prop.get("values"), dict) else {}
                if prop.get("label"):
                    self._properties[key] = prop["label"]
                    self._any_property.setdefault(prop["name"], prop["label"])
                self._values[key] = values
                self._any_values.setdefault(prop["name"], {})
                for value, value_label in values.items():
                    self._any_values[prop["name"]].setdefault(value, value_label)

    @classmethod
    def load(cls) -> "EventLabels":
        return cls(EventDefinition.objects.values_list("name", "label", "properties"))

    def events(self) -> dict[str, str]:
        """Every defined event name → its label in the reader's language, in the names' order."""
        return {name: self.event(name) for name in self._events}

    def event(self, name: str) -> str:
        label = self._events.get(name)
        return gettext(label) if label else name

    def property(self, name: str, event: str | None = None) -> str:
        label = self._properties.get((event, name)) or self._any_property.get(name)
        return gettext(label) if label else name

    def value(self, name: str, value, event: str | None = None) -> str:
        """A property's value: its label when the definitions give one, else as stored."""
        if isinstance(value, bool):
            return gettext("yes") if value else gettext("no")
        if isinstance(value, list | tuple):
            return "、".join(self.value(name, item, event) for item in value)
        values = self._values.get((event, name)) or self._any_values.get(name) or {}
        label = values.get(str(value)) if value is not None else None
        return pgettext(VALUE_CONTEXT, label) if label else ("" if value is None else str(value))

    def properties(self, event: str, properties: dict) -> dict[str, str]:
        """{property label: value label} for an event's properties, in their order."""
        return {self.property(key, event): self.value(key, value, event)
                for key, value in (properties or {}).items()}


def source_label(source: str) -> str:
    label = SOURCE_LABELS.get(source)
    return str(label) if label else source
