"""Masking an import file's cells and messages for staff who may not read them.

A file's columns are not always mapped to what they hold: a "备注" column with a phone in
it, an e-mail in an ignored column. So besides the columns mapped to a phone or an e-mail,
any cell that looks like one is masked, and so is any phone- or e-mail-looking part of a
row's error messages (a conflict names the phone it is about)."""
from __future__ import annotations

import re
from collections.abc import Callable

from ..masking import mask_email, mask_phone
from ..normalisers import NormalisationError, normalise_date, normalise_phone

_MAPPED = {"phone": mask_phone, "email": mask_email, "identity:phone": mask_phone, "identity:email": mask_email}
_PHONE_SHAPE = re.compile(r"[+＋]?[\d０-９][\d０-９\s\-–()（）.]*[\d０-９]")
_EMAIL_PART = re.compile(r"[^\s@,;，；:：“”\"'<>()（）]*@[^\s@,;，；“”\"'<>()（）]*")
_DATE_SHAPE = re.compile(r"\d{4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,2}(\s.*)?")  # even an impossible one
_PHONE_PART = re.compile(r"(?<![\w.])[+＋]?\d[\d \-–()（）]{5,20}\d(?![\w])")


def looks_like_email(text: str) -> bool:
    return "@" in text


def looks_like_phone(text: str) -> bool:
    """A valid phone number, or 7 to 15 digits written like one (a mistyped phone is still
    someone's phone) that are not a date."""
    text = text.strip()
    if not _PHONE_SHAPE.fullmatch(text):
        return False
    try:
        normalise_phone(text)
        return True
    except NormalisationError:
        pass
    digits = sum(ch.isdigit() for ch in text)
    if not 7 <= digits <= 15 or _DATE_SHAPE.fullmatch(text):
        return False
    try:
        normalise_date(text)
        return False
    except NormalisationError:
        return True


def cell_mask(value) -> str:
    """The cell as staff without access to personal data see it."""
    if value is None or value == "" or isinstance(value, bool):
        return value
    text = str(value)
    if looks_like_email(text) and not any(ch.isspace() for ch in text.strip()):
        return mask_email(text)
    if looks_like_phone(text):
        return mask_phone(text)
    masked = text_mask(text)  # free text: "call 13900139000"
    return value if masked == text else masked


def text_mask(text: str) -> str:
    """`text` with the e-mails and phones in it masked."""
    if not text:
        return text
    text = _EMAIL_PART.sub(lambda m: mask_email(m.group(0)) if "@" in m.group(0) else m.group(0), text)
    return _PHONE_PART.sub(lambda m: mask_phone(m.group(0)) if looks_like_phone(m.group(0)) else m.group(0), text)


def row_masks(headers: list[str], mapping: dict[str, str]) -> list[Callable]:
    """One mask per column: the phone or e-mail mask for columns mapped to those, the
    look-alike detection for every other column."""
    return [_MAPPED.get(mapping.get(header) or "", None) or cell_mask for header in headers]


def row_mask(values: list, masks: list[Callable]) -> list:
    return [(masks[i] if i < len(masks) else cell_mask)(str(v)) if v not in (None, "") else v
            for i, v in enumerate(values)]
