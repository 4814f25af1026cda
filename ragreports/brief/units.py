"""The structure layer of the standard brief: a report split into *units* (:class:`Unit`).

A unit is a sub-heading or a ``一是/二是`` enumeration item with its title and its sentences (spans in the text),
tagged with the template field its part of the report belongs to (from the outline of ``ragreports.text.outline``
and the cue words of ``data/brief_cues.yaml``). :mod:`ragreports.brief.extractive` builds its items from these
units.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ragreports.brief.cues import Cues, load_cues
from ragreports.text.outline import parse_outline

_SENT_END = re.compile(r"[。！？]+[”’\"')）》」』]*")
_CLAUSE_END = re.compile(r"[。！？；;]+[”’\"')）》」』]*")
EDGE_PUNCT = " \t\n\u3000\xa0\r\ufeff,，、。；;：:"
_PARA_END = "。！？；;：:”’\"」』)）"
ENUM_NUMERALS = "一二三四五六七八九十"
_ENUM_BOUNDARY = "。；;：:，,\n"
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Unit:
    """A sub-heading or enumeration item of the report: its title and its sentences (spans in the text)."""

    field: str  # measures | leadership | shortcomings | next_year | other | mixed | intro
    path: tuple[str, ...]  # heading titles from the top down
    title: tuple[int, int] | None
    sentences: tuple[tuple[int, int], ...]


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s] in EDGE_PUNCT:
        s += 1
    while e > s and text[e - 1] in EDGE_PUNCT:
        e -= 1
    return s, e


def unit_sentences(text: str, s: int, e: int, long: int = 150, ends: re.Pattern[str] | None = None
                    ) -> list[tuple[int, int]]:
    """Sentences of ``text[s:e]`` cut after 。！？ (a sentence longer than ``long`` characters is cut at ；
    too), trimmed of punctuation at both ends; fragments with fewer than 4 CJK characters are left out."""
    out, pos = [], s
    for m in [*(ends or _SENT_END).finditer(text, s, e), None]:
        stop = m.end() if m else e
        a, b = _trim(text, pos, stop)
        if b - a > long:  # an overlong sentence: its clauses stand alone
            out.extend(unit_sentences(text, a, b, long=10**9, ends=_CLAUSE_END))
        elif b > a and len(_CJK.findall(text[a:b])) >= 4:
            out.append((a, b))
        pos = stop
    return out


def paragraphs(text: str, s: int, e: int, min_chars: int = 25) -> list[tuple[int, int]]:
    """Paragraphs of ``text[s:e]``. A line ends its paragraph when it ends with closing punctuation or is short;
    a long line without it is taken as hard-wrapped and joined to the next. A paragraph shorter than
    ``min_chars`` without closing punctuation (signature, page chrome) is left out."""
    out: list[tuple[int, int]] = []
    start = s
    for m in [*re.finditer(r"\n", text[s:e]), None]:
        stop = s + m.start() if m else e
        a, b = _trim(text, start, stop)
        if b <= a:
            start = stop + 1
            continue
        ends = text[a:stop].rstrip()[-1] in _PARA_END
        if m is not None and not ends and b - a >= 2 * min_chars:
            continue  # hard-wrapped line: the paragraph goes on
        if ends or len(_CJK.findall(text[a:b])) >= min_chars:
            out.append((a, stop))
        start = stop + 1
    return out


_ENUM_MARK = re.compile(f"[{ENUM_NUMERALS}]是")


def _enumeration(text: str, s: int, e: int) -> list[int]:
    """Offsets of the outermost ``一是 … 二是 … 三是`` sequence in text[s:e]: two markers or more, or one that
    opens the paragraph (``二是…`` on a line of its own). A ``一是`` inside an open sequence starts a nested one,
    which closes at the first marker that continues an outer sequence."""
    levels: list[int] = []  # per open sequence, the index of the numeral expected next
    top: list[int] = []
    for m in _ENUM_MARK.finditer(text, s, e):
        i, k = m.start(), ENUM_NUMERALS.index(text[m.start()])
        before = text[i - 1] if i > s else "\n"
        if before in ENUM_NUMERALS + "第唯" or (k == 0 and before not in _ENUM_BOUNDARY):
            continue
        if not levels:
            if k == 0 or i == s:
                levels, top = [k + 1], [i]
            continue
        j = len(levels) - 1
        while j > 0 and levels[j] != k:
            j -= 1
        if levels[j] == k:
            del levels[j + 1:]
            levels[j] += 1
            if j == 0:
                top.append(i)
        elif k == 0:
            levels.append(1)
    return top if len(top) >= 2 or (top and top[0] == s) else []


def _inline_title(text: str, s: int, e: int, max_chars: int) -> tuple[int, int] | None:
    """An inline title at ``s``: a short phrase closed by 。/：/line end, without commas."""
    m = re.compile(r"[。：:\n；;]").search(text, s, e)
    stop = m.start() if m else e
    if m and m.group() in "；;":
        return None
    a, b = _trim(text, s, stop)
    if b <= a or b - a > max_chars or re.search(r"[,，]", text[a:b]):
        return None
    return a, b


def _units_of(text: str, s: int, e: int, title: tuple[int, int] | None, cues: Cues) -> list[
        tuple[tuple[int, int] | None, list[tuple[int, int]]]]:
    """(title, sentences) of each enumeration item in text[s:e], recursively; the preamble keeps ``title``."""
    marks = _enumeration(text, s, e)
    if not marks:
        return [(title, unit_sentences(text, s, e))]
    out = []
    pre = unit_sentences(text, s, marks[0])
    if pre or title:
        out.append((title, pre))
    for i, m in enumerate(marks):
        stop = marks[i + 1] if i + 1 < len(marks) else e
        body = m + 2
        t = _inline_title(text, body, stop, cues.limits.title_chars)
        if t:
            body = t[1]
        out.extend(_units_of(text, body, stop, t, cues))
    return out


def _classify(path: Sequence[str], cues: Cues) -> str:
    """Template field of a part from its headings, searched top-down."""
    order = ("other", "leadership", "shortcomings", "next_year")
    for title in path:
        hits = [f for f in order if cues.rx(cues.section_headings.get(f, [])).search(title)]
        if "shortcomings" in hits and "next_year" in hits:
            return "mixed"
        if hits:
            return hits[0]
        if cues.rx(cues.section_headings.get("measures", [])).search(title):
            return "measures"
    return "measures" if path else "intro"


def report_units(text: str, cues: Cues | None = None) -> list[Unit]:
    """The units of a report in document order, each with the template field its part belongs to."""
    cues = cues or load_cues()
    headings = parse_outline(text)
    leaves: list[tuple[tuple[str, ...], tuple[int, int] | None, int, int]] = []
    first = headings[0].start if headings else len(text)
    leaves.append(((), None, 0, first))
    stack: list[tuple[int, str]] = []
    for i, h in enumerate(headings):
        while stack and stack[-1][0] >= h.level:
            stack.pop()
        stack.append((h.level, h.title))
        stop = headings[i + 1].start if i + 1 < len(headings) else len(text)
        t0 = h.end - len(h.title)
        title = (t0, h.end) if h.title and text[t0:h.end] == h.title else None
        leaves.append((tuple(t for _, t in stack), title, h.end, stop))
    no_headings = not headings
    is_boilerplate = cues.rx(cues.boilerplate).search if cues.boilerplate else (lambda _: None)
    units: list[Unit] = []
    for i, (path, title, s, e) in enumerate(leaves):
        kind = "measures" if no_headings else _classify(path, cues)
        paras = paragraphs(text, s, e)
        has_children = i + 1 < len(leaves) and len(leaves[i + 1][0]) > len(path)
        if not paras and title and not has_children:  # a bare heading with nothing under it is an item itself
            units.append(Unit(kind, path, title, ()))
        for j, (ps, pe) in enumerate(paras):
            if is_boilerplate(text[ps:pe].strip()):
                continue
            kind = _paragraph_kind(text[ps:pe].lstrip(), kind, cues)
            for t, sents in _units_of(text, ps, pe, title if j == 0 else None, cues):
                if sents or (t and t != title):
                    units.append(Unit(kind, path, t, tuple(sents)))
    if not any(u.field == "measures" for u in units):  # headings only for the later parts: the work is up front
        units = [Unit("measures", u.path, u.title, u.sentences) if u.field == "intro" else u for u in units]
    return units


def _paragraph_kind(paragraph: str, kind: str, cues: Cues) -> str:
    """A measures part turns into plans (or shortcomings) at a paragraph that opens like them; it stays so."""
    if kind not in ("measures", "shortcomings"):
        return kind
    if cues.rx(cues.paragraph_openers.get("next_year", [])).search(paragraph):
        return "next_year"
    if kind == "measures" and cues.rx(cues.paragraph_openers.get("shortcomings", [])).search(paragraph):
        return "shortcomings"
    return kind

