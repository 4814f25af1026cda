"""The extractive answer engine (default, offline, deterministic): a question and its retrieved passages -> a short
answer with a verified citation.

Every clause of the passages is a candidate, scored against the question: coverage of the question's keywords (each
weighted by its IDF over the sentences of the reports in play), the longest run shared with them, the fit to the
question type (a number with the asked unit, a date, a ``由…担任`` role) and the passage's retrieval rank. The answer
starts with the answer (``13311项。…``, ``2025年1月1日。…``, ``局党组书记、局长。…``) and cites the sentence it came
from. Below a calibrated score, or when a number question finds no number with a compatible unit, it refuses.
Instruction-like sentences (:func:`ragreports.answer.common.is_injection`) are never candidates.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ragreports.answer.common import answerable_passages, clip, is_injection, key, refusal, rules
from ragreports.retrieve.query import QueryPlan
from ragreports.text.grounding import QuoteLocator
from ragreports.text.normalize import longest_common_run
from ragreports.text.numbers import QuantityMatch, iter_quantities, parse_chinese_numeral
from ragreports.text.outline import sentence_spans
from ragreports.types import Answer, Citation, SearchResult

log = logging.getLogger("ragreports.answer")

ANSWER_CHARS = 120  # longest answer; the key answer comes first (scored within the first 80 characters)
SUPPORT_CHARS = 100  # supporting clause after a number/date/person
CITE_CHARS = 160  # longest citation quote
HEADING_REACH = 240  # characters after a heading searched for the sentence that answers
KIND_BONUS, KIND_PENALTY = 0.05, 0.15  # a passage of the asked kind (result / plan), of the other kind

_DATE = re.compile(
    r"(?:19|20)\d{2}年\d{1,2}月\d{1,2}[日号]|(?:19|20)\d{2}年\d{1,2}月|(?<!\d)\d{1,2}月\d{1,2}[日号]"
    r"|(?:19|20)\d{2}[-./]\d{1,2}[-./]\d{1,2}|(?:19|20)\d{2}年(?!度)(?:底|末|初)?"
)
_BOOK_TITLE = re.compile(r"《([^《》]{1,60})》")
_NAME = re.compile(r"《[^《》]{2,60}》|“[^“”]{2,30}”")
_CLAUSE_END = re.compile(r"[，,：:；;。！？!?]")
_PAIRS = (("《", "》"), ("“", "”"), ("「", "」"), ("〔", "〕"))
_HEADING = re.compile(r"^(?:[一二三四五六七八九十]{1,3}是|[（(][一二三四五六七八九十\d]{1,3}[)）]"
                      r"|[一二三四五六七八九十]{1,3}[、.．]"
                      r"|\d{1,2}[、.．](?!\d))")


# ---------------------------------------------------------------------------------------------------------------
# extractive engine: candidates and scores
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sentence:
    rank: int  # rank of its passage
    start: int  # passage-local offsets
    end: int
    clauses: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class _Candidate:
    score: float
    rank: int
    sentence: _Sentence
    focus: tuple[int, int]  # the clause that answers, passage-local
    head: str | None  # the key answer (number, date, person) when it is shorter than the clause
    follow: _Sentence | None = None  # the next sentence of the passage


class _Scorer:
    """How much of the question a text covers. Each keyword weighs its IDF over the sentences of the reports in
    play (a word every sentence has says little); a keyword present in full earns its weight, a partly present
    one a share of it by character bigrams; a short title (《条例》) stands for the full one the question names."""

    PARTIAL = 0.7  # a keyword present only in part earns at most this share of its weight

    def __init__(self, plan: QueryPlan, corpus: Sequence[str]):
        terms = list(dict.fromkeys(k for k in map(key, plan.keywords) if len(k) >= 2))
        if not terms and len(key(plan.text)) >= 2:
            terms = [key(plan.text)]  # nothing but question words: the whole question (scores low)
        keys = [key(c) for c in corpus]
        self.terms = [(t, {t[i : i + 2] for i in range(len(t) - 1)},
                       math.log(1 + max(1, len(keys)) / (0.5 + sum(1 for k in keys if t in k)))) for t in terms]
        self.total = sum(w for _, _, w in self.terms) or 1.0
        self.core = "".join(terms)
        self.titles = {key(m) for m in _BOOK_TITLE.findall(plan.text)}

    def coverage(self, text: str) -> float:
        k = key(text)
        grams = {k[i : i + 2] for i in range(len(k) - 1)}
        short = [key(m) for m in _BOOK_TITLE.findall(text)] if self.titles else []
        got = 0.0
        for t, tg, w in self.terms:
            if t in k or (t in self.titles and any(len(x) >= 2 and t.endswith(x) for x in short)):
                got += w
            elif tg:
                got += w * self.PARTIAL * len(tg & grams) / len(tg)
        return got / self.total

    def run(self, text: str) -> float:
        """Longest run shared with the question's keywords, 0..1 (8 characters count as a full match)."""
        return min(1.0, longest_common_run(self.core, key(text)) / 8)


