"""Answering: a question and its retrieved passages -> a short answer with verified citations, or a refusal.

Two engines behind :func:`answer_question`:

* ``extractive`` (default, offline, deterministic; :mod:`ragreports.answer.extractive`): the best-scoring clause of
  the passages, answer first, citing the sentence it came from.
* ``llm`` (:mod:`ragreports.answer.llm`, a LangChain chain): the passages are packed under a token budget into
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

from collections.abc import Mapping, Sequence
from pathlib import Path

from ragreports.answer.common import checked, guard_passages
from ragreports.answer.extractive import answer_extractive
from ragreports.answer.llm import answer_llm
from ragreports.errors import ConfigError
from ragreports.llm.base import ChatModel
from ragreports.retrieve.query import QueryPlan, understand
from ragreports.types import ENGINES, Answer, SearchResult


def answer_question(question: str, passages: list[SearchResult], texts: Mapping[str, str], *,
                    plan: QueryPlan | None = None, engine: str = "extractive", chat_model: ChatModel | None = None,
                    prompts_dir: Path | None = None, context_tokens: int = 3000, reasks: int = 2,
                    callbacks: Sequence = (), allow_flagged: bool = False) -> Answer:
    """Answer ``question`` from ``passages`` (retrieved chunks, best first); ``texts`` maps doc_id to the normalised
    document text every offset refers to. Refuses (``refused=True``, ``common.REFUSAL``, no citations) rather than
    guess. ``plan`` is the question as :func:`ragreports.retrieve.query.understand` read it (computed without
    routing when not given). The llm engine needs ``chat_model``; ``context_tokens`` bounds the passage text sent to
    it and ``reasks`` the re-asks after an invalid reply (settings.llm_context_tokens / llm_reasks); ``callbacks``
    (LangChain callback handlers, e.g. a live draft) see its calls, which then stream. ``allow_flagged`` lets text
    flagged as addressed to a model into the llm engine's context (never an answer of the extractive engine, never a
    citation)."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown answer engine {engine!r}; use extractive or llm")
    if plan is None:
        plan = understand(question, [])
    if engine == "llm":
        return answer_llm(question, passages, texts, plan, chat_model=chat_model, prompts_dir=prompts_dir,
                          context_tokens=context_tokens, reasks=reasks, callbacks=callbacks,
                          allow_flagged=allow_flagged)
    usable, keep_out = guard_passages(passages, texts)
    return checked(answer_extractive(question, usable, texts, plan), plan, keep_out, passages)
