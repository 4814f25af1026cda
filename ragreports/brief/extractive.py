"""The standard brief: one report -> the fixed template of spec/summary-template.md, every item with evidence.

Two engines share the template (:class:`Brief`, a pydantic model whose JSON form is the ``summarize`` shape of
spec/cli-json.md):

* ``extractive`` (default, offline, deterministic): the report's outline (``ragreports.chunking``) and the cue
  words of ``data/brief_cues.yaml`` map each part of the report to a template field; inside a part, every
  sub-heading or ``一是/二是`` enumeration is a *unit*, and each unit gives one item made of its title and its
  key sentences (numbers, concrete actions, named documents outweigh general phrases).
* ``llm`` (:mod:`ragreports.brief_llm`): the report's sections go to a chat model with ``prompts/brief.yaml``;
  every quote the model gives is located in the report (:class:`~ragreports.grounding.QuoteLocator`); an item with
  a quote that is not found is dropped and counted. A reply that stays invalid after the bounded re-asks degrades
  to the extractive brief, with a warning.

Every evidence satisfies ``doc.text[start:end] == quote``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ragreports.brief_units import _ENUM_NUM, _STRIP, Unit, paragraphs, report_units, split_sentences  # noqa: F401
from ragreports.grounding import QuoteLocator
from ragreports.types import Document, Fact

FIELDS = ("measures", "leadership", "shortcomings", "next_year", "other")
CUES_PATH = Path(__file__).parent / "data" / "brief_cues.yaml"

# ------------------------------------------------------------------------------------------------- template


class EvidenceModel(BaseModel):
    quote: str
    start: int
    end: int


class BriefItem(BaseModel):
    topic: str | None = None
    text: str
    evidence: list[EvidenceModel] = Field(default_factory=list)


class MetaModel(BaseModel):
    issuer: str | None = None
    region: str | None = None
    year: int | None = None
    published: str | None = None
    title: str | None = None


class FactModel(BaseModel):
    label: str
    value: float
    unit: str
    approx: bool
    quote: str
    start: int
    end: int


class GeneratedBy(BaseModel):
    model: str
    prompt: str
    engine: str = "extractive"


class Brief(BaseModel):
    """The standard brief of one report. ``model_dump(mode="json")`` is the ``summarize --json`` object."""

    doc_id: str
    source: str
    meta: MetaModel
    measures: list[BriefItem] = Field(default_factory=list)
    leadership: list[BriefItem] = Field(default_factory=list)
    shortcomings: list[BriefItem] = Field(default_factory=list)
    next_year: list[BriefItem] = Field(default_factory=list)
    other: list[BriefItem] = Field(default_factory=list)
    key_figures: list[FactModel] = Field(default_factory=list)
    generated_by: GeneratedBy
    dropped_items: int = 0
    warnings: list[str] = Field(default_factory=list)

    def items(self):
        """(field, item) pairs in template order."""
        for name in FIELDS:
            for item in getattr(self, name):
                yield name, item


# ------------------------------------------------------------------------------------------------- cue data


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    measures: list[tuple[int, int]]
    leadership_unit: int
    leadership_items: int
    shortcomings: int
    next_year: int
    other: int
    title_chars: int
    text_chars: int


class _Substance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actions: list[str]
    generic: list[str]
    number: str


class Cues(BaseModel):
    """Contents of ``data/brief_cues.yaml`` (human-edited: unknown keys are rejected)."""

    model_config = ConfigDict(extra="forbid")
    version: int
    section_headings: dict[str, list[str]]
    plan_openers: list[str]
    paragraph_openers: dict[str, list[str]]
    shortcoming_statement: list[str]
    leadership_headings: dict[str, list[str]]
    leadership_sentences: dict[str, list[str]]
    filler: list[str]
    boilerplate: list[str] = Field(default_factory=list)
    substance: _Substance
    limits: _Limits
    topics: dict[str, list[str]]
    figure_concepts: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("section_headings")
    @classmethod
    def _known_fields(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = set(v) - set(FIELDS)
        if unknown:
            raise ValueError(f"section_headings: unknown fields {sorted(unknown)}; use {list(FIELDS)}")
        return v

    @model_validator(mode="after")
    def _patterns_compile(self) -> "Cues":
        groups = [self.plan_openers, self.shortcoming_statement, self.filler, self.boilerplate, self.substance.actions,
                  self.substance.generic, [self.substance.number]]
        for d in (self.section_headings, self.paragraph_openers, self.leadership_headings, self.leadership_sentences,
                  self.topics, self.figure_concepts):
            groups.extend(d.values())
        for pattern in (p for g in groups for p in g):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from exc
        return self

    def rx(self, patterns: Sequence[str]) -> re.Pattern[str]:
        return _compile(tuple(patterns))


@functools.lru_cache(maxsize=64)
def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns) or r"(?!x)x")


@functools.lru_cache(maxsize=4)
def load_cues(path: Path = CUES_PATH) -> Cues:
    """The cue words of the brief (cached)."""
    from ragreports.errors import ConfigError

    try:
        return Cues.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"brief cue file {path} is invalid: {exc}; fix it or restore it from git") from exc


# ------------------------------------------------------------------------------------------------- structure
# Units (sub-headings, enumeration items) and their sentences: ragreports.brief_units (re-exported here).

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
    s = re.sub(rf"^[{_ENUM_NUM}]是(?=.)", "", s).strip(_STRIP) or s
    if len(s) <= limit:
        return s
    cut = max((m.start() for m in re.finditer(r"[，,；;：:]", s) if 8 <= m.start() <= limit), default=limit)
    return s[:cut].rstrip(_STRIP) + "…"


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
    return dict(doc_id=doc.doc_id, source=doc.source, meta=_meta(doc), key_figures=_facts(facts))


def extractive_brief(doc: Document, facts: Sequence[Fact] = (), *, cues: Cues | None = None,
                     notes: Sequence[str] = ()) -> Brief:
    """The brief made by the extractive engine; ``notes`` become its ``warnings`` (e.g. why the llm fell back)."""
    cues = cues or load_cues()
    return Brief(**brief_base(doc, facts), **extractive_items(doc.text, cues), warnings=list(notes),
                 generated_by=GeneratedBy(model="extractive", prompt=f"brief_cues@{cues.version}", engine="extractive"))


def summarize(doc: Document, facts: Sequence[Fact] = (), *, engine: str = "extractive", chat_model=None,
              prompts_dir: Path | None = None, reasks: int = 2, context_chars: int = 3500) -> Brief:
    """The standard brief of ``doc``; ``facts`` (from ragreports.facts.extract_facts) become ``key_figures``.

    ``engine="llm"`` needs ``chat_model`` (a ragreports.llm.ChatModel) and ``prompts_dir`` holding brief.yaml;
    it is implemented in :mod:`ragreports.brief_llm`.
    """
    from ragreports.errors import ConfigError

    if engine not in ("extractive", "llm"):
        raise ConfigError(f"unknown brief engine {engine!r}; use extractive or llm")
    cues = load_cues()
    if engine == "llm":
        from ragreports.brief_llm import llm_brief

        return llm_brief(doc, facts, chat_model=chat_model, prompts_dir=prompts_dir, reasks=reasks,
                         context_chars=context_chars, cues=cues)
    return extractive_brief(doc, facts, cues=cues)


_LLM_NAMES = ("LLMBrief", "LLMItem", "llm_items", "report_parts", "PROMPT_NAME")


def __getattr__(name: str):
    """The llm engine's names, still importable from here (they live in ragreports.brief_llm, loaded lazily)."""
    if name in _LLM_NAMES:
        from ragreports import brief_llm

        return getattr(brief_llm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Brief", "BriefItem", "EvidenceModel", "FactModel", "GeneratedBy", "MetaModel", "LLMBrief", "LLMItem",
           "summarize", "extractive_items", "extractive_brief", "brief_base", "llm_items", "report_units",
           "Unit", "split_sentences", "paragraphs", "load_cues", "choose_topic", "substance"]
