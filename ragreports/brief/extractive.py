"""The extractive brief engine (default, offline, deterministic).

The report's units (:mod:`ragreports.brief.units`: sub-headings and ``一是/二是`` enumerations, each mapped to a
template field by the cue words of ``data/brief_cues.yaml``) each give one item made of its title and its key
sentences (numbers, concrete actions, named documents outweigh general phrases). Every evidence satisfies
``doc.text[start:end] == quote``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragreports.brief.cues import Cues, load_cues
from ragreports.brief.model import FIELDS, Brief, BriefItem, EvidenceModel, FactModel, GeneratedBy, MetaModel
from ragreports.brief.units import EDGE_PUNCT, ENUM_NUMERALS, report_units
from ragreports.text.grounding import QuoteLocator
from ragreports.types import Document, Fact

# ------------------------------------------------------------------------------------------------- scoring


def substance(sentence: str, cues: Cues) -> float:
    """How concrete a sentence is: numbers, actions, named documents up; general phrases down."""
    sub = cues.substance
    score = 2.0 * min(len(re.findall(sub.number, sentence)), 3)
    score += min(len(cues.rx(sub.actions).findall(sentence)), 3)
    score += 0.5 * min(sentence.count("《") + sentence.count("“"), 2)
    score -= 0.5 * min(len(cues.rx(sub.generic).findall(sentence)), 2)
    return score


def _pick(text: str, sents: Sequence[tuple[int, int]], k: int, cues: Cues) -> list[tuple[int, int]]:
    """The first sentence (it usually states the measure) and the ``k - 1`` most substantial others, in order."""
    if len(sents) <= k:
        return list(sents)
    rest = sorted(range(1, len(sents)), key=lambda i: (-substance(text[slice(*sents[i])], cues), i))
    return [sents[i] for i in sorted([0, *rest[: k - 1]])]


def _budget(n: int, table: Sequence[tuple[int, int]]) -> int:
    return next((k for top, k in table if n <= top), table[-1][1])


def choose_topic(title: str, path: Sequence[str], body: str, cues: Cues) -> str:
    """Topic of a measure by keyword hits: own title x3, headings x2, quoted sentences x1; ties go first-listed."""
    best, best_score = "其他", 0.0
    for topic, words in cues.topics.items():
        rx = cues.rx(words)
        score = 3 * len(rx.findall(title)) + 2 * sum(len(rx.findall(p)) for p in path) + len(rx.findall(body))
        if score > best_score:
            best, best_score = topic, score
    return best


def _cut(s: str, limit: int) -> str:
    """``s`` cut at a clause boundary to about ``limit`` characters."""
    s = re.sub(rf"^[{ENUM_NUMERALS}]是(?=.)", "", s).strip(EDGE_PUNCT) or s
    if len(s) <= limit:
        return s
    cut = max((m.start() for m in re.finditer(r"[，,；;：:]", s) if 8 <= m.start() <= limit), default=limit)
    return s[:cut].rstrip(EDGE_PUNCT) + "…"


# ------------------------------------------------------------------------------------------------- extractive


class _Builder:
    def __init__(self, text: str, cues: Cues):
        self.text, self.cues = text, cues
        self.locator = QuoteLocator(text)
        self.out: dict[str, list[BriefItem]] = {f: [] for f in FIELDS}

    def s(self, span: tuple[int, int]) -> str:
        return self.text[span[0]:span[1]]

    def item(self, field: str, title, sents, topic: str | None = None) -> BriefItem | None:
        spans = ([title] if title else []) + list(sents)
        if not spans:
            return None
        evidence = []
        for a, b in spans:
            ev = self.locator.locate(self.text[a:b], fuzzy=False, hint=a)
            if ev is not None and self.text[ev.start:ev.end] == ev.quote:
                evidence.append(EvidenceModel(quote=ev.quote, start=ev.start, end=ev.end))
        if not evidence:
            return None
        limit = self.cues.limits.text_chars
        parts = ([_cut(self.s(title), limit)] if title else []) + ([_cut(self.s(sents[0]), limit)] if sents else [])
        it = BriefItem(topic=topic, text="：".join(parts), evidence=evidence)
        self.out[field].append(it)
        return it


def extractive_items(text: str, cues: Cues | None = None) -> dict[str, list[BriefItem]]:
    """Items of every template field chosen by rules (offline, deterministic)."""
    cues = cues or load_cues()
    lim = cues.limits
    b = _Builder(text, cues)
    is_filler = cues.rx(cues.filler).search
    is_short = cues.rx(cues.shortcoming_statement).search
    lead_strong = cues.rx(cues.leadership_headings.get("strong", [])).search
    lead_weak = cues.rx(cues.leadership_headings.get("weak", [])).search
    strong_rx = cues.rx(cues.leadership_sentences.get("strong", []))
    weak_rx = cues.rx(cues.leadership_sentences.get("weak", []))

    def lead_score(sentence: str) -> int:
        """2 per distinct strong cue, 1 per distinct weak cue; a sentence counts from 2 on."""
        return 2 * len(set(strong_rx.findall(sentence))) + len(set(weak_rx.findall(sentence)))

    units = report_units(text, cues)
    lead_units: list[tuple[tuple[int, int] | None, list[tuple[int, int]]]] = []
    lead_sents: list[tuple[float, int, tuple[int, int]]] = []
    for u in units:
        title = b.s(u.title) if u.title else ""
        sents = list(u.sentences)
        kind = u.field
        if kind == "mixed":
            first = title or (b.s(sents[0]) if sents else "")
            kind = "next_year" if cues.rx(cues.plan_openers).search(first) else "shortcomings"
        if kind in ("measures", "intro", "other", "leadership"):
            cue_sents = [sp for sp in sents if lead_score(b.s(sp)) >= 2]
            if kind == "leadership" or (kind != "intro" and title and lead_strong(title)):
                lead_units.append((u.title, sents[: lim.leadership_unit]))
            elif kind != "intro" and title and lead_weak(title):
                lead_units.append((u.title, sorted({*sents[:1], *cue_sents})[: lim.leadership_unit]))
            else:
                lead_sents.extend((-lead_score(b.s(sp)), sp[0], sp) for sp in cue_sents)
        if kind == "measures":
            sents = [x for x in sents if not is_filler(b.s(x))]
            if not sents and not u.title:
                continue
            picked = _pick(text, sents, _budget(len(sents), lim.measures), cues)
            body = " ".join(b.s(x) for x in picked)
            b.item("measures", u.title, picked, choose_topic(title, u.path, body, cues))
        elif kind in ("next_year", "other"):
            plans = []
            for x in sents:  # a plan section often opens by admitting shortcomings: those go to shortcomings
                m = is_short(b.s(x)) if kind == "next_year" else None
                if m:  # up to the end of the clause that admits them
                    stop = re.compile(r"[，,：:；;]").search(b.s(x), m.end())
                    b.item("shortcomings", None, [(x[0], x[0] + stop.start()) if stop else x])
                elif not is_filler(b.s(x)):
                    plans.append(x)
            if u.title and kind == "next_year" and is_short(title):
                b.item("shortcomings", u.title, [])
            elif plans or (u.title and not sents):  # a title whose sentences all went elsewhere is no plan
                b.item(kind, u.title, plans[: getattr(lim, kind)])
        elif kind == "shortcomings":
            keep = [x for x in sents if not is_filler(b.s(x))]
            if keep or (u.title and not sents):
                b.item("shortcomings", u.title, keep[: lim.shortcomings])
    _leadership(b, lead_units, lead_sents)
    return b.out


def _leadership(b: _Builder, units: list[tuple[tuple[int, int] | None, list[tuple[int, int]]]],
                sents: list[tuple[float, int, tuple[int, int]]]) -> None:
    """Leadership items: leadership units first, then the sentences with the most cues; output in text order."""
    covered = {sp for _, ss in units for sp in ss}
    chosen = [((title or ss[0])[0], title, ss) for title, ss in units if title or ss]
    room = max(0, b.cues.limits.leadership_items - len(chosen))
    extra = [sp for _, _, sp in sorted(sents) if sp not in covered][:room]
    chosen += [(sp[0], None, [sp]) for sp in extra]
    for _, title, ss in sorted(chosen, key=lambda c: c[0]):
        b.item("leadership", title, ss)


def _meta(doc: Document) -> MetaModel:
    m = doc.meta
    return MetaModel(issuer=m.issuer, region=m.region, year=m.year, published=m.published, title=m.title)


def _facts(facts: Sequence[Fact]) -> list[FactModel]:
    return [FactModel(label=f.label, value=f.value, unit=f.unit, approx=f.approx, quote=f.quote, start=f.start,
                      end=f.end) for f in facts]


def brief_base(doc: Document, facts: Sequence[Fact] = ()) -> dict:
    """The fields of a :class:`Brief` that do not depend on the engine: ids, metadata and key figures."""
    return {"doc_id": doc.doc_id, "source": doc.source, "meta": _meta(doc), "key_figures": _facts(facts)}


def extractive_brief(doc: Document, facts: Sequence[Fact] = (), *, cues: Cues | None = None,
                     notes: Sequence[str] = ()) -> Brief:
    """The brief made by the extractive engine; ``notes`` become its ``warnings`` (e.g. why the llm fell back)."""
    cues = cues or load_cues()
    return Brief(**brief_base(doc, facts), **extractive_items(doc.text, cues), warnings=list(notes),
                 generated_by=GeneratedBy(model="extractive", prompt=f"brief_cues@{cues.version}", engine="extractive"))
