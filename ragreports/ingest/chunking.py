"""Chunking: normalised report text -> token-bounded chunks that follow the report's own outline
(:mod:`ragreports.text.outline`).

Chunks never cross a section boundary; inside a section whole sentences are packed up to the token budget, with
``overlap_sentences`` sentences repeated at the start of the next chunk. Every offset refers to the given text:
``text[chunk.start:chunk.end] == chunk.text`` always.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragreports.errors import ConfigError
from ragreports.text.outline import leaf_segments, sentence_spans, trim_span
from ragreports.text.tokens import TokenCounter
from ragreports.types import Chunk

CountTokens = Callable[[str], int]

_COMMA = re.compile(r"[，,、：:]+")


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    whole: bool  # a whole sentence (only those are repeated as overlap)


def _word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _char_split(text: str, start: int, end: int, budget: int, count: CountTokens) -> list[_Unit]:
    """Cut [start, end) at character positions into pieces that each fit ``budget``."""
    units: list[_Unit] = []
    pos = start
    while pos < end:
        pos, _ = trim_span(text, pos, end)
        if pos >= end:
            break

        def fits(stop: int, p: int = pos) -> bool:
            return count(text[p:stop].rstrip()) <= budget

        if not fits(pos + 1):
            raise ConfigError(
                f"max_tokens={budget} is too small: the single character {text[pos]!r} needs more tokens; "
                "raise chunk_tokens (RAGREPORTS_CHUNK_TOKENS), e.g. to 300"
            )
        lo, step = pos + 1, max(1, budget)
        while lo + step <= end and fits(lo + step):  # gallop, then bisect: O(log n) counts per piece
            lo, step = lo + step, step * 2
        hi = min(end, lo + step)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        if hi == end and fits(end):
            lo = end
        back = lo
        while back < end and back - pos > 1 and lo - back < 16 and _word(text[back - 1]) and _word(text[back]):
            back -= 1  # do not split a number or a latin word if a cut just before it exists
        if back < lo and not (_word(text[back - 1]) and _word(text[back])) and fits(back):
            lo = back
        s, e = trim_span(text, pos, lo)
        units.append(_Unit(s, e, count(text[s:e]), False))
        pos = lo
    return units


def _units(text: str, start: int, end: int, budget: int, count: CountTokens) -> list[_Unit]:
    """Sentences of [start, end) as units that each fit ``budget`` (long ones cut at commas, then characters)."""
    out: list[_Unit] = []
    for s, e in sentence_spans(text, start, end):
        n = count(text[s:e])
        if n <= budget:
            out.append(_Unit(s, e, n, True))
            continue
        pieces: list[_Unit] = []
        pos = s
        for m in [*_COMMA.finditer(text, s, e), None]:
            cut = m.end() if m else e
            ps, pe = trim_span(text, pos, cut)
            pos = cut
            if pe <= ps:
                continue
            pn = count(text[ps:pe])
            pieces.extend([_Unit(ps, pe, pn, False)] if pn <= budget else _char_split(text, ps, pe, budget, count))
        out.extend(_Unit(a, b, count(text[a:b]), False) for a, b in _pack(text, pieces, budget, count, 0))
    return out


def _pack(text: str, units: Sequence[_Unit], budget: int, count: CountTokens, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of consecutive units into spans that fit ``budget``; each unit must fit on its own."""
    n = len(units)
    gap_cache: dict[str, int] = {}
    cum = [0]  # cum[i] = estimated tokens of units[0:i] with the gaps between them
    for i, u in enumerate(units):
        gap = text[units[i - 1].end:u.start] if i else ""
        if gap not in gap_cache:
            gap_cache[gap] = count(gap) if gap else 0
        cum.append(cum[-1] + u.tokens + (gap_cache[gap] if i else 0))

    def estimate(a: int, b: int) -> int:  # units[a..b] inclusive, gaps between them included
        return cum[b + 1] - cum[a + 1] + units[a].tokens

    spans: list[tuple[int, int]] = []
    i, prev = 0, (0, -1)
    while i < n:
        k = 0
        if spans and overlap:
            k = min(overlap, prev[1] - prev[0])  # never repeat a whole previous chunk
            while k and not all(units[x].whole for x in range(i - k, i)):
                k -= 1
        while True:
            a = i - k
            j = i
            if estimate(a, i) <= budget:
                while j + 1 < n and estimate(a, j + 1) <= budget:
                    j += 1
            actual = count(text[units[a].start:units[j].end])
            while actual > budget and j > i:  # the estimate was low: give back units
                j -= 1
                actual = count(text[units[a].start:units[j].end])
            if actual <= budget or k == 0:  # k == 0 and j == i: one unit, which fits by construction
                break
            k -= 1  # the overlap does not fit with the next unit: repeat less
        spans.append((units[a].start, units[j].end))
        prev, i = (a, j), j + 1
    return spans


# ----------------------------------------------------------------------------------------------------------------
# public entry point


@functools.lru_cache(maxsize=1)
def _default_count() -> CountTokens:
    return TokenCounter("cl100k_base").count


def chunk_document(
    doc_id: str,
    text: str,
    *,
    max_tokens: int = 300,
    overlap_sentences: int = 1,
    count_tokens: CountTokens | None = None,
) -> list[Chunk]:
    """Chunks of ``text`` (the normalised report text) that follow its outline and fit ``max_tokens``.

    Guarantees: ``text[c.start:c.end] == c.text``; chunk text never begins or ends with whitespace; every
    non-space character lies in some chunk; ``c.tokens == count_tokens(c.text) <= max_tokens``; indices run
    0..n-1 in document order; same input, same output. ``count_tokens`` defaults to tiktoken cl100k_base.
    """
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ConfigError(f"max_tokens must be a positive integer, got {max_tokens!r}; 300 is a good default")
    if not isinstance(overlap_sentences, int) or overlap_sentences < 0:
        raise ConfigError(f"overlap_sentences must be an integer >= 0, got {overlap_sentences!r}")
    count = count_tokens or _default_count()
    chunks: list[Chunk] = []
    for start, end, path in leaf_segments(text):
        units = _units(text, start, end, max_tokens, count)
        for s, e in _pack(text, units, max_tokens, count, overlap_sentences):
            body = text[s:e]
            chunks.append(Chunk(doc_id, len(chunks), body, s, e, path, count(body)))
    return chunks
