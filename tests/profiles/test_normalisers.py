"""Normalisers turn real-world input variants into one canonical value, or a coded error."""
import datetime
import pickle

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from profiles import geo
from profiles.normalisers import (
    NormalisationError,
    normalise_city,
    normalise_date,
    normalise_email,
    normalise_gender,
    normalise_identity,
    normalise_name,
    normalise_phone,
    normalise_province,
)

D = datetime.date

BLANKS = [None, "", "   ", "\u3000", "\ufeff"]  # \u3000: ideographic space; \ufeff: CSV BOM


def assert_invalid(func, value, code, *args):
    with pytest.raises(NormalisationError) as excinfo:
        func(*args, value)
    assert excinfo.value.code == code
    return excinfo.value


# --- phone -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, expected",
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        (" 13800138000\n", "+8613800138000"),
        ("+86 13800138000", "+8613800138000"),
        ("+86-138-0013-8000", "+8613800138000"),
        ("0086-13800138000", "+8613800138000"),
        ("86 138 0013 8000", "+8613800138000"),  # country code without the +
        ("8613800138000", "+8613800138000"),
        ("(+86)138-0013-8000", "+8613800138000"),
        ("（＋８６）１３８００１３８０００", "+8613800138000"),  # full-width, as typed with an IME
        ("\ufeff13800138000", "+8613800138000"),  # BOM on the first cell of an Excel CSV
        (13800138000, "+8613800138000"),  # XLSX numeric cell
        (13800138000.0, "+8613800138000"),
        ("19912345678", "+8619912345678"),
        ("021-68888888", "+862168888888"),  # Shanghai landline
        ("010 8888 8888", "+861088888888"),
        ("+86 (0)21 6888 8888", "+862168888888"),
        ("+44 20 7946 0958", "+442079460958"),  # stays British
        ("0044 20 7946 0958", "+442079460958"),
        ("+1 (650) 253-0000", "+16502530000"),
    ],
)
def test_phone_variants_normalise_to_e164(raw, expected):
    assert normalise_phone(raw, region="CN") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "12345",  # too short
        "1380013800",  # 10 digits
        "138001380000",  # 12 digits
        "abc",
        "138abc00138000",  # letters inside
        "13800138000 转 123",  # extensions are not supported
        "021-68888888 ext. 12",
        "13800138000#123",
        "95588",  # bank service number: not a subscriber number
        "+86",
        "+999 12345678",  # no such country code
    ],
)
def test_invalid_phone_raises(raw):
    assert_invalid(normalise_phone, raw, "invalid_phone")


@pytest.mark.parametrize("raw", BLANKS)
def test_blank_phone_is_empty(raw):
    assert normalise_phone(raw, region="CN") == ""


def test_phone_region_defaults_to_setting(settings):
    settings.CDP_DEFAULT_PHONE_REGION = "GB"
    assert normalise_phone("020 7946 0958") == "+442079460958"
    settings.CDP_DEFAULT_PHONE_REGION = "CN"
    assert normalise_phone("138 0013 8000") == "+8613800138000"


def test_explicit_region_overrides_setting():
    assert normalise_phone("020 7946 0958", region="gb") == "+442079460958"
    assert normalise_phone("86 138 0013 8000", region="US") == "+8613800138000"


# --- email -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, expected",
    [
        ("zhang.wei@example.com", "zhang.wei@example.com"),
        ("Zhang.Wei@Example.COM ", "zhang.wei@example.com"),
        ("  LI_NA+news@QQ.com\t", "li_na+news@qq.com"),
        ("zhang.wei＠example.com", "zhang.wei@example.com"),  # full-width @
        ("ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ", "zhang@example.com"),
        ("zhang@example。com", "zhang@example.com"),  # ideographic full stop from an IME
        ("zhang@example.com.", "zhang@example.com"),
        ("<zhang@example.com>", "zhang@example.com"),
        ("mailto:zhang@example.com", "zhang@example.com"),
        ("MAILTO:Zhang@Example.com", "zhang@example.com"),
        ("<mailto:zhang@example.com>", "zhang@example.com"),
        ("Wang@例子.中国", "wang@例子.中国"),  # internationalised domain
    ],
)
def test_email_variants(raw, expected):
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["zhang.wei", "zhang@", "@example.com", "zhang wei@example.com", "zhang@@example.com",
     "zhang@example", "zhang@exa mple.com", "Zhang Wei <zhang@example.com>", "13800138000",
     "王伟@例子.中国"],  # Django's validator: ASCII local parts only
)
def test_invalid_email_raises(raw):
    assert_invalid(normalise_email, raw, "invalid_email")


