"""Turning one file row into normalised values, with every problem found in it.

The pipeline calls `RowParser.parse(number, cells)` for each row; the result carries the
profile fields, identity keys, traits, tags or event values that row brings, and a list of
issues (column, message). Nothing here touches the database except to load the lookups
(tags, trait definitions, event names) once per import.
"""
from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass, field
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, override

from ..models import AttributeDefinition, EventDefinition, Gender, ImportKind, Tag, TagKind
from .mapping import is_tags_target, tags_category_id
from ..normalisers import (
    NormalisationError,
    has_invisible_characters,
    normalise_city,
    normalise_date,
    normalise_email,
    normalise_gender,
    normalise_identity,
    normalise_name,
    normalise_phone,
    normalise_province,
)


@dataclass
class Issue:
    column: str  # the header, or "" for the whole row
    message: str
    code: str = "invalid"


def unknown_tag_issue(column: str, name: str) -> Issue:
    return Issue(column, _("Tag “%(tag)s” is not in the tag taxonomy, so it is not given; the rest of the row is "
                           "imported. Create the tag, or choose a category for new tags on the mapping screen.")
                 % {"tag": name}, UNKNOWN_TAG_CODE)


def no_customer_issue() -> Issue:
    """For event and consent rows whose identities name nobody."""
    return Issue("", _("No customer has these identities; import the customers first."), "no_customer")


@dataclass
class Row:
    number: int
    cells: list
    fields: dict = field(default_factory=dict)  # profile fields given (normalised, never blank)
    keys: list[tuple[str, str]] = field(default_factory=list)  # identity (kind, value), match order
    key_columns: dict = field(default_factory=dict)  # (kind, value) → header
    traits: dict = field(default_factory=dict)
    tags: list = field(default_factory=list)  # Tag rows
    unknown_tags: list = field(default_factory=list)  # names not in the taxonomy (warned, or created)
    event: dict = field(default_factory=dict)  # events: name, occurred_at, amount, source, external_id, properties
    consent: dict = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    # Cells refused while the rest of the row is imported (a landline in the mobile column).
    warnings: list[Issue] = field(default_factory=list)

    def add_key(self, kind: str, value: str, column: str) -> None:
        if value and (kind, value) not in self.key_columns:
            self.keys.append((kind, value))
            self.key_columns[(kind, value)] = column


_TEXT_LIMITS = {"name": 200, "occupation": 100}
_COUNTRIES = {"中国": "CN", "中国大陆": "CN", "中华人民共和国": "CN", "china": "CN", "prc": "CN"}
_TAG_SEPARATORS = re.compile(r"[;,、|｜]")  # after NFKC "；" is ";" and "，" is ","
TAG_NAME_LIMIT = 100  # Tag.name
UNKNOWN_TAG_CODE = "unknown_tag"
_MAINLAND_MOBILE = re.compile(r"(?:\+?86|0086)?(1[3-9]\d{9})")
_AMOUNT_NOISE = re.compile(r"[¥￥,\s元]|RMB|CNY", re.IGNORECASE)
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip().strip("\ufeff\u200b").strip()


