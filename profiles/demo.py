"""Deterministic demo data: Chinese e-commerce customers and 18 months of their behaviour.

`demo_generate()` builds profiles, their identities and events, loads them in bulk and
recomputes the metrics, in one transaction.

Determinism: the same seed and anchor date give the same rows. Each profile's randomness
comes from its own generator seeded with (seed, profile id), plus a cheap hash of the same
(`_shape`: which identities it has, how many events, its active span) that lets the loader
number identities and events before they are generated. So results do not depend on
chunking or on how many processes generate them. Ids continue from the current maxima;
values that must be unique (phone, email, WeChat ids, CRM id, order numbers) are derived
from the profile id through bijections, so they stay unique across runs into one database.
Timestamps too are reproducible: events are received when they occur and profiles were last
updated when created (the metrics' own timestamp is the real time they were computed).

Loading: on PostgreSQL, worker processes format chunks as COPY text while this process
streams them over its connection (generation on one core, PostgreSQL's parsing on the
other). When a table is empty its indexes, unique constraints and foreign keys (and the
primary key, unless something references the table) are dropped for the load and
recreated afterwards with SQL from Django's schema editor, then ANALYZEd: measured on 1M
profiles / 10M events, loading with them in place (deferred foreign-key checks
especially) is several times slower. SQLite gets `executemany`.
"""
from __future__ import annotations

import _random
import base64
import bisect
import datetime
import json
import multiprocessing
import os
import random
import time
import zoneinfo
from collections import deque
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import UniqueConstraint
from django.utils import timezone
from django.utils.translation import gettext as _

from .geo import CITIES
from .metrics import metrics_recompute
from .models import (
    AttributeDefinition,
    AttributeType,
    Event,
    EventDefinition,
    Identity,
    Profile,
)
from .partitions import is_partitioned, month_start, next_month, partitions_create
from .services.bulk import copy_text

WINDOW_DAYS = 548  # 18 months of history before the anchor date
ACCOUNT_OPENING_DAYS = 150  # the account-opening flow launched this many days before the anchor
IDENTITY_SOURCE = "demo"
ORDER_SOURCE = "shop"
MAX_PROFILE_ID = 10**8 - 1  # phone numbers use an 8-digit permutation of the id

MEMBER_LEVEL_KEY = "member_level"
MEMBER_LEVELS = ("普通会员", "银卡会员", "金卡会员", "钻石会员")

_PG, _SQLITE = "postgresql", "sqlite"
_CHUNK_PROFILES = 2000  # profiles per generated chunk (≈ 20k events at 10 per profile)

# --- vocabulary ---------------------------------------------------------------------------

# (surname, pinyin, weight ‰) — the most common surnames, roughly by population share.
SURNAMES = (
    ("王", "wang", 71), ("李", "li", 70), ("张", "zhang", 68), ("刘", "liu", 54), ("陈", "chen", 46),
    ("杨", "yang", 31), ("黄", "huang", 23), ("赵", "zhao", 22), ("吴", "wu", 20), ("周", "zhou", 19),
    ("徐", "xu", 15), ("孙", "sun", 14), ("马", "ma", 12), ("朱", "zhu", 11), ("胡", "hu", 11),
    ("郭", "guo", 10), ("何", "he", 10), ("高", "gao", 9), ("林", "lin", 9), ("罗", "luo", 8),
    ("郑", "zheng", 8), ("梁", "liang", 7), ("谢", "xie", 6), ("宋", "song", 5), ("唐", "tang", 5),
    ("许", "xu", 5), ("韩", "han", 4), ("冯", "feng", 4), ("邓", "deng", 4), ("曹", "cao", 4),
    ("彭", "peng", 4), ("曾", "zeng", 4), ("肖", "xiao", 4), ("田", "tian", 3), ("董", "dong", 3),
    ("袁", "yuan", 3), ("潘", "pan", 3), ("于", "yu", 3), ("蒋", "jiang", 3), ("蔡", "cai", 3),
    ("余", "yu", 3), ("杜", "du", 3), ("叶", "ye", 3), ("程", "cheng", 3), ("苏", "su", 2),
    ("魏", "wei", 2), ("吕", "lv", 2), ("丁", "ding", 2), ("任", "ren", 2), ("沈", "shen", 2),
    ("姚", "yao", 2), ("卢", "lu", 2), ("姜", "jiang", 2), ("崔", "cui", 2), ("钟", "zhong", 2),
    ("谭", "tan", 2), ("陆", "lu", 2), ("汪", "wang", 2), ("范", "fan", 2), ("金", "jin", 2),
    ("石", "shi", 2), ("廖", "liao", 2), ("贾", "jia", 2), ("夏", "xia", 2), ("韦", "wei", 2),
    ("付", "fu", 2), ("方", "fang", 2), ("白", "bai", 2), ("邹", "zou", 2), ("孟", "meng", 2),
    ("熊", "xiong", 2), ("秦", "qin", 2), ("邱", "qiu", 2), ("江", "jiang", 2), ("尹", "yin", 2),
    ("薛", "xue", 1), ("闫", "yan", 1), ("段", "duan", 1), ("雷", "lei", 1), ("侯", "hou", 1),
    ("龙", "long", 1), ("史", "shi", 1), ("陶", "tao", 1), ("黎", "li", 1), ("贺", "he", 1),
    ("顾", "gu", 1), ("毛", "mao", 1), ("郝", "hao", 1), ("龚", "gong", 1), ("邵", "shao", 1),
    ("万", "wan", 1), ("钱", "qian", 1), ("严", "yan", 1), ("覃", "qin", 1), ("武", "wu", 1),
    ("戴", "dai", 1), ("莫", "mo", 1), ("孔", "kong", 1), ("向", "xiang", 1), ("汤", "tang", 1),
    ("欧阳", "ouyang", 1),
)

