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


@dataclass(frozen=True)
class Meta:
    issuer: str | None = None
    region: str | None = None
    year: int | None = None
    published: str | None = None  # YYYY-MM-DD
    title: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
