"""A report's own outline and sentences (pure functions over the normalised text).

The outline comes from line-initial heading markers (``一、`` ``（一）`` ``1.`` ``（1）`` ``第X章/节/条`` and Markdown
``#``). A marker's *rank* says how senior its kind is; a heading's *level* is its depth in this document's outline,
so skipped levels (``一、`` straight to ``1.``) nest correctly. Inline headings (``(一)加强组织保障。一是…``) are
recognised: the title runs to the first sentence end. ``一是/二是`` and numbers inside sentences are never headings.
Every offset refers to the given text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

SEPARATOR = " › "  # joins heading titles into a section path
TITLE_CHARS = 30  # each title is cut to this many characters in a section path

_CN = "一二三四五六七八九十百零〇两"
_CN_ORD = "一二三四五六七八九十"  # numerals of 一、 / （一） markers (两 is never an ordinal)
_DIG = "0-9０-９"

# Heading rules: (rank, regex matched at line start after leading whitespace). Smaller rank = more senior.
_HEADING_RULES: tuple[tuple[int, re.Pattern[str]], ...] = (
    (0, re.compile(rf"第[{_CN}{_DIG}]{{1,4}}(?:编|部分)")),  # 第一部分, 第二编
    (1, re.compile(rf"第[{_CN}{_DIG}]{{1,4}}章")),  # 第三章
    (2, re.compile(rf"第[{_CN}{_DIG}]{{1,4}}节")),  # 第二节
    (3, re.compile(rf"第[{_CN}{_DIG}]{{1,4}}条")),  # 第三条 (articles of rules quoted in full)
    # 一、 一． (stray comma tolerated: 一,、); never 一是 / 十四五 (no mark follows the numeral)
    (4, re.compile(rf"[{_CN_ORD}]{{1,3}}[ \t]*[,，]?[ \t]*[、．.]")),
    (5, re.compile(rf"[（(][ \t]*[{_CN_ORD}]{{1,3}}[ \t]*[)）][、．.]?")),  # （一） (一)
    # 1. 1． 1、 but never 1.5亿元, 3、4月, 2024年 (at most two digits; no decimal; no run of numbers or months)
    (6, re.compile(rf"[{_DIG}]{{1,2}}[ \t]*(?:[.．](?![{_DIG}])|、(?![{_DIG}]{{1,2}}[、,，月日号至到—~-]))")),
    (7, re.compile(rf"[（(][ \t]*[{_DIG}]{{1,2}}[ \t]*[)）][、．.]?")),  # （1） (1)
)
_MARKDOWN = re.compile(r"(#{1,6})[ \t]+(?=\S)")  # rank = hashes - 10: above every numbered kind
_TITLE_END = re.compile(r"[。！？!?；;：:]|一是|其一")  # inline heading: the title stops here (never at its 1st char)
HEADING_END_PUNCT = "。！？!?；;：:"  # may follow a title without making a body
_TITLE_TRIM = " \t\u3000\xa0,，、"
_SENTENCE_END = re.compile(r"[。！？!?；;]+[”’\"'）)》】」』]*|\n")
_LEAD_SPACE = " \t\u3000\xa0\r\ufeff"


@dataclass(frozen=True)
class Heading:
    """A heading found at the start of a line."""

    level: int  # depth in this document's outline, 1 = top
    label: str  # the marker, spaces and stray commas removed: "一、", "(一)", "1.", "第三条", "##"
    title: str  # text after the marker up to the first sentence end (whole line if none)
    start: int  # offset of the marker
    end: int  # offset just after the title


@dataclass(frozen=True)
class Section:
    """A heading and the text under it (its subsections included); path "" is the text before any heading."""

    path: str  # titles from the top down, joined by SEPARATOR
    level: int  # 0 for the text before the first heading
    start: int  # offset of the heading marker (first non-space character for path "")
    body_start: int  # offset just after the heading title
    end: int  # end of the last non-space character before the next heading of the same or a higher level
    heading: Heading | None

    @property
    def title(self) -> str:
        """The heading as a path element, e.g. ``三、存在的不足`` ("" for the text before any heading)."""
        return _path_element(self.heading) if self.heading else ""


# ----------------------------------------------------------------------------------------------------------------
# outline


def _match_marker(text: str, pos: int, end: int) -> tuple[int, int, str] | None:
    """(rank, marker end, label) of a heading marker at ``pos``, or None."""
    m = _MARKDOWN.match(text, pos, end)
    if m:
        return len(m.group(1)) - 10, m.end(), m.group(1)
    for rank, rx in _HEADING_RULES:
        m = rx.match(text, pos, end)
        if m:
            return rank, m.end(), re.sub(r"[\s,，]+", "", m.group())
    return None


def _raw_headings(text: str) -> list[tuple[int, Heading]]:
    """(rank, heading with level 0) for every line that starts with a heading marker."""
    found: list[tuple[int, Heading]] = []
    pos, n = 0, len(text)
    while pos < n:
        eol = text.find("\n", pos)
        eol = n if eol < 0 else eol
        start = pos
        while start < eol and text[start] in _LEAD_SPACE:
            start += 1
        hit = _match_marker(text, start, eol) if start < eol else None
        if hit:
            rank, t0, label = hit
            while t0 < eol and (text[t0] in _LEAD_SPACE or text[t0] in HEADING_END_PUNCT):
                t0 += 1
            m = _TITLE_END.search(text, min(t0 + 1, eol), eol)
            t1 = m.start() if m else eol
            while t1 > t0 and (text[t1 - 1] in _TITLE_TRIM or text[t1 - 1].isspace()):
                t1 -= 1
            if label.startswith("#"):
                while t1 > t0 and text[t1 - 1] in "# \t":
                    t1 -= 1
            found.append((rank, Heading(0, label, text[t0:t1], start, max(t1, t0))))
        pos = eol + 1
    return found


def parse_outline(text: str) -> list[Heading]:
    """Headings of ``text`` in document order, each with its level in this document's outline."""
    out: list[Heading] = []
    stack: list[int] = []  # ranks of the open headings
    for rank, h in _raw_headings(text):
        while stack and stack[-1] >= rank:
            stack.pop()
        stack.append(rank)
        out.append(Heading(len(stack), h.label, h.title, h.start, h.end))
    return out


