"""Secrets never leave the process: one redaction at every exit (errors, logs, warnings, tracebacks, briefs, --json),
including a key that a model server echoes back, and URL user-info in error messages."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ragreports.config import Settings
from ragreports.workspace import Workspace

from conftest import SAMPLES, cli_env

KEY = "rk-live-Q7w8e9r0t1y2u3i4o5p6"  # not sk-shaped: only the registered secret can catch it


class EchoServer:
    """An OpenAI-compatible server on loopback whose replies echo the request's Authorization header (and the key
    alone), never valid JSON: structured output fails, the brief falls back with a warning that quotes it."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                auth = self.headers.get("Authorization", "")
                key = auth.split()[-1] if auth else ""
                body = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {
                            "role": "assistant", "content": f"I cannot. You sent {auth} and the key {key} ok"}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo():
    srv = EchoServer()
    yield srv
    srv.close()


def _run(env, *args, expect: int | None = 0):
    p = subprocess.run([sys.executable, "-m", "ragreports", *args], capture_output=True, text=True, env=env,
                       timeout=300)
    if expect is not None:
        assert p.returncode == expect, (p.returncode, p.stdout[-1500:], p.stderr[-1500:])
    return p


def test_key_echoed_by_the_server_leaks_nowhere(echo, tmp_path):
    env = cli_env(tmp_path / "home", tmp_path / "cache", OPENAI_API_KEY=KEY, RAGREPORTS_LLM="openai:m",
                  RAGREPORTS_LLM_BASE_URL=echo.url, RAGREPORTS_LLM_REASKS="0", RAGREPORTS_LLM_MAX_RETRIES="0")
    settings = Settings(home=env["RAGREPORTS_HOME"], cache_dir=env["RAGREPORTS_CACHE_DIR"], embedder="hash")
    assert not Workspace(settings).ingest([SAMPLES / "kunming-kjj-2024.txt"]).errors
    brief = tmp_path / "brief.md"
    summary = _run(env, "--verbose", "summarize", "kunming-kjj-2024", "--engine", "llm", "-o", str(brief))
    as_json = _run(env, "--verbose", "summarize", "kunming-kjj-2024", "--engine", "llm", "--json")
    answer = _run(env, "--verbose", "ask", "2024年昆明市登记技术合同多少项？", "--engine", "llm", "--json")
    texts = [summary.stdout, summary.stderr, brief.read_text(encoding="utf-8"), as_json.stdout, as_json.stderr,
             answer.stdout, answer.stderr]
    assert not [t for t in texts if KEY in t or KEY[8:] in t]
    # the echo really reached every exit: the fallback warning quotes the reply, masked
    assert "fell back to the extractive brief" in summary.stderr and "You sent Bearer *** and the key ***" in summary.stderr
    assert "You sent Bearer *** and the key ***" in brief.read_text(encoding="utf-8")
    assert any("You sent Bearer ***" in w for w in json.loads(as_json.stdout)["warnings"])


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_url_user_info_prints_redacted(tmp_path):
    env = cli_env(tmp_path / "home", tmp_path / "cache")
    chroma = _run(env, "--chroma-url", f"http://admin:Chr0maPw@127.0.0.1:{_dead_port()}", "search", "法治",
                  expect=2)
    assert "Chr0maPw" not in chroma.stdout + chroma.stderr and "admin" not in chroma.stderr
    assert "127.0.0.1" in chroma.stderr and "Traceback" not in chroma.stderr
    embed = _run({**env, "RAGREPORTS_EMBEDDER": "openai:text-embedding-3-small",
                  "RAGREPORTS_LLM_BASE_URL": f"http://bob:Emb3dPw@127.0.0.1:{_dead_port()}/v1"},
                 "ingest", str(SAMPLES / "kunming-kjj-2024.txt"), expect=None)
    assert embed.returncode in (1, 2) and "127.0.0.1" in embed.stderr
    assert "Emb3dPw" not in embed.stdout + embed.stderr and "bob" not in embed.stderr
