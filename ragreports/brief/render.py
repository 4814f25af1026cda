"""Rendering of standard briefs: Markdown, one standalone HTML file, JSON, and a side-by-side comparison.

* :func:`render_markdown` — the brief in the fixed template order, each item followed by its quotes.
* :func:`render_html` — one self-contained page (inline CSS/JS): the brief on top, the full report text below
  with every evidence highlighted (``<mark id="ev-N">``); each item links to its evidence (``href="#ev-N"``).
  Overlapping evidence spans are cut into elementary segments so the markup stays well nested.
* :func:`render_json` — the ``summarize --json`` object of spec/cli-json.md.
* :func:`compare_rows` / :func:`render_compare` — one row per report, recurring key figures as columns.

Every rendering passes through :func:`ragreports.redaction.redact` (an exit of the process): a secret that reached a
brief — say a key a model server echoed into the warning of a fallback — never reaches the file or the screen.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from ragreports.brief.cues import load_cues
from ragreports.brief.model import Brief, BriefItem
from ragreports.errors import ConfigError
from ragreports.redaction import redact, redact_obj
from ragreports.text.normalize import match_key

SECTION_TITLES = {
    "measures": "主要举措与成效",
    "leadership": "主要负责人履职",
    "shortcomings": "存在的不足",
    "next_year": "下一年度工作安排",
    "other": "其他",
}
META_LABELS = (("issuer", "发布机关"), ("region", "地区"), ("year", "年度"), ("published", "发布日期"),
               ("title", "标题"))
NOT_STATED = "（报告未载明）"
FIXED_COLUMNS = ("doc_id", "issuer", "region", "year", "published")


def render_json(brief: Brief) -> dict[str, Any]:
    """The ``summarize --json`` object (spec/cli-json.md); extra keys: dropped_items, warnings, engine."""
    return redact_obj(brief.model_dump(mode="json"))


def _fmt_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _grouped(items: Sequence[BriefItem]) -> list[tuple[str, list[BriefItem]]]:
    """Items grouped by topic, topics in the fixed order of the cue file (so briefs line up), 其他 and unknown
    topics last; items keep their order inside a topic."""
    order = {t: i for i, t in enumerate(load_cues().topics)}
    groups: dict[str, list[BriefItem]] = {}
    for it in items:
        groups.setdefault(it.topic or "其他", []).append(it)
    return sorted(groups.items(), key=lambda kv: order.get(kv[0], len(order)))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(brief: Brief) -> str:
    """The brief as Markdown, in the template order: 基本信息, 主要举措与成效 (by topic), 主要负责人履职, 存在的不足,
    下一年度工作安排, 主要数据, 其他. Each item is followed by its quotes and their offsets."""
    meta = brief.meta
    lines = [f"# {meta.title or brief.doc_id}", "", "## 基本信息", ""]
    for key, label in META_LABELS:
        value = getattr(meta, key)
        lines.append(f"- {label}：{value if value not in (None, '') else NOT_STATED}")
    lines += [f"- 来源：{brief.source}", ""]

    def items_md(items: Sequence[BriefItem]) -> None:
        if not items:
            lines.extend([NOT_STATED, ""])
            return
        for it in items:
            lines.append(f"- {it.text}")
            for ev in it.evidence:
                lines.append(f"  > 「{ev.quote}」（第{ev.start}–{ev.end}字）")
        lines.append("")

    lines += [f"## {SECTION_TITLES['measures']}", ""]
    if not brief.measures:
        lines += [NOT_STATED, ""]
    for topic, items in _grouped(brief.measures):
        lines += [f"### {topic}", ""]
        items_md(items)
    for name in ("leadership", "shortcomings", "next_year"):
        lines += [f"## {SECTION_TITLES[name]}", ""]
        items_md(getattr(brief, name))
    lines += ["## 主要数据", ""]
    if brief.key_figures:
        lines += ["| 指标 | 数值 | 单位 | 约数 | 原文 |", "| --- | ---: | --- | --- | --- |"]
        for f in brief.key_figures:
            lines.append(f"| {_md_cell(f.label)} | {_fmt_value(f.value)} | {_md_cell(f.unit)} | "
                         f"{'是' if f.approx else ''} | {_md_cell(f.quote)} |")
        lines.append("")
    else:
        lines += [NOT_STATED, ""]
    lines += [f"## {SECTION_TITLES['other']}", ""]
    items_md(brief.other)
    g = brief.generated_by
    footer = f"*生成：{g.engine}（{g.model}，{g.prompt}）"
    if brief.dropped_items:
        footer += f"；因证据未能核实而舍弃 {brief.dropped_items} 项"
    lines.append(footer + "*")
    for w in brief.warnings:
        lines.append(f"\n> 注意：{w}")
    return redact("\n".join(lines).rstrip() + "\n")


# ------------------------------------------------------------------------------------------------- html

_CSS = """
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;line-height:1.7;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #ccc;margin-top:2rem}h3{font-size:1.05rem}
.empty{color:#888}.refs a{font-size:.8rem;margin-left:.3rem;text-decoration:none}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ccc;padding:.2rem .5rem}
#report{white-space:pre-wrap;border-top:2px solid #444;margin-top:2rem;padding-top:1rem}
mark{background:#fff3a8}mark.active{background:#ffb347;outline:2px solid #e67e00}
"""
_JS = """
document.addEventListener('click',function(e){var a=e.target.closest('a[href^="#ev-"]');if(!a)return;
var id=a.getAttribute('href').slice(1);document.querySelectorAll('mark.active').forEach(function(m){
m.classList.remove('active')});document.querySelectorAll('mark.'+id).forEach(function(m){m.classList.add('active')});});
"""


def _spans(brief: Brief, text_len: int) -> tuple[list[tuple[int, int]], dict[tuple[int, int], int]]:
    """Distinct evidence spans (valid offsets only), numbered in order of appearance in the brief."""
    ids: dict[tuple[int, int], int] = {}
    for _, it in brief.items():
        for ev in it.evidence:
            key = (ev.start, ev.end)
            if 0 <= ev.start < ev.end <= text_len and key not in ids:
                ids[key] = len(ids) + 1
    return list(ids), ids


def _marked_text(text: str, spans: Sequence[tuple[int, int]], ids: dict[tuple[int, int], int]) -> str:
    """``text`` escaped, every span wrapped in marks. The text is cut at every span boundary; each elementary
    segment gets one ``<mark class="ev-N">`` per span covering it (nested, closed before the next segment), and
    the first segment of span N carries ``id="ev-N"``: always well nested, whatever the overlaps."""
    bounds = sorted({0, len(text), *(b for s in spans for b in s)})
    out: list[str] = []
    started: set[int] = set()
    for a, b in zip(bounds, bounds[1:], strict=False):
        seg = html.escape(text[a:b])
        covering = sorted(ids[s] for s in spans if s[0] <= a and b <= s[1])
        for n in reversed(covering):
            attr = f' id="ev-{n}"' if n not in started else ""
            started.add(n)
            seg = f'<mark class="ev-{n}"{attr} title="证据 {n}">{seg}</mark>'
        out.append(seg)
    return "".join(out)


def render_html(brief: Brief, doc_text: str) -> str:
    """One standalone HTML page: the brief, then the full report with every evidence highlighted and linked."""
    spans, ids = _spans(brief, len(doc_text))
    esc = html.escape
    meta = brief.meta
    parts = ["<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
             f"<title>{esc(meta.title or brief.doc_id)}</title>", f"<style>{_CSS}</style></head><body>",
             f"<h1>{esc(meta.title or brief.doc_id)}</h1>", "<h2>基本信息</h2><ul>"]
    for key, label in META_LABELS:
        value = getattr(meta, key)
        parts.append(f"<li>{label}：{esc(str(value)) if value not in (None, '') else NOT_STATED}</li>")
    parts.append(f"<li>来源：{esc(brief.source)}</li></ul>")

    def items_html(items: Sequence[BriefItem]) -> None:
        if not items:
            parts.append(f'<p class="empty">{NOT_STATED}</p>')
            return
        parts.append("<ul>")
        for it in items:
            refs = "".join(
                f'<a href="#ev-{ids[(ev.start, ev.end)]}" title="{esc(ev.quote)}">[{ids[(ev.start, ev.end)]}]</a>'
                for ev in it.evidence if (ev.start, ev.end) in ids)
            parts.append(f'<li>{esc(it.text)}<span class="refs">{refs}</span></li>')
        parts.append("</ul>")

    parts.append(f"<h2>{SECTION_TITLES['measures']}</h2>")
    if not brief.measures:
        parts.append(f'<p class="empty">{NOT_STATED}</p>')
    for topic, items in _grouped(brief.measures):
        parts.append(f"<h3>{esc(topic)}</h3>")
        items_html(items)
    for name in ("leadership", "shortcomings", "next_year"):
        parts.append(f"<h2>{SECTION_TITLES[name]}</h2>")
        items_html(getattr(brief, name))
    parts.append("<h2>主要数据</h2>")
    if brief.key_figures:
        parts.append("<table><tr><th>指标</th><th>数值</th><th>单位</th><th>原文</th></tr>")
        for f in brief.key_figures:
            approx = "约" if f.approx else ""
            parts.append(f"<tr><td>{esc(f.label)}</td><td>{approx}{_fmt_value(f.value)}</td><td>{esc(f.unit)}</td>"
                         f"<td>{esc(f.quote)}</td></tr>")
        parts.append("</table>")
    else:
        parts.append(f'<p class="empty">{NOT_STATED}</p>')
    parts.append(f"<h2>{SECTION_TITLES['other']}</h2>")
    items_html(brief.other)
    g = brief.generated_by
    parts.append(f'<p class="empty">生成：{esc(g.engine)}（{esc(g.model)}，{esc(g.prompt)}）</p>')
    parts.append("<h2>报告原文</h2>")
    parts.append(f'<div id="report">{_marked_text(doc_text, spans, ids)}</div>')
    parts.append(f"<script>{_JS}</script></body></html>")
    return redact("\n".join(parts) + "\n")


# ------------------------------------------------------------------------------------------------- compare


def _figure_key(label: str, unit: str, quote: str, concepts: dict[str, list[str]]) -> tuple[str, str]:
    """(measure, unit) of a key figure: the first concept of the cue file named in its label (else in its quote),
    else its own label without a leading 全年/累计/共…, normalised; the unit normalised."""
    cues = load_cues()
    for text in (label, quote):
        for name, words in concepts.items():
            if cues.rx(words).search(text):
                return name, match_key(unit)
    key = re.sub(r"^(?:全年|年内|累计|共计|共|全市|全局|本年度|今年)", "", match_key(label))
    return key, match_key(unit)


def compare_rows(briefs: Sequence[Brief], max_columns: int = 20) -> list[dict[str, Any]]:
    """One row per brief: doc_id, issuer, region, year, published, then key-figure columns named ``measure（unit）``.

    Key figures are grouped by measure (a concept of the cue file's ``figure_concepts`` named in the label or the
    quote, else the normalised label) and unit; the columns are the groups found in the most reports
    (at least two when several briefs are compared), at most ``max_columns``. In a row, a figure stated twice
    keeps its first statement; a missing figure is None.
    """
    concepts = load_cues().figure_concepts
    per_brief: list[dict[tuple[str, str], tuple[str, float]]] = []
    seen_in: Counter[tuple[str, str]] = Counter()
    first_seen: dict[tuple[str, str], int] = {}
    names: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for b in briefs:
        figs: dict[tuple[str, str], tuple[str, float]] = {}
        for f in b.key_figures:
            key = _figure_key(f.label, f.unit, f.quote, concepts)
            if not key[0]:
                continue
            names[key][f"{key[0] if key[0] in concepts else f.label}（{f.unit}）"] += 1
            figs.setdefault(key, (f.unit, f.value))
            first_seen.setdefault(key, len(first_seen))
        seen_in.update(figs.keys())
        per_brief.append(figs)
    min_reports = 2 if len(briefs) > 1 else 1
    keys = sorted((k for k, n in seen_in.items() if n >= min_reports), key=lambda k: (-seen_in[k], first_seen[k]))
    keys = keys[:max_columns]
    columns = {k: names[k].most_common(1)[0][0] for k in keys}
    rows = []
    for b, figs in zip(briefs, per_brief, strict=True):
        row: dict[str, Any] = {"doc_id": b.doc_id, "issuer": b.meta.issuer, "region": b.meta.region,
                               "year": b.meta.year, "published": b.meta.published}
        for k in keys:
            row[columns[k]] = figs[k][1] if k in figs else None
        rows.append(row)
    return rows


def render_compare(rows: Sequence[dict[str, Any]], fmt: str = "csv") -> str:
    """The comparison rows as CSV or a Markdown table (same columns, same order)."""
    columns: list[str] = list(FIXED_COLUMNS)
    for r in rows:
        columns.extend(c for c in r if c not in columns)

    def cell(v: Any) -> str:
        if v is None:
            return ""
        return _fmt_value(v) if isinstance(v, float) else str(v)

    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([cell(r.get(c)) for c in columns])
        return redact(buf.getvalue())
    if fmt == "md":
        out = ["| " + " | ".join(_md_cell(c) for c in columns) + " |", "|" + " --- |" * len(columns)]
        for r in rows:
            out.append("| " + " | ".join(_md_cell(cell(r.get(c))) for c in columns) + " |")
        return redact("\n".join(out) + "\n")
    raise ConfigError(f"unknown compare format {fmt!r}; use csv or md")
