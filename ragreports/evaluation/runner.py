"""The eval harness: run a gold suite through the pipeline in an isolated index, score it, apply gates.

    run = run_eval("eval/suites/dev", settings, engine="extractive")
    run.passed, run.scores.facts.f1, run.failures

Everything the run needs from the user (gold files, thresholds, baseline) is validated before any work. The
pipeline runs against a fresh temporary index (``settings.home`` replaced by a temp dir, embedded Chroma), so the
user's index is never touched. Scoring is pure (:mod:`ragreports.evaluation.scoring`); rendering is in
:mod:`ragreports.evaluation.report`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragreports.config import Settings
from ragreports.errors import ConfigError, GoldFormatError, RagReportsError
from ragreports.evaluation.gold import Suite, load_suite
from ragreports.evaluation.models import Predictions, ReportScore, Scores
from ragreports.evaluation.scoring import contains_quote, metric_values, score_suite
from ragreports.types import ENGINES
from ragreports.workspace import Workspace

log = logging.getLogger("ragreports.evaluation")

MIN_RETRIEVED = 5  # retrieval recall@5 needs at least five passages per question
ProgressFn = Callable[[str, dict], None]

# Metric names usable in thresholds.yaml, --min and baselines (see scoring.metric_values).
METRICS: tuple[str, ...] = (
    "fact_precision", "fact_recall", "fact_f1", "meta_accuracy", "meta_issuer", "meta_region", "meta_year",
    "meta_published", "qa_accuracy", "refusal_precision", "refusal_recall", "retrieval_recall_at_1",
    "retrieval_recall_at_5", "grounding_verified", "section_coverage",
)
THRESHOLDS_FILE = "thresholds.yaml"


# -- result models -----------------------------------------------------------------------------------------------
class PipelineError(BaseModel):
    report: str  # report file name, or "" for a question-level error
    stage: str  # ingest | extract | summarize | ask
    error: str
    question: str | None = None
    run: int = 0  # which of the --repeat runs


class MetricDelta(BaseModel):
    baseline: float
    current: float
    delta: float


class QuestionRate(BaseModel):
    report: str
    question: str
    passed: int
    runs: int
    pass_rate: float


class RepeatStats(BaseModel):
    runs: int
    mean: dict[str, float]
    min: dict[str, float]
    max: dict[str, float]
    questions: list[QuestionRate]
    flaky: list[QuestionRate]  # 0 < pass rate < 1


class EvalRun(BaseModel):
    """One eval: headline scores (the mean over runs when ``repeat`` > 1), per-report breakdown and misses
    (first run), gates, baseline deltas and the raw predictions of the first run (``--dump`` shape)."""

    suite: str
    engine: str
    repeat: int = 1
    reports: int
    scores: Scores
    report_scores: list[ReportScore]
    thresholds: dict[str, float] = Field(default_factory=dict)
    failures: list[str] = Field(default_factory=list)
    passed: bool = True
    deltas: dict[str, MetricDelta] | None = None
    repeat_stats: RepeatStats | None = None
    predictions: dict[str, Any]  # {"reports": [...], "questions": [...]} as the --dump spec
    texts: dict[str, str] = Field(default_factory=dict)  # doc_id -> normalised text (grounding, dump)
    warnings: list[str] = Field(default_factory=list)
    errors: list[PipelineError] = Field(default_factory=list)
    llm_usage: dict[str, int | float] | None = None  # engine llm: calls, errors, tokens in/out, seconds (all runs)

    @property
    def metrics(self) -> dict[str, float]:
        return metric_values(self.scores)


# -- thresholds, gates, baseline ---------------------------------------------------------------------------------
class _Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fact_precision: float | None = Field(None, ge=0, le=1)
    fact_recall: float | None = Field(None, ge=0, le=1)
    fact_f1: float | None = Field(None, ge=0, le=1)
    meta_accuracy: float | None = Field(None, ge=0, le=1)
    meta_issuer: float | None = Field(None, ge=0, le=1)
    meta_region: float | None = Field(None, ge=0, le=1)
    meta_year: float | None = Field(None, ge=0, le=1)
    meta_published: float | None = Field(None, ge=0, le=1)
    qa_accuracy: float | None = Field(None, ge=0, le=1)
    refusal_precision: float | None = Field(None, ge=0, le=1)
    refusal_recall: float | None = Field(None, ge=0, le=1)
    retrieval_recall_at_1: float | None = Field(None, ge=0, le=1)
    retrieval_recall_at_5: float | None = Field(None, ge=0, le=1)
    grounding_verified: float | None = Field(None, ge=0, le=1)
    section_coverage: float | None = Field(None, ge=0, le=1)


def find_thresholds_file(suite_path: str | Path) -> Path | None:
    """``thresholds.yaml`` in the suite folder, its parent, or its grandparent (``eval/thresholds.yaml`` for
    ``eval/suites/dev``); None when there is none."""
    p = Path(suite_path).expanduser().resolve()
    for d in (p, p.parent, p.parent.parent):
        if (d / THRESHOLDS_FILE).is_file():
            return d / THRESHOLDS_FILE
    return None


def load_thresholds(path: str | Path, suite_name: str) -> dict[str, float]:
    """Minimum scores for ``suite_name`` from a thresholds file mapping suite name -> {metric: minimum}.
    A suite the file does not list has no gates (an empty dict)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the thresholds file ({exc}); fix its YAML") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must map suite names to {{metric: minimum}}, e.g. dev: {{fact_f1: 0.9}}")
    out: dict[str, float] = {}
    for name, entry in data.items():  # validate every suite's entry, not only the one in use
        try:
            t = _Thresholds.model_validate(entry or {})
        except ValidationError as exc:
            bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{path}: suite {name!r}: {bad} (metrics: {', '.join(METRICS)})") from None
        if str(name) == suite_name:
            out = {k: float(v) for k, v in t.model_dump().items() if v is not None}
    return out


