"""Input normalisation for customer data: the one place every import, API and admin path
turns raw values into canonical ones.

Every normaliser is a pure function. It returns the canonical value, returns "" (None for
dates) for blank input — blank is not an error — and raises NormalisationError for input
the user has to fix. All text is NFKC-normalised first, so full-width characters typed with
a Chinese IME ("１３８…", "＋86", "＠") behave like their ASCII forms.
"""
from __future__ import annotations

import datetime
import math
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import phonenumbers
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from profiles import geo

__all__ = [
    "NormalisationError",
    "normalise_city",
    "normalise_date",
    "normalise_email",
    "normalise_gender",
    "normalise_identity",
    "normalise_name",
    "normalise_phone",
    "normalise_province",
]

MALE, FEMALE, UNKNOWN = "male", "female", "unknown"
IDENTITY_MAX_LENGTH = 255
MIN_DATE = datetime.date(1900, 1, 1)
MAX_DATE = datetime.date(2100, 12, 31)


class NormalisationError(ValueError):
    """Invalid input that the user can fix: .code is stable, str() is a translated message."""

    def __init__(self, code: str, message: Any, value: Any = None) -> None:
        # args mirror the signature so the error pickles (Celery import tasks send it back).
        super().__init__(code, message, value)
        self.code = code
        self.message = message
        self.value = value

    @property
    def params(self) -> dict[str, str]:
        shown = "" if self.value is None else str(self.value)
        # Keep messages readable when someone pastes a whole paragraph into a cell.
        return {"value": shown if len(shown) <= 60 else f"{shown[:57]}…"}

    def __str__(self) -> str:
        # Translate at display time, in whatever language is active then.
        return str(self.message) % self.params

    def __repr__(self) -> str:
        # No translation here: repr must work in logs and tracebacks even without settings.
        return f"{type(self).__name__}({self.code!r}, value={self.value!r})"

    def as_validation_error(self) -> ValidationError:
        """The same error for Django forms, the admin and DRF serializers."""
        return ValidationError(self.message, code=self.code, params=self.params)


# Zero-width characters and the BOM that Excel puts in front of the first CSV cell.
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"


