"""Tests of the CHUNK stage: heading detection, section paths, outline spans, packing invariants."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragreports.errors import ConfigError
from ragreports.ingest.chunking import chunk_document
from ragreports.text.cleaning import clean
from ragreports.text.outline import SEPARATOR, outline, parse_outline, sentence_spans
from ragreports.text.tokens import TokenCounter

REPORTS = Path(__file__).resolve().parents[2] / "eval" / "suites" / "dev" / "reports"
TIKTOKEN = TokenCounter("cl100k_base").count


def superadditive(s: str) -> int:
    """A counter for which joining two strings costs more than the parts: estimates run low, packing must check."""
    return len(s) + len(s) ** 2 // 300


def check_invariants(text: str, chunks, max_tokens: int, count) -> None:
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    covered = bytearray(len(text))
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert c.text and c.text == c.text.strip()
        assert c.tokens == count(c.text) <= max_tokens
        covered[c.start:c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, f"uncovered characters at {missing[:10]}"
    # no chunk crosses a top-level section, and its path starts with that section's title
    tops = [s for s in outline(text) if s.level <= 1]
    for c in chunks:
        top = [s for s in tops if s.start <= c.start < max(s.end, s.start + 1)]
        assert len(top) == 1, (c, tops)
        assert c.end <= top[0].end
        assert c.section.split(SEPARATOR)[0] == top[0].title


# ---------------------------------------------------------------------------------------------------------------
# heading detection

HEADINGS = [
    # line, label, title
    ("一、工作落实情况", "一、", "工作落实情况"),
    ("十一、其他需要报告的情况", "十一、", "其他需要报告的情况"),
    ("三、2025年推进依法行政主要安排", "三、", "2025年推进依法行政主要安排"),
    ("一,、推进法治政府建设工作", "一、", "推进法治政府建设工作"),
    ("（一）加强组织领导，认真践行法制建设责任", "（一）", "加强组织领导，认真践行法制建设责任"),
    ("(一)加强组织保障。一是履行推进法治建设第一责任人职责。", "(一)", "加强组织保障"),
    ("　　(二)完善依法行政制度体系一是加强规范性文件的审核", "(二)", "完善依法行政制度体系"),
    ("1.学习践行习近平法治思想。把深入学习贯彻习近平法治思想作为根本遵循。", "1.", "学习践行习近平法治思想"),
    ("1．加强法治学习培训。坚持专题学习与定期学习相结合", "1．", "加强法治学习培训"),
    ("2、完善内部监督机制", "2、", "完善内部监督机制"),
    ("12. 规范执法行为；全面落实三项制度", "12.", "规范执法行为"),
    ("（1）健全机制；明确分工。", "（1）", "健全机制"),
    ("(2)强化考核", "(2)", "强化考核"),
    ("第三条 本办法自发布之日起施行。", "第三条", "本办法自发布之日起施行"),
    ("第二章　总则", "第二章", "总则"),
    ("第一部分 年度工作情况", "第一部分", "年度工作情况"),
    ("## 一、总体情况", "##", "一、总体情况"),
    ("# 年度报告 #", "#", "年度报告"),
    ("\xa0\xa0\xa0\xa0(一)科学编制规划。立足实际", "(一)", "科学编制规划"),
    ("四、存在的问题：一是学习不够深入", "四、", "存在的问题"),
]

NOT_HEADINGS = [
    "一是落实法治政府建设第一责任人制度。",
    "二是落实领导干部学法制度。",
    "2024年，市科技局深入学习贯彻习近平法治思想。",
    "2024以来,市科技局深入学习贯彻习近平法治思想",
    "1.5亿元用于支持企业研发。",
    "12.5%的企业完成了备案。",
    "123.全市共有企业",
    "3、4月份开展专项检查。",
    "十四五期间，全市科技投入持续增长。",
    "（此件主动公开）",
    "(2021-2025年)法治政府建设实施纲要",
    "第一，加强学习。",
    "第二次会议审议通过。",
    "#标签不是标题",
    "2020年1229",
    "我局开展了1.专项整治和2.集中检查。",
    "市科技局 一、二季度完成检查",
]


@pytest.mark.parametrize(("line", "label", "title"), HEADINGS)
def test_heading_detected(line: str, label: str, title: str) -> None:
    [h] = parse_outline(line)
    assert (h.label, h.title, h.level) == (label, title, 1)
    assert line[h.start:h.end].endswith(title)
    assert not line[:h.start].strip()


@pytest.mark.parametrize("line", NOT_HEADINGS)
def test_not_a_heading(line: str) -> None:
    assert parse_outline(line) == []
    assert parse_outline("一、前文\n" + line + "\n") == parse_outline("一、前文\n")


def test_levels_follow_marker_rank_and_tolerate_skipped_levels() -> None:
    text = "标题\n一、甲\n1.乙\n（1）丙\n（一）丁\n(1)戊\n二、己\n## 附件\n三、庚\n第五条 辛\n"
    got = [(h.label, h.level) for h in parse_outline(text)]
    assert got == [("一、", 1), ("1.", 2), ("（1）", 3), ("（一）", 2), ("(1)", 3), ("二、", 1),
                   ("##", 1), ("三、", 2), ("第五条", 2)]


# ---------------------------------------------------------------------------------------------------------------
# sections and outline

SAMPLE = """市科技局2024年法治政府建设年度报告

