"""The cue words of the extractive brief: ``data/brief_cues.yaml`` as a validated pydantic model.

Human-edited, so unknown keys are rejected and every pattern must compile.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ragreports.brief.model import FIELDS
from ragreports.data import load_rules, validate_rules


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    measures: list[tuple[int, int]]
    leadership_unit: int
    leadership_items: int
    shortcomings: int
    next_year: int
    other: int
    title_chars: int
    text_chars: int


class _Substance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actions: list[str]
    generic: list[str]
    number: str


class Cues(BaseModel):
    """Contents of ``data/brief_cues.yaml`` (human-edited: unknown keys are rejected)."""

    model_config = ConfigDict(extra="forbid")
    version: int
    section_headings: dict[str, list[str]]
    plan_openers: list[str]
    paragraph_openers: dict[str, list[str]]
    shortcoming_statement: list[str]
    leadership_headings: dict[str, list[str]]
    leadership_sentences: dict[str, list[str]]
    filler: list[str]
    boilerplate: list[str] = Field(default_factory=list)
    substance: _Substance
    limits: _Limits
    topics: dict[str, list[str]]
    figure_concepts: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("section_headings")
    @classmethod
    def _known_fields(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = set(v) - set(FIELDS)
        if unknown:
            raise ValueError(f"section_headings: unknown fields {sorted(unknown)}; use {list(FIELDS)}")
        return v

    @model_validator(mode="after")
    def _patterns_compile(self) -> Cues:
        groups = [self.plan_openers, self.shortcoming_statement, self.filler, self.boilerplate, self.substance.actions,
                  self.substance.generic, [self.substance.number]]
        for d in (self.section_headings, self.paragraph_openers, self.leadership_headings, self.leadership_sentences,
                  self.topics, self.figure_concepts):
            groups.extend(d.values())
        for pattern in (p for g in groups for p in g):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from exc
        return self

    def rx(self, patterns: Sequence[str]) -> re.Pattern[str]:
        return _compile(tuple(patterns))


@functools.lru_cache(maxsize=64)
def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns) or r"(?!x)x")


def load_cues(path: Path | None = None) -> Cues:
    """The cue words of the brief: the packaged ``data/brief_cues.yaml`` (cached), or the file at ``path``."""
    return load_rules("brief_cues", Cues) if path is None else validate_rules(Path(path), Cues)
