"""Time-resolved passages: the years a passage speaks about, and results versus plans."""

from __future__ import annotations

import pytest

from ragreports.extract.periods import Frame, annotate_chunks, heading_kind, period_headings, plan_stretches, years_in
from ragreports.ingest.chunking import chunk_document
from ragreports.types import Meta

WORK = Frame(about=2023, present=2024)  # a work report delivered in 2024
ANNUAL = Frame(about=2024, present=2024)  # an annual report about 2024


@pytest.mark.parametrize("text, frame, years", [
    ("今年全区经济社会发展的主要预期目标", WORK, [2024]),
    ("去年实现地区生产总值", WORK, [2023]),
    ("一年来，我们坚持", WORK, [2023]),  # the year reported on
    ("过去五年", WORK, [2019, 2020, 2021, 2022, 2023]),
    ("“十四五”时期", WORK, []),  # inside a name: no period
    ("十四五时期", WORK, [2021, 2022, 2023, 2024, 2025]),
    ("明年", ANNUAL, [2025]),
    ("《法治政府建设实施纲要(2021-2025年)》", ANNUAL, []),  # a title's years are not the passage's
    ("2021—2025年规划期内", ANNUAL, []),  # the ends of a span are no year
    ("比2019年增长6%", ANNUAL, [2019]),
])
def test_years_in(text, frame, years):
    assert years_in(text, frame) == years


@pytest.mark.parametrize("line, kind", [
    ("一、2023年工作回顾", "result"),
    ("二、2024年工作安排", "plan"),
    ("三、下一步工作打算", "plan"),
    ("一、重点工作完成情况", "result"),  # results, though 重点工作 names plans elsewhere
    ("二、存在的不足", ""),
    ("我们要加快发展，推动经济运行持续向好。", ""),  # a sentence is no heading
])
def test_heading_kind(line, kind):
    assert heading_kind(line, WORK) == kind


def test_a_marked_heading_without_cue_words_is_read_by_its_year():
    assert heading_kind("二、高质量做好2024年各项工作，以优异成绩迎接建党百年", WORK, marked=True) == "plan"
    assert heading_kind("二、“十四五”发展的基本思路", Frame(2020, 2021), marked=True) == "plan"


WORK_REPORT = """各位代表：
一、2023年工作回顾
2023年，地区生产总值增长6.3%，比2019年增长20%。
二、2024年工作安排
今年主要预期目标：地区生产总值增长6.5%。
"""


def test_chunks_of_a_work_report_know_their_years_and_kind():
    meta = Meta(year=2023, genre="work_report")
    chunks = annotate_chunks(chunk_document("d", WORK_REPORT, max_tokens=40, overlap_sentences=0), WORK_REPORT, meta)
    by_text = {c.text.split("\n")[-1][:8]: c for c in chunks}
    review = next(c for c in chunks if "6.3%" in c.text)
    plan = next(c for c in chunks if "6.5%" in c.text)
    assert (review.years, review.kind, review.mentions) == ((2023,), "result", (2019,))
    assert (plan.years, plan.kind) == ((2024,), "plan")
    assert by_text  # every chunk annotated
    assert plan_stretches(WORK_REPORT, Frame.of(meta)) == [(WORK_REPORT.index("二、"), len(WORK_REPORT))]


def test_an_annual_report_plans_the_year_after_it():
    text = "一、2024年主要举措和成效\n开展培训3次。\n二、下一步工作打算\n继续开展培训。\n"
    heads = period_headings(text, ANNUAL)
    assert [(p.years, p.kind) for _, p in heads] == [((2024,), "result"), ((2025,), "plan")]
