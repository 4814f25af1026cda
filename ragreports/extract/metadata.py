"""Report metadata from evidence anywhere in the cleaned text: issuer, region, year reported on, publication date,
title and genre, each kept with the quote that won and a confidence.

Cues (``data/meta_rules.yaml``, weights included): the title line, the speaker's ``我代表…`` and the session line of a
delivered report, 来源/发布机构 lines, index blocks and breadcrumbs, a site banner, the opening sentences, the
signature and date at the end, and how often each body is named. A body written without its place (``市科技局``,
``我局``) takes the place from the report's own evidence: the same organ named with a place elsewhere
(``《六盘水市科学技术局…方案》``), else the place of that level the report names most. Places come from the
packaged division table (:mod:`ragreports.text.places`), so ``烟台`` is 烟台市 and ``钟楼区`` is in 常州市. The
year reported on follows the genre (``data/genres.yaml``): a work report delivered in N is about N-1. A field the
text does not support is None: never a guess. The file name is never evidence.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from pydantic import BaseModel, ConfigDict

from ragreports.extract.bodies import BodyMention, body_name, body_region, body_rules, find_bodies, resolve_chain
from ragreports.extract.cues import (
    CN_DATE,
    Ballot,
    Line,
    body_lines,
    evidence_of,
    lines_of,
    meta_rules,
    published_votes,
    title_line,
    valid_date,
    year_votes,
)
from ragreports.extract.genres import detect_genre, genre_named
from ragreports.text.places import PREFECTURE, Gazetteer, Place, PlaceMention, gazetteer
from ragreports.types import Meta, MetaEvidence

_KIND_WORD = {"省": "省", "自治区": "自治区", "直辖市": "市", "地级市": "市", "县级市": "市", "自治州": "州",
              "地区": "地区", "盟": "盟", "市辖区": "区", "县": "县", "自治县": "县", "旗": "旗", "自治旗": "旗"}


def _in_span(b: BodyMention, s: int, e: int) -> bool:
    return s <= b.start < e


def _place_key(b: BodyMention) -> object:
    if b.national:
        return ("national", b.organ)
    if b.place is not None or b.zone is not None:
        return ("named", b.organ, b.place.code if b.place else None, b.zone)
    return ("level", b.organ, b.level)


def _superior(text: str, b: BodyMention) -> bool:
    """A body the report answers to, not its issuer: the addressee line (县政府：), a body under whose leadership
    or arrangement the work was done (在县委、县政府的坚强领导下; 党中央、国务院决策部署)."""
    r = meta_rules()
    line_start = text.rfind("\n", 0, b.start) + 1
    line_end = text.find("\n", b.end)
    line = text[line_start:line_end if line_end >= 0 else len(text)].strip()
    if re.fullmatch(r"[^，,。]{2,30}[:：]", line) and b.start - line_start <= 2:
        return True
    before, after = text[max(0, b.start - 12):b.start], text[b.end:b.end + 12]
    return bool(re.search(r.superior_before + "$", before) or re.match(r.superior_after, after))


def _government(b: BodyMention) -> bool:
    return b.organ in body_rules().file.government_organs


def _bare_place_votes(text: str, spans: Sequence[tuple[str, int, int, float]], g: Gazetteer,
                      ctx: Counter[str]) -> list[tuple[BodyMention, float, str]]:
    """A place written as the subject of the title or the opening, not followed by an organ (2020年静海区法治政府
    建设情况报告; 2020年，静海区坚持…): the report of that place's government."""
    out = []
    gov = body_rules().file.government_organs[0]
    for cue, s, e, weight in spans:
        for chain in _chains_in(text, s, e, g):
            after = text[chain[-1].end:chain[-1].end + 2]
            if body_rules().organ_at(text, chain[-1].end) or after[:1] in ("市", "区", "县", "省"):
                continue
            place = resolve_chain(g, chain, ctx)
            if place is not None and place.level >= PREFECTURE:
                out.append((BodyMention(chain[0].start, chain[-1].end, gov, place, tuple(chain)), weight, cue))
                break
    return out


def _chains_in(text: str, s: int, e: int, g: Gazetteer) -> list[list[PlaceMention]]:
    """Chains of full place names written in ``text[s:e]`` (offsets in ``text``)."""
    chains: list[list[PlaceMention]] = []
    for m in g.find(text[s:e]):
        m2 = replace(m, start=m.start + s, end=m.end + s)
        if chains and chains[-1][-1].end == m2.start:
            chains[-1].append(m2)
        else:
            chains.append([m2])
    return chains


