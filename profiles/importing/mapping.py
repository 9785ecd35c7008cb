"""Column mapping: which column of the file fills which field.

A mapping is a plain dict {column header: target}. Targets are strings:

* profile fields: "name", "gender", "birth_date", "phone", "email", "country", "province",
  "city", "occupation"; "tags" (tag names or slugs separated by ; ； , ， 、 or |): a tag not
  in the taxonomy is reported as a warning and the person imported without it, and
  "tags:new:<category id>" creates such tags (manual tags) under that category instead;
* "identity:<kind>" for the other identity kinds (CRM id, WeChat ids, device id, partner kinds);
* "trait:<key>" for a registered custom trait, "new_trait:<type>" to register the column as
  a new custom trait of that type (its key comes from the header);
* events: "event_name", "occurred_at", "amount", "source", "external_id", "properties" (a
  JSON object), "property" (the column becomes a property named after its header),
  "property:<name>" (the column becomes the registered property <name>, e.g. 品类 → category,
  which the events' category column and index are made from), plus phone / email / identity
  columns to find the customer. A column of an events file that matches nothing becomes a
  property named after its header: nothing is dropped unless the user says "ignore";
* consent: "purpose", "consent_status", "captured_at", "notice_version", "evidence",
  "expires_at", "guardian_consent", plus the customer's identity columns;
* "" (or a missing header): the column is ignored.

Headers are recognised in Chinese and English (`guess_mapping`), staff adjust the result,
and a mapping can be saved as a `MappingTemplate` for the next file from the same source.
"""
from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import (
    AttributeDefinition,
    AttributeType,
    EventDefinition,
    IdentityKind,
    ImportKind,
    Profile,
    TagCategory,
)

PROFILE_FIELDS = ("name", "gender", "birth_date", "phone", "email", "country", "province", "city", "occupation")
EVENT_FIELDS = ("event_name", "occurred_at", "amount", "source", "external_id", "properties")
CONSENT_FIELDS = ("purpose", "consent_status", "captured_at", "notice_version", "evidence", "expires_at",
                  "guardian_consent")
DEFAULT_PRECEDENCE = ["crm_id", "phone", "email", "wechat_unionid", "wechat_openid", "wechat_id"]

_FIELD_LABELS = {
    "event_name": gettext_lazy("event name"),
    "occurred_at": gettext_lazy("occurred at"),
    "amount": gettext_lazy("amount"),
    "source": gettext_lazy("source"),
    "external_id": gettext_lazy("external id (idempotency key)"),
    "properties": gettext_lazy("properties (JSON object)"),
    "property": gettext_lazy("property named after the column"),
    "tags": gettext_lazy("tags (separated by ; ， 、 or |)"),
    "purpose": gettext_lazy("consent purpose code"),
    "consent_status": gettext_lazy("consent status (granted / denied / withdrawn)"),
    "captured_at": gettext_lazy("consent captured at"),
    "notice_version": gettext_lazy("notice version"),
    "evidence": gettext_lazy("consent evidence"),
    "expires_at": gettext_lazy("consent expires at"),
    "guardian_consent": gettext_lazy("guardian consent (yes / no)"),
}

