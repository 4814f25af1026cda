"""Pydantic models of the evaluation: predictions read in the ``--dump`` shape, and the scores computed from them.

Inputs (``Pred*``, :class:`Predictions`) ignore unknown keys, so a dump from a newer version still loads. Results
(:class:`ReportScore`, :class:`Scores`, :class:`SuiteScore` and their parts) are what
:mod:`ragreports.evaluation.scoring`
returns and :mod:`ragreports.evaluation.runner` / :mod:`ragreports.evaluation.report` render; they hold no logic beyond
derived properties.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragreports.evaluation.matching import ANSWER_WINDOW


# -- predictions (the --dump shape; extra keys ignored) ----------------------------------------------------------
class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PredEvidence(_In):
    quote: str
    start: int
    end: int


class PredFact(_In):
    label: str = ""
    value: float
    unit: str
    approx: bool = False
    quote: str
    start: int = -1
    end: int = -1


class PredItem(_In):
    topic: str | None = None
    text: str = ""
    evidence: list[PredEvidence] = Field(default_factory=list)


class PredSummary(_In):
    measures: list[PredItem] = Field(default_factory=list)
    leadership: list[PredItem] = Field(default_factory=list)
    shortcomings: list[PredItem] = Field(default_factory=list)
    next_year: list[PredItem] = Field(default_factory=list)
    other: list[PredItem] = Field(default_factory=list)
    key_figures: list[PredFact] = Field(default_factory=list)


class PredMeta(_In):
    issuer: str | None = None
    region: str | None = None
    year: int | None = None
    published: str | None = None
    title: str | None = None


class PredReport(_In):
    report: str
    doc_id: str | None = None
    meta: PredMeta = Field(default_factory=PredMeta)
    facts: list[PredFact] = Field(default_factory=list)
    summary: PredSummary | None = None


class PredCitation(_In):
    doc_id: str
    source: str = ""
    quote: str
    start: int
    end: int


class PredResult(_In):
    doc_id: str
    source: str = ""
    section: str = ""
    text: str
    start: int = 0
    end: int = 0
    score: float = 0.0


class PredQuestion(_In):
    report: str
    question: str
    answer: str = ""
    refused: bool = False
    citations: list[PredCitation] = Field(default_factory=list)
    retrieved: list[PredResult] = Field(default_factory=list)


class Predictions(_In):
    reports: list[PredReport] = Field(default_factory=list)
    questions: list[PredQuestion] = Field(default_factory=list)


# -- results -----------------------------------------------------------------------------------------------------
class FactRef(BaseModel):
    label: str
    value: float
    unit: str
    approx: bool
    quote: str


class UnsupportedFact(BaseModel):
    """Right value and unit, but the predicted evidence does not overlap the gold quote."""

    gold: FactRef
    predicted: FactRef


class FactOutcome(BaseModel):
    """One gold fact: matched, "unsupported" (a prediction has its value and unit but cites other evidence),
    or missed. ``predicted`` is the paired prediction for matched and unsupported."""

    gold: FactRef
    status: Literal["matched", "unsupported", "missed"]
    predicted: FactRef | None = None


class MetaMiss(BaseModel):
    field: str
    gold: Any
    predicted: Any


class QuestionOutcome(BaseModel):
    question: str
    expected: str | None  # None: the report does not answer it (only a refusal is correct)
    quote: str | None
    answer: str
    refused: bool
    states_answer: bool
    cites_quote: bool
    correct: bool
    hit_at_1: bool
    hit_at_5: bool

    @property
    def answerable(self) -> bool:
        return self.expected is not None

    @property
    def reason(self) -> str:
        if self.correct:
            return ""
        if not self.answerable:
            return "the report does not answer this question: only a refusal is correct"
        if self.refused:
            return "refused"
        if not self.states_answer:
            return f"answer does not state {self.expected!r} within its first {ANSWER_WINDOW} characters"
        return "no citation contains the gold quote"


class SectionPoint(BaseModel):
    section: str
    quote: str
    covered: bool


class GroundingMiss(BaseModel):
    kind: str  # fact | key_figure | item:<section> | citation
    quote: str
    start: int
    end: int


class ReportScore(BaseModel):
    """Everything scored for one report, in gold order."""

    report: str
    doc_id: str | None
    facts_annotated: bool = True  # False: gold ``facts: null``, the report is left out of fact scoring
    facts: list[FactOutcome]  # aligned with the gold facts
    facts_predicted: int
    spurious_facts: list[FactRef]
    meta: dict[str, bool]
    meta_misses: list[MetaMiss]
    questions: list[QuestionOutcome]
    sections: list[SectionPoint]
    grounding_checked: int
    grounding_verified: int
    ungrounded: list[GroundingMiss]

    @property
    def facts_matched(self) -> int:
        return sum(f.status == "matched" for f in self.facts)

    @property
    def missed_facts(self) -> list[FactRef]:
        return [f.gold for f in self.facts if f.status == "missed"]

    @property
    def unsupported_facts(self) -> list[UnsupportedFact]:
        return [UnsupportedFact(gold=f.gold, predicted=f.predicted) for f in self.facts
                if f.status == "unsupported" and f.predicted is not None]


class FactScores(BaseModel):
    """Micro-averaged over the reports whose facts are annotated (``reports``)."""

    precision: float
    recall: float
    f1: float
    gold: int
    predicted: int
    matched: int
    unsupported: int
    reports: int = 0


class MetaScores(BaseModel):
    accuracy: float
    fields: dict[str, float]


class QAScores(BaseModel):
    accuracy: float  # answerable: states the answer and cites it; unanswerable: refused
    questions: int
    refused: int
    correct: int
    unanswerable: int = 0
    refusal_precision: float = 1.0  # refusals that were right (the question is unanswerable)
    refusal_recall: float = 1.0  # unanswerable questions that were refused


class RetrievalScores(BaseModel):
    recall_at_1: float  # over the answerable questions
    recall_at_5: float


class GroundingScores(BaseModel):
    verified: float
    checked: int


class SectionScores(BaseModel):
    coverage: float
    points: int
    covered: int


class Scores(BaseModel):
    facts: FactScores
    meta: MetaScores
    qa: QAScores
    retrieval: RetrievalScores
    grounding: GroundingScores
    sections: SectionScores


class SuiteScore(BaseModel):
    scores: Scores
    reports: list[ReportScore]


__all__ = [
    "PredEvidence", "PredFact", "PredItem", "PredSummary", "PredMeta", "PredReport", "PredCitation", "PredResult",
    "PredQuestion", "Predictions", "FactRef", "UnsupportedFact", "FactOutcome", "MetaMiss", "QuestionOutcome",
    "SectionPoint", "GroundingMiss", "ReportScore", "FactScores", "MetaScores", "QAScores", "RetrievalScores",
    "GroundingScores", "SectionScores", "Scores", "SuiteScore",
]