# Cities, provinces, genders and birth dates repeat a lot in a CRM file: normalise each
# distinct value once (typed: 1 and True are different inputs).
_city = lru_cache(maxsize=20_000, typed=True)(normalise_city)
_province = lru_cache(maxsize=5_000, typed=True)(normalise_province)
_gender = lru_cache(maxsize=1_000, typed=True)(normalise_gender)
_date = lru_cache(maxsize=100_000, typed=True)(normalise_date)
# A plain lower-case address that Django's EmailValidator certainly accepts (a strict
# subset of it); anything else goes through normalise_email.
_PLAIN_EMAIL = re.compile(r"[a-z0-9_%+\-]+(?:\.[a-z0-9_%+\-]+)*@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def fast_email(value) -> str:
    if isinstance(value, str):
        text = value.strip().lower()
        if len(text) <= 254 and _PLAIN_EMAIL.fullmatch(text):
            return text
    return normalise_email(value)


@lru_cache(maxsize=100_000)
def _mobile_prefix_valid(prefix7: str) -> bool:
    """Whether mainland mobiles starting with these 7 digits are valid numbers. libphonenumber
    decides on the leading digits only, so asking once per prefix gives its answer for all."""
    try:
        normalise_phone(prefix7 + "0000")
        return True
    except NormalisationError:
        return False


def fast_phone(value, region: str = "") -> str:
    """normalise_phone, with a fast path for the common case of a plain mainland mobile:
    parsing each of a million phones with libphonenumber is most of an import's time."""
    text = _text(value)
    if (region or settings.CDP_DEFAULT_PHONE_REGION) == "CN":
        compact = text.replace(" ", "").replace("-", "")
        match = _MAINLAND_MOBILE.fullmatch(compact)
        if match and _mobile_prefix_valid(match[1][:7]):
            return "+86" + match[1]
    return normalise_phone(value)


# Numbers that are certainly no mobile phone. FIXED_LINE_OR_MOBILE (the US, Canada…) is
# left alone: libphonenumber cannot tell there.
_NOT_MOBILE = {phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.TOLL_FREE,
               phonenumbers.PhoneNumberType.PREMIUM_RATE, phonenumbers.PhoneNumberType.SHARED_COST,
               phonenumbers.PhoneNumberType.UAN, phonenumbers.PhoneNumberType.VOICEMAIL}
LANDLINE_CODE = "landline_in_mobile_column"


def is_landline(e164: str) -> bool:
    """Whether a normalised phone is a landline (or a service number such as 400…), which
    a customer's mobile phone must not be: the SMS channel sends to it."""
    if e164.startswith("+861") and len(e164) == 14:
        return False  # every mainland number of 11 digits starting with 1 is a mobile
    try:
        return phonenumbers.number_type(phonenumbers.parse(e164, None)) in _NOT_MOBILE
    except phonenumbers.NumberParseException:
        return False


def landline_issue(column: str, value) -> Issue:
    return Issue(column, _("“%(value)s” is a landline, not a mobile phone, so it is not stored as the customer's "
                           "mobile phone (text messages cannot reach it). Put the customer's mobile number in this "
                           "column, or map a landline column to a custom trait.") % {"value": _text(value)},
                 LANDLINE_CODE)


_CHINESE_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?")
_DATETIME = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?"
                       r"\s*(Z|[+-]\d{2}:?\d{2})?")


def parse_datetime(value) -> datetime.datetime | None:
    """A CRM timestamp → aware datetime. Accepts datetimes (XLSX), Excel serials, ISO 8601
    with or without offset, "2024/3/1 12:30", "2024年3月1日 12:30" and plain dates (midnight).
    Times without an offset are in settings.TIME_ZONE (Asia/Shanghai by default)."""
    if isinstance(value, datetime.datetime):
        result = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        day = normalise_date(value)
        seconds = round((float(value) % 1) * 86400)
        result = datetime.datetime.combine(day, datetime.time()) + datetime.timedelta(seconds=seconds)
    else:
        text = _text(value)
        if not text:
            return None
        result = _iso_datetime(text) or _crm_datetime(text, value)
    if result.tzinfo is None:
        result = result.replace(tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))
    if not 1900 <= result.year <= 2100:
        raise NormalisationError("invalid_datetime", _("“%(value)s” is out of range: years 1900 to 2100."), value)
    return result


def _iso_datetime(text: str) -> datetime.datetime | None:
    """The usual 2024-03-01 10:30:00 (with or without seconds, fraction, offset), read at C
    speed; None for anything else."""
    if text[4:5] != "-" or text[7:8] != "-":
        return None
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def _crm_datetime(text: str, value) -> datetime.datetime:
    match = _DATETIME.fullmatch(_CHINESE_DATE.sub(r"\1-\2-\3", text))
    if not match:
        day = normalise_date(text)  # 19950302, Excel serial as text; raises with its own message
        return datetime.datetime.combine(day, datetime.time())
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        result = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                                   int(second or 0), int(float(fraction) * 1e6) if fraction else 0)
    except ValueError:
        raise NormalisationError("invalid_datetime", _("“%(value)s” is not a real date and time."), value) from None
    if offset:
        offset = "+00:00" if offset == "Z" else offset
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[-2:])
        result = result.replace(tzinfo=datetime.timezone(sign * datetime.timedelta(hours=hours, minutes=minutes)))
    return result


def parse_amount(value) -> decimal.Decimal | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = repr(value)
    else:
        text = _AMOUNT_NOISE.sub("", _text(value))
    if not text:
        return None
    try:
        amount = decimal.Decimal(text).quantize(decimal.Decimal("0.01"))
    except (decimal.InvalidOperation, ValueError):
        raise NormalisationError("invalid_amount", _("“%(value)s” is not an amount; write it like 199.00."),
                                 value) from None
    if not amount.is_finite() or abs(amount) >= 10**12:
        raise NormalisationError("invalid_amount", _("“%(value)s” is not an amount; write it like 199.00."), value)
    return amount


