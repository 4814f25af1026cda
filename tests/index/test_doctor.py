"""``doctor`` finds a damaged index and ``doctor --repair`` rebuilds it from the docstore and the embedding cache
(without embedding again what the cache holds); a store left damaged by a dead process is a clear error, never a
crash of the command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ragreports.config import Settings
from ragreports.errors import IndexDamagedError
from ragreports.index.locks import storage_lock
from ragreports.workspace import Workspace

from conftest import SAMPLES, cli_env


def _segment_files(ws: Workspace) -> list[Path]:
    return sorted(ws.settings.chroma_path.glob("*-*-*-*-*/*"))


def _damage_hnsw(ws: Workspace, how: str) -> None:
    ws.vectors.close()
    files = _segment_files(ws)
    assert {"data_level0.bin", "index_metadata.pickle"} <= {f.name for f in files}  # persisted segments
    for f in files:
        if how == "delete":
            f.unlink()
        elif how == "truncate" and f.name in ("data_level0.bin", "link_lists.bin"):
            with open(f, "r+b") as fh:
                fh.truncate(max(1, f.stat().st_size // 3))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One index of ~1,150 small chunks (enough that Chroma persists its HNSW files), built once per module."""
    root = tmp_path_factory.mktemp("doctor")
    shutil.copytree(SAMPLES, root / "reports" / "a")
    (root / "reports" / "b").mkdir()
    shutil.copy(SAMPLES / "kunming-kjj-2024.txt", root / "reports" / "b" / "copy.txt")
    settings = Settings(home=root / "home", cache_dir=root / "cache", embedder="hash", llm="none", chunk_tokens=32)
    ws = Workspace(settings)
    rep = ws.ingest([root / "reports"])
    assert not rep.errors
    ws.vectors.close()
    return settings, sum(d.chunks for d in rep.documents)


@pytest.fixture
def copy(built, tmp_path):
    """A private copy of the built index (home and cache) and its total chunk count."""
    settings, total = built
    shutil.copytree(settings.home, tmp_path / "home")
    shutil.copytree(settings.cache_dir, tmp_path / "cache")
    return settings.model_copy(update={"home": tmp_path / "home", "cache_dir": tmp_path / "cache"}), total


def test_healthy_index_has_no_findings(copy):
    settings, total = copy
    report = Workspace(settings).doctor()
    assert not report.findings and not report.damaged
    assert report.documents == 6 and report.chunks == report.vectors == total > 1000


@pytest.mark.parametrize("how", ["delete", "truncate"])
def test_unreadable_hnsw_is_found_and_rebuilt_from_the_cache(copy, how):
    hash_settings, total = copy
    ws = Workspace(hash_settings)
    _damage_hnsw(ws, how)
    fixed = Workspace(hash_settings).doctor(repair_damage=True)  # checks, repairs, checks again
    found = [f for f in fixed.findings if f.part == "vectors"]
    assert found and "cannot be read" in found[0].problem and found[0].repaired
    assert not fixed.damaged and fixed.repaired and all(f.repaired for f in fixed.findings if f.damage)
    assert fixed.re_embedded == 0  # every vector came from the embedding cache
    after = Workspace(hash_settings)
    assert after.vectors.count() == total
    hits = after.search("技术合同成交额", k=3)
    assert hits and "13311项" in hits[0].text


def test_missing_and_stray_vectors_are_found_and_repaired(copy):
    hash_settings, total = copy
    ws = Workspace(hash_settings)
    ws.vectors.delete_ids(["kunming-kjj-2024:3", "kunming-kjj-2024:4"])
    import numpy as np

    from ragreports.types import Chunk

    ws.vectors.upsert("ghost", [Chunk("ghost", 0, "幽灵", 0, 2, "", 1)], np.ones((1, 256), dtype=np.float32), {})
    report = Workspace(hash_settings).doctor()
    problems = [f.problem for f in report.findings if f.part == "vectors"]
    assert "2 chunk(s) of 1 document(s) have no vector" in problems
    assert "1 vector(s) belong to no indexed document" in problems
    fixed = Workspace(hash_settings).doctor(repair_damage=True)
    assert not fixed.damaged and fixed.re_embedded == 0
    assert sorted(Workspace(hash_settings).vectors.ids()) == sorted(
        f"{d.doc_id}:{i}" for d in ws.list() for i in range(d.chunks))


