"""Metadata cues read off a report's lines: the title, labelled and signed dates, the year a report is about;
and the weighted ballot every field is decided by (``data/meta_rules.yaml``). :mod:`ragreports.extract.metadata`
adds the issuer's cues and decides.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ragreports.data import load_rules
from ragreports.extract.genres import Genre, detect_genre
from ragreports.text.numbers import parse_chinese_numeral
from ragreports.types import MetaEvidence


class _Weights(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: float
    delegate: float
    session: float
    source: float
    index_block: float
    breadcrumb: float
    banner: float
    opening: float
    signature: float
    byline: float
    mention: float
    mention_cap: float
    documents: float
    self_reference: float
    review_heading: float
    opening_year: float
    report_year_phrase: float
    plan_heading: float
    published_minus_one: float


class MetaRulesFile(BaseModel):
    """``data/meta_rules.yaml``."""

    model_config = ConfigDict(extra="forbid")
    source_labels: list[str]
    source_not_bodies: list[str]
    published_labels: list[str]
    clock_lines: list[str]
    breadcrumb_separators: list[str]
    index_bullets: list[str]
    site_banner: str
    delegate: str
    session: str
    title_endings: list[str]
    title_max_chars: int
    title_search_lines: int
    review_headings: list[str]
    review_past_year: list[str]
    opening_year: str
    report_year_phrase: str
    plan_headings: list[str]
    superior_before: str
    superior_after: str
    weights: _Weights


@functools.lru_cache(maxsize=1)
def meta_rules() -> MetaRulesFile:
    return load_rules("meta_rules", MetaRulesFile)


# level word of a body written without its place -> the levels of unit it can stand for
_DATE = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})"
_LIST_MARK = re.compile(r"^(?:[一二三四五六七八九十]{1,3}\s*[、.．]|[（(]\s*[一二三四五六七八九十\d]{1,3}\s*[)）]"
                        r"|\d{1,2}\s*[、.．](?!\d))\s*")
CN_DATE = "([〇零一二三四五六七八九]{4})年([一二三四五六七八九十]{1,3})月([一二三四五六七八九十]{1,3})日"


@dataclass(frozen=True)
class Line:
    start: int
    text: str  # stripped
    offset: int  # start of the stripped text in the document


def lines_of(text: str) -> list[Line]:
    out, pos = [], 0
    for line in text.split("\n"):
        s = line.strip()
        if s:
            out.append(Line(pos, s, pos + line.index(s)))
        pos += len(line) + 1
    return out


# ------------------------------------------------------------------------------------------------------- votes


@dataclass
class Vote:
    value: object
    weight: float
    cue: str
    start: int
    end: int


class Ballot:
    """Weighted votes per key; the winner keeps its strongest cue as evidence."""

    def __init__(self) -> None:
        self.votes: dict[object, list[Vote]] = defaultdict(list)

    def add(self, key: object, value: object, weight: float, cue: str, start: int, end: int) -> None:
        if weight > 0:
            self.votes[key].append(Vote(value, weight, cue, start, end))

    def total(self, key: object) -> float:
        return sum(v.weight for v in self.votes.get(key, ()))

    def winner(self) -> tuple[object, Vote, float] | None:
        """(key, strongest vote of the winning key, confidence); None without votes; ties go to the earliest."""
        if not self.votes:
            return None
        totals = {k: self.total(k) for k in self.votes}
        key = max(totals, key=lambda k: (totals[k], -min(v.start for v in self.votes[k])))
        best = max(self.votes[key], key=lambda v: (v.weight, -v.start))
        return key, best, round(totals[key] / sum(totals.values()), 3)


def evidence_of(field: str, value: str | int, vote: Vote, confidence: float, text: str) -> MetaEvidence:
    return MetaEvidence(field, value, text[vote.start:vote.end], vote.start, vote.end, vote.cue, confidence)


# ------------------------------------------------------------------------------------------------------- title


def title_line(lines: Sequence[Line]) -> Line | None:
    r = meta_rules()
    for ln in lines[: r.title_search_lines]:
        line = ln.text
        if len(line) > r.title_max_chars or len(line) < 6 or re.search(r"[，,。；;>]|来源|日期|时间|浏览|位置", line):
            continue
        core = re.sub(r"[（(][^（()）]*[)）]$", "", line)
        has_year = re.search(r"(\d{4}|[〇零一二三四五六七八九]{4})年|报告|总结|公报", line)
        if any(core.endswith(e) for e in r.title_endings) and has_year:
            return ln
    return None


def find_title(text: str) -> str | None:
    """The report's own title: an early line without sentence punctuation ending like a report title."""
    ln = title_line(lines_of(text))
    return ln.text if ln else None


