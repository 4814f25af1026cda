"""Spans of a normalised text that nothing may quote: text addressed to a model (:mod:`ragreports.text.injection`)
and text that is not readable (:mod:`ragreports.text.mojibake`).

Computed at ingest and stored per chunk (``DocStore`` column ``chunks.flags``), and computed again, the same pure
way, by the stages that quote: answers keep out of them, briefs drop or trim items that touch them, the LLM context
leaves injected text out unless the user asks for it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ragreports.text.injection import injection_spans
from ragreports.text.mojibake import unreadable_spans

Span = tuple[int, int]


def merge(spans: Iterable[Span]) -> tuple[Span, ...]:
    out: list[Span] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return tuple(out)


def overlaps(start: int, end: int, spans: Sequence[Span]) -> bool:
    return any(s < end and start < e for s, e in spans)


def outside(start: int, end: int, spans: Sequence[Span]) -> list[Span]:
    """The pieces of ``[start, end)`` that lie outside every span (in order; empty pieces left out)."""
    pieces, pos = [], start
    for s, e in spans:
        if e <= pos or s >= end:
            continue
        if s > pos:
            pieces.append((pos, s))
        pos = max(pos, e)
    if pos < end:
        pieces.append((pos, end))
    return pieces


@dataclass(frozen=True)
class TextFlags:
    injection: tuple[Span, ...] = ()
    unreadable: tuple[Span, ...] = ()

    def excluded(self, *, injection: bool = True) -> tuple[Span, ...]:
        """The spans to keep out of quotes: unreadable text, and injected text unless ``injection=False``."""
        return merge([*self.unreadable, *(self.injection if injection else ())])

    def within(self, start: int, end: int) -> str:
        """The flags touching ``[start, end)`` as stored with a chunk: JSON, or ``""`` when there are none."""
        got = {kind: [[s, e] for s, e in spans if s < end and start < e]
               for kind, spans in (("injection", self.injection), ("unreadable", self.unreadable))}
        got = {k: v for k, v in got.items() if v}
        return json.dumps(got) if got else ""


@functools.lru_cache(maxsize=64)
def text_flags(text: str) -> TextFlags:
    """The flagged spans of a normalised text (cached: every question asks again about the same reports)."""
    return TextFlags(tuple(injection_spans(text)), unreadable_spans(text))
