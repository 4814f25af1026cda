"""Text normalisation shared by cleaning, grounding and scoring.

``match_key`` implements the comparison form of spec/gold-format.md: Unicode NFKC, Traditional -> Simplified
(OpenCC t2s), pinyin annotations removed, all whitespace and punctuation removed. ``match_key_with_map`` also
returns, for every character of the key, the index of the source character it came from, so a match found in
key space can be mapped back to offsets in the original text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from difflib import SequenceMatcher

_TONE_VOWELS = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ"
_TONE_PLAIN = str.maketrans(
    {**dict.fromkeys("āáǎà", "a"), **dict.fromkeys("ēéěè", "e"), **dict.fromkeys("īíǐì", "i"),
     **dict.fromkeys("ōóǒò", "o"), **dict.fromkeys("ūúǔù", "u"), **dict.fromkeys("ǖǘǚǜü", "v"),
     **dict.fromkeys("ńňǹ", "n"), "ḿ": "m"}
)
_SYLLABLE = re.compile(
    r"^(zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
    r"(iang|iong|uang|ang|eng|ing|ong|ian|iao|uai|uan|van|ai|ei|ao|ou|an|en|er|in|ia|ie|iu|ua|uo|ui|un|ve|vn|ue"
    r"|a|e|i|o|u|v|n|m|ng)$"
)
# A CJK character followed by a parenthesised latin syllable: 學(xué) -> 學
_RUBY = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff])[(（]\s*([a-z" + _TONE_VOWELS + r"]{1,7})\s*[)）]")


def is_pinyin_syllable(s: str) -> bool:
    return bool(_SYLLABLE.match(s.lower().translate(_TONE_PLAIN)))


def pinyin_spans(text: str) -> list[tuple[int, int]]:
    """Spans of ruby pinyin annotations such as ``(xué)`` right after a CJK character."""
    return [m.span() for m in _RUBY.finditer(text) if is_pinyin_syllable(m.group(1))]


def remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` without the given sorted, non-overlapping ``(start, end)`` spans."""
    if not spans:
        return text
    out, pos = [], 0
    for s, e in spans:
        out.append(text[pos:s])
        pos = e
    out.append(text[pos:])
    return "".join(out)


def strip_pinyin(text: str) -> str:
    return remove_spans(text, pinyin_spans(text))


@functools.lru_cache(maxsize=1)
def _t2s():
    import opencc  # lazy: the dictionary load costs ~50 ms

    return opencc.OpenCC("t2s")


_SURROGATE = re.compile(r"([\ud800-\udfff])")


def to_simplified(text: str) -> str:
    """Traditional -> Simplified. Length-preserving in practice; callers that need offsets check it.
    Lone surrogates (never produced by our decoders, but possible in str input) pass through unchanged."""
    if not text:
        return text
    try:
        return _t2s().convert(text)
    except UnicodeEncodeError:
        parts = _SURROGATE.split(text)
        return "".join(p if _SURROGATE.fullmatch(p) else (_t2s().convert(p) if p else p) for p in parts)


def to_simplified_aligned(text: str) -> str:
    """Like :func:`to_simplified` but guaranteed to keep the length (character-by-character fallback)."""
    out = to_simplified(text)
    if len(out) == len(text):
        return out
    conv = _t2s().convert
    return "".join(c2 if len(c2 := conv(c)) == 1 else c for c in text)


def _is_dropped(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch).startswith("P")


def match_key_with_map(text: str) -> tuple[str, list[int]]:
    """Comparison form of ``text`` and, per key character, the index of its source character in ``text``."""
    keep = [True] * len(text)
    for s, e in pinyin_spans(text):
        for i in range(s, e):
            keep[i] = False
    chars: list[str] = []
    pos: list[int] = []
    for i, ch in enumerate(text):
        if not keep[i]:
            continue
        for c in unicodedata.normalize("NFKC", ch):
            if not _is_dropped(c):
                chars.append(c)
                pos.append(i)
    key = to_simplified_aligned("".join(chars))
    return key, pos


def match_key(text: str) -> str:
    return match_key_with_map(text)[0]


def longest_common_run(a: str, b: str) -> int:
    """Length of the longest common substring of ``a`` and ``b``."""
    if not a or not b:
        return 0
    m = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return m.size


def quotes_overlap(a: str, b: str, min_share: float = 0.6) -> bool:
    """Spec overlap rule: after normalisation, one contains the other, or they share at least ``min_share``
    of the shorter one's characters in one run."""
    ka, kb = match_key(a), match_key(b)
    if not ka or not kb:
        return False
    if ka in kb or kb in ka:
        return True
    shorter = min(len(ka), len(kb))
    return longest_common_run(ka, kb) >= min_share * shorter