# ------------------------------------------------------------------------------------------------------- dates


def valid_date(y: int, m: int, d: int) -> str | None:
    if 1949 <= y <= 2100 and 1 <= m <= 12 and 1 <= d <= 31:
        return f"{y:04d}-{m:02d}-{d:02d}"
    return None


def _cn_date(s: str) -> str | None:
    m = re.fullmatch(CN_DATE, s)
    if not m:
        return None
    y, mo, d = (parse_chinese_numeral(g) for g in m.groups())
    return valid_date(y, mo, d) if None not in (y, mo, d) else None  # type: ignore[arg-type]


def _is_clock(line: str) -> bool:
    return any(re.search(p, line) for p in meta_rules().clock_lines)


def published_votes(text: str, lines: Sequence[Line], ballot: Ballot) -> None:
    """Labelled date lines (most trusted first), a dated index block near the top, a dated signature at the end."""
    r = meta_rules()
    edge = {ln.start for ln in list(lines[:15]) + list(lines[-12:])}
    for rank, label in enumerate(r.published_labels):
        generic = len(label) <= 2
        for m in re.finditer(re.escape(label) + r"\s*[:：]\s*" + _DATE, text):
            line_start = text.rfind("\n", 0, m.start()) + 1
            line = text[line_start:text.find("\n", m.end()) if "\n" in text[m.end():] else len(text)]
            if (generic and line_start not in edge) or _is_clock(line):
                continue
            if label == "时间" and text[m.start() - 2:m.start()] in ("更新", "发布", "发表"):
                continue
            v = valid_date(*(int(g) for g in m.groups()[-3:]))
            if v:
                ballot.add(v, v, 20 - rank, "label", m.start(), m.end())
                return
    bullets = tuple(r.index_bullets)
    for ln in lines[:12]:
        if ln.text.startswith(bullets) and (m := re.fullmatch(r"[•·●▪]\s*" + _DATE, ln.text)):
            v = valid_date(*(int(g) for g in m.groups()))
            if v:
                ballot.add(v, v, 5, "index_block", ln.offset, ln.offset + len(ln.text))
                return
    for ln in reversed(lines[-8:]):
        s = re.sub(r"\s", "", ln.text)
        if len(s) > 40:
            continue
        m = (re.search(r"(?<!\d)(\d{4})年(\d{1,2})月(\d{1,2})日?$", s) or re.fullmatch(r"(\d{4})年(\d{2})(\d{2})", s))
        v = valid_date(*(int(g) for g in m.groups())) if m else None
        if v is None and (cm := re.search(CN_DATE + "$", s)):
            v = _cn_date(cm.group(0))
        if v:
            ballot.add(v, v, 4, "signature", ln.offset, ln.offset + len(ln.text))
            return


def find_published(text: str) -> str | None:
    """Publication date from a labelled date line, an index block, or a dated signature at the end; YYYY-MM-DD."""
    ballot = Ballot()
    published_votes(text, lines_of(text), ballot)
    w = ballot.winner()
    return str(w[0]) if w else None


# ------------------------------------------------------------------------------------------------------- years


