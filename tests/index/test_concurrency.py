"""Several processes on one index (the reproductions of issue 11): searches during a long ingest, ingests during an
ingest, two files of the same name ingested at once. Real processes, the on-disk Chroma store, hashing embedder;
every wait is bounded by a timeout and nothing here asserts a duration.

Each test ends by asking ``doctor`` whether docstore, vectors and BM25 agree, and by searching the new documents.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragreports.config import Settings
from ragreports.index.doctor import DoctorReport
from ragreports.workspace import Workspace

from conftest import SAMPLES, big_report, cli_env

TIMEOUT = 600  # seconds: a bound against hangs, far above what these take



# The store under load at the seam itself: one process rewriting >1,000 vectors at a time (each call makes Chroma
# persist its HNSW files), three processes querying and reopening the store whenever it changed. Without the storage
# lock this crashes readers (SIGSEGV) and leaves the store unreadable within a few rounds; with it, nothing fails.
WRITER = """
import sys
import numpy as np
from pathlib import Path
from ragreports.index.vectors import VectorIndex
from ragreports.types import Chunk
home, n, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
v = VectorIndex(path=home / "chroma", url=None, collection="ragreports", embedder_name="hash", dim=64)
rng = np.random.default_rng(0)
for r in range(rounds):
    doc = f"w{r % 3}"
    v.upsert(doc, [Chunk(doc, i, "t", 0, 1, "", 1) for i in range(n)], rng.random((n, 64), dtype=np.float32), {})
    if r % 2:
        v.delete_doc(f"w{(r + 1) % 3}")
print(v.count())
"""
QUERIER = """
import json, os, sys, time
import numpy as np
from pathlib import Path
from ragreports.index.vectors import VectorIndex
home, stop = Path(sys.argv[1]), sys.argv[2]
v, done, errors = None, 0, []
deadline = time.monotonic() + 600
while not os.path.exists(stop) and time.monotonic() < deadline:
    try:
        if v is None:
            v = VectorIndex(path=home / "chroma", url=None, collection="ragreports", embedder_name="hash", dim=64)
        v.query(np.random.rand(64).astype("float32"), 10, None)
        done += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}"[:300])
        v = None
print(json.dumps({"done": done, "errors": errors[:3], "n_errors": len(errors)}))
"""


def _run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ragreports", *args], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT)


def _start(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ragreports", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _finish(p: subprocess.Popen) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=TIMEOUT)
    return p.returncode, out, err


def _readline(stream, timeout: float = TIMEOUT) -> str:
    """One line from a child's pipe, or "" after ``timeout`` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        return stream.readline() if sel.select(timeout) else ""


def _workspace(env: dict) -> Workspace:
    return Workspace(Settings(home=env["RAGREPORTS_HOME"], cache_dir=env["RAGREPORTS_CACHE_DIR"], embedder="hash",
                              llm="none"))


def _healthy(env: dict) -> DoctorReport:
    """doctor's verdict, asserted clean: every ready chunk has exactly one readable vector, BM25 is current."""
    report = _workspace(env).doctor()
    assert not report.damaged and not report.findings, report.to_dict()
    assert report.vectors == report.chunks
    return report


@pytest.fixture
def index(tmp_path) -> dict:
    env = cli_env(tmp_path / "home", tmp_path / "cache")
    assert not _workspace(env).ingest([SAMPLES]).errors
    return env


def test_searches_during_a_long_ingest(index, tmp_path):
    """The issue's script: ``ingest big.txt &`` and ``search`` again and again until it is done."""
    big = big_report(tmp_path / "big" / "big.txt", copies=3)  # ~375 chunks
    ingest = _start(index, "ingest", str(big), "--json")
    searches = []
    while ingest.poll() is None and len(searches) < 3:
        searches.append(_run(index, "search", "法治宣传", "--json"))
    code, out, err = _finish(ingest)
    assert code == 0, err[-2000:]
    assert json.loads(out)["documents"][0]["status"] == "added"
    assert searches
    for p in searches:
        assert p.returncode == 0 and "Traceback" not in p.stderr, (p.returncode, p.stderr[-2000:])
        assert json.loads(p.stdout)["results"]
    assert _healthy(index).documents == 6
    hits = _workspace(index).search("第2部分", doc="big")
    assert hits and all(h.doc_id == "big" for h in hits)


