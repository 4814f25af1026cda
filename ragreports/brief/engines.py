"""The standard brief: one report -> the fixed template of spec/summary-template.md, every item with evidence.

Two engines share the template (:class:`~ragreports.brief.model.Brief`):

* ``extractive`` (default, offline, deterministic; :mod:`ragreports.brief.extractive`).
* ``llm`` (:mod:`ragreports.brief.llm`): the report's sections go to a chat model with ``prompts/brief.yaml``;
  every quote the model gives is located in the report; an item with a quote that is not found is dropped and
  counted. A reply that stays invalid after the bounded re-asks degrades to the extractive brief, with a warning.

Both engines keep out of the report's flagged text (:mod:`ragreports.text.flags`): the model is sent the report
with injected and unreadable text blanked out, and in the finished brief an evidence that touches flagged text is cut
to the readable pieces around it (an item left without evidence is dropped and counted in ``dropped_items``); key
figures quoted from flagged text are left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from ragreports.brief.cues import load_cues
from ragreports.brief.extractive import extractive_brief
from ragreports.brief.llm import llm_brief
from ragreports.brief.model import FIELDS, Brief, BriefItem, EvidenceModel
from ragreports.brief.units import EDGE_PUNCT
from ragreports.errors import ConfigError
from ragreports.llm.base import ChatModel
from ragreports.text.flags import outside, overlaps, text_flags
from ragreports.types import ENGINES, Document, Fact

MIN_PIECE = 6  # shortest readable piece kept as evidence


def summarize(doc: Document, facts: Sequence[Fact] = (), *, engine: str = "extractive",
              chat_model: ChatModel | None = None, prompts_dir: Path | None = None, reasks: int = 2,
              context_chars: int = 3500) -> Brief:
    """The standard brief of ``doc``; ``facts`` (from :func:`ragreports.extract.facts.extract_facts`) become
    ``key_figures``. ``engine="llm"`` needs ``chat_model`` and uses the ``brief`` prompt of ``prompts_dir``."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown brief engine {engine!r}; use extractive or llm")
    cues = load_cues()
    spans = text_flags(doc.text).excluded()
    if engine == "llm":
        shown = dataclasses.replace(doc, text=blank(doc.text, spans)) if spans else doc
        brief = llm_brief(shown, facts, chat_model=chat_model, prompts_dir=prompts_dir, reasks=reasks,
                          context_chars=context_chars, cues=cues)
    else:
        brief = extractive_brief(doc, facts, cues=cues)
    return keep_out(brief, doc.text, spans) if spans else brief


def blank(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` with the characters of ``spans`` replaced by spaces (line breaks kept): offsets do not move."""
    chars = list(text)
    for s, e in spans:
        for i in range(s, e):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


def _pieces(text: str, start: int, end: int, spans: Sequence[tuple[int, int]]) -> list[EvidenceModel]:
    out = []
    for s, e in outside(start, end, spans):
        while s < e and (text[s].isspace() or text[s] in EDGE_PUNCT):
            s += 1
        while e > s and (text[e - 1].isspace() or text[e - 1] in EDGE_PUNCT):
            e -= 1
        if e - s >= MIN_PIECE:
            out.append(EvidenceModel(quote=text[s:e], start=s, end=e))
    return out


def keep_out(brief: Brief, text: str, spans: Sequence[tuple[int, int]]) -> Brief:
    """``brief`` without flagged text: evidence cut to the readable pieces around ``spans``, item text without the
    flagged fragments, items left without evidence dropped (counted), key figures quoted from flagged text left out."""
    update: dict = {}
    dropped = 0
    for field in FIELDS:
        items: list[BriefItem] = []
        for it in getattr(brief, field):
            evidence = [piece for ev in it.evidence
                        for piece in (_pieces(text, ev.start, ev.end, spans)
                                      if overlaps(ev.start, ev.end, spans) else [ev])]
            if not evidence:
                dropped += 1
                continue
            words = it.text
            for s, e in spans:
                words = words.replace(text[s:e], "") if text[s:e].strip() else words
            items.append(it.model_copy(update={"evidence": evidence, "text": words.strip() or evidence[0].quote}))
        update[field] = items
    update["key_figures"] = [f for f in brief.key_figures if not overlaps(f.start, f.end, spans)]
    update["dropped_items"] = brief.dropped_items + dropped
    return brief.model_copy(update=update)