def _path_element(h: Heading) -> str:
    title = h.title if len(h.title) <= TITLE_CHARS else h.title[:TITLE_CHARS] + "…"
    return title if h.label.startswith("#") else h.label + title


def section_paths(headings: Sequence[Heading]) -> list[str]:
    """Section path of every heading."""
    paths: list[str] = []
    stack: list[tuple[int, str]] = []
    for h in headings:
        while stack and stack[-1][0] >= h.level:
            stack.pop()
        stack.append((h.level, _path_element(h)))
        paths.append(SEPARATOR.join(e for _, e in stack))
    return paths


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) so it neither begins nor ends with whitespace (empty span if only whitespace)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def outline(text: str) -> list[Section]:
    """Sections of ``text``: the text before the first heading (path "", if any) then one per heading.

    A section's span covers its heading and everything up to the next heading of the same or a higher level,
    so ``三、存在的不足`` maps to all the text under it, subsections included.
    """
    headings = parse_outline(text)
    sections: list[Section] = []
    first = headings[0].start if headings else len(text)
    s, e = trim_span(text, 0, first)
    if e > s:
        sections.append(Section("", 0, s, s, e, None))
    for i, (h, path) in enumerate(zip(headings, section_paths(headings), strict=True)):
        stop = next((g.start for g in headings[i + 1:] if g.level <= h.level), len(text))
        _, end = trim_span(text, h.start, stop)
        sections.append(Section(path, h.level, h.start, h.end, max(end, h.end), h))
    return sections


def leaf_segments(text: str) -> list[tuple[int, int, str]]:
    """Leaf spans (start, end, path) between consecutive headings; a heading with no body of its own is joined to
    the deeper heading that follows it (``一、…`` on its own line goes with ``(一)…``)."""
    headings = parse_outline(text)
    paths = section_paths(headings)
    segs: list[tuple[int, int, str]] = []
    if not headings:
        return [(0, len(text), "")]
    if headings[0].start > 0:
        segs.append((0, headings[0].start, ""))
    carry: int | None = None
    for i, h in enumerate(headings):
        stop = headings[i + 1].start if i + 1 < len(headings) else len(text)
        start = h.start if carry is None else carry
        has_body = any(not c.isspace() and c not in HEADING_END_PUNCT for c in text[h.end:stop])
        if not has_body and i + 1 < len(headings) and headings[i + 1].level > h.level:
            carry = start
            continue
        carry = None
        segs.append((start, stop, paths[i]))
    return segs


# ----------------------------------------------------------------------------------------------------------------
# sentences and packing


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans in ``text[start:end]``, cut after ``。！？；!?;`` (with closing quotes) and at newlines.

    Spans are trimmed of whitespace; together they hold every non-space character of the range.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for m in _SENTENCE_END.finditer(text, start, end):
        s, e = trim_span(text, pos, m.end())
        if e > s:
            spans.append((s, e))
        pos = m.end()
    s, e = trim_span(text, pos, end)
    if e > s:
        spans.append((s, e))
    return spans

