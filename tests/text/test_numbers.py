"""Number parsing: Arabic, Chinese, mixed numerals, scale words, units and approximation markers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragreports.text.numbers import iter_quantities, parse_chinese_numeral, parse_number, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5), ("13311", 13311), ("1,234", 1234), ("1,234.5", 1234.5), ("252.63", 252.63), ("１２", 12),
        ("十", 10), ("十二", 12), ("二十", 20), ("七十六", 76), ("一百零五", 105), ("两", 2), ("三千", 3000),
        ("两万三千", 23000), ("三亿五千万", 350000000), ("二〇二四", 2024), ("一万零五", 10005),
        ("1.5万", 15000), ("3千", 3000), ("9.98万", 99800), ("150.71亿", 15071000000), ("176.73亿", 17673000000),
        ("万", 10000), ("千", 1000),
    ],
)
def test_parse_number(text: str, value: float) -> None:
    got = parse_number(text)
    assert got is not None
    assert math.isclose(got, value, rel_tol=1e-12)


@pytest.mark.parametrize("text", ["", "abc", "5x", "十a", "1.5兆", "两两"])
def test_parse_number_rejects(text: str) -> None:
    assert parse_number(text) is None


def test_scaled_values_have_no_float_noise() -> None:
    # 150.71 * 1e8 is 15070999999.999998 in binary floating point
    assert parse_number("150.71亿") == 15071000000.0
    assert parse_number("0.07万") == 700.0


@pytest.mark.parametrize(
    ("text", "value", "unit", "approx"),
    [
        ("共组织集中学习5次", 5, "次", False),
        ("3000余份", 3000, "份", True),
        ("9.98万人次", 99800, "人次", False),
        ("150.71亿元", 15071000000, "元", False),
        ("1500万元", 15000000, "元", False),
        ("66%", 66, "%", False),
        ("1.92%", 1.92, "%", False),
        ("5‰", 5, "‰", False),
        ("近千份", 1000, "份", True),
        ("千余人", 1000, "人", True),
        ("30多人", 30, "人", True),
        ("约3.5亿元", 350000000, "元", True),
        ("突破2400户", 2400, "户", True),
        ("超过10万件", 100000, "件", True),
        ("逾200名", 200, "名", True),
        ("100人以上", 100, "人", True),
        ("50人左右", 50, "人", True),
        ("至少进行1次", 1, "次", True),
        ("140余场次", 140, "场次", True),
        ("7000余家次", 7000, "家次", True),
        ("1个工作日", 1, "工作日", False),
        ("3个月", 3, "月", False),
        ("8.6个百分点", 8.6, "百分点", False),
        ("七十六条", 76, "条", False),
        ("十章", 10, "章", False),
        ("三百余人次", 300, "人次", True),
        ("3000余万元", 30000000, "元", True),
        ("１２次", 12, "次", False),
        ("1,234名", 1234, "名", False),
        ("１，５６８件", 1568, "件", False),
        ("８．４％", 8.4, "%", False),
    ],
)
def test_parse_quantity(text: str, value: float, unit: str, approx: bool) -> None:
    q = parse_quantity(text)
    assert q is not None
    assert math.isclose(q.value, value, rel_tol=1e-9)
    assert q.unit == unit
    assert q.approx is approx


@pytest.mark.parametrize("text", ["百姓", "万人", "千方百计", "第", "人员", "2.0版本", "5G网络"])
def test_no_quantity(text: str) -> None:
    assert iter_quantities(text) == []


def test_scale_word_not_read_twice() -> None:
    qs = iter_quantities("发放宣传资料1.2万余份")
    assert [(q.value, q.unit, q.approx) for q in qs] == [(12000.0, "份", True)]


def test_two_quantities_in_a_row() -> None:
    qs = iter_quantities("共设十章七十六条")
    assert [(q.value, q.unit) for q in qs] == [(10.0, "章"), (76.0, "条")]


def test_spans_point_at_the_expression() -> None:
    text = "累计吸引9.98万人次在线观看"
    (q,) = iter_quantities(text)
    assert text[q.num_start:q.num_end] == "9.98"
    assert text[q.start:q.end] == "9.98万人次"


def test_approx_prefix_is_inside_the_span() -> None:
    text = "惠及企业近1000家"
    (q,) = iter_quantities(text)
    assert text[q.start:q.end] == "近1000家"
    assert q.approx


_CN = "零一二三四五六七八九"


def _to_chinese(n: int) -> str:
    """Reference writer of Chinese numerals below 1e8 (standard form, 一十 -> 十)."""
    if n == 0:
        return "零"

    def below_10k(x: int) -> str:
        out, zero = "", False
        for unit, div in (("千", 1000), ("百", 100), ("十", 10), ("", 1)):
            d = x // div % 10
            if d:
                if zero and out:
                    out += "零"
                out += _CN[d] + unit
                zero = False
            else:
                zero = True
        return out

    hi, lo = divmod(n, 10000)
    s = (below_10k(hi) + "万" if hi else "")
    if lo:
        if hi and lo < 1000:
            s += "零"
        s += below_10k(lo)
    if s.startswith("一十"):
        s = s[1:]
    return s


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=99_999_999))
def test_chinese_numerals_round_trip(n: int) -> None:
    assert parse_chinese_numeral(_to_chinese(n)) == n


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**9), st.sampled_from(["次", "项", "件", "人次", "元", "%", "家"]))
def test_arabic_quantity_with_thousands_separators(n: int, unit: str) -> None:
    q = parse_quantity(f"{n:,}{unit}")
    assert q is not None and q.value == n and q.unit == unit and not q.approx