2024年，我局认真贯彻落实习近平法治思想。现将有关情况报告如下：

一、工作落实情况

（一）加强党对法治政府建设的领导，提高依法行政能力，确保各项工作落到实处

1.学习践行习近平法治思想。把深入学习贯彻习近平法治思想作为根本遵循。全年集中学法9次。

2.推动法治建设责任全面落实。成立依法治理工作领导小组。

（二）健全行政权力运行体系

一是优化机构职能。二是提升政务服务水平，全年办件1.5万件。

二、存在的不足

一是学法用法不够深入；二是执法力量不足。

三、2025年工作打算

加强执法队伍建设，提升依法行政水平。
"""


def test_section_paths_on_realistic_sample() -> None:
    chunks = chunk_document("d", SAMPLE, max_tokens=300, count_tokens=len)
    long_title = "（一）加强党对法治政府建设的领导，提高依法行政能力，确保各项工作落"
    assert [c.section for c in chunks] == [
        "",
        f"一、工作落实情况 › {long_title}… › 1.学习践行习近平法治思想",
        f"一、工作落实情况 › {long_title}… › 2.推动法治建设责任全面落实",
        "一、工作落实情况 › （二）健全行政权力运行体系",
        "二、存在的不足",
        "三、2025年工作打算",
    ]
    # a heading with no body of its own travels with the first subsection
    assert chunks[1].text.startswith("一、工作落实情况\n\n（一）加强党对法治政府建设的领导")
    assert chunks[1].text.endswith("全年集中学法9次。")
    assert chunks[0].text.startswith("市科技局2024年") and chunks[0].text.endswith("报告如下：")
    check_invariants(SAMPLE, chunks, 300, len)


def test_outline_maps_a_heading_to_the_text_under_it() -> None:
    secs = {s.title: s for s in outline(SAMPLE)}
    problems = secs["二、存在的不足"]
    body = SAMPLE[problems.body_start:problems.end]
    assert body.strip() == "一是学法用法不够深入；二是执法力量不足。"
    first = secs["一、工作落实情况"]
    assert SAMPLE[first.start:first.end].endswith("全年办件1.5万件。")  # subsections included
    assert "二、存在的不足" not in SAMPLE[first.start:first.end]
    assert secs[""].path == "" and SAMPLE[secs[""].start:secs[""].end].startswith("市科技局2024年")
    sub = secs["（二）健全行政权力运行体系"]
    assert sub.level == 2 and sub.path == "一、工作落实情况 › （二）健全行政权力运行体系"


def test_sentence_spans_cut_after_terminators_and_newlines() -> None:
    text = "  甲乙。丙丁！“戊己？”庚；\n\n辛壬  \n癸"
    spans = sentence_spans(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == ["甲乙。", "丙丁！", "“戊己？”", "庚；", "辛壬", "癸"]
    assert sentence_spans(text, 2, 5) == [(2, 5)]


# ---------------------------------------------------------------------------------------------------------------
# packing


def test_overlap_repeats_the_last_sentence_within_a_section() -> None:
    text = "一、甲\n" + "".join(f"第{i}句话写满十个字。" for i in range(10))
    chunks = chunk_document("d", text, max_tokens=35, overlap_sentences=1, count_tokens=len)
    for a, b in zip(chunks[1:], chunks[2:], strict=False):
        last = sentence_spans(text, a.start, a.end)[-1]
        assert b.start == last[0]  # the next chunk starts with the previous chunk's last sentence
    plain = chunk_document("d", text, max_tokens=35, overlap_sentences=0, count_tokens=len)
    assert all(a.end <= b.start for a, b in zip(plain, plain[1:], strict=False))
    assert len(plain) < len(chunks)
    check_invariants(text, chunks, 35, len)


def test_overlap_never_crosses_sections() -> None:
    text = "一、甲\n乙丙丁。戊己庚。\n二、辛\n壬癸子。丑寅卯。"
    chunks = chunk_document("d", text, max_tokens=12, overlap_sentences=2, count_tokens=len)
    second = [c for c in chunks if c.section == "二、辛"]
    assert second[0].text.startswith("二、辛")


def test_long_sentence_is_cut_at_commas_then_characters() -> None:
    commas = "，".join(["甲乙丙丁戊己庚辛"] * 40) + "。"
    chunks = chunk_document("d", commas, max_tokens=30, count_tokens=len)
    assert all(c.text.endswith(("，", "。")) for c in chunks)
    check_invariants(commas, chunks, 30, len)
    run = "中" * 45 + "12345678" + "文" * 100
    chunks = chunk_document("d", run, max_tokens=50, count_tokens=len)
    assert chunks[0].text == "中" * 45  # the cut moves back rather than split a number
    check_invariants(run, chunks, 50, len)


def test_estimates_that_run_low_are_corrected() -> None:
    text = "\n".join("一句较长的话，" * 3 + "结束。" for _ in range(60))
    chunks = chunk_document("d", text, max_tokens=60, count_tokens=superadditive)
    check_invariants(text, chunks, 60, superadditive)


@pytest.mark.parametrize("text", ["", "   \n\n\u3000 ", "\xa0"])
def test_blank_text_gives_no_chunks(text: str) -> None:
    assert chunk_document("d", text, count_tokens=len) == []


def test_bad_budget_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_tokens"):
        chunk_document("d", "甲乙丙。", max_tokens=0, count_tokens=len)
    with pytest.raises(ConfigError, match="overlap_sentences"):
        chunk_document("d", "甲乙丙。", overlap_sentences=-1, count_tokens=len)
    with pytest.raises(ConfigError, match="too small"):
        chunk_document("d", "甲乙丙丁戊。", max_tokens=3, count_tokens=lambda s: 5 * len(s))


def test_default_counter_is_tiktoken() -> None:
    chunks = chunk_document("d", SAMPLE, max_tokens=40)
    assert chunks and all(c.tokens == TIKTOKEN(c.text) <= 40 for c in chunks)


# ---------------------------------------------------------------------------------------------------------------
# property tests

CJK = "法治政府建设年度报告依法行政执法监督学习宣传制度体系科技创新服务企业"
sentence = st.builds(
    lambda body, end: body + end,
    st.text(alphabet=CJK + "，、0123456789《》“”", min_size=1, max_size=40),
    st.sampled_from(["。", "！", "？", "；", "", "。”", ";", "…"]),
)
heading = st.builds(
    lambda marker, title, rest: marker + title + rest,
    st.sampled_from(["一、", "二、", "十一、", "（一）", "(二)", "1.", "2．", "3、", "（1）", "(2)", "第三条 ",
                     "第一章 ", "# ", "### ", "一是", "2024年", "1.5亿", "　　（三）"]),
    st.text(alphabet=CJK, min_size=0, max_size=25),
    st.sampled_from(["", "。", "。正文内容继续。", "：说明"]),
)
long_run = st.builds(lambda c, n: c * n, st.sampled_from(["中", "7", "ab ", "，", "法治、"]), st.integers(50, 400))
piece = st.one_of(sentence, sentence, heading, long_run, st.sampled_from(["\n", "\n\n", "  ", "\u3000", "\xa0", "\t"]))
texts = st.lists(piece, max_size=60).map("".join)
joiner = st.sampled_from(["", "\n"])
structured = st.lists(st.tuples(piece, joiner), max_size=60).map(lambda xs: "".join(p + j for p, j in xs))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(texts, structured), st.integers(8, 120), st.integers(0, 3),
       st.sampled_from([len, superadditive]))
def test_properties_with_char_counters(text: str, max_tokens: int, overlap: int, count) -> None:
    chunks = chunk_document("doc", text, max_tokens=max_tokens, overlap_sentences=overlap, count_tokens=count)
    check_invariants(text, chunks, max_tokens, count)
    assert chunk_document("doc", text, max_tokens=max_tokens, overlap_sentences=overlap,
                          count_tokens=count) == chunks
    assert all(c.doc_id == "doc" and c.chunk_id == f"doc:{c.index}" for c in chunks)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structured, st.integers(16, 200), st.integers(0, 2))
def test_properties_with_tiktoken(text: str, max_tokens: int, overlap: int) -> None:
    chunks = chunk_document("doc", text, max_tokens=max_tokens, overlap_sentences=overlap, count_tokens=TIKTOKEN)
    check_invariants(text, chunks, max_tokens, TIKTOKEN)


# ---------------------------------------------------------------------------------------------------------------
# the sample reports

CN_ORDER = "一二三四五六七八九十"


def _report(name: str) -> str:
    return clean((REPORTS / name).read_text(encoding="utf-8", errors="replace"))


@pytest.mark.parametrize("name", sorted(p.name for p in REPORTS.glob("*.txt")))
def test_sample_reports_chunk_along_their_outline(name: str) -> None:
    text = _report(name)
    chunks = chunk_document(name, text, max_tokens=300)
    check_invariants(text, chunks, 300, TIKTOKEN)
    tops = [s.title for s in outline(text) if s.level == 1]
    assert len(tops) >= 2
    assert [t[0] for t in tops] == list(CN_ORDER[:len(tops)]) and all(t[1] == "、" for t in tops)
    sections = {c.section for c in chunks}
    assert any(SEPARATOR in s for s in sections)  # subsections are recognised, not just top headings


def test_kunming_sections() -> None:
    text = _report("kunming-kjj-2024.txt")
    paths = [c.section for c in chunk_document("k", text)]
    assert any(p.startswith("一、工作落实情况 › (一)加强党对法治政府建设的领导") for p in paths)
    assert "一、工作落实情况 › (一)加强党对法治政府建设的领导,提高依法行政能力 › 1.学习践行习近平法治思想" in paths
    assert any(p.startswith("二、2025年工作打算 › (一)") for p in paths)


def test_fifteen_thousand_characters_chunk_fast() -> None:
    text = "\n\n".join(_report(p.name) for p in sorted(REPORTS.glob("*.txt")))
    text = (text * 2)[:15000]
    chunk_document("warm", text[:500])  # the tokenizer loads once
    t0 = time.perf_counter()
    chunks = chunk_document("big", text)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5, f"{elapsed:.3f} s"
    check_invariants(text, chunks, 300, TIKTOKEN)
