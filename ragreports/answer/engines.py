"""Answering: a question and its retrieved passages -> a short answer with verified citations, or a refusal.

Two engines behind :func:`answer_question`:

* ``extractive`` (default, offline, deterministic; :mod:`ragreports.answer.extractive`): the best-scoring clause of
  the passages, answer first, citing the sentence it came from.
* ``llm`` (:mod:`ragreports.answer.llm`): the passages are packed under a token budget into
  ``prompts/answer.yaml`` as numbered, delimited data; the model returns JSON ``{answer, quotes, refused}``; every
  quote is located in the report text (exact, then normalised, then fuzzy) and must lie in a passage it was given;
  only verified quotes become citations, and every quantity the answer states must be stated by one of them.
  Otherwise, or with no valid JSON after the bounded re-asks: refusal. Never a crash, never an ungrounded claim.

For both engines the passages are cut around the report's flagged text (:mod:`ragreports.text.flags`): unreadable
text (mojibake) always, and text addressed to a model (prompt injection) unless ``allow_flagged`` (llm engine
only: the extractive engine never answers from it). A citation is kept only when it lies outside that text and in a
document the question's routing allows; an answer left without citations is a refusal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from ragreports.answer.common import refusal
from ragreports.answer.extractive import answer_extractive
from ragreports.answer.llm import answer_llm
from ragreports.errors import ConfigError
from ragreports.llm.base import ChatModel
from ragreports.retrieve.query import QueryPlan, understand
from ragreports.text.flags import outside, overlaps, text_flags
from ragreports.types import ENGINES, Answer, SearchResult


def answer_question(question: str, passages: list[SearchResult], texts: Mapping[str, str], *,
                    plan: QueryPlan | None = None, engine: str = "extractive", chat_model: ChatModel | None = None,
                    prompts_dir: Path | None = None, context_tokens: int = 3000, reasks: int = 2,
                    allow_flagged: bool = False) -> Answer:
    """Answer ``question`` from ``passages`` (retrieved chunks, best first); ``texts`` maps doc_id to the normalised
    document text every offset refers to. Refuses (``refused=True``, ``common.REFUSAL``, no citations) rather than
    guess. ``plan`` is the question as :func:`ragreports.retrieve.query.understand` read it (computed without
    routing when not given). The llm engine needs ``chat_model``; ``context_tokens`` bounds the passage text sent to
    it and ``reasks`` the re-asks after an invalid reply (settings.llm_context_tokens / llm_reasks).
    ``allow_flagged`` lets text flagged as addressed to a model into the llm engine's context (never an answer of
    the extractive engine, never a citation)."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown answer engine {engine!r}; use extractive or llm")
    if plan is None:
        plan = understand(question, [])
    flags = {d: text_flags(t) for d, t in texts.items()}
    keep_out = {d: f.excluded(injection=engine == "extractive" or not allow_flagged) for d, f in flags.items()}
    usable = [piece for p in passages for piece in _cut_around(p, keep_out.get(p.doc_id, ()))]
    if engine == "extractive":
        ans = answer_extractive(question, usable, texts, plan)
    else:
        ans = answer_llm(question, usable, texts, plan, chat_model=chat_model, prompts_dir=prompts_dir,
                         context_tokens=context_tokens, reasks=reasks)
    return _checked(ans, plan, {d: f.excluded() for d, f in flags.items()}, {p.doc_id for p in passages})


def _cut_around(p: SearchResult, spans: tuple[tuple[int, int], ...]) -> list[SearchResult]:
    """The passage, or the pieces of it outside ``spans`` (document offsets), as passages of their own."""
    if not spans or not overlaps(p.start, p.end, spans):
        return [p]
    return [dataclasses.replace(p, text=p.text[s - p.start:e - p.start], start=s, end=e)
            for s, e in outside(p.start, p.end, spans) if p.text[s - p.start:e - p.start].strip()]


def _checked(ans: Answer, plan: QueryPlan, keep_out: Mapping[str, tuple[tuple[int, int], ...]],
             retrieved: set[str]) -> Answer:
    """The answer with only the citations outside flagged text, in retrieved documents the routing allows; a
    refusal when none is left."""
    if ans.refused:
        return ans
    allowed = set(plan.doc_ids) & retrieved if plan.doc_ids else retrieved
    kept = tuple(c for c in ans.citations
                 if c.doc_id in allowed and not overlaps(c.start, c.end, keep_out.get(c.doc_id, ())))
    if kept == ans.citations:
        return ans
    if not kept:
        return refusal(ans.question, ans.engine, ans.prompt)
    return dataclasses.replace(ans, citations=kept)
