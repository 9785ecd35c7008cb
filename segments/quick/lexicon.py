"""What the words of a quick audience line mean, and the tokenizer that cuts a line into them.

The lexicon maps each phrase (normalised: NFKC, case-folded, single spaces) to its
meanings: an entity that is a condition by itself (a city, a tag, a lifecycle stage…) or
a grammar word the parser assembles conditions from (a verb such as 下单, a product
category such as 口红, a comparison such as 以上, a unit, a negation).

It is built from the database (tags, tag categories, segments, purposes, event
definitions, named thresholds) plus fixed vocabularies, once per process, and rebuilt when
either changes: signals bump a version kept in the cache (seen by every process), and a
cheap fingerprint of the tables (one query) catches changes made without signals.

jieba cuts Chinese text into words; every Chinese phrase of the lexicon is in its user
dictionary so that 喜欢运动鞋 or 高购买频率 stays one word. Its main dictionary is trimmed
to the common words (loads in ~0.1 s instead of ~3 s) and cached under CDP_VAR_DIR; its
logger is silenced, so nothing is printed."""
from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import translation
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from profiles.geo import _CITY_ALIASES, CITIES, PROVINCES

logger = logging.getLogger(__name__)

VERSION_KEY = "quick-audience:lexicon-version"
USER_WORD_FREQ = 2_000_000  # above any word of jieba's dictionary: lexicon phrases stay whole
MAIN_DICT_MIN_FREQ = 200  # words of jieba's dictionary kept (~20k of 350k): fast to load

# --- roles --------------------------------------------------------------------------------
ENTITY = "entity"  # a condition by itself
VERB, PRODUCT, PREFER, PREFER_AFTER, SPEND = "verb", "product", "prefer", "prefer_after", "spend"
NEG, CMP_BEFORE, CMP_AFTER, RANGE = "neg", "cmp_before", "cmp_after", "range"
UNIT_TIME, UNIT_TIMES, UNIT_MONEY, MULTIPLIER, SPAN = "unit_time", "unit_times", "unit_money", "multiplier", "span"
WINDOW_BEFORE, WINDOW_AFTER = "window_before", "window_after"
AGE, AGE_BEFORE, GENERATION, GENERATION_BEFORE = "age", "age_before", "generation", "generation_before"
FILLER, AND, OR = "filler", "and", "or"

# Which meaning a phrase with several takes unless the user picks another (lower first).
PRIORITY = {"rule_tag": 0, "lifecycle": 1, "city": 2, "province": 3, "gender": 4, "tag": 5, "threshold": 6, "rfm": 7,
            "tag_category": 8, "segment": 9, "consent": 10}

KIND_LABELS = {
    "city": _("city"), "province": _("province"), "gender": _("gender"), "lifecycle": _("lifecycle stage"),
    "rfm": _("RFM group"), "tag": _("tag"), "rule_tag": _("rule tag"), "tag_category": _("tag category"),
    "segment": _("segment"), "consent": _("consent"), "threshold": _("named threshold"),
}


@dataclass(frozen=True)
class Meaning:
    role: str
    value: object = None  # the role's value: a condition (entity), an event name, an operator, a unit…
    kind: str = ""  # entities: city, tag, lifecycle… (see PRIORITY)
    key: str = ""  # entities: what the user picks an ambiguity by, e.g. "city:上海"
    label: object = ""  # entities: the name shown (may be lazy: shown in the reader's language)


@dataclass
class Lexicon:
    phrases: dict[str, list[Meaning]] = field(default_factory=dict)
    # product category value → interest tags fed by it (InterestMapping on "category")
    interests: dict[str, list[str]] = field(default_factory=dict)
    # for "did you mean": the phrase as shown → its normalised key; its pinyin → phrases
    shown: dict[str, str] = field(default_factory=dict)
    pinyin: dict[str, list[str]] = field(default_factory=dict)
    longest: int = 1  # the most tokens a phrase spans
    # what "did you mean" searches, listed once: phrases in Latin letters, and all pinyin keys
    latin: list[str] = field(default_factory=list)
    spellings: list[str] = field(default_factory=list)
    shown_list: list[str] = field(default_factory=list)

    def index(self) -> "Lexicon":
        self.latin = [shown for shown in self.shown if not has_han(shown)]
        self.spellings = list(self.pinyin)
        self.shown_list = list(self.shown)
        return self

    def add(self, phrase: str, meaning: Meaning, *, suggest: bool = True) -> None:
        key = normalise(phrase)
        if not key:
            return
        meanings = self.phrases.setdefault(key, [])
        if meaning not in meanings:
            meanings.append(meaning)
        if suggest and meaning.role in (ENTITY, PRODUCT, VERB, PREFER):
            self.shown.setdefault(phrase.strip(), key)