def parse_min(values: Iterable[str]) -> dict[str, float]:
    """Parse ``--min name=value`` overrides (``fact_f1=0.9``)."""
    out: dict[str, float] = {}
    for item in values:
        name, sep, val = item.partition("=")
        name = name.strip()
        if not sep or name not in METRICS:
            raise ConfigError(f"--min {item!r}: expected NAME=VALUE with NAME one of {', '.join(METRICS)}")
        try:
            v = float(val)
        except ValueError:
            raise ConfigError(f"--min {item!r}: {val!r} is not a number (use e.g. {name}=0.9)") from None
        if not 0 <= v <= 1:
            raise ConfigError(f"--min {item!r}: a minimum must lie between 0 and 1")
        out[name] = v
    return out


def check_gates(result: EvalRun | Scores | Mapping[str, float], thresholds: Mapping[str, float]) -> list[str]:
    """Gate failures (empty when every metric reaches its minimum), in metric-name order."""
    if isinstance(result, EvalRun):
        metrics = result.metrics
    elif isinstance(result, Scores):
        metrics = metric_values(result)
    else:
        metrics = dict(result)
    fails = []
    for name in sorted(thresholds):
        if name not in metrics:
            raise ConfigError(f"unknown metric {name!r} in thresholds; use one of {', '.join(METRICS)}")
        if metrics[name] < thresholds[name] - 1e-12:
            fails.append(f"{name} {metrics[name]:.4f} < {thresholds[name]:.4f}")
    return fails


def metrics_from_json(data: Mapping[str, Any]) -> dict[str, float]:
    """Flat metrics of an eval ``--json`` output (cli-json.md shape)."""
    try:
        out = {
            "fact_precision": data["facts"]["precision"], "fact_recall": data["facts"]["recall"],
            "fact_f1": data["facts"]["f1"], "meta_accuracy": data["meta"]["accuracy"],
            **{f"meta_{k}": v for k, v in data["meta"].get("fields", {}).items()},
            "qa_accuracy": data["qa"]["accuracy"],
            **{f"refusal_{k}": data["qa"][f"refusal_{k}"] for k in ("precision", "recall")
               if f"refusal_{k}" in data["qa"]},
            "retrieval_recall_at_1": data["retrieval"]["recall_at_1"],
            "retrieval_recall_at_5": data["retrieval"]["recall_at_5"],
            "grounding_verified": data["grounding"]["verified"], "section_coverage": data["sections"]["coverage"],
        }
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"not an eval --json output (missing {exc}); pass a file written by "
                          f"`ragreports eval SUITE --json > PREV.json`") from None
    return {k: float(v) for k, v in sorted(out.items()) if k in METRICS and isinstance(v, (int, float))}


