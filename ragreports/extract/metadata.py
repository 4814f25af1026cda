"""Report metadata from its cleaned text: issuer, region, year reported on, publication date, title.

``extract_meta(text)`` reads only the text (never the file name): the title line, labelled date lines
(发布日期/更新时间/...), a signature at the end, and mentions of the issuing body in the body. A body named only
by a short form (``市科技局``, ``区科技局``) is resolved with the place the report names for the same body
elsewhere (``《常州市科学技术局…办法》``, ``江阴市科技局`` signature) and expanded to its full official name
(``ragreports/data/meta_rules.yaml``). A field the text does not support is None: never a guess.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ragreports.data import load_rules
from ragreports.text.numbers import parse_chinese_numeral
from ragreports.types import Meta

_CJK = r"\u3400-\u9fff"
# characters that may precede a place name inside running text (于常州市, 由张家港市)
_FUNCTION_CHARS = set("在对由和与及向为是将等的从把被于了并经会、同赴到至共")  # 共: 中共XX市…党组
_LEVEL_CHARS = set("省市州区县盟旗")
# characters that never occur in a place name before a level word (年度市, 每月, 全日)
_NOT_PLACE_CHARS = set("年度月日时期届次个项件号第我全本各该这那其")


class MetaRulesFile(BaseModel):
    """``data/meta_rules.yaml``: bureau short forms, level words, date labels and title/year cues."""

    model_config = ConfigDict(extra="forbid")
    bureau_short_forms: dict[str, str]
    levels: list[str]
    province_levels: list[str]
    not_places: list[str]
    published_labels: list[str]
    title_endings: list[str]
    title_max_chars: int
    review_last_year: list[str]
    next_year_cues: list[str]
    not_issuers_by_frequency: list[str]
    child_levels: list[str]
    parent_levels: list[str]


def bureau_short_forms() -> dict[str, str]:
    """Short forms of bureau names -> full official names (``科技局`` -> ``科学技术局``); a full name maps to itself."""
    return dict(load_rules("meta_rules", MetaRulesFile).bureau_short_forms)


class _MetaRules:
    def __init__(self) -> None:
        d = load_rules("meta_rules", MetaRulesFile)
        self.short: dict[str, str] = dict(d.bureau_short_forms)
        self.levels: list[str] = sorted(d.levels, key=len, reverse=True)
        self.province_levels: list[str] = list(d.province_levels)
        self.not_places: set[str] = set(d.not_places)
        self.published_labels: list[str] = list(d.published_labels)
        self.title_endings: list[str] = sorted(d.title_endings, key=len, reverse=True)
        self.title_max: int = d.title_max_chars
        self.review_last_year: list[str] = list(d.review_last_year)
        self.next_year_cues: list[str] = list(d.next_year_cues)
        self.not_issuers: set[str] = set(d.not_issuers_by_frequency)
        self.child_levels: set[str] = set(d.child_levels)
        self.parent_levels: set[str] = set(d.parent_levels)
        cores = "|".join(sorted(self.short, key=len, reverse=True))
        levels = "|".join(self.levels)
        self.bureau_re = re.compile(f"(?P<level>{levels})(?P<core>{cores})")
        self.level_re = re.compile(levels)


@functools.lru_cache(maxsize=1)
def _rules() -> _MetaRules:
    return _MetaRules()


@dataclass(frozen=True)
class Mention:
    """A mention of a government body: ``place`` may be empty (``市科技局``)."""

    place: str  # e.g. "常州市", "江门市江海区", ""
    level: str  # 市 / 区 / 县 / 省 ...
    core: str  # full official bureau name, e.g. 科学技术局
    start: int


# ---------------------------------------------------------------------------------------------- places


def _is_cjk(ch: str) -> bool:
    return bool(re.match(f"[{_CJK}]", ch))


def _place_before(text: str, i: int) -> str:
    """The place name that ends right before position ``i`` (where a level word starts), or "".

    A candidate of 2-4 characters must start at a word boundary (start of line, punctuation, or a function
    character such as 于/由/在), must not be a common word (全市, 我区, 年度市), and must either be written
    with its level word at least twice in the text or open a line or a title/quote (signatures, 《…》).
    """
    r = _rules()
    for length in (2, 3, 4):
        s = i - length
        if s < 0:
            break
        name = text[s:i]
        if not all(_is_cjk(c) for c in name) or any(lv in name for lv in ("省", "市", "区", "县")):
            break
        prev = text[s - 1] if s > 0 else ""
        if (name in r.not_places or name[:1] in r.not_places or name[-1:] in ("我", "全", "本", "各", "该")
                or any(c in _NOT_PLACE_CHARS for c in name) or name.startswith("中共")):
            continue
        if prev in _LEVEL_CHARS and s >= 3:
            # a higher-level place right before (杭州市|西湖区, 浙江省|龙泉市) vouches for this one
            if _place_before(text, s - 1):
                return name
            continue
        if prev and _is_cjk(prev) and prev not in _FUNCTION_CHARS:
            continue
        strong = not prev or prev in "\n《“「(（【" or text.startswith("中共", s - 2)
        if strong or _count_place(text, name + text[i]) >= 2:
            return name
    return ""


def _count_place(text: str, name_level: str) -> int:
    return text.count(name_level)


def _place_with_parents(text: str, i: int) -> str:
    """Place name (with any directly preceding higher-level places) ending before level-word position ``i``."""
    r = _rules()
    name = _place_before(text, i)
    if not name:
        return ""
    start = i - len(name)
    parts = [name]
    while True:
        found = False
        for lv in r.levels:
            j = start - len(lv)
            if j > 0 and text.startswith(lv, j):
                parent = _place_before(text, j)
                if parent:
                    parts.insert(0, parent + lv)
                    start = j - len(parent)
                    found = True
                break
        if not found:
            break
    return "".join(parts)


def _mentions(text: str) -> list[Mention]:
    r = _rules()
    out = []
    for m in r.bureau_re.finditer(text):
        level, core = m.group("level"), r.short[m.group("core")]
        place = _place_with_parents(text, m.start())
        out.append(Mention(place=place + level if place else "", level=level, core=core, start=m.start()))
    return out


def _strip_province(place: str, level: str) -> str:
    r = _rules()
    if level in r.province_levels:
        return place
    for pl in r.province_levels:
        k = place.find(pl)
        if k > 0 and k + len(pl) < len(place):
            return place[k + len(pl):]
    return place


def _place_counts(text: str, level: str) -> Counter[str]:
    """How often each place name of ``level`` is written (常州市 in 常州市2024年..., 我市 ignored)."""
    counts: Counter[str] = Counter()
    for m in re.finditer(re.escape(level), text):
        name = _place_before(text, m.start())
        if name:
            counts[name + level] += 1
    return counts


# ---------------------------------------------------------------------------------------------- lines


def _lines(text: str) -> list[tuple[int, str]]:
    out, pos = [], 0
    for line in text.split("\n"):
        if line.strip():
            out.append((pos, line.strip()))
        pos += len(line) + 1
    return out


def find_title(text: str) -> str | None:
    """The report's own title: an early line without sentence punctuation ending like a report title."""
    r = _rules()
    for _pos, line in _lines(text)[:12]:
        if len(line) > r.title_max or len(line) < 6 or re.search(r"[，,。；;>]|来源|日期|时间|浏览|位置", line):
            continue
        core = re.sub(r"[（(][^（()）]*[)）]$", "", line)
        has_year = re.search(r"(\d{4}|[〇零一二三四五六七八九]{4})年|报告|总结", line)
        if any(core.endswith(e) for e in r.title_endings) and has_year:
            return line
    return None


