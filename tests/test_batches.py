"""Batches finish: each input fails on its own, every skipped file or folder is reported, a full disk is one clear
line and leaves the index readable, a bad setting is one line with exit 2 — through the CLI, as users run it.

The unreadable-input test runs as an unprivileged user (``setpriv``: root reads everything) and the full-disk test
on a small tmpfs (``mount``, root only); both skip with the reason when the machine cannot do that.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ragreports.config import Settings
from ragreports.workspace import Workspace

from conftest import SAMPLES, cli_env

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534


def _cli(env, *args, prefix=()):
    return subprocess.run([*prefix, sys.executable, "-m", "ragreports", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def _one_error_line(p) -> str:
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return lines[0]


# -- settings and usage -------------------------------------------------------------------------------------------
def test_bad_setting_is_one_line_naming_the_variable(tmp_path):
    p = _cli(cli_env(tmp_path / "home", tmp_path / "cache", RAGREPORTS_CHUNK_TOKENS="abc"), "list")
    assert p.returncode == 2 and p.stdout == ""
    line = _one_error_line(p)
    assert "RAGREPORTS_CHUNK_TOKENS" in line and "'abc'" in line and "integer from 32 to 8192" in line


def test_unwritable_cache_dir_is_one_line_exit_2(tmp_path):
    not_a_dir = tmp_path / "cache-file"
    not_a_dir.write_text("x")
    p = _cli(cli_env(tmp_path / "home", not_a_dir), "ingest", str(SAMPLES / "kunming-kjj-2024.txt"))
    assert p.returncode == 2
    assert "RAGREPORTS_CACHE_DIR" in _one_error_line(p)


def test_errors_go_to_stderr_once_and_the_rest_is_ingested(tmp_path):
    (tmp_path / "in").mkdir()
    bad = tmp_path / "in" / "old.doc"
    bad.write_bytes(b"\xd0\xcf\x11\xe0")
    chrome = tmp_path / "in" / "chrome.txt"
    chrome.write_text("当前位置：首页 > 通知公告\n发布时间：2024-03-01 来源：某市科学技术局\n【打印本页】【关闭窗口】\n"
                      "网站地图 | 联系我们\n主办单位：某市科学技术局 电话：0519-85681234\n", encoding="utf-8")
    good = tmp_path / "in" / "report.txt"
    shutil.copy(SAMPLES / "kunming-kjj-2024.txt", good)
    p = _cli(cli_env(tmp_path / "home", tmp_path / "cache"), "ingest", str(tmp_path / "in"), str(bad))
    assert p.returncode == 1
    assert "added" in p.stdout and not [line for line in p.stdout.splitlines() if line.startswith("error")]
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, p.stderr  # the named .doc, and the chrome-only page
    assert any(str(chrome) in e and "only page chrome" in e and e.count(str(chrome)) == 1 for e in errors)
    assert any(str(bad) in e and ".doc" in e and e.count(str(bad)) == 1 for e in errors)
    assert any(line.startswith("skipped") and "old.doc" in line for line in p.stderr.splitlines())


def test_plain_ingest_keeps_documents_whose_file_is_gone_prune_removes_them(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(SAMPLES, folder)
    env = cli_env(tmp_path / "home", tmp_path / "cache")
    ws = Workspace(Settings(home=env["RAGREPORTS_HOME"], cache_dir=env["RAGREPORTS_CACHE_DIR"], embedder="hash"))
    assert not ws.ingest([folder]).errors
    (folder / "jianghai-kjj-2020.txt").unlink()
    assert ws.ingest([folder]).pruned == [] and "jianghai-kjj-2020" in {d.doc_id for d in ws.list()}
    pruned = _cli(env, "ingest", str(folder), "--prune", "--json")  # plain ingest never removes anything
    assert pruned.returncode == 0 and json.loads(pruned.stdout)["pruned"] == ["jianghai-kjj-2020"]
    assert {d.doc_id for d in ws.list()} == {p.stem for p in folder.glob("*.txt")}


# -- unreadable inputs (an unprivileged user) -------------------------------------------------------------------
def _setpriv() -> list[str]:
    exe = shutil.which("setpriv")
    if not exe or os.geteuid() != 0:
        pytest.skip("needs root and setpriv (util-linux) to run the CLI as a user without root's DAC override")
    probe = subprocess.run([exe, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c",
                            "import ragreports"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"user {NOBODY} cannot import ragreports from this checkout: {probe.stderr.strip()[-200:]}")
    return [exe, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def open_tmp():
    """A temp folder every user may enter (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="ragreports-batch-"))
    d.chmod(0o777)
    yield d
    for root, dirs, _ in os.walk(d):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(d, ignore_errors=True)