FEMALE_GIVEN = (
    ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("艳", "yan"),
    ("娟", "juan"), ("霞", "xia"), ("秀", "xiu"), ("英", "ying"), ("玲", "ling"), ("婷", "ting"),
    ("雪", "xue"), ("慧", "hui"), ("颖", "ying"), ("琳", "lin"), ("倩", "qian"), ("洁", "jie"),
    ("佳", "jia"), ("怡", "yi"), ("欣", "xin"), ("悦", "yue"), ("梦", "meng"), ("思", "si"),
    ("雨", "yu"), ("晨", "chen"), ("萱", "xuan"), ("诗", "shi"), ("涵", "han"), ("琪", "qi"),
    ("瑶", "yao"), ("璐", "lu"), ("妍", "yan"), ("蕾", "lei"), ("薇", "wei"), ("蓉", "rong"),
    ("丹", "dan"), ("莉", "li"), ("晶", "jing"), ("月", "yue"), ("彤", "tong"), ("可", "ke"),
    ("馨", "xin"), ("露", "lu"), ("媛", "yuan"), ("婉", "wan"), ("雅", "ya"), ("清", "qing"),
    ("美", "mei"), ("红", "hong"), ("梅", "mei"), ("兰", "lan"), ("燕", "yan"), ("萍", "ping"),
    ("菲", "fei"), ("岚", "lan"), ("欢", "huan"), ("晴", "qing"), ("依", "yi"), ("若", "ruo"),
    ("语", "yu"), ("心", "xin"), ("嘉", "jia"), ("舒", "shu"), ("子", "zi"), ("安", "an"),
)
MALE_GIVEN = (
    ("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("勇", "yong"), ("杰", "jie"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("刚", "gang"), ("平", "ping"), ("辉", "hui"),
    ("鹏", "peng"), ("华", "hua"), ("飞", "fei"), ("鑫", "xin"), ("波", "bo"), ("斌", "bin"),
    ("宇", "yu"), ("浩", "hao"), ("凯", "kai"), ("健", "jian"), ("俊", "jun"), ("帆", "fan"),
    ("旭", "xu"), ("宁", "ning"), ("龙", "long"), ("林", "lin"), ("阳", "yang"), ("博", "bo"),
    ("文", "wen"), ("翔", "xiang"), ("轩", "xuan"), ("睿", "rui"), ("泽", "ze"), ("然", "ran"),
    ("昊", "hao"), ("天", "tian"), ("航", "hang"), ("子", "zi"), ("一", "yi"), ("嘉", "jia"),
    ("晨", "chen"), ("峰", "feng"), ("建", "jian"), ("国", "guo"), ("志", "zhi"), ("海", "hai"),
    ("东", "dong"), ("亮", "liang"), ("成", "cheng"), ("毅", "yi"), ("铭", "ming"), ("宏", "hong"),
    ("振", "zhen"), ("豪", "hao"), ("哲", "zhe"), ("逸", "yi"), ("瑞", "rui"), ("诚", "cheng"),
    ("远", "yuan"), ("恒", "heng"), ("皓", "hao"), ("家", "jia"), ("永", "yong"), ("岩", "yan"),
)

# (occupation, weight); students and retirees are handled by age.
OCCUPATIONS = (
    ("白领", 24), ("工程师", 9), ("程序员", 6), ("教师", 6), ("医生", 3), ("护士", 3),
    ("自由职业", 8), ("个体经营", 8), ("公务员", 4), ("销售", 8), ("设计师", 4), ("财务", 4),
    ("市场营销", 5), ("学生", 3), ("企业管理者", 3), ("服务业", 4),
)
PHONE_PREFIXES = (  # mobile prefixes, the big carriers' common ones repeated for weight
    "134", "135", "136", "137", "138", "139", "138", "139", "147", "150", "151", "152", "157",
    "158", "159", "178", "182", "183", "184", "187", "188", "198", "130", "131", "132", "155",
    "156", "166", "175", "176", "185", "186", "186", "133", "153", "173", "177", "180", "181",
    "189", "191", "199",
)
EMAIL_DOMAINS = (("qq.com", 35), ("163.com", 25), ("126.com", 10), ("gmail.com", 8), ("outlook.com", 8),
                 ("sina.com", 6), ("foxmail.com", 4), ("139.com", 4))
SOURCES = ("app", "mini_program", "web")

# category: (product-id prefix, unit price range CNY, max quantity, interest weight for women,
# for men, share of intended purchases completed — people dream of Japan more than they book)
CATEGORIES = {
    "lipstick": ("LIP", (150, 300), 2, 20, 4, 1.0),
    "skincare": ("SKN", (200, 800), 2, 20, 5, 1.0),
    "sneakers": ("SNK", (400, 1500), 1, 16, 18, 0.9),
    "digital": ("DGT", (300, 12000), 1, 9, 24, 0.6),
    "snacks": ("SNC", (30, 100), 2, 12, 10, 1.0),
    "books": ("BK", (30, 150), 2, 9, 9, 1.0),
    "outdoor": ("OUT", (150, 2500), 1, 5, 13, 0.8),
    "japan_travel": ("JPT", (3000, 15000), 1, 10, 9, 0.3),
}
# The catalogue: in each category 8 product lines (a brand, a series, a destination) of 5
# products each. A customer keeps to one line per category most of the time (their brand,
# their style), buys what they considered in an earlier visit, and after an order often
# comes back for its complement in the paired category (the same line and item there):
# the structure an item-to-item recommender finds in real shop data and a list of the most
# popular products cannot.
PRODUCT_NAMES = {  # category: (lines, items); product k is line k // 5, item k % 5
    "lipstick": (("丝绒哑光唇膏", "水润滋养唇膏", "镜面唇釉", "持久雾面唇釉", "小金条唇膏", "气垫唇霜", "国潮雕花口红",
                  "限定礼盒口红"), ("正红", "豆沙色", "枫叶红", "烂番茄色", "奶茶色")),
    "skincare": (("玻尿酸补水", "烟酰胺亮肤", "视黄醇抗老", "积雪草修护", "氨基酸清洁", "轻薄防晒", "男士控油",
                  "敏感肌舒缓"), ("精华", "面霜", "爽肤水", "面膜", "眼霜")),
    "sneakers": (("经典复古跑鞋", "专业竞速跑鞋", "篮球实战鞋", "轻量训练鞋", "百搭板鞋", "潮流老爹鞋", "联名限定款",
                  "帆布鞋"), ("白色", "黑色", "灰色", "蓝色", "红色")),
    "digital": (("星耀", "极光", "青禾", "云帆", "墨子", "锐界", "麒元", "北辰"),
                ("手机", "无线耳机", "智能手表", "平板电脑", "快充充电器")),
    "snacks": (("每日坚果", "手撕肉脯", "黄油饼干", "软糖", "辣条", "冻干果干", "脆海苔", "自热火锅"),
               ("原味", "麻辣味", "蜂蜜味", "芝士味", "家庭礼盒")),
    "books": (("科幻小说", "推理小说", "中国历史", "心理学", "经济管理", "编程入门", "儿童绘本", "旅行指南"),
              ("第一册", "第二册", "第三册", "精装合集", "导读本")),
    "outdoor": (("帐篷", "登山杖", "骑行头盔", "露营炊具", "钓鱼竿", "滑雪镜", "冲锋衣", "头灯"),
                ("入门款", "轻量款", "专业款", "双人款", "套装")),
    "japan_travel": (("东京", "大阪", "京都", "北海道", "冲绳", "富士山", "名古屋", "九州"),
                     ("自由行5日", "跟团6日", "温泉酒店", "亲子游", "美食之旅")),
}
PRODUCT_LINE = 5
PRODUCTS_PER_CATEGORY = 8 * PRODUCT_LINE
COMPLEMENTS = {"lipstick": "skincare", "skincare": "lipstick", "sneakers": "outdoor", "outdoor": "sneakers",
               "digital": "books", "books": "digital", "snacks": "japan_travel", "japan_travel": "snacks"}


def demo_products() -> dict[str, tuple[str, str]]:
    """{product id: (category, Chinese name)} of the demo catalogue."""
    return {
        f"{CATEGORIES[category][0]}{k + 1:05d}": (category, f"{lines[k // PRODUCT_LINE]}·{items[k % PRODUCT_LINE]}")
        for category, (lines, items) in PRODUCT_NAMES.items() for k in range(PRODUCTS_PER_CATEGORY)
    }


TIER1_CITIES = ("上海", "北京", "深圳", "广州")
ENTRY_PAGES = ("home", "home", "home", "search", "search", "category", "new_arrivals", "live_stream")
BROWSE_PAGES = ("home", "member_center", "coupons", "orders", "new_arrivals", "live_stream", "cart", "category")
SHARE_CHANNELS = ("wechat_friend", "wechat_friend", "wechat_moments", "wechat_moments", "xiaohongshu",
                  "weibo", "douyin", "qq")
PAYMENT_METHODS = ("alipay",) * 9 + ("wechat_pay",) * 8 + ("card",) * 2 + ("unionpay",)
STORE_PAYMENT_METHODS = ("unionpay", "card", "alipay", "wechat_pay", "wechat_pay")
SUPPORT_TOPICS = ("物流查询", "退换货", "发票", "优惠券使用", "支付问题", "账户与会员", "商品咨询", "预订变更")
# (campaign, category it promotes or None, active (month, day) ranges; None = always on)
CAMPAIGNS = (
    ("新会员礼包", None, None),
    ("会员日", None, None),
    ("口红新品上市", "lipstick", None),
    ("球鞋首发", "sneakers", None),
    ("护肤试用装", "skincare", None),
    ("数码焕新", "digital", None),
    ("年货节", "snacks", ((1, 5), (1, 25))),
    ("女神节", "lipstick", ((3, 1), (3, 8))),
    ("日本樱花季", "japan_travel", ((2, 15), (4, 5))),
    ("春季新品", "sneakers", ((3, 10), (4, 10))),
    ("520告白季", "lipstick", ((5, 10), (5, 20))),
    ("618预售", None, ((5, 20), (6, 15))),
    ("618狂欢", None, ((6, 16), (6, 18))),
    ("暑期出游", "japan_travel", ((7, 1), (8, 20))),
    ("开学季", "books", ((8, 20), (9, 10))),
    ("国庆出游", "outdoor", ((9, 20), (10, 7))),
    ("日本红叶季", "japan_travel", ((10, 15), (11, 30))),
    ("双11预售", None, ((10, 20), (11, 10))),
    ("双11狂欢", None, ((11, 11), (11, 11))),
    ("双12", None, ((12, 5), (12, 12))),
)
# Shopping festivals: (month, day) -> activity multiplier.
FESTIVALS = {(11, 11): 4.0, (11, 10): 2.2, (11, 12): 1.5, (6, 18): 3.0, (6, 17): 1.8, (12, 12): 1.8,
             (3, 8): 1.4, (5, 20): 1.3, (1, 1): 1.2}
FESTIVAL_SEASONS = (((11, 1), (11, 9), 1.4), ((6, 1), (6, 16), 1.3), ((1, 20), (2, 10), 0.8))
HOUR_WEIGHTS = (2, 1, 0.5, 0.3, 0.3, 0.4, 1, 3, 5, 5, 6, 6, 8, 7, 5, 5, 5, 6, 7, 8, 10, 12, 11, 6)

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_escape(text: str) -> str:
    """`text` as a field of PostgreSQL's COPY text format."""
    return text.translate(_COPY_ESCAPES)


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


class _Permutation:
    """A fixed bijection of [0, half²): three Feistel rounds with random (table) round
    functions, so consecutive ids map to unique numbers that look unrelated."""

    def __init__(self, half: int, key: str):
        rng = random.Random(key)
        self.half = half
        self.rounds = [[rng.randrange(half) for _i in range(half)] for _r in range(3)]

    def __call__(self, x: int) -> int:
        half = self.half
        f1, f2, f3 = self.rounds
        left, right = divmod(x, half)
        left = (left + f1[right]) % half
        right = (right + f2[left]) % half
        left = (left + f3[right]) % half
        return left * half + right


_phone_digits = _Permutation(10_000, "cdp-demo-phone")  # 8 digits
_email_digits = _Permutation(1_000, "cdp-demo-email")  # 6 digits
_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """splitmix64's finaliser: a bijection of 64-bit integers."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def phone_for(profile_id: int, prefix: str) -> str:
    """+86, a mobile prefix and 8 digits that are a permutation of the id: unique per id."""
    return f"+86{prefix}{_phone_digits(profile_id):08d}"


def wechat_id_for(profile_id: int, app: str, salt: int, random_bits: int) -> str:
    """'o' + 27 URL-safe characters: a 4-character app prefix, then 23 from base64 of 8 bytes
    that are a bijection of the id (an odd multiplier mod 2⁶⁴: unique per id; the first 11
    characters cover them) and random bytes."""
    unique = ((profile_id ^ salt) * 0x9E3779B97F4A7C15 & _MASK64).to_bytes(8, "little")
    return "o" + app + base64.urlsafe_b64encode(unique + random_bits.to_bytes(13, "little")).decode()[:23]


def _weights_cumulative(weights) -> list[float]:
    total, cum = 0.0, []
    for w in weights:
        total += w
        cum.append(total)
    return cum


def _in_ranges(month_day: tuple[int, int], start: tuple[int, int], end: tuple[int, int]) -> bool:
    if start <= end:
        return start <= month_day <= end
    return month_day >= start or month_day <= end


class _Tables:
    """Everything a generator needs that does not depend on the profile: calendar, catalogue
    and pre-formatted strings for one dialect (COPY-escaped for PostgreSQL)."""

    def __init__(self, anchor: datetime.date, tz_name: str, dialect: str):
        esc = copy_escape if dialect == _PG else (lambda s: s)
        self.null = "\\N" if dialect == _PG else None
        tz = zoneinfo.ZoneInfo(tz_name)

        def local_midnight(day: datetime.date) -> int:
            return int(datetime.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())

        n = WINDOW_DAYS
        self.anchor = anchor
        self.days = [anchor - datetime.timedelta(days=n - i) for i in range(n)]
        base = (local_midnight(self.days[0]) // 86400 - 1) * 86400  # a UTC midnight before it all
        self.base_epoch = base
        self.midnight = [local_midnight(d) - base for d in self.days]
        self.end = local_midnight(anchor) - base  # nothing happens from the anchor date on
        self.day_compact = [d.strftime("%Y%m%d") for d in self.days]
        # "YYYY-MM-DD" of the days before the anchor date, for birth dates: days_back[k] is k days before.
        self.days_back = [(anchor - datetime.timedelta(days=k)).isoformat() for k in range(80 * 366)]
        utc0 = datetime.date(1970, 1, 1) + datetime.timedelta(days=base // 86400)
        self.day_str = [(utc0 + datetime.timedelta(days=k)).isoformat() + " " for k in range(self.end // 86400 + 3)]
        suffix = "+00" if dialect == _PG else ""
        self.hms = [f"{h:02d}:{m:02d}:{s:02d}{suffix}" for h in range(24) for m in range(60) for s in range(60)]
        hour_cum = _weights_cumulative(HOUR_WEIGHTS)
        self.hour_secs = [3600 * bisect.bisect_right(hour_cum, (i + 0.5) * hour_cum[-1] / 400) for i in range(400)]

        # Day weights: the business grows over the window; festivals and weekends peak.
        session_w, created_w = [], []
        for i, day in enumerate(self.days):
            growth = 0.55 + 0.9 * i / n
            md = (day.month, day.day)
            w = growth * FESTIVALS.get(md, 1.0) * (1.15 if day.weekday() >= 5 else 1.0)
            for start, stop, mult in FESTIVAL_SEASONS:
                if _in_ranges(md, start, stop) and md not in FESTIVALS:
                    w *= mult
            session_w.append(w)
            # Sign-ups grow; about a third are existing customers imported in the first two weeks.
            created_w.append(0.6 + 0.8 * i / n + (21 if i < 14 else 0))
        self.session_cum = _weights_cumulative(session_w)
        self.created_cum = _weights_cumulative(created_w)
        # The average active span in days (see _shape: 65 % active to the end, the others
        # stop uniformly in between), to scale event counts by span.
        total = self.created_cum[-1]
        self.mean_span = sum(w / total * (0.65 * (n - i) + 0.35 * ((n - i - 1) / 2 + 1)) for i, w in enumerate(created_w))

        # People.
        self.surnames = [(esc(s), p) for s, p, _w in SURNAMES]
        self.surname_cum = _weights_cumulative(w for *_x, w in SURNAMES)
        self.female_given = [(esc(c), p) for c, p in FEMALE_GIVEN]
        self.male_given = [(esc(c), p) for c, p in MALE_GIVEN]
        self.cities = [(esc(c.name), esc(c.province)) for c in CITIES if c.weight > 0]
        self.city_cum = _weights_cumulative(c.weight for c in CITIES if c.weight > 0)
        self.occupations = [esc(o) for o, _w in OCCUPATIONS]
        self.occupation_cum = _weights_cumulative(w for _o, w in OCCUPATIONS)
        self.student, self.retired = esc("学生"), esc("退休")
        self.member_traits = [esc(_json({MEMBER_LEVEL_KEY: level})) for level in MEMBER_LEVELS]
        self.email_domains = [d for d, _w in EMAIL_DOMAINS]
        self.email_domain_cum = _weights_cumulative(w for _d, w in EMAIL_DOMAINS)

        # Catalogue: fixed (seed-independent) products with prices in each category's range.
        catalogue_rng = random.Random("cdp-demo-catalogue")
        self.category_names = list(CATEGORIES)
        self.product_view, self.cart, self.products = {}, {}, {}
        self.order_prefix, self.share = {}, {}
        for category, (code, (low, high), max_qty, *_rest) in CATEGORIES.items():
            views, carts, prices = [], [], []
            step = 100 if low >= 1000 else 10
            for k in range(PRODUCTS_PER_CATEGORY):
                raw = low + (high - low) * catalogue_rng.random() ** 1.7
                price = max(low, min(high, int(raw // step) * step + step - 1))
                product_id = f"{code}{k + 1:05d}"
                prices.append(price)
                views.append(esc(_json({"category": category, "product_id": product_id, "price": price})))
                carts.append([
                    esc(_json({"category": category, "product_id": product_id, "quantity": q}))
                    for q in range(1, max_qty + 1)
                ])
            self.products[category] = prices
            self.product_view[category] = views
            self.cart[category] = carts
            self.order_prefix[category] = [
                esc(_json({"category": category, "product_id": f"{code}{k + 1:05d}", "order_id": "@"}).split("@")[0])
                for k in range(PRODUCTS_PER_CATEGORY)
            ]
            self.share[category] = [esc(_json({"channel": ch, "category": category})) for ch in SHARE_CHANNELS]
        self.max_qty = {c: spec[2] for c, spec in CATEGORIES.items()}
        self.order_suffix = {  # '", "channel": "app"}'
            ch: esc('", ' + _json({"channel": ch})[1:]) for ch in (*SOURCES, "store")
        }
        self.phone_prefixes = PHONE_PREFIXES
        self.payment_prefix = {m: esc(_json({"method": m, "order_id": "@"}).split("@")[0]) for m in set(PAYMENT_METHODS)}
        self.pages = {p: esc(_json({"page": p})) for p in {*ENTRY_PAGES, *BROWSE_PAGES, "help", "product_list"}}
        self.entry_pages = [self.pages[p] for p in ENTRY_PAGES]
        self.browse_pages = [self.pages[p] for p in BROWSE_PAGES]
        self.support = [esc(_json({"topic": t})) for t in SUPPORT_TOPICS]
        self.funnel = {s: esc(_json({"channel": s})) for s in SOURCES}
        weights = {c: (spec[3], spec[4]) for c, spec in CATEGORIES.items()}
        self.interest_cum = [
            _weights_cumulative(weights[c][0] for c in self.category_names),
            _weights_cumulative(weights[c][1] for c in self.category_names),
        ]
        # Campaigns running on each day: (properties, the category it promotes or None).
        campaign_props = [(esc(_json({"campaign": name})), category) for name, category, _r in CAMPAIGNS]
        self.campaigns_by_day = []
        for day in self.days:
            md = (day.month, day.day)
            self.campaigns_by_day.append([
                (props, category) for (props, category), (_n, _c, active) in zip(campaign_props, CAMPAIGNS)
                if active is None or _in_ranges(md, *active)
            ])

    def pick_day(self, cum: list[float], low: int, high: int, u: float) -> int:
        """A day in [low, high] with probability proportional to its weight; u in [0, 1)."""
        start = cum[low - 1] if low else 0.0
        day = bisect.bisect_right(cum, start + u * (cum[high] - start))
        return min(day, high)


_TABLES: dict[tuple, _Tables] = {}


def _tables(anchor: datetime.date, tz_name: str, dialect: str) -> _Tables:
    key = (anchor, tz_name, dialect)
    if key not in _TABLES:
        _TABLES.clear()
        _TABLES[key] = _Tables(anchor, tz_name, dialect)
    return _TABLES[key]


# --- generation ---------------------------------------------------------------------------

PROFILE_COLUMNS = (
    "id", "uuid", "name", "gender", "birth_date", "phone", "email", "country", "province", "city",
    "occupation", "traits", "status", "order_count", "total_spent", "lifecycle_stage", "created_at", "updated_at",
)
IDENTITY_COLUMNS = ("id", "profile_id", "kind", "value", "source", "created_at")
EVENT_COLUMNS = (
    "id", "profile_id", "name", "occurred_at", "properties", "amount", "source", "external_id", "received_at",
)

# Share of profiles without events (prospects) and of heavy users (3–5× the events).
_NO_EVENTS, _HEAVY = 0.03, 0.04
_EVENTS_SCALE = 1 / (1 - _NO_EVENTS - _HEAVY + _HEAVY * 4)  # keeps the average at events_per_profile


def _shape(T: _Tables, seed_key: int, profile_id: int, scale: float) -> tuple:
    """(has email, CRM id, WeChat OpenID, UnionID; number of events; day created; last active
    day) of a profile, from a cheap hash rather than its random generator, so the loader can
    number every row of a chunk before a worker generates it.

    Events are spread over the days from sign-up to the last active day (today for 65 %;
    the others stopped at some point), and how many a profile has grows with that span, so
    recent months are not crammed with the whole history of new customers."""
    h = _mix64(seed_key + profile_id)
    email = (h & 1023) < 614  # 60 %
    crm = (h >> 10 & 1023) < 819  # 80 %
    openid = (h >> 20 & 1023) < 512  # 50 %
    unionid = openid and (h >> 30 & 1023) < 614  # 60 % of those
    r, u = (h >> 40 & 4095) / 4096, (h >> 52) / 4096
    h = _mix64(h)
    created = T.pick_day(T.created_cum, 0, WINDOW_DAYS - 1, (h & 0xFFFFFF) / 0x1000000)
    if (h >> 24 & 4095) < 2662:  # 65 % still active
        last_active = WINDOW_DAYS - 1
    else:
        last_active = created + int((h >> 36 & 0xFFFFFF) / 0x1000000 * (WINDOW_DAYS - created))
    span = 0.25 + 0.75 * (last_active - created + 1) / T.mean_span
    if r < _NO_EVENTS:
        n = 0
    elif r < _NO_EVENTS + _HEAVY:
        n = round(scale * (3 + 2 * u) * span)
    else:
        n = round(scale * (0.5 + u) * span)
    return email, crm, openid, unionid, n, created, last_active


def _chunk_counts(T: _Tables, seed: int, first_id: int, count: int, events_per_profile: int) -> tuple[int, int]:
    """(identities, events) that `_generate` makes for these profiles."""
    seed_key, scale = seed * (1 << 40), events_per_profile * _EVENTS_SCALE
    identities = events = 0
    for pid in range(first_id, first_id + count):
        email, crm, openid, unionid, n, _created, _last = _shape(T, seed_key, pid, scale)
        identities += 1 + email + crm + openid + unionid
        events += n
    return identities, events


def _generate(seed: int, anchor: datetime.date, tz_name: str, dialect: str, first_id: int, count: int,
              events_per_profile: int, first_identity_id: int, first_event_id: int):
    """Rows for profiles first_id … first_id + count - 1, their identities and events
    (numbered from first_identity_id and first_event_id): tuples of strings in column order,
    NULL being None for SQLite and \\N for PostgreSQL's COPY."""
    T = _tables(anchor, tz_name, dialect)
    NULL = T.null
    rng = random.Random()
    rnd = rng.random
    pick_day = T.pick_day
    day_str, hms, midnight, end = T.day_str, T.hms, T.midnight, T.end
    hour_secs = T.hour_secs
    n_days = WINDOW_DAYS
    last = n_days - 1
    launch = n_days - ACCOUNT_OPENING_DAYS
    session_cum = T.session_cum
    categories = T.category_names
    n_categories = len(categories)
    product_view, cart, products, max_qty = T.product_view, T.cart, T.products, T.max_qty
    order_prefix, order_suffix, payment_prefix = T.order_prefix, T.order_suffix, T.payment_prefix
    entry_pages, browse_pages, pages = T.entry_pages, T.browse_pages, T.pages
    campaigns_by_day, share, support, funnel = T.campaigns_by_day, T.share, T.support, T.funnel
    n_entry, n_browse, n_share, n_support = len(entry_pages), len(browse_pages), len(SHARE_CHANNELS), len(support)
    n_pay, n_store_pay = len(PAYMENT_METHODS), len(STORE_PAYMENT_METHODS)
    help_page = pages["help"]
    list_page = pages["product_list"]
    seed_key = seed * (1 << 40)
    phone_prefixes = T.phone_prefixes
    n_phone_prefixes = len(phone_prefixes)
    scale = events_per_profile * _EVENTS_SCALE
    buy_rate = {c: spec[5] for c, spec in CATEGORIES.items()}
    surnames, surname_cum, female_given, male_given = T.surnames, T.surname_cum, T.female_given, T.male_given
    surname_total, n_female, n_male = surname_cum[-1], len(female_given), len(male_given)
    cities, city_cum, occupations, occupation_cum = T.cities, T.city_cum, T.occupations, T.occupation_cum
    city_total, occupation_total = city_cum[-1], occupation_cum[-1]
    email_domains, email_domain_cum = T.email_domains, T.email_domain_cum
    email_total = email_domain_cum[-1]
    days_back = T.days_back
    member_traits, student, retired = T.member_traits, T.student, T.retired
    bisect_right = bisect.bisect_right
    seed_rng = _random.Random.seed  # the C seeding random.Random.seed ends in, without its checks
    n_products = PRODUCTS_PER_CATEGORY
    complements = COMPLEMENTS
    line = {}  # the customer's line in each category: its first product's index

    def pick(category: str) -> int:
        """A product of the category: mostly one of the customer's line, else a popular one."""
        if rnd() < 0.7:
            return line[category] + int(rnd() * PRODUCT_LINE)
        return int(rnd() ** 2 * n_products)

    tier1 = {esc for esc, _p in cities if esc in TIER1_CITIES}

    profiles, identities, events = [], [], []
    add_identity = identities.append
    identity_id = first_identity_id
    for pid in range(first_id, first_id + count):
        seed_rng(rng, seed_key + pid)
        pid_s = str(pid)
        has_email, has_crm, has_openid, has_unionid, n, created_day, high = _shape(T, seed_key, pid, scale)

        # --- who ------------------------------------------------------------------------
        g = rnd()
        gender = "female" if g < 0.55 else ("male" if g < 0.98 else "unknown")
        female = gender == "female" or (gender == "unknown" and rnd() < 0.5)
        surname, surname_py = surnames[bisect_right(surname_cum, rnd() * surname_total)]
        pool, n_pool = (female_given, n_female) if female else (male_given, n_male)
        c1, p1 = pool[int(rnd() * n_pool)]
        if rnd() < 0.7:
            c2, p2 = pool[int(rnd() * n_pool)]
            given, given_py, initials = c1 + c2, p1 + p2, p1[0] + p2[0]
        else:
            given, given_py, initials = c1, p1, p1[0]
        name = surname + given

        a = rnd()
        if a < 0.68:
            age = 22 + int(rnd() * 19)  # 22–40
        elif a < 0.82:
            age = 18 + int(rnd() * 4)  # 18–21
        else:
            age = 41 + int(rnd() ** 1.5 * 25)  # 41–65, fewer as they get older
        birth_s = days_back[int((age + 0.02 + rnd() * 0.96) * 365.2425)]
        if rnd() >= 0.92:
            birth_s = NULL  # not everyone tells
        city, province = cities[bisect_right(city_cum, rnd() * city_total)]
        if age <= 22 and rnd() < 0.7:
            occupation = student
        elif age >= 58 and rnd() < 0.6:
            occupation = retired
        else:
            occupation = occupations[bisect_right(occupation_cum, rnd() * occupation_total)]

        buyer = rnd()  # 30% never buy, 50% now and then, 20% often
        purchase_p = 0.0 if buyer < 0.3 else (0.14 if buyer < 0.8 else 0.38)
        if city in tier1:
            purchase_p *= 1.25  # big-city customers spend more
        m = rnd()
        if buyer < 0.3:
            level = 0 if m < 0.85 else (1 if m < 0.97 else 2)
        elif buyer < 0.8:
            level = 0 if m < 0.6 else (1 if m < 0.88 else (2 if m < 0.98 else 3))
        else:
            level = 0 if m < 0.3 else (1 if m < 0.65 else (2 if m < 0.9 else 3))

        created_t = midnight[created_day] + hour_secs[int(rnd() * 400)] + int(rnd() * 3600)
        created_s = day_str[created_t // 86400] + hms[created_t % 86400]
        u = rng.getrandbits(128)
        u = (u & ~(0xF << 76) & ~(0xC << 60)) | (4 << 76) | (0x8 << 60)  # version 4, RFC 4122 variant

        phone = phone_for(pid, phone_prefixes[int(rnd() * n_phone_prefixes)])
        email = ""
        if has_email:
            domain = email_domains[bisect_right(email_domain_cum, rnd() * email_total)]
            token = _email_digits(pid % 1_000_000) + pid // 1_000_000 * 1_000_000
            style = rnd()
            if domain == "qq.com" and style < 0.5:
                local = str(token + 100_000_000 * (1 + pid % 9))  # a QQ number: 9 digits
            elif domain in ("163.com", "126.com", "139.com") and style < 0.2:
                local = phone[3:]  # the mobile number
            else:
                if style < 0.45:
                    handle = surname_py + given_py
                elif style < 0.6:
                    handle = given_py + surname_py
                elif style < 0.75:
                    handle = surname_py + initials
                elif style < 0.85:
                    handle = surname_py + "_" + given_py
                elif style < 0.92:
                    handle = surname_py + "." + given_py
                else:
                    handle = given_py
                local = f"{handle}{token:06d}"  # letters, then digits unique per id
            email = f"{local}@{domain}"
        profiles.append((
            pid_s, f"{u:032x}", name, gender, birth_s, phone, email, "CN", province, city, occupation,
            member_traits[level], "active", "0", "0", "prospect", created_s, created_s,
        ))
        add_identity((str(identity_id), pid_s, "phone", phone, IDENTITY_SOURCE, created_s))
        identity_id += 1
        if has_email:
            add_identity((str(identity_id), pid_s, "email", email, IDENTITY_SOURCE, created_s))
            identity_id += 1
        if has_crm:
            add_identity((str(identity_id), pid_s, "crm_id", f"CRM{pid:08d}", IDENTITY_SOURCE, created_s))
            identity_id += 1
        if has_openid:
            openid = wechat_id_for(pid, "Tq5x", 0x5BD1E995, rng.getrandbits(104))
            add_identity((str(identity_id), pid_s, "wechat_openid", openid, IDENTITY_SOURCE, created_s))
            identity_id += 1
        if has_unionid:
            unionid = wechat_id_for(pid, "6_bm", 0x1B873593, rng.getrandbits(104))
            add_identity((str(identity_id), pid_s, "wechat_unionid", unionid, IDENTITY_SOURCE, created_s))
            identity_id += 1

        # --- what they did --------------------------------------------------------------
        if n <= 0:
            continue
        interest_cum = T.interest_cum[0 if female else 1]
        interests = []
        while len(interests) < 3:  # three different favourites
            category = categories[bisect.bisect_right(interest_cum, rnd() * interest_cum[-1])]
            if category not in interests:
                interests.append(category)
        # favourite ×5, second ×3, third ×2, two random categories ×1: 12 slots
        interests = [interests[0]] * 5 + [interests[1]] * 3 + [interests[2]] * 2 + [
            categories[int(rnd() * n_categories)], categories[int(rnd() * n_categories)]]
        main_source = SOURCES[0 if (s := rnd()) < 0.5 else (1 if s < 0.85 else 2)]
        style = rng.getrandbits(24)
        for i, c in enumerate(categories):
            line[c] = (style >> 3 * i & 7) * PRODUCT_LINE
        considered = {}  # category: a product viewed in an earlier visit and not bought yet
        follow = None  # (category, product): the complement of their last order
        low = created_day
        # Many of those still around are on a buying spree this month (a festival, a campaign).
        spree = high == last and rnd() < (0.75 if buyer >= 0.8 else 0.4)
        recent_share = (0.35 if buyer >= 0.8 else 0.15) if spree else 0.0
        recent_purchase_p = min(0.8, purchase_p * 3)
        recent_low = max(low, n_days - 30)
        order_seq = 0
        ev = []
        add = ev.append

        if rnd() < 0.15 and high >= launch:  # account opening funnel
            d = pick_day(session_cum, max(low, launch), high, rnd())
            t = midnight[d] + hour_secs[int(rnd() * 400)] + int(rnd() * 3600)
            if t > end - 3600:
                t -= 3600
            src = main_source
            props = funnel[src]
            ts = day_str[t // 86400] + hms[t % 86400]
            add((pid_s, "account_open_start", ts, props, NULL, src, NULL, ts))
            if rnd() < 0.45:
                t += 60 + int(rnd() * 900)
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "account_open_submit", ts, props, NULL, src, NULL, ts))
                if rnd() < 0.75:
                    t += 300 + int(rnd() * rnd() * 172800)  # reviewed within minutes to two days
                    if t < end:
                        ts = day_str[t // 86400] + hms[t % 86400]
                        add((pid_s, "account_open_complete", ts, props, NULL, src, NULL, ts))

        while len(ev) < n:
            if recent_share and rnd() < recent_share:  # this month's buying spree
                d = pick_day(session_cum, recent_low, high, rnd())
                pp = recent_purchase_p
            else:
                d = pick_day(session_cum, low, high, rnd())
                pp = purchase_p
            t = midnight[d] + hour_secs[int(rnd() * 400)] + int(rnd() * 3600)
            if t > end - 3600:
                t -= 3600  # a session on the last evening must end before the anchor
            if d == created_day and t < created_t:
                t = created_t + int(rnd() * 600)
            src = main_source if rnd() < 0.8 else SOURCES[int(rnd() * 3)]
            kind = rnd() * (1 + pp)
            category = interests[int(rnd() * 12)]
            if kind < pp and rnd() < buy_rate[category]:  # browse, cart, order, pay
                target = -1
                if follow is not None and rnd() < 0.5:  # back for the complement of the last order
                    category, target = follow
                    follow = None
                elif category in considered and rnd() < 0.6:  # what they looked at last time
                    target = considered.pop(category)
                views = product_view[category]
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "page_view", ts, entry_pages[int(rnd() * n_entry)], NULL, src, NULL, ts))
                for _k in range(1 + int(rnd() * 3)):
                    product = pick(category)
                    t += 10 + int(rnd() * 120)
                    ts = day_str[t // 86400] + hms[t % 86400]
                    add((pid_s, "product_view", ts, views[product], NULL, src, NULL, ts))
                if target >= 0:
                    product = target
                    t += 10 + int(rnd() * 120)
                    ts = day_str[t // 86400] + hms[t % 86400]
                    add((pid_s, "product_view", ts, views[product], NULL, src, NULL, ts))
                qty = 1 + int(rnd() * rnd() * max_qty[category] + 0.15) if max_qty[category] > 1 else 1
                qty = min(qty, max_qty[category])
                t += 20 + int(rnd() * 180)
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "add_to_cart", ts, cart[category][product][qty - 1], NULL, src, NULL, ts))
                order_seq += 1
                order_id = f"{T.day_compact[d]}{pid:09d}{order_seq:03d}"
                amount = f"{products[category][product] * qty}.00"
                t += 30 + int(rnd() * 600)
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "order", ts, order_prefix[category][product] + order_id + order_suffix[src], amount,
                     ORDER_SOURCE, order_id, ts))
                if rnd() < 0.6:
                    follow = (complements[category], product)
                if rnd() < 0.92:
                    t += 5 + int(rnd() * 90)
                    ts = day_str[t // 86400] + hms[t % 86400]
                    add((pid_s, "payment", ts, payment_prefix[PAYMENT_METHODS[int(rnd() * n_pay)]] + order_id + '"}',
                         amount, src, NULL, ts))
            elif kind < 0.45 + pp:  # browse products (also where a purchase was given up)
                views = product_view[category]
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "page_view", ts, entry_pages[int(rnd() * n_entry)], NULL, src, NULL, ts))
                product = 0
                for _k in range(1 + int(rnd() * 4)):
                    product = pick(category)
                    t += 10 + int(rnd() * 150)
                    ts = day_str[t // 86400] + hms[t % 86400]
                    add((pid_s, "product_view", ts, views[product], NULL, src, NULL, ts))
                considered[category] = product
                if rnd() < 0.25:
                    t += 20 + int(rnd() * 120)
                    ts = day_str[t // 86400] + hms[t % 86400]
                    add((pid_s, "add_to_cart", ts, cart[category][product][0], NULL, src, NULL, ts))
            elif kind < 0.62 + pp:  # pages only
                for _k in range(1 + int(rnd() * 3)):
                    ts = day_str[t // 86400] + hms[t % 86400]
                    add((pid_s, "page_view", ts, browse_pages[int(rnd() * n_browse)], NULL, src, NULL, ts))
                    t += 5 + int(rnd() * 90)
            elif kind < 0.78 + pp:  # a campaign message: open, maybe click through to a product
                running = campaigns_by_day[d]
                props, category = running[int(rnd() * len(running))]
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "campaign_open", ts, props, NULL, src, NULL, ts))
                if rnd() < 0.45:
                    t += 3 + int(rnd() * 60)
                    ts = day_str[t // 86400] + hms[t % 86400]
                    add((pid_s, "campaign_click", ts, props, NULL, src, NULL, ts))
                    category = category or interests[int(rnd() * 12)]
                    t += 5 + int(rnd() * 30)
                    ts = day_str[t // 86400] + hms[t % 86400]
                    add((pid_s, "product_view", ts, product_view[category][pick(category)], NULL, src, NULL, ts))
            elif kind < 0.86 + pp:  # share a product
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "product_view", ts, product_view[category][pick(category)], NULL, src, NULL, ts))
                t += 10 + int(rnd() * 90)
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "share", ts, share[category][int(rnd() * n_share)], NULL, src, NULL, ts))
            elif kind < 0.91 + pp:  # ask support
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "page_view", ts, help_page, NULL, src, NULL, ts))
                t += 15 + int(rnd() * 120)
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "support_chat", ts, support[int(rnd() * n_support)], NULL, src, NULL, ts))
            elif kind < 0.93 + pp and pp:  # bought in a store
                product = pick(category)
                order_seq += 1
                order_id = f"{T.day_compact[d]}{pid:09d}{order_seq:03d}"
                amount = f"{products[category][product]}.00"
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "order", ts, order_prefix[category][product] + order_id + order_suffix["store"], amount,
                     ORDER_SOURCE, order_id, ts))
                if rnd() < 0.6:
                    follow = (complements[category], product)
                t += 10 + int(rnd() * 60)
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "payment", ts,
                     payment_prefix[STORE_PAYMENT_METHODS[int(rnd() * n_store_pay)]] + order_id + '"}',
                     amount, ORDER_SOURCE, NULL, ts))
            else:  # a product list page and a look at one product
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "page_view", ts, list_page, NULL, src, NULL, ts))
                t += 5 + int(rnd() * 40)
                ts = day_str[t // 86400] + hms[t % 86400]
                add((pid_s, "product_view", ts, product_view[category][pick(category)], NULL, src, NULL, ts))
        if len(ev) > n:
            del ev[n:]
        events += ev
    # Number the events (rows so far start at profile_id), in one C-level pass.
    events = list(map(tuple.__add__, zip(map(str, range(first_event_id, first_event_id + len(events)))), events))
    return profiles, identities, events


def _copy_chunk(args) -> tuple[int, int, int, bytes, bytes, bytes]:
    """Worker: one chunk as COPY text for each table, plus the row counts."""
    profiles, identities, events = _generate(*args)
    return (
        len(profiles), len(identities), len(events),
        _copy_text(profiles), _copy_text(identities), _copy_text(events),
    )


def _worker_init() -> None:
    # PostgreSQL parsing the COPY stream is the critical path: let it have the CPU first.
    try:
        os.nice(5)
    except OSError:
        pass


def _copy_text(rows) -> bytes:
    if not rows:
        return b""
    return ("\n".join(map("\t".join, rows)) + "\n").encode()


# --- loading ------------------------------------------------------------------------------

@dataclass
class DemoStats:
    profiles: int = 0
    identities: int = 0
    events: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    first_profile_id: int | None = None
    bulk_schema: bool = False  # indexes and constraints were dropped and recreated around the load

    def rate(self, rows: int) -> float:
        return rows / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return _(
            "Generated %(profiles)s profiles (%(profiles_rate)s/s), %(identities)s identities "
            "(%(identities_rate)s/s) and %(events)s events (%(events_rate)s/s) in %(seconds).1f s."
        ) % {
            "profiles": f"{self.profiles:,}", "profiles_rate": f"{self.rate(self.profiles):,.0f}",
            "identities": f"{self.identities:,}", "identities_rate": f"{self.rate(self.identities):,.0f}",
            "events": f"{self.events:,}", "events_rate": f"{self.rate(self.events):,.0f}",
            "seconds": self.seconds,
        }

    def phases_summary(self) -> str:
        return _("Phases: %(phases)s.") % {
            "phases": ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phases.items()),
        }


