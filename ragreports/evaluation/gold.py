"""Gold annotations (spec/gold-format.md): pydantic models and suite loading.

A suite is a folder with ``reports/`` (the report files) and ``gold/`` (one YAML file per report).
:func:`load_suite` validates EVERY gold file before any work is done: a malformed file raises
:class:`~ragreports.errors.GoldFormatError` naming the file, the field path and the problem.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ragreports.errors import GoldFormatError

SECTION_NAMES: tuple[str, ...] = ("measures", "leadership", "shortcomings", "next_year", "other")
META_FIELDS: tuple[str, ...] = ("issuer", "region", "year", "published")
REPORT_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".html", ".htm", ".pdf", ".docx"})
GOLD_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _nonempty(v: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("must be a non-empty string")
    return v.strip()


def _published(v: Any) -> str | None:
    """A publication date: YAML date (``2025-03-06`` unquoted) or the string ``YYYY-MM-DD``."""
    if v is None:
        return None
    if isinstance(v, _dt.datetime):
        return v.date().isoformat()
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, str) and _DATE.match(v.strip()):
        try:
            return _dt.date.fromisoformat(v.strip()).isoformat()
        except ValueError:
            pass
    raise ValueError(f"must be a date written YYYY-MM-DD (or null), got {v!r}")


def _year(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise ValueError(f"must be a year such as 2024, got {v!r}")
    try:
        y = int(str(v).strip())
    except ValueError:
        raise ValueError(f"must be a year such as 2024, got {v!r}") from None
    if not 1949 <= y <= 2100:
        raise ValueError(f"year {y} is out of range 1949..2100")
    return y


def _accepted(v: Any, one) -> Any:
    """A meta value: one value, a non-empty list of accepted values, or null."""
    if v is None:
        return None
    if isinstance(v, list):
        if not v:
            raise ValueError("a list of accepted values must not be empty (use null when the report does not say)")
        if any(x is None for x in v):
            raise ValueError("a list of accepted values must not contain null")
        return [one(x) for x in v]
    return one(v)


class GoldMeta(BaseModel):
    """Expected metadata. Each field: a value, a list of accepted values, or null (the report does not say).
    Every field must be present (write ``null`` explicitly)."""

    model_config = ConfigDict(extra="forbid")

    issuer: str | list[str] | None = Field(...)
    region: str | list[str] | None = Field(...)
    year: int | list[int] | None = Field(...)
    published: str | list[str] | None = Field(...)

    @field_validator("issuer", "region", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        def one(x: Any) -> str:
            if not isinstance(x, str):
                raise ValueError(f"must be text, got {x!r}")
            return _nonempty(x)

        return _accepted(v, one)

    @field_validator("year", mode="before")
    @classmethod
    def _years(cls, v: Any) -> Any:
        return _accepted(v, _year)

    @field_validator("published", mode="before")
    @classmethod
    def _dates(cls, v: Any) -> Any:
        def one(x: Any) -> str:
            out = _published(x)
            if out is None:
                raise ValueError("null is not an accepted value inside a list")
            return out

        return _accepted(v, one)

    def accepted(self, field: str) -> list[Any] | None:
        """Accepted values of ``field`` as a list, or None when the gold says the report does not state it."""
        v = getattr(self, field)
        if v is None:
            return None
        return list(v) if isinstance(v, list) else [v]


def _text(v: Any) -> str:
    """A required text field; YAML numbers (an answer like 5) are read as their text."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str):
        raise ValueError(f"must be text, got {v!r}")
    return _nonempty(v)


class GoldFact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    value: float
    unit: str
    approx: bool = False
    quote: str

    @field_validator("label", "unit", "quote", mode="before")
    @classmethod
    def _str(cls, v: Any) -> str:
        return _text(v)

    @field_validator("value", mode="before")
    @classmethod
    def _num(cls, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"must be a plain number after scale (9.98万 -> 99800), got {v!r}")
        return float(v)


class GoldQuestion(BaseModel):
    """A question and its short answer proved by a quote; ``answer: null`` (with ``quote: null``) marks a question
    the report does not answer: only a refusal is correct."""

    model_config = ConfigDict(extra="forbid")

    question: str
    answer: str | None
    quote: str | None

    @field_validator("question", mode="before")
    @classmethod
    def _str(cls, v: Any) -> str:
        return _text(v)

    @field_validator("answer", "quote", mode="before")
    @classmethod
    def _optional(cls, v: Any) -> str | None:
        return None if v is None else _text(v)

    @model_validator(mode="after")
    def _both_or_neither(self) -> GoldQuestion:
        if (self.answer is None) != (self.quote is None):
            raise ValueError("answer and quote are both null (an unanswerable question) or both given")
        return self

    @property
    def answerable(self) -> bool:
        return self.answer is not None


class GoldSections(BaseModel):
    """Key points per brief section, each a quote from the report."""

    model_config = ConfigDict(extra="forbid")

    measures: list[str] = Field(default_factory=list)
    leadership: list[str] = Field(default_factory=list)
    shortcomings: list[str] = Field(default_factory=list)
    next_year: list[str] = Field(default_factory=list)
    other: list[str] = Field(default_factory=list)

    @field_validator(*SECTION_NAMES, mode="before")
    @classmethod
    def _quotes(cls, v: Any) -> list[str]:
        if v is None:
            return []
        if not isinstance(v, list):
            raise ValueError("must be a list of quotes")
        out = []
        for i, x in enumerate(v):
            if not isinstance(x, str) or not x.strip():
                raise ValueError(f"item {i} must be a non-empty quote, got {x!r}")
            out.append(x.strip())
        return out

    def points(self) -> list[tuple[str, str]]:
        """(section, quote) pairs in template order."""
        return [(name, q) for name in SECTION_NAMES for q in getattr(self, name)]


