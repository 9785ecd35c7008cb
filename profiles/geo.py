"""Chinese provinces and major cities: reference data plus name canonicalisation.

Canonical names are the short Chinese forms people use day to day ("上海", "广东",
"内蒙古"), so the same place typed as "上海市", "Shanghai" or "SHANGHAI" ends up as one
value for segmentation and reporting. Pure data and stdlib only: no Django imports.
"""
from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple


class Province(NamedTuple):
    name: str  # canonical short name, e.g. "广西"
    full_names: tuple[str, ...]  # official name first, then common variants
    aliases: tuple[str, ...]  # pinyin / English, e.g. ("Guangxi",)


class City(NamedTuple):
    name: str  # canonical short name, e.g. "深圳"
    province: str  # canonical province short name; municipalities are their own province
    pinyin: str  # pinyin / English name, e.g. "Shenzhen"
    weight: int  # relative weight for demo data; tier-1 cities are heaviest


# All 34 provincial-level divisions: 4 municipalities, 23 provinces (incl. 台湾),
# 5 autonomous regions and 2 special administrative regions.
PROVINCES: tuple[Province, ...] = (
    # Municipalities
    Province("北京", ("北京市",), ("Beijing", "Peking")),
    Province("天津", ("天津市",), ("Tianjin",)),
    Province("上海", ("上海市",), ("Shanghai",)),
    Province("重庆", ("重庆市",), ("Chongqing",)),
    # Provinces
    Province("河北", ("河北省",), ("Hebei",)),
    Province("山西", ("山西省",), ("Shanxi",)),
    Province("辽宁", ("辽宁省",), ("Liaoning",)),
    Province("吉林", ("吉林省",), ("Jilin",)),
    Province("黑龙江", ("黑龙江省",), ("Heilongjiang",)),
    Province("江苏", ("江苏省",), ("Jiangsu",)),
    Province("浙江", ("浙江省",), ("Zhejiang",)),
    Province("安徽", ("安徽省",), ("Anhui",)),
    Province("福建", ("福建省",), ("Fujian",)),
    Province("江西", ("江西省",), ("Jiangxi",)),
    Province("山东", ("山东省",), ("Shandong",)),
    Province("河南", ("河南省",), ("Henan",)),
    Province("湖北", ("湖北省",), ("Hubei",)),
    Province("湖南", ("湖南省",), ("Hunan",)),
    Province("广东", ("广东省",), ("Guangdong",)),
    Province("海南", ("海南省",), ("Hainan",)),
    Province("四川", ("四川省",), ("Sichuan",)),
    Province("贵州", ("贵州省",), ("Guizhou",)),
    Province("云南", ("云南省",), ("Yunnan",)),
    # 陕西 and 山西 share the pinyin "Shanxi"; the official romanisation of 陕西 is "Shaanxi".
    Province("陕西", ("陕西省",), ("Shaanxi",)),
    Province("甘肃", ("甘肃省",), ("Gansu",)),
    Province("青海", ("青海省",), ("Qinghai",)),
    Province("台湾", ("台湾省", "中国台湾", "台灣", "臺灣"), ("Taiwan",)),
    # Autonomous regions
    Province("内蒙古", ("内蒙古自治区",), ("Inner Mongolia", "Nei Mongol", "Neimenggu")),
    Province("广西", ("广西壮族自治区", "广西自治区"), ("Guangxi",)),
    Province("西藏", ("西藏自治区",), ("Tibet", "Xizang")),
    Province("宁夏", ("宁夏回族自治区", "宁夏自治区"), ("Ningxia",)),
    Province("新疆", ("新疆维吾尔自治区", "新疆自治区"), ("Xinjiang",)),
    # Special administrative regions (traditional spellings are common in their data)
    Province("香港", ("香港特别行政区", "中国香港", "香港特別行政區"), ("Hong Kong", "Hongkong", "HKSAR")),
    Province("澳门", ("澳门特别行政区", "中国澳门", "澳門", "澳門特別行政區"), ("Macau", "Macao", "Aomen")),
)

