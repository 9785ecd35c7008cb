"""The partner API reads JSON only, and only JSON every database can store.

Python's json module accepts what PostgreSQL's jsonb and text columns refuse — NaN and
Infinity (and numbers like 1e400 that overflow to them), NUL characters and lone UTF-16
surrogates ("\\ud800") in strings and keys — and nests as deep as its recursion limit. Each
of those reached the database and came back as a server error. This parser refuses
them all up front with a 400 `invalid_json` that says what and where."""
import json
import math
import re

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.parsers import JSONParser

from .errors import ApiError

MAX_DEPTH = 32  # objects and arrays inside each other; events and traits need a handful
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class _Refused(ValueError):
    def __init__(self, message, path: str = ""):
        super().__init__(str(message))
        self.message, self.path = message, path


def _constant(name: str):
    raise _Refused(_("%(value)s is not a number JSON allows; send a finite number.") % {"value": name})


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(_("The number %(value)s is too large.") % {"value": text[:40]})
    return value


def _unstorable_message(text: str):
    if "\x00" in text:
        return _("Text may not contain the NUL character (\\u0000).")
    return _("Text may not contain a lone surrogate (\\ud800–\\udfff); send valid UTF-16 pairs or plain UTF-8.")


def check_storable(data, path: str = "", depth: int = 0):
    """Raise _Refused for nesting deeper than MAX_DEPTH, or a string or key no database can store."""
    if isinstance(data, str):
        if _UNSTORABLE.search(data):
            raise _Refused(_unstorable_message(data), path)
        return
    if isinstance(data, (dict, list)):
        if depth >= MAX_DEPTH:
            raise _Refused(_("JSON nested deeper than %(depth)s levels is not accepted.") % {"depth": MAX_DEPTH}, path)
        items = data.items() if isinstance(data, dict) else enumerate(data)
        for key, value in items:
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _UNSTORABLE.search(key):
                raise _Refused(_unstorable_message(key), path or "non_field_errors")
            check_storable(value, child, depth + 1)


def json_loads_strict(text: str):
    """json.loads refusing NaN, ±Infinity, overflowing numbers, NUL, lone surrogates and deep nesting."""
    try:
        data = json.loads(text, parse_constant=_constant, parse_float=_float)
    except RecursionError:
        raise _Refused(_("JSON nested deeper than %(depth)s levels is not accepted.") % {"depth": MAX_DEPTH}) from None
    check_storable(data)
    return data


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
        except UnicodeDecodeError:
            raise ApiError("invalid_json", _("The body is not valid UTF-8.")) from None
        try:
            return json_loads_strict(text)
        except _Refused as refused:
            raise ApiError("invalid_json", refused.message,
                           fields={refused.path: [str(refused.message)]} if refused.path else None) from None
        except ValueError as error:
            raise ApiError("parse_error", _("The body is not valid JSON: %(error)s") % {"error": error}) from None