def test_unreadable_file_and_folder_are_reported_and_the_rest_ingested(open_tmp):
    prefix = _setpriv()
    folder = open_tmp / "reports"
    shutil.copytree(SAMPLES, folder)
    (folder / "locked").mkdir()
    shutil.copy(SAMPLES / "kunming-kjj-2024.txt", folder / "locked" / "hidden-away.txt")
    (folder / "locked").chmod(0)
    secret = open_tmp / "secret.txt"
    shutil.copy(SAMPLES / "jianghai-kjj-2020.txt", secret)
    secret.chmod(0)
    for d in (open_tmp, folder):
        d.chmod(0o777)
    env = cli_env(open_tmp / "home", open_tmp / "cache")
    p = _cli(env, "ingest", str(folder), str(secret), "--json", prefix=prefix)
    assert p.returncode == 1 and p.stdout, (p.stdout, p.stderr)
    out = json.loads(p.stdout)
    errors = {e["source"]: e["error"] for e in out["errors"]}
    assert set(errors) == {str(folder / "locked"), str(secret)}, errors
    assert "folder cannot be read" in errors[str(folder / "locked")]
    assert "permission denied" in errors[str(secret)]
    assert sorted(d["doc_id"] for d in out["documents"]) == sorted(p.stem for p in SAMPLES.glob("*.txt"))
    listed = json.loads(_cli(env, "list", "--json", prefix=prefix).stdout)["documents"]
    assert len(listed) == 5


# -- a full disk ---------------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(open_tmp):
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small tmpfs (the full-disk test)")
    mnt = open_tmp / "disk"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    yield mnt
    if subprocess.run(["umount", str(mnt)], capture_output=True, timeout=60).returncode != 0:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=60)  # still busy: detach it


def _fill(mnt: Path, leave_kib: int, name: str) -> Path:
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    filler = mnt / name
    with open(filler, "wb") as fh, contextlib.suppress(OSError):  # ENOSPC at the very end is the point
        fh.write(b"\0" * max(0, free - leave_kib * 1024))
    return filler


def test_full_disk_is_one_line_and_the_index_stays_readable(small_disk, tmp_path):
    env = cli_env(small_disk / "home", tmp_path / "cache")  # the cache lives elsewhere; the home fills up
    assert _cli(env, "ingest", str(SAMPLES / "kunming-kjj-2024.txt")).returncode == 0
    fillers = [_fill(small_disk, leave_kib=200, name="filler-1")]
    p = _cli(env, "ingest", str(SAMPLES))
    assert p.returncode == 1
    line = [x for x in p.stderr.splitlines() if x.startswith("error:")]
    assert line == [f"error: no space left on the device holding {small_disk / 'home'}: free space, then re-run"]
    assert "Traceback" not in p.stderr and "file(s) not done" in p.stdout
    found = _cli(env, "search", "技术合同", "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["results"], found.stderr
    fillers.append(_fill(small_disk, leave_kib=0, name="filler-2"))  # now not one block is left
    listed = _cli(env, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [d["doc_id"] for d in json.loads(listed.stdout)["documents"]] == ["kunming-kjj-2024"]
    answer = _cli(env, "ask", "2024年昆明市登记技术合同多少项？", "--json")  # search inside: BM25 alone, said so
    assert answer.returncode == 0 and "13311" in json.loads(answer.stdout)["answer"], answer.stderr
    assert "dense search is off" in answer.stderr
    for f in fillers:
        f.unlink()
    ws = Workspace(Settings(home=env["RAGREPORTS_HOME"], cache_dir=env["RAGREPORTS_CACHE_DIR"], embedder="hash"))
    done = ws.ingest([SAMPLES])  # space again: the batch finishes where it stopped
    assert not done.errors and len(done.documents) == 5
    report = ws.doctor()
    assert not report.damaged and report.vectors == report.chunks
    ws.vectors.close()
    ws.docstore.close()
