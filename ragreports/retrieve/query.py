"""Question understanding (pure): what a question names and what kind of answer it wants.

:func:`understand` reads the years a question names (``2024年``, ``2023年度``), whether it asks for a target or plan
(``预期目标``) or for what happened, the issuer/region it names (matched against the known documents' meta, short
forms included: ``昆明市科技局`` = issuer ``昆明市科学技术局``, ``昆明`` = region ``昆明市``), and which documents
those are: ``doc_ids`` (the named issuer/region), ``boost_doc_ids`` (a higher-level area). That is evidence, never a
gate: retrieval searches those documents first, passages are ranked by the years they speak about
(:mod:`ragreports.extract.periods`), and :meth:`QueryPlan.allows` tells the answering stage which passages can
answer (right years, and the named place and body, by the report's metadata or the passage's own text). A place no
document's metadata knows narrows and refuses nothing by itself. ``keywords`` are the content words left for
lexical scoring, ``qtype`` the kind of answer wanted and ``measure`` the unit a number question asks for
(``多少项`` -> ``项``, ``成交额`` -> ``元``). Rules are data: ``ragreports/data/query_rules.yaml`` and the organ
table of ``bodies.yaml``.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from ragreports.data import load_rules
from ragreports.extract.bodies import GENERIC_ZONE_HEADS, body_rules
from ragreports.extract.periods import PLAN, RESULT, asks_for_plan
from ragreports.text.normalize import to_simplified
from ragreports.text.places import gazetteer
from ragreports.types import Meta, SearchResult

_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*年(?:度)?")
_CN_YEAR = re.compile(r"([〇零一二三四五六七八九]{4})\s*年")
_CN_DIGIT = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0}
_QUOTED = re.compile(r"“[^”]{2,40}”|《[^》]{2,60}》|\"[^\"]{2,40}\"|「[^」]{2,40}」")
_NOT_ORGAN = re.compile(r"多少|几|哪|什么|如何|是否|谁|年")
_WORDS = re.compile(r"[\u4e00-\u9fffA-Za-z0-9%]+")


@dataclass(frozen=True)
class QueryPlan:
    """What a question asks and where to look for it."""

    question: str  # as given
    text: str  # NFKC + Simplified
    years: tuple[int, ...] = ()
    places: tuple[str, ...] = ()  # issuer/region mentions matched to known documents
    unknown_places: tuple[str, ...] = ()  # place names that match no known document
    doc_ids: tuple[str, ...] = ()  # documents whose issuer/region the question names: searched first
    boost_doc_ids: tuple[str, ...] = ()  # documents of a higher-level area it names: searched next
    organ: str | None = None  # the organ the question names after a place (昆明市司法局 -> 司法局)
    open_doc_ids: tuple[str, ...] = ()  # documents whose metadata names no place: nothing rules them out
    keywords: tuple[str, ...] = ()
    qtype: str = "what"  # number | date | who | what
    measure: str | None = None  # unit a number question asks for
    kind: str = "result"  # "plan" when it asks for a target or plan (预期目标), else "result"

    def allows(self, p: SearchResult) -> bool:
        """Evidence that a passage can answer the question: it speaks about a year the question names (when it
        knows its years), and it comes from a report of the place and body the question names, or names them
        itself. Routing never refuses by itself: this is checked on the passages found."""
        if self.years and p.years and not set(self.years) & {*p.years, *p.mentions}:
            return False
        if p.doc_id in self.doc_ids or p.doc_id in self.open_doc_ids:
            return True
        if p.doc_id in self.boost_doc_ids and not self.unknown_places:
            return True  # a report of a place inside the area named, unless the question names another one there
        named = [*self.places, *self.unknown_places]
        if not named and not self.organ:
            return True
        text = to_simplified(p.text)
        place_ok = not named or any(n in text for n in named)
        organ_ok = not self.organ or any(f in text for f in organ_forms(self.organ))
        return place_ok and organ_ok


class QueryRulesFile(BaseModel):
    """``data/query_rules.yaml``: question words, stopwords, answer-type cues, measure words, place words."""

    model_config = ConfigDict(extra="forbid")
    question_words: list[str]
    stopwords: list[str]
    qtype_cues: list[tuple[str, str]]
    measure_words: list[str]
    scale_prefixes: list[str]
    implied_measures: list[tuple[str, str]]
    admin_suffixes: list[str]
    organ_endings: str
    issuer_prefixes: list[str] = Field(default_factory=list)
    issuer_suffixes: list[str] = Field(default_factory=list)
    generic_places: list[str]


@dataclass(frozen=True)
class _Rules:
    question_words: tuple[str, ...]  # longest first
    stopwords: frozenset[str]
    qtype_cues: tuple[tuple[str, re.Pattern[str]], ...]
    measure_words: tuple[str, ...]  # longest first
    scale_prefixes: tuple[str, ...]
    implied_measures: tuple[tuple[re.Pattern[str], str], ...]
    admin_suffixes: tuple[str, ...]
    unit_re: re.Pattern[str]  # one administrative unit at the start of a name
    organ_re: re.Pattern[str]  # an organ name right after a place name
    issuer_prefixes: tuple[str, ...]
    issuer_suffixes: tuple[str, ...]
    generic_places: frozenset[str]
    full_to_short: dict[str, tuple[str, ...]]  # 科学技术局 -> (科技局,)
    short_to_full: dict[str, str]  # 科技局 -> 科学技术局


@functools.lru_cache(maxsize=1)
def rules() -> _Rules:
    """The question rules from the data files (loaded once, on first use)."""
    r = load_rules("query_rules", QueryRulesFile)
    shorts = dict(body_rules().organs)
    full_to_short: dict[str, list[str]] = {}
    for short, full in shorts.items():
        if short != full:
            full_to_short.setdefault(full, []).append(short)
    suffixes = tuple(sorted(map(str, r.admin_suffixes), key=len, reverse=True))
    return _Rules(
        question_words=tuple(sorted(map(str, r.question_words), key=len, reverse=True)),
        stopwords=frozenset(map(str, r.stopwords)),
        qtype_cues=tuple((str(t), re.compile(p)) for t, p in r.qtype_cues),
        measure_words=tuple(sorted(map(str, r.measure_words), key=len, reverse=True)),
        scale_prefixes=tuple(sorted(map(str, r.scale_prefixes), key=len, reverse=True)),
        implied_measures=tuple((re.compile(p), str(u)) for p, u in r.implied_measures),
        admin_suffixes=suffixes,
        unit_re=re.compile(r"[\u4e00-\u9fff]{2,}?(?:" + "|".join(map(re.escape, suffixes)) + ")"),
        organ_re=re.compile(r"[\u4e00-\u9fff]{1,8}?(?:" + str(r.organ_endings) + ")"),
        issuer_prefixes=tuple(map(str, r.issuer_prefixes)),
        issuer_suffixes=tuple(map(str, r.issuer_suffixes)),
        generic_places=frozenset(map(str, r.generic_places)),
        full_to_short={k: tuple(v) for k, v in full_to_short.items()},
        short_to_full=shorts,
    )


# ---------------------------------------------------------------------------------------------------------------
# small parsers
# ---------------------------------------------------------------------------------------------------------------


def normalise_question(question: str) -> str:
    """NFKC, Traditional -> Simplified, trimmed."""
    return to_simplified(unicodedata.normalize("NFKC", question)).strip()


def find_years(text: str) -> tuple[int, ...]:
    """Absolute years a text names (``2024年``, ``2023年度``, ``二〇二四年``), in order, without duplicates."""
    found: list[tuple[int, int]] = [(m.start(), int(m.group(1))) for m in _YEAR.finditer(text)]
    for m in _CN_YEAR.finditer(text):
        found.append((m.start(), int("".join(str(_CN_DIGIT[c]) for c in m.group(1)))))
    out: list[int] = []
    for _, y in sorted(found):
        if 1949 <= y <= 2100 and y not in out:
            out.append(y)
    return tuple(out)


def question_type(text: str) -> str:
    """``number`` | ``date`` | ``who`` | ``what`` from the question's cue words (quoted titles ignored)."""
    body = _QUOTED.sub("", text)
    for qtype, pattern in rules().qtype_cues:
        if pattern.search(body):
            return qtype
    return "what"