_DATE = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})"
_CN_DATE = "([〇零一二三四五六七八九]{4})年([一二三四五六七八九十]{1,3})月([一二三四五六七八九十]{1,3})日"


def _valid(y: int, m: int, d: int) -> str | None:
    if 1949 <= y <= 2100 and 1 <= m <= 12 and 1 <= d <= 31:
        return f"{y:04d}-{m:02d}-{d:02d}"
    return None


def _cn_date(s: str) -> str | None:
    m = re.fullmatch(_CN_DATE, s)
    if not m:
        return None
    y, mo, d = (parse_chinese_numeral(g) for g in m.groups())
    return _valid(y, mo, d) if None not in (y, mo, d) else None  # type: ignore[arg-type]


def find_published(text: str) -> str | None:
    """Publication date from a labelled date line, else from a dated signature at the end; YYYY-MM-DD."""
    r = _rules()
    lines = _lines(text)
    edge = {pos for pos, _ in lines[:15] + lines[-12:]}
    for label in r.published_labels:
        generic = len(label) <= 2
        for m in re.finditer(re.escape(label) + r"\s*[:：]\s*" + _DATE, text):
            line_start = text.rfind("\n", 0, m.start()) + 1
            if generic and not any(p == line_start or abs(p - line_start) < 2 for p in edge):
                continue
            if label == "时间" and text[m.start() - 2:m.start()] in ("更新", "发布"):
                continue
            v = _valid(*(int(g) for g in m.groups()[-3:]))
            if v:
                return v
    for _pos, line in reversed(lines[-8:]):
        s = re.sub(r"\s", "", line)
        if len(s) > 40:
            continue
        # a date line, or a date ending a short signature line (江阴市科技局 2019年1月8日)
        m = (re.search(r"(?<!\d)(\d{4})年(\d{1,2})月(\d{1,2})日?$", s)
             or re.fullmatch(r"(\d{4})年(\d{2})(\d{2})", s))
        if m:
            v = _valid(*(int(g) for g in m.groups()))
            if v:
                return v
        m = re.search(r"[〇零一二三四五六七八九]{4}年[一二三四五六七八九十]{1,3}月[一二三四五六七八九十]{1,3}日$", s)
        v = _cn_date(m.group(0)) if m else None
        if v:
            return v
    return None


def _year_of(s: str) -> int | None:
    m = re.search(r"(?<!\d)((?:19|20)\d{2})(?:\s*年|以来)", s)
    if m:
        return int(m.group(1))
    m = re.search(r"([〇零一二三四五六七八九]{4})年", s)
    if m:
        v = parse_chinese_numeral(m.group(1))
        return v if v and 1949 <= v <= 2100 else None
    return None


