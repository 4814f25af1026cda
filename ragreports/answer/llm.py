"""The ``llm`` answer engine (``answer_question(..., engine="llm")``, :mod:`ragreports.answer.engines`).

The passages are packed under a token budget into ``prompts/answer.yaml`` as numbered, delimited data; the model
returns JSON ``{answer, quotes, refused}`` (parsed, validated and re-asked a bounded number of times by
:func:`ragreports.llm.structured.complete_structured`); every quote is located in the report text (exact, then
normalised,
then fuzzy) and must lie in a passage it was given; only verified quotes become citations, and every quantity the
answer states must be stated by one of them. Otherwise, or with no valid JSON after the re-asks: refusal.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragreports.answer.common import clip, is_injection, missing_keywords, refusal
from ragreports.data import prompts_dir as packaged_prompts_dir
from ragreports.errors import ConfigError, StructuredOutputError
from ragreports.llm.context import format_passages
from ragreports.llm.context import pack_passages as pack_texts
from ragreports.llm.prompts import load_prompt
from ragreports.llm.structured import complete_structured
from ragreports.retrieve.query import QueryPlan
from ragreports.text.grounding import QuoteLocator
from ragreports.text.numbers import iter_quantities
from ragreports.text.tokens import TokenCounter
from ragreports.types import Answer, Citation, SearchResult

log = logging.getLogger("ragreports.answer")  # the answer stage's logger, whichever engine answers


class LLMQuote(BaseModel):
    model_config = ConfigDict(extra="ignore")

    passage: int | None = None
    text: str


class LLMReply(BaseModel):
    """What the model must return (prompts/answer.yaml). Quotes may be strings or {passage, text} objects."""

    model_config = ConfigDict(extra="ignore")

    answer: str = ""
    quotes: list[LLMQuote] = Field(default_factory=list)
    refused: bool = False

    @field_validator("quotes", mode="before")
    @classmethod
    def _quotes(cls, v):
        if v is None:
            return []
        if not isinstance(v, list):
            raise ValueError("quotes must be a list of strings or {passage, text} objects")
        out = []
        for q in v:
            if isinstance(q, str):
                out.append({"text": q})
            elif isinstance(q, dict):
                out.append({"passage": q.get("passage"), "text": q.get("text") or q.get("quote") or ""})
            else:
                raise ValueError("each quote must be a string or an object with passage and text")
        return out


_FRAME = re.compile(r"<(/?)passage", re.I)


def prompt_passages(passages: Sequence[SearchResult], budget: int, counter) -> tuple[str, str, list[SearchResult]]:
    """The passages for the prompt, within ``budget`` tokens of passage text (``llm.context.pack_passages``: the
    last kept passage is cut at a sentence end, a first passage too long is cut, never dropped).

    Returns the numbered ``<passage id="N">`` blocks (``llm.context.format_passages``), their sources (one line per
    passage: file and section) and the kept passages with their ``text``/``end`` cut to what the model saw. Passage
    tags inside passage text are defused so a passage cannot close its frame."""
    kept = pack_texts([_FRAME.sub(r"‹\1passage", p.text) for p in passages], budget, counter)
    used = [dataclasses.replace(p, text=p.text[: len(k)], end=p.start + len(k))
            for p, k in zip(passages, kept, strict=False)]
    sources = "\n".join(f"[{i}] {Path(p.source).name}" + (f" ｜ {p.section}" if p.section else "")
                         for i, p in enumerate(used, 1))
    return format_passages(kept), sources, used


def _verify_quotes(quotes: Sequence[LLMQuote], used: Sequence[SearchResult], texts: Mapping[str, str]
                   ) -> list[Citation]:
    """Locate each quote in the document of its passage (then of the others); keep those inside a given passage
    and not instruction-like."""
    locators: dict[str, QuoteLocator] = {}
    out: list[Citation] = []
    for q in quotes:
        quote = q.text.strip()
        if not quote or is_injection(quote):
            continue
        order = list(used)
        if q.passage is not None and 1 <= q.passage <= len(used):
            order.insert(0, order.pop(q.passage - 1))
        for p in order:
            if (text := texts.get(p.doc_id)) is None:
                continue
            ev = locators.setdefault(p.doc_id, QuoteLocator(text)).locate(quote, hint=p.start)
            if ev is None or is_injection(ev.quote):
                continue
            inside = [u for u in used if u.doc_id == p.doc_id and ev.start < u.end and ev.end > u.start]
            if inside:
                c = Citation(p.doc_id, p.source, inside[0].section, ev.quote, ev.start, ev.end)
                if c not in out:
                    out.append(c)
                break
    return out


def _numbers_grounded(answer: str, citations: Sequence[Citation]) -> bool:
    """Every quantity the answer states (years aside) is stated by one of the verified quotes."""
    quoted = {(q.value, q.unit) for c in citations for q in iter_quantities(c.quote)}
    return all((q.value, q.unit) in quoted for q in iter_quantities(answer) if q.unit != "年")


def answer_llm(question: str, passages: Sequence[SearchResult], texts: Mapping[str, str], plan: QueryPlan, *,
               chat_model, prompts_dir: Path | None, context_tokens: int, reasks: int = 2) -> Answer:
    """LLM engine: a JSON answer from numbered passages; only verified quotes become citations."""
    if chat_model is None:
        raise ConfigError("engine 'llm' needs a chat model: set RAGREPORTS_LLM (e.g. openai:gpt-4o-mini) or use "
                          "the extractive engine")
    prompts_dir = Path(prompts_dir) if prompts_dir else packaged_prompts_dir()
    prompt = load_prompt("answer", prompts_dir)
    # only passages the question's evidence allows, from reports that write what it asks about
    passages = [p for p in passages if plan.allows(p) and not missing_keywords(plan, texts.get(p.doc_id, p.text))]
    if not passages:
        return refusal(question, "llm", prompt.ref)
    block, sources, used = prompt_passages(passages, context_tokens, TokenCounter())
    messages = prompt.messages(question=question, passages=block, sources=sources)
    try:
        reply = complete_structured(chat_model, messages, LLMReply, reasks=reasks, prompt=prompt.ref,
                                    prompts_dir=prompts_dir)
    except StructuredOutputError as exc:
        log.warning("LLM answer refused: %s", exc)
        return refusal(question, "llm", prompt.ref)
    if reply.refused or not reply.answer.strip() or is_injection(reply.answer):
        return refusal(question, "llm", prompt.ref)
    citations = _verify_quotes(reply.quotes, used, texts)
    if not citations:
        log.info("LLM answer refused: none of its %d quote(s) could be located in the passages", len(reply.quotes))
        return refusal(question, "llm", prompt.ref)
    if not _numbers_grounded(reply.answer, citations):
        log.info("LLM answer refused: it states a quantity none of its verified quotes states")
        return refusal(question, "llm", prompt.ref)
    return Answer(question, clip(reply.answer, 300), False, tuple(citations), "llm", prompt.ref)