# Normalised header (see _key) → target. Identity kinds and traits are added at run time.
_SYNONYMS: dict[str, list[str]] = {
    "name": ["姓名", "名字", "客户姓名", "会员姓名", "客户名称", "客户名", "联系人", "name", "fullname", "customername"],
    "phone": ["手机", "手机号", "手机号码", "电话", "电话号码", "联系电话", "联系方式", "移动电话", "mobile", "phone",
              "tel", "telephone", "cellphone", "phonenumber", "mobilephone", "mobileno"],
    "email": ["邮箱", "电子邮箱", "电子邮件", "邮件", "邮箱地址", "email", "mail", "emailaddress"],
    "gender": ["性别", "gender", "sex"],
    "birth_date": ["生日", "出生日期", "出生年月日", "出生年月", "birthday", "birthdate", "dateofbirth", "dob"],
    "city": ["城市", "所在城市", "市", "city"],
    "province": ["省份", "省", "所在省份", "所在省", "province", "state"],
    "country": ["国家", "国家地区", "country", "countrycode"],
    "occupation": ["职业", "职位", "occupation", "job", "jobtitle", "profession"],
    "identity:crm_id": ["crm编号", "crmid", "crm", "客户编号", "客户id", "会员编号", "会员id", "会员号", "customerid",
                        "memberid", "customerno", "memberno"],
    "identity:wechat_openid": ["openid", "微信openid", "wechatopenid", "公众号openid"],
    "identity:wechat_unionid": ["unionid", "微信unionid", "wechatunionid"],
    "identity:wechat_id": ["微信号", "微信", "微信账号", "微信id", "wechat", "wechatid", "weixin", "weixinid", "wxid"],
    "identity:device_id": ["设备id", "设备号", "deviceid", "idfa", "oaid"],
    "tags": ["标签", "客户标签", "tags", "tag", "labels"],
}
_EVENT_SYNONYMS: dict[str, list[str]] = {
    "event_name": ["事件", "事件名", "事件名称", "行为", "行为类型", "event", "eventname", "eventtype", "type"],
    "occurred_at": ["时间", "发生时间", "下单时间", "订单时间", "支付时间", "时间戳", "日期", "occurredat", "timestamp",
                    "time", "date", "datetime", "eventtime", "ordertime", "createdat"],
    "amount": ["金额", "订单金额", "实付金额", "支付金额", "消费金额", "amount", "total", "ordertotal", "value"],
    "external_id": ["订单号", "订单编号", "事件id", "流水号", "externalid", "orderid", "ordernumber", "orderno",
                    "eventid"],
    "source": ["来源", "数据来源", "source"],
    "properties": ["属性", "properties", "props"],
}
# Headers that name a registered event property besides its name and label (see
# event_properties): "category" feeds the events' category column.
_PROPERTY_SYNONYMS: dict[str, list[str]] = {
    "category": ["类目", "品类", "商品类目", "商品品类", "商品分类", "分类", "类别", "productcategory"],
    "product_id": ["商品id", "商品编号", "商品", "sku", "skuid", "productid"],
    "channel": ["渠道", "销售渠道", "下单渠道"],
}
TAGS_NEW = "tags:new:"  # + a TagCategory id: unknown tags are created under it
_CONSENT_SYNONYMS: dict[str, list[str]] = {
    "purpose": ["用途", "同意用途", "授权用途", "purpose", "purposecode"],
    "consent_status": ["同意状态", "授权状态", "状态", "status", "consent", "consentstatus"],
    "captured_at": ["同意时间", "授权时间", "时间", "capturedat", "consentedat", "date", "time"],
    "notice_version": ["告知版本", "隐私政策版本", "noticeversion", "policyversion"],
    "evidence": ["凭证", "证据", "evidence"],
    "expires_at": ["过期时间", "有效期至", "expiresat", "expiry"],
    "guardian_consent": ["监护人同意", "guardianconsent", "guardian"],
}


def _key(header: str) -> str:
    text = unicodedata.normalize("NFKC", str(header)).casefold()
    return re.sub(r"[\s_\-—.:：()（）\[\]【】/#*]+", "", text)


def identity_kinds() -> list[IdentityKind]:
    return list(IdentityKind.objects.order_by("code"))


def event_properties() -> dict[str, str]:
    """The properties the event definitions register: name → label (in the reader's language)."""
    result: dict[str, str] = {}
    for definition in EventDefinition.objects.order_by("name"):
        for prop in definition.properties if isinstance(definition.properties, list) else []:
            if isinstance(prop, dict) and prop.get("name") and prop["name"] not in result:
                result[str(prop["name"])] = _(str(prop.get("label") or prop["name"]))
    return result


