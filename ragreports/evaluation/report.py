"""Rendering of an :class:`~ragreports.evaluation.runner.EvalRun`: console tables (rich), the ``--json`` object, the
``--dump`` object, JUnit XML and a standalone HTML page.

    print_summary(run, console); print_breakdown(run, console); print_misses(run, console)
    render_json(run) -> dict          # spec/cli-json.md eval shape (+ extra keys)
    dump_predictions(run) -> dict     # spec/cli-json.md --dump shape (+ each report's normalised text)
    write_junit(run, path); write_html(run, path)
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from rich.table import Table

from ragreports.evaluation.models import FactRef, ReportScore
from ragreports.evaluation.runner import EvalRun
from ragreports.evaluation.scoring import ratio

# metric name -> human label, in display order
METRIC_LABELS: dict[str, str] = {
    "fact_precision": "facts precision", "fact_recall": "facts recall", "fact_f1": "facts F1",
    "meta_accuracy": "meta accuracy", "meta_issuer": "  issuer", "meta_region": "  region", "meta_year": "  year",
    "meta_published": "  published", "qa_accuracy": "QA accuracy", "refusal_precision": "  refusal precision",
    "refusal_recall": "  refusal recall", "retrieval_recall_at_1": "retrieval recall@1",
    "retrieval_recall_at_5": "retrieval recall@5", "grounding_verified": "grounding verified",
    "section_coverage": "section coverage",
}


# -- per-report numbers ------------------------------------------------------------------------------------------
def report_metrics(rs: ReportScore) -> dict[str, Any]:
    """Breakdown of one report (counts and rates, rates rounded to 4 places)."""
    gold, pred, matched = len(rs.facts), rs.facts_predicted, rs.facts_matched
    p = ratio(matched, pred, 1.0 if gold == 0 else 0.0)
    r = ratio(matched, gold)
    qs = rs.questions
    answerable = [q for q in qs if q.answerable]
    facts: dict[str, Any] = {"annotated": rs.facts_annotated, "predicted": pred}
    if rs.facts_annotated:
        facts.update(gold=gold, matched=matched, unsupported=len(rs.unsupported_facts), precision=round(p, 4),
                     recall=round(r, 4), f1=round(2 * p * r / (p + r), 4) if p + r else 0.0)
    return {
        "report": rs.report, "doc_id": rs.doc_id,
        "facts": facts,
        "meta": dict(rs.meta),
        "qa": {"questions": len(qs), "correct": sum(q.correct for q in qs), "refused": sum(q.refused for q in qs),
               "unanswerable": len(qs) - len(answerable),
               "accuracy": round(ratio(sum(q.correct for q in qs), len(qs)), 4)},
        "retrieval": {"hits_at_1": sum(q.hit_at_1 for q in answerable),
                      "hits_at_5": sum(q.hit_at_5 for q in answerable),
                      "recall_at_5": round(ratio(sum(q.hit_at_5 for q in answerable), len(answerable)), 4)},
        "sections": {"points": len(rs.sections), "covered": sum(s.covered for s in rs.sections),
                     "coverage": round(ratio(sum(s.covered for s in rs.sections), len(rs.sections)), 4)},
        "grounding": {"checked": rs.grounding_checked, "verified": rs.grounding_verified,
                      "rate": round(ratio(rs.grounding_verified, rs.grounding_checked), 4)},
    }


def report_misses(rs: ReportScore) -> dict[str, Any]:
    return {
        "missed_facts": [f.model_dump() for f in rs.missed_facts],
        "spurious_facts": [f.model_dump() for f in rs.spurious_facts],
        "unsupported_facts": [u.model_dump() for u in rs.unsupported_facts],
        "meta": [m.model_dump(mode="json") for m in rs.meta_misses],
        "wrong_answers": [{"question": q.question, "expected": q.expected, "answer": q.answer,
                           "refused": q.refused, "reason": q.reason} for q in rs.questions if not q.correct],
        "retrieval_misses": [{"question": q.question, "quote": q.quote} for q in rs.questions
                             if q.answerable and not q.hit_at_5],
        "uncovered_points": [{"section": s.section, "quote": s.quote} for s in rs.sections if not s.covered],
        "ungrounded": [g.model_dump() for g in rs.ungrounded],
    }


# -- JSON --------------------------------------------------------------------------------------------------------
def render_json(run: EvalRun) -> dict[str, Any]:
    """The ``ragreports eval --json`` object (spec/cli-json.md) plus extra keys: engine, repeat, thresholds,
    failures, baseline, repeat_stats, llm_usage (engine llm), warnings, errors, per_report (with misses)."""
    s = run.scores
    out: dict[str, Any] = {
        "suite": run.suite,
        "reports": run.reports,
        "facts": {"precision": s.facts.precision, "recall": s.facts.recall, "f1": s.facts.f1,
                  "gold": s.facts.gold, "predicted": s.facts.predicted, "matched": s.facts.matched,
                  "unsupported": s.facts.unsupported, "reports": s.facts.reports},
        "meta": {"accuracy": s.meta.accuracy, "fields": dict(s.meta.fields)},
        "qa": {"accuracy": s.qa.accuracy, "questions": s.qa.questions, "refused": s.qa.refused,
               "correct": s.qa.correct, "unanswerable": s.qa.unanswerable,
               "refusal_precision": s.qa.refusal_precision, "refusal_recall": s.qa.refusal_recall},
        "retrieval": {"recall_at_1": s.retrieval.recall_at_1, "recall_at_5": s.retrieval.recall_at_5},
        "grounding": {"verified": s.grounding.verified, "checked": s.grounding.checked},
        "sections": {"coverage": s.sections.coverage, "points": s.sections.points, "covered": s.sections.covered},
        "passed": run.passed,
        "engine": run.engine,
        "repeat": run.repeat,
        "thresholds": dict(run.thresholds),
        "failures": list(run.failures),
    }
    if run.deltas is not None:
        out["baseline"] = {k: d.model_dump() for k, d in run.deltas.items()}
    if run.repeat_stats is not None:
        out["repeat_stats"] = run.repeat_stats.model_dump()
    if run.llm_usage is not None:
        out["llm_usage"] = dict(run.llm_usage)
    out["warnings"] = list(run.warnings)
    out["errors"] = [e.model_dump() for e in run.errors]
    out["per_report"] = [{**report_metrics(rs), "misses": report_misses(rs)} for rs in run.report_scores]
    return out


def dump_predictions(run: EvalRun) -> dict[str, Any]:
    """The ``--dump`` object: every raw prediction the scores were computed from (first run), in the
    spec/cli-json.md shape; each report entry also carries ``text`` (the normalised text its offsets refer to),
    so an outside scorer can verify grounding."""
    reports = []
    for r in run.predictions.get("reports", []):
        entry = dict(r)
        if r.get("doc_id") in run.texts:
            entry["text"] = run.texts[r["doc_id"]]
        reports.append(entry)
    return {"reports": reports, "questions": [dict(q) for q in run.predictions.get("questions", [])]}


# -- console -----------------------------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    return f"{v:.3f}"


def print_summary(run: EvalRun, console) -> None:
    """Headline table: metric, value, threshold, baseline delta, status."""
    metrics = run.metrics
    has_delta = run.deltas is not None
    t = Table(title=f"eval {run.suite} · {run.reports} reports · engine {run.engine}"
              + (f" · mean of {run.repeat} runs" if run.repeat > 1 else ""))
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("min", justify="right")
    if has_delta:
        t.add_column("Δ baseline", justify="right")
    t.add_column("")
    for name, label in METRIC_LABELS.items():
        v = metrics[name]
        th = run.thresholds.get(name)
        status = "" if th is None else ("[green]ok[/]" if v >= th - 1e-12 else "[red]FAIL[/]")
        row = [label, _fmt(v), "" if th is None else _fmt(th)]
        if has_delta:
            d = run.deltas.get(name) if run.deltas else None
            row.append("" if d is None else (f"[green]{d.delta:+.3f}[/]" if d.delta > 0 else
                                             f"[red]{d.delta:+.3f}[/]" if d.delta < 0 else "±0"))
        t.add_row(*row, status)
    console.print(t)
    s = run.scores
    console.print(f"facts ({s.facts.reports} annotated reports): {s.facts.matched}/{s.facts.gold} gold matched, "
                  f"{s.facts.predicted} predicted, {s.facts.unsupported} right value with unsupported source · "
                  f"questions: {s.qa.correct}/{s.qa.questions} correct ({s.qa.unanswerable} unanswerable), "
                  f"{s.qa.refused} refused · section points: {s.sections.covered}/{s.sections.points} · "
                  f"evidence checked: {s.grounding.checked}")
    for w in run.warnings:
        console.print(f"[yellow]warning:[/] {w}", markup=True, highlight=False)
    for e in run.errors:
        console.print(f"[red]error[/] {e.stage} {e.report}: {e.error}", highlight=False)
    if run.repeat_stats is not None and run.repeat_stats.flaky:
        console.print(f"[yellow]{len(run.repeat_stats.flaky)} flaky question(s) over {run.repeat} runs:[/]")
        for q in run.repeat_stats.flaky:
            console.print(f"  {q.pass_rate:.0%}  {q.report}: {q.question}", highlight=False)
    if (u := run.llm_usage) is not None:
        console.print(f"model: {u['calls']} call(s), {u['errors']} failed · tokens {u['input_tokens']} in, "
                      f"{u['output_tokens']} out · {u['latency_s']:.1f}s in the model")
    console.print("[green]PASSED[/]" if run.passed else "[red]FAILED[/]: " + "; ".join(run.failures))


def print_breakdown(run: EvalRun, console) -> None:
    """One row per report."""
    t = Table(title="per report")
    for col in ("report", "facts P", "facts R", "facts F1", "meta", "QA", "recall@5", "sections", "grounded"):
        t.add_column(col, justify="left" if col == "report" else "right")
    for rs in run.report_scores:
        m = report_metrics(rs)
        f = m["facts"]
        p, r, f1 = (_fmt(f["precision"]), _fmt(f["recall"]), _fmt(f["f1"])) if rs.facts_annotated else ("—",) * 3
        t.add_row(rs.report, p, r, f1,
                  f"{sum(rs.meta.values())}/{len(rs.meta)}", f"{m['qa']['correct']}/{m['qa']['questions']}",
                  f"{m['retrieval']['hits_at_5']}/{m['qa']['questions'] - m['qa']['unanswerable']}",
                  f"{m['sections']['covered']}/{m['sections']['points']}",
                  f"{rs.grounding_verified}/{rs.grounding_checked}")
    console.print(t)


def _fact(f: FactRef) -> str:
    v = int(f.value) if float(f.value).is_integer() else f.value
    return f"{f.label or '?'} = {'≈' if f.approx else ''}{v} {f.unit}  「{f.quote}」"


def print_misses(run: EvalRun, console, limit: int | None = None) -> None:
    """Everything that cost points, per report (``limit`` lines per category)."""
    def lines(title: str, items: list[str]) -> None:
        if not items:
            return
        console.print(f"  [bold]{title}[/] ({len(items)})")
        for line in items[:limit] if limit else items:
            console.print(f"    {line}", highlight=False, markup=False)
        if limit and len(items) > limit:
            console.print(f"    … {len(items) - limit} more")

    for rs in run.report_scores:
        console.print(f"[bold cyan]{rs.report}[/]" + (f"  ({rs.doc_id})" if rs.doc_id else "  (not ingested)"))
        lines("missed facts", [_fact(f) for f in rs.missed_facts])
        lines("spurious facts", [_fact(f) for f in rs.spurious_facts])
        lines("right value, unsupported source",
              [f"{_fact(u.gold)}  ← predicted 「{u.predicted.quote}」" for u in rs.unsupported_facts])
        lines("meta", [f"{m.field}: expected {m.gold!r}, got {m.predicted!r}" for m in rs.meta_misses])
        lines("wrong answers", [f"{q.question}  expected {q.expected or 'a refusal'!r}; got {q.answer[:120]!r} "
                                f"({q.reason})"
                                for q in rs.questions if not q.correct])
        lines("retrieval misses (top 5)", [f"{q.question}  「{q.quote}」" for q in rs.questions
                                           if q.answerable and not q.hit_at_5])
        lines("uncovered section points", [f"{s.section}: 「{s.quote}」" for s in rs.sections if not s.covered])
        lines("unverified evidence", [f"{g.kind} [{g.start}:{g.end}] 「{g.quote[:80]}」" for g in rs.ungrounded])


# -- JUnit -------------------------------------------------------------------------------------------------------
def _case(parent: ET.Element, classname: str, name: str, failure: str | None) -> None:
    tc = ET.SubElement(parent, "testcase", classname=classname, name=name)
    if failure is not None:
        f = ET.SubElement(tc, "failure", message=failure.splitlines()[0][:500])
        f.text = failure


def write_junit(run: EvalRun, path: str | Path) -> None:
    """JUnit XML: one testcase per gold fact, question, meta field and section point (one testsuite per report),
    plus a ``gates`` testsuite with one testcase per threshold."""
    root = ET.Element("testsuites", name=f"ragreports eval {run.suite}")
    for rs in run.report_scores:
        suite = ET.SubElement(root, "testsuite", name=f"{run.suite}.{rs.report}")
        cls = f"{run.suite}.{Path(rs.report).stem}"
        for i, fo in enumerate(rs.facts):
            f, msg = fo.gold, None
            if fo.status == "unsupported" and fo.predicted is not None:
                msg = f"right value, unsupported source: gold 「{f.quote}」, predicted 「{fo.predicted.quote}」"
            elif fo.status == "missed":
                msg = f"missed fact {f.value:g} {f.unit}: 「{f.quote}」"
            _case(suite, f"{cls}.facts", f"[{i}] {f.label}", msg)
        for field, ok in rs.meta.items():
            m = next((x for x in rs.meta_misses if x.field == field), None)
            _case(suite, f"{cls}.meta", field,
                  None if ok else f"expected {m.gold!r}, got {m.predicted!r}" if m else "wrong")
        for i, q in enumerate(rs.questions):
            _case(suite, f"{cls}.qa", f"[{i}] {q.question}",
                  None if q.correct else f"{q.reason}\nexpected: {q.expected or 'a refusal'}\nanswer: {q.answer}")
        for i, s in enumerate(rs.sections):
            _case(suite, f"{cls}.sections", f"[{i}] {s.section}: {s.quote[:40]}",
                  None if s.covered else f"uncovered {s.section} point: 「{s.quote}」")
        _totals(suite)
    gates = ET.SubElement(root, "testsuite", name=f"{run.suite}.gates")
    metrics = run.metrics
    for name, th in sorted(run.thresholds.items()):
        v = metrics[name]
        _case(gates, f"{run.suite}.gates", name, None if v >= th - 1e-12 else f"{name} {v:.4f} < {th:.4f}")
    _totals(gates)
    _totals(root)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(str(path), encoding="utf-8", xml_declaration=True)


def _totals(el: ET.Element) -> None:
    cases = el.iter("testcase")
    n = fails = 0
    for c in cases:
        n += 1
        fails += c.find("failure") is not None
    el.set("tests", str(n))
    el.set("failures", str(fails))
    el.set("errors", "0")


# -- HTML --------------------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC",sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem} h2{font-size:1.15rem;margin-top:2rem} table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17803d;font-weight:600} .fail{color:#c62828;font-weight:600}
.bar{background:#eee;width:160px;height:12px;border-radius:3px;display:inline-block;vertical-align:middle}
.bar>span{display:block;height:100%;border-radius:3px;background:#3b82f6}
.bar.low>span{background:#ef4444} .small{color:#666;font-size:.85rem} details{margin:.3rem 0 1rem 0}
li{margin:.15rem 0} q{quotes:"「" "」"}
"""


