"""The ``llm`` engine of the standard brief (``summarize(..., engine="llm")``, :mod:`ragreports.brief.engines`): one
LangChain chain, :func:`brief_chain`.

The report is sent to a chat model with ``prompts/brief.yaml``, one part at a time (top-level sections packed to
``context_chars``). The reply comes through ``with_structured_output`` and is validated as :class:`LLMBrief` by
:func:`ragreports.llm.structured.structured_output` (bounded re-asks, then ``StructuredOutputError``). Every quote the
model gives is located in the report (:class:`~ragreports.text.grounding.QuoteLocator`); an item with a quote that is
not found is dropped and counted. A reply that stays invalid after the re-asks degrades to the extractive brief,
with a warning; a provider failure is a ProviderError.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from ragreports.brief.cues import Cues, load_cues
from ragreports.brief.extractive import brief_base, choose_topic, extractive_brief
from ragreports.brief.model import FIELDS, Brief, BriefItem, EvidenceModel, GeneratedBy
from ragreports.data import prompts_dir as packaged_prompts_dir
from ragreports.errors import ConfigError, StructuredOutputError
from ragreports.llm.base import ChatModel, invoke
from ragreports.llm.prompts import load_prompt
from ragreports.llm.structured import structured_output
from ragreports.text.grounding import QuoteLocator
from ragreports.text.outline import parse_outline
from ragreports.types import Document, Fact

log = logging.getLogger("ragreports.brief")  # the brief's logger, whichever engine writes it

PROMPT_NAME = "brief"


class LLMItem(BaseModel):
    """One item as the model writes it: quotes are copied verbatim from the report."""

    topic: str | None = None
    text: str = Field(min_length=1)
    quotes: list[str] = Field(min_length=1)


class LLMBrief(BaseModel):
    """The JSON object the brief prompt asks for."""

    measures: list[LLMItem] = Field(default_factory=list)
    leadership: list[LLMItem] = Field(default_factory=list)
    shortcomings: list[LLMItem] = Field(default_factory=list)
    next_year: list[LLMItem] = Field(default_factory=list)
    other: list[LLMItem] = Field(default_factory=list)


def report_parts(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Spans of the report to send one at a time: top-level sections, packed or cut at lines to ``max_chars``."""
    top = min((h.level for h in parse_outline(text)), default=1)
    cuts = sorted({0, *(h.start for h in parse_outline(text) if h.level == top), len(text)})
    pieces: list[tuple[int, int]] = []
    for s, e in zip(cuts, cuts[1:], strict=False):
        while e - s > max_chars:  # cut an overlong section at the last line end (or sentence end) in budget
            window = text[s:s + max_chars]
            cut = max(window.rfind("\n"), window.rfind("。"))
            cut = s + (cut + 1 if cut > max_chars // 4 else max_chars)
            pieces.append((s, cut))
            s = cut
        pieces.append((s, e))
    parts: list[tuple[int, int]] = []
    for s, e in pieces:
        if parts and e - parts[-1][0] <= max_chars:
            parts[-1] = (parts[-1][0], e)
        elif text[s:e].strip():
            parts.append((s, e))
    return parts


def brief_chain(chat_model: ChatModel, *, prompts_dir: Path | None = None, reasks: int = 2,
                context_chars: int = 3500, cues: Cues | None = None):
    """The llm brief engine as one LangChain (LCEL) chain: report text -> ``(items per field, dropped count)``.

    The report's parts (:func:`report_parts`) each go through ``prompts/brief.yaml`` (a ChatPromptTemplate) -> the
    chat model with structured output (:class:`LLMBrief`, at most ``reasks`` re-asks; then StructuredOutputError);
    every quote is then located in the report, and an item with a quote that is not found is dropped and counted.
    """
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    cues = cues or load_cues()
    pdir = Path(prompts_dir) if prompts_dir else packaged_prompts_dir()
    prompt = load_prompt(PROMPT_NAME, pdir)
    structured = structured_output(chat_model, LLMBrief, reasks=reasks, prompts_dir=pdir)
    topics = "、".join(cues.topics)

    def parts(text: str) -> list[dict]:
        return [{"text": text, "start": s, "end": e} for s, e in report_parts(text, context_chars)]

    def verify(replies: list[dict]) -> tuple[dict[str, list[BriefItem]], int]:
        out: dict[str, list[BriefItem]] = {f: [] for f in FIELDS}
        dropped = 0
        locator = QuoteLocator(replies[0]["text"]) if replies else None
        for part in replies:
            for field in FIELDS:
                for it in getattr(part["reply"], field):
                    evs = [locator.locate(q, hint=part["start"]) for q in it.quotes]
                    if not evs or any(ev is None for ev in evs):
                        dropped += 1
                        log.info("dropped a %s item whose quote is not in the report: %r", field, it.quotes)
                        continue
                    topic = it.topic if it.topic in cues.topics else None
                    if field == "measures" and topic is None:
                        topic = choose_topic("", (), it.text + " ".join(ev.quote for ev in evs), cues)
                    out[field].append(BriefItem(topic=topic if field == "measures" else None, text=it.text.strip(),
                                                evidence=[EvidenceModel(**ev.to_dict()) for ev in evs]))
        return out, dropped

    ask = RunnablePassthrough.assign(reply=(lambda p: {"topics": topics, "report": p["text"][p["start"]:p["end"]]})
                                     | prompt.to_langchain() | structured)
    return RunnableLambda(parts) | ask.map() | RunnableLambda(verify)


def llm_items(text: str, chat_model: ChatModel, *, prompts_dir: Path | None, reasks: int = 2,
              context_chars: int = 3500,
              cues: Cues | None = None) -> tuple[dict[str, list[BriefItem]], int, str]:
    """(items per field, dropped item count, prompt ref) from :func:`brief_chain`; quotes are located, never
    trusted. The parts go to the model one at a time, in order.

    Raises ``StructuredOutputError`` when a part's reply stays invalid after ``reasks`` re-asks.
    """
    pdir = Path(prompts_dir) if prompts_dir else packaged_prompts_dir()
    ref = load_prompt(PROMPT_NAME, pdir).ref
    chain = brief_chain(chat_model, prompts_dir=pdir, reasks=reasks, context_chars=context_chars, cues=cues)
    items, dropped = invoke(chain, text, chat_model, {**chat_model.config(ref), "max_concurrency": 1})
    return items, dropped, ref


def llm_brief(doc: Document, facts: Sequence[Fact] = (), *, chat_model, prompts_dir: Path | None = None,
              reasks: int = 2, context_chars: int = 3500, cues: Cues | None = None) -> Brief:
    """The standard brief of ``doc`` written by ``chat_model``; called by ``summarize(..., engine="llm")``.

    If a reply stays invalid after the re-asks, the extractive brief is returned instead, with a RuntimeWarning
    (attributed to the caller of ``summarize``) and the same message in ``Brief.warnings``.
    """
    if chat_model is None:
        raise ConfigError("the llm brief engine needs a chat model: set RAGREPORTS_LLM (e.g. openai:gpt-4o-mini)")
    cues = cues or load_cues()
    try:
        items, dropped, ref = llm_items(doc.text, chat_model, prompts_dir=prompts_dir, reasks=reasks,
                                        context_chars=context_chars, cues=cues)
    except StructuredOutputError as exc:
        msg = f"the model's brief could not be parsed ({exc}); fell back to the extractive brief"
        warnings.warn(msg, RuntimeWarning, stacklevel=3)  # llm_brief <- summarize <- its caller
        log.warning(msg)
        return extractive_brief(doc, facts, cues=cues, notes=[msg])
    return Brief(**brief_base(doc, facts), **items, dropped_items=dropped,
                 generated_by=GeneratedBy(model=chat_model.name, prompt=ref, engine="llm"))