class RowParser:
    """Parses rows of one file for one mapping (lookups loaded once)."""

    def __init__(self, *, kind: str, headers: list[str], mapping: dict[str, str], source: str,
                 trait_definitions: dict[str, AttributeDefinition] | None = None):
        self.kind = kind
        self.source = source
        self.today = timezone.localdate()
        self.phone_region = settings.CDP_DEFAULT_PHONE_REGION
        self.columns = [(index, header, mapping.get(header) or "") for index, header in enumerate(headers)]
        self.columns = [(i, h, t) for i, h, t in self.columns if t]
        self.traits = trait_definitions if trait_definitions is not None else {
            d.key: d for d in AttributeDefinition.objects.all()}
        self.tags: dict[str, Tag] = {}
        self.retired_tags: dict[str, Tag] = {}  # retired tags, each with the tag it was merged into (if active)
        # Unknown tags are created under this category by the pipeline (else reported as warnings).
        self.new_tags_category: int | None = None
        if any(is_tags_target(t) for _i, _h, t in self.columns):
            self.new_tags_category = next((tags_category_id(t) for _i, _h, t in self.columns
                                           if tags_category_id(t) is not None), None)
            # "tags:new:<category>" is read like "tags" (the pipeline creates what is unknown)
            self.columns = [(i, h, "tags" if is_tags_target(t) else t) for i, h, t in self.columns]
            for tag in Tag.objects.select_related("merged_into"):
                names = (tag.slug.casefold(), _text(tag.name).casefold())
                for name in names:
                    (self.tags if tag.is_active else self.retired_tags).setdefault(name, tag)
            for name in list(self.retired_tags):
                if name in self.tags:  # an active tag of the same name wins
                    del self.retired_tags[name]
        self.event_names: dict[str, str] = {}
        if kind == ImportKind.EVENTS:
            for definition in EventDefinition.objects.all():
                self.event_names[definition.name.casefold()] = definition.name
                self.event_names[_text(definition.label).casefold()] = definition.name
                with override("zh-hans"):  # 订单, 支付… as Chinese CRMs write them
                    self.event_names[_text(str(definition)).split(" (")[0].casefold()] = definition.name
            self.event_names.update({"订单": "order", "下单": "order", "购买": "order", "付款": "payment",
                                     "浏览": "page_view", "加购": "add_to_cart", "加入购物车": "add_to_cart"})

    def parse(self, number: int, cells: list) -> Row:
        row = Row(number=number, cells=cells)
        for index, header, target in self.columns:
            value = cells[index] if index < len(cells) else None
            if value is None or (isinstance(value, str) and not value.strip()):
                continue  # blank: never overwrites anything
            try:
                self._apply(row, header, target, value)
            except NormalisationError as error:
                row.issues.append(Issue(header, str(error), error.code))
            except ValidationError as error:
                row.issues.append(Issue(header, " ".join(error.messages), error.code or "invalid"))
        self._finish(row)
        return row

    def _apply(self, row: Row, header: str, target: str, value) -> None:
        if target == "phone":
            phone = fast_phone(value, self.phone_region)
            if self.kind == ImportKind.PROFILES and is_landline(phone):
                row.warnings.append(landline_issue(header, value))  # the rest of the row is imported
                return
            row.fields["phone"] = phone
            row.add_key("phone", phone, header)
        elif target == "email":
            email = fast_email(value)
            row.fields["email"] = email
            row.add_key("email", email, header)
        elif target.startswith("identity:"):
            kind = target.split(":", 1)[1]
            row.add_key(kind, normalise_identity(kind, value), header)
        elif target in ("name", "occupation"):
            text = normalise_name(value)
            if len(text) > _TEXT_LIMITS[target]:
                raise NormalisationError("too_long", _("“%(value)s” is too long."), value)
            if text:
                row.fields[target] = text
        elif target == "gender":
            gender = _gender(value)
            if gender and gender != "unknown":  # 未知 never overwrites a known gender
                row.fields["gender"] = gender
        elif target == "birth_date":
            day = _date(value)
            if day and day > self.today:
                raise NormalisationError("future_date", _("“%(value)s” is in the future."), value)
            if day:
                row.fields["birth_date"] = day
        elif target in ("city", "province"):
            place = (_city if target == "city" else _province)(value)
            if len(place) > 50:
                raise NormalisationError("too_long", _("“%(value)s” is too long."), value)
            if place:
                row.fields[target] = place
        elif target == "country":
            text = _text(value)
            code = _COUNTRIES.get(text.casefold(), text.upper())
            if not re.fullmatch(r"[A-Z]{2}", code):
                raise NormalisationError("invalid_country", _("“%(value)s” is not a country code such as CN."), value)
            row.fields["country"] = code
        elif target.startswith("trait:"):
            definition = self.traits[target.split(":", 1)[1]]
            coerced = definition.coerce(_text(value) if not isinstance(value, (datetime.date, int, float)) else value)
            if coerced is not None:
                row.traits[definition.key] = coerced
        elif target == "tags":
            self._tags(row, header, value)
        elif target == "event_name":
            text = _text(value)
            name = self.event_names.get(text.casefold(), text.lower())
            if not _EVENT_NAME.fullmatch(name):
                raise NormalisationError("invalid_event_name", _(
                    "“%(value)s” is not an event name: use a registered event such as order, or lower-case "
                    "letters, digits and _."), value)
            row.event["name"] = name
        elif target in ("occurred_at", "captured_at", "expires_at"):
            moment = parse_datetime(value)
            (row.event if target == "occurred_at" else row.consent)[target] = moment
        elif target == "amount":
            row.event["amount"] = parse_amount(value)
        elif target in ("source", "external_id"):
            text = _text(value)
            if len(text) > (64 if target == "source" else 128):
                raise NormalisationError("too_long", _("“%(value)s” is too long."), value)
            if has_invisible_characters(text):
                raise NormalisationError("invalid_identity", _(
                    "“%(value)s” contains control or invisible characters."), value)
            row.event[target] = text
        elif target == "properties":
            try:
                properties = json.loads(value) if isinstance(value, str) else None
            except json.JSONDecodeError:
                properties = None
            if not isinstance(properties, dict):
                raise NormalisationError("invalid_properties", _(
                    "“%(value)s” is not a JSON object such as {\"category\": \"shoes\"}."), value)
            row.event.setdefault("properties", {}).update(properties)
        elif target == "property" or target.startswith("property:"):
            name = target.split(":", 1)[1] if ":" in target else header
            row.event.setdefault("properties", {})[name] = value if isinstance(value, (int, float)) else _text(value)
        elif target in ("purpose", "consent_status", "notice_version", "evidence"):
            row.consent[target] = _text(value)
        elif target == "guardian_consent":
            row.consent[target] = _text(value).casefold() in {"1", "true", "yes", "y", "是", "有"}

    def _tags(self, row: Row, header: str, value) -> None:
        """Tags are labels: a tag the import cannot give (a rule tag, a retired one, one not
        in the taxonomy) is a warning on the row, never the loss of the person."""
        seen: set[str] = set()
        for name in _TAG_SEPARATORS.split(_text(value)):
            name = name.strip()
            key = name.casefold()
            if not name or key in seen:
                continue
            seen.add(key)
            tag = self.tags.get(key)
            if tag is None and key in self.retired_tags:
                retired = self.retired_tags[key]
                target = retired.merged_into
                if target is not None and target.is_active and target.kind != TagKind.RULE:
                    tag = target  # merged into another tag: that one is given
                else:
                    row.warnings.append(Issue(header, _("Tag “%(tag)s” is retired, so it is not given; the rest of "
                                                        "the row is imported.") % {"tag": name}, "retired_tag"))
                    continue
            if tag is None:
                if len(name) > TAG_NAME_LIMIT:
                    row.warnings.append(Issue(header, _("“%(tag)s” is too long for a tag name (at most %(limit)s "
                                                        "characters), so it is not given; the rest of the row is "
                                                        "imported.") % {"tag": name[:40] + "…",
                                                                         "limit": TAG_NAME_LIMIT}, "tag_too_long"))
                    continue
                row.unknown_tags.append(name)
                if self.new_tags_category is None:
                    row.warnings.append(unknown_tag_issue(header, name))
                continue
            if tag.kind == TagKind.RULE:
                row.warnings.append(Issue(header, _("“%(tag)s” is a rule tag: its rule gives and removes it, so an "
                                                    "import does not; the rest of the row is imported.") % {
                    "tag": name}, "rule_tag"))
                continue
            if tag not in row.tags:
                row.tags.append(tag)

    def stored_cells(self, cells: list) -> list[str | None]:
        """For the preview's sample rows: each mapped cell as it will be stored, where that
        differs from the cell as written (+8613800138000 for "138 0013 8000", 上海 for
        上海市, 女 for 女士); None where it is the same, blank, not mapped, refused or invalid
        (the row's errors and warnings say why). Parses the few sample rows a second time."""
        stored: list[str | None] = [None] * len(cells)
        for index, header, target in self.columns:
            value = cells[index] if index < len(cells) else None
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            scratch = Row(number=0, cells=cells)
            try:
                self._apply(scratch, header, target, value)
            except (NormalisationError, ValidationError):
                continue
            if scratch.warnings:
                continue
            shown = _stored_text(target, scratch, value)
            if shown is not None and shown != _cell_text(value):
                stored[index] = shown
        return stored

    def _finish(self, row: Row) -> None:
        if not row.keys and row.warnings:  # the landline was the row's only key: nobody to import it for
            row.issues += row.warnings
            row.warnings = []
        if not row.keys and not any(i.column and i.code in ("invalid_phone", "invalid_email", "invalid_identity",
                                                            LANDLINE_CODE) for i in row.issues):
            row.issues.append(Issue("", _("This row has no phone, email or id to recognise the customer by."),
                                    "no_identity"))
        if self.kind == ImportKind.EVENTS and not row.issues:
            if "name" not in row.event:
                row.issues.append(Issue("", _("The event name is missing."), "missing_event_name"))
            if row.event.get("occurred_at") is None:
                row.issues.append(Issue("", _("The time of the event is missing."), "missing_occurred_at"))
            if not row.issues:
                row.event.setdefault("source", self.source)
                row.event.setdefault("properties", {})
                if not row.event.get("external_id"):
                    row.event["external_id"] = derived_event_id(row)
        if self.kind == ImportKind.CONSENT and not row.issues:
            for required, message in (("purpose", _("The consent purpose is missing.")),
                                      ("consent_status", _("The consent status is missing."))):
                if not row.consent.get(required):
                    row.issues.append(Issue("", message, f"missing_{required}"))


