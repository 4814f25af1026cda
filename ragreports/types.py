"""Frozen dataclasses that flow through the pipeline.

Invariant: every ``start``/``end`` pair anywhere refers to ``Document.text`` (the normalised text), and
``document.text[start:end]`` is exactly the quoted text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ENGINES = ("extractive", "llm")  # the answer and brief engines: offline extractive, or a configured chat model


@dataclass(frozen=True)
class RawDocument:
    """A file decoded to text, before cleaning."""

    source: str  # path as given (absolute, resolved)
    text: str  # decoded text, markup already flattened for html/pdf/docx
    encoding: str  # detected encoding ("utf-8", "gb18030", "big5", "utf-16", "binary:pdf" ...)
    format: str  # "txt" | "md" | "html" | "pdf" | "docx"
    sha256: str  # of the raw bytes


META_FIELDS = ("issuer", "region", "year", "published", "title")


@dataclass(frozen=True)
class MetaEvidence:
    """Why a metadata field has its value: the cue that won, its quote and offsets, and how sure the winner is."""

    field: str  # issuer | region | year | published | title | genre
    value: str | int
    quote: str  # == document.text[start:end]; "" for a value the user gave
    start: int
    end: int
    cue: str  # title, delegate, session, source, index_block, breadcrumb, banner, opening, signature, mention,
    # review_heading, opening_year, plan_heading, label, given ...
    confidence: float  # the winner's share of all the weight cast for the field, 0..1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Meta:
    issuer: str | None = None
    region: str | None = None
    year: int | None = None  # the year the report is ABOUT
    published: str | None = None  # YYYY-MM-DD
    title: str | None = None
    genre: str | None = None  # work_report | rule_of_law | disclosure | statistics | summary (data/genres.yaml)
    evidence: tuple[MetaEvidence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The metadata fields, exactly the ``meta`` object of spec/cli-json.md (genre and evidence: see
        :meth:`to_json`)."""
        return {f: getattr(self, f) for f in META_FIELDS}

    def evidence_dicts(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.evidence]

    def to_json(self) -> dict[str, Any]:
        """Everything, for storage (:meth:`from_json` reads it back)."""
        return {**self.to_dict(), "genre": self.genre, "evidence": self.evidence_dicts()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Meta:
        ev = tuple(MetaEvidence(**e) for e in d.get("evidence") or ())
        return cls(**{f: d.get(f) for f in META_FIELDS}, genre=d.get("genre"), evidence=ev)


@dataclass(frozen=True)
class Document:
    doc_id: str
    source: str
    text: str  # normalised text: every offset refers to this
    original: str  # decoded text before cleaning
    sha256: str
    meta: Meta = field(default_factory=Meta)


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    index: int
    text: str  # == document.text[start:end]
    start: int
    end: int
    section: str  # heading path, e.g. "一、… › （三）…" ("" before the first heading)
    tokens: int
    years: tuple[int, ...] = ()  # the years its part of the report is about (extract.periods)
    kind: str = ""  # "result" | "plan" | "" (not known)
    mentions: tuple[int, ...] = ()  # other years its text names (比2019年增长…)

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_id}:{self.index}"


@dataclass(frozen=True)
class Evidence:
    quote: str  # == document.text[start:end]
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"quote": self.quote, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Fact:
    label: str
    value: float
    unit: str
    approx: bool
    quote: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchResult:
    doc_id: str
    source: str
    section: str
    text: str
    start: int
    end: int
    score: float
    years: tuple[int, ...] = ()  # the years the passage is about (Chunk.years)
    kind: str = ""  # "result" | "plan" | ""
    mentions: tuple[int, ...] = ()  # other years it names

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["years"], d["mentions"] = list(self.years), list(self.mentions)
        return d


@dataclass(frozen=True)
class Citation:
    doc_id: str
    source: str
    section: str
    quote: str  # == text of document doc_id [start:end]
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    refused: bool
    citations: tuple[Citation, ...] = ()
    engine: str = "extractive"
    prompt: str | None = None  # "name@version" of the prompt file when an LLM wrote the answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
        }
