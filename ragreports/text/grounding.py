"""Locate quotes in a document's normalised text: exact, then after normalisation, then fuzzy.

Every stage that cites (answers, facts, brief items) goes through :func:`locate`; a quote that cannot be
located is not evidence. The returned :class:`Evidence` always satisfies ``text[start:end] == quote``.
"""

from __future__ import annotations

from difflib import SequenceMatcher

from ragreports.text.normalize import match_key, match_key_with_map
from ragreports.types import Evidence


class QuoteLocator:
    """Locates many quotes in one text; the comparison form of the text is computed once."""

    def __init__(self, text: str, fuzzy_threshold: float = 0.85):
        self.text = text
        self.fuzzy_threshold = fuzzy_threshold
        self._key: str | None = None
        self._pos: list[int] = []

    def _ensure_key(self) -> None:
        if self._key is None:
            self._key, self._pos = match_key_with_map(self.text)

    def _span_from_key(self, i: int, j: int) -> Evidence:
        start, end = self._pos[i], self._pos[j - 1] + 1
        return Evidence(self.text[start:end], start, end)

    def locate(self, quote: str, *, fuzzy: bool = True, hint: int = 0) -> Evidence | None:
        """Find ``quote``; ``hint`` prefers the occurrence at or after that offset when several exist."""
        quote = quote.strip()
        if not quote:
            return None
        i = self.text.find(quote, hint)
        if i < 0:
            i = self.text.find(quote)
        if i >= 0:
            return Evidence(quote, i, i + len(quote))
        self._ensure_key()
        assert self._key is not None
        kq = match_key(quote)
        if not kq:
            return None
        k = self._key.find(kq)
        if k >= 0:
            return self._span_from_key(k, k + len(kq))
        if not fuzzy or len(kq) < 4:
            return None
        m = SequenceMatcher(None, self._key, kq, autojunk=False).find_longest_match(0, len(self._key), 0, len(kq))
        if m.size >= self.fuzzy_threshold * len(kq):
            return self._span_from_key(m.a, m.a + m.size)
        return None


def locate(text: str, quote: str, *, fuzzy: bool = True, fuzzy_threshold: float = 0.85) -> Evidence | None:
    return QuoteLocator(text, fuzzy_threshold).locate(quote, fuzzy=fuzzy)


def verify(text: str, ev: Evidence) -> bool:
    """True when the evidence offsets point at exactly its quote."""
    return 0 <= ev.start <= ev.end <= len(text) and text[ev.start : ev.end] == ev.quote and bool(ev.quote)