def _issuer_votes(text: str, lines: Sequence[Line], title: Line | None, bodies: Sequence[BodyMention],
                  g: Gazetteer, ctx: Counter[str]) -> tuple[Ballot, dict[object, BodyMention]]:
    r, w = meta_rules(), meta_rules().weights
    ballot = Ballot()
    rep: dict[object, BodyMention] = {}

    def vote(b: BodyMention, weight: float, cue: str) -> None:
        key = _place_key(b)
        rep.setdefault(key, b)
        ballot.add(key, b, weight, cue, b.start, b.end)

    def in_line(ln: Line) -> list[BodyMention]:
        return [b for b in bodies if _in_span(b, ln.offset, ln.offset + len(ln.text))]

    bodies = [b for b in bodies if not _superior(text, b)]

    subject_spans: list[tuple[str, int, int, float]] = []
    if title:
        for b in in_line(title):
            vote(b, w.title, "title")
        subject_spans.append(("title", title.offset, title.offset + len(title.text), w.title))
    for m in re.finditer(r.delegate, text[:3000]):
        for b in bodies:
            if _in_span(b, m.start("body"), m.end("body")):
                vote(b, w.delegate, "delegate")
                break
    if m := re.search(r.session, text[:3000]):
        subject_spans.append(("session", m.start("place"), m.end("place"), w.session))
    labels = "|".join(map(re.escape, r.source_labels))
    seps = tuple(r.breadcrumb_separators)
    for ln in lines[:15]:
        if m := re.search(f"(?:{labels})\\s*[:：]\\s*(\\S+)", ln.text):
            value = m.group(1)
            if not any(value.startswith(x) for x in r.source_not_bodies):
                for b in in_line(ln):
                    vote(b, w.source if b.named else w.source / 2, "source")
        if ln.text.startswith(tuple(r.index_bullets)):
            for b in in_line(ln):
                vote(b, w.index_block, "index_block")
        if any(s in ln.text for s in seps):
            for b in in_line(ln):
                vote(b, w.breadcrumb, "breadcrumb")
        if re.search(r.site_banner, ln.text):
            for b in in_line(ln):
                vote(b, w.banner, "banner")
    body = body_lines(lines, 0)
    if body:
        first = body[0]
        end = first.offset + min(len(first.text), 120)
        for b in [b for b in bodies if first.offset <= b.start < end][:2]:
            vote(b, w.opening, "opening")
        subject_spans.append(("opening", first.offset, first.offset + 40, w.opening))
    def only_a_body(ln: Line) -> BodyMention | None:
        """The body a line consists of (a byline, a signature), a date after it allowed."""
        name = re.sub(r"(\d{4}年\d{1,2}月\d{1,2}日?|" + CN_DATE + r")\s*$", "", ln.text).strip()
        found = in_line(ln)
        if found and len(name) <= 30 and found[0].start <= ln.offset + 3 and found[-1].end >= ln.offset + len(name) - 3:
            return found[0]
        return None

    for ln in lines[1:6]:  # a byline under the title
        if ln is not title and not body_lines([ln], 0) and (b := only_a_body(ln)):
            vote(b, w.byline, "byline")
    last_body = max((i for i, ln in enumerate(lines) if len(ln.text) > 40), default=-1)
    for ln in reversed(lines[last_body + 1:][-4:]):  # a signature after the last paragraph
        if b := only_a_body(ln):
            vote(b, w.signature, "signature")
            break
    counts: Counter[object] = Counter()
    for b in bodies:
        key = _place_key(b)
        if not _government(b) and counts[key] < w.mention_cap / w.mention:
            counts[key] += 1
            vote(b, w.mention, "mention")
    for b, weight, cue in _bare_place_votes(text, subject_spans, g, ctx):
        if not any(_place_key(x) == _place_key(b) for x in rep.values()) or cue != "opening":
            vote(b, weight, cue)
    refs = body_rules().file.self_references
    kinds = Counter(k for m in body_rules().self_re.finditer(text) if (k := refs[m.group(0)]))
    for key, b in rep.items():
        for kind, n in kinds.items():
            if b.organ.endswith(kind):
                ballot.add(key, b, min(n, 3) * w.self_reference, "self_reference", b.start, b.end)
    return ballot, rep


def _merge_levels(ballot: Ballot, rep: dict[object, BodyMention], g: Gazetteer) -> None:
    """A body written with a level word only (市科技局) is the same body as one of that organ named with a place of
    that level (六盘水市科学技术局): its votes join the named one's."""
    for key in [k for k in ballot.votes if isinstance(k, tuple) and k[0] == "level"]:
        _, organ, level = key
        named = [k for k in ballot.votes if isinstance(k, tuple) and k[0] == "named" and k[1] == organ
                 and _fits_level(rep[k], level, g)]
        if len(named) == 1 or (named and len({rep[k].place.code if rep[k].place else rep[k].zone for k in named}) == 1):
            ballot.votes[named[0]].extend(ballot.votes.pop(key))


def _fits_level(b: BodyMention, level: str | None, g: Gazetteer) -> bool:
    if level is None:
        return True
    if b.place is None:
        return level in ("区", "市")  # a zone is written like a district or a city
    return _KIND_WORD.get(b.place.kind) == level or (level == "市" and b.place.kind == "直辖市")