def load_baseline(path: str | Path) -> dict[str, float]:
    """Metrics of a previous ``ragreports eval --json`` output."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--baseline {path}: cannot read JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--baseline {path}: expected the JSON object printed by `ragreports eval --json`")
    try:
        return metrics_from_json(data)
    except ConfigError as exc:
        raise ConfigError(f"--baseline {path}: {exc}") from None


def compute_deltas(current: Mapping[str, float], baseline: Mapping[str, float]) -> dict[str, MetricDelta]:
    return {k: MetricDelta(baseline=baseline[k], current=current[k], delta=round(current[k] - baseline[k], 4))
            for k in sorted(current) if k in baseline}


# -- running the pipeline ----------------------------------------------------------------------------------------
def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(obj)


def _isolated(settings: Settings, home: Path) -> Settings:
    """A copy of ``settings`` pointing at ``home`` with the embedded Chroma (never a shared server)."""
    return settings.model_copy(update={"home": home, "chroma_url": None})


def _ingest(ws, suite: Suite, progress: ProgressFn) -> tuple[dict[str, str], list[PipelineError]]:
    """Ingest the annotated reports; returns report file name -> doc_id and ingest errors."""
    paths = [suite.report_path(g.report) for g in suite.gold]
    expected = {str(p.resolve()): p.name for p in paths}
    rep = ws.ingest([str(p) for p in paths], progress=progress)
    by_name: dict[str, str] = {}
    for d in rep.documents:
        by_name[expected.get(str(Path(d.source).resolve()), Path(d.source).name)] = d.doc_id
    errors = [PipelineError(report=Path(src).name, stage="ingest", error=str(err)) for src, err in rep.errors]
    for g in suite.gold:
        if g.report not in by_name and not any(e.report == g.report for e in errors):
            errors.append(PipelineError(report=g.report, stage="ingest", error="not ingested"))
    return by_name, errors


def _predict(ws, suite: Suite, doc_ids: Mapping[str, str], engine: str, k: int, run: int,
             progress: ProgressFn) -> tuple[dict[str, Any], list[PipelineError]]:
    """Raw predictions in the --dump shape for every annotated report and question."""
    reports: list[dict[str, Any]] = []
    questions: list[dict[str, Any]] = []
    errors: list[PipelineError] = []
    for i, g in enumerate(suite.gold):
        progress("report", {"report": g.report, "done": i, "total": len(suite.gold), "run": run})
        entry: dict[str, Any] = {"report": g.report, "doc_id": doc_ids.get(g.report), "meta": {}, "facts": [],
                                 "summary": None}
        doc_id = doc_ids.get(g.report)
        if doc_id is not None:
            try:
                doc, facts = ws.extract(doc_id)
                entry["meta"] = _as_dict(doc.meta)
                entry["facts"] = [_as_dict(f) for f in facts]
            except ConfigError:
                raise
            except RagReportsError as exc:
                errors.append(PipelineError(report=g.report, stage="extract", error=str(exc), run=run))
            try:
                entry["summary"] = _as_dict(ws.summarize(doc_id, engine=engine))
            except ConfigError:
                raise
            except RagReportsError as exc:
                errors.append(PipelineError(report=g.report, stage="summarize", error=str(exc), run=run))
        reports.append(entry)
    total = sum(len(g.questions) for g in suite.gold)
    done = 0
    for g in suite.gold:
        for gq in g.questions:
            progress("question", {"report": g.report, "done": done, "total": total, "run": run})
            done += 1
            q: dict[str, Any] = {"report": g.report, "question": gq.question, "answer": "", "refused": True,
                                 "citations": [], "retrieved": []}
            try:
                answer, retrieved = ws.ask(gq.question, k=k, engine=engine)
                retrieved = list(retrieved)
                if len(retrieved) < MIN_RETRIEVED:
                    retrieved = list(ws.search(gq.question, k=MIN_RETRIEVED))
                a = _as_dict(answer)
                q.update(answer=a.get("answer", ""), refused=bool(a.get("refused", False)),
                         citations=list(a.get("citations", [])), retrieved=[_as_dict(r) for r in retrieved])
            except ConfigError:
                raise
            except RagReportsError as exc:
                errors.append(PipelineError(report=g.report, stage="ask", error=str(exc), question=gq.question,
                                            run=run))
            questions.append(q)
    return {"reports": reports, "questions": questions}, errors


def gold_quote_warnings(suite: Suite, doc_ids: Mapping[str, str], texts: Mapping[str, str]) -> list[str]:
    """Gold quotes that do not occur in their report's normalised text (an annotation or cleaning problem)."""
    out = []
    for g in suite.gold:
        text = texts.get(doc_ids.get(g.report, ""))
        if text is None:
            continue
        quotes = [(f"facts[{i}]", f.quote) for i, f in enumerate(g.facts or [])]
        quotes += [(f"questions[{i}]", q.quote) for i, q in enumerate(g.questions) if q.quote is not None]
        quotes += [(f"sections.{s}", q) for s, q in g.sections.points()]
        for where, q in quotes:
            if not contains_quote(text, q):
                out.append(f"{g.report}: gold {where} quote not found in the report text: {q!r}")
    return out


