"""Cleaning: table-driven cases from the real quirks of the dev reports, the dev reports themselves, the
chrome pattern data file, and hypothesis properties (numbers and dates survive; cleaning is idempotent)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragreports.text.cleaning import chrome_rules, clean
from ragreports.text.grounding import QuoteLocator
from ragreports.text.normalize import pinyin_spans, strip_pinyin, to_simplified

DEV = Path(__file__).resolve().parents[2] / "eval" / "suites" / "dev"
REPORTS = sorted((DEV / "reports").glob("*.txt"))

# --- table-driven: short snippets copied from the dev reports (input, exact expected output) -------------

REAL_SNIPPETS = [
    pytest.param("2024以來,市科技局深入學(xué)習(xí)貫徹習(xí)近平法治思想",
                 "2024以来,市科技局深入学习贯彻习近平法治思想", id="changzhou-ruby-traditional"),
    pytest.param("認(rèn)真落實(shí)我市《法治政府建設(shè)實(shí)施綱要(2021-2025年)》",
                 "认真落实我市《法治政府建设实施纲要(2021-2025年)》", id="changzhou-ruby-keeps-year-range"),
    pytest.param("通過黨組理論學(xué)習(xí)中心組(擴(kuò)大)學(xué)習(xí)會",
                 "通过党组理论学习中心组(扩大)学习会", id="changzhou-ruby-inside-real-parentheses"),
    pytest.param("(此件主動公開)\n掃一掃在手機(jī)打開當(dāng)前頁 \n|",
                 "(此件主动公开)", id="changzhou-footer-qr-and-lone-bar"),
    pytest.param("根據(jù)有關(guān)要求,,現(xiàn)將科技局法治政府建設(shè)工作情況匯報(bào)如下:",
                 "根据有关要求,现将科技局法治政府建设工作情况汇报如下:", id="jianghai-doubled-comma"),
    pytest.param("一,、推進(jìn)法治政府建設(shè)工作", "一、推进法治政府建设工作", id="jianghai-comma-before-dunhao"),
    pytest.param("確保我局法治政府建設(shè)工作有組織,、有步驟地推進(jìn),。科技局",
                 "确保我局法治政府建设工作有组织、有步骤地推进。科技局", id="jianghai-comma-before-period"),
    pytest.param("第一責(zé)任人制度,??萍季?/span>法治政府建設(shè)領(lǐng)導(dǎo)小組",
                 "第一责任人制度,??萍季?法治政府建设领导小组", id="jianghai-span-remnant-mojibake-kept"),
    pytest.param("文章來源:本網(wǎng) 更新時間:2021-02-26 16:14 瀏覽數(shù):-",
                 "文章来源:本网 更新时间:2021-02-26 16:14", id="jianghai-metadata-counter"),
    pytest.param("當(dāng)前位置:首頁\n> 計(jì)劃公報(bào) > 年度總結(jié)\n標(biāo)題",
                 "标题", id="breadcrumb-wrapped-traditional"),
    pytest.param("当前位置:首页\n> 计划公报 > 年度总结\n舟山市科学技术局2020年法治舟山(法治政府)工作总结",
                 "舟山市科学技术局2020年法治舟山(法治政府)工作总结", id="zhoushan-breadcrumb"),
    pytest.param("发布日期:2021-01-25\xa0\xa0\xa0\xa0浏览次数:\xa0\xa0\xa0\xa0信息来源:市科学技术局 \xa0\xa0\xa0\xa0作者:字号:[ ]",
                 "发布日期:2021-01-25 信息来源:市科学技术局", id="zhoushan-metadata-line"),
    pytest.param("\xa0\xa0\xa0 2020年,在市委、市政府的正确领导下,\n\n\xa0\n\n一、法治政府建设(依法行政)工作情况",
                 "2020年,在市委、市政府的正确领导下,\n\n一、法治政府建设(依法行政)工作情况", id="zhoushan-nbsp-blank-lines"),
    pytest.param("舟山市科学技术局\n\n2020年1229\n\n\xa0\n\n\n\n打印本页 关闭窗口\n\nProduced By 大汉网络 大汉版通发布系统",
                 "舟山市科学技术局\n\n2020年1229", id="zhoushan-footer"),
    pytest.param("首页 > 通知公告 > 通知公告详情\n\n市科技局关于2024年法治政府建设工作情况的报告\n\n发布日期:2025-03-06",
                 "市科技局关于2024年法治政府建设工作情况的报告\n\n发布日期:2025-03-06", id="kunming-breadcrumb"),
    pytest.param("发布日期:2021-01-25????浏览次数:????信息来源:市科学技术局 ????作者:字号:[ ]",
                 "发布日期:2021-01-25 信息来源:市科学技术局", id="zhoushan-metadata-after-lossy-gbk"),
    pytest.param("舟山市科学技术局\n\n2020年1229\n\n?\n\n?\n\n打印本页 关闭窗口", "舟山市科学技术局\n\n2020年1229",
                 id="zhoushan-nbsp-lines-after-lossy-gbk"),
    pytest.param("\n2018年度市科技局依法行政报告\n\n市人民政府：\n", "2018年度市科技局依法行政报告\n\n市人民政府：",
                 id="jiangyin-fullwidth-untouched"),
]


@pytest.mark.parametrize(("raw", "expected"), REAL_SNIPPETS)
def test_real_snippets(raw: str, expected: str) -> None:
    assert clean(raw) == expected


# --- table-driven: generic chrome of government sites, and prose that must survive ------------------------

CHROME = [
    pytest.param("发布时间：2020-03-01 | 来源：市科技局 | 浏览次数：1,024 | 【字体：大 中 小】 【打印】 【关闭】",
                 "发布时间：2020-03-01 | 来源：市科技局", id="metadata-bar-with-widgets"),
    pytest.param("您现在的位置：首页 > 政务公开 > 法治政府建设\n正文", "正文", id="breadcrumb-your-position"),
    pytest.param("政务公开 > 法治政府建设 > 年度报告\n正文", "正文", id="breadcrumb-without-home"),
    pytest.param("正文\n分享到：微信 微博 QQ空间", "正文", id="share-bar"),
    pytest.param("正文\n微信\n微博", "正文", id="lone-share-widgets"),
    pytest.param("正文\n版权所有：某某市科学技术局 浙ICP备12345678号 网站标识码3309000012", "正文", id="licence-footer"),
    pytest.param("正文\n主办单位：某某市人民政府办公室  承办单位：某某市大数据中心", "正文", id="site-owner-footer"),
    pytest.param("正文\nCopyright © 2020 All Rights Reserved", "正文", id="copyright"),
    pytest.param("正文\n上一篇：关于2019年度工作的报告\n下一篇：无", "正文", id="prev-next-links"),
    pytest.param("正文\n【我要纠错】【打印本页】【关闭窗口】", "正文", id="bracketed-widgets"),
    pytest.param("正文\n技术支持：某某网络科技有限公司", "正文", id="vendor-credit"),
    pytest.param("正文\n建议使用IE8以上浏览器，1280*800分辨率浏览本站", "正文", id="browser-advice"),
    pytest.param("标题\n阅读次数：356  字号：大 中 小\n正文", "标题\n正文", id="counter-and-font-size-line"),
    pytest.param("正文\n扫描二维码在手机上浏览", "正文", id="qr-code-variant"),
    pytest.param("正文\n网站地图 | 联系我们", "正文", id="footer-links"),
    pytest.param("正文\n- 3 -\n续文\n— 12 —\n第2页 共10页", "正文\n续文", id="pdf-page-numbers"),
    pytest.param("发布时间：2020-03-01浏览次数：88来源：本站", "发布时间：2020-03-01 来源：本站", id="glued-counter"),
    pytest.param("<p>正文</p><script>var x=1;</script><div>第二段</div>", "正文\n\n第二段", id="html-tags"),
    pytest.param("科技局/span>法治政府</p>建设<br/>领导<o:p></o:p>小组", "科技局法治政府\n建设\n领导小组", id="tag-remnants"),
    pytest.param("&lt;p&gt;正文&amp;附件&nbsp;&#12288;结束", "正文&附件 结束", id="entities"),
    pytest.param("第一行\r\n第二行\r第三行", "第一行\n第二行\n第三行", id="line-endings"),
    pytest.param("全面\u3000\u3000推进\t\t依法行政", "全面 推进 依法行政", id="space-runs"),
]

KEPT = [
    pytest.param("人工智能(AI)与(ai)应用", id="latin-parentheses-without-ruby-context"),
    pytest.param("统筹推进(2021-2025年)规划(此件主动公开)", id="real-parentheses"),
    pytest.param("这是问题吗?我们认为是。", id="genuine-question-mark"),
    pytest.param("真的吗??", id="genuine-double-question-mark"),
    pytest.param("中华老字号企业3家", id="lao-zihao-is-not-a-font-control"),
    pytest.param("严格落实三级审核：\n初审、复审", id="prose-ending-with-label-word"),
    pytest.param("申请→受理→审核→办结", id="process-arrows"),
    pytest.param("省级以上创新平台已达96家", id="plain-fact"),
    pytest.param("合同成交额176.73亿元,投入强度为1.92%", id="decimals-percent"),
    pytest.param("...", id="ascii-ellipsis"),
    pytest.param("网站访问量：累计达到120万人次", id="prose-with-counter-word"),
    pytest.param("技术支持：市科技局提供", id="prose-technical-support"),
    pytest.param("第3页的表格列出了5项指标", id="prose-page-reference"),
    pytest.param("来源:市科技局", id="source-metadata"),
    pytest.param("| 指标 | 数值 |\n| 学习 | 5次 |", id="markdown-table"),
    pytest.param("> 引用一段话", id="markdown-quote"),
]


@pytest.mark.parametrize(("raw", "expected"), CHROME)
def test_generic_chrome(raw: str, expected: str) -> None:
    assert clean(raw) == expected


@pytest.mark.parametrize("text", KEPT)
def test_prose_survives(text: str) -> None:
    assert clean(text) == text


def test_ruby_is_ruby_when_the_text_carries_tone_marks() -> None:
    # Toneless syllables count as ruby when the same text has tone-marked ruby (the annotation is systematic).
    assert clean("學(xué)習(xí)的(de)精神") == "学习的精神"
    # ... or when they are chained to another annotation.
    assert clean("學(xue)習(xi)") == "学习"


# --- the chrome data file --------------------------------------------------------------------------------


def test_chrome_patterns_file_is_documented_data() -> None:
    raw = yaml.safe_load(resources.files("ragreports").joinpath("data/chrome_patterns.yaml").read_text("utf-8"))
    assert set(raw) == {"fragments", "lines"}
    for section in ("fragments", "lines"):
        assert raw[section], section
        for item in raw[section]:
            assert set(item) <= {"pattern", "note", "continued_by"}, item
            assert item["note"].strip(), item
            re.compile(item["pattern"])
    assert chrome_rules() is chrome_rules()  # loaded once
    assert len(chrome_rules().lines) == len(raw["lines"])


ADVERSARIAL_PIECES = ["首页 > ", "> 计划 ", "政务公开 > ", "微信 ", "微信扫一扫", "打印 | ", "【打印】 ", "字号:[ ] ",
                      "浏览次数: ", "- ", "第 ", "作者: ", "版权所有 ", "当前位置:", "首页 政务 ", "? ", "【 "]


@pytest.mark.parametrize("piece", ADVERSARIAL_PIECES)
def test_chrome_patterns_terminate_on_near_misses(piece: str) -> None:
    """No catastrophic backtracking: a long line of near-chrome that fails at its very end terminates.

    This is a termination guard, not a speed target (those live in bench/): the work takes about a millisecond,
    and only an exponential blow-up would reach the alarm, which turns a hang into a clear failure."""
    import signal

    def hung(signum, frame):
        raise AssertionError(f"a chrome pattern backtracks catastrophically on {piece!r} * 200")

    rules = chrome_rules()
    line = re.sub(" +", " ", piece * 200 + "x。").strip()
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        for rule in rules.lines:
            rule.pattern.fullmatch(line)
        for fragment in rules.fragments:
            fragment.sub(" ", line)
        assert isinstance(clean(line), str)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_no_pattern_names_a_dev_report() -> None:
    text = resources.files("ragreports").joinpath("data/chrome_patterns.yaml").read_text("utf-8")
    for place in ("舟山", "昆明", "常州", "江海", "江门", "江阴"):
        assert place not in text


# --- the five dev reports -------------------------------------------------------------------------------

CHROME_STRINGS = ["当前位置", "首页 >", "打印本页", "关闭窗口", "Produced By", "大汉版通", "扫一扫在手机打开当前页",
                  "字号", "浏览次数", "浏览数", "作者:", "/span>", "</", "&nbsp;"]
TRADITIONAL_ONLY = "學習貫徹區據關國實發檢觀輪條"


@cache
def _raw(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@cache
def _cleaned(path: Path) -> str:
    return clean(_raw(path))


def _digit_runs(text: str) -> list[str]:
    return re.findall(r"\d+", text)


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


@pytest.mark.parametrize("path", REPORTS, ids=[p.stem for p in REPORTS])
def test_dev_report_is_clean(path: Path) -> None:
    text = _cleaned(path)
    assert pinyin_spans(text) == []
    assert not re.search(r"[<>]", text), "tag remnants or breadcrumb separators left"
    for s in CHROME_STRINGS:
        assert s not in text, s
    assert not [c for c in TRADITIONAL_ONLY if c in text]
    assert to_simplified(text) == text
    assert not re.search(r"[,，]{2}|[,，][、。]|。。", text)
    assert "\n\n\n" not in text and "  " not in text and "\u3000" not in text and "\xa0" not in text
    assert all(line == line.strip() for line in text.split("\n"))
    assert clean(text) == text


@pytest.mark.parametrize("path", REPORTS, ids=[p.stem for p in REPORTS])
def test_dev_report_keeps_numbers_dates_and_metadata(path: Path) -> None:
    raw, text = _raw(path), _cleaned(path)
    assert _is_subsequence(_digit_runs(text), _digit_runs(raw))
    # The chrome of these five reports holds no numbers, so here nothing numeric may go at all.
    assert _digit_runs(text) == _digit_runs(raw)
    for date in re.findall(r"\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2})?|\d{4}年\d{1,2}月\d{1,2}日", raw):
        assert date in text
    for label in ("发布日期", "更新时间", "信息来源", "文章来源"):
        for m in re.finditer(label + r"[:：]\s*([^\s\xa0]+)", to_simplified(strip_pinyin(raw))):
            value = m.group(1)
            if not value.startswith(("浏览", "字号", "作者")):
                assert f"{label}:{value}" in text or f"{label}：{value}" in text, (label, value)


@pytest.mark.parametrize("path", REPORTS, ids=[p.stem for p in REPORTS])
def test_lossy_gbk_copy_cleans_like_the_original(path: Path) -> None:
    """A copy that went through a lossy GBK conversion (NBSP -> "?") cleans to the same text."""
    raw = _raw(path)
    lossy = raw.encode("gbk", errors="replace").decode("gbk")
    assert clean(lossy) == _cleaned(path)


def _gold_quotes() -> list[tuple[str, str, str]]:
    out = []
    for gold in sorted((DEV / "gold").glob("*.yaml")):
        data = yaml.safe_load(gold.read_text(encoding="utf-8"))
        quotes = [("fact", f["quote"]) for f in data.get("facts") or []]
        quotes += [("question", q["quote"]) for q in data.get("questions") or [] if q["quote"] is not None]
        quotes += [(f"section:{k}", q) for k, v in (data.get("sections") or {}).items() for q in v]
        out += [(data["report"], kind, q) for kind, q in quotes]
    return out


def test_every_gold_quote_is_locatable_after_cleaning() -> None:
    quotes = _gold_quotes()
    assert len(quotes) > 200
    missing = []
    for name in sorted({r for r, _, _ in quotes}):
        locator = QuoteLocator(_cleaned(DEV / "reports" / name))
        for _, kind, quote in (q for q in quotes if q[0] == name):
            ev = locator.locate(quote, fuzzy=False)  # exact or normalised: no fuzzy slack
            if ev is None or locator.text[ev.start:ev.end] != ev.quote:
                missing.append((name, kind, quote))
    assert missing == []


# --- properties ------------------------------------------------------------------------------------------

_CHROME_CHARS = set(resources.files("ragreports").joinpath("data/chrome_patterns.yaml").read_text("utf-8"))
# Body characters: hanzi of the dev reports that appear in no chrome pattern, so random prose can never spell
# chrome by accident.
_BODY_HANZI = sorted({c for p in REPORTS for c in to_simplified(_raw(p)) if "\u4e00" <= c <= "\u9fff"}
                     - _CHROME_CHARS)
# Real ruby pairs (Traditional character, pinyin) from the report that carries them.
_RUBY_PAIR = re.compile(r"([\u4e00-\u9fff])[(]([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+)[)]")
_RUBY = sorted({m.groups() for m in _RUBY_PAIR.finditer(_raw(DEV / "reports" / "changzhou-kjj-2024.txt"))
                if not set(to_simplified(m.group(1))) & _CHROME_CHARS})
_NUMBERS = st.one_of(
    st.integers(0, 10**9).map(str),
    st.tuples(st.integers(0, 9999), st.integers(0, 99)).map(lambda t: f"{t[0]}.{t[1]:02d}"),
    st.integers(0, 100).map(lambda n: f"{n}%"),
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: f"{d.year}年{d.month}月{d.day}日"),
    st.integers(0, 9999).map(lambda n: str(n).translate(str.maketrans("0123456789", "０１２３４５６７８９"))),
    st.integers(1000, 99999).map(lambda n: f"{n:,}"),
    st.just("(2021-2025年)"),
)
_PUNCT = st.sampled_from(["，", "。", "、", "；", "：", ",", ",,", ",、", "。。", "“", "”", "《", "》", "（", "）", " ",
                          "\u3000", "\xa0"])
# (raw, rendered): what the token is in the input, and what it reads as once cleaned (for counting digits).
_TOKEN = st.one_of(
    st.text(alphabet=_BODY_HANZI, min_size=1, max_size=6).map(lambda s: (s, s)),
    _NUMBERS.map(lambda s: (s, s)),
    _PUNCT.map(lambda s: (s, s)),
    st.sampled_from(_RUBY).map(lambda r: (f"{r[0]}({r[1]})", r[0])),
    st.sampled_from([("<span>", ""), ("</span>", ""), ("<b>", ""), ('<font color="red">', ""), ("<br>", "\n"),
                     ("<p>", "\n"), ("&nbsp;", " "), ("&amp;", "&")]),
)
# Counters end in an optional value, so prose right after them must not start with a digit; other widgets may
# touch anything (their removal leaves a space, so "12打印本页34" reads as two numbers, as on the page).
_COUNTERS = ["浏览次数：123", "浏览数:-", "阅读次数：4,567", "点击数：[89]"]
_WIDGETS = ["扫一扫在手机打开当前页", "【打印】", "字号:[ ]", "打印本页", "关闭窗口", "【字体：大 中 小】"]
_INLINE_CHROME = _COUNTERS + _WIDGETS
_CHROME_LINES = ["当前位置:首页 > 计划公报 > 年度总结", "首页 > 通知公告 > 通知公告详情", "打印本页 关闭窗口",
                 "Produced By 大汉网络 大汉版通发布系统", "扫一扫在手机打开当前页", "|", "浙ICP备12345678号",
                 "版权所有 © 2020 某某市科学技术局", "网站标识码3309000012", "上一篇：2019年工作报告", "浏览次数：88",
                 "分享到：微信 微博", "主办单位：某某市人民政府 电话：0571-12345678", "微信", "- 3 -", "第2页 共10页"]


@st.composite
def _segment(draw, hanzi_first: bool = True) -> tuple[str, str]:
    """A run of prose tokens; ``hanzi_first`` when a counter precedes it (so it cannot swallow its digits)."""
    first = draw(st.sampled_from(_BODY_HANZI)) if hanzi_first else ""
    tokens = draw(st.lists(_TOKEN, min_size=0 if hanzi_first else 1, max_size=12))
    return first + "".join(t[0] for t in tokens), first + "".join(t[1] for t in tokens)


@st.composite
def _line(draw) -> tuple[str, str]:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(_CHROME_LINES)), ""
    raw, rendered = draw(_segment())
    for _ in range(draw(st.integers(0, 2))):
        chrome = draw(st.sampled_from(_INLINE_CHROME))
        pad = " " if chrome in _COUNTERS else draw(st.sampled_from(["", " "]))  # a counter ends at a space
        seg_raw, seg_rendered = draw(_segment(hanzi_first=chrome in _COUNTERS))
        raw += f"{pad}{chrome}{pad}{seg_raw}"
        rendered += f" {seg_rendered}"
    return raw, rendered


@st.composite
def _document(draw) -> tuple[str, str]:
    lines = draw(st.lists(_line(), min_size=1, max_size=8))
    sep = draw(st.sampled_from(["\n", "\r\n", "\n\n"]))
    return sep.join(r for r, _ in lines), "\n".join(r for _, r in lines)


FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(_document())
def test_numbers_and_dates_survive_in_order(doc: tuple[str, str]) -> None:
    raw, rendered = doc
    out = clean(raw)
    assert _digit_runs(out) == _digit_runs(rendered)
    for date in re.findall(r"\d{4}-\d{2}-\d{2}|\d{4}年\d{1,2}月\d{1,2}日", rendered):
        assert date in out


@FAST
@given(_document())
def test_clean_is_idempotent_on_report_like_text(doc: tuple[str, str]) -> None:
    once = clean(doc[0])
    assert clean(once) == once


_WILD = st.text(
    alphabet=st.sampled_from(list("法治政府學習關區据2024年-.%,，、。;；:：?？()（）<>/&#;|｜【】[]»› \n\t\r\u3000\xa0"
                                  "abpnxuéǎàspanbr=\"'!—…")),
    max_size=80,
)
_WILD_PIECES = st.lists(st.one_of(_WILD, st.sampled_from(_INLINE_CHROME + _CHROME_LINES),
                                  st.sampled_from(["<span>", "</span>", "&amp;", "&lt;", "&gt;", "&nbsp;", "&#49;",
                                                   "學(xué)", "(de)", "\n", "> "])), max_size=12).map("".join)


@FAST
@given(_WILD_PIECES)
def test_clean_is_idempotent_on_arbitrary_text(text: str) -> None:
    once = clean(text)
    assert clean(once) == once


@FAST
@given(_WILD_PIECES)
def test_output_whitespace_is_normalised(text: str) -> None:
    out = clean(text)
    assert "\r" not in out and "\t" not in out and "\u3000" not in out and "\xa0" not in out
    assert "  " not in out and "\n\n\n" not in out
    assert out == out.strip()
    assert all(line == line.strip() for line in out.split("\n"))