def base_unit(unit: str) -> str:
    """The unit without a leading scale word: ``万元`` -> ``元``, ``万人次`` -> ``人次``."""
    r = rules()
    for scale in r.scale_prefixes:
        if unit.startswith(scale) and unit[len(scale):] in r.measure_words:
            return unit[len(scale):]
    return unit


def asked_measure(text: str) -> str | None:
    """The unit a number question asks for: the measure word after 多少/几, else one implied by its nouns."""
    r = rules()
    body = _QUOTED.sub("", text)
    m = re.search(r"(?:多少|几)(?:个(?=[\u4e00-\u9fff]))?", body)
    if m:
        rest = body[m.end():]
        for word in r.measure_words:
            if rest.startswith(word):
                return base_unit(word)
        if m.group(0).endswith("个"):
            return "个"
    return implied_measure(body)


def implied_measure(text: str) -> str | None:
    """The unit a noun of ``text`` implies (强度/比例 -> %, 成交额 -> 元), or None."""
    for pattern, unit in rules().implied_measures:
        if pattern.search(text):
            return unit
    return None


def organ_forms(organ: str) -> set[str]:
    """An organ name with its short/full forms from the bureau table (``科学技术局`` <-> ``科技局``)."""
    r = rules()
    full = r.short_to_full.get(organ, organ)
    return {organ, full, *r.full_to_short.get(full, ())}