def member_level_definition() -> AttributeDefinition:
    """The `member_level` custom trait the demo profiles carry, registered if missing."""
    definition, _created = AttributeDefinition.objects.get_or_create(
        key=MEMBER_LEVEL_KEY,
        defaults={
            "label": _("Member level"),
            "type": AttributeType.CHOICE,
            "choices": list(MEMBER_LEVELS),
            "description": _("Loyalty tier, from the lowest to the highest."),
        },
    )
    return definition


def demo_catalogue() -> None:
    """Name the demo's products: the product_id property of product views, carts and orders
    labels its values with the catalogue's Chinese names (kept beside labels staff added)."""
    names = {product_id: name for product_id, (_category, name) in demo_products().items()}
    for definition in EventDefinition.objects.filter(name__in=("product_view", "add_to_cart", "order")):
        properties = [p for p in definition.properties or [] if isinstance(p, dict)]
        prop = next((p for p in properties if p.get("name") == "product_id"), None)
        if prop is None:
            prop = {"name": "product_id", "type": "string", "label": "Product"}
            properties.insert(1, prop)
        values = prop.get("values") if isinstance(prop.get("values"), dict) else {}
        merged = {**names, **values}
        if merged != values or prop not in (definition.properties or []):
            prop["values"] = merged
            definition.properties = properties
            definition.save(update_fields=["properties"])


