"""Thin command-line interface (typer). Results go to stdout; logs and progress to stderr.

Exit codes: 0 success, 1 some inputs failed (or an eval gate failed, the index is busy with ``--no-wait``, damaged,
or the disk is full), 2 usage or configuration error. Errors are one line on stderr, printed once. Everything the
process prints passes through :class:`ragreports.redaction.RedactingStream`: no key, token or URL password leaves it.
Heavy third-party libraries load inside the stages on first use, so ``ragreports --help`` is fast.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ragreports.brief import render
from ragreports.config import Settings, load_settings
from ragreports.errors import ConfigError, RagReportsError
from ragreports.evaluation import report as eval_report
from ragreports.evaluation.runner import parse_min, run_eval
from ragreports.index.locks import holder_text
from ragreports.llm.streaming import draft_handler
from ragreports.redaction import RedactingStream, redact_obj
from ragreports.workspace import Workspace

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Grounded answers, standard briefs and checked facts from annual reports (offline by default).",
)

_state: dict[str, Any] = {"overrides": {}, "verbose": False}

JsonOpt = typer.Option(False, "--json", help="Print exactly one JSON object on stdout.")
NoWaitOpt = typer.Option(False, "--no-wait", help="Fail at once (exit 1) when another process is writing the index.")


def _err() -> Console:
    return Console(stderr=True)


def _out() -> Console:
    return Console(soft_wrap=True)


def _settings() -> Settings:
    return load_settings(read_dotenv=True, **_state["overrides"])


def _workspace() -> Workspace:
    return Workspace(_settings())


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(redact_obj(obj), ensure_ascii=False, indent=2) + "\n")


def _error_line(source: str, error: str) -> None:
    _err().print(f"[red]error:[/] {escape(source)}: {escape(error)}", highlight=False, soft_wrap=True)


def _waiting(err: Console):
    def progress(event: str, info: dict) -> None:
        if event == "waiting":
            err.print(f"[yellow]waiting[/] for the index lock held by {escape(holder_text(info['holder']))} "
                      "(Ctrl-C to stop; --no-wait fails at once)", highlight=False, soft_wrap=True)
    return progress


@app.callback()
def _root(
    home: Path | None = typer.Option(None, "--home",
                                     help="Index location (default: RAGREPORTS_HOME or a per-user data dir)."),
    embedder: str | None = typer.Option(None, "--embedder", help="e5-small | use | openai:MODEL | hash"),
    llm: str | None = typer.Option(None, "--llm", help="none | fake | gguf:PATH | PROVIDER:MODEL (openai:gpt-4o-mini, "
                                   "ollama:qwen2.5:7b, deepseek:deepseek-chat, ...)"),
    chroma_url: str | None = typer.Option(None, "--chroma-url",
                                          help="Use a Chroma server instead of the on-disk store."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Log details (model calls, tokens, timings) to stderr."),
    trace: Path | None = typer.Option(None, "--trace", help="Append one JSON line per model call to this file "
                                      "(model, prompt, tokens, latency, outcome)."),
    trace_content: bool = typer.Option(False, "--trace-content",
                                       help="With --trace: also keep the messages sent and the replies."),
) -> None:
    _state["overrides"] = {"home": home, "embedder": embedder, "llm": llm, "chroma_url": chroma_url,
                           "llm_trace": trace, "llm_trace_content": trace_content or None}
    _state["verbose"] = verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        for noisy in ("bm25s", "chromadb", "httpx", "jieba", "openai", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


# -- ingest & index management -----------------------------------------------------------------------------
def _parse_meta(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--meta {item!r}: expected KEY=VALUE, e.g. --meta issuer=某市科学技术局")
        out[key.strip()] = value.strip()
    return out


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., readable=False,  # unreadable inputs fail one by one, not the batch
                                       help="Report files or folders (searched recursively)."),
    reindex: bool = typer.Option(False, "--reindex", help="Drop the index first and rebuild it from these paths."),
    meta: list[str] = typer.Option([], "--meta", help="State metadata for these reports: KEY=VALUE (issuer, region, "
                                   "year, published, title, genre); wins over extraction, as a REPORT.meta.yaml does."),
    prune: bool = typer.Option(False, "--prune", help="Also remove indexed documents whose file is gone."),
    no_wait: bool = NoWaitOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Load, clean, chunk and index reports (.txt .md .html .pdf .docx; UTF-8/UTF-16/GBK/Big5)."""
    stated = _parse_meta(meta)
    ws = _workspace()
    err = _err()
    waiting = _waiting(err)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        files = bar.add_task("files", total=None)
        chunks = bar.add_task("embedded chunks", total=None)

        def progress(event: str, info: dict) -> None:
            if event == "files":
                bar.update(files, total=info["total"])
            elif event == "file":
                bar.update(files, description=f"[cyan]{escape(Path(info['source']).name)}[/]")
                bar.advance(files, 0)
            elif event == "embedded":
                bar.advance(chunks, info["n"])
            elif event == "flagged" and info["kind"] == "injection":
                err.print(f"[yellow]flagged[/]  {escape(info['doc_id'])} [{info['start']}:{info['end']}] text "
                          f"addressed to a model, kept out of answers: {escape(info['text'][:80])!r}",
                          highlight=False, soft_wrap=True)
            else:
                waiting(event, info)

        report = ws.ingest(paths, progress=progress, wait=not no_wait, prune=prune, reindex=reindex, meta=stated)
        bar.update(files, completed=len(report.documents) + len(report.errors))
    if as_json:
        _print_json(report.to_dict())
    else:
        out = _out()
        for d in report.documents:
            colour = {"added": "green", "updated": "yellow", "unchanged": "dim"}[d.status]
            out.print(f"[{colour}]{d.status:9}[/] {escape(d.doc_id)}  ({d.chunks} chunks)  {escape(d.source)}")
        for doc_id in report.pruned:
            out.print(f"[red]pruned   [/] {escape(doc_id)}  (its file is gone)")
        for source, reason in report.skipped:
            err.print(f"[dim]skipped[/]  {escape(source)}: {escape(reason)}", highlight=False, soft_wrap=True)
        for source, error in report.errors:
            if error != report.stopped:
                _error_line(source, error)
        if report.stopped:
            err.print(f"[red]error:[/] {escape(report.stopped)}", highlight=False, soft_wrap=True)
        out.print(f"{len(report.documents)} document(s), {len(report.errors)} error(s), "
                  f"{report.embedded} chunk(s) embedded" + (f", {len(report.not_done)} file(s) not done"
                                                            if report.stopped else "")
                  + f"; index: {escape(str(ws.settings.home))}")
    if report.errors:
        raise typer.Exit(1)