# -- repeat ------------------------------------------------------------------------------------------------------
def _mean_scores(runs: Sequence[Scores]) -> Scores:
    """Field-wise mean of several runs' scores (floats rounded to 4 places, counts to integers)."""
    if len(runs) == 1:
        return runs[0]
    dumps = [r.model_dump() for r in runs]

    def mean(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {k: mean([v[k] for v in values]) for k in first}
        if isinstance(first, bool):
            return first
        if isinstance(first, int):
            return int(round(sum(values) / len(values)))
        return round(sum(values) / len(values), 4)

    return Scores.model_validate(mean(dumps))


def repeat_stats(runs: Sequence[tuple[Scores, list[ReportScore]]]) -> RepeatStats:
    metrics = [metric_values(s) for s, _ in runs]
    names = sorted(metrics[0])
    rates = []
    first = runs[0][1]
    for ri, rep in enumerate(first):
        for qi, q in enumerate(rep.questions):
            passed = sum(r[1][ri].questions[qi].correct for r in runs)
            rates.append(QuestionRate(report=rep.report, question=q.question, passed=passed, runs=len(runs),
                                      pass_rate=round(passed / len(runs), 4)))
    return RepeatStats(
        runs=len(runs),
        mean={n: round(sum(m[n] for m in metrics) / len(metrics), 4) for n in names},
        min={n: min(m[n] for m in metrics) for n in names},
        max={n: max(m[n] for m in metrics) for n in names},
        questions=rates, flaky=[r for r in rates if 0 < r.passed < r.runs])


# -- entry points ------------------------------------------------------------------------------------------------
def resolve_thresholds(suite_path: str | Path, suite_name: str, thresholds_file: str | Path | None = None,
                       overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Thresholds from the file (explicit or found next to the suite) for this suite, then ``--min`` overrides."""
    path = Path(thresholds_file) if thresholds_file else find_thresholds_file(suite_path)
    if thresholds_file and not Path(thresholds_file).is_file():
        raise ConfigError(f"thresholds file {thresholds_file} does not exist")
    out = load_thresholds(path, suite_name) if path else {}
    for k, v in (overrides or {}).items():
        if k not in METRICS:
            raise ConfigError(f"unknown metric {k!r}; use one of {', '.join(METRICS)}")
        out[k] = float(v)
    return dict(sorted(out.items()))


def finish(run: EvalRun, thresholds: Mapping[str, float], baseline: Mapping[str, float] | None = None) -> EvalRun:
    """Apply gates (and baseline deltas) to a scored run; returns an updated copy."""
    failures = check_gates(run, thresholds)
    deltas = compute_deltas(run.metrics, baseline) if baseline is not None else None
    return run.model_copy(update={"thresholds": dict(sorted(thresholds.items())), "failures": failures,
                                  "passed": not failures, "deltas": deltas})


def rescore(suite: Suite | str | Path, dump: Mapping[str, Any], texts: Mapping[str, str] | None = None,
            engine: str = "dump") -> EvalRun:
    """Score a ``--dump`` object (raw predictions) against a suite without running the pipeline. Texts default to
    the ``text`` key of the dump's report entries (grounding counts as unverified without them)."""
    if not isinstance(suite, Suite):
        suite = load_suite(suite)
    try:
        preds = Predictions.model_validate(dump)
    except ValidationError as exc:
        raise ConfigError(f"not a --dump predictions object: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
                          ) from None
    if texts is None:
        texts = {r["doc_id"]: r["text"] for r in dump.get("reports", [])
                 if isinstance(r, dict) and r.get("doc_id") and isinstance(r.get("text"), str)}
    result = score_suite(suite.gold, preds, texts)
    return EvalRun(suite=suite.name, engine=engine, reports=len(suite.gold), scores=result.scores,
                   report_scores=result.reports, predictions=dict(dump), texts=dict(texts),
                   warnings=list(suite.warnings))


def run_eval(suite_path: str | Path, settings: Settings, *, engine: str = "extractive", repeat: int = 1,
             progress: ProgressFn | None = None, workspace_factory: Callable[[Settings], Any] | None = None,
             thresholds_file: str | Path | None = None, min_overrides: Mapping[str, float] | None = None,
             baseline: str | Path | None = None) -> EvalRun:
    """Run a suite through the pipeline in a temporary index and score it.

    Validates the suite, thresholds and baseline first (GoldFormatError / ConfigError), then ingests the
    annotated reports into a fresh index under a temp dir, predicts meta, facts, briefs and answers ``repeat``
    times, scores each run and applies the gates. ``workspace_factory(settings)`` builds the orchestrator
    (default :class:`ragreports.workspace.Workspace`).
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if repeat < 1:
        raise ConfigError("--repeat must be at least 1")
    suite = load_suite(suite_path)
    thresholds = resolve_thresholds(suite.path, suite.name, thresholds_file, min_overrides)
    base = load_baseline(baseline) if baseline is not None else None
    progress = progress or (lambda event, info: None)
    if workspace_factory is None:
        workspace_factory = Workspace
    runs: list[tuple[Scores, list[ReportScore]]] = []
    first_preds: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ragreports-eval-", ignore_cleanup_errors=True) as tmp:
        ws = workspace_factory(_isolated(settings, Path(tmp) / "home"))
        try:
            doc_ids, errors = _ingest(ws, suite, progress)
            texts = {d: ws.get_document(d).text for d in sorted(set(doc_ids.values()))}
            warnings = list(suite.warnings) + gold_quote_warnings(suite, doc_ids, texts)
            for run in range(repeat):
                progress("run", {"run": run, "total": repeat})
                raw, errs = _predict(ws, suite, doc_ids, engine, settings.k, run, progress)
                errors += errs
                result = score_suite(suite.gold, Predictions.model_validate(raw), texts)
                runs.append((result.scores, result.reports))
                if run == 0:
                    first_preds = raw
            usage = llm_usage(ws) if engine == "llm" else None
        finally:
            close = getattr(ws, "close", None)
            if callable(close):
                close()
    scores = _mean_scores([s for s, _ in runs])
    run_obj = EvalRun(suite=suite.name, engine=engine, repeat=repeat, reports=len(suite.gold), scores=scores,
                      report_scores=runs[0][1], predictions=first_preds, texts=texts, warnings=warnings,
                      errors=errors, repeat_stats=repeat_stats(runs) if repeat > 1 else None, llm_usage=usage)
    return finish(run_obj, thresholds, base)


def llm_usage(ws) -> dict[str, int | float] | None:
    """Calls, tokens and model time summed over the suite, from the trace of the workspace's chat model."""
    chat_model = getattr(ws, "chat_model", None)
    trace = getattr(chat_model() if callable(chat_model) else None, "trace", None)
    return trace.totals() if trace is not None else None


__all__ = [
    "EvalRun", "GoldFormatError", "METRICS", "MetricDelta", "PipelineError", "RepeatStats", "check_gates",
    "compute_deltas", "finish", "find_thresholds_file", "load_baseline", "load_thresholds", "metrics_from_json",
    "parse_min", "rescore", "resolve_thresholds", "run_eval",
]
