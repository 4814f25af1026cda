"""The ``llm`` answer engine (``answer_question(..., engine="llm")``; ``Workspace.ask`` uses :func:`ask_llm`): one
LangChain chain, :func:`answer_chain`.

The retriever (a LangChain ``BaseRetriever``) finds the passages; they are packed under a token budget into
``prompts/answer.yaml`` (a ChatPromptTemplate) as numbered, delimited data; the chat model returns JSON
``{answer, quotes, refused}`` through ``with_structured_output`` (validated and re-asked a bounded number of times
by :func:`ragreports.llm.structured.structured_output`); every quote is located in the report text (exact, then
normalised, then fuzzy) and must lie in a passage it was given; only verified quotes become citations, and every
quantity the answer states must be stated by one of them. Otherwise, or with no valid JSON after the re-asks:
refusal. A provider failure is a ProviderError, never an answer.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragreports.answer.common import answerable_passages, checked, clip, guard_passages, is_injection, refusal
from ragreports.data import prompts_dir as packaged_prompts_dir
from ragreports.errors import ConfigError, StructuredOutputError
from ragreports.llm.base import ChatModel, invoke
from ragreports.llm.context import format_passages
from ragreports.llm.context import pack_passages as pack_texts
from ragreports.llm.prompts import load_prompt
from ragreports.llm.structured import structured_output
from ragreports.retrieve.hybrid import Retriever, SearchFilters, as_langchain_retriever
from ragreports.retrieve.query import QueryPlan, understand
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


def _refuse(x: dict) -> Answer:
    if x.get("error") is not None:
        log.warning("LLM answer refused: %s", x["error"])
    return refusal(x["question"], "llm", x["prompt"])


def _verify(x: dict) -> Answer:
    """The model's reply -> an answer whose citations are verified quotes, or a refusal."""
    reply: LLMReply = x["reply"]
    if reply.refused or not reply.answer.strip() or is_injection(reply.answer):
        return _refuse(x)
    citations = _verify_quotes(reply.quotes, x["used"], x["texts"])
    if not citations:
        log.info("LLM answer refused: none of its %d quote(s) could be located in the passages", len(reply.quotes))
        return _refuse(x)
    if not _numbers_grounded(reply.answer, citations):
        log.info("LLM answer refused: it states a quantity none of its verified quotes states")
        return _refuse(x)
    return Answer(x["question"], clip(reply.answer, 300), False, tuple(citations), "llm", x["prompt"])