# About 60 major cities. Weights roughly follow city size and consumer spending so demo
# data looks plausible: tier-1 ~85-100, new tier-1 ~35-60, others 5-30.
CITIES: tuple[City, ...] = (
    # Municipalities and SARs
    City("上海", "上海", "Shanghai", 100),
    City("北京", "北京", "Beijing", 95),
    City("重庆", "重庆", "Chongqing", 55),
    City("天津", "天津", "Tianjin", 40),
    City("香港", "香港", "Hong Kong", 20),
    City("澳门", "澳门", "Macau", 4),
    # 广东
    City("深圳", "广东", "Shenzhen", 90),
    City("广州", "广东", "Guangzhou", 88),
    City("东莞", "广东", "Dongguan", 35),
    City("佛山", "广东", "Foshan", 32),
    City("珠海", "广东", "Zhuhai", 12),
    City("中山", "广东", "Zhongshan", 10),
    City("惠州", "广东", "Huizhou", 10),
    City("汕头", "广东", "Shantou", 8),
    # 浙江
    City("杭州", "浙江", "Hangzhou", 60),
    City("宁波", "浙江", "Ningbo", 30),
    City("温州", "浙江", "Wenzhou", 18),
    City("绍兴", "浙江", "Shaoxing", 10),
    City("金华", "浙江", "Jinhua", 10),
    City("嘉兴", "浙江", "Jiaxing", 9),
    # 江苏
    City("苏州", "江苏", "Suzhou", 45),
    City("南京", "江苏", "Nanjing", 45),
    City("无锡", "江苏", "Wuxi", 22),
    City("常州", "江苏", "Changzhou", 14),
    City("南通", "江苏", "Nantong", 12),
    City("徐州", "江苏", "Xuzhou", 10),
    # 四川, 湖北, 湖南, 陕西, 河南
    City("成都", "四川", "Chengdu", 60),
    City("绵阳", "四川", "Mianyang", 6),
    City("武汉", "湖北", "Wuhan", 50),
    City("宜昌", "湖北", "Yichang", 6),
    City("长沙", "湖南", "Changsha", 40),
    City("西安", "陕西", "Xi'an", 45),
    City("郑州", "河南", "Zhengzhou", 40),
    City("洛阳", "河南", "Luoyang", 8),
    # 山东
    City("青岛", "山东", "Qingdao", 35),
    City("济南", "山东", "Jinan", 25),
    City("烟台", "山东", "Yantai", 10),
    City("潍坊", "山东", "Weifang", 9),
    # North-east and north
    City("沈阳", "辽宁", "Shenyang", 30),
    City("大连", "辽宁", "Dalian", 22),
    City("长春", "吉林", "Changchun", 18),
    City("哈尔滨", "黑龙江", "Harbin", 20),
    City("石家庄", "河北", "Shijiazhuang", 18),
    City("唐山", "河北", "Tangshan", 8),
    City("太原", "山西", "Taiyuan", 14),
    City("呼和浩特", "内蒙古", "Hohhot", 6),
    City("包头", "内蒙古", "Baotou", 5),
    # East and south
    City("合肥", "安徽", "Hefei", 30),
    City("福州", "福建", "Fuzhou", 20),
    City("厦门", "福建", "Xiamen", 18),
    City("泉州", "福建", "Quanzhou", 14),
    City("南昌", "江西", "Nanchang", 16),
    City("南宁", "广西", "Nanning", 15),
    City("桂林", "广西", "Guilin", 6),
    City("海口", "海南", "Haikou", 8),
    City("三亚", "海南", "Sanya", 5),
    # South-west and north-west
    City("昆明", "云南", "Kunming", 30),
    City("贵阳", "贵州", "Guiyang", 16),
    City("兰州", "甘肃", "Lanzhou", 10),
    City("西宁", "青海", "Xining", 5),
    City("银川", "宁夏", "Yinchuan", 5),
    City("乌鲁木齐", "新疆", "Urumqi", 10),
    City("拉萨", "西藏", "Lhasa", 3),
    City("台北", "台湾", "Taipei", 6),
)