_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def has_han(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


# --- fixed vocabularies -------------------------------------------------------------------

GENDER_WORDS = {
    "female": ("女性", "女", "女士", "女生", "女人", "女孩", "女顾客", "女客户", "女用户", "女性用户", "女性客户",
               "women", "woman", "female", "females", "ladies", "lady", "girls"),
    "male": ("男性", "男", "男士", "男生", "男人", "男孩", "男顾客", "男客户", "男用户", "男性用户", "男性客户", "先生",
             "men", "man", "male", "males", "gentlemen", "guys", "boys"),
}
LIFECYCLE_WORDS = {
    "prospect": ("潜客", "潜在客户", "未激活", "prospects", "prospect"),
    "new": ("新客", "新客户", "新用户", "新顾客", "新会员", "new", "new customers", "new users"),
    "active": ("活跃", "活跃客户", "活跃用户", "活跃会员", "active", "active customers", "active users"),
    "returning": ("回流", "回流客户", "回流用户", "回头客", "returning", "returning customers"),
    "dormant": ("沉睡", "沉睡客户", "沉睡用户", "沉默客户", "dormant", "dormant customers", "sleeping"),
    "churned": ("流失", "流失客户", "流失用户", "已流失", "churned", "churned customers", "lost customers"),
}
RFM_WORDS = {  # beside each group's own label, in both languages
    "champions": ("重要价值客户", "冠军"), "loyal": ("忠诚", "忠实客户"), "at_risk": ("流失预警",),
    "hibernating": ("休眠",), "cant_lose": ("重要挽留客户",), "need_attention": ("需关注",),
}
VERBS = {
    "product_view": ("浏览", "浏览过", "浏览了", "看过", "看了", "查看", "查看过", "逛过", "viewed", "browsed", "looked at",
                     "view", "views", "browse"),
    "add_to_cart": ("加购", "加购过", "加过购物车", "加入购物车", "加入过购物车", "carted", "added to cart", "add to cart"),
    "order": ("下单", "下过单", "下单过", "买过", "买了", "购买", "购买过", "购买了", "订购", "ordered", "bought",
              "purchased", "order", "orders", "buy", "buys", "purchase", "purchases"),
    "payment": ("支付", "支付过", "付款", "付过款", "paid", "payment", "payments"),
    "share": ("分享", "分享过", "转发过", "shared", "share"),
    "support_chat": ("咨询过", "联系过客服", "chatted with support"),
}
PREFER_WORDS = ("喜欢", "偏好", "爱", "喜爱", "热爱", "钟爱", "爱买", "偏爱", "关注", "对", "感兴趣", "like", "likes",
                "love", "loves", "prefer", "prefers", "into", "interested in", "fans of", "fan of")
PREFER_AFTER_WORDS = ("爱好者", "控", "达人", "迷", "粉", "感兴趣", "lovers", "lover", "fans", "fan", "enthusiasts")
SPEND_WORDS = ("消费", "花费", "累计消费", "总消费", "消费金额", "消费额", "花了", "买了", "spent", "spend", "spends",
               "spending", "total spend", "total spent")
NEG_WORDS = ("不", "非", "没有", "没", "无", "未", "不是", "从未", "从没", "从来没有", "不曾", "除了", "排除",
             "not", "no", "non", "never", "without", "haven't", "hasn't", "didn't", "don't", "doesn't", "did not",
             "have not", "has not", "do not", "does not", "excluding", "except", "non-")
CMP_BEFORE_WORDS = {
    "gt": ("超过", "大于", "多于", "高于", "超", "more than", "over", "above", "greater than", ">"),
    "gte": ("至少", "不少于", "不低于", "满", "达到", "大于等于", "at least", "min", ">="),
    "lt": ("少于", "低于", "小于", "不到", "不足", "less than", "fewer than", "under", "below", "<"),
    "lte": ("不超过", "不多于", "最多", "至多", "小于等于", "at most", "up to", "no more than", "<="),
}
CMP_AFTER_WORDS = {
    "gte": ("以上", "及以上", "或以上", "或更多", "+", "or more", "and more", "and above", "or above", "plus"),
    "lte": ("以下", "及以下", "或以下", "以内", "or less", "or fewer", "and below", "or below"),
}
RANGE_WORDS = ("-", "–", "—", "~", "～", "到", "至", "to", "and")
UNIT_TIME_WORDS = {"days": ("天", "日", "day", "days"), "weeks": ("周", "星期", "个星期", "week", "weeks"),
                   "months": ("个月", "月", "month", "months"), "years": ("年", "year", "years")}
SPAN_WORDS = {("months", 1): ("一个月", "1个月"), ("months", 2): ("两个月",), ("months", 3): ("三个月", "一季度", "一个季度"),
              ("months", 6): ("半年", "六个月"), ("months", 12): ("一年",), ("weeks", 1): ("一周", "一个星期"),
              ("weeks", 2): ("两周",), ("days", 15): ("半个月",)}
UNIT_TIMES_WORDS = ("次", "单", "笔", "回", "times", "time", "x")
UNIT_MONEY_WORDS = ("元", "块", "块钱", "rmb", "yuan", "cny", "¥")
MULTIPLIERS = {"千": 1000, "k": 1000, "万": 10000, "w": 10000}
WINDOW_BEFORE_WORDS = ("近", "最近", "过去", "在过去", "最近的", "in the last", "in the past", "within the last",
                       "within the past", "over the last", "over the past", "during the last", "last", "past", "within",
                       "in")
WINDOW_AFTER_WORDS = ("内", "以内", "之内", "里", "当中", "中")
AGE_WORDS = ("岁", "周岁", "years old", "year old", "y.o.", "yo")
AGE_BEFORE_WORDS = ("年龄", "年龄在", "aged", "age", "ages")
GENERATION_WORDS = ("后",)
GENERATION_BEFORE_WORDS = ("post-", "post", "born after")
FILLER_WORDS = ("的", "用户", "客户", "顾客", "会员", "人群", "群体", "人", "在", "位于", "来自", "住在", "地区", "是", "有",
                "标签", "了", "过", "都", "所有", "全部", "买家", "消费者", "的人", "且是", "里面", "中的",
                "customers", "customer", "users", "user", "people", "members", "shoppers", "buyers", "who", "that",
                "the", "a", "an", "in", "from", "living", "live", "lives", "based", "are", "is", "with", "have",
                "has", "of", "all", "tag", "tagged", "by", "for", "they")
AND_WORDS = ("+", ",", "，", "、", ";", "；", "&", "和", "且", "并且", "以及", "而且", "同时", "还", "并", "与", "跟", "及",
             "and", "but", "also", "plus", "\n")
OR_WORDS = ("或", "或者", "还是", "/", "|", "or")
CONSENT_BEFORE = ("可", "可以", "能", "允许", "同意", "接受", "愿意接收", "接收", "已同意", "opted in to", "opted-in to",
                  "consented to", "reachable by", "can be reached by", "accepts", "can receive", "agreed to")
CONSENT_AFTER = ("触达", "营销", "联系", "推送", "消息", "opt-in", "opted in", "consent", "marketing", "reachable")
CONSENT_CHANNELS = {
    "sms": ("短信", "sms", "text", "texts"), "email": ("邮件", "电子邮件", "邮箱", "email", "e-mail", "emails"),
    "wechat": ("微信", "wechat"), "phone": ("电话", "phone", "calls"), "app_push": ("app推送", "推送", "push"),
}
# Well-known short names of places (沪 is Shanghai on every licence plate).
PLACE_NICKNAMES = {"city": {"上海": ("沪", "魔都", "申城"), "北京": ("京", "帝都"), "重庆": ("渝", "山城"),
                            "天津": ("津",), "广州": ("穗",)},
                   "province": {"广东": ("粤",), "浙江": ("浙",), "江苏": ("苏",), "四川": ("川", "蜀")}}


# --- building -----------------------------------------------------------------------------

def _fixed(lexicon: Lexicon) -> None:
    from profiles.models import Gender, LifecycleStage
    from segments.analytics.rfm import GROUPS

    genders = dict(Gender.choices)
    for value, words in GENDER_WORDS.items():
        condition = {"field": "gender", "op": "eq", "value": value}
        for word in words:
            lexicon.add(word, Meaning(ENTITY, condition, "gender", f"gender:{value}", genders[value]))
    stages = dict(LifecycleStage.choices)
    for value, words in LIFECYCLE_WORDS.items():
        condition = {"field": "lifecycle_stage", "op": "eq", "value": value}
        for word in (*words, *_both_languages(stages[value])):
            lexicon.add(word, Meaning(ENTITY, condition, "lifecycle", f"lifecycle:{value}", stages[value]))
    for code, label, (recency, frequency) in GROUPS:
        condition = {"all": [_score_range("rfm_recency", recency), _score_range("rfm_frequency", frequency)]}
        for word in (*_both_languages(label), *RFM_WORDS.get(code, ())):
            lexicon.add(word, Meaning(ENTITY, condition, "rfm", f"rfm:{code}", label))
    for kind, nicknames in PLACE_NICKNAMES.items():
        for name, words in nicknames.items():
            for word in words:
                lexicon.add(word, _place(kind, name))
    for role, words in ((PREFER, PREFER_WORDS), (PREFER_AFTER, PREFER_AFTER_WORDS), (SPEND, SPEND_WORDS),
                        (NEG, NEG_WORDS), (RANGE, RANGE_WORDS), (UNIT_TIMES, UNIT_TIMES_WORDS),
                        (UNIT_MONEY, UNIT_MONEY_WORDS), (WINDOW_BEFORE, WINDOW_BEFORE_WORDS),
                        (WINDOW_AFTER, WINDOW_AFTER_WORDS), (AGE, AGE_WORDS), (AGE_BEFORE, AGE_BEFORE_WORDS),
                        (GENERATION, GENERATION_WORDS), (GENERATION_BEFORE, GENERATION_BEFORE_WORDS),
                        (FILLER, FILLER_WORDS), (AND, AND_WORDS), (OR, OR_WORDS)):
        for word in words:
            lexicon.add(word, Meaning(role), suggest=role == PREFER)
    for op, words in CMP_BEFORE_WORDS.items():
        for word in words:
            lexicon.add(word, Meaning(CMP_BEFORE, op))
    for op, words in CMP_AFTER_WORDS.items():
        for word in words:
            lexicon.add(word, Meaning(CMP_AFTER, op))
    for unit, words in UNIT_TIME_WORDS.items():
        for word in words:
            lexicon.add(word, Meaning(UNIT_TIME, unit))
    for span, words in SPAN_WORDS.items():
        for word in words:
            lexicon.add(word, Meaning(SPAN, span))
    for word, factor in MULTIPLIERS.items():
        lexicon.add(word, Meaning(MULTIPLIER, factor))


def _score_range(name: str, scores: tuple[int, ...]) -> dict:
    """RFM groups are rectangles of the grid: each side one score or a run of them."""
    if len(scores) == 1:
        return {"field": name, "op": "eq", "value": scores[0]}
    return {"field": name, "op": "between", "value": [min(scores), max(scores)]}


def _both_languages(label) -> tuple[str, ...]:
    """A lazily translated label in Chinese and in English."""
    words = []
    for language in ("zh-hans", "en"):
        with translation.override(language):
            words.append(str(label))
    return tuple(dict.fromkeys(words))


def _place(kind: str, name: str) -> Meaning:
    return Meaning(ENTITY, {"field": kind, "op": "eq", "value": name}, kind, f"{kind}:{name}", name)


def _places(lexicon: Lexicon) -> None:
    cities = {city.name for city in CITIES}
    for city in CITIES:
        for word in (city.name, f"{city.name}市", city.pinyin, *_CITY_ALIASES.get(city.name, ())):
            lexicon.add(word, _place("city", city.name))
    for province in PROVINCES:
        if province.name in cities:  # 上海, 北京…: a municipality is meant as the city
            continue
        for word in (province.name, *province.full_names, *province.aliases):
            lexicon.add(word, _place("province", province.name))


def _taxonomy(lexicon: Lexicon) -> None:
    from consent.models import Purpose
    from profiles.models import EventDefinition, InterestMapping, Tag, TagCategory, TagKind
    from profiles.models.tags import SEEDED_ROOT_NAMES, synonyms_split
    from segments.models import Segment

    from .models import NamedThreshold

    rule_tag_names: dict[str, Meaning] = {}
    for slug, name, synonyms, kind in Tag.objects.filter(is_active=True).values_list("slug", "name", "synonyms", "kind"):
        meaning_kind = "rule_tag" if kind == TagKind.RULE else "tag"
        meaning = Meaning(ENTITY, {"tag": slug, "op": "has"}, meaning_kind, f"tag:{slug}", name)
        if kind == TagKind.RULE:
            rule_tag_names[normalise(name)] = meaning
        for word in (name, slug, slug.replace("-", " ").replace("_", " "), *synonyms_split(synonyms)):
            lexicon.add(word, meaning)
    for mapping in InterestMapping.objects.filter(is_active=True, tag__is_active=True, property_name="category") \
            .select_related("tag").only("property_values", "tag__slug"):
        for value in mapping.property_values or []:
            lexicon.interests.setdefault(str(value), []).append(mapping.tag.slug)

    categories = list(TagCategory.objects.only("pk", "name", "code", "parent_id"))
    for category in categories:
        value = category.code or str(category.pk)
        meaning = Meaning(ENTITY, {"tag_category": value, "op": "has_any"}, "tag_category", f"tag_category:{value}",
                          category.name)
        words = [category.name]
        if category.code in SEEDED_ROOT_NAMES:
            words += list(SEEDED_ROOT_NAMES[category.code])
        for word in words:
            lexicon.add(word, meaning)

    for slug, name in Segment.objects.values_list("slug", "name"):
        meaning = Meaning(ENTITY, {"segment": slug, "op": "in"}, "segment", f"segment:{slug}", name)
        for word in (name, slug):
            lexicon.add(word, meaning)

    by_channel = {}
    for code, name_zh, name_en, channel, category in Purpose.objects.filter(is_active=True).values_list(
            "code", "name_zh", "name_en", "channel", "pipl_category"):
        meaning = Meaning(ENTITY, {"consent": code, "op": "granted"}, "consent", f"consent:{code}",
                          {"zh": name_zh, "en": name_en or name_zh})
        for name in {name_zh, name_en, code.replace("_", " ")} - {""}:
            lexicon.add(name, meaning)
            for before in CONSENT_BEFORE:
                if has_han(before) == has_han(name):
                    lexicon.add(f"{before}{name}" if has_han(before) else f"{before} {name}", meaning, suggest=False)
        if category == "marketing":
            by_channel.setdefault(channel, meaning)
    for channel, meaning in by_channel.items():
        for word in CONSENT_CHANNELS.get(channel, ()):
            for before in ("", *CONSENT_BEFORE):
                for after in ("", *CONSENT_AFTER):
                    if not before and not after:
                        continue
                    joiner = "" if has_han(word) else " "
                    phrase = joiner.join(part for part in (before, word, after) if part) if joiner else \
                        f"{before}{word}{after}"
                    lexicon.add(phrase, meaning, suggest=before in ("可", "同意", "") and after in ("触达", "营销"))

    for threshold in NamedThreshold.objects.all():
        # A rule tag of that name wins: the phrase and its synonyms mean the tag.
        meaning = rule_tag_names.get(normalise(threshold.name)) or Meaning(
            ENTITY, threshold.condition(), "threshold", f"threshold:{threshold.pk}", threshold.name)
        for word in threshold.phrases():
            if normalise(word) not in rule_tag_names:
                lexicon.add(word, meaning)

    events = {name: (label, properties) for name, label, properties in
              EventDefinition.objects.values_list("name", "label", "properties")}
    for event, words in VERBS.items():
        if event in events:
            for word in words:
                lexicon.add(word, Meaning(VERB, event))
    for event, (label, properties) in events.items():
        for word in _translated(label, None):
            lexicon.add(word, Meaning(VERB, event), suggest=event in VERBS)
        for prop in properties if isinstance(properties, list) else []:
            if not isinstance(prop, dict) or prop.get("name") != "category":
                continue
            values = prop.get("values") if isinstance(prop.get("values"), dict) else {}
            for value, value_label in values.items():
                words = {value, value.replace("_", " "), *_translated(value_label, "event value")}
                words |= {word[:-1] for word in words if word.endswith("s") and len(word) > 3}  # sneaker
                for word in words:
                    lexicon.add(word, Meaning(PRODUCT, value))


def _translated(label: str, context: str | None) -> tuple[str, ...]:
    if not label:
        return ()
    words = []
    for language in ("zh-hans", "en"):
        with translation.override(language):
            words.append(pgettext(context, label) if context else gettext(label))
    return tuple(dict.fromkeys(words))


def lexicon_build() -> Lexicon:
    from pypinyin import lazy_pinyin

    lexicon = Lexicon()
    _fixed(lexicon)
    _places(lexicon)
    _taxonomy(lexicon)
    for shown in lexicon.shown:
        if has_han(shown):
            lexicon.pinyin.setdefault("".join(lazy_pinyin(shown)), []).append(shown)
    lexicon.longest = 12  # tokens, spaces included: "can be reached by sms" is 9
    return lexicon.index()


# --- caching ------------------------------------------------------------------------------

def lexicon_changed(**kwargs) -> None:
    """A signal receiver: what the lexicon is built from changed (every process rebuilds)."""
    cache.set(VERSION_KEY, uuid.uuid4().hex, None)


def _version() -> str:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, uuid.uuid4().hex, None)
        version = cache.get(VERSION_KEY)
    return str(version)


