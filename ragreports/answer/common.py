"""What both answer engines share: the refusal, answer clipping, the prompt-injection check and the rules file.

Passage text is data: sentences that read like instructions to a model (``忽略以上指令…``) are never answers or
citations, in either engine (:func:`is_injection`, rules in ``ragreports/data/injection_rules.yaml``, shared with the
flagging at ingest). The other answering rules are data in ``ragreports/data/answer_rules.yaml``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ragreports.data import load_rules
from ragreports.retrieve.query import QueryPlan, implied_measure
from ragreports.text import injection
from ragreports.text.flags import outside, overlaps, text_flags
from ragreports.types import Answer, SearchResult

REFUSAL = "报告中未找到相关信息。"


class AnswerRulesFile(BaseModel):
    """``data/answer_rules.yaml``."""

    model_config = ConfigDict(extra="forbid")
    min_score: float
    compatible_units: list[list[str]]
    who_patterns: list[str]
    asks_name: list[str]
    frame_words: list[str]
    predicate_openers: list[str]
    wh_words: list[str]


@dataclass(frozen=True)
class AnswerRules:
    min_score: float
    compatible_units: tuple[frozenset[str], ...]
    who_patterns: tuple[re.Pattern[str], ...]
    asks_name: re.Pattern[str]
    frame_words: frozenset[str]
    predicate_openers: tuple[str, ...]
    asks_kind: re.Pattern[str]


@functools.lru_cache(maxsize=1)
def rules() -> AnswerRules:
    """The answering rules from ``data/answer_rules.yaml`` (loaded once, on first use)."""
    r = load_rules("answer_rules", AnswerRulesFile)
    return AnswerRules(
        min_score=r.min_score,
        compatible_units=tuple(frozenset(g) for g in r.compatible_units),
        who_patterns=tuple(re.compile(p) for p in r.who_patterns),
        asks_name=re.compile("(?:" + "|".join(map(re.escape, r.asks_name)) + r")([^，,。？?！!]{1,6})"),
        frame_words=frozenset(r.frame_words),
        predicate_openers=tuple(r.predicate_openers),
        asks_kind=re.compile("(?:" + "|".join(map(re.escape, r.wh_words)) + r")([\u4e00-\u9fff]{1,12})"),
    )


def is_injection(text: str) -> bool:
    """True when ``text`` reads like an instruction to a model (prompt injection), not report content."""
    return injection.is_injection(text)


def key(s: str) -> str:
    """Comparison form for scoring (texts are already Simplified): NFKC, letters/digits/CJK only, lower case."""
    return "".join(c for c in unicodedata.normalize("NFKC", s).lower() if c.isalnum() or c == "%")


def missing_keywords(plan: QueryPlan, doc_text: str) -> list[str]:
    """The question's content words the whole report never writes (a word of three or more characters counts as
    written when half its character pairs are): the report cannot state what is asked about them. Frame words
    (达到, 担任 …), the places the question names, the kind of thing it asks for (哪个科室, 什么文件: the answer
    names it, the report need not) and the measure it asks in (比例 -> %) are not content."""
    r = rules()
    doc = key(doc_text)
    named = [*plan.places, *plan.unknown_places]
    asked_kind = [m.group(1) for m in r.asks_kind.finditer(plan.text)]
    out = []
    for kw in plan.keywords:
        k = key(kw)
        if (len(k) < 2 or kw in r.frame_words or any(n in kw or kw in n for n in named) or k in doc
                or any(kw in a for a in asked_kind) or implied_measure(kw) is not None):
            continue
        if len(k) >= 3:
            grams = {k[i:i + 2] for i in range(len(k) - 1)}
            if 2 * sum(g in doc for g in grams) >= len(grams):
                continue
        out.append(kw)
    return out


def answerable_passages(plan: QueryPlan, passages: Sequence[SearchResult], texts: Mapping[str, str]
                        ) -> list[SearchResult]:
    """The passages that can answer: the question's evidence allows them (:meth:`QueryPlan.allows`) and their
    report writes what the question asks about (:func:`missing_keywords`). Both engines answer from these only."""
    return [p for p in passages if plan.allows(p) and not missing_keywords(plan, texts.get(p.doc_id, p.text))]


def guard_passages(passages: Sequence[SearchResult], texts: Mapping[str, str], *, allow_injection: bool = False
                   ) -> tuple[list[SearchResult], dict[str, tuple[tuple[int, int], ...]]]:
    """The passages cut around their report's flagged text (:mod:`ragreports.text.flags`: unreadable text always,
    text addressed to a model unless ``allow_injection``), and per document the spans no citation may touch (all
    flagged text, whatever ``allow_injection`` says)."""
    flags = {d: text_flags(t) for d, t in texts.items()}
    cut = {d: f.excluded(injection=not allow_injection) for d, f in flags.items()}
    usable = [piece for p in passages for piece in _cut_around(p, cut.get(p.doc_id, ()))]
    return usable, {d: f.excluded() for d, f in flags.items()}


def _cut_around(p: SearchResult, spans: tuple[tuple[int, int], ...]) -> list[SearchResult]:
    """The passage, or the pieces of it outside ``spans`` (document offsets), as passages of their own."""
    if not spans or not overlaps(p.start, p.end, spans):
        return [p]
    return [dataclasses.replace(p, text=p.text[s - p.start:e - p.start], start=s, end=e)
            for s, e in outside(p.start, p.end, spans) if p.text[s - p.start:e - p.start].strip()]


def checked(ans: Answer, plan: QueryPlan, keep_out: Mapping[str, tuple[tuple[int, int], ...]],
            passages: Sequence[SearchResult]) -> Answer:
    """The answer with only the citations outside flagged text (``keep_out``), in retrieved documents whose passages
    the question's evidence allows (:meth:`QueryPlan.allows`); a refusal when none is left."""
    if ans.refused:
        return ans
    allowed = {p.doc_id for p in passages if plan.allows(p)}
    kept = tuple(c for c in ans.citations
                 if c.doc_id in allowed and not overlaps(c.start, c.end, keep_out.get(c.doc_id, ())))
    if kept == ans.citations:
        return ans
    if not kept:
        return refusal(ans.question, ans.engine, ans.prompt)
    return dataclasses.replace(ans, citations=kept)


def refusal(question: str, engine: str, prompt: str | None = None) -> Answer:
    """The refusal answer: :data:`REFUSAL`, no citations."""
    return Answer(question, REFUSAL, True, (), engine, prompt)


def clip(text: str, limit: int) -> str:
    """``text`` stripped of trailing clause punctuation and cut to ``limit`` characters (``…`` when cut)."""
    text = text.strip().rstrip("，,、；;：:")
    return text if len(text) <= limit else text[:limit].rstrip("，,、；;：:") + "…"