# Extra spellings seen in real data that are neither "<name>市" nor the pinyin field.
_CITY_ALIASES: dict[str, tuple[str, ...]] = {
    "北京": ("Peking",),
    "广州": ("Canton",),
    "乌鲁木齐": ("Wulumuqi",),
    "呼和浩特": ("Huhehaote",),
    "拉萨": ("Lasa",),
    "哈尔滨": ("Ha'erbin",),
    "香港": ("香港特别行政区", "中国香港", "香港特別行政區", "Hongkong"),
    "澳门": ("澳门特别行政区", "中国澳门", "澳門", "Macao"),
    "台北": ("臺北", "Taibei"),
}

# Longest first so "自治州" wins over a shorter suffix.
_CITY_SUFFIXES = ("自治州", "地区", "市", "盟")
_PROVINCE_SUFFIXES = ("特别行政区", "自治区", "省", "市")
# English suffixes only help find a *known* place ("Shenzhen City"); never stripped otherwise.
_CITY_EN_SUFFIXES = ("city", "shi")
_PROVINCE_EN_SUFFIXES = ("province", "sheng", "municipality", "city")

_KEY_NOISE = re.compile(r"[\s'’`\-_.]+")


def _clean(text: str | None) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()


def _key(text: str) -> str:
    # Lookup key: case, spaces, hyphens and apostrophes don't matter ("Xi'an" == "XIAN").
    return _KEY_NOISE.sub("", text).casefold()


def _strip_suffix(text: str, suffixes: tuple[str, ...]) -> str:
    # Only strip when at least two characters remain, so 2-char names like "沙市" survive.
    for suffix in suffixes:
        if text.endswith(suffix) and len(text) - len(suffix) >= 2:
            return text[: -len(suffix)]
    return text


def _build_city_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for city in CITIES:
        for spelling in (city.name, f"{city.name}市", city.pinyin, *_CITY_ALIASES.get(city.name, ())):
            index[_key(spelling)] = city.name
    return index


def _build_province_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for province in PROVINCES:
        for spelling in (province.name, *province.full_names, *province.aliases):
            index[_key(spelling)] = province.name
    return index


_CITY_INDEX = _build_city_index()
_PROVINCE_INDEX = _build_province_index()
_CITY_PROVINCE = {city.name: city.province for city in CITIES}


def _lookup(cleaned: str, index: dict[str, str], en_suffixes: tuple[str, ...]) -> str | None:
    key = _key(cleaned)
    if key in index:
        return index[key]
    for suffix in en_suffixes:
        if key.endswith(suffix) and key[: -len(suffix)] in index:
            return index[key[: -len(suffix)]]
    return None


def canonical_city(text: str | None) -> str:
    """Canonical short Chinese city name: "上海市" / "Shanghai" / "SHANGHAI" -> "上海".

    Unknown cities are NFKC-normalised and stripped of one administrative suffix
    ("乌兰察布市" -> "乌兰察布", "锡林郭勒盟" -> "锡林郭勒"), never below two characters.
    """
    cleaned = _clean(text)
    if not cleaned:
        return ""
    known = _lookup(cleaned, _CITY_INDEX, _CITY_EN_SUFFIXES)
    if known:
        return known
    stripped = _strip_suffix(cleaned, _CITY_SUFFIXES)
    return _CITY_INDEX.get(_key(stripped), stripped)


def canonical_province(text: str | None) -> str:
    """Canonical short Chinese province name: "广东省" / "Guangdong" -> "广东",
    "内蒙古自治区" -> "内蒙古", "香港特别行政区" -> "香港".

    Unknown names lose one "特别行政区" / "自治区" / "省" / "市" suffix (two characters
    must remain); anything else is returned NFKC-normalised and stripped.
    """
    cleaned = _clean(text)
    if not cleaned:
        return ""
    known = _lookup(cleaned, _PROVINCE_INDEX, _PROVINCE_EN_SUFFIXES)
    if known:
        return known
    stripped = _strip_suffix(cleaned, _PROVINCE_SUFFIXES)
    return _PROVINCE_INDEX.get(_key(stripped), stripped)


def province_of_city(city: str | None) -> str:
    """Province short name of a known city ("深圳" -> "广东"); "" for unknown cities.

    Accepts any spelling canonical_city understands ("深圳市", "Shenzhen").
    """
    return _CITY_PROVINCE.get(canonical_city(city), "")