def split_units(region: str) -> list[str]:
    """``江门市江海区`` -> ``[江门市, 江海区]``; a name without a known suffix stays whole."""
    units: list[str] = []
    rest = region
    while rest and (m := rules().unit_re.match(rest)):
        units.append(m.group(0))
        rest = rest[m.end():]
    if rest and not units:
        units.append(rest)
    return units


def _unit_aliases(unit: str) -> set[str]:
    for suffix in rules().admin_suffixes:
        if unit.endswith(suffix) and len(unit) - len(suffix) >= 2:
            return {unit, unit[: -len(suffix)]}
    return {unit}


@functools.lru_cache(maxsize=1)
def _after_short_place() -> re.Pattern[str]:
    """What may follow a short place name in a question (烟台人社局, 龙岗2023年…, 龙岗的…): an organ, a zone, or a
    boundary (years are blanked out first)."""
    return re.compile(body_rules().after_short_place.pattern + r"|\s|$|[，,。？?、的在]")


def place_names(text: str) -> list[str]:
    """Places a question names outside quoted titles: units of the division table (full names, or short names at a
    word boundary), functional zones (雄安新区), central-government bodies (水利部); a name inside a longer one
    and generic words (全市, 高新区 …) dropped."""
    body = _QUOTED.sub(lambda m: "，" * len(m.group(0)), text)
    body = _CN_YEAR.sub(lambda m: " " * len(m.group(0)), _YEAR.sub(lambda m: " " * len(m.group(0)), body))
    br = body_rules()
    spans = [(m.start, m.end, m.name) for m in gazetteer().find(body, short_before=_after_short_place())]
    spans += [(*m.span(), m.group(0)) for m in br.zone_re.finditer(body)
              if not m.group(0).startswith(GENERIC_ZONE_HEADS)]
    spans += [(*m.span(), m.group(0)) for m in br.national_re.finditer(body)]
    kept = [(s, e, w) for s, e, w in spans
            if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in spans)]
    return [w for w in dict.fromkeys(w for _, _, w in sorted(kept)) if w not in rules().generic_places]


# ---------------------------------------------------------------------------------------------------------------
# known documents as name patterns
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DocNames:
    doc_id: str
    meta: Meta
    specific: frozenset[str]  # aliases of the most specific unit, the whole region and the issuer
    higher: frozenset[str]  # aliases of the higher-level units
    organs: frozenset[str]  # organ name and its short forms ("科学技术局", "科技局")
    issuers: frozenset[str]  # aliases that already include the organ ("昆明市科技局")


@functools.lru_cache(maxsize=4096)
def _doc_names(doc_id: str, meta: Meta) -> _DocNames:
    r = rules()
    issuer = normalise_question(meta.issuer or "")
    for p in r.issuer_prefixes:
        issuer = issuer.removeprefix(p)
    for s in r.issuer_suffixes:
        if issuer.endswith(s) and len(issuer) > len(s):
            issuer = issuer[: -len(s)]
    region = normalise_question(meta.region or "")
    if not region and issuer:  # the area leading the issuer's name
        region = "".join(split_units(issuer))
        region = "" if region == issuer else region
    units = split_units(region) if region else []
    organ = issuer
    for u in [region, *units]:
        organ = organ.removeprefix(u) if u else organ
    organs = organ_forms(organ) if organ and organ != issuer else set()
    specific = (_unit_aliases(units[-1]) | {region}) if units else set()
    higher = {a for u in units[:-1] for a in _unit_aliases(u)}
    issuers = {issuer} if issuer else set()
    if organs and units:
        issuers |= {place + o for o in organs for place in (region, units[-1])}
    return _DocNames(doc_id, meta, frozenset(a for a in specific | issuers if a), frozenset(higher - specific),
                     frozenset(organs), frozenset(issuers))


