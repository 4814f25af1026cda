"""Time-resolved passages: the absolute years a passage speaks about, and whether it states results or plans.

A report's period headings (``一、2023年工作回顾``, ``二、今年工作安排``, ``下一步工作打算``; with or without a list
marker) open stretches of results or plans; ``今年``, ``去年``, ``过去五年``, ``明年`` and ``十四五`` are read as
years from the report's own frame: the year it is about (``Meta.year``) and the year it speaks from (its 今年, by
genre: a work report delivered in N speaks from N). Words are data (``data/periods.yaml``).

    frame = Frame.of(meta)
    period_of(text, start, end, headings, frame)   # Period(years=(2024,), kind="plan")
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pydantic import BaseModel, ConfigDict

from ragreports.data import load_rules
from ragreports.extract.genres import genre_named
from ragreports.text.outline import parse_outline
from ragreports.types import Chunk, Meta

RESULT, PLAN = "result", "plan"
_YEAR = re.compile(r"(?<![\d\-—~～至到])((?:19|20)\d{2})\s*年(?!\s*[-—~～至到]\s*(?:19|20)\d{2})")
_NAME = re.compile(r"《[^》]{0,80}》|“[^”]{0,40}”")


class PeriodsFile(BaseModel):
    """``data/periods.yaml``."""

    model_config = ConfigDict(extra="forbid")
    present_offsets: dict[str, int]
    about_words: list[str]
    present_ranges: dict[str, tuple[int, int]]
    named_periods: dict[str, tuple[int, int]]
    heading_max_chars: int
    review_headings: str
    plan_headings: str
    plan_cues: list[str]


@functools.lru_cache(maxsize=1)
def _rules() -> PeriodsFile:
    return load_rules("periods", PeriodsFile)


@functools.lru_cache(maxsize=1)
def _words() -> re.Pattern[str]:
    r = _rules()
    words = [*r.present_offsets, *r.about_words, *r.present_ranges, *r.named_periods]
    return re.compile("|".join(map(re.escape, sorted(words, key=len, reverse=True))))


@dataclass(frozen=True)
class Frame:
    """The years a report's words count from: the year it is about and the year it speaks from (its 今年)."""

    about: int | None
    present: int | None

    @classmethod
    def of(cls, meta: Meta) -> Frame:
        return cls(meta.year, genre_named(meta.genre).present_year(meta.year))


@dataclass(frozen=True)
class Period:
    years: tuple[int, ...] = ()  # the years its part of the report is about
    kind: str = ""  # RESULT | PLAN | "" (not known)
    mentions: tuple[int, ...] = ()  # other years the passage names


def years_in(text: str, frame: Frame) -> list[int]:
    """The absolute years a text speaks about: written years (not inside 《titles》 or “names”, not the ends of a
    span such as 2021—2025年), and the years its time words stand for in ``frame``."""
    r = _rules()
    body = _NAME.sub(lambda m: " " * len(m.group(0)), text)
    out = [int(m.group(1)) for m in _YEAR.finditer(body)]
    for m in _words().finditer(body):
        w = m.group(0)
        if w in r.named_periods:
            a, b = r.named_periods[w]
            out += list(range(a, b + 1))
        elif w in r.about_words and frame.about is not None:
            out.append(frame.about)
        elif w in r.present_offsets and frame.present is not None:
            out.append(frame.present + r.present_offsets[w])
        elif w in r.present_ranges and frame.present is not None:
            a, b = r.present_ranges[w]
            out += list(range(frame.present + a, frame.present + b + 1))
    return [y for y in out if 1949 <= y <= 2100]


def heading_kind(line: str, frame: Frame, marked: bool = False) -> str:
    """RESULT or PLAN for a period heading, "" for any other line. A line is a candidate when it is short, without a
    sentence end and with a review or plan word, or (``marked``) a top heading of the outline (一、高质量做好2022年
    各项工作，…). The years it names decide (the year the report is about or earlier: results; later: plans),
    else its words (review words first: 重点工作完成情况 reports results)."""
    r = _rules()
    s = line.strip()
    if not s or (not marked and (len(s) > r.heading_max_chars or re.search(r"[。；;！!？?]$|[，,]", s))):
        return ""
    head = s[: r.heading_max_chars]
    cue = RESULT if re.search(r.review_headings, head) else PLAN if re.search(r.plan_headings, head) else ""
    if not (cue or marked):
        return ""
    years = years_in(head, frame)
    if years and frame.about is not None:  # the years a heading names decide: the reviewed year or later ones
        if max(years) <= frame.about:
            return RESULT
        if min(years) > frame.about:
            return PLAN
    return cue


def period_headings(text: str, frame: Frame) -> list[tuple[int, Period]]:
    """(offset, period) of every period heading in document order: the period in effect from there on."""
    top = {h.start for h in parse_outline(text) if h.level == 1}
    out: list[tuple[int, Period]] = []
    pos = 0
    for line in text.split("\n"):
        lead = len(line) - len(line.lstrip())
        kind = heading_kind(line, frame, marked=pos + lead in top)
        if kind:
            years = sorted(set(years_in(line[: lead + _rules().heading_max_chars], frame)))
            if not years:
                base = frame.about if kind == RESULT else frame.present
                if kind == PLAN and frame.present == frame.about and base is not None:
                    base += 1  # a report written in the year it is about plans the next one
                years = [base] if base is not None else []
            out.append((pos, Period(tuple(years), kind)))
        pos += len(line) + 1
    return out


def plan_stretches(text: str, frame: Frame) -> list[tuple[int, int]]:
    """Spans of ``text`` under a plan heading (up to the next period heading, or the end)."""
    heads = period_headings(text, frame)
    ends = [off for off, _ in heads[1:]] + [len(text)] * bool(heads)
    return [(off, end) for (off, p), end in zip(heads, ends, strict=True) if p.kind == PLAN]


def period_of(text: str, start: int, end: int, headings: Sequence[tuple[int, Period]], frame: Frame) -> Period:
    """The period of ``text[start:end]``: the heading period in effect at ``start`` (the report's own year when
    none is) joined with the years the passage itself names."""
    i = bisect_right([off for off, _ in headings], start) - 1
    base = headings[i][1] if i >= 0 else Period((frame.about,) if frame.about is not None else (), "")
    own = set(years_in(text[start:end], frame)) - set(base.years)
    return Period(base.years, base.kind, tuple(sorted(own)))


def annotate_chunks(chunks: Sequence[Chunk], text: str, meta: Meta) -> list[Chunk]:
    """The chunks with the years they speak about and whether they state results or plans."""
    frame = Frame.of(meta)
    heads = period_headings(text, frame)
    out = []
    for c in chunks:
        p = period_of(text, c.start, c.end, heads, frame)
        out.append(replace(c, years=p.years, kind=p.kind, mentions=p.mentions))
    return out


def asks_for_plan(question: str) -> bool:
    """The question asks for a target or plan (预期目标, 计划 …), not for what happened."""
    return any(c in question for c in _rules().plan_cues)
