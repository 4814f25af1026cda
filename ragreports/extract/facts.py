"""Fact extraction: every quantitative fact a report states, with a verbatim quote and its offsets.

``extract_facts(text)`` takes the cleaned text (``ragreports.text.cleaning.clean``) and returns :class:`Fact` items in
text order. Rules follow spec/gold-format.md ("Which numbers are facts"); the word lists are data in
``ragreports/data/facts_rules.yaml`` and the units in ``facts_units.yaml``. Pure and deterministic.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ragreports.data import load_rules
from ragreports.extract.periods import Frame, plan_stretches
from ragreports.text.normalize import longest_common_run
from ragreports.text.numbers import QuantityMatch, iter_quantities, match_unit
from ragreports.text.numbers import rules as number_rules
from ragreports.types import Fact, Meta


class FactRulesFile(BaseModel):
    """``data/facts_rules.yaml``: what is not a fact, and how quotes and labels are cut."""

    model_config = ConfigDict(extra="forbid")
    protected_pairs: list[tuple[str, str]]
    protected_max_chars: int = 60
    ordinal_prefixes: list[str]
    range_prefixes: list[str]
    vague_prefixes: list[str]
    name_words: list[str]
    restatement_generic_nouns: list[str]
    restatement_referring: list[str]
    year_after: list[str]
    year_before: list[str]
    blocked_after: dict[str, list[str]]
    rank_statement: str
    rank_units: list[str]
    rank_before: list[str]
    phase_units: list[str]
    phase_after: list[str]
    clause_breaks: str
    soft_breaks: str
    gap_separators: list[str]
    quote_max_before: int
    quote_max_after: int
    quote_overflow: int
    quote_cut_before: list[str]
    quote_cut_after: list[str]
    label_drop_leading: list[str]
    label_drop_trailing: list[str]
    label_verbal_units: list[str]
    label_post_cut: list[str]
    label_suffix: dict[str, str]


class _FactRules:
    def __init__(self) -> None:
        d = load_rules("facts_rules", FactRulesFile)
        self.pairs: list[tuple[str, str]] = [(str(a), str(b)) for a, b in d.protected_pairs]
        self.protected_max: int = d.protected_max_chars
        self.ordinal: list[str] = sorted(d.ordinal_prefixes, key=len, reverse=True)
        self.range_prefixes: list[str] = list(d.range_prefixes)
        self.vague_prefixes: list[str] = list(d.vague_prefixes)
        self.name_words: list[str] = list(d.name_words)
        self.year_after: list[str] = list(d.year_after)
        self.year_before: list[str] = sorted(d.year_before, key=len, reverse=True)
        self.blocked_after: dict[str, list[str]] = {str(k): list(v) for k, v in d.blocked_after.items()}
        self.rank_statement = re.compile(d.rank_statement)
        self.rank_units: set[str] = set(d.rank_units)
        self.rank_before: list[str] = list(d.rank_before)
        self.phase_units: set[str] = set(d.phase_units)
        self.phase_after: set[str] = set(d.phase_after)
        self.breaks: str = d.clause_breaks
        self.soft: str = d.soft_breaks
        self.gap_separators: list[str] = list(d.gap_separators)
        self.generic_nouns: list[str] = list(d.restatement_generic_nouns)
        self.referring: list[str] = list(d.restatement_referring)
        self.max_before: int = int(d.quote_max_before)
        self.max_after: int = int(d.quote_max_after)
        self.overflow: int = int(d.quote_overflow)
        self.right_cut_before: list[str] = list(d.quote_cut_before)
        self.left_cut_after: list[str] = list(d.quote_cut_after)
        self.drop_lead: list[str] = sorted(d.label_drop_leading, key=len, reverse=True)
        self.drop_trail: list[str] = sorted(d.label_drop_trailing, key=len, reverse=True)
        self.suffix: dict[str, str] = {str(k): str(v) for k, v in d.label_suffix.items()}
        self.verbal_units: set[str] = set(d.label_verbal_units)
        self.post_cut: str = "|".join(map(re.escape, d.label_post_cut))


@functools.lru_cache(maxsize=1)
def _rules() -> _FactRules:
    return _FactRules()


@dataclass(frozen=True)
class _Cand:
    q: QuantityMatch
    clause_start: int
    clause_end: int
    sentence: int  # index of the sentence (split on 。；!? and newlines)
    paragraph: int


# ---------------------------------------------------------------------------------------------- filtering


def protected_spans(text: str) -> list[tuple[int, int]]:
    """Spans inside paired quotes/title marks (names, titles, slogans): their numbers are not facts."""
    r = _rules()
    spans: list[tuple[int, int]] = []
    for open_, close in r.pairs:
        i = 0
        while True:
            s = text.find(open_, i)
            if s < 0:
                break
            e = text.find(close, s + 1)
            if e < 0:
                break
            body = text[s + 1:e]
            if e - s > r.protected_max or "\n" in body:
                i = s + 1
                continue
            spans.append((s, e + 1))
            i = e + 1
    return spans


def _inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(s < pos < e for s, e in spans)


def _is_year_like(q: QuantityMatch) -> bool:
    if q.value >= 1000 and q.value < 2200 and float(q.value).is_integer():
        return True
    digits = number_rules().digits
    return q.chinese and len(q.numeral) == 4 and all(c in digits for c in q.numeral)


def _next_is_quantity(text: str, pos: int) -> bool:
    """True when a numeral followed by a unit starts at ``pos`` (十章|七十六条)."""
    m = number_rules().number_re.match(text, pos)
    return bool(m) and match_unit(text, m.end()) is not None


def is_fact(text: str, q: QuantityMatch, spans: list[tuple[int, int]]) -> bool:
    """Whether the quantity ``q`` found in ``text`` is a fact by the spec's rules."""
    r = _rules()
    if _inside(q.num_start, spans):
        return False
    before = text[max(0, q.start - 4):q.start]
    if any(before.endswith(p) for p in r.ordinal):
        return False
    prev2 = before[-2:-1]
    if any(before.endswith(p) for p in r.range_prefixes) and (prev2.isdigit() or prev2 in number_rules().cn_chars):
        return False
    if q.chinese and any(before.endswith(p) for p in r.vague_prefixes):
        return False  # 数十家 / 几百人: not a stated quantity (but 信息数320条 is)
    if q.chinese and q.numeral in ("一", "零", "〇"):
        return False  # 一项重大任务 / 一支队伍: an article, not a count; 跑零次: a slogan
    if q.unit in r.rank_units and any(w in before for w in r.rank_before):
        return False  # 排名63位 / 位居全国第3位 / 前1%: a rank, not a quantity
    if q.unit in r.phase_units and q.chinese and before[-1:] in r.phase_after:
        return False  # 轨道8号线三期 / 东部电厂二期: the phase of a project is part of its name
    after = text[q.unit_end:q.unit_end + 12]
    unit_surface = text[q.num_end:q.unit_end]
    for u, blocked in r.blocked_after.items():
        if unit_surface.endswith(u) and any(after.startswith(b) for b in blocked):
            return False
    if q.unit in number_rules().year_units:
        if _is_year_like(q):
            return False
        if any(after.startswith(w) for w in r.year_after):
            return False
        if any(text.startswith(w, q.start - len(w)) for w in r.year_before if q.start >= len(w)):
            return False
    if q.chinese:
        if any(after.startswith(w) for w in r.name_words):
            return False
        # 五位一体 / 三会一课 style slogans: numeral+unit directly followed by another numeral word
        if after[:1] and after[0] in number_rules().cn_chars and not _next_is_quantity(text, q.unit_end):
            return False
    return not (q.value <= 10 and r.rank_statement.match(text, q.unit_end, q.unit_end + 60))


