"""The CLI as scripts use it: JSON shapes of spec/cli-json.md, stdout/stderr separation, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli-home")
    env = {**os.environ, "RAGREPORTS_HOME": str(home), "RAGREPORTS_EMBEDDER": "hash",
           "RAGREPORTS_CACHE_DIR": str(tmp_path_factory.mktemp("cli-cache")), "RAGREPORTS_LLM": "none"}

    def _run(*args: str, expect: int = 0):
        p = subprocess.run([sys.executable, "-m", "ragreports", *args], capture_output=True, text=True, env=env,
                           cwd=REPO, timeout=300)
        assert p.returncode == expect, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
        return p

    _run("ingest", str(REPO / "examples" / "reports"), "--json")
    return _run


def _json(p) -> dict:
    return json.loads(p.stdout)  # exactly one JSON object on stdout


def test_ingest_json_and_partial_failure_exit_code(run, tmp_path):
    bad = tmp_path / "bad.doc"
    bad.write_bytes(b"\xd0\xcf\x11\xe0")
    p = run("ingest", str(REPO / "examples" / "reports" / "kunming-kjj-2024.txt"), str(bad), "--json", expect=1)
    out = _json(p)
    assert out["documents"] == [{"doc_id": "kunming-kjj-2024", "source": str(REPO / "examples/reports/kunming-kjj-2024.txt"),
                                 "status": "unchanged", "chunks": out["documents"][0]["chunks"]}]
    assert out["errors"][0]["source"].endswith("bad.doc") and ".doc" in out["errors"][0]["error"]


def test_search_json_shape(run):
    out = _json(run("search", "技术合同", "--k", "3", "--json"))
    assert out["query"] == "技术合同" and 1 <= len(out["results"]) <= 3
    for r in out["results"]:
        assert set(r) >= {"doc_id", "source", "section", "text", "start", "end", "score"}
    filt = _json(run("search", "法治", "--year", "2020", "--k", "10", "--json"))
    assert filt["results"] and {r["doc_id"] for r in filt["results"]} <= {"jianghai-kjj-2020", "zhoushan-kjj-2020"}


def test_show_text_matches_search_offsets(run):
    r = _json(run("search", "技术合同", "--doc", "kunming-kjj-2024", "--json"))["results"][0]
    text = run("show", "kunming-kjj-2024", "--text").stdout
    assert text[r["start"]:r["end"]] == r["text"]


def test_ask_json_shape(run):
    out = _json(run("ask", "2024年昆明市科技局登记技术合同多少项？", "--json"))
    assert set(out) >= {"question", "answer", "refused", "citations"}
    assert out["refused"] is False and "13311项" in out["answer"][:80]
    c = out["citations"][0]
    assert set(c) >= {"doc_id", "source", "quote", "start", "end"}


def test_extract_json_shape(run):
    out = _json(run("extract", "kunming-kjj-2024", "--json"))
    assert set(out["meta"]) == {"issuer", "region", "year", "published", "title"}
    assert out["meta"]["year"] == 2024
    text = run("show", "kunming-kjj-2024", "--text").stdout
    assert out["facts"]
    for f in out["facts"]:
        assert set(f) >= {"label", "value", "unit", "approx", "quote", "start", "end"}
        assert text[f["start"]:f["end"]] == f["quote"]


def test_summarize_json_and_html(run, tmp_path):
    out = _json(run("summarize", "kunming-kjj-2024", "--json"))
    for key in ("doc_id", "source", "meta", "measures", "leadership", "shortcomings", "next_year", "other",
                "key_figures", "generated_by"):
        assert key in out
    assert out["measures"] and all(i["evidence"] for i in out["measures"])
    html = tmp_path / "b.html"
    run("summarize", "kunming-kjj-2024", "--format", "html", "-o", str(html))
    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and 'href="#ev-' in page and "<script src=" not in page


def test_usage_errors_exit_2(run):
    p = run("show", "no-such-doc", expect=2)
    assert "ragreports list" in p.stderr and p.stdout == ""
    run("ask", "问题", "--engine", "magic", expect=2)
    p = run("ask", "问题", "--engine", "llm", expect=2)  # no model configured: say how to configure one
    assert "RAGREPORTS_LLM" in p.stderr


def test_compare_csv(run):
    out = run("compare", "--format", "csv").stdout.splitlines()
    assert out[0].startswith("doc_id") and len(out) == 6


def test_stated_metadata_wins_and_is_shown_as_given(run, tmp_path):
    reports = tmp_path / "r"
    reports.mkdir()
    (reports / "a.txt").write_text("市科技局2024年法治政府建设工作报告\n一、主要工作\n全年共组织集中学习5次。\n",
                                   encoding="utf-8")
    (reports / "a.meta.yaml").write_text("issuer: 某市科学技术局\nregion: 某市\n", encoding="utf-8")
    home = tmp_path / "home"
    run("--home", str(home), "--embedder", "hash", "ingest", str(reports), "--meta", "published=2025-01-20", "--json")
    out = json.loads(run("--home", str(home), "--embedder", "hash", "extract", "a", "--json").stdout)
    assert out["meta"]["issuer"] == "某市科学技术局" and out["meta"]["published"] == "2025-01-20"
    assert out["meta"]["year"] == 2024  # not stated: extracted
    given = {e["field"] for e in out["meta_evidence"] if e["cue"] == "given"}
    assert given == {"issuer", "region", "published"}
    bad = run("--home", str(home), "--embedder", "hash", "ingest", str(reports), "--meta", "colour=red", "--json",
              expect=1)
    assert "allowed fields" in json.loads(bad.stdout)["errors"][0]["error"]