def _bar(v: float, low: float = 0.8) -> str:
    pct = max(0.0, min(1.0, v)) * 100
    return (f'<span class="bar{" low" if v < low else ""}"><span style="width:{pct:.1f}%"></span></span> '
            f'<span class="small">{v:.3f}</span>')


def _ul(title: str, items: list[str]) -> str:
    if not items:
        return ""
    lis = "".join(f"<li>{i}</li>" for i in items)
    return f"<h4>{html.escape(title)} ({len(items)})</h4><ul>{lis}</ul>"


def write_html(run: EvalRun, path: str | Path) -> None:
    """A standalone HTML page (inline CSS, no external assets): summary, per-report bars, misses."""
    e = html.escape
    metrics = run.metrics
    rows = []
    for name, label in METRIC_LABELS.items():
        th = run.thresholds.get(name)
        v = metrics[name]
        status = "" if th is None else ('<span class="ok">ok</span>' if v >= th - 1e-12
                                        else '<span class="fail">FAIL</span>')
        d = run.deltas.get(name) if run.deltas else None
        rows.append(f"<tr><td>{e(label.strip())}</td><td>{_bar(v)}</td><td class=num>"
                    f"{'' if th is None else f'{th:.3f}'}</td><td class=num>{'' if d is None else f'{d.delta:+.3f}'}"
                    f"</td><td>{status}</td></tr>")
    per = []
    for rs in run.report_scores:
        m = report_metrics(rs)
        meta_rate = ratio(sum(rs.meta.values()), len(rs.meta))
        per.append(
            f"<tr><td>{e(rs.report)}</td><td>{_bar(m['facts']['f1'])}</td><td>{_bar(meta_rate)}</td>"
            f"<td>{_bar(m['qa']['accuracy'])}</td><td>{_bar(m['retrieval']['recall_at_5'])}</td>"
            f"<td>{_bar(m['sections']['coverage'])}</td><td>{_bar(m['grounding']['rate'], 1.0)}</td></tr>")
    misses = []
    for rs in run.report_scores:
        mm = report_misses(rs)

        def fact(f: dict) -> str:
            return f"{e(f['label'])} = {f['value']:g} {e(f['unit'])} <q>{e(f['quote'])}</q>"

        body = (_ul("missed facts", [fact(f) for f in mm["missed_facts"]])
                + _ul("spurious facts", [fact(f) for f in mm["spurious_facts"]])
                + _ul("right value, unsupported source",
                      [f"{fact(u['gold'])} ← predicted <q>{e(u['predicted']['quote'])}</q>"
                       for u in mm["unsupported_facts"]])
                + _ul("meta", [f"{e(x['field'])}: expected {e(repr(x['gold']))}, got {e(repr(x['predicted']))}"
                               for x in mm["meta"]])
                + _ul("wrong answers", [f"{e(q['question'])}<br><span class=small>expected "
                                        f"{e(q['expected'] or 'a refusal')}; got "
                                        f"{e(q['answer'][:200])} ({e(q['reason'])})</span>"
                                        for q in mm["wrong_answers"]])
                + _ul("retrieval misses", [f"{e(q['question'])} <q>{e(q['quote'])}</q>"
                                           for q in mm["retrieval_misses"]])
                + _ul("uncovered section points", [f"{e(p['section'])}: <q>{e(p['quote'])}</q>"
                                                   for p in mm["uncovered_points"]])
                + _ul("unverified evidence", [f"{e(g['kind'])} [{g['start']}:{g['end']}] <q>{e(g['quote'][:120])}</q>"
                                              for g in mm["ungrounded"]]))
        misses.append(f"<details><summary>{e(rs.report)}</summary>{body or '<p>nothing missed</p>'}</details>")
    status = ('<span class="ok">PASSED</span>' if run.passed
              else f'<span class="fail">FAILED</span>: {e("; ".join(run.failures))}')
    warn = "".join(f"<li>{e(w)}</li>" for w in run.warnings)
    repeat_note = f" · mean of {run.repeat} runs" if run.repeat > 1 else ""
    page = f"""<!DOCTYPE html>
<html lang="zh"><head><meta charset="utf-8"><title>ragreports eval · {e(run.suite)}</title>
<style>{_CSS}</style></head><body>
<h1>ragreports eval · {e(run.suite)}</h1>
<p>{run.reports} reports · engine {e(run.engine)}{repeat_note} · {status}</p>
<table><tr><th>metric</th><th>value</th><th>min</th><th>Δ baseline</th><th></th></tr>{''.join(rows)}</table>
<h2>Per report</h2>
<table><tr><th>report</th><th>facts F1</th><th>meta</th><th>QA</th><th>recall@5</th><th>sections</th>
<th>grounded</th></tr>{''.join(per)}</table>
<h2>Misses</h2>{''.join(misses)}
{f'<h2>Warnings</h2><ul>{warn}</ul>' if warn else ''}
</body></html>
"""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(page, encoding="utf-8")