def test_two_ingests_at_once_of_large_files_with_the_same_name(index, tmp_path):
    """The issue's second script, both ways at once: two large files ingested in parallel, and named alike."""
    x = big_report(tmp_path / "x" / "report.txt", copies=2, tag="丙")
    y = big_report(tmp_path / "y" / "report.txt", copies=2, tag="丁")
    procs = [_start(index, "ingest", str(f), "--json") for f in (x, y)]
    results = [_finish(p) for p in procs]
    for code, _, err in results:
        assert code == 0, err[-2000:]
    reported = {}
    for _, out, _ in results:
        for d in json.loads(out)["documents"]:
            reported[d["source"]] = (d["doc_id"], d["chunks"])
    assert set(reported) == {str(x), str(y)}
    assert {reported[str(x)][0], reported[str(y)][0]} == {"report", "report-2"}  # neither replaced the other
    ws = _workspace(index)
    listed = {d.doc_id: d for d in ws.list()}
    for source, (doc_id, chunks) in reported.items():
        assert listed[doc_id].source == source and listed[doc_id].chunks == chunks
    assert _healthy(index).documents == 7  # every chunk of both has its vector
    for tag, doc in (("丙", reported[str(x)][0]), ("丁", reported[str(y)][0])):
        hits = ws.search(f"{tag}第1部分", doc=doc)
        assert hits and any(tag in h.text for h in hits)


def test_second_writer_waits_or_fails_fast_naming_the_holder(index, tmp_path):
    from ragreports.index.locks import write_lock

    report = tmp_path / "r" / "one.txt"
    report.parent.mkdir()
    report.write_text((SAMPLES / "kunming-kjj-2024.txt").read_text(encoding="utf-8"), encoding="utf-8")
    lock = write_lock(Path(index["RAGREPORTS_HOME"]))
    lock.acquire(record={"pid": 99999, "command": "ragreports ingest elsewhere", "since": "2025-01-01T00:00:00"})
    try:
        busy = _run(index, "ingest", str(report), "--no-wait")
        assert busy.returncode == 1, busy.stderr
        assert "pid 99999 (ragreports ingest elsewhere" in busy.stderr and "Traceback" not in busy.stderr
        waiting = _start(index, "ingest", str(report), "--json")
        line = _readline(waiting.stderr)  # the waiter says once that it waits, and for whom
        assert "waiting" in line and "pid 99999" in line, line
        time.sleep(0.5)
        assert waiting.poll() is None  # still waiting while the lock is held
        assert _workspace(index).search("技术合同")  # readers never wait for writers
    finally:
        lock.release()
    code, out, err = _finish(waiting)
    assert code == 0, err
    assert [d["status"] for d in json.loads(out)["documents"]] == ["added"]


def test_store_under_concurrent_rewrites_and_queries(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env(home, tmp_path / "cache")
    seed = subprocess.run([sys.executable, "-c", WRITER, str(home), "10", "1"], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert seed.returncode == 0, seed.stderr[-2000:]
    stop = tmp_path / "stop"
    queriers = [subprocess.Popen([sys.executable, "-c", QUERIER, str(home), str(stop)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    writer = subprocess.run([sys.executable, "-c", WRITER, str(home), "1100", "4"], env=env, capture_output=True,
                            text=True, timeout=TIMEOUT)
    stop.touch()
    results = [(q.communicate(timeout=TIMEOUT), q.returncode) for q in queriers]
    assert writer.returncode == 0, writer.stderr[-2000:]
    assert int(writer.stdout.strip().splitlines()[-1]) == 2200  # w2 and w0 left, 1,100 vectors each
    for (out, err), code in results:
        assert code == 0, err[-2000:]  # a crashed reader (signal) has a negative code
        result = json.loads(out.strip().splitlines()[-1])
        assert result["n_errors"] == 0, result
    probe = subprocess.run([sys.executable, "-c", QUERIER, str(home), str(stop)], env=env, capture_output=True,
                           text=True, timeout=TIMEOUT)
    assert probe.returncode == 0 and json.loads(probe.stdout.strip().splitlines()[-1])["n_errors"] == 0
