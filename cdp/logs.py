"""Phones and emails kept out of the logs.

Staff find customers by phone or email in the admin (`?q=…`, the why page's `?profile=…`)
and partners look them up with `GET /api/v1/profiles/lookup/?phone=…`. Those addresses
reach the access logs — runserver's `django.server`, gunicorn's `gunicorn.access` (the
request line and the Referer of the next request) — and error logs that name a URL.
`RedactPersonalData` rewrites every phone- or email-looking query value in their records
as `[redacted]` (the parameter names stay, so the log still says what was asked);
`install()` attaches it to those loggers (CdpConfig.ready, so in every web process).

Everything else that reaches a log line — messages, exception texts, a task's arguments in
Celery's own lines — passes through the formatters below (settings.LOGGING: readable text
in development, JSON lines in production), which redact phones, e-mails and partner API
keys anywhere in the finished line (`redact_text`)."""
import importlib
import logging
import re
from collections.abc import MutableMapping
from urllib.parse import quote, unquote_plus

from pythonjsonlogger.json import JsonFormatter

LOGGERS = ("django.server", "django.request", "gunicorn.access", "gunicorn.error", "cdp.api")
REDACTED = "[redacted]"
# Parameters that never hold personal data: pagination, ordering, keyset cursors.
KEPT = {"p", "o", "e", "page", "before", "after", "cursor", "_popup", "_to_field"}

_PAIR = re.compile(r"(?P<lead>[?&])(?P<key>[^=&#\s\"']*)=(?P<value>[^&#\s\"']*)")
_PHONE = re.compile(r"\+?[\d\s\-().]+")
_EMAIL = re.compile(r"[^@\s]@[^@\s]")
# Parameters whose values are secrets whatever they look like.
_SECRET_KEY = re.compile(r"(?i)(api[_-]?key|token|secret|password|authorization)")


def looks_personal(value: str) -> bool:
    """A phone typed any way (7 digits or more, with +, spaces, dashes, dots, brackets) or
    anything with an email's @."""
    text = unquote_plus(value).strip()
    if _EMAIL.search(text):
        return True
    return bool(_PHONE.fullmatch(text)) and sum(c.isdigit() for c in text) >= 7


def redact(text: str) -> str:
    """`text` with the phone- and email-looking values of its query strings redacted."""
    if "=" not in text:
        return text

    def pair(match: re.Match) -> str:
        key, value = match["key"], match["value"]
        if unquote_plus(key) in KEPT:
            return match[0]
        if looks_personal(value) or (value and _SECRET_KEY.search(unquote_plus(key))):
            return f"{match['lead']}{key}={REDACTED}"
        inner = unquote_plus(value)
        if "=" in inner:  # a query string inside a parameter (the admin's _changelist_filters)
            nested = redact("?" + inner)[1:]
            if nested != inner:
                return f"{match['lead']}{key}={quote(nested, safe='[]')}"
        return match[0]

    return _PAIR.sub(pair, text)


class RedactPersonalData(logging.Filter):
    """Redacts the record's message and its arguments (a tuple, or gunicorn's atoms dict)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, MutableMapping):
            for key in list(record.args):
                value = record.args[key]
                if isinstance(value, str):
                    record.args[key] = redact(value)
        elif isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def install() -> None:
    """Attach the filter to the loggers that write request addresses (once each), and take
    back the vendor loggers that write on their own."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactPersonalData) for f in logger.filters):
            logger.addFilter(RedactPersonalData())
    _take_back_stray_handlers()


# Libraries that give their loggers stderr handlers of their own when first imported:
# Alibaba Cloud's SDK under the SMS destination (alibabacloud-tea, credentials,
# darabonba-core, at DEBUG: in debug mode whole SMS requests, phone numbers included) and
# jieba (the quick audience box's segmenter). tests/cdp/test_logging.py finds new ones.
VENDORS_WITH_HANDLERS = ("alibabacloud_dysmsapi20170525.client", "jieba")


def _take_back_stray_handlers() -> None:
    """Import those libraries now, so that their handlers are added once and before we look,
    then remove every plain stream handler that is not ours: their lines go through the
    root's handler, redacted, at its level."""
    for module in VENDORS_WITH_HANDLERS:
        try:
            importlib.import_module(module)  # the import adds the handlers: let it happen now
        except ImportError:
            pass
    ours = (RedactingTextFormatter, RedactingJsonFormatter)
    for logger in logging.root.manager.loggerDict.values():
        if not isinstance(logger, logging.Logger):
            continue
        stray = [h for h in logger.handlers if type(h) is logging.StreamHandler and not isinstance(h.formatter, ours)]
        for handler in stray:
            logger.removeHandler(handler)
        if stray:
            logger.setLevel(logging.NOTSET)
            logger.propagate = True


# Free text: what a message, an exception or a task's repr'd arguments may carry.
_TEXT_PATTERNS = [
    # e-mails, also URL-encoded (%40)
    re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
    # partner API keys (cdp.api.keys: 8 characters, a dot, 32) and credentials in headers
    re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}(?![A-Za-z0-9])"),
    re.compile(r"(?i)\b(?:api-key|bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"),
    # international numbers: + (or %2B) and 7 digits or more, spaces, dashes, dots, brackets between
    re.compile(r"(?:\+|%2B)\d(?:[\s\-().]{0,2}\d){6,14}(?!\d)"),
    # Chinese mobiles, with or without 86/0086, typed with spaces, dashes or a form's +
    re.compile(r"(?<![\w.])(?:(?:00)?86[\s\-+]?)?1[3-9]\d[\s\-+]?\d{4}[\s\-+]?\d{4}(?![\w])"),
]


def redact_text(text: str) -> str:
    """`text` with phones, e-mails and API keys anywhere in it replaced by `[redacted]`,
    query-string values first (so a parameter's name stays readable)."""
    text = redact(text)
    for pattern in _TEXT_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


class RedactingTextFormatter(logging.Formatter):
    """Development's readable lines, redacted once finished (message, arguments, traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class RedactingJsonFormatter(JsonFormatter):
    """Production's JSON lines (one object per line), redacted once serialised: every field,
    extras and the traceback included. The replacement is plain ASCII, so the JSON stays valid."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


# The formatters of settings.LOGGING and of gunicorn's own loggers (cdp/gunicorn_conf.py).
FORMATTERS = {
    "text": {"()": "cdp.logs.RedactingTextFormatter",
             "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    "json": {"()": "cdp.logs.RedactingJsonFormatter",
             "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s %(task_id)s %(task_name)s",
             "rename_fields": {"levelname": "level", "name": "logger"}, "timestamp": "time",
             "json_ensure_ascii": False},
}