def tags_category_id(target: str) -> int | None:
    """The category a "tags:new:<id>" target creates unknown tags under; None for "tags"."""
    if target.startswith(TAGS_NEW) and target[len(TAGS_NEW):].isdigit():
        return int(target[len(TAGS_NEW):])
    return None


def is_tags_target(target: str) -> bool:
    return target == "tags" or target.startswith(TAGS_NEW)


def target_label(kind: str, target: str) -> str:
    """How the job page names a target (the drop-down's label, or the tags column's choice)."""
    if (category_id := tags_category_id(target)) is not None:
        category = TagCategory.objects.filter(pk=category_id).first()
        return _("tags; tags not yet in the taxonomy are created under %(category)s") % {
            "category": category if category is not None else "?"}
    return dict(target_choices(kind)).get(target, target)


def target_choices(kind: str) -> list[tuple[str, str]]:
    """(target, label) for the mapping screen's drop-downs, "" (ignore) first."""
    choices = [("", _("— ignore this column —"))]
    identities = [(f"identity:{k.code}", _("identity: %(kind)s") % {"kind": k}) for k in identity_kinds()
                  if k.code not in ("phone", "email")]
    person_keys = [("phone", Profile._meta.get_field("phone").verbose_name),
                   ("email", Profile._meta.get_field("email").verbose_name), *identities]
    if kind == ImportKind.PROFILES:
        choices += [(name, Profile._meta.get_field(name).verbose_name) for name in PROFILE_FIELDS]
        choices += identities + [("tags", _FIELD_LABELS["tags"])]
        choices += [(f"trait:{d.key}", _("custom trait: %(label)s") % {"label": d.label})
                    for d in AttributeDefinition.objects.order_by("key")]
        choices += [(f"new_trait:{t}", _("new custom trait (%(type)s)") % {"type": label})
                    for t, label in AttributeType.choices if t != AttributeType.CHOICE]
    elif kind == ImportKind.EVENTS:
        choices += person_keys + [(name, _FIELD_LABELS[name]) for name in (*EVENT_FIELDS, "property")]
        choices += [(f"property:{name}", _("event property: %(label)s (%(name)s)") % {"label": label, "name": name})
                    for name, label in event_properties().items()]
    else:
        choices += person_keys + [(name, _FIELD_LABELS[name]) for name in CONSENT_FIELDS]
    return [(value, str(label)) for value, label in choices]


def guess_mapping(kind: str, headers: list[str]) -> dict[str, str]:
    """The target each header most likely means ("" when unknown); a target is used once."""
    synonyms: dict[str, str] = {}
    groups = {ImportKind.PROFILES: [_SYNONYMS],
              ImportKind.EVENTS: [_EVENT_SYNONYMS, _SYNONYMS],
              ImportKind.CONSENT: [_CONSENT_SYNONYMS, _SYNONYMS]}[kind]
    for group in reversed(groups):  # the kind's own words win over the profile words
        for target, words in group.items():
            for word in words:
                synonyms[_key(word)] = target
    for identity_kind in identity_kinds():
        for word in (identity_kind.code, str(identity_kind), identity_kind.name):
            synonyms.setdefault(_key(word), f"identity:{identity_kind.code}")
    if kind == ImportKind.PROFILES:
        for definition in AttributeDefinition.objects.all():
            for word in (definition.key, definition.label):
                synonyms[_key(word)] = f"trait:{definition.key}"
    if kind == ImportKind.EVENTS:
        from django.utils.translation import override  # noqa: PLC0415

        properties = event_properties()
        with override("zh-hans"):  # 品类, 渠道… as Chinese CRMs write them
            chinese = event_properties()
        for name, label in properties.items():
            for word in (name, label, chinese.get(name, ""), *_PROPERTY_SYNONYMS.get(name, [])):
                if word:
                    synonyms.setdefault(_key(word), f"property:{name}")
    allowed = {value for value, _label in target_choices(kind)}
    mapping, used = {}, set()
    for header in headers:
        target = synonyms.get(_key(header), "")
        if kind != ImportKind.PROFILES and target in PROFILE_FIELDS and target not in ("phone", "email"):
            target = ""  # an events file's 姓名 column does not find anyone
        if target not in allowed or target in used:
            target = ""
        if target:
            used.add(target)
        elif kind == ImportKind.EVENTS and synonyms.get(_key(header), "") not in PROFILE_FIELDS:
            target = "property"  # an events file's other columns are kept as properties of the event
        mapping[header] = target
    return mapping