def _text(value: Any) -> str:
    """Raw cell/API value -> NFKC text without surrounding whitespace or invisibles."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # XLSX stores 13800138000 and gender code 1 as 13800138000.0 / 1.0
    text = unicodedata.normalize("NFKC", str(value))
    return text.strip().strip(_INVISIBLE).strip()


# --- phone -----------------------------------------------------------------------------------

_PHONE_MESSAGE = _(
    "“%(value)s” is not a valid phone number. Use a mainland mobile like 13800138000 "
    "or an international number starting with +."
)
# Digits, "+", spaces and the usual separators (incl. Unicode dashes). Anything else —
# letters, "ext", "转", "#" — is rejected rather than guessed at: extensions cannot be
# stored in E.164 and dropping them would merge everyone behind one switchboard.
_PHONE_CHARS = re.compile(r"[0-9+\s\-()./\u2010-\u2015]+")


def _default_phone_region() -> str:
    from django.conf import settings

    try:
        return getattr(settings, "CDP_DEFAULT_PHONE_REGION", "CN")
    except ImproperlyConfigured:  # used outside a configured project (scripts, tests)
        return "CN"


def normalise_phone(value: Any, region: str | None = None) -> str:
    """Phone number -> E.164 ("+8613800138000").

    Supported: national numbers for `region` (default settings.CDP_DEFAULT_PHONE_REGION),
    "+<country code>", "00<country code>", a bare "86" before an 11-digit mainland mobile,
    "(+86)", "+86 (0)21 …", landlines with area code ("021-68888888"), full-width
    characters. Not supported: extensions, letters, short service numbers (95588, 10086).
    """
    text = _text(value)
    if text.startswith("'"):  # a spreadsheet's text mark: older exports wrote phones as '+86…
        text = text[1:].strip()
    if not text:
        return ""
    if not _PHONE_CHARS.fullmatch(text):
        raise NormalisationError("invalid_phone", _PHONE_MESSAGE, value)
    digits = re.sub(r"\D", "", text)
    if "+" not in text:
        if digits.startswith("00"):
            # 00 is the international prefix in China and most of the world, whatever
            # the default region is.
            text = "+" + digits[2:]
        elif len(digits) == 13 and digits.startswith("861"):
            # "86 138 0013 8000": country code typed without the +.
            text = "+" + digits
    try:
        number = phonenumbers.parse(text, (region or _default_phone_region()).upper())
    except phonenumbers.NumberParseException:
        raise NormalisationError("invalid_phone", _PHONE_MESSAGE, value) from None
    if not phonenumbers.is_valid_number(number):
        raise NormalisationError("invalid_phone", _PHONE_MESSAGE, value)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- email -----------------------------------------------------------------------------------

_EMAIL_MESSAGE = _("“%(value)s” is not a valid email address, for example zhang.wei@example.com.")


def normalise_email(value: Any) -> str:
    """Email address -> lower-case address ("Zhang.Wei@Example.COM " -> "zhang.wei@example.com").

    Strips "<…>", "mailto:" and a trailing dot, and reads the ideographic full stop "。"
    (typed by Chinese IMEs, and a label separator under IDNA) as ".".
    """
    text = _text(value)
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].strip()
    text = text.replace("。", ".").rstrip(".").lower()
    if not text:
        return ""
    try:
        validate_email(text)
    except ValidationError:
        raise NormalisationError("invalid_email", _EMAIL_MESSAGE, value) from None
    return text


# --- gender ----------------------------------------------------------------------------------

_GENDER_MESSAGE = _("“%(value)s” is not a recognised gender. Use 男/女/未知 or male/female/unknown.")
# 0/1/2/9 follow GB/T 2261.1: 0 unknown, 1 male, 2 female, 9 unspecified.
_GENDERS: dict[str, str] = {
    **dict.fromkeys(
        ("男", "男性", "男士", "先生", "m", "male", "man", "boy", "mr", "1"),
        MALE,
    ),
    **dict.fromkeys(
        ("女", "女性", "女士", "小姐", "f", "female", "woman", "girl", "mrs", "ms", "miss", "2"),
        FEMALE,
    ),
    **dict.fromkeys(
        ("未知", "保密", "不详", "其他", "其它", "未说明", "未知的性别", "未说明的性别",
         "unknown", "u", "other", "0", "9"),
        UNKNOWN,
    ),
}


def normalise_gender(value: Any) -> str:
    """Gender -> "male" / "female" / "unknown" ("" for blank)."""
    text = _text(value)
    if not text:
        return ""
    try:
        return _GENDERS[text.casefold().rstrip(".")]  # "Mr." / "Ms."
    except KeyError:
        raise NormalisationError("invalid_gender", _GENDER_MESSAGE, value) from None


# --- date ------------------------------------------------------------------------------------

_DATE_FORMAT_MESSAGE = _(
    "“%(value)s” is not a date format we accept. Use year first: 1995-03-02, 1995/3/2, "
    "1995.3.2, 19950302 or 1995年3月2日. Day-first or month-first dates such as "
    "02/03/1995 are ambiguous and not accepted."
)
_DATE_CALENDAR_MESSAGE = _("“%(value)s” is not a real calendar date.")
_DATE_RANGE_MESSAGE = _("“%(value)s” is out of range: dates must be between 1900-01-01 and 2100-12-31.")

_TIME_PART = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_DATE_PATTERNS = (
    # 1995-03-02, 1995/3/2, 1995.3.2 (one separator throughout), optionally with a time.
    re.compile(r"(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})" + _TIME_PART),
    re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"),  # 19950302
    re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]?"),
)
# Excel serial typed or exported as text. Exactly 5 digits (1927-05-18 .. 2173-10-14 before
# the range check) so it can never be confused with a 4-digit year or 8-digit YYYYMMDD.
_EXCEL_SERIAL_TEXT = re.compile(r"\d{5}")
_EXCEL_MAX_SERIAL = 2958465  # 9999-12-31


def _from_excel_serial(serial: float, value: Any) -> datetime.date:
    """Excel 1900 date system. The fractional part is the time of day and is dropped."""
    if not math.isfinite(serial) or not 1 <= serial < _EXCEL_MAX_SERIAL + 1:
        raise NormalisationError("invalid_date", _DATE_RANGE_MESSAGE, value)
    days = int(serial)
    if days == 60:  # Excel's 1900-02-29, kept for Lotus 1-2-3 compatibility; never existed
        raise NormalisationError("invalid_date", _DATE_CALENDAR_MESSAGE, value)
    # Serials after the fake leap day are off by one, hence the two epochs.
    epoch = datetime.date(1899, 12, 31) if days < 60 else datetime.date(1899, 12, 30)
    return epoch + datetime.timedelta(days=days)


def _parse_date_text(text: str, value: Any) -> datetime.date:
    if _EXCEL_SERIAL_TEXT.fullmatch(text):
        return _from_excel_serial(int(text), value)
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            if not MIN_DATE.year <= int(match["y"]) <= MAX_DATE.year:
                raise NormalisationError("invalid_date", _DATE_RANGE_MESSAGE, value)
            try:
                return datetime.date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                raise NormalisationError("invalid_date", _DATE_CALENDAR_MESSAGE, value) from None
    raise NormalisationError("invalid_date", _DATE_FORMAT_MESSAGE, value)


def normalise_date(value: Any) -> datetime.date | None:
    """Date-ish input -> datetime.date (None for blank).

    Accepts date/datetime objects, Excel serials (int/float, or 5-digit text) and year-first
    text: 1995-03-02, 1995/3/2, 1995.3.2, 19950302, 1995年3月2日, optionally followed by a
    time ("1995-03-02 00:00:00", "1995-03-02T10:00:00+08:00"); the date is taken as written,
    the time and offset ignored. Years must be within 1900..2100.
    """
    if isinstance(value, bool):  # bool is an int subclass; True is not serial 1
        raise NormalisationError("invalid_date", _DATE_FORMAT_MESSAGE, value)
    if isinstance(value, datetime.datetime):  # before date: datetime is a date subclass
        result = value.date()
    elif isinstance(value, datetime.date):
        result = value
    elif isinstance(value, (int, float)):
        result = _from_excel_serial(value, value)
    else:
        text = _text(value)
        if not text:
            return None
        result = _parse_date_text(text, value)
    if not MIN_DATE <= result <= MAX_DATE:
        raise NormalisationError("invalid_date", _DATE_RANGE_MESSAGE, value)
    return result


# --- identities ------------------------------------------------------------------------------

_IDENTITY_MESSAGE = _(
    "“%(value)s” is not a valid identifier: it must be at most 255 characters "
    "and contain no control or invisible characters."
)


def normalise_identity(kind: str, value: Any) -> str:
    """Identity value for `kind`, as stored and matched on.

    "phone" -> normalise_phone, "email" -> normalise_email, "device_id" -> lower-case;
    every other kind (crm_id, WeChat ids, partner kinds) keeps its case
    because e.g. WeChat OpenIDs are case-sensitive.
    """
    if kind == "phone":
        result = normalise_phone(value)
    elif kind == "email":
        result = normalise_email(value)
    else:
        result = _text(value)
        if kind == "device_id":  # IDFA/GAID/OAID are hex UUIDs: case is formatting only
            result = result.lower()
    if len(result) > IDENTITY_MAX_LENGTH or has_invisible_characters(result):
        raise NormalisationError("invalid_identity", _IDENTITY_MESSAGE, value)
    return result


def has_invisible_characters(text: str) -> bool:
    """Whether `text` holds a character of Unicode category C (control, format such as
    zero-width or bidi marks, surrogate, private use, unassigned): invisible in the admin,
    yet they would make two "identical" ids different. `isprintable()` is false for every
    one of them (and for separators) and runs at C speed; only then is each character
    looked at."""
    return not text.isprintable() and any(unicodedata.category(ch)[0] == "C" for ch in text)


# --- names and places ------------------------------------------------------------------------


def normalise_name(value: Any) -> str:
    """Person name: NFKC, trimmed, internal whitespace runs collapsed to one space."""
    return re.sub(r"\s+", " ", _text(value))


def normalise_city(value: Any) -> str:
    """Canonical short Chinese city name ("上海市" / "Shanghai" -> "上海"), see geo."""
    return geo.canonical_city(_text(value))


def normalise_province(value: Any) -> str:
    """Canonical short Chinese province name ("广东省" / "Guangdong" -> "广东"), see geo."""
    return geo.canonical_province(_text(value))


def identity_keys(kinds: Iterable[str], text: Any) -> set[tuple[str, str]]:
    """Every (kind, value) that `text` could be, typed by someone who did not say which:
    "138 0013 8000" is a phone, "A@B.CN" an email, anything may be a CRM or WeChat id."""
    keys = set()
    for kind in kinds:
        try:
            value = normalise_identity(kind, text)
        except NormalisationError:
            continue
        if value:
            keys.add((kind, value))
    return keys