def _fingerprint() -> tuple:
    """Counts, largest ids and name lengths of the tables the lexicon reads, in one query:
    catches changes made without signals (bulk updates, another process's rolled-back test
    data, a restored database)."""
    from consent.models import Purpose
    from profiles.models import EventDefinition, InterestMapping, Tag, TagCategory
    from segments.models import Segment

    from .models import NamedThreshold

    columns = []
    for model, text in ((Tag, "name"), (TagCategory, "name"), (Segment, "name"), (Purpose, "code"),
                        (EventDefinition, "name"), (InterestMapping, "property_name"), (NamedThreshold, "synonyms")):
        table = connection.ops.quote_name(model._meta.db_table)
        columns += [f"(SELECT COUNT(*) FROM {table})", f"(SELECT MAX(id) FROM {table})",
                    f"(SELECT SUM(LENGTH({connection.ops.quote_name(text)})) FROM {table})"]
    tag_table = connection.ops.quote_name(Tag._meta.db_table)
    columns.append(f"(SELECT SUM(CASE WHEN is_active THEN 1 ELSE 0 END) FROM {tag_table})")
    columns.append(f"(SELECT SUM(LENGTH(kind) + LENGTH(slug) + LENGTH(synonyms)) FROM {tag_table})")
    threshold_table = connection.ops.quote_name(NamedThreshold._meta.db_table)
    columns.append(f"(SELECT SUM(value) FROM {threshold_table})")
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(columns))
        return tuple(str(value) for value in cursor.fetchone())