@pytest.mark.parametrize("raw", [*BLANKS, "<>", "mailto:"])
def test_blank_email_is_empty(raw):
    assert normalise_email(raw) == ""


# --- gender ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, expected",
    [
        *[(raw, "male") for raw in ["男", "男性", "先生", "M", "m", "male", "Male", "MALE", "man",
                                     "boy", "1", 1, 1.0, " 男 ", "Ｍ", "Mr."]],
        *[(raw, "female") for raw in ["女", "女性", "女士", "小姐", "F", "f", "female", "Female",
                                       "woman", "girl", "2", 2, "Ms"]],
        *[(raw, "unknown") for raw in ["未知", "保密", "不详", "其他", "unknown", "UNKNOWN", "U",
                                        "0", "9", 0, 9, "other", "未说明的性别"]],
    ],
)
def test_gender_variants(raw, expected):
    assert normalise_gender(raw) == expected


@pytest.mark.parametrize("raw", ["3", 3, "x", "男女", "Mann", "femme", "true", "-1"])
def test_invalid_gender_raises(raw):
    assert_invalid(normalise_gender, raw, "invalid_gender")


@pytest.mark.parametrize("raw", BLANKS)
def test_blank_gender_is_empty(raw):
    assert normalise_gender(raw) == ""


# --- date ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1995-03-02", D(1995, 3, 2)),
        ("1995/3/2", D(1995, 3, 2)),
        ("1995/03/02", D(1995, 3, 2)),
        ("1995.3.2", D(1995, 3, 2)),
        ("1995-3-2", D(1995, 3, 2)),
        ("19950302", D(1995, 3, 2)),
        ("1995年3月2日", D(1995, 3, 2)),
        ("1995年03月02日", D(1995, 3, 2)),
        ("１９９５年３月２日", D(1995, 3, 2)),  # full-width digits
        (" 1995-03-02 ", D(1995, 3, 2)),
        ("1995-03-02 00:00:00", D(1995, 3, 2)),
        ("1995-03-02T10:00:00", D(1995, 3, 2)),
        ("1995-03-02T23:30:00+08:00", D(1995, 3, 2)),  # date as written; offset ignored
        ("2000-02-29", D(2000, 2, 29)),
        ("34760", D(1995, 3, 2)),  # Excel serial exported as text
        (34760, D(1995, 3, 2)),  # Excel serial
        (34760.75, D(1995, 3, 2)),  # serial with a time of day
        (1, D(1900, 1, 1)),
        (59, D(1900, 2, 28)),
        (61, D(1900, 3, 1)),  # first serial after Excel's fake leap day
        (D(1995, 3, 2), D(1995, 3, 2)),
        (datetime.datetime(1995, 3, 2, 23, 59), D(1995, 3, 2)),
        ("1900-01-01", D(1900, 1, 1)),
        ("2100-12-31", D(2100, 12, 31)),
    ],
)
def test_date_variants(raw, expected):
    result = normalise_date(raw)
    assert result == expected
    assert type(result) is datetime.date


