"""Refusal on evidence: a report that never writes what a question asks about cannot answer it."""

from __future__ import annotations

import pytest

from ragreports.answer.common import missing_keywords
from ragreports.retrieve.query import understand

REPORT = "2023年，全区地区生产总值增长6.3%，新增就业岗位1.2万个，接待区外游客超2000万人次，新建变电站2座。"


@pytest.mark.parametrize("question, missing", [
    ("2023年全区地区生产总值增长多少？", []),
    ("2023年全区海洋生产总值是多少？", ["海洋"]),  # a word the report never writes
    ("2023年全区接待入境游客多少万人次？", ["入境"]),
    ("2023年全区新建了多少座跨海大桥？", ["跨海大桥"]),
    ("2023年全区新增就业岗位达到多少个？", []),  # 达到 frames the question, it is no content
])
def test_missing_keywords(question, missing):
    assert missing_keywords(understand(question, []), REPORT) == missing