_lock = threading.Lock()
_cached: dict = {"stamp": None, "lexicon": None, "fingerprint": None, "fingerprint_at": 0.0}
# Signals move the version at once; the fingerprint (for changes without signals) is one
# query, read at most this often per process.
FINGERPRINT_EVERY_SECONDS = 2.0


def lexicon_current() -> Lexicon:
    """The lexicon for staff (every segment), rebuilt when the data changed; the tokenizer
    learns its phrases."""
    now = time.monotonic()
    if _cached["fingerprint"] is None or now - _cached["fingerprint_at"] >= FINGERPRINT_EVERY_SECONDS:
        _cached.update(fingerprint=_fingerprint(), fingerprint_at=now)
    stamp = (_version(), _cached["fingerprint"])
    if _cached["stamp"] != stamp:
        with _lock:
            if _cached["stamp"] != stamp:
                lexicon = lexicon_build()
                tokenizer_learn(lexicon)
                _cached.update(stamp=stamp, lexicon=lexicon)
                _partner_lexicons.clear()
    return _cached["lexicon"]


def lexicon_for_partner(partner) -> Lexicon:
    """A partner's lexicon: the staff one without the segments not shared with it (the
    tokenizer keeps their words, which only cut text, never grant meaning). Kept per set of
    shared segments until the staff lexicon changes."""
    from segments.api.access import segments_shared_with

    full = lexicon_current()
    shared = frozenset(f"segment:{slug}" for slug in segments_shared_with(partner).values_list("slug", flat=True))
    key = (id(full), shared)
    found = _partner_lexicons.get(key)
    if found is None:
        found = _without_segments(full, shared)
        if len(_partner_lexicons) >= 64:
            _partner_lexicons.clear()
        _partner_lexicons[key] = found
    return found


