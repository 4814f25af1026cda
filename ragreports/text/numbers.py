"""Numbers in report text: Arabic, Chinese and mixed numerals, scale words, units and approximation markers.

Pure functions over strings. The rules (digit characters, scale words, units, approximation markers) are data in
``ragreports/data/facts_numbers.yaml`` and ``facts_units.yaml``.

>>> parse_number("9.98万")
99800.0
>>> parse_number("七十六")
76.0
>>> parse_quantity("3000余份")
Quantity(value=3000.0, unit='份', approx=True)
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from ragreports.data import load_rules


class _ApproxFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: list[str]
    prefix_window: list[str]
    prefix_window_chars: int = 6
    infix: list[str]
    suffix: list[str]


class NumbersFile(BaseModel):
    """``data/facts_numbers.yaml``: numeral characters, scale words and approximation markers."""

    model_config = ConfigDict(extra="forbid")
    digits: dict[str, int]
    small_units: dict[str, int]
    scale_words: dict[str, int]
    approx: _ApproxFile


class UnitsFile(BaseModel):
    """``data/facts_units.yaml``: unit words (as written -> base unit) and the units of calendar years."""

    model_config = ConfigDict(extra="forbid")
    units: dict[str, str]
    year_units: list[str] = Field(default_factory=list)


PERCENT_WORD = "百分之"


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str
    approx: bool


@dataclass(frozen=True)
class QuantityMatch:
    """A quantity found in a text. ``start``/``end`` span the whole expression (markers, number, unit);
    ``num_start``/``num_end`` the number itself; ``unit_end`` the end of the unit."""

    value: float
    unit: str
    approx: bool
    start: int
    end: int
    num_start: int
    num_end: int
    unit_end: int
    numeral: str  # the number as written ("9.98", "七十六", "千")
    chinese: bool  # written with Chinese numerals


class _Rules:
    """Compiled view of the data files."""

    def __init__(self) -> None:
        num = load_rules("facts_numbers", NumbersFile)
        units = load_rules("facts_units", UnitsFile)
        self.digits: dict[str, int] = dict(num.digits)
        self.small: dict[str, int] = dict(num.small_units)
        self.scales: dict[str, int] = dict(num.scale_words)
        approx = num.approx
        self.prefix: list[str] = sorted(approx.prefix, key=len, reverse=True)
        self.prefix_window: list[str] = list(approx.prefix_window)
        self.window_chars: int = approx.prefix_window_chars
        self.infix: list[str] = list(approx.infix)
        self.suffix: list[str] = sorted(approx.suffix, key=len, reverse=True)
        self.units: dict[str, str] = dict(units.units)
        self.unit_list: list[str] = sorted(self.units, key=len, reverse=True)
        self.year_units: set[str] = set(units.year_units)
        cn = "".join(self.digits) + "".join(self.small) + "万亿"
        scale_alt = "|".join(sorted(self.scales, key=len, reverse=True))
        # Arabic (with thousands separators / decimals), optionally followed by a scale word; or a Chinese
        # numeral (must contain a digit character, except a bare 十/百/千 which parse_number handles).
        self.number_re = re.compile(
            r"(?P<ar>\d{1,3}(?:[,，]\d{3})+(?![\d])(?:[.．]\d+)?|\d+(?:[.．]\d+)?)"
            r"|(?P<cn>[" + cn + r"]+)"
        )
        self.scale_re = re.compile(scale_alt)
        self.unit_re = re.compile("|".join(re.escape(u) for u in self.unit_list))
        self.cn_chars = set(cn)


@functools.lru_cache(maxsize=1)
def rules() -> _Rules:
    return _Rules()


def _nfkc(s: str) -> str:
    return unicodedata.normalize("NFKC", s)


def parse_chinese_numeral(s: str) -> int | None:
    """Value of a Chinese numeral (``十二`` -> 12, ``一百零五`` -> 105, ``两万三千`` -> 23000, ``二〇二四`` -> 2024).

    Returns None when ``s`` is not a well-formed numeral.
    """
    r = rules()
    if not s or any(c not in r.cn_chars for c in s):
        return None
    # digit-by-digit form (二〇二四)
    if len(s) > 1 and all(c in r.digits for c in s):
        if "两" in s:
            return None
        return int("".join(str(r.digits[c]) for c in s))
    total = 0  # completed 亿 groups
    section = 0  # completed 万 group
    current = 0  # within the current group below 万
    digit: int | None = None
    for c in s:
        if c in r.digits:
            if digit is not None and digit != 0:  # two digits in a row in a positional numeral: only 零 may precede
                return None
            digit = r.digits[c]
        elif c in r.small:
            mult = r.small[c]
            current += (1 if digit is None else digit) * mult
            digit = None
        elif c == "万":
            section = ((section + current + (digit or 0)) or 1) * 10000
            current, digit = 0, None
        elif c == "亿":
            total = ((total + section + current + (digit or 0)) or 1) * 100000000
            section, current, digit = 0, 0, None
        else:
            return None
    return total + section + current + (digit or 0)


def _round(x: float) -> float:
    """Remove binary float noise after scaling (150.71 * 1e8 -> 15071000000.0)."""
    return float(round(x, 6)) if abs(x) < 1e9 else float(round(x))


def parse_number(s: str) -> float | None:
    """Parse a number as written in a report: ``1,234.5``, ``１２``, ``七十六``, ``1.5万``, ``3千``, ``两``.

    A trailing scale word multiplies the value. Returns None when ``s`` is not a number.
    """
    s = _nfkc(s).strip()
    if not s:
        return None
    r = rules()
    scale = 1
    m = re.fullmatch(r"(\d+(?:,\d{3})*(?:\.\d+)?)(.*)", s)
    if m:
        rest = m.group(2)
        if rest:
            if rest not in r.scales:
                return None
            scale = r.scales[rest]
        return _round(float(m.group(1).replace(",", "")) * scale)
    v = parse_chinese_numeral(s)
    return None if v is None else float(v)


def _approx_prefix(text: str, pos: int, bare: bool) -> tuple[bool, int]:
    """Approx marker directly before ``pos`` (allowing 达/为/计 in between). Returns (found, marker start).

    ``上`` counts only before a bare scale character (上千, 上万)."""
    r = rules()
    j = pos
    if j > 0 and text[j - 1] in "达为计":
        j -= 1
    for p in r.prefix:
        if p == "上" and not bare:
            continue
        if j - len(p) >= 0 and text.startswith(p, j - len(p)):
            return True, j - len(p)
    return False, pos


_COUNT_NOTE = re.compile(r"[（(]次[)）]")


def match_unit(text: str, pos: int) -> tuple[str, str] | None:
    """Longest unit starting at ``pos``: (surface, normalised unit) or None. A unit noted as counting occasions
    (``3场(次)``, ``40人(次)``) is that count unit (场次, 人次) when there is one."""
    r = rules()
    m = r.unit_re.match(text, pos)
    if not m:
        return None
    unit = r.units[m.group(0)]
    note = _COUNT_NOTE.match(text, m.end())
    if note and unit + "次" in r.units:
        return m.group(0) + note.group(0), r.units[unit + "次"]
    return m.group(0), unit


def _scan_tail(text: str, pos: int) -> tuple[int, str, bool, int] | None:
    """After a number ending at ``pos``: optional 余/多, optional scale word, optional 余/多, then a unit.

    Returns (scale, unit, approx, unit end) or None when no unit follows.
    """
    r = rules()
    approx = False
    i = pos
    if i < len(text) and text[i] in r.infix:
        approx, i = True, i + 1
    u = match_unit(text, i)
    if u is not None:
        return 1, u[1], approx, i + len(u[0])
    m = r.scale_re.match(text, i)
    if m is None:
        return None
    scale = r.scales[m.group(0)]
    i = m.end()
    if i < len(text) and text[i] in r.infix:
        approx, i = True, i + 1
    u = match_unit(text, i)
    if u is None:
        return None
    return scale, u[1], approx, i + len(u[0])


def iter_quantities(text: str) -> list[QuantityMatch]:
    """Every ``number [余] [scale] [余] unit [以上]`` expression in ``text``, left to right.

    No judgement about whether it is a fact (dates, ordinals, names are filtered by :mod:`ragreports.extract.facts`).
    """
    r = rules()
    out: list[QuantityMatch] = []
    for m in r.number_re.finditer(text):
        numeral = m.group(0)
        chinese = m.group("cn") is not None
        ns, ne = m.start(), m.end()
        if chinese:
            # a Chinese numeral may swallow a trailing scale char (三千 / 两万): keep it inside the numeral,
            # but a trailing 余/多 marker is handled by _scan_tail
            if ns > 0 and (text[ns - 1].isdigit() or text[ns - 1] in ".．"):
                continue  # the scale word of "1.2万" already read with its number
            value = parse_chinese_numeral(numeral)
            if value is None:
                continue
        else:
            if ns >= 2 and text[ns - 1] in ".．" and text[ns - 2].isdigit():
                continue  # the fraction of "2.05" or the tail of a malformed "1,23"
            value = parse_number(numeral)
            if value is None:
                continue
        tail = _scan_tail(text, ne)
        if text.startswith(PERCENT_WORD, ns - len(PERCENT_WORD)) and ns >= len(PERCENT_WORD):
            tail = (1, "%", False, ne)  # 百分之九十 -> 90 %
            ns_word = ns - len(PERCENT_WORD)
        else:
            ns_word = ns
        if tail is None:
            continue
        scale, unit, approx, uend = tail
        bare = chinese and not any(c in r.digits for c in numeral) and not numeral.startswith("十")
        end = uend
        for sfx in r.suffix:
            if text.startswith(sfx, uend):
                approx, end = True, uend + len(sfx)
                break
        found, pstart = _approx_prefix(text, ns_word, bare)
        if bare and not (found or approx):
            continue  # 百姓 / 万人: a bare scale character counts only as 近千 / 上万 / 千余
        if found:
            approx = True
        else:
            window = text[max(0, ns - r.window_chars):ns]
            window = re.split(r"[，,；;。：:、]", window)[-1]
            if any(w in window for w in r.prefix_window):
                approx = True
        out.append(QuantityMatch(
            value=_round(float(value) * scale), unit=unit, approx=approx,
            start=pstart if found else ns_word, end=end, num_start=ns, num_end=ne, unit_end=uend,
            numeral=numeral, chinese=chinese,
        ))
    return out


def parse_quantity(s: str) -> Quantity | None:
    """Parse a short quantity expression such as ``9.98万人次``, ``近千份``, ``66%``, ``至少1次``."""
    s = _nfkc(s).strip()
    found = iter_quantities(s)
    if not found:
        return None
    q = found[0]
    return Quantity(q.value, q.unit, q.approx)