def _place_for_level(level: str | None, g: Gazetteer, text: str, ctx: Counter[str]) -> tuple[Place, int, int] | None:
    """The place of ``level`` the report names most (at least twice, twice as often as the next), with one of its
    mentions: the place a body written as ``市科技局`` belongs to."""
    mentions = g.find(text, short_before=re.compile(""))
    counts: Counter[str] = Counter()
    first: dict[str, tuple[int, int]] = {}
    for m in mentions:
        p = g.resolve(m, ctx)
        if p is None or (level is not None and _KIND_WORD.get(p.kind) != level
                         and not (level == "市" and p.kind == "直辖市")):
            continue
        counts[p.code] += 1
        first.setdefault(p.code, (m.start, m.end))
    if not counts:
        return None
    (code, n), *rest = counts.most_common(2)
    if n < 2 or (rest and n < 2 * rest[0][1]):
        return None
    return g.by_code[code], *first[code]


def _zone_city(g: Gazetteer, text: str, ctx: Counter[str]) -> Place | None:
    """The city a functional zone named without it belongs to: the prefecture the report names most."""
    found = _place_for_level("市", g, text, ctx)
    return found[0] if found and found[0].level == PREFECTURE else None


def _enough(ballot: Ballot, key: object) -> bool:
    """A body is the issuer only on a positional cue (title, source line, signature …) or when the report names it
    again and again: a passing mention is not evidence of authorship."""
    votes = ballot.votes[key]
    w = meta_rules().weights
    return any(v.cue not in ("mention", "self_reference") for v in votes) or \
        sum(v.weight for v in votes if v.cue == "mention") >= w.mention_cap


def extract_meta(text: str, source: str | None = None) -> Meta:
    """Metadata of a report from its cleaned text, every field with its evidence. ``source`` is accepted for
    interface symmetry and ignored: file names are not evidence."""
    del source
    g = gazetteer()
    lines = lines_of(text)
    head = title_line(lines)
    title = head.text if head else None
    genre = detect_genre(title, text)
    evidence: list[MetaEvidence] = []

    pub_ballot = Ballot()
    published_votes(text, lines, pub_ballot)
    session = re.search(meta_rules().session, text[:3000])
    delivered_date = None
    if session and session.group("date"):
        delivered_date = valid_date(*(int(x) for x in re.findall(r"\d+", session.group("date"))[:3]))
        if delivered_date and not pub_ballot.votes:
            pub_ballot.add(delivered_date, delivered_date, 3, "session", session.start("date"), session.end("date"))
    published = None
    if (won := pub_ballot.winner()) is not None:
        published = str(won[0])
        evidence.append(evidence_of("published", published, won[1], won[2], text))

    delivered = int(delivered_date[:4]) if delivered_date else None
    year_ballot = Ballot()
    year_votes(text, lines, head, genre, delivered, published, year_ballot)
    year = None
    if (won := year_ballot.winner()) is not None:
        year = int(won[0])  # type: ignore[call-overload]
        evidence.append(evidence_of("year", year, won[1], won[2], text))

    places = g.find(text, short_before=body_rules().after_short_place)
    ctx = g.context(places)
    bodies = find_bodies(text, ctx)
    ballot, rep = _issuer_votes(text, lines, head, bodies, g, ctx)
    _merge_levels(ballot, rep, g)
    issuer = region = None
    if (won := ballot.winner()) is not None and _enough(ballot, won[0]):
        key, vote, confidence = won
        b = rep[key]
        place: Place | None = None
        if not b.named and b.zone is None:
            found = _place_for_level(b.level, g, text, ctx)
            place = found[0] if found else None
        elif b.zone is not None and b.place is None:
            place = _zone_city(g, text, ctx)
        issuer, region = body_name(b, place), body_region(b, place)
        if issuer:
            evidence.append(evidence_of("issuer", issuer, vote, confidence, text))
            evidence.append(evidence_of("region", region or "", vote, confidence, text))
    if head:
        evidence.append(MetaEvidence("title", title, title, head.offset, head.offset + len(title), "title",
                                     1.0))
    return Meta(issuer=issuer, region=region, year=year, published=published, title=title, genre=genre.name,
                evidence=tuple(evidence))


# ------------------------------------------------------------------------------------------------------- given


class GivenMeta(BaseModel):
    """Metadata a user states (``REPORT.meta.yaml`` beside the report, or ``ingest --meta KEY=VALUE``): it wins over
    extraction and is shown as given."""

    model_config = ConfigDict(extra="forbid")
    issuer: str | None = None
    region: str | None = None
    year: int | None = None
    published: str | None = None
    title: str | None = None
    genre: str | None = None


def apply_given(meta: Meta, given: GivenMeta) -> Meta:
    """``meta`` with every field the user gave replaced, its evidence marked ``given``."""
    values = given.model_dump(exclude_none=True)
    if not values:
        return meta
    if "published" in values:
        m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", str(values["published"]).strip())
        v = valid_date(*(int(g) for g in m.groups())) if m else None
        if v is None:
            raise ValueError(f"published must be a date YYYY-MM-DD, got {values['published']!r}")
        values["published"] = v
    if "genre" in values:
        values["genre"] = genre_named(values["genre"]).name
    kept = tuple(e for e in meta.evidence if e.field not in values)
    given_ev = tuple(MetaEvidence(f, v, "", -1, -1, "given", 1.0) for f, v in values.items())
    return replace(meta, **values, evidence=kept + given_ev)
