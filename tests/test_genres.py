"""A genre and a format the samples do not have: a statistical bulletin saved as an HTML page, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragreports.config import Settings
from ragreports.workspace import Workspace

PAGE = Path(__file__).parent / "fixtures" / "statistics-bulletin.html"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("bulletin")
    w = Workspace(Settings(home=root / "home", cache_dir=root / "cache", embedder="hash", llm="none"))
    assert not w.ingest([PAGE]).errors
    return w


def test_metadata_and_facts_of_a_saved_page(ws):
    doc, facts = ws.extract("statistics-bulletin")
    m = doc.meta
    assert (m.issuer, m.region, m.year, m.published, m.genre) == ("湖州市统计局", "湖州市", 2023, "2024-03-15",
                                                                  "statistics")
    assert "浏览次数" not in doc.text and "ICP" not in doc.text  # page chrome is gone
    got = {(f.value, f.unit) for f in facts}
    assert {(401500000000.0, "元"), (950000000.0, "斤"), (650000.0, "头")} <= got


@pytest.mark.parametrize("question, answer", [
    ("2023年湖州市地区生产总值是多少？", "4015亿元"),
    ("2023年湖州市粮食总产量是多少？", "9.5亿斤"),
    ("2023年湖州市生猪出栏多少头？", "65万头"),
    ("2023年湖州市港口吞吐量是多少？", None),  # not stated
    ("2023年嘉兴市地区生产总值是多少？", None),  # another city
    ("2019年湖州市地区生产总值是多少？", None),  # another year
])
def test_answers_and_refusals(ws, question, answer):
    ans, _ = ws.ask(question)
    if answer is None:
        assert ans.refused, ans.answer
    else:
        assert not ans.refused and ans.answer.startswith(answer), ans.answer
