"""Passages in prompts: sentence pieces, packing under a token budget, and the numbered passage format.

- ``pack_passages(passages, budget_tokens, counter)``: keep passages in order within a token budget
  (``settings.llm_context_tokens``), the last one cut at a sentence boundary; a budget <= 0 keeps nothing.
- ``format_passages(passages)``: render them for a prompt's ``{passages}`` variable as numbered blocks
  ``<passage id="1">\\n...\\n</passage>`` -- the format the fake reads back (``parse_passages``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

_SENTENCE = re.compile(r"[^。！？!?；;\n]*(?:[。！？!?；;]+[”’\"」』）)]*|\n+)|[^。！？!?；;\n]+$")
_PASSAGE = re.compile(r'<passage id="(\d+)">\n(.*?)\n</passage>', re.S)


def sentence_pieces(text: str) -> list[str]:
    """Sentence pieces (ending in 。！？!?；; or a newline) whose concatenation is ``text``."""
    return [m.group(0) for m in _SENTENCE.finditer(text) if m.group(0)]


def first_sentence(text: str) -> str:
    """The first non-blank sentence of ``text``, stripped ("" if there is none)."""
    for s in sentence_pieces(text):
        if s.strip():
            return s.strip()
    return ""


def format_passages(passages: Sequence[str]) -> str:
    """Render passages for a prompt: ``<passage id="N">`` blocks, numbered from 1 (the fake parses them back)."""
    return "\n\n".join(f'<passage id="{i}">\n{p}\n</passage>' for i, p in enumerate(passages, 1))


def parse_passages(text: str) -> list[str]:
    """The passage texts of the ``format_passages`` blocks in ``text``, in order."""
    return [m.group(2) for m in _PASSAGE.finditer(text)]


def _count_fn(counter: Any) -> Callable[[str], int]:
    return counter.count if hasattr(counter, "count") else counter


def pack_passages(passages: Sequence[str], budget_tokens: int, counter: Any) -> list[str]:
    """Passages in order while they fit ``budget_tokens`` (counted with ``counter``, a TokenCounter or callable).

    The contract (``out = pack_passages(ps, budget, counter)``):

    - ``budget <= 0`` keeps nothing: ``[]``, even for empty passages.
    - ``out[i]`` is a prefix of ``ps[i]`` (callers zip ``out`` with their sources), so quotes stay verbatim; every
      kept passage but the last is whole, and the counts of the kept texts sum to at most ``budget``.
    - The first passage that does not fit is cut at the last sentence boundary that fits, and packing stops. If
      nothing with text has been kept yet and not even its first sentence fits, it is cut to the longest character
      prefix that fits instead (a first passage too long is cut, not dropped). Passages that fit are kept whole,
      empty ones included (they cost nothing).

    The budget covers the passage text only: leave headroom for the template and ``format_passages`` tags.
    """
    if budget_tokens <= 0:
        return []
    count = _count_fn(counter)
    out: list[str] = []
    used = 0
    for p in passages:
        n = count(p)
        if used + n <= budget_tokens:
            out.append(p)
            used += n
            continue
        room = budget_tokens - used
        cut = _cut(p, room, count, [m.end() for m in _SENTENCE.finditer(p) if m.group(0)])
        if not cut and not any(k.strip() for k in out):
            cut = _cut(p, room, count, list(range(1, len(p) + 1)))
        if cut:
            out.append(cut)
        break
    return out


def _cut(text: str, room: int, count: Callable[[str], int], ends: list[int]) -> str:
    """Longest ``text[:e].rstrip()`` over the candidate ends that fits ``room`` tokens (binary search)."""
    lo, hi, best = 0, len(ends) - 1, ""
    while lo <= hi:
        mid = (lo + hi) // 2
        cand = text[: ends[mid]].rstrip()
        if cand and count(cand) <= room:
            best, lo = cand, mid + 1
        else:
            hi = mid - 1
    return best