_partner_lexicons: dict = {}


def _without_segments(full: Lexicon, shared: frozenset) -> Lexicon:
    phrases, hidden = dict(full.phrases), set()
    for key, meanings in full.phrases.items():
        if any(m.kind == "segment" for m in meanings):
            kept = [m for m in meanings if m.kind != "segment" or m.key in shared]
            if kept:
                phrases[key] = kept
            else:
                del phrases[key]
                hidden.add(key)
    if not hidden:
        return Lexicon(phrases=phrases, interests=full.interests, shown=full.shown, pinyin=full.pinyin,
                       longest=full.longest).index()
    shown = {text: key for text, key in full.shown.items() if key not in hidden}
    pinyin = {spelled: [text for text in texts if text in shown] for spelled, texts in full.pinyin.items()}
    return Lexicon(phrases=phrases, interests=full.interests, shown=shown,
                   pinyin={spelled: texts for spelled, texts in pinyin.items() if texts}, longest=full.longest).index()


# --- the tokenizer ------------------------------------------------------------------------

_tokenizer_state: dict = {"tokenizer": None, "learned": {}}
_tokenizer_lock = threading.Lock()


def _jieba_dir() -> Path:
    folder = Path(settings.VAR_DIR) / "jieba"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def tokenizer():
    """One jieba tokenizer per process, loaded on first use (~0.1 s with the trimmed
    dictionary, which is written once under CDP_VAR_DIR/jieba/)."""
    if _tokenizer_state["tokenizer"] is None:
        with _tokenizer_lock:
            if _tokenizer_state["tokenizer"] is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                folder = _jieba_dir()
                source = Path(jieba.__file__).with_name("dict.txt")
                trimmed = folder / f"dict-{jieba.__version__}-min{MAIN_DICT_MIN_FREQ}.txt"
                if not trimmed.exists():
                    partial = trimmed.with_suffix(f".{uuid.uuid4().hex}.part")
                    with source.open(encoding="utf-8") as lines, partial.open("w", encoding="utf-8") as out:
                        out.writelines(line for line in lines
                                       if int(line.split(" ", 2)[1]) >= MAIN_DICT_MIN_FREQ)
                    partial.replace(trimmed)  # atomic: another process may be writing it too
                instance = jieba.Tokenizer(str(trimmed))
                instance.tmp_dir = str(folder)
                instance.initialize()
                _tokenizer_state["tokenizer"] = instance
    return _tokenizer_state["tokenizer"]