def _find_mentions(text: str, names: Sequence[_DocNames]) -> list[tuple[int, int, str]]:
    """Non-overlapping alias occurrences, longest first."""
    aliases = sorted({a for d in names for a in (d.specific | d.higher)}, key=lambda a: (-len(a), a))
    taken = [False] * len(text)
    found: list[tuple[int, int, str]] = []
    for alias in aliases:
        if alias not in text:  # cheap test first: most aliases of a large index are not in the question
            continue
        for m in re.finditer(re.escape(alias), text):
            s, e = m.span()
            if not any(taken[s:e]):
                found.append((s, e, alias))
                taken[s:e] = [True] * (e - s)
    return sorted(found)


def _organ_after(text: str, pos: int) -> str | None:
    m = rules().organ_re.match(text, pos)
    if not m or _NOT_ORGAN.search(m.group(0)):
        return None
    return m.group(0)


def _organ_matches(mentioned: str, organs: frozenset[str]) -> bool:
    if not organs:
        return True  # the report's issuer is unknown: cannot rule it out
    forms = organ_forms(mentioned)
    return any(f == o or f.endswith(o) or o.endswith(f) for f in forms for o in organs)


# ---------------------------------------------------------------------------------------------------------------
# understand()
# ---------------------------------------------------------------------------------------------------------------


def _keywords(text: str, remove: Sequence[tuple[int, int]]) -> tuple[str, ...]:
    """Quoted names whole, then the content words of the rest (jieba) minus question words and stopwords."""
    import jieba

    r = rules()
    chars = list(text)
    for s, e in remove:
        chars[s:e] = " " * (e - s)
    body = _QUOTED.sub(" ", "".join(chars))
    body = _CN_YEAR.sub(" ", _YEAR.sub(" ", body))
    for w in r.question_words:
        body = body.replace(w, " ")
    jieba.setLogLevel(logging.WARNING)
    out = list(dict.fromkeys(m.group(0)[1:-1] for m in _QUOTED.finditer(text)))
    for piece in _WORDS.findall(body):
        for tok in jieba.lcut(piece):
            tok = tok.strip()
            if (len(tok) >= 2 and tok not in r.stopwords and tok not in r.generic_places and not tok.isdigit()
                    and tok not in out):
                out.append(tok)
    return tuple(out)


def understand(question: str, docs: Sequence[tuple[str, Meta]]) -> QueryPlan:
    """Read a question: years, issuer/region mentions and routing, keywords, answer type and measure.

    ``docs`` are the known documents as (doc_id, meta); with none, nothing is routed."""
    text = normalise_question(question)
    years = find_years(text)
    names = [_doc_names(doc_id, meta) for doc_id, meta in docs]
    mentions = _find_mentions(text, names)
    mentioned = {a for _, _, a in mentions}
    issuer_aliases = {a for d in names for a in d.issuers}
    organ_spans = [(e, o) for _, e, a in mentions if a not in issuer_aliases and (o := _organ_after(text, e))]

    full, partial = [], []
    for d in names:
        if organ_spans and not _organ_matches(organ_spans[0][1], d.organs):
            continue  # 昆明市司法局 is not 昆明市科学技术局
        if d.specific & mentioned:
            full.append(d)
        elif d.higher & mentioned:
            partial.append(d)
    # without known documents there is nothing to tell a place from: no place evidence at all
    unknown = [p for p in place_names(text) if not any(p in a or a in p for a in mentioned)] if names else []
    doc_ids = [d.doc_id for d in full]
    boost = [d.doc_id for d in partial]

    remove = [(s, e) for s, e, _ in mentions] + [(e, e + len(o)) for e, o in organ_spans]
    qtype = question_type(text)
    return QueryPlan(
        question=question,
        text=text,
        years=years,
        places=tuple(a for _, _, a in mentions),
        unknown_places=tuple(unknown),
        doc_ids=tuple(doc_ids),
        boost_doc_ids=tuple(b for b in boost if b not in doc_ids),
        organ=organ_spans[0][1] if organ_spans else None,
        open_doc_ids=tuple(d.doc_id for d in names if not d.meta.region and not d.meta.issuer),
        keywords=_keywords(text, remove),
        qtype=qtype,
        measure=asked_measure(text) if qtype == "number" else None,
        kind=PLAN if asks_for_plan(_QUOTED.sub("", text)) else RESULT,
    )