def _split(p: SearchResult, rank: int) -> list[_Sentence]:
    """Sentences of a passage with their clauses; instruction-like sentences are dropped."""
    out = []
    for s, e in sentence_spans(p.text):
        if is_injection(p.text[s:e]):
            continue
        clauses, pos = [], s
        for m in _CLAUSE_END.finditer(p.text, s, e):
            if m.end() - pos > 1:
                clauses.append((pos, m.end()))
            pos = m.end()
        if e > pos:
            clauses.append((pos, e))
        out.append(_Sentence(rank, s, e, tuple(clauses) or ((s, e),)))
    return out


def _inside_name(seg: str, pos: int) -> bool:
    """True when ``pos`` lies inside 《…》 or “…” (a number in a name or slogan answers nothing)."""
    before = seg[:pos]
    return any(before.count(o) > before.count(c) for o, c in _PAIRS)


def _unit_fit(unit: str, measure: str | None) -> float:
    if measure is None:
        return 0.8
    if unit == measure:
        return 1.0
    return 0.6 if any(unit in g and measure in g for g in rules().compatible_units) else 0.0


def _arabic_head(seg: str, q: QuantityMatch) -> str:
    """The quantity as written, Chinese numerals turned into digits (近千份 -> 近1000份, 七十六条 -> 76条)."""
    if not q.chinese:
        return seg[q.start : q.end]
    v = parse_chinese_numeral(q.numeral)
    return seg[q.start : q.num_start] + (str(v) if v is not None else q.numeral) + seg[q.num_end : q.end]


def _clause_of(sent: _Sentence, pos: int) -> tuple[int, int]:
    return next(((s, e) for s, e in sent.clauses if s <= pos < e), (sent.start, sent.end))


Point = tuple[int, int, str, float]  # start, end (passage-local), head, fit


def _points(text: str, sent: _Sentence, plan: QueryPlan) -> tuple[list[Point], list[tuple[int, int]]]:
    """Numbers/dates of a sentence that fit the question, and the spans of every quantity (label boundaries)."""
    seg = text[sent.start : sent.end]
    points: list[Point] = []
    spans: list[tuple[int, int]] = []
    if plan.qtype == "number":
        for q in iter_quantities(seg):
            span = (sent.start + q.start, sent.start + q.end)
            spans.append(span)
            if (q.unit == "年" and plan.measure != "年") or _inside_name(seg, q.num_start):
                continue
            if (fit := _unit_fit(q.unit, plan.measure)) > 0:
                points.append((*span, _arabic_head(seg, q), fit))
    elif plan.qtype == "date":
        for m in _DATE.finditer(text, sent.start, sent.end):
            spans.append(m.span())
            points.append((m.start(), m.end(), m.group(0), 1.0 if re.search(r"月|-", m.group(0)) else 0.3))
    return points, spans