def answer_chain(chat_model: ChatModel, *, prompts_dir: Path | None = None, context_tokens: int = 3000,
                 reasks: int = 2, stream: bool = False, retriever: Retriever | None = None, k: int = 5,
                 filters: SearchFilters | None = None, doc_text: Callable[[str], str] | None = None,
                 allow_flagged: bool = False):
    """The llm answer engine as one LangChain (LCEL) chain -> ``{"answer": Answer, "passages": [SearchResult]}``.

    With ``retriever`` the input is ``{"question"}`` and the chain starts with it as a LangChain ``BaseRetriever``
    (``k`` passages within ``filters``; ``doc_text(doc_id)`` gives the texts quotes are verified against); without,
    the input is ``{"question", "passages", "texts", "plan"}``. Then: passages packed under ``context_tokens`` ->
    ``prompts/answer.yaml`` as a ChatPromptTemplate -> the chat model with structured output and at most
    ``reasks`` re-asks (streamed with ``stream``) -> every quote verified in code. Only passages the question's
    evidence allows go to the model (:meth:`QueryPlan.allows`, :func:`missing_keywords`), cut around their report's
    flagged text (unreadable text always, text addressed to a model unless ``allow_flagged``); no citation may touch
    flagged text. No passage left, or no valid reply after the re-asks: refusal.
    """
    from langchain_core.runnables import RunnableBranch, RunnableLambda, RunnablePassthrough

    pdir = Path(prompts_dir) if prompts_dir else packaged_prompts_dir()
    prompt = load_prompt("answer", pdir)
    structured = structured_output(chat_model, LLMReply, reasks=reasks, stream=stream, prompts_dir=pdir)
    counter = TokenCounter()

    def retrieve(x: dict, config) -> dict:
        docs = lc_retriever.invoke(x["question"], config=config)
        passages = [SearchResult(text=d.page_content, **d.metadata) for d in docs]
        texts = {p.doc_id: doc_text(p.doc_id) for p in passages}
        return {**x, "passages": passages, "texts": texts, "plan": retriever.last_plan}

    def prepare(x: dict) -> dict:
        plan = x.get("plan") or understand(x["question"], [])
        usable, keep_out = guard_passages(x["passages"], x["texts"], allow_injection=allow_flagged)
        passages = answerable_passages(plan, usable, x["texts"])
        block, sources, used = prompt_passages(passages, context_tokens, counter)
        return {**x, "plan": plan, "allowed": passages, "keep_out": keep_out, "prompt": prompt.ref,
                "values": {"question": x["question"], "passages": block, "sources": sources}, "used": used}

    ask = RunnablePassthrough.assign(reply=(lambda x: x["values"]) | prompt.to_langchain() | structured)
    model_path = (ask | RunnableLambda(_verify)).with_fallbacks(
        [RunnableLambda(_refuse)], exceptions_to_handle=(StructuredOutputError,), exception_key="error")
    answer = RunnableBranch((lambda x: not x["allowed"], RunnableLambda(_refuse)), model_path)
    chain = RunnableLambda(prepare) | RunnablePassthrough.assign(answer=answer) | \
        (lambda x: {"answer": checked(x["answer"], x["plan"], x["keep_out"], x["passages"]), "passages": x["passages"]})
    if retriever is None:
        return chain
    if doc_text is None:
        raise ConfigError("answer_chain with a retriever needs doc_text(doc_id) to verify quotes against")
    lc_retriever = as_langchain_retriever(retriever, k=k, filters=filters or SearchFilters())
    return RunnableLambda(retrieve, name="retrieve") | chain


def answer_llm(question: str, passages: Sequence[SearchResult], texts: Mapping[str, str], plan: QueryPlan | None,
               *, chat_model: ChatModel | None, prompts_dir: Path | None, context_tokens: int, reasks: int = 2,
               callbacks: Sequence = (), allow_flagged: bool = False) -> Answer:
    """LLM engine on passages already retrieved: a JSON answer; only verified quotes become citations.
    ``callbacks`` (LangChain handlers, e.g. a live draft) are called too, and the model streams to them."""
    chat_model = _need(chat_model)
    chain = answer_chain(chat_model, prompts_dir=prompts_dir, context_tokens=context_tokens, reasks=reasks,
                         stream=bool(callbacks), allow_flagged=allow_flagged)
    value = {"question": question, "passages": list(passages), "texts": texts, "plan": plan}
    return invoke(chain, value, chat_model, chat_model.config(_ref(prompts_dir), callbacks))["answer"]


def ask_llm(question: str, retriever: Retriever, *, k: int, filters: SearchFilters, doc_text: Callable[[str], str],
            chat_model: ChatModel | None, prompts_dir: Path | None, context_tokens: int, reasks: int = 2,
            callbacks: Sequence = (), allow_flagged: bool = False) -> tuple[Answer, list[SearchResult]]:
    """Retrieve and answer in one chain (``answer_chain`` with the retriever): (answer, passages retrieved)."""
    chat_model = _need(chat_model)
    chain = answer_chain(chat_model, prompts_dir=prompts_dir, context_tokens=context_tokens, reasks=reasks,
                         stream=bool(callbacks), retriever=retriever, k=k, filters=filters, doc_text=doc_text,
                         allow_flagged=allow_flagged)
    out = invoke(chain, {"question": question}, chat_model, chat_model.config(_ref(prompts_dir), callbacks))
    return out["answer"], out["passages"]


def _ref(prompts_dir: Path | None) -> str:
    return load_prompt("answer", Path(prompts_dir) if prompts_dir else packaged_prompts_dir()).ref


def _need(chat_model: ChatModel | None) -> ChatModel:
    if chat_model is None:
        raise ConfigError("engine 'llm' needs a chat model: set RAGREPORTS_LLM (e.g. openai:gpt-4o-mini) or use "
                          "the extractive engine")
    return chat_model
