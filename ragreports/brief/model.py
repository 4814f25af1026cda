"""The standard brief template (spec/summary-template.md) as pydantic models.

``Brief.model_dump(mode="json")`` is the ``summarize --json`` shape of spec/cli-json.md. Every evidence satisfies
``doc.text[start:end] == quote``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

FIELDS = ("measures", "leadership", "shortcomings", "next_year", "other")



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
