"""Pure scoring: the matching rules of spec/gold-format.md applied to predictions in the ``--dump`` shape.

Everything here is a pure function of gold annotations, predictions and document texts (no index, no model).
:func:`score_suite` is the entry point; the small functions it uses are public so they can be tested one by one.

Fact matching is a maximum bipartite matching (Kuhn's augmenting paths, gold facts and predictions visited in
their given order), so each gold fact matches at most one prediction and the number of matches is the largest
possible; the assignment is deterministic for a given input order.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ragreports.evaluation.gold import META_FIELDS, SECTION_NAMES, GoldFact, GoldReport
from ragreports.evaluation.matching import key, states_answer, unit_key, values_equal
from ragreports.evaluation.models import (
    FactOutcome,
    FactRef,
    FactScores,
    GroundingMiss,
    GroundingScores,
    MetaMiss,
    MetaScores,
    PredCitation,
    PredEvidence,
    PredFact,
    Predictions,
    PredQuestion,
    PredReport,
    PredResult,
    PredSummary,
    QAScores,
    QuestionOutcome,
    ReportScore,
    RetrievalScores,
    Scores,
    SectionPoint,
    SectionScores,
    SuiteScore,
)
from ragreports.text.normalize import quotes_overlap

# Administrative-area suffixes for the issuer/region place-prefix rule (longest first where they share an end).
_AREA_SUFFIX = "特别行政区|自治区|自治州|自治县|自治旗|地区|省|市|州|盟|区|县|旗"
# A place name's body never contains these (they end a body's name, not a place's): 江门市科学技术局高新区分局
_NOT_PLACE = "局厅委办处部署司室站院"
_AREA = re.compile(rf"^[^{_NOT_PLACE}\s\d]{{1,10}}?(?:{_AREA_SUFFIX})")


# -- normalisation (key, unit_key, values_equal: ragreports.evaluation.matching) -------------------------------------
def contains_quote(passage: str, quote: str) -> bool:
    """Normalised containment: the gold ``quote`` lies inside ``passage``."""
    kq = key(quote)
    return bool(kq) and kq in key(passage)


def ratio(num: int, den: int, empty: float = 1.0) -> float:
    return num / den if den else empty


# -- facts -------------------------------------------------------------------------------------------------------
def same_quantity(gold: GoldFact | PredFact | FactRef, pred: PredFact | FactRef) -> bool:
    return values_equal(gold.value, pred.value) and unit_key(gold.unit) == unit_key(pred.unit)


def fact_matches(gold: GoldFact | FactRef, pred: PredFact | FactRef) -> bool:
    """Spec rule: equal value (rel. tol 1e-6), equal unit after normalisation, overlapping evidence."""
    return same_quantity(gold, pred) and quotes_overlap(pred.quote, gold.quote)


def max_bipartite(adj: Sequence[Sequence[int]], n_right: int) -> dict[int, int]:
    """Maximum bipartite matching (Kuhn). ``adj[i]`` lists right nodes left node ``i`` may take, in preference
    order. Returns {left: right}. Deterministic for a given input."""
    owner: list[int] = [-1] * n_right

    def augment(i: int, seen: list[bool]) -> bool:
        for j in adj[i]:
            if seen[j]:
                continue
            seen[j] = True
            if owner[j] < 0 or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(adj)):
        augment(i, [False] * n_right)
    return {i: j for j, i in enumerate(owner) if i >= 0}


@dataclass(frozen=True)
class FactMatch:
    matched: dict[int, int]  # gold index -> prediction index
    unsupported: dict[int, int]  # gold index -> prediction index (same value/unit, evidence elsewhere)
    missed: list[int]
    spurious: list[int]


def match_facts(gold: Sequence[GoldFact], preds: Sequence[PredFact]) -> FactMatch:
    """Match predictions to gold facts (each gold fact at most once), then pair the leftovers that agree on value
    and unit but not on evidence ("right value, unsupported source")."""
    adj = [[j for j, p in enumerate(preds) if fact_matches(g, p)] for g in gold]
    matched = max_bipartite(adj, len(preds))
    used = set(matched.values())
    left = [i for i in range(len(gold)) if i not in matched]
    right = [j for j in range(len(preds)) if j not in used]
    adj2 = [[k for k, j in enumerate(right) if same_quantity(gold[i], preds[j])] for i in left]
    m2 = max_bipartite(adj2, len(right))
    unsupported = {left[a]: right[b] for a, b in m2.items()}
    used2 = set(unsupported.values())
    return FactMatch(matched=matched, unsupported=unsupported,
                     missed=[i for i in left if i not in unsupported],
                     spurious=[j for j in right if j not in used2])


def _ref(f: GoldFact | PredFact) -> FactRef:
    return FactRef(label=f.label, value=f.value, unit=f.unit, approx=f.approx, quote=f.quote)


# -- meta --------------------------------------------------------------------------------------------------------
def _area_prefix_len(s: str) -> int:
    """Length of the leading administrative-area name of ``s`` (浙江省, 黔东南苗族侗族自治州, 苏州市), or 0."""
    m = _AREA.match(s)
    if not m:
        return 0
    end = m.end()
    if s[end - 1] == "州" and not s[:end].endswith("自治州") and end < len(s) and s[end] in "省市区县盟":
        end += 1  # 苏州市, 贵州省: 州 belongs to the name
    return end


def strip_areas(name: str) -> list[str]:
    """``name`` with 1, 2, ... leading higher-level areas removed, as long as a place name still leads it.

    ``重庆市巴南区科学技术局`` -> [``巴南区科学技术局``]; ``浙江省龙泉市`` -> [``龙泉市``]."""
    out: list[str] = []
    rest = name
    while True:
        n = _area_prefix_len(rest)
        if n == 0 or n >= len(rest):
            return out
        rest = rest[n:]
        if _area_prefix_len(rest) == 0:
            return out
        out.append(rest)


def names_match(gold: str, pred: str) -> bool:
    """Issuer/region equality: same after normalisation, or equal once leading higher-level areas are removed
    from one side (a place name must remain)."""
    g, p = key(gold), key(pred)
    if not g or not p:
        return False
    return g == p or g in strip_areas(p) or p in strip_areas(g)


def _norm_date(v: Any) -> str | None:
    if isinstance(v, _dt.datetime):
        return v.date().isoformat()
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, str) and v.strip():
        try:
            return _dt.date.fromisoformat(v.strip()).isoformat()
        except ValueError:
            return v.strip()
    return None


def _is_null(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def meta_field_correct(field: str, accepted: list[Any] | None, predicted: Any) -> bool:
    """One meta field: null gold only matches a null prediction; otherwise any accepted value may match."""
    if accepted is None:
        return _is_null(predicted)
    if _is_null(predicted):
        return False
    if field == "year":
        try:
            y = int(str(predicted).strip())
        except ValueError:
            return False
        return any(int(a) == y for a in accepted)
    if field == "published":
        d = _norm_date(predicted)
        return any(_norm_date(a) == d for a in accepted)
    return any(names_match(str(a), str(predicted)) for a in accepted)


# -- questions (number-answer rules: ragreports.evaluation.matching) -------------------------------------------------
def cites_quote(citations: Iterable[PredCitation], quote: str, doc_id: str | None) -> bool:
    """Some citation of the report's document contains the gold quote (normalised containment)."""
    return doc_id is not None and any(c.doc_id == doc_id and contains_quote(c.quote, quote) for c in citations)