def new_trait_key(header: str) -> str:
    """The key a column registered as a new custom trait gets: its header as a slug
    ("会员等级" stays readable; "Member Level" → "member_level")."""
    return slugify(header, allow_unicode=True).replace("-", "_")[:64] or "trait"


def mapping_clean(kind: str, headers: list[str], mapping: dict[str, str], precedence: list[str]) -> dict[str, str]:
    """The mapping restricted to `headers`, checked; ValidationError listing what to fix."""
    allowed = {value for value, _label in target_choices(kind)}
    cleaned = {header: (mapping.get(header) or "") for header in headers}
    errors = []
    seen: dict[str, str] = {}
    for header, target in cleaned.items():
        if kind == ImportKind.PROFILES and (category_id := tags_category_id(target)) is not None:
            if not TagCategory.objects.filter(pk=category_id).exists():
                errors.append(_("Column “%(column)s”: the tag category chosen for new tags no longer exists; "
                                "choose another.") % {"column": header})
            target = "tags"
        if target and target not in allowed:
            errors.append(_("Column “%(column)s”: “%(target)s” is not a field you can import into.") % {
                "column": header, "target": target})
        elif target and target not in ("property",) and not target.startswith("new_trait:"):
            if target in seen:
                errors.append(_("Columns “%(first)s” and “%(second)s” both go to the same field; ignore one of them.")
                              % {"first": seen[target], "second": header})
            seen[target] = header
    targets = set(cleaned.values())
    keys = {t for t in targets if t in ("phone", "email") or t.startswith("identity:")}
    if not keys:
        errors.append(_("Map at least one column to a phone, email or id so that customers can be recognised."))
    if kind == ImportKind.EVENTS:
        for required in ("event_name", "occurred_at"):
            if required not in targets:
                errors.append(_("Map a column to “%(field)s”.") % {"field": _FIELD_LABELS[required]})
    if kind == ImportKind.CONSENT:
        for required in ("purpose", "consent_status"):
            if required not in targets:
                errors.append(_("Map a column to “%(field)s”.") % {"field": _FIELD_LABELS[required]})
    known_kinds = {k.code for k in identity_kinds()}
    unknown = [k for k in precedence if k not in known_kinds]
    if unknown:
        errors.append(_("Unknown identity kinds in the match order: %(kinds)s.") % {"kinds": ", ".join(unknown)})
    new_keys: dict[str, str] = {}
    existing = set(AttributeDefinition.objects.values_list("key", flat=True))
    for header, target in cleaned.items():
        if target.startswith("new_trait:"):
            key = new_trait_key(header)
            if key in existing:
                errors.append(_("Column “%(column)s”: a custom trait “%(key)s” already exists; map the column to it.")
                              % {"column": header, "key": key})
            elif key in new_keys:
                errors.append(_("Columns “%(first)s” and “%(second)s” would become the same custom trait.")
                              % {"first": new_keys[key], "second": header})
            new_keys[key] = header
    if errors:
        raise ValidationError(errors)
    return cleaned


def traits_register(mapping: dict[str, str]) -> dict[str, str]:
    """Register the "new_trait:<type>" columns as attribute definitions; the mapping with
    them turned into "trait:<key>"."""
    result = dict(mapping)
    for header, target in mapping.items():
        if target.startswith("new_trait:"):
            key = new_trait_key(header)
            AttributeDefinition.objects.get_or_create(
                key=key, defaults={"label": header[:100], "type": target.split(":", 1)[1],
                                   "description": _("Registered by an import.")})
            result[header] = f"trait:{key}"
    return result