def _label(text: str, sent: _Sentence, point: Point, spans: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The words that name a number/date: from its clause start (or the previous quantity) to a little after. A
    clause that opens with a predicate (…实现地区生产总值1300亿元，增长5.8%) inherits the subject of the clause
    before it."""
    s, e = point[0], point[1]
    cs, ce = _clause_of(sent, s)
    lo = max([cs] + [pe for ps, pe in spans if pe <= s])
    if lo == cs and text[cs:s].lstrip().startswith(rules().predicate_openers) and cs > sent.start:
        lo = _clause_of(sent, cs - 1)[0]
    hi = min([ce, e + 10] + [ps for ps, pe in spans if ps >= e])
    return lo, max(hi, e)


def _who_head(clause: str, plan: QueryPlan) -> str | None:
    for pattern in rules().who_patterns:
        if m := pattern.search(clause):
            head = m.group(1).strip("，,、 ")
            if head and not any(k in head for k in plan.keywords if len(k) >= 2):
                return head
    return None


def _idf_corpus(passages: Sequence[SearchResult], texts: Mapping[str, str]) -> list[str]:
    """Sentences of the whole reports the passages come from (the passages themselves when a text is missing)."""
    out: list[str] = []
    for doc_id in dict.fromkeys(p.doc_id for p in passages):
        if text := texts.get(doc_id):
            out += [text[s:e] for s, e in sentence_spans(text)]
        else:
            out += [p.text[s:e] for p in passages if p.doc_id == doc_id for s, e in sentence_spans(p.text)]
    return out


def _kind_fit(p: SearchResult, plan: QueryPlan) -> float:
    """A passage that states what the question asks for (a result, or a target) scores a little higher, one that
    states the other (a plan for a result question) lower."""
    if not p.kind:
        return 0.0
    return KIND_BONUS if p.kind == plan.kind else -KIND_PENALTY


def _candidates(plan: QueryPlan, passages: Sequence[SearchResult], texts: Mapping[str, str]
                ) -> tuple[list[_Candidate], _Scorer]:
    """Every candidate answer of the passages, best first."""
    sentences = [(p, s) for rank, p in enumerate(passages) for s in _split(p, rank)]
    following = {id(a): b for (pa, a), (pb, b) in zip(sentences, sentences[1:], strict=False) if pa is pb}
    scorer = _Scorer(plan, _idf_corpus(passages, texts))
    seen: set[tuple[str, int]] = set()
    cands: list[_Candidate] = []
    for p, sent in sentences:
        if (p.doc_id, p.start + sent.start) in seen:  # overlapping chunks repeat sentences
            continue
        seen.add((p.doc_id, p.start + sent.start))
        base = (0.2 * scorer.coverage(p.text[sent.start : sent.end])
                + 0.1 * (scorer.coverage(p.section) if p.section else 0.0)
                + 0.06 * (1 - sent.rank / max(1, len(passages)))
                + _kind_fit(p, plan))
        if plan.qtype in ("number", "date"):
            points, spans = _points(p.text, sent, plan)
            for point in points:
                lo, hi = _label(p.text, sent, point, spans)
                label = p.text[lo:hi]
                score = base + 0.45 * scorer.coverage(label) + 0.2 * scorer.run(label) + 0.1 * point[3]
                cands.append(_Candidate(score, sent.rank, sent, _clause_of(sent, point[0]), point[2]))
            continue
        for cs, ce in sent.clauses:
            clause = p.text[cs:ce]
            head = _who_head(clause, plan) if plan.qtype == "who" else None
            score = base + 0.45 * scorer.coverage(clause) + 0.2 * scorer.run(clause) + (0.1 if head else 0.0)
            cands.append(_Candidate(score, sent.rank, sent, (cs, ce), head, following.get(id(sent))))
    cands.sort(key=lambda c: (-c.score, c.rank, c.sentence.start, c.focus[0]))
    return cands, scorer


# ---------------------------------------------------------------------------------------------------------------
# extractive engine: shaping the answer
# ---------------------------------------------------------------------------------------------------------------


def _is_heading(text: str) -> bool:
    """A short title-like sentence (``四是法律顾问制度常态化。``, ``(二)坚持科学立法``): it names a topic, the
    sentences after it say what was done."""
    t = text.strip()
    return len(_HEADING.sub("", t)) <= 20 and (bool(_HEADING.match(t)) or not re.search(r"[。！？!?；;]$", t))


def _after_heading(cands: Sequence[_Candidate], best: _Candidate, text: str, scorer: _Scorer) -> _Candidate:
    """Among the clauses just after a heading (same passage), the one holding most of the keywords the heading
    does not hold; the earliest on ties."""
    h = best.sentence
    hk = key(text[h.start : h.end])
    residual = [(t, w) for t, _, w in scorer.terms if t not in hk]
    options = [c for c in cands if c.rank == best.rank and h.end <= c.sentence.start <= h.end + HEADING_REACH
               and not _is_heading(text[c.sentence.start : c.sentence.end])]
    if not options:
        return dataclasses.replace(best, sentence=best.follow, focus=best.follow.clauses[0]) if best.follow else best
    return max(options, key=lambda c: (sum(w for t, w in residual if t in key(text[c.focus[0] : c.focus[1]])),
                                       -c.focus[0]))


def _window(sent: _Sentence, focus: tuple[int, int], limit: int, before: int = 0) -> tuple[int, int]:
    """The focus clause widened by up to ``before`` clauses on the left and, on the right, as many clauses as fit
    in ``limit`` characters."""
    idx = next((i for i, c in enumerate(sent.clauses) if c[0] <= focus[0] < c[1]), 0)
    lo_i = idx
    while lo_i > 0 and idx - lo_i < before and focus[1] - sent.clauses[lo_i - 1][0] <= limit:
        lo_i -= 1
    lo, hi = sent.clauses[lo_i][0], focus[1]
    for _, e in sent.clauses[idx + 1 :]:
        if e - lo > limit:
            break
        hi = e
    return lo, hi


def _name_head(window: str, plan: QueryPlan) -> str | None:
    """A 《title》 or “name” in the answer whose kind is what the question asks for (哪部条例 -> 《…条例》),
    unless the question already names it."""
    m = rules().asks_name.search(plan.text)
    if not m:
        return None
    for t in _NAME.finditer(window):
        inner = t.group(0)[1:-1]
        if inner not in plan.text and inner[-2:] in m.group(1):
            return t.group(0)
    return None


def _skip_label(text: str, sent: _Sentence, lo: int, hi: int) -> int:
    """Start after a leading list-marker label clause (``三是加强发挥法律顾问作用，…``) when more follows."""
    for s, e in sent.clauses:
        if s == lo and e < hi and e - s <= 24 and _HEADING.match(text[s:e]):
            return e
    return lo


def _through_semicolons(text: str, s: int, e: int, limit: int) -> int:
    """The end of a citation ``text[s:e]`` that stops at a ；, carried on through the list it opens while the whole
    stays within ``limit`` characters (主要预期目标是：地区生产总值增长6%以上；一般公共预算收入增长6%，…)."""
    while e < len(text) and text[e - 1] in "；;":
        nxt = sentence_spans(text, e)[:1]
        if not nxt or nxt[0][1] - s > limit:
            break
        e = nxt[0][1]
    return e


def _citation(p: SearchResult, text: str | None, s: int, e: int) -> Citation | None:
    """Citation of the passage-local span [s, e) with offsets into the document text, verified (located in the
    document when the passage offsets do not point at it)."""
    raw = p.text[s:e]
    quote = raw.strip()
    if not quote or text is None:
        return None
    start = p.start + s + len(raw) - len(raw.lstrip())
    if text[start : start + len(quote)] == quote:
        return Citation(p.doc_id, p.source, p.section, quote, start, start + len(quote))
    ev = QuoteLocator(text).locate(quote, hint=max(0, p.start - 50))
    return Citation(p.doc_id, p.source, p.section, ev.quote, ev.start, ev.end) if ev else None


def answer_extractive(question: str, passages: Sequence[SearchResult], texts: Mapping[str, str],
                      plan: QueryPlan) -> Answer:
    """Extractive engine: the best-scoring clause of the passages the question's evidence allows
    (:meth:`QueryPlan.allows`: right years, named place and body), answer first, or a refusal."""
    passages = answerable_passages(plan, passages, texts)
    if not passages:
        return refusal(question, "extractive")
    cands, scorer = _candidates(plan, passages, texts)
    if not cands or cands[0].score < rules().min_score:
        return refusal(question, "extractive")
    best = cands[0]
    p = passages[best.rank]
    text = p.text
    if not best.head and _is_heading(text[best.sentence.start : best.sentence.end]):
        best = _after_heading(cands, best, text, scorer)  # a heading restates the question; what follows answers
    sent = best.sentence
    if best.head:
        lo, hi = _window(sent, best.focus, SUPPORT_CHARS)
        answer = f"{best.head}。{clip(text[lo:hi], SUPPORT_CHARS)}"
    else:
        lo, hi = _window(sent, best.focus, ANSWER_CHARS, before=1 if plan.qtype == "what" else 0)
        lo = _skip_label(text, sent, lo, hi)
        answer = clip(text[lo:hi], ANSWER_CHARS)
        if plan.qtype == "what" and (name := _name_head(text[lo:hi], plan)):
            answer = clip(f"{name}。{answer}", ANSWER_CHARS)
    cs, ce = (sent.start, sent.end) if sent.end - sent.start <= CITE_CHARS else _window(sent, (lo, hi), CITE_CHARS, 1)
    ce = _through_semicolons(text, cs, ce, CITE_CHARS)
    citation = _citation(p, texts.get(p.doc_id), cs, ce)
    if citation is None:
        log.warning("could not locate the answer sentence in document %s; refusing", p.doc_id)
        return refusal(question, "extractive")
    return Answer(question, answer, False, (citation,), "extractive")