def retrieved_hit(retrieved: Sequence[PredResult], quote: str, doc_id: str | None, k: int) -> bool:
    """The gold quote lies inside one of the top-k retrieved passages of the report's document."""
    return doc_id is not None and any(r.doc_id == doc_id and contains_quote(r.text, quote) for r in retrieved[:k])


# -- grounding and sections --------------------------------------------------------------------------------------
def evidence_verifies(text: str | None, quote: str, start: int, end: int) -> bool:
    """The evidence offsets point at exactly its (non-empty) quote in the document text."""
    return text is not None and bool(quote) and 0 <= start <= end <= len(text) and text[start:end] == quote


def grounding_checks(rep: PredReport, questions: Sequence[PredQuestion],
                     texts: Mapping[str, str]) -> list[tuple[GroundingMiss, bool]]:
    """Every predicted fact, brief item, key figure and citation of one report, with whether it verifies."""
    text = texts.get(rep.doc_id) if rep.doc_id else None
    out: list[tuple[GroundingMiss, bool]] = []
    facts = [("fact", f) for f in rep.facts]
    if rep.summary is not None:
        facts += [("key_figure", f) for f in rep.summary.key_figures]
    for kind, f in facts:
        out.append((GroundingMiss(kind=kind, quote=f.quote, start=f.start, end=f.end),
                    evidence_verifies(text, f.quote, f.start, f.end)))
    if rep.summary is not None:
        for name in SECTION_NAMES:
            for item in getattr(rep.summary, name):
                ok = bool(item.evidence) and all(evidence_verifies(text, e.quote, e.start, e.end)
                                                 for e in item.evidence)
                first = item.evidence[0] if item.evidence else PredEvidence(quote=item.text, start=-1, end=-1)
                out.append((GroundingMiss(kind=f"item:{name}", quote=first.quote, start=first.start,
                                          end=first.end), ok))
    for q in questions:
        for c in q.citations:
            out.append((GroundingMiss(kind="citation", quote=c.quote, start=c.start, end=c.end),
                        evidence_verifies(texts.get(c.doc_id), c.quote, c.start, c.end)))
    return out


