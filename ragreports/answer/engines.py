"""Answering: a question and its retrieved passages -> a short answer with verified citations, or a refusal.

Two engines behind :func:`answer_question`:

* ``extractive`` (default, offline, deterministic; :mod:`ragreports.answer.extractive`): the best-scoring clause of
  the passages, answer first, citing the sentence it came from.
* ``llm`` (:mod:`ragreports.answer.llm`, a LangChain chain): the passages are packed under a token budget into
  ``prompts/answer.yaml`` as numbered, delimited data; the model returns JSON ``{answer, quotes, refused}``; every
  quote is located in the report text (exact, then normalised, then fuzzy) and must lie in a passage it was given;
  only verified quotes become citations, and every quantity the answer states must be stated by one of them.
  Otherwise, or with no valid JSON after the bounded re-asks: refusal. Never a crash, never an ungrounded claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ragreports.answer.extractive import answer_extractive
from ragreports.answer.llm import answer_llm
from ragreports.errors import ConfigError
from ragreports.llm.base import ChatModel
from ragreports.retrieve.query import QueryPlan, understand
from ragreports.types import ENGINES, Answer, SearchResult


def answer_question(question: str, passages: list[SearchResult], texts: Mapping[str, str], *,
                    plan: QueryPlan | None = None, engine: str = "extractive", chat_model: ChatModel | None = None,
                    prompts_dir: Path | None = None, context_tokens: int = 3000, reasks: int = 2,
                    callbacks: Sequence = ()) -> Answer:
    """Answer ``question`` from ``passages`` (retrieved chunks, best first); ``texts`` maps doc_id to the normalised
    document text every offset refers to. Refuses (``refused=True``, ``common.REFUSAL``, no citations) rather than
    guess. ``plan`` is the question as :func:`ragreports.retrieve.query.understand` read it (computed without
    routing when not given). The llm engine needs ``chat_model``; ``context_tokens`` bounds the passage text sent to
    it and ``reasks`` the re-asks after an invalid reply (settings.llm_context_tokens / llm_reasks); ``callbacks``
    (LangChain callback handlers, e.g. a live draft) see its calls, which then stream."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown answer engine {engine!r}; use extractive or llm")
    if plan is None:
        plan = understand(question, [])
    if engine == "extractive":
        return answer_extractive(question, passages, texts, plan)
    return answer_llm(question, passages, texts, plan, chat_model=chat_model, prompts_dir=prompts_dir,
                      context_tokens=context_tokens, reasks=reasks, callbacks=callbacks)
