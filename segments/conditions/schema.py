"""The JSON shape of each kind of condition, checked (JSON Schema, via `jsonschema`) before
the typed parser reads it: a misspelled key ("withn"), a key of another kind in the same
node ({"all": …, "any": …}) or a value of the wrong type is refused with the path of the
bad node, instead of being ignored and answering a different question.

Only the shape lives here; what may be queried (fields, events, tags, purposes) and the
meaning of values are checked by parse.py against the registry and the database."""
import difflib

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from jsonschema import Draft202012Validator

_STRING = {"type": "string"}
_WHOLE = {"type": "integer"}
_COMPARISON = {"type": "object", "properties": {"op": _STRING, "value": {}}, "required": ["op"],
               "additionalProperties": False}
_MEASURE = {"type": "object", "properties": {"op": _STRING, "value": {}, "of": _STRING}, "required": ["op"],
            "additionalProperties": False}
_WINDOW = {"type": "object", "properties": {"minutes": {}, "hours": {}, "days": {}, "weeks": {}, "months": {},
                                            "period": _STRING, "between": {"type": "array"}},
           "additionalProperties": False}
_FILTER = {"type": "object", "properties": {"property": _STRING, "op": _STRING, "value": {}},
           "required": ["property", "op"], "additionalProperties": False}
_TIME_OF_DAY = {"type": "object", "properties": {"from": _STRING, "to": _STRING}, "required": ["from", "to"],
                "additionalProperties": False}
_STEP_KEYS = {"event": _STRING, "where": {"type": "array", "items": _FILTER}, "amount": _COMPARISON,
              "within": _WINDOW, "time_of_day": _TIME_OF_DAY,
              "days_of_week": {"type": "array", "items": {"type": "integer"}, "minItems": 1}}
_GROUP = {"type": "array", "minItems": 1}

_SEQUENCE_STEP = {"type": "object", "properties": {**_STEP_KEYS, "within_days": _WHOLE}, "required": ["event"],
                  "additionalProperties": False}

# The key that names a node's kind → the keys that node may carry (and their shapes).
KINDS = {
    "all": {"all": _GROUP},
    "any": {"any": _GROUP},
    "not": {"not": {"type": "object"}},
    "field": {"field": _STRING, "op": _STRING, "value": {}},
    "tag": {"tag": _STRING, "op": _STRING, "value": {}},
    "tags": {"tags": {"type": "array", "items": _STRING, "minItems": 1}, "op": _STRING},
    "tag_category": {"tag_category": {"type": ["string", "integer"]}, "op": _STRING},
    "event": {**_STEP_KEYS, "count": _COMPARISON, "sum": _MEASURE, "avg": _MEASURE, "min": _MEASURE, "max": _MEASURE,
              "distinct": {**_MEASURE, "required": ["op", "of"]}, "share": _COMPARISON,
              "first_within_days": _WHOLE, "last_more_than_days_ago": _WHOLE},
    "sequence": {"sequence": {"type": "array", "items": _SEQUENCE_STEP},
                 "op": _STRING, "within_days": _WHOLE, "not_between": _SEQUENCE_STEP},
    "campaign": {"campaign": {"type": ["integer", "string"]}, "action": _STRING, "channel": _STRING,
                 "without": _STRING, "count": _COMPARISON, "within": _WINDOW},
    "consent": {"consent": _STRING, "op": _STRING},
    "segment": {"segment": _STRING, "op": _STRING},
}
_VALIDATORS = {
    kind: Draft202012Validator({"type": "object", "properties": keys, "required": [kind],
                                "additionalProperties": False})
    for kind, keys in KINDS.items()
}
_TYPE_NAMES = {"string": gettext_lazy("a text"), "integer": gettext_lazy("a whole number"),
               "number": gettext_lazy("a number"), "array": gettext_lazy("a list"),
               "object": gettext_lazy("an object such as {…}")}


def definition_schema() -> dict:
    """A whole definition's shape as one JSON Schema, groups and "not" nesting it: the
    per-kind shapes above, one of which each node must have (for tools that read schemas;
    the tests generate definitions from it)."""
    node = {"$ref": "#/$defs/node"}
    shapes = []
    for kind, keys in KINDS.items():
        keys = dict(keys)
        if kind in ("all", "any"):
            keys[kind] = {**_GROUP, "items": node}
        elif kind == "not":
            keys[kind] = node
        shapes.append({"type": "object", "properties": keys, "required": [kind], "additionalProperties": False})
    return {"$defs": {"node": {"anyOf": shapes}}, "$ref": "#/$defs/node"}


def kind_of(data: dict) -> str | None:
    """The kind of condition a node is, by the first kind key it holds (in KINDS' order)."""
    return next((kind for kind in KINDS if kind in data), None)


def shape_problems(kind: str, data: dict, path: str) -> list[tuple[str, str]]:
    """(path, message) for every way `data` departs from its kind's shape; `path` is the
    node's own path, ending in "." unless it is the root ("")."""
    problems = []
    for error in sorted(_VALIDATORS[kind].iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        for key, message in _messages(error):
            at = f"{where}.{key}" if key and where and not where.endswith(".") else f"{where}{key}"
            problems.append((at.rstrip(".") or "$", message))
    return problems


def _messages(error) -> list[tuple[str, str]]:
    """(the offending key or "", message) for one schema error."""
    instance = error.instance
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        messages = []
        for key in sorted(set(instance) - set(allowed)):
            close = difflib.get_close_matches(key, allowed, n=1)
            if key in KINDS:
                message = _("“%(key)s” is another kind of condition and cannot share this one: put each in its own "
                            "condition inside an “all” or “any” group.") % {"key": key}
            elif close:
                message = _("Unknown key “%(key)s”: did you mean “%(close)s”?") % {"key": key, "close": close[0]}
            else:
                message = _("Unknown key “%(key)s”; this condition takes: %(keys)s.") % {
                    "key": key, "keys": ", ".join(allowed)}
            messages.append((key, message))
        return messages
    if error.validator == "required":
        missing = [key for key in error.validator_value if key not in instance]
        return [(key, _("“%(key)s” is missing.") % {"key": key}) for key in missing]
    if error.validator == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return [("", _("Must be %(type)s.") % {"type": " / ".join(str(_TYPE_NAMES[t]) for t in types)})]
    if error.validator == "minItems":
        return [("", _("Give a list of at least one item."))]
    return [("", error.message)]