@pytest.mark.parametrize(
    "raw",
    [
        "1995-02-30",  # not a calendar date
        "19951302",
        "1995年2月30日",
        "1900-02-29",  # 1900 was not a leap year
        60,  # Excel's fake 1900-02-29
        "02/03/1995",  # ambiguous: 2 March or 3 February?
        "3/2/1995",
        "95-03-02",  # two-digit year
        "1995-03/02",  # mixed separators
        "March 2, 1995",
        "1995",
        "yesterday",
        "1899-12-31",  # before 1900
        "2101-01-01",  # after 2100
        D(1850, 1, 1),
        0,
        -5,
        3_000_000,  # beyond Excel's 9999-12-31
        float("nan"),
        True,
    ],
)
def test_invalid_date_raises(raw):
    assert_invalid(normalise_date, raw, "invalid_date")


@pytest.mark.parametrize("raw", BLANKS)
def test_blank_date_is_none(raw):
    assert normalise_date(raw) is None


def test_ambiguous_date_message_lists_accepted_formats():
    error = assert_invalid(normalise_date, "02/03/1995", "invalid_date")
    with translation.override("en"):
        message = str(error)
    assert "02/03/1995" in message and "1995-03-02" in message and "1995年3月2日" in message


# --- identity --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kind, raw, expected",
    [
        ("phone", "+86 138 0013 8000", "+8613800138000"),
        ("phone", 13800138000, "+8613800138000"),
        ("email", " Zhang.Wei@Example.COM", "zhang.wei@example.com"),
        ("device_id", " 6D92078A-8246-4BA4-AE5B-76104861E7DC ", "6d92078a-8246-4ba4-ae5b-76104861e7dc"),
        ("device_id", "ＡＢＣ１２３", "abc123"),
        ("crm_id", " CRM-000123 ", "CRM-000123"),
        ("crm_id", 123456, "123456"),  # XLSX numeric cell
        ("crm_id", 123456.0, "123456"),
        ("wechat_openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),  # case kept
        ("wechat_openid", "\ufeffoUpF8uMuAJO_M2pxb1Q9zNjWeS6o\u200b", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("wechat_unionid", "o6_bmasdasdsad6_2sgVt7hMZOPfL", "o6_bmasdasdsad6_2sgVt7hMZOPfL"),
        ("tmall_member", "Ｔｍａｌｌ ４２", "Tmall 42"),  # custom partner kind: NFKC, case kept
        ("crm_id", "x" * 255, "x" * 255),
    ],
)
def test_identity_per_kind(kind, raw, expected):
    assert normalise_identity(kind, raw) == expected


@pytest.mark.parametrize(
    "kind, raw, code",
    [
        ("phone", "12345", "invalid_phone"),
        ("email", "not-an-email", "invalid_email"),
        ("crm_id", "x" * 256, "invalid_identity"),
        ("device_id", "a" * 300, "invalid_identity"),
        ("wechat_openid", "oUpF8u\x00MuAJO", "invalid_identity"),
        ("wechat_openid", "oUpF8u\nMuAJO", "invalid_identity"),
        ("crm_id", "CRM\u200b123", "invalid_identity"),  # zero-width space inside
        ("crm_id", "CRM\u202e123", "invalid_identity"),  # right-to-left override
    ],
)
def test_invalid_identity_raises(kind, raw, code):
    assert_invalid(normalise_identity, raw, code, kind)


@pytest.mark.parametrize("kind", ["phone", "email", "device_id", "crm_id", "wechat_openid"])
@pytest.mark.parametrize("raw", BLANKS)
def test_blank_identity_is_empty(kind, raw):
    assert normalise_identity(kind, raw) == ""


# --- names and places ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, expected",
    [
        ("张伟", "张伟"),
        (" 张伟 ", "张伟"),
        ("欧阳娜娜", "欧阳娜娜"),
        ("买买提·艾力", "买买提·艾力"),
        ("  Zhang   Wei ", "Zhang Wei"),
        ("Zhang\tWei\n", "Zhang Wei"),
        ("Ｚｈａｎｇ\u3000Ｗｅｉ", "Zhang Wei"),
        (None, ""),
        ("   ", ""),
    ],
)
def test_name_variants(raw, expected):
    assert normalise_name(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("上海", "上海"),
        ("上海市", "上海"),
        ("Shanghai", "上海"),
        ("SHANGHAI", "上海"),
        (" shang hai ", "上海"),
        ("深圳市", "深圳"),
        ("Shenzhen City", "深圳"),
        ("Xi'an", "西安"),
        ("XIAN", "西安"),
        ("香港特别行政区", "香港"),
        ("乌兰察布市", "乌兰察布"),  # unknown city: suffix stripped
        ("锡林郭勒盟", "锡林郭勒"),
        ("海西地区", "海西"),
        ("沙市", "沙市"),  # two characters stay
        ("Kashgar", "Kashgar"),
        (None, ""),
        ("  ", ""),
    ],
)
def test_city_variants(raw, expected):
    assert normalise_city(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("广东", "广东"),
        ("广东省", "广东"),
        ("Guangdong", "广东"),
        ("guangdong province", "广东"),
        ("上海市", "上海"),
        ("内蒙古自治区", "内蒙古"),
        ("Inner Mongolia", "内蒙古"),
        ("广西壮族自治区", "广西"),
        ("宁夏回族自治区", "宁夏"),
        ("新疆维吾尔自治区", "新疆"),
        ("西藏自治区", "西藏"),
        ("Tibet", "西藏"),
        ("香港特别行政区", "香港"),
        ("Hong Kong", "香港"),
        ("澳門", "澳门"),
        ("Shaanxi", "陕西"),  # not to be confused with 山西
        ("Shanxi", "山西"),
        ("某某省", "某某"),  # unknown: suffix stripped
        ("California", "California"),
        (None, ""),
    ],
)
def test_province_variants(raw, expected):
    assert normalise_province(raw) == expected