def tokenizer_learn(lexicon: Lexicon, forget: bool = True) -> None:
    """Put every Chinese phrase of the lexicon in the tokenizer's dictionary; forget the
    ones a previous lexicon added that are gone (restoring jieba's own frequency)."""
    instance = tokenizer()
    learned: dict = _tokenizer_state["learned"]
    wanted = {key for key in lexicon.phrases if has_han(key) and " " not in key}
    wanted |= {f"{n}后" for n in ("00", "05", "10", "60", "70", "75", "80", "85", "90", "95")}
    with _tokenizer_lock:
        if forget:
            for word in set(learned) - wanted:
                original = learned.pop(word)
                if original:
                    instance.add_word(word, original)
                else:
                    instance.del_word(word)
        for word in wanted - set(learned):
            learned[word] = instance.FREQ.get(word, 0)
            instance.add_word(word, USER_WORD_FREQ)


def tokens(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for `text`, cut by jieba with the lexicon's phrases."""
    return list(tokenizer().tokenize(text, HMM=False))


def warm_up() -> None:
    """Load the tokenizer in the background (pages that show the box call this), so that
    the first line typed is parsed at full speed."""
    if _tokenizer_state["tokenizer"] is None:
        threading.Thread(target=tokenizer, daemon=True, name="quick-audience-warm-up").start()