def test_repair_embeds_only_what_the_cache_lacks(copy, tmp_path):
    hash_settings, total = copy
    _damage_hnsw(Workspace(hash_settings), "delete")
    empty_cache = hash_settings.model_copy(update={"cache_dir": tmp_path / "other-cache"})
    ws = Workspace(empty_cache)
    fixed = ws.doctor(repair_damage=True)
    # b/copy.txt is a/kunming-kjj-2024.txt again: embedded once, then found in the cache
    assert not fixed.damaged and fixed.re_embedded == total - ws.docstore.get("copy").chunks


def test_pending_document_is_reingested(samples, hash_settings, monkeypatch):
    ws = Workspace(hash_settings)
    assert not ws.ingest([samples]).errors
    target = samples / "kunming-kjj-2024.txt"
    target.write_text(target.read_text(encoding="utf-8") + "\n新增一段：全年开展专项检查7次。\n", encoding="utf-8")

    def die(self, doc_id):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(ws.docstore), "mark_ready", die)
    with pytest.raises(KeyboardInterrupt):
        Workspace(hash_settings).ingest([target])
    monkeypatch.undo()
    report = Workspace(hash_settings).doctor()
    assert any("left pending" in f.problem for f in report.findings) and report.damaged
    fixed = Workspace(hash_settings).doctor(repair_damage=True)
    assert not fixed.damaged
    assert any("专项检查7次" in h.text for h in Workspace(hash_settings).search("专项检查7次", k=3))


def test_store_left_mid_write_by_a_dead_process(copy):
    """A dead process's mark is checked once (in a child process) before the store is touched again."""
    hash_settings, _ = copy
    ws = Workspace(hash_settings)
    ws.vectors.close()
    lock = storage_lock(hash_settings.home)
    busy = {"owner": "dead", "busy": {"pid": 1, "command": "ragreports ingest big.txt", "op": "upsert big"}}
    with lock.hold():
        lock.write_record(busy)
    assert Workspace(hash_settings).search("技术合同", k=1)  # the files are whole: checked, then used
    assert not (lock.read_record() or {}).get("busy")
    _damage_hnsw(ws, "delete")
    with lock.hold():
        lock.write_record(busy)
    with pytest.raises(IndexDamagedError, match=r"left mid-upsert big by pid 1 .*doctor --repair"):
        Workspace(hash_settings).search("技术合同", k=1)


def test_cli_exit_codes_and_messages(copy):
    settings, _ = copy
    env = cli_env(settings.home, settings.cache_dir, RAGREPORTS_CHUNK_TOKENS="32")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "ragreports", *args], capture_output=True, text=True, env=env,
                              timeout=300)

    for f in Path(env["RAGREPORTS_HOME"], "chroma").glob("*-*-*-*-*/*.bin"):
        os.unlink(f)
    search = run("search", "技术合同")
    assert search.returncode == 1 and "doctor --repair" in search.stderr and "Traceback" not in search.stderr
    assert len(search.stderr.strip().splitlines()) == 1
    found = run("doctor", "--json")
    assert found.returncode == 1 and json.loads(found.stdout)["ok"] is False
    fixed = run("doctor", "--repair")
    assert fixed.returncode == 0, fixed.stderr
    assert "repaired vectors: the vector store cannot be read" in fixed.stdout
    assert "0 chunk(s) embedded again" in fixed.stdout
    assert Workspace(settings).search("技术合同", k=1)
