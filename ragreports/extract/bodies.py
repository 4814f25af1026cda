"""Official bodies named in a text: ``[place][zone][organ]``, e.g. 烟台人力资源和社会保障局, 深圳市大鹏新区管理委员会,
常州市钟楼区人社局, 市科技局 (a level word standing for the place), 环境保护部 (a central-government body).

Places come from the gazetteer (:mod:`ragreports.text.places`); organ names, level words, zone suffixes and the
bodies of the central government are data (``data/bodies.yaml``). :func:`find_bodies` returns every mention with
its span; which one issued the report is decided in :mod:`ragreports.extract.metadata`.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ragreports.data import load_rules
from ragreports.text.places import Gazetteer, Place, PlaceMention, gazetteer

_CJK = "\u3400-\u9fff"
# characters that may precede a name inside running text without being part of it (于常州市, 由市科技局)
_FUNCTION_CHARS = set("在对由和与及向为是将等的从把被于了并经会、同赴到至共代表请经由按据年")
GENERIC_ZONE_HEADS = ("国家", "全国", "本", "我", "各", "全", "该", "新", "市", "区", "县", "省")


class BodiesFile(BaseModel):
    """``data/bodies.yaml``."""

    model_config = ConfigDict(extra="forbid")
    organs: dict[str, str]
    government_organs: list[str]
    level_words: list[str]
    self_references: dict[str, str]
    party_prefixes: list[str]
    party_suffixes: list[str]
    zone_suffixes: list[str]
    national_region: str
    national_prefixes: list[str]
    national_bodies: dict[str, str]
    generic_organ: str


@dataclass(frozen=True)
class BodyMention:
    start: int
    end: int
    organ: str  # full official organ name: 科学技术局, 人民政府, 管理委员会, 环境保护部
    place: Place | None = None  # the unit named before the organ (None: not named, or ambiguous)
    places: tuple[PlaceMention, ...] = ()  # the place mentions as written (a chain: 天津市 静海区)
    zone: str | None = None  # a functional zone not in the table (大鹏新区)
    level: str | None = None  # a level word written instead of a place name (市科技局 -> 市)
    national: bool = False

    @property
    def named(self) -> bool:
        """The place is written out (or the body is national): no level word to resolve."""
        return self.national or self.place is not None or (self.zone is not None and self.level is None)


class BodyRules:
    def __init__(self, d: BodiesFile):
        self.file = d
        self.organs = dict(d.organs)
        forms = sorted(self.organs, key=len, reverse=True)
        self.organ_re = re.compile("|".join(map(re.escape, forms)))
        zones = "|".join(map(re.escape, sorted(d.zone_suffixes, key=len, reverse=True)))
        self.zone_re = re.compile(f"[{_CJK}]{{2,4}}?(?:{zones})")
        levels = "|".join(map(re.escape, sorted(d.level_words, key=len, reverse=True)))
        self.level_organ_re = re.compile(f"({levels})({self.organ_re.pattern})")
        nat = "|".join(map(re.escape, sorted(d.national_bodies, key=len, reverse=True)))
        pre = "|".join(map(re.escape, d.national_prefixes))
        self.national_re = re.compile(f"(?:{pre})?({nat})")
        # what may follow a short place name for it to count as one (烟台 + 人力资源和社会保障局 / 市科技局)
        self.after_short_place = re.compile(f"(?:{levels})?(?:{self.organ_re.pattern})|[{_CJK}]{{0,4}}(?:{zones})")
        self.self_re = re.compile("|".join(map(re.escape, sorted(d.self_references, key=len, reverse=True))))
        self.generic_organ_re = re.compile(d.generic_organ)

    def organ_at(self, text: str, pos: int, generic: bool = False) -> tuple[int, str] | None:
        """(end, full organ name) of the organ written at ``pos``; with ``generic``, an organ the table does not
        list is read by the shape of organ names (林业和草原局, 公共资源交易中心)."""
        m = self.organ_re.match(text, pos)
        if m:
            return m.end(), self.organs[m.group(0)]
        if generic and (g := self.generic_organ_re.match(text, pos)):
            return g.end(), g.group(0)
        return None

    def full_organ(self, written: str) -> str:
        return self.organs.get(written, written)

    def short_forms(self, organ: str) -> set[str]:
        """Every written form of a full organ name (科学技术局 -> {科学技术局, 科技局})."""
        return {k for k, v in self.organs.items() if v == organ} | {organ}


@functools.lru_cache(maxsize=1)
def body_rules() -> BodyRules:
    return BodyRules(load_rules("bodies", BodiesFile))


def _chains(mentions: Sequence[PlaceMention]) -> list[list[PlaceMention]]:
    """Consecutive place mentions written as one name (天津市静海区, 浙江省龙泉市)."""
    out: list[list[PlaceMention]] = []
    for m in mentions:
        if out and out[-1][-1].end == m.start:
            out[-1].append(m)
        else:
            out.append([m])
    return out


def resolve_chain(g: Gazetteer, chain: Sequence[PlaceMention], context: Counter[str]) -> Place | None:
    """The unit a chain of place mentions names: the last one, inside the ones before it when they are written
    (天津市 + 静海区), else decided by the places the whole text names (``context``)."""
    last = chain[-1]
    cands = list(last.candidates)
    for outer in chain[:-1]:
        inside = [c for c in cands if any(g.is_within(c, o) for o in outer.candidates)]
        cands = inside or cands
    if len(cands) == 1:
        return cands[0]
    return g.resolve(cands, context)


def _free_start(text: str, i: int) -> bool:
    """A name may start at ``i``: at a line or clause start, after punctuation or a function character."""
    if i == 0:
        return True
    prev = text[i - 1]
    return not re.match(f"[{_CJK}A-Za-z0-9]", prev) or prev in _FUNCTION_CHARS


def zone_names(text: str) -> Counter[str]:
    """Functional-zone names the text writes (大鹏新区), each at the length the text repeats most, with counts."""
    r = body_rules()
    counts: Counter[str] = Counter()
    for m in re.finditer("|".join(map(re.escape, r.file.zone_suffixes)), text):
        best = None
        for length in (2, 3, 4):
            s = m.start() - length
            if s < 0:
                break
            name = text[s:m.end()]
            if not re.fullmatch(f"[{_CJK}]+", name[:length]) or name.startswith(GENERIC_ZONE_HEADS):
                continue
            n = text.count(name)
            if best is None or n > best[1]:
                best = (name, n)
        if best and best[1] >= 2:
            counts[best[0]] += 1
    return counts


def find_bodies(text: str, context: Counter[str] | None = None) -> list[BodyMention]:
    """Every body the text names, in text order. ``context`` (codes of the places the whole document names, see
    :meth:`Gazetteer.context`) decides ambiguous place names; by default the text's own."""
    g = gazetteer()
    r = body_rules()
    places = g.find(text, short_before=r.after_short_place)
    ctx = context if context is not None else g.context(places)
    zones = zone_names(text)
    out: list[BodyMention] = []
    taken: list[tuple[int, int]] = []
    for chain in _chains(places):
        pos = chain[-1].end
        zone = None
        zm = r.zone_re.match(text, pos)
        if zm and zm.group(0) in zones:
            zone, pos = zm.group(0), zm.end()
        organ = r.organ_at(text, pos, generic=True)  # a place written out: any organ-shaped name after it
        if organ is None:
            continue
        place = resolve_chain(g, chain, ctx)
        out.append(BodyMention(chain[0].start, organ[0], organ[1], place, tuple(chain), zone))
        taken.append((chain[0].start, organ[0]))
    for m in r.national_re.finditer(text):
        if not any(s <= m.start() < e for s, e in taken) and _free_start(text, m.start()):
            out.append(BodyMention(m.start(), m.end(), r.file.national_bodies[m.group(1)], national=True))
            taken.append(m.span())
    for name in zones:
        for m in re.finditer(re.escape(name), text):
            organ = r.organ_at(text, m.end())
            if organ and not any(s <= m.start() < e for s, e in taken):
                out.append(BodyMention(m.start(), organ[0], organ[1], zone=name))
                taken.append((m.start(), organ[0]))
    for m in r.level_organ_re.finditer(text):
        if any(s <= m.start() < e for s, e in taken) or not _free_start(text, m.start()):
            continue
        out.append(BodyMention(m.start(), m.end(), r.full_organ(m.group(2)), level=m.group(1)))
    return sorted(out, key=lambda b: b.start)


def body_name(b: BodyMention, place: Place | None = None) -> str | None:
    """The official name of a body: its place as bodies carry it, its zone, its organ (深圳市大鹏新区管理委员会);
    ``place`` fills in a place the mention leaves open (市科技局). None when no place is known."""
    g = gazetteer()
    if b.national:
        return b.organ
    p = place or b.place
    if p is None and b.zone is None:
        return None
    return (g.qualified(p) if p else "") + (b.zone or "") + b.organ


def body_region(b: BodyMention, place: Place | None = None) -> str | None:
    """The area a body serves: its place (and zone), or the whole country for a central-government body."""
    g = gazetteer()
    if b.national:
        return body_rules().file.national_region
    p = place or b.place
    if p is None and b.zone is None:
        return None
    return (g.qualified(p) if p else "") + (b.zone or "")
