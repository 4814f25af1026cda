"""The standard brief: one report -> the fixed template of spec/summary-template.md, every item with evidence.

Two engines share the template (:class:`~ragreports.brief.model.Brief`):

* ``extractive`` (default, offline, deterministic; :mod:`ragreports.brief.extractive`).
* ``llm`` (:mod:`ragreports.brief.llm`): the report's sections go to a chat model with ``prompts/brief.yaml``;
  every quote the model gives is located in the report; an item with a quote that is not found is dropped and
  counted. A reply that stays invalid after the bounded re-asks degrades to the extractive brief, with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ragreports.brief.cues import load_cues
from ragreports.brief.extractive import extractive_brief
from ragreports.brief.llm import llm_brief
from ragreports.brief.model import Brief
from ragreports.errors import ConfigError
from ragreports.llm.base import ChatModel
from ragreports.types import ENGINES, Document, Fact


def summarize(doc: Document, facts: Sequence[Fact] = (), *, engine: str = "extractive",
              chat_model: ChatModel | None = None, prompts_dir: Path | None = None, reasks: int = 2,
              context_chars: int = 3500) -> Brief:
    """The standard brief of ``doc``; ``facts`` (from :func:`ragreports.extract.facts.extract_facts`) become
    ``key_figures``. ``engine="llm"`` needs ``chat_model`` and uses the ``brief`` prompt of ``prompts_dir``."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown brief engine {engine!r}; use extractive or llm")
    cues = load_cues()
    if engine == "llm":
        return llm_brief(doc, facts, chat_model=chat_model, prompts_dir=prompts_dir, reasks=reasks,
                         context_chars=context_chars, cues=cues)
    return extractive_brief(doc, facts, cues=cues)
