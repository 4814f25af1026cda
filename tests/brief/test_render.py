"""Rendering of briefs (ragreports.brief.render): Markdown order, standalone HTML with linked evidence, compare tables."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragreports.brief.engines import summarize
from ragreports.brief.model import Brief, BriefItem, EvidenceModel, FactModel, GeneratedBy, MetaModel
from ragreports.brief.render import compare_rows, render_compare, render_html, render_json, render_markdown
from ragreports.types import Document, Meta

TEXT = "一、主要举措\n局党组书记带头学法<&>4次。组织培训3期，发放资料500份。\n二、存在的不足\n学习不够深入。\n三、下一步\n加强培训。"


def ev(text: str, quote: str) -> EvidenceModel:
    start = text.index(quote)
    return EvidenceModel(quote=quote, start=start, end=start + len(quote))


def make_brief(text: str = TEXT, **fields) -> Brief:
    meta = MetaModel(issuer="某市科学技术局", region="某市", year=2023, published=None, title="年度报告")
    return Brief(doc_id="d1", source="d1.txt", meta=meta, generated_by=GeneratedBy(model="extractive", prompt="x@1"),
                 **fields)


def sample_brief() -> Brief:
    return make_brief(
        measures=[BriefItem(topic="普法宣传", text="组织培训", evidence=[ev(TEXT, "组织培训3期")]),
                  BriefItem(topic="组织领导", text="书记学法", evidence=[ev(TEXT, "局党组书记带头学法<&>4次")])],
        leadership=[BriefItem(text="书记带头学法", evidence=[ev(TEXT, "局党组书记带头学法<&>4次")])],
        shortcomings=[BriefItem(text="学习不够深入", evidence=[ev(TEXT, "学习不够深入")])],
        next_year=[BriefItem(text="加强培训", evidence=[ev(TEXT, "加强培训")])],
        key_figures=[FactModel(label="发放资料数", value=500.0, unit="份", approx=False, quote="发放资料500份",
                               start=TEXT.index("发放资料500份"), end=TEXT.index("发放资料500份") + 8)],
    )


# ---------------------------------------------------------------------------------------------- markdown / json


def test_markdown_follows_template_order_and_quotes_every_item():
    md = render_markdown(sample_brief())
    heads = ["## 基本信息", "## 主要举措与成效", "### 组织领导", "### 普法宣传", "## 主要负责人履职", "## 存在的不足",
             "## 下一年度工作安排", "## 主要数据", "## 其他"]
    positions = [md.index(h) for h in heads]
    assert positions == sorted(positions)
    for item_text, quote in [("组织培训", "组织培训3期"), ("学习不够深入", "学习不够深入"), ("加强培训", "加强培训")]:
        i = md.index(f"- {item_text}")
        assert f"「{quote}」" in md[i:i + 200]
    assert "| 发放资料数 | 500 | 份 |" in md
    assert md.split("## 其他")[1].strip().startswith("（报告未载明）")  # empty field said so, not omitted
    assert "- 发布日期：（报告未载明）" in md and "- 发布机关：某市科学技术局" in md


def test_render_json_is_the_cli_shape():
    out = render_json(sample_brief())
    assert json.loads(json.dumps(out, ensure_ascii=False)) == out
    assert out["measures"][0] == {"topic": "普法宣传", "text": "组织培训",
                                  "evidence": [{"quote": "组织培训3期", "start": TEXT.index("组织培训3期"),
                                                "end": TEXT.index("组织培训3期") + 6}]}
    assert out["other"] == [] and out["generated_by"]["prompt"] == "x@1"


# ---------------------------------------------------------------------------------------------- html


class _Collector(HTMLParser):
    """Checks nesting and collects ids, hrefs, and the text inside each mark class."""

    VOID = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, list[str]]] = []
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.marked: dict[str, str] = {}
        self.tags: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "id" in a:
            assert a["id"] not in self.ids, f"duplicate id {a['id']}"
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        for key in ("src", "href"):
            if key in a and not a[key].startswith("#"):
                self.external.append(a[key])
        if tag not in self.VOID:
            self.stack.append((tag, (a.get("class") or "").split() if tag == "mark" else []))

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        in_script = any(t in ("script", "style") for t, _ in self.stack)
        for _, classes in self.stack:
            for c in classes:
                if not in_script:
                    self.marked[c] = self.marked.get(c, "") + data


def parse(html_text: str) -> _Collector:
    p = _Collector()
    p.feed(html_text)
    p.close()
    assert not p.stack, f"unclosed tags {p.stack}"
    return p


def check_html(brief: Brief, text: str) -> _Collector:
    page = render_html(brief, text)
    p = parse(page)
    assert page.startswith("<!DOCTYPE html>") and p.external == []
    assert {"style", "script", "mark"} <= p.tags
    quotes = {}
    for _, it in brief.items():
        for e in it.evidence:
            quotes[(e.start, e.end)] = e.quote
    evidence_links = [h for h in p.hrefs if h.startswith("#ev-")]
    assert len(evidence_links) == sum(len(it.evidence) for _, it in brief.items())
    for href in evidence_links:
        assert href[1:] in p.ids, f"dangling link {href}"
    for n, (span, quote) in enumerate(quotes.items(), start=1):
        assert p.marked[f"ev-{n}"] == quote == text[span[0]:span[1]]
    return p


def test_html_links_every_item_to_its_highlighted_evidence():
    p = check_html(sample_brief(), TEXT)
    assert "<&>" in "".join(p.marked.values())  # escaped in the page, the same text once parsed


def test_html_overlapping_and_nested_evidence_stays_well_formed():
    text = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    spans = [(0, 10), (5, 15), (5, 10), (0, 10), (12, 20), (19, 26), (3, 4)]
    items = [BriefItem(topic="其他", text=f"item {i}", evidence=[EvidenceModel(quote=text[a:b], start=a, end=b)])
             for i, (a, b) in enumerate(spans)]
    items.append(BriefItem(topic="其他", text="two quotes", evidence=[
        EvidenceModel(quote=text[1:8], start=1, end=8), EvidenceModel(quote=text[7:13], start=7, end=13)]))
    check_html(make_brief(text, measures=items), text)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 12)), min_size=1, max_size=8))
def test_html_any_overlap_property(raw_spans):
    text = "<法治&政府>建设“年度”报告'示例'" * 2
    items = []
    for a, n in raw_spans:
        b = min(a + n, len(text))
        items.append(BriefItem(topic="其他", text="x", evidence=[EvidenceModel(quote=text[a:b], start=a, end=b)]))
    check_html(make_brief(text, measures=items), text)


def test_html_of_a_real_brief():
    text = ("一、主要举措和成效\n（一）加强组织领导。一是履行第一责任人职责。局党组书记主持召开专题会议4次。\n"
            "（二）推进普法宣传。开展普法宣传活动12场次，发放宣传资料5000余份。\n二、存在的不足\n学法用法不够深入。\n"
            "三、2024年工作安排\n持续开展普法进企业活动。")
    brief = summarize(Document("r", "r.txt", text, text, "0", Meta()))
    assert brief.measures and brief.shortcomings and brief.next_year and brief.leadership
    check_html(brief, text)


# ---------------------------------------------------------------------------------------------- compare


def fig(label: str, value: float, unit: str) -> FactModel:
    return FactModel(label=label, value=value, unit=unit, approx=False, quote=f"{label}{value}{unit}", start=0, end=1)


def briefs_for_compare() -> list[Brief]:
    def b(doc_id, year, figs):
        return Brief(doc_id=doc_id, source=f"{doc_id}.txt",
                     meta=MetaModel(issuer=f"{doc_id}局", region="某市", year=year, published=None, title=None),
                     generated_by=GeneratedBy(model="extractive", prompt="x@1"), key_figures=figs)

    return [
        b("a", 2022, [fig("组织集中学习次数", 5, "次"), fig("行政处罚案件数", 3, "件"), fig("只在一份报告里", 1, "项"),
                      fig("主办件件数", 4, "件")]),
        b("b", 2023, [fig("全年开展法治学习次数", 7, "次"), fig("发放宣传资料", 3000, "份"), fig("主办件件数", 6, "件")]),
        b("c", 2024, [fig("领导班子集体学习法律法规次数", 9, "次"), fig("办理行政处罚案件", 0, "件"),
                      fig("发放宣传资料", 200, "份"), fig("集中学法次数", 99, "次")]),
    ]


def test_compare_rows_put_recurring_figures_side_by_side():
    rows = compare_rows(briefs_for_compare())
    assert [r["doc_id"] for r in rows] == ["a", "b", "c"]
    assert list(rows[0])[:5] == ["doc_id", "issuer", "region", "year", "published"]
    # differently worded labels of one measure share a column (cue file figure_concepts); first statement wins
    assert [r["集中学法（次）"] for r in rows] == [5, 7, 9]
    assert [r["行政处罚（件）"] for r in rows] == [3, None, 0]
    assert [r["主办件件数（件）"] for r in rows] == [4, 6, None]  # no concept: grouped by its own label
    assert not any("只在一份报告里" in c for c in rows[0])  # not recurring: no column
    assert list(rows[0])[5] == "集中学法（次）"  # the most common measure comes first
    assert len(compare_rows(briefs_for_compare(), max_columns=1)[0]) == 6


@pytest.mark.parametrize("fmt", ["csv", "md"])
def test_render_compare_formats(fmt):
    rows = compare_rows(briefs_for_compare())
    out = render_compare(rows, fmt)
    if fmt == "csv":
        parsed = list(csv.DictReader(io.StringIO(out)))
        assert [p["doc_id"] for p in parsed] == ["a", "b", "c"]
        assert [p["集中学法（次）"] for p in parsed] == ["5", "7", "9"] and parsed[1]["published"] == ""
    else:
        lines = out.strip().splitlines()
        assert len(lines) == 5 and lines[1].startswith("| ---")
        assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_render_compare_rejects_unknown_format():
    from ragreports.errors import ConfigError

    with pytest.raises(ConfigError, match="csv or md"):
        render_compare([], "xlsx")