# ---------------------------------------------------------------------------------------------- clauses


def _is_break(text: str, i: int) -> bool:
    """A clause break, except the thousands separator of a number (1,852)."""
    ch = text[i]
    if ch not in _rules().breaks:
        return False
    return not (ch in ",，" and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit())


def _clause_bounds(text: str, pos: int) -> tuple[int, int]:
    s = pos
    while s > 0 and not _is_break(text, s - 1):
        s -= 1
    e = pos
    while e < len(text) and not _is_break(text, e):
        e += 1
    return s, e


def _strip_edges(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


_CLOSE_OPEN = {"》": "《", "）": "（", ")": "(", "”": "“", "】": "【", "」": "「"}


def _after_dangling_close(text: str, s: int, limit: int) -> int:
    """Move ``s`` past a closing mark whose opening mark is not in the quote (``…条例》共设十章`` -> ``共设十章``)."""
    best = s
    for i in range(s, limit):
        ch = text[i]
        if ch in _CLOSE_OPEN and _CLOSE_OPEN[ch] not in text[best:i]:
            best = i + 1
    return best


def _before_dangling_close(text: str, s: int, limit: int, e: int) -> int:
    """Cut the quote ``text[s:e]`` before a closing mark after ``limit`` whose opening mark is not in the quote
    (``市政协重点提案1件)`` -> ``…1件``)."""
    for i in range(limit, e):
        ch = text[i]
        if ch in _CLOSE_OPEN and _CLOSE_OPEN[ch] not in text[s:i]:
            return i
    return e


def _cap_left(text: str, s: int, num_start: int) -> int:
    """Start of the quote at most ``quote_max_before`` characters before the number, at a soft break, else
    right after a particle (及, 中, 的 ...), else a hard cut."""
    r = _rules()
    if num_start - s <= r.max_before:
        return s
    lo = num_start - r.max_before
    window = text[lo:num_start]
    cut = max((window.rfind(c) for c in r.soft), default=-1)
    if cut >= 0:
        return lo + cut + 1
    firsts = [i for i in (window.find(c) for c in r.left_cut_after) if 0 <= i < len(window) - 4]
    return lo + min(firsts) + 1 if firsts else lo


def _cap_right(text: str, e: int, unit_end: int) -> int:
    """End of the quote at most ``quote_max_after`` characters past the unit (a little more when the clause
    ends just there), cut at a soft break or before a particle rather than inside a word."""
    r = _rules()
    if e - unit_end <= r.max_after + r.overflow:
        return e
    hi = unit_end + r.max_after
    window = text[unit_end:hi]
    cuts = [i for i in (window.find(c) for c in r.soft) if i > 0]
    if cuts:
        return unit_end + min(cuts)
    ends = [i for i in (window.rfind(c) for c in r.right_cut_before) if i >= 3]
    return unit_end + max(ends) if ends else hi


def _split_gap(text: str, a: int, b: int) -> tuple[int, int]:
    """Where the quote of a quantity ending at ``a`` ends and that of the next one, starting at ``b``, starts:
    at the last list separator in between (``…建议42件、政协委员提案35件``), else at the quantities themselves."""
    gap = text[a:b]
    best = -1
    sep_len = 0
    for sep in _rules().gap_separators:
        k = gap.rfind(sep)
        if k > best:
            best, sep_len = k, len(sep)
    if best < 0:
        return b, a
    return a + best, a + best + sep_len


def _quote_span(text: str, cands: list[_Cand], i: int) -> tuple[int, int]:
    """Quote for candidate i: its clause, narrowed to the part between its neighbours in the same clause."""
    c = cands[i]
    s, e = c.clause_start, c.clause_end
    if i > 0 and cands[i - 1].clause_start == c.clause_start:
        s = max(s, _split_gap(text, cands[i - 1].q.end, c.q.start)[1])
    if i + 1 < len(cands) and cands[i + 1].clause_start == c.clause_start:
        e = min(e, _split_gap(text, c.q.end, cands[i + 1].q.start)[0])
    s = _cap_left(text, s, c.q.num_start)
    e = _cap_right(text, e, c.q.end)
    s = _after_dangling_close(text, s, c.q.start)
    e = _before_dangling_close(text, s, c.q.end, e)
    s, e = _strip_edges(text, s, e)
    s = min(s, c.q.start)
    e = max(e, c.q.end)
    return s, e


# ---------------------------------------------------------------------------------------------- labels


_CJK_RUN = re.compile(r"[\u3400-\u9fff（）()“”《》A-Za-z0-9.、]+")


def _trim_words(s: str, lead: list[str], trail: list[str]) -> str:
    changed = True
    while changed and s:
        changed = False
        m = re.match(r"^(\d{4}年度?|\d{1,2}月(\d{1,2}日)?)", s)
        if m:
            s, changed = s[m.end():], True
        for w in lead:
            if s.startswith(w) and len(s) > len(w):
                s, changed = s[len(w):], True
                break
        for w in trail:
            if s.endswith(w) and len(s) > len(w):
                s, changed = s[: -len(w)], True
                break
    return s


def _noun_phrases(text: str, qs: int, qe: int, q: QuantityMatch) -> tuple[str, str]:
    """The words of the quote before the number and after the unit."""
    pre = text[qs:q.start]
    post = text[q.end:qe]
    pre_runs = _CJK_RUN.findall(pre)
    post_runs = _CJK_RUN.findall(post)
    return (pre_runs[-1] if pre_runs else ""), (post_runs[0] if post_runs else "")


def make_label(pre: str, post: str, unit: str) -> str:
    """A short name of the measure: the words naming it (before a verbal unit such as 次, after a measure word
    such as 名/家/项 when words follow), trimmed, plus a unit-based suffix (次数, 人数, 金额, ...)."""
    r = _rules()
    pre_t = _trim_words(pre, r.drop_lead, r.drop_trail)
    post_t = _trim_words(re.split(r.post_cut, post, maxsplit=1)[0] or post, r.drop_lead, r.drop_trail)[:14]
    use_post = len(post_t) >= 2 and (unit not in r.verbal_units or len(pre_t) < 2)
    base = post_t if use_post else (pre_t or post_t)
    suffix = r.suffix.get(unit, unit + "数") if not use_post else r.suffix.get(unit, "数")
    if len(base) > 12 and not use_post:
        cuts = [i for i in (base.rfind(c) for c in r.left_cut_after) if 0 <= i < len(base) - 4]
        if cuts:
            base = base[max(cuts) + 1:]
    base = base[-18:]
    if not base:
        return f"数量（{unit}）"
    return base if base.endswith(suffix) else base + suffix


# ---------------------------------------------------------------------------------------------- dedupe


def _same_quantity(a: Fact, b: Fact) -> bool:
    return a.unit == b.unit and abs(a.value - b.value) <= 1e-9 * max(1.0, abs(a.value))


def _noun(pre: str, post: str) -> tuple[str, str]:
    """The side of the number that names the measure and its nearest words."""
    return ("post", post[:12]) if post else ("pre", pre[-12:])


def _is_restatement(new: tuple[Fact, _Cand, str, str], old: tuple[Fact, _Cand, str, str]) -> bool:
    """A value stated again for the same measure (annotated once, at its first statement).

    Same value and unit, and either the words naming the measure overlap (4+ characters in one run), or the
    value is distinctive (>= 10, not a percentage) and restated close by in the same paragraph with a generic
    measure word or a referring word (根据23项事项内容). Parallel items of one sentence
    (不予处罚清单1项，从轻处罚清单1项) are never restatements of each other.
    """
    fn, cn, pre_n, post_n = new
    fo, co, pre_o, post_o = old
    if not _same_quantity(fn, fo):
        return False
    side_n, noun_n = _noun(pre_n, post_n)
    side_o, noun_o = _noun(pre_o, post_o)
    if cn.sentence == co.sentence and side_n == side_o and noun_n != noun_o:
        return False
    if longest_common_run(noun_n, noun_o) >= 4:
        return True
    distinctive = fn.value >= 10 and fn.unit not in ("%", "‰", "百分点")
    if not (distinctive and cn.paragraph == co.paragraph and cn.q.start - co.q.end < 300):
        return False
    r = _rules()
    return any(post_n.startswith(w) for w in r.generic_nouns) or any(pre_n.endswith(w) for w in r.referring)


# ---------------------------------------------------------------------------------------------- main


def _candidates(text: str) -> list[_Cand]:
    spans = protected_spans(text)
    sentence_breaks = [m.start() for m in re.finditer(r"[。；;！？!?\n]", text)]
    line_breaks = [m.start() for m in re.finditer("\n", text)]
    out: list[_Cand] = []
    for q in iter_quantities(text):
        if not is_fact(text, q, spans):
            continue
        cs, ce = _clause_bounds(text, q.num_start)
        sentence = bisect.bisect_left(sentence_breaks, q.num_start)
        paragraph = bisect.bisect_left(line_breaks, q.num_start)
        out.append(_Cand(q, cs, ce, sentence, paragraph))
    return out


def extract_facts(text: str, meta: Meta | None = None) -> list[Fact]:
    """Every quantitative fact stated in ``text`` (cleaned report text), in text order.

    Each fact's ``quote`` is ``text[start:end]``: the clause that states it, narrowed to the number's own part
    when a clause states several. A value restated later for the same measure is returned once, at its first
    statement. A fact is what happened: quantities in the report's plans and targets (a stretch opened by a plan
    heading, see :mod:`ragreports.extract.periods`; ``meta`` gives the report's years) are not facts.
    """
    plans = plan_stretches(text, Frame.of(meta or Meta()))
    cands = [c for c in _candidates(text) if not any(s <= c.q.start < e for s, e in plans)]
    kept: list[tuple[Fact, _Cand, str, str]] = []
    for i, c in enumerate(cands):
        s, e = _quote_span(text, cands, i)
        pre, post = _noun_phrases(text, s, e, c.q)
        fact = Fact(
            label=make_label(pre, post, c.q.unit), value=c.q.value, unit=c.q.unit, approx=c.q.approx,
            quote=text[s:e], start=s, end=e,
        )
        item = (fact, c, pre, post)
        if any(_is_restatement(item, old) for old in kept):
            continue
        kept.append(item)
    return [k[0] for k in kept]
