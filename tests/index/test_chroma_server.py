"""Ingest and search through a real Chroma server (`chroma run`) on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragreports.errors import ConfigError
from ragreports.workspace import Workspace

pytestmark = pytest.mark.server


def _chroma_exe() -> str | None:
    here = Path(sys.executable).parent / "chroma"
    return str(here) if here.exists() else shutil.which("chroma")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    exe = _chroma_exe()
    if not exe:
        pytest.skip("the `chroma` CLI (from the chromadb package) is not installed")
    port = _free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "srv"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("chroma run exited early")
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chroma run did not start within 60 s")
    yield f"http://127.0.0.1:{port}", proc
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_ingest_and_search_through_server(chroma_server, samples, hash_settings):
    url, _ = chroma_server
    settings = hash_settings.model_copy(update={"chroma_url": url})
    ws = Workspace(settings)
    rep = ws.ingest([samples])
    assert len(rep.documents) == 5 and not rep.errors
    assert not settings.chroma_path.exists()  # vectors live on the server, not on disk
    total = sum(d.chunks for d in rep.documents)
    assert ws.vectors.count() == total
    hits = ws.search("技术合同", k=3, doc="kunming-kjj-2024")
    assert hits and all(h.doc_id == "kunming-kjj-2024" for h in hits)
    ws.delete("kunming-kjj-2024")
    assert ws.vectors.count() == total - next(d.chunks for d in rep.documents if d.doc_id == "kunming-kjj-2024")


def test_server_down_is_a_clear_error(hash_settings):
    settings = hash_settings.model_copy(update={"chroma_url": f"http://user:pw-s3cret@127.0.0.1:{_free_port()}"})
    with pytest.raises(ConfigError, match="chroma run") as e:  # a configuration error: exit code 2, as README says
        Workspace(settings).search("技术合同")
    assert e.value.exit_code == 2 and "pw-s3cret" not in str(e.value) and "user" not in str(e.value)
