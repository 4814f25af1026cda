"""What both answer engines share: the refusal, answer clipping, the prompt-injection check and the rules file.

Passage text is data: sentences that read like instructions to a model (``忽略以上指令…``) are never answers or
citations, in either engine (:func:`is_injection`, rules in ``ragreports/data/injection_rules.yaml``, shared with the
flagging at ingest). The other answering rules are data in ``ragreports/data/answer_rules.yaml``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ragreports.data import load_rules
from ragreports.text import injection
from ragreports.types import Answer

REFUSAL = "报告中未找到相关信息。"


class AnswerRulesFile(BaseModel):
    """``data/answer_rules.yaml``."""

    model_config = ConfigDict(extra="forbid")
    min_score: float
    compatible_units: list[list[str]]
    who_patterns: list[str]
    asks_name: list[str]


@dataclass(frozen=True)
class AnswerRules:
    min_score: float
    compatible_units: tuple[frozenset[str], ...]
    who_patterns: tuple[re.Pattern[str], ...]
    asks_name: re.Pattern[str]


@functools.lru_cache(maxsize=1)
def rules() -> AnswerRules:
    """The answering rules from ``data/answer_rules.yaml`` (loaded once, on first use)."""
    r = load_rules("answer_rules", AnswerRulesFile)
    return AnswerRules(
        min_score=r.min_score,
        compatible_units=tuple(frozenset(g) for g in r.compatible_units),
        who_patterns=tuple(re.compile(p) for p in r.who_patterns),
        asks_name=re.compile("(?:" + "|".join(map(re.escape, r.asks_name)) + r")([^，,。？?！!]{1,6})"),
    )


def is_injection(text: str) -> bool:
    """True when ``text`` reads like an instruction to a model (prompt injection), not report content."""
    return injection.is_injection(text)


def refusal(question: str, engine: str, prompt: str | None = None) -> Answer:
    """The refusal answer: :data:`REFUSAL`, no citations."""
    return Answer(question, REFUSAL, True, (), engine, prompt)


def clip(text: str, limit: int) -> str:
    """``text`` stripped of trailing clause punctuation and cut to ``limit`` characters (``…`` when cut)."""
    text = text.strip().rstrip("，,、；;：:")
    return text if len(text) <= limit else text[:limit].rstrip("，,、；;：:") + "…"
