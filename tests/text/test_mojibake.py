"""Mojibake: runs repaired where the bytes allow (shifted GBK, UTF-8 read as GBK), the rest marked unreadable, so
briefs and answers never quote it; ordinary text is never touched."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragreports.ingest.loaders import load_file
from ragreports.text.cleaning import clean
from ragreports.text.mojibake import common_hanzi, repair_mojibake, unreadable_spans

from conftest import SAMPLES


def shifted(text: str, lost: int) -> str:
    """``text`` as a lossy conversion leaves it: the lead byte of character ``lost`` gone (shown as "?"), every
    byte after it read one off until an ASCII-range trail byte puts the reading back in step."""
    data = text.encode("gbk")
    pos = len(text[:lost].encode("gbk"))
    return text[:lost] + "?" + data[pos + 1:].decode("gbk", errors="replace")


# (text with a lost byte, what repair gives back): the lost character itself cannot come back
CASES = [
    ("专家庫管理辦法（试行）", 2),  # 辦 = DE 6B: its trail byte is "k"
    ("重大行政決策程序實施辦法", 6),
    ("施行。《條例》共设十章", 3),  # 條 = 97 6C: trail byte "l"
]


@pytest.mark.parametrize("text, lost", CASES)
def test_shifted_gbk_is_repaired_up_to_the_lost_character(text, lost):
    broken = shifted(text, lost)
    assert broken != text and any(c.isascii() and c.isalpha() for c in broken)
    fixed = repair_mojibake(broken)
    assert fixed.replace("?", "") == text[:lost] + text[lost + 1:]


def test_utf8_read_as_gbk_is_repaired():
    broken = "科技局加强法治建设".encode().decode("gbk", errors="replace")  # 绉戞妧灞�鍔犲己娉曟不寤鸿
    fixed = repair_mojibake("一是" + broken + "。")
    assert fixed.startswith("一是科技\ufffd加强法治建") and fixed.endswith("。")  # 局 lost its last byte
    assert [fixed[s:e] for s, e in unreadable_spans(fixed)] == ["\ufffd", "\ufffd\ufffd"]  # 设 lost too


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(sorted(common_hanzi())[:800] + list("，。、；：（）《》0123456789年月日")),
               max_size=60))
def test_ordinary_text_is_left_alone(text):
    assert repair_mojibake(text) == text
    assert unreadable_spans(text) == ()


@given(st.text(max_size=80))
def test_repair_never_touches_digits_and_is_idempotent(text):
    fixed = repair_mojibake(text)
    assert [c for c in fixed if c.isdigit()] == [c for c in text if c.isdigit()]
    assert repair_mojibake(fixed) == fixed


def test_the_sample_reports_mojibake_is_repaired_or_marked():
    cz = clean(load_file(SAMPLES / "changzhou-kjj-2024.txt").text)
    assert "专家?guī)管理办法" in cz and "旃芾磙" not in cz  # repaired: 管理办 came back from the shifted bytes
    assert "程序?qū)施办法" in cz and cz.count("?!条例》") == 3
    marked = [cz[s:e] for s, e in unreadable_spans(cz)]
    assert marked == ["?guī)", "?qū)", "?!", "?!", "?!"]
    jh = clean(load_file(SAMPLES / "jianghai-kjj-2020.txt").text)
    assert [jh[s:e] for s, e in unreadable_spans(jh)] == ["??萍季?"]  # bytes lost on both sides: marked


def test_briefs_and_answers_do_not_quote_unreadable_text(samples, hash_settings):
    from ragreports.workspace import Workspace

    ws = Workspace(hash_settings)
    ws.ingest([samples])
    brief = ws.summarize("jianghai-kjj-2020")
    quoted = [ev.quote for _, it in brief.items() for ev in it.evidence] + [it.text for _, it in brief.items()]
    assert quoted and not any("萍季" in q or "??" in q for q in quoted)
    text = ws.get_document("jianghai-kjj-2020").text
    assert all(text[ev.start:ev.end] == ev.quote for _, it in brief.items() for ev in it.evidence)
    assert any("法治政府建设领导小组由局长任组长" in q for q in quoted)  # the readable rest of the sentence stays
    ans, _ = ws.ask("江海区科技局法治政府建设领导小组由谁任组长？")
    assert not ans.refused and all("萍季" not in c.quote for c in ans.citations)