def section_points(gold: GoldReport, summary: PredSummary | None) -> list[SectionPoint]:
    """Each gold point is covered when an item of THAT section cites evidence overlapping its quote."""
    out = []
    for name, quote in gold.sections.points():
        items = getattr(summary, name) if summary is not None else []
        ok = any(quotes_overlap(e.quote, quote) for it in items for e in it.evidence)
        out.append(SectionPoint(section=name, quote=quote, covered=ok))
    return out


# -- one report, the suite ---------------------------------------------------------------------------------------
def score_report(gold: GoldReport, rep: PredReport | None, questions: Sequence[PredQuestion | None],
                 texts: Mapping[str, str]) -> ReportScore:
    """Score one report. ``questions`` is aligned with ``gold.questions`` (None: no prediction)."""
    rep = rep or PredReport(report=gold.report)
    annotated = gold.facts is not None
    gold_facts = gold.facts or []
    fm = match_facts(gold_facts, rep.facts if annotated else [])
    meta: dict[str, bool] = {}
    meta_misses: list[MetaMiss] = []
    for f in META_FIELDS:
        pred = getattr(rep.meta, f)
        ok = meta_field_correct(f, gold.meta.accepted(f), pred)
        meta[f] = ok
        if not ok:
            meta_misses.append(MetaMiss(field=f, gold=getattr(gold.meta, f), predicted=pred))
    outcomes = []
    for gq, pq in zip(gold.questions, questions, strict=True):
        pq = pq or PredQuestion(report=gold.report, question=gq.question, refused=True)
        if gq.answer is None or gq.quote is None:  # unanswerable: only a refusal is right; no retrieval target
            outcomes.append(QuestionOutcome(
                question=gq.question, expected=None, quote=None, answer=pq.answer, refused=pq.refused,
                states_answer=False, cites_quote=False, correct=pq.refused, hit_at_1=False, hit_at_5=False))
            continue
        said = not pq.refused and states_answer(pq.answer, gq.answer)
        cited = cites_quote(pq.citations, gq.quote, rep.doc_id)
        outcomes.append(QuestionOutcome(
            question=gq.question, expected=gq.answer, quote=gq.quote, answer=pq.answer, refused=pq.refused,
            states_answer=said, cites_quote=cited, correct=said and cited,
            hit_at_1=retrieved_hit(pq.retrieved, gq.quote, rep.doc_id, 1),
            hit_at_5=retrieved_hit(pq.retrieved, gq.quote, rep.doc_id, 5)))
    checks = grounding_checks(rep, [q for q in questions if q is not None], texts)
    outcomes_f = []
    for i, g in enumerate(gold_facts):
        j = fm.matched.get(i, fm.unsupported.get(i))
        status = "matched" if i in fm.matched else "unsupported" if i in fm.unsupported else "missed"
        outcomes_f.append(FactOutcome(gold=_ref(g), status=status, predicted=None if j is None else _ref(rep.facts[j])))
    return ReportScore(
        report=gold.report, doc_id=rep.doc_id, facts_annotated=annotated, facts=outcomes_f,
        facts_predicted=len(rep.facts), spurious_facts=[_ref(rep.facts[j]) for j in fm.spurious],
        meta=meta, meta_misses=meta_misses, questions=outcomes, sections=section_points(gold, rep.summary),
        grounding_checked=len(checks), grounding_verified=sum(ok for _, ok in checks),
        ungrounded=[m for m, ok in checks if not ok])