def demo_generate(
    *,
    profiles: int,
    events_per_profile: int,
    seed: int,
    anchor_date: datetime.date | None = None,
    stdout=None,
    workers: int | None = None,
    bulk_schema: bool | None = None,
) -> DemoStats:
    """Add `profiles` demo customers with about `events_per_profile` events each (ids after
    the current maximum), then recompute metrics; all in one transaction.

    anchor_date: the history covers the 18 months before this day (default: today in
        TIME_ZONE); nothing happens on or after it.
    workers: generator processes on PostgreSQL (default: one per CPU).
    bulk_schema: on PostgreSQL, drop the indexes, unique constraints and foreign keys of
        the tables that are empty before loading and recreate them afterwards (default:
        when at least 200,000 events are expected).
    """
    if profiles < 0 or events_per_profile < 0:
        raise ValueError(_("Counts cannot be negative."))
    if seed < 0:
        raise ValueError(_("The seed cannot be negative."))
    anchor = anchor_date or timezone.localdate()
    started = time.monotonic()
    stats = DemoStats()

    def say(message: str) -> None:
        if stdout is not None:
            stdout.write(message)

    with transaction.atomic():
        member_level_definition()
        demo_catalogue()
        if not profiles:
            return stats
        postgresql = connection.vendor == "postgresql"
        if postgresql:
            # One load at a time: a second one would pick the same ids.
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {connection.ops.quote_name(Profile._meta.db_table)} IN SHARE ROW EXCLUSIVE MODE")
            # The history goes straight into its months' partitions, not the default one.
            if is_partitioned():
                partitions_create(_months(anchor - datetime.timedelta(days=WINDOW_DAYS + 1), anchor))
        first_ids = [(model.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
                     for model in (Profile, Identity, Event)]
        if first_ids[0] + profiles - 1 > MAX_PROFILE_ID:
            raise ValueError(_("Demo profile ids must stay below %(max)s.") % {"max": f"{MAX_PROFILE_ID + 1:,}"})
        stats.first_profile_id = first_ids[0]
        dialect = _PG if postgresql else _SQLITE
        _tables(anchor, settings.TIME_ZONE, dialect)  # built once, before worker processes fork
        say(_("Generating %(profiles)s profiles with about %(events)s events each (seed %(seed)s, "
              "history up to %(anchor)s)…") % {
            "profiles": f"{profiles:,}", "events": events_per_profile, "seed": seed, "anchor": anchor.isoformat(),
        })
        chunks = _chunks(seed, anchor, dialect, first_ids, profiles, events_per_profile)
        if postgresql:
            if bulk_schema is None:
                bulk_schema = profiles * events_per_profile >= 200_000
            _load_postgresql(chunks, profiles, stats, say, workers, bulk_schema)
        else:
            _load_executemany(chunks, profiles, stats, say)
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [Profile, Identity, Event]):
                cursor.execute(sql)
    stats.seconds = time.monotonic() - started
    say(stats.phases_summary())
    say(stats.summary())
    return stats