@app.command()
def doctor(
    repair: bool = typer.Option(False, "--repair", help="Rebuild what is broken from the docstore and the cache."),
    no_wait: bool = NoWaitOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Check that docstore, vectors and BM25 agree and can be read; exit 1 on damage left unrepaired."""
    err = _err()
    report = _workspace().doctor(repair_damage=repair, wait=not no_wait, progress=_waiting(err))
    if as_json:
        _print_json(report.to_dict())
    else:
        out = _out()
        vectors = "?" if report.vectors is None else report.vectors
        out.print(f"index {escape(report.home)}: {report.documents} document(s), {report.chunks} chunk(s), "
                  f"{vectors} vector(s)")
        for f in report.findings:
            state = "[green]repaired[/]" if f.repaired else ("[red]damage  [/]" if f.damage else "[yellow]notice  [/]")
            out.print(f"{state} {f.part}: {escape(f.problem)}")
        if report.repaired:
            out.print(f"repair done; {report.re_embedded} chunk(s) embedded again (the rest came from the cache)")
        verdict = "damaged: run `ragreports doctor --repair`" if report.damaged else "ok"
        out.print(verdict if not (report.damaged and report.repaired) else "damage left after the repair (above)")
    if report.damaged:
        raise typer.Exit(1)


@app.command("list")
def list_(as_json: bool = JsonOpt) -> None:
    """List indexed documents with their metadata."""
    docs = _workspace().list()
    if as_json:
        _print_json({"documents": [{"doc_id": d.doc_id, "source": d.source, "chunks": d.chunks,
                                    "meta": d.meta.to_dict()} for d in docs]})
        return
    t = Table("doc_id", "issuer", "year", "published", "chunks", "source")
    for d in docs:
        t.add_row(d.doc_id, d.meta.issuer or "—", str(d.meta.year or "—"), d.meta.published or "—",
                  str(d.chunks), d.source)
    _out().print(t if docs else "no documents indexed; run `ragreports ingest PATH`")


@app.command()
def show(
    doc: str = typer.Argument(..., help="Doc id or source path."),
    text: bool = typer.Option(False, "--text", help="Print the normalised text (the one all offsets refer to)."),
    chunks: bool = typer.Option(False, "--chunks", help="List the chunks with offsets and sections."),
    as_json: bool = JsonOpt,
) -> None:
    """Show one document: metadata, its normalised text, or its chunks."""
    ws = _workspace()
    d = ws.get_document(doc)
    if text and not as_json:
        sys.stdout.write(d.text + ("\n" if not d.text.endswith("\n") else ""))
        return
    chs = ws.chunks(doc) if (chunks or as_json) else []
    if as_json:
        obj = {"doc_id": d.doc_id, "source": d.source, "sha256": d.sha256, "meta": d.meta.to_dict(),
               "chunks": [{"index": c.index, "section": c.section, "start": c.start, "end": c.end,
                           "tokens": c.tokens} for c in chs]}
        if text:
            obj["text"] = d.text
        _print_json(obj)
        return
    out = _out()
    out.print(f"[bold]{d.doc_id}[/]  {d.source}")
    for k, v in d.meta.to_dict().items():
        out.print(f"  {k:9} {v if v is not None else '—'}")
    out.print(f"  chars     {len(d.text)}")
    for c in chs:
        out.print(f"[dim]{c.index:3} [{c.start}:{c.end}] {c.tokens:3} tok[/] {c.section or '(preamble)'}")


@app.command()
def delete(doc: str = typer.Argument(..., help="Doc id or source path."), no_wait: bool = NoWaitOpt,
           as_json: bool = JsonOpt) -> None:
    """Remove a document from the docstore, the vectors and the BM25 index (no text of it stays on disk)."""
    doc_id = _workspace().delete(doc, wait=not no_wait, progress=_waiting(_err()))
    if as_json:
        _print_json({"deleted": doc_id})
    else:
        _out().print(f"deleted {doc_id}")


# -- retrieval & answers -----------------------------------------------------------------------------------
@app.command()
def search(
    query: str = typer.Argument(...),
    k: int = typer.Option(5, "--k", "-k", min=1, max=100),
    doc: str | None = typer.Option(None, "--doc"),
    year: int | None = typer.Option(None, "--year"),
    issuer: str | None = typer.Option(None, "--issuer"),
    as_json: bool = JsonOpt,
) -> None:
    """Hybrid search (dense + BM25) over the indexed reports."""
    results = _workspace().search(query, k=k, doc=doc, year=year, issuer=issuer)
    if as_json:
        _print_json({"query": query, "results": [r.to_dict() for r in results]})
        return
    out = _out()
    if not results:
        out.print("no results")
    for i, r in enumerate(results, 1):
        out.print(f"[bold]{i}. {r.doc_id}[/] › {r.section or '(preamble)'} [dim][{r.start}:{r.end}] {r.score:.4f}[/]")
        out.print(f"   {r.text[:200]}{'…' if len(r.text) > 200 else ''}")


@app.command()
def ask(
    question: str = typer.Argument(...),
    doc: str | None = typer.Option(None, "--doc"),
    year: int | None = typer.Option(None, "--year"),
    issuer: str | None = typer.Option(None, "--issuer"),
    k: int = typer.Option(5, "--k", "-k", min=1, max=50),
    engine: str = typer.Option("extractive", "--engine", help="extractive (offline) | llm"),
    allow_flagged: bool = typer.Option(False, "--allow-flagged",
                                       help="Let text flagged as addressed to a model into the LLM's context."),
    as_json: bool = JsonOpt,
) -> None:
    """Answer a question from the reports, with verified citations (or refuse). With --engine llm on a terminal the
    model's draft is shown as it is written, then replaced by the verified answer."""
    ws, out = _workspace(), _out()
    if engine == "llm" and not as_json and out.is_terminal:
        with Live(Text(""), console=out, transient=True) as live:
            draft = draft_handler("answer", lambda t: live.update(Text(t, style="dim")))
            ans, _ = ws.ask(question, k=k, doc=doc, year=year, issuer=issuer, engine=engine, callbacks=[draft],
                            allow_flagged=allow_flagged)
    else:
        ans, _ = ws.ask(question, k=k, doc=doc, year=year, issuer=issuer, engine=engine, allow_flagged=allow_flagged)
    if as_json:
        _print_json(ans.to_dict())
        return
    out.print(f"[bold]{escape(ans.answer)}[/]" if not ans.refused else f"[yellow]{escape(ans.answer)}[/]")
    for c in ans.citations:
        out.print(f"  [dim]—[/] {escape(Path(c.source).name)} › {escape(c.section or '(preamble)')} › "
                  f"「{escape(c.quote)}」 "
                  f"[dim][{c.start}:{c.end}][/]")


# -- facts & briefs ----------------------------------------------------------------------------------------
def _meta_json(meta) -> dict:
    return meta.to_dict()


@app.command()
def extract(doc: str = typer.Argument(..., help="Doc id or source path."), as_json: bool = JsonOpt) -> None:
    """Metadata and every quantitative fact, each with its verified quote and offsets."""
    d, facts = _workspace().extract(doc)
    if as_json:
        _print_json({"doc_id": d.doc_id, "source": d.source, "meta": _meta_json(d.meta), "genre": d.meta.genre,
                     "meta_evidence": d.meta.evidence_dicts(), "facts": [f.to_dict() for f in facts]})
        return
    out = _out()
    for k, v in d.meta.to_dict().items():
        out.print(f"{k:9} {v if v is not None else '—'}")
    t = Table("label", "value", "unit", "approx", "quote", "offsets")
    for f in facts:
        t.add_row(f.label, f"{f.value:g}", f.unit, "≈" if f.approx else "", f.quote, f"{f.start}:{f.end}")
    out.print(t)


@app.command()
def summarize(
    doc: str | None = typer.Argument(None, help="Doc id or source path (omit with --all)."),
    all_: bool = typer.Option(False, "--all", help="Every indexed report."),
    fmt: str = typer.Option("md", "--format", "-f", help="md | json | html"),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file (with --all: a folder)."),
    engine: str = typer.Option("extractive", "--engine", help="extractive (offline) | llm"),
    as_json: bool = JsonOpt,
) -> None:
    """The standard brief of a report, every item with verified evidence."""
    if as_json:
        fmt = "json"
    if fmt not in ("md", "json", "html"):
        raise ConfigError(f"unknown --format {fmt!r}; use md, json or html")
    if not doc and not all_:
        raise ConfigError("give a DOC (see `ragreports list`) or --all")
    ws = _workspace()
    ids = [d.doc_id for d in ws.list()] if all_ else [doc]
    outputs: list[tuple[str, str]] = []
    briefs = []
    for i in ids:
        b = ws.summarize(i, engine=engine)
        briefs.append(b)
        if fmt == "json":
            outputs.append((i, json.dumps(render.render_json(b), ensure_ascii=False, indent=2) + "\n"))
        elif fmt == "html":
            outputs.append((i, render.render_html(b, ws.get_document(i).text)))
        else:
            outputs.append((i, render.render_markdown(b)))
    if output and all_:
        output.mkdir(parents=True, exist_ok=True)
        for i, content in outputs:
            (output / f"{i}.{fmt}").write_text(content, encoding="utf-8")
        _err().print(f"wrote {len(outputs)} brief(s) to {output}")
    elif output:
        output.write_text(outputs[0][1], encoding="utf-8")
        _err().print(f"wrote {output}")
    elif fmt == "json" and all_:
        _print_json({"briefs": [render.render_json(b) for b in briefs]})
    else:
        sys.stdout.write("\n".join(c for _, c in outputs))


@app.command()
def compare(
    fmt: str = typer.Option("md", "--format", "-f", help="csv | md"),
    output: Path | None = typer.Option(None, "--output", "-o"),
) -> None:
    """One row per indexed report: metadata and key figures side by side."""
    if fmt not in ("csv", "md"):
        raise ConfigError(f"unknown --format {fmt!r}; use csv or md")
    ws = _workspace()
    briefs = [ws.summarize(d.doc_id) for d in ws.list()]
    content = render.render_compare(render.compare_rows(briefs), fmt=fmt)
    if output:
        output.write_text(content, encoding="utf-8")
    else:
        sys.stdout.write(content)


@app.command("eval")
def eval_(
    suite: Path = typer.Argument(..., help="A suite folder with reports/ and gold/ (spec: gold-format.md)."),
    engine: str = typer.Option("extractive", "--engine", help="extractive (offline, deterministic) | llm"),
    repeat: int = typer.Option(1, "--repeat", min=1, help="Run N times (LLM engines): mean, min, flaky questions."),
    min_: list[str] = typer.Option([], "--min", help="Gate override, e.g. --min fact_f1=0.95 (repeatable)."),
    thresholds: Path | None = typer.Option(None, "--thresholds",
                                           help="Thresholds YAML (default: eval/thresholds.yaml)."),
    baseline: Path | None = typer.Option(None, "--baseline", help="A previous --json output: print deltas."),
    dump: Path | None = typer.Option(None, "--dump", help="Write every raw prediction (re-scorable) to this file."),
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML (one case per fact/question/meta field)."),
    html: Path | None = typer.Option(None, "--html", help="Write a standalone HTML report."),
    misses: int = typer.Option(20, "--misses", help="Misses to list per kind in the readable output (0: none)."),
    as_json: bool = JsonOpt,
) -> None:
    """Score a gold suite end to end in an isolated index; exit 1 when a gate fails."""
    err = _err()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("eval", total=None)

        def progress(event: str, info: dict) -> None:
            if event in ("report", "question") and "total" in info:
                bar.update(task, description=event, total=info["total"], completed=info.get("done", 0))

        run = run_eval(suite, _settings(), engine=engine, repeat=repeat, progress=progress,
                       thresholds_file=thresholds, min_overrides=parse_min(min_), baseline=baseline)
    if dump:
        dump.write_text(json.dumps(eval_report.dump_predictions(run), ensure_ascii=False, indent=1), encoding="utf-8")
    if junit:
        eval_report.write_junit(run, junit)
    if html:
        eval_report.write_html(run, html)
    if as_json:
        _print_json(eval_report.render_json(run))
    else:
        out = _out()
        eval_report.print_summary(run, out)
        eval_report.print_breakdown(run, out)
        if misses:
            eval_report.print_misses(run, out, limit=misses)
    if not run.passed:
        raise typer.Exit(1)


@app.command()
def demo(
    samples: Path = typer.Argument(Path("examples/reports"), help="Folder of reports (default: the bundled samples)."),
    question: str = typer.Option("2024年昆明市科技局登记技术合同多少项？", "--question", "-q"),
) -> None:
    """Ingest the sample reports, then run one search, one answer and one brief."""
    if not samples.is_dir():
        raise ConfigError(f"sample reports not found at {samples}; run the demo from the project folder or pass the "
                          "folder of reports: `ragreports demo PATH`")
    out = _out()
    ws = _workspace()
    out.rule(f"1. ingest {samples}")
    report = ws.ingest([samples])
    for d in report.documents:
        out.print(f"{d.status:9} {d.doc_id}  {d.chunks} chunks")
    for source, error in report.errors:
        out.print(f"[red]error[/] {source}: {error}")
    out.print(f"index: {ws.settings.home}")
    out.rule("2. search: 行政执法人员培训")
    for r in ws.search("行政执法人员培训", k=3):
        out.print(f"{r.doc_id} › {r.section or '(preamble)'}\n   {r.text[:120]}…")
    out.rule(f"3. ask: {question}")
    ans, _ = ws.ask(question)
    out.print(f"[bold]{ans.answer}[/]")
    for c in ans.citations:
        out.print(f"  — {Path(c.source).name} › {c.section} › 「{c.quote}」 [{c.start}:{c.end}]")
    first = report.documents[0].doc_id if report.documents else None
    if first:
        out.rule(f"4. brief: {first}")
        sys.stdout.write(render.render_markdown(ws.summarize(first)))
    if report.errors:
        raise typer.Exit(1)


def main() -> None:
    """The console entry point: redacted output streams, one error line on stderr, the README's exit codes."""
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    try:
        app()
    except RagReportsError as exc:
        _err().print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err().print("[yellow]interrupted[/]; the index stays consistent — re-run the command to finish")
        sys.exit(130)
    except Exception:  # a bug: its traceback, redacted like everything else
        sys.stderr.write(traceback.format_exc())
        sys.stderr.write("error: unexpected failure (above); please report it\n")
        sys.exit(1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