def align_questions(gold: GoldReport, preds: Sequence[PredQuestion]) -> list[PredQuestion | None]:
    """Pair the report's predicted questions with its gold questions by question text (in order for repeats)."""
    queue: dict[str, list[PredQuestion]] = defaultdict(list)
    for q in preds:
        if q.report == gold.report:
            queue[q.question.strip()].append(q)
    return [queue[g.question].pop(0) if queue[g.question] else None for g in gold.questions]


def aggregate(reports: Sequence[ReportScore]) -> Scores:
    """Micro-averaged suite scores (rounded to 4 decimals). Facts count only the reports whose facts are annotated;
    retrieval only the answerable questions; refusal precision and recall are about the unanswerable ones."""
    annotated = [r for r in reports if r.facts_annotated]
    gold = sum(len(r.facts) for r in annotated)
    pred = sum(r.facts_predicted for r in annotated)
    matched = sum(r.facts_matched for r in annotated)
    p = ratio(matched, pred, 1.0 if gold == 0 else 0.0)
    rc = ratio(matched, gold)
    f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
    n = len(reports)
    fields = {f: round(ratio(sum(r.meta[f] for r in reports), n), 4) for f in META_FIELDS}
    meta_acc = ratio(sum(sum(r.meta.values()) for r in reports), n * len(META_FIELDS))
    qs = [q for r in reports for q in r.questions]
    answerable = [q for q in qs if q.answerable]
    refused = [q for q in qs if q.refused]
    unanswerable = [q for q in qs if not q.answerable]
    pts = [s for r in reports for s in r.sections]
    checked = sum(r.grounding_checked for r in reports)
    return Scores(
        facts=FactScores(precision=round(p, 4), recall=round(rc, 4), f1=round(f1, 4), gold=gold, predicted=pred,
                         matched=matched, unsupported=sum(len(r.unsupported_facts) for r in annotated),
                         reports=len(annotated)),
        meta=MetaScores(accuracy=round(meta_acc, 4), fields=fields),
        qa=QAScores(accuracy=round(ratio(sum(q.correct for q in qs), len(qs)), 4), questions=len(qs),
                    refused=len(refused), correct=sum(q.correct for q in qs), unanswerable=len(unanswerable),
                    refusal_precision=round(ratio(sum(not q.answerable for q in refused), len(refused)), 4),
                    refusal_recall=round(ratio(sum(q.refused for q in unanswerable), len(unanswerable)), 4)),
        retrieval=RetrievalScores(
            recall_at_1=round(ratio(sum(q.hit_at_1 for q in answerable), len(answerable)), 4),
            recall_at_5=round(ratio(sum(q.hit_at_5 for q in answerable), len(answerable)), 4)),
        grounding=GroundingScores(verified=round(ratio(sum(r.grounding_verified for r in reports), checked), 4),
                                  checked=checked),
        sections=SectionScores(coverage=round(ratio(sum(s.covered for s in pts), len(pts)), 4), points=len(pts),
                               covered=sum(s.covered for s in pts)))


def score_suite(gold: Sequence[GoldReport], predictions: Predictions, texts: Mapping[str, str]) -> SuiteScore:
    """Score predictions (``--dump`` shape) against a suite's gold. ``texts`` maps doc_id -> normalised text."""
    by_report = {r.report: r for r in predictions.reports}
    reports = [score_report(g, by_report.get(g.report), align_questions(g, predictions.questions), texts)
               for g in gold]
    return SuiteScore(scores=aggregate(reports), reports=reports)


def metric_values(scores: Scores) -> dict[str, float]:
    """Flat metric names (used by gates, baselines and --repeat): fact_f1, meta_accuracy, qa_accuracy, ..."""
    out = {
        "fact_precision": scores.facts.precision, "fact_recall": scores.facts.recall, "fact_f1": scores.facts.f1,
        "meta_accuracy": scores.meta.accuracy,
        **{f"meta_{f}": v for f, v in scores.meta.fields.items()},
        "qa_accuracy": scores.qa.accuracy,
        "refusal_precision": scores.qa.refusal_precision, "refusal_recall": scores.qa.refusal_recall,
        "retrieval_recall_at_1": scores.retrieval.recall_at_1,
        "retrieval_recall_at_5": scores.retrieval.recall_at_5,
        "grounding_verified": scores.grounding.verified,
        "section_coverage": scores.sections.coverage,
    }
    return dict(sorted(out.items()))