def _months(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    months, month = [], month_start(first)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def _chunks(seed, anchor, dialect, first_ids, profiles, events_per_profile):
    """Arguments of `_generate` for each chunk, ids numbered on from `first_ids`."""
    T = _tables(anchor, settings.TIME_ZONE, dialect)
    profile_id, identity_id, event_id = first_ids
    end = profile_id + profiles
    while profile_id < end:
        count = min(_CHUNK_PROFILES, end - profile_id)
        yield (seed, anchor, settings.TIME_ZONE, dialect, profile_id, count, events_per_profile, identity_id, event_id)
        identities, events = _chunk_counts(T, seed, profile_id, count, events_per_profile)
        profile_id, identity_id, event_id = profile_id + count, identity_id + identities, event_id + events


class _Progress:
    def __init__(self, say, stats: DemoStats, total: int):
        self.say, self.stats, self.total = say, stats, total
        self.started = self.last = time.monotonic()

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self.last >= 5 or self.stats.profiles >= self.total:
            self.last = now
            self.say(_("  %(done)s / %(total)s profiles, %(events)s events (%(seconds).0f s)") % {
                "done": f"{self.stats.profiles:,}", "total": f"{self.total:,}",
                "events": f"{self.stats.events:,}", "seconds": now - self.started,
            })


def _recompute_metrics(stats: DemoStats, say) -> None:
    started = time.monotonic()
    say(_("Recomputing metrics…"))
    metrics_recompute()
    stats.phases["metrics"] = stats.phases.get("metrics", 0.0) + time.monotonic() - started


def _load_executemany(chunks, total: int, stats: DemoStats, say) -> None:
    started = time.monotonic()
    progress = _Progress(say, stats, total)
    qn = connection.ops.quote_name
    inserts = [
        f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(c) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
        for model, columns in ((Profile, PROFILE_COLUMNS), (Identity, IDENTITY_COLUMNS), (Event, EVENT_COLUMNS))
    ]
    with connection.cursor() as cursor:
        for chunk in chunks:
            rows = _generate(*chunk)
            for sql, table_rows in zip(inserts, rows):
                if table_rows:
                    cursor.executemany(sql, table_rows)
            stats.profiles += len(rows[0])
            stats.identities += len(rows[1])
            stats.events += len(rows[2])
            progress()
    stats.phases["load"] = time.monotonic() - started
    _recompute_metrics(stats, say)


def _load_postgresql(chunks, total: int, stats: DemoStats, say, workers: int | None, bulk_schema: bool) -> None:
    """COPY the chunks, generated by worker processes, over this connection."""
    started = time.monotonic()
    progress = _Progress(say, stats, total)
    tables = (Profile, Identity, Event)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")  # index builds
        cursor.execute("SET LOCAL work_mem = '256MB'")  # the metrics aggregate over all events
        recreate = {}
        if bulk_schema:
            empty = [model for model in tables if not model.objects.exists()]
            recreate = _drop_schema(cursor, empty)
            stats.bulk_schema = bool(recreate)
            if recreate:
                say(_("Dropped %(count)s indexes and constraints of the empty tables for the load.") % {
                    "count": sum(len(sqls) for sqls in recreate.values())})
        copy_seconds = [0.0, 0.0, 0.0]
        columns = (PROFILE_COLUMNS, IDENTITY_COLUMNS, EVENT_COLUMNS)

        def write(result) -> None:
            n_profiles, n_identities, n_events, *texts = result
            for k, text in enumerate(texts):
                if text:
                    copy_started = time.monotonic()
                    copy_text(tables[k], columns[k], [text])  # the shared bulk writer's COPY
                    copy_seconds[k] += time.monotonic() - copy_started
            stats.profiles += n_profiles
            stats.identities += n_identities
            stats.events += n_events
            progress()

        workers = workers or multiprocessing.cpu_count()
        if workers <= 1 or total <= _CHUNK_PROFILES or "fork" not in multiprocessing.get_all_start_methods():
            for chunk in chunks:
                write(_copy_chunk(chunk))
        else:
            # Forked workers inherit the loaded project and never touch the database;
            # at most 2 chunks per worker wait in memory.
            with multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init) as pool:
                pending = deque()
                for chunk in chunks:
                    if len(pending) >= 2 * workers:
                        write(pending.popleft().get())
                    pending.append(pool.apply_async(_copy_chunk, (chunk,)))
                while pending:
                    write(pending.popleft().get())
        stats.phases["load"] = time.monotonic() - started
        for k, name in enumerate(("profiles", "identities", "events")):
            stats.phases[f"copy {name}"] = copy_seconds[k]

        if recreate:
            # Events and identities first (the metrics use the event indexes), then the
            # metrics, then the profile table's indexes: the metrics update rewrites every
            # profile row, cheaper while that table has no indexes to maintain.
            say(_("Recreating indexes and constraints…"))
            _create_schema(cursor, recreate, [Identity, Event], stats)
        _recompute_metrics(stats, say)
        if recreate:
            _create_schema(cursor, recreate, [Profile], stats)


