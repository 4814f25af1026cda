"""A series of one issuer's work reports: a year's result is in the next year's report, its target in its own."""

from __future__ import annotations

import pytest

from ragreports.config import Settings
from ragreports.workspace import Workspace


def _report(delivered: int, gdp: str, growth: str, target: str) -> str:
    return (f"{delivered}年南湖区政府工作报告\n——{delivered}年1月8日在嘉兴市南湖区人民代表大会第三次会议上\n各位代表：\n"
            "现在，我代表区人民政府，向大会报告政府工作，请予审议。\n"
            f"一、{delivered - 1}年工作回顾\n"
            f"过去一年，全区实现地区生产总值{gdp}亿元，增长{growth}%，社会消费品零售总额增长6%，"
            "一般公共预算收入稳步增长，新增就业岗位1.2万个。\n"
            f"二、{delivered}年工作安排\n"
            f"今年经济社会发展的主要预期目标是：地区生产总值增长{target}%左右，一般公共预算收入增长5%。\n"
            "我们将坚持稳中求进，推动高质量发展，持续改善民生。\n")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("series")
    (root / "r").mkdir()
    for delivered, gdp, growth, target in ((2023, "1100", "5.1", "6.5"), (2024, "1200", "6.3", "7"),
                                           (2025, "1300", "5.8", "5.5")):
        (root / "r" / f"nh-{delivered}.txt").write_text(_report(delivered, gdp, growth, target), encoding="utf-8")
    w = Workspace(Settings(home=root / "home", cache_dir=root / "cache", embedder="hash", llm="none"))
    report = w.ingest([root / "r"])
    assert not report.errors
    return w


def test_series_metadata(ws):
    metas = {d.doc_id: d.meta for d in ws.list()}
    assert {m.issuer for m in metas.values()} == {"嘉兴市南湖区人民政府"}
    assert {d: (m.year, m.published) for d, m in metas.items()} == {
        "nh-2023": (2022, "2023-01-08"), "nh-2024": (2023, "2024-01-08"), "nh-2025": (2024, "2025-01-08")}


@pytest.mark.parametrize("question, answer, doc", [
    ("2023年南湖区实现地区生产总值多少？", "1200亿元", "nh-2024"),  # the result: reviewed in the next report
    ("南湖区2024年地区生产总值增长的预期目标是多少？", "7%左右", "nh-2024"),  # the target: in the year's own report
    ("南湖区2023年地区生产总值增长的预期目标是多少？", "6.5%左右", "nh-2023"),
    ("2024年南湖区地区生产总值增长多少？", "5.8%", "nh-2025"),
])
def test_a_year_finds_its_passage_across_the_series(ws, question, answer, doc):
    ans, _ = ws.ask(question)
    assert not ans.refused and ans.answer.startswith(answer), ans.answer
    assert ans.citations[0].doc_id == doc


@pytest.mark.parametrize("question", [
    "2019年南湖区实现地区生产总值多少？",  # a year no report speaks about
    "2023年秀洲区实现地区生产总值多少？",  # another district of the same city
    "2023年南湖区港口集装箱吞吐量是多少？",  # something the reports never write about
])
def test_refuses_when_the_evidence_is_not_there(ws, question):
    ans, _ = ws.ask(question)
    assert ans.refused, ans.answer
