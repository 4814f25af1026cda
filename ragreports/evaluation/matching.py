"""Number-answer rules of spec/gold-format.md: does a QA answer state the gold answer?

A gold answer that is one quantity (``5次``, ``3000余份``, ``9.98万人次``) is matched by value (after scale words)
followed by the same unit within the answer's first :data:`ANSWER_WINDOW` characters; any other gold answer by
normalised containment. Also home of the comparison forms (:func:`key`, :func:`unit_key`, :func:`values_equal`)
that :mod:`ragreports.evaluation.scoring` shares. Pure functions; the number rules data is loaded lazily (cached).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass

from ragreports.data import load_rules
from ragreports.text.normalize import match_key, to_simplified
from ragreports.text.numbers import NumbersFile, parse_number

ANSWER_WINDOW = 80  # a correct answer states the gold answer within its first 80 characters
VALUE_REL_TOL = 1e-6
# Words that may lead a short number answer besides the approximation markers of the number rules
# ("共79件", "累计3次"): they do not change the value.
ANSWER_LEAD_WORDS: tuple[str, ...] = ("共计", "合计", "总计", "累计", "共", "达", "计", "为")
ANSWER_TRAIL_WORDS: tuple[str, ...] = ("以上", "左右", "上下", "有余")
MAX_UNIT_CHARS = 4


# -- normalisation -----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=65536)
def key(text: str) -> str:
    """The spec's comparison form (NFKC, t2s, pinyin removed, no whitespace/punctuation)."""
    return match_key(text or "")


def unit_key(unit: str) -> str:
    """A unit's comparison form; symbol units that are punctuation (``%``, ``‰``) keep their symbol."""
    k = key(unit)
    if k:
        return k
    return "".join(unicodedata.normalize("NFKC", unit or "").split())


def values_equal(a: float, b: float) -> bool:
    return math.isclose(float(a), float(b), rel_tol=VALUE_REL_TOL, abs_tol=0.0)


# -- number answers ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _NumberRules:
    numeral: re.Pattern  # an Arabic or Chinese numeral
    scale_words: tuple[str, ...]  # longest first
    scales: dict[str, int]
    infix: frozenset[str]  # 余 / 多 between number and unit
    lead: tuple[str, ...]  # words that may lead a number answer, longest first
    digit_chars: frozenset[str]  # a unit never contains these


@functools.lru_cache(maxsize=1)
def _number_rules() -> _NumberRules:
    """Scale words, approximation markers and numeral characters from the number rules data file."""
    r = load_rules("facts_numbers", NumbersFile)
    cn = "".join(r.digits) + "".join(r.small_units) + "万亿"
    scales = dict(r.scale_words)
    return _NumberRules(
        numeral=re.compile(r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[" + re.escape(cn) + "]+"),
        scale_words=tuple(sorted(scales, key=len, reverse=True)),
        scales=scales,
        infix=frozenset(r.approx.infix),
        lead=tuple(sorted({*r.approx.prefix, *ANSWER_LEAD_WORDS}, key=len, reverse=True)),
        digit_chars=frozenset("0123456789" + "".join(r.digits)),
    )


def parse_numeral(s: str) -> float | None:
    """Value of a numeral as written (``1,234``, ``9.98``, ``七十六``); delegates to :mod:`ragreports.text.numbers`."""
    return parse_number(s)


def scan_numbers(text: str) -> list[tuple[float, int, int]]:
    """Every number in ``text`` as (value after scale, start, end), where ``end`` is just after the number, its
    scale word and any 余/多 marker (``3000余份`` -> (3000, 0, 5); ``9.98万人次`` -> (99800, 0, 5))."""
    r = _number_rules()
    out: list[tuple[float, int, int]] = []
    for m in r.numeral.finditer(text):
        v = parse_numeral(m.group(0))
        if v is None:
            continue
        pos = m.end()
        if pos < len(text) and text[pos] in r.infix:
            pos += 1
        for w in r.scale_words:
            if text.startswith(w, pos):
                v, pos = v * r.scales[w], pos + len(w)
                if pos < len(text) and text[pos] in r.infix:
                    pos += 1
                break
        out.append((v, m.start(), pos))
    return out


@dataclass(frozen=True)
class NumberAnswer:
    value: float
    unit: str  # comparison form (unit_key)


def parse_number_answer(answer: str) -> NumberAnswer | None:
    """A short gold answer that is one quantity (``5次``, ``3000余份``, ``9.98万人次``, ``近1000份``, ``1.92%``).

    Text answers (``2025年1月1日``, ``局长``) return None and are compared as text."""
    r = _number_rules()
    s = "".join(unicodedata.normalize("NFKC", answer).split())
    for w in r.lead:
        if s.startswith(w):
            s = s[len(w):]
            break
    found = scan_numbers(s)
    if not found or found[0][1] != 0:
        return None
    value, _, pos = found[0]
    unit = s[pos:]
    for w in ANSWER_TRAIL_WORDS:
        if unit.endswith(w) and len(unit) > len(w):
            unit = unit[: -len(w)]
            break
    if not unit or len(unit) > MAX_UNIT_CHARS or any(c in r.digit_chars for c in unit):
        return None
    return NumberAnswer(value, unit_key(unit))


def _unit_follows(text: str, pos: int, unit: str) -> bool:
    tail = text[pos: pos + 3 * MAX_UNIT_CHARS]
    if key(unit):
        return key(tail).startswith(unit)
    return "".join(to_simplified(unicodedata.normalize("NFKC", tail)).split()).startswith(unit)


def states_answer(answer: str, gold_answer: str, window: int = ANSWER_WINDOW) -> bool:
    """The answer states the gold answer within its first ``window`` characters: for a number answer the same
    value (after scale) followed by the same unit; otherwise normalised containment."""
    head = unicodedata.normalize("NFKC", (answer or "")[:window])
    na = parse_number_answer(gold_answer)
    if na is None:
        kg = key(gold_answer)
        return bool(kg) and kg in key(head)
    return any(values_equal(v, na.value) and _unit_follows(head, end, na.unit) for v, _, end in scan_numbers(head))