def _create_schema(cursor, recreate: dict, models, stats: DemoStats) -> None:
    started = time.monotonic()
    for model in models:
        sqls = recreate.get(model._meta.db_table)
        if sqls:
            for sql in sqls:
                cursor.execute(sql)
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    stats.phases["indexes"] = stats.phases.get("indexes", 0.0) + time.monotonic() - started


def _bulk_schema(cursor, schema_editor, model) -> list[tuple[str, str, str]]:
    """(name, drop SQL, create SQL) of the indexes and constraints a bulk load into `model`'s
    empty table is faster without: its primary key (unless a foreign key points at the
    table), unique fields, Meta indexes and unique constraints, foreign keys and their
    indexes. Check constraints stay. The SQL comes from Django's schema editor, so what is
    recreated is what the migrations made; only objects the database has are listed."""
    table = model._meta.db_table
    existing = connection.introspection.get_constraints(cursor, table)
    items = []

    def add(name, drop, create) -> None:
        if name in existing:
            items.append((name, str(drop), str(create)))

    cursor.execute(
        "SELECT 1 FROM pg_constraint WHERE contype = 'f' AND confrelid = %s::regclass", [table]
    )
    referenced = cursor.fetchone() is not None
    for name, info in existing.items():
        if info["primary_key"] and not referenced:
            create = schema_editor._create_primary_key_sql(model, model._meta.pk)
            create.parts["name"] = schema_editor.quote_name(name)  # keep PostgreSQL's name
            add(name, schema_editor._delete_primary_key_sql(model, name), create)
        elif info["unique"] and not info["primary_key"] and not info["index"] and len(info["columns"]) == 1:
            fld = next((f for f in model._meta.local_concrete_fields if f.unique and f.column == info["columns"][0]), None)
            if fld is not None and not fld.primary_key:  # a unique=True field
                add(name, schema_editor._delete_unique_sql(model, name),
                    schema_editor._create_unique_sql(model, [fld], name=name))
    for index in model._meta.indexes:
        add(index.name, index.remove_sql(model, schema_editor), index.create_sql(model, schema_editor))
    for constraint in model._meta.constraints:
        if isinstance(constraint, UniqueConstraint):
            add(constraint.name, constraint.remove_sql(model, schema_editor), constraint.create_sql(model, schema_editor))
    for fld in model._meta.local_concrete_fields:
        for statement in schema_editor._field_indexes_sql(model, fld):
            name = str(statement.parts["name"]).strip('"')
            add(name, schema_editor._delete_index_sql(model, name), statement)
        if fld.remote_field and fld.db_constraint:
            statement = schema_editor._create_fk_sql(model, fld, "_fk_%(to_table)s_%(to_column)s")
            name = str(statement.parts["name"]).strip('"')
            add(name, schema_editor._delete_fk_sql(model, name), statement)
    return items