def find_year(text: str, title: str | None, published: str | None) -> int | None:
    """The year reported on: title, else the opening of the body, else a next-year plan heading minus one,
    else the publication year minus one when the report reviews "过去一年"."""
    r = _rules()
    if title:
        y = _year_of(re.sub(r"《[^》]*》", "", title))
        if y:
            return y
    body = [line for _p, line in _lines(text) if len(line) > 40]
    if body:
        opening = re.sub(r"《[^》]*》|[（(][^（）()]*[)）]", "", body[0])[:120]
        m = re.search(r"(?<![\d\-—~])((?:19|20)\d{2})(?:年度|年以来|以来|年[，,、]|年是|年我|年，)", opening)
        if m:
            return int(m.group(1))
    cues = "|".join(map(re.escape, r.next_year_cues))
    for _p, line in _lines(text):
        m = re.match(r"^[一二三四五六七八九十、.．()（）\d]*\s*((?:19|20)\d{2})年[^。，,]{0,20}?(?:" + cues + ")", line)
        if m and len(line) < 40:
            return int(m.group(1)) - 1
    if published and any(c in text for c in r.review_last_year):
        return int(published[:4]) - 1
    return None


# ---------------------------------------------------------------------------------------------- issuer


def _issuer_mention(text: str, title: str | None) -> Mention | None:
    """The mention that names the issuing body: title, 来源 line, signature, else the most frequent."""
    lines = _lines(text)
    if title:
        ms = _mentions(title)
        if ms:
            return ms[0]
    for _p, line in lines[:15]:
        m = re.search(r"(?:信息来源|来源|发布机构|发文机关|发布单位)\s*[:：]\s*(\S+)", line)
        if m:
            ms = _mentions(m.group(1))
            if ms:
                return ms[0]
    for _p, line in reversed(lines[-8:]):
        sig = _signature_name(line)
        ms = _mentions(sig)
        if ms and len(sig) <= 30 and ms[0].start <= len(ms[0].place) + 1 and sig.endswith(_short_end(sig)):
            return ms[0]
    # no title, source line or signature: a body the report names far more often than any other
    ms = [m for m in _mentions(text) if m.core not in _rules().not_issuers]
    counts = Counter((m.level, m.core) for m in ms).most_common(2)
    if not counts or counts[0][1] < 3 or (len(counts) > 1 and counts[0][1] < 2 * counts[1][1]):
        return None
    level, core = counts[0][0]
    same = [m for m in ms if (m.level, m.core) == (level, core)]
    return next((m for m in same if not m.place), same[0])


def _signature_name(line: str) -> str:
    """A signature line reduced to the body's name: ``中共江阴市科技局党组 2019年1月8日`` -> ``江阴市科技局``."""
    s = re.sub(r"\s", "", line)
    s = re.sub(r"(\d{4}年\d{1,2}月\d{1,2}日?|" + _CN_DATE + ")$", "", s)
    s = re.sub(r"^中共", "", s)
    return re.sub(r"(党组|党委|[（(]盖章[)）])$", "", s)


def _short_end(s: str) -> str:
    """The bureau word a signature line ends with (so a signature is a line that is only a body's name)."""
    r = _rules()
    for k in sorted(r.short, key=len, reverse=True):
        if s.endswith(k):
            return k
    return "\0"


def _resolve_place(text: str, mention: Mention) -> str:
    if mention.place:
        return mention.place
    same = Counter(m.place for m in _mentions(text)
                   if m.place and m.level == mention.level and m.core == mention.core)
    if same:
        return same.most_common(1)[0][0]
    counts = _place_counts(text, mention.level)
    if counts:
        name, n = counts.most_common(1)[0]
        if n >= 2:
            return name
    return ""


def _parent_city(text: str, place: str, mention: Mention) -> str:
    """For a district/county body named without its city (江海区), the city whose same kind of body or
    government the report names at least twice (江门市科技局…, 江门市人民政府…); "" when none qualifies."""
    r = _rules()
    if mention.level not in r.child_levels or _rules().level_re.search(place[:-1]):
        return ""
    counts = Counter(m.place for m in _mentions(text)
                     if m.place and m.level in r.parent_levels and m.core in (mention.core, "人民政府"))
    if not counts:
        return ""
    (city, n), *rest = counts.most_common(2)
    if n < 2 or (rest and rest[0][1] == n):
        return ""
    return city


def extract_meta(text: str, source: str | None = None) -> Meta:
    """Metadata of a report from its cleaned text. ``source`` is accepted for interface symmetry and ignored:
    file names are not evidence."""
    del source
    title = find_title(text)
    published = find_published(text)
    year = find_year(text, title, published)
    issuer = region = None
    mention = _issuer_mention(text, title)
    if mention is not None:
        place = _resolve_place(text, mention)
        if place:
            place = _strip_province(place, mention.level)
            place = _parent_city(text, place, mention) + place
            region = place
            issuer = place + mention.core
    return Meta(issuer=issuer, region=region, year=year, published=published, title=title)