class GoldReport(BaseModel):
    """One gold file."""

    model_config = ConfigDict(extra="forbid")

    report: str
    meta: GoldMeta
    facts: list[GoldFact] | None = None  # None (null or no key): not annotated, left out of fact scoring
    questions: list[GoldQuestion] = Field(default_factory=list)
    sections: GoldSections = Field(default_factory=GoldSections)

    @field_validator("report", mode="before")
    @classmethod
    def _report(cls, v: Any) -> str:
        if not isinstance(v, str) or not v.strip():
            raise ValueError("must be the report's file name inside reports/")
        v = v.strip()
        if "/" in v or "\\" in v:
            raise ValueError(f"must be a bare file name inside reports/, not a path: {v!r}")
        return v

    @field_validator("questions", mode="before")
    @classmethod
    def _list(cls, v: Any) -> Any:
        return [] if v is None else v


class Suite(BaseModel):
    """A validated suite: the gold files (sorted by report name) and where the reports are."""

    name: str
    path: Path
    reports_dir: Path
    gold: list[GoldReport]
    gold_files: dict[str, Path] = Field(default_factory=dict)  # report file name -> gold file
    reports_without_gold: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def report_path(self, report: str) -> Path:
        return self.reports_dir / report


class _GoldLoader(yaml.SafeLoader):
    """SafeLoader whose impossible dates (``2025-02-30``) stay strings, so validation can name the field."""


def _timestamp(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_GoldLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"


def parse_gold(data: Any, source: str | Path = "<gold>") -> GoldReport:
    """Validate one gold document (already parsed YAML). Raises GoldFormatError naming field path and problem."""
    if not isinstance(data, dict):
        raise GoldFormatError(f"{source}: a gold file must be a YAML mapping with keys report, meta, facts, "
                              f"questions, sections (see spec/gold-format.md)")
    try:
        return GoldReport.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling against spec/gold-format.md)"
            elif err["type"] == "missing":
                msg = "required field is missing" + (
                    " (write null when the report does not say)" if err["loc"][:1] == ("meta",) else "")
            lines.append(f"  {_loc(err['loc'])}: {msg}")
        raise GoldFormatError(f"{source}: invalid gold file\n" + "\n".join(lines)) from None


def load_gold_file(path: str | Path) -> GoldReport:
    """Read and validate one gold YAML file."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=_GoldLoader)
    except UnicodeDecodeError:
        raise GoldFormatError(f"{path}: gold files must be UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise GoldFormatError(f"{path}: {_yaml_problem(exc)}") from None
    except OSError as exc:
        raise GoldFormatError(f"{path}: cannot read the gold file ({exc.strerror or exc})") from None
    return parse_gold(data, path)


def _list_reports(reports_dir: Path) -> list[str]:
    return sorted(p.name for p in reports_dir.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in REPORT_SUFFIXES)


def load_suite(path: str | Path) -> Suite:
    """Validate a suite folder (``reports/`` + ``gold/``) and every gold file in it, before any work.

    Errors (GoldFormatError): missing folders, no gold files, a malformed gold file, a gold file whose ``report``
    is not in ``reports/``, two gold files for one report. Warnings (``Suite.warnings``): a report without gold,
    a gold file not named after its report.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise GoldFormatError(f"{root}: not a folder; a suite is a folder with reports/ and gold/")
    root = root.resolve()
    reports_dir, gold_dir = root / "reports", root / "gold"
    for d in (reports_dir, gold_dir):
        if not d.is_dir():
            raise GoldFormatError(f"{root}: missing {d.name}/ folder; a suite holds reports/ (the report files) "
                                  f"and gold/ (one YAML file per report), see spec/gold-format.md")
    gold_paths = sorted(p for p in gold_dir.iterdir()
                        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in GOLD_SUFFIXES)
    if not gold_paths:
        raise GoldFormatError(f"{gold_dir}: no gold files (*.yaml); add one per report, see spec/gold-format.md")
    present = set(_list_reports(reports_dir)) | {p.name for p in reports_dir.iterdir() if p.is_file()}
    golds: dict[str, GoldReport] = {}
    files: dict[str, Path] = {}
    problems: list[str] = []
    warnings: list[str] = []
    for gp in gold_paths:
        try:
            g = load_gold_file(gp)
        except GoldFormatError as exc:
            problems.append(str(exc))
            continue
        if g.report not in present:
            problems.append(f"{gp}: report: {g.report!r} is not a file in {reports_dir}")
            continue
        if g.report in golds:
            problems.append(f"{gp}: report: {g.report!r} is already annotated by {files[g.report]}; "
                            f"keep one gold file per report")
            continue
        if Path(g.report).stem != gp.stem:
            warnings.append(f"{gp.name}: gold file is not named after its report {g.report!r} "
                            f"(expected {Path(g.report).stem}{gp.suffix})")
        golds[g.report] = g
        files[g.report] = gp
    if problems:
        raise GoldFormatError("\n".join(problems))
    missing = [r for r in _list_reports(reports_dir) if r not in golds]
    warnings += [f"{r}: report has no gold file (not scored)" for r in missing]
    order = sorted(golds)
    return Suite(name=root.name, path=root, reports_dir=reports_dir, gold=[golds[r] for r in order],
                 gold_files={r: files[r] for r in order}, reports_without_gold=missing, warnings=warnings)