def _cell_text(value) -> str:
    if isinstance(value, datetime.datetime):
        return _moment_text(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value).strip() if value is not None else ""


def _moment_text(moment: datetime.datetime) -> str:
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")


def _stored_text(target: str, row: Row, value) -> str | None:
    """The value `_apply` put into `row` for one cell, as the preview shows it."""
    if target in ("phone", "email") or target.startswith("identity:"):
        return row.keys[0][1] if row.keys else None
    if target == "gender":
        gender = row.fields.get("gender") or _gender(value)
        return str(Gender(gender).label) if gender in Gender.values else None
    if target in row.fields:
        stored = row.fields[target]
        return stored.isoformat() if isinstance(stored, datetime.date) else str(stored)
    if target.startswith("trait:") and row.traits:
        stored = next(iter(row.traits.values()))
        if isinstance(stored, bool):
            return _("yes") if stored else _("no")
        return stored.isoformat() if isinstance(stored, datetime.date) else str(stored)
    if is_tags_target(target):
        return "、".join(tag.name for tag in row.tags) or None
    if target == "event_name":
        return row.event.get("name")
    if target in ("occurred_at", "captured_at", "expires_at"):
        moment = row.event.get(target) if target == "occurred_at" else row.consent.get(target)
        return _moment_text(moment) if moment else None
    if target == "amount":
        amount = row.event.get("amount")
        return f"{amount:.2f}" if amount is not None else None
    if target == "guardian_consent":
        return _("yes") if row.consent.get(target) else _("no")
    if target == "consent_status":
        from .consent import STATUS_WORDS  # noqa: PLC0415 — consent imports rows

        status = STATUS_WORDS.get(row.consent.get(target, "").casefold())
        return str(_CONSENT_STATUS_LABELS[status]) if status else None
    return None


_CONSENT_STATUS_LABELS = {"granted": gettext_lazy("granted"), "denied": gettext_lazy("denied"),
                          "withdrawn": gettext_lazy("withdrawn")}


def derived_event_id(row: Row) -> str:
    """An idempotency key for an event row that has none: the same customer, event, time,
    amount and properties give the same key, so importing the file twice adds nothing."""
    event = row.event
    material = json.dumps([sorted(row.keys), event["name"], event["occurred_at"].isoformat(),
                           str(event.get("amount")), event.get("properties", {})],
                          ensure_ascii=False, sort_keys=True, default=str)
    return "import:" + hashlib.sha1(material.encode()).hexdigest()