def test_geo_reference_data_is_consistent():
    assert len(geo.PROVINCES) == 34
    provinces = {province.name for province in geo.PROVINCES}
    assert {"北京", "上海", "广东", "内蒙古", "广西", "新疆", "西藏", "宁夏", "香港", "澳门", "台湾"} <= provinces
    assert 50 <= len(geo.CITIES) <= 70
    assert len({city.name for city in geo.CITIES}) == len(geo.CITIES)
    assert all(city.province in provinces and city.weight > 0 for city in geo.CITIES)
    # Every city's own spellings round-trip to it.
    for city in geo.CITIES:
        assert geo.canonical_city(city.pinyin) == city.name
        assert geo.canonical_city(f"{city.name}市") == city.name


@pytest.mark.parametrize(
    "city, province",
    [("上海", "上海"), ("深圳", "广东"), ("深圳市", "广东"), ("Hangzhou", "浙江"),
     ("乌鲁木齐", "新疆"), ("乌兰察布", ""), ("", "")],
)
def test_province_of_city(city, province):
    assert geo.province_of_city(city) == province


# --- the error itself ------------------------------------------------------------------------

def test_error_carries_code_value_and_translated_message():
    error = assert_invalid(normalise_phone, "12345", "invalid_phone")
    assert error.value == "12345"
    assert isinstance(error, ValueError)
    with translation.override("en"):
        assert str(error) == (
            "“12345” is not a valid phone number. Use a mainland mobile like 13800138000 "
            "or an international number starting with +."
        )


def test_error_converts_to_validation_error_and_pickles():
    error = assert_invalid(normalise_email, "nope", "invalid_email")
    validation_error = error.as_validation_error()
    assert isinstance(validation_error, ValidationError)
    assert validation_error.code == "invalid_email"
    with translation.override("en"):
        assert validation_error.messages == [str(error)]
        copy = pickle.loads(pickle.dumps(error))  # Celery ships errors between processes
        assert (copy.code, copy.value, str(copy)) == ("invalid_email", "nope", str(error))


def test_error_message_truncates_long_values():
    error = assert_invalid(normalise_identity, "x" * 1000, "invalid_identity", "crm_id")
    assert error.value == "x" * 1000
    assert len(error.params["value"]) == 58