def _year_of(s: str) -> int | None:
    m = re.search(r"(?<!\d)((?:19|20)\d{2})(?:\s*年|以来)", s)
    if m:
        return int(m.group(1))
    m = re.search(r"([〇零一二三四五六七八九]{4})年", s)
    if m:
        v = parse_chinese_numeral(m.group(1))
        return v if v and 1949 <= v <= 2100 else None
    return None


def body_lines(lines: Sequence[Line], skip: int) -> list[Line]:
    """Lines of running text: long, with clause punctuation, not a navigation trail."""
    seps = tuple(meta_rules().breadcrumb_separators)
    return [ln for ln in lines[skip:] if len(ln.text) > 30 and re.search("[，,。；;]", ln.text)
            and not any(s in ln.text for s in seps)]


def year_votes(text: str, lines: Sequence[Line], title: Line | None, genre: Genre, delivered: int | None,
                published: str | None, ballot: Ballot) -> None:
    r, w = meta_rules(), meta_rules().weights
    offset = -1 if genre.title_year == "delivered" else 0
    if title and (y := _year_of(re.sub(r"《[^》]*》", "", title.text))):
        ballot.add(y + offset, y + offset, w.title, "title", title.offset, title.offset + len(title.text))
    if delivered is not None and genre.title_year == "delivered":
        m = re.search(meta_rules().session, text)
        if m:
            ballot.add(delivered - 1, delivered - 1, w.session, "session", m.start(), m.end())
    for ln in lines:
        line = _LIST_MARK.sub("", ln.text) if len(ln.text) < 40 else ""
        for p in r.review_headings:
            if line and (m := re.match(p, line)):
                y = int(m.group("year"))
                ballot.add(y, y, w.review_heading, "review_heading", ln.offset, ln.offset + len(ln.text))
        for p in r.plan_headings:
            if len(ln.text) < 40 and (m := re.match(p, ln.text)):
                y = int(m.group("year")) - 1
                ballot.add(y, y, w.plan_heading, "plan_heading", ln.offset, ln.offset + len(ln.text))
    past = re.compile("|".join(map(re.escape, r.review_past_year)))
    for ln in body_lines(lines, 0)[:3]:
        opening = re.sub(r"《[^》]*》|[（(][^（）()]*[)）]", lambda m: " " * len(m.group(0)), ln.text)[:160]
        if m := re.match(r.opening_year, opening):
            y = int(m.group("year"))
            ballot.add(y, y, w.opening_year, "opening_year", ln.offset + m.start("year"), ln.offset + m.end("year") + 1)
            break
        heading = next((h.text for h in reversed(lines) if h.offset < ln.offset and len(h.text) < 40), "")
        if (past.search(opening) or past.search(heading)) and (m := re.match(r"((?:19|20)\d{2})年是", ln.text)):
            y = int(m.group(1))
            ballot.add(y, y, w.opening_year, "opening_year", ln.offset + m.start(), ln.offset + m.end())
            break
    for m in re.finditer(r.report_year_phrase, text[:3000]):
        y = int(m.group("year"))
        ballot.add(y, y, w.report_year_phrase, "report_year_phrase", m.start(), m.end())
    if not ballot.votes and published and any(c in text for c in r.review_past_year):
        y = int(published[:4]) - 1
        i = min(text.find(c) for c in r.review_past_year if c in text)
        ballot.add(y, y, w.published_minus_one, "published_minus_one", i, i + 2)


def find_year(text: str, title: str | None, published: str | None) -> int | None:
    """The year reported on (see :func:`extract_meta`)."""
    lines = lines_of(text)
    head = next((ln for ln in lines if ln.text == title), None) if title else None
    ballot = Ballot()
    year_votes(text, lines, head, detect_genre(title, text), None, published, ballot)
    w = ballot.winner()
    return int(w[0]) if w else None  # type: ignore[call-overload]


# ------------------------------------------------------------------------------------------------------- issuer