def _drop_schema(cursor, models) -> dict[str, list[str]]:
    """Drop `_bulk_schema` of each model; returns {table: [SQL to recreate it, in order]}."""
    recreate = {}
    with connection.schema_editor(atomic=False, collect_sql=False) as schema_editor:
        for model in models:
            items = _bulk_schema(cursor, schema_editor, model)
            for _name, drop_sql, _create_sql in items:
                cursor.execute(drop_sql)
            if items:
                recreate[model._meta.db_table] = [create_sql for _n, _d, create_sql in items]
    return recreate


# --- the demo taxonomy ---------------------------------------------------------------------

DEMO_INTERESTS = (  # (slug, name, sub-category, property values)
    ("sneaker-lover", "喜欢运动鞋", "运动", ["sneakers"]),
    ("outdoor-fan", "户外运动爱好者", "运动", ["outdoor"]),
    ("lipstick-fan", "口红达人", "美妆", ["lipstick"]),
    ("skincare-fan", "护肤控", "美妆", ["skincare"]),
    ("japan-traveller", "日本旅行爱好者", "旅行", ["japan_travel"]),
)


def demo_taxonomy() -> None:
    """Sub-categories, tags and interest mappings that make the demo's taxonomy, profile
    pages and segments tell a story. Idempotent."""
    from cdp.actors import Actor
    from cdp.sql import statistics_refresh

    from .models import InterestMapping, LifecycleStage, ProfileTag, Tag, TagCategory, TagKind
    from .services.interests import interests_recompute
    from .services.tags import tag_assign

    roots = {c.code: c for c in TagCategory.objects.filter(code__isnull=False)}
    for slug, name, sub_category, values in DEMO_INTERESTS:
        category, _created = TagCategory.objects.get_or_create(name=sub_category, parent=roots["interest"])
        tag, _created = Tag.objects.get_or_create(slug=slug, defaults={
            "name": name, "category": category, "kind": TagKind.INTEREST,
            "description": f"由浏览、加购和下单 {', '.join(values)} 类商品的行为计算，半衰期 30 天。",
        })
        InterestMapping.objects.get_or_create(tag=tag, defaults={
            "event_weights": {"product_view": 1, "add_to_cart": 2, "order": 3},
            "property_name": "category", "property_values": values,
        })
    actor = Actor.system("demo")
    value_tags = (
        ("high-value", "高价值", "#d4380d", "RFM 的 M 分不低于 4（累计消费 3,000 元以上）。",
         Profile.objects.filter(rfm_monetary__gte=4)),
        ("churn-risk", "流失风险", "#faad14", "下过 3 单以上、但已沉睡或流失的客户。",
         Profile.objects.filter(order_count__gte=3, lifecycle_stage__in=[LifecycleStage.DORMANT, LifecycleStage.CHURNED])),
    )
    for slug, name, colour, description, customers in value_tags:
        tag, _created = Tag.objects.get_or_create(slug=slug, defaults={
            "name": name, "category": roots["value"], "colour": colour, "description": description,
        })
        tag_assign(tag=tag, profiles=customers, source="manual", actor=actor, reason=description)
    # Rule tags (filled by segments.rule_tags.rule_tags_refresh, which profiles cannot call).
    rule_tags = (
        ("frequent-buyer", "高购买频率", "#389e0d", "近 30 天下单至少 2 次。",
         {"event": "order", "count": {"op": "gte", "value": 2}, "within": {"days": 30}}),
        ("shanghai-frequent-buyer", "上海高频客户", "#08979c", "上海且有“高购买频率”标签。",
         {"all": [{"field": "city", "op": "eq", "value": "上海"}, {"tag": "frequent-buyer", "op": "has"}]}),
    )
    for slug, name, colour, description, rule in rule_tags:
        Tag.objects.get_or_create(slug=slug, defaults={
            "name": name, "category": roots["behavioural"], "colour": colour, "description": description,
            "kind": TagKind.RULE, "rule_definition": rule, "rule_version": 1,
        })
    interests_recompute()
    # Statistics for the tags just written (autovacuum may be off or late): planned on an
    # empty table, the recommendations' statement reads every customer's interest tags in a
    # nested loop over all their products (over 11 minutes at 200k customers instead of 1.5).
    statistics_refresh(ProfileTag, rows_added=ProfileTag.objects.count())
