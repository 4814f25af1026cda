"""The model side, offline: provider selection (LangChain init_chat_model), the fake LangChain chat model,
structured output with re-asks, context packing, the SDK's retries and our one-line errors against a tiny local HTTP
server, secret redaction, traces, streaming drafts and LangChain embeddings."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import pytest
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from ragreports.config import Settings
from ragreports.errors import ConfigError, ProviderError, StructuredOutputError
from ragreports.llm.base import ChatModel, invoke, redact
from ragreports.llm.context import format_passages, pack_passages, parse_passages, sentence_pieces
from ragreports.llm.fake import FakeRequest, fake_model, register_handler, temporary_handler, unregister_handler
from ragreports.llm.prompts import PromptFile
from ragreports.llm.streaming import draft_handler, partial_field
from ragreports.llm.structured import extract_json, structured_output
from ragreports.llm.trace import Trace
from ragreports.providers import get_chat_model, get_embedder
from ragreports.text.tokens import TokenCounter

FAKE_KEY = "sk-test-DoNotLeak-7f3a9c1e5b2d8f4a"
FAST_RETRY = {"retry-after-ms": "1"}  # the SDK honours it: retries without its default backoff sleeps


@pytest.fixture(autouse=True)
def _no_real_keys(monkeypatch):
    for var in ("OPENAI_API_KEY", "RAGREPORTS_API_KEY"):
        monkeypatch.delenv(var, raising=False)


# -- a tiny OpenAI-compatible server on loopback --------------------------------------------------------------
def ok(content: str = "hello", pt: int = 11, ct: int = 7) -> tuple:
    return (200, {}, {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                   "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}})


def err(status: int, message: str = "boom", headers: dict | None = None, delay: float = 0.0) -> tuple:
    return (status, headers or {}, {"error": {"message": message, "type": "x", "code": status}}, delay)


class Stub:
    """Answers POSTs with the scripted (status, headers, json[, delay]) items, then 200s; records each request."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.requests.append({"path": self.path, "headers": headers, "json": json.loads(body)})
                item = stub.script.pop(0) if stub.script else ok()
                status, headers, payload = item[:3]
                if len(item) > 3 and item[3]:
                    time.sleep(item[3])
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    servers: list[Stub] = []

    def start(*script) -> Stub:
        servers.append(Stub(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def served(url: str, **kw) -> ChatModel:
    """``openai:test-model`` at ``url`` as the provider registry builds it."""
    kw.setdefault("llm_timeout", 5)
    kw.setdefault("llm_max_retries", 2)
    return get_chat_model(Settings(llm_base_url=url, api_key=kw.pop("api_key", FAKE_KEY), **kw), "openai:test-model")


USER = [("human", "hi")]


def ask(model: ChatModel, messages=USER, prompt: str | None = "p@1") -> str:
    """One plain model call through the same path the stages use (config with the trace, one-line errors)."""
    return invoke(model.chat, messages, model, model.config(prompt)).content


# -- provider selection -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, cls, name, model_id", [
    ("none", None, None, None),
    ("fake", "FakeChat", "fake", None),
    ("openai:my-model", "ChatOpenAI", "openai:my-model", "my-model"),
    (" openai:qwen2.5:7b ", "ChatOpenAI", "openai:qwen2.5:7b", "qwen2.5:7b"),  # init_chat_model keeps the tag
])
def test_get_chat_model_selects_by_string(spec, cls, name, model_id):
    s = Settings(llm="none", llm_base_url="http://127.0.0.1:9/v1")
    model = get_chat_model(s, spec)
    if cls is None:
        assert model is None
        return
    assert isinstance(model, ChatModel) and type(model.chat).__name__ == cls and model.name == name
    if model_id:
        assert model.chat.model_name == model_id and model.url == "http://127.0.0.1:9/v1"
        assert model.chat.max_retries == s.llm_max_retries and model.chat.request_timeout == s.llm_timeout


def test_get_chat_model_defaults_to_settings_llm():
    assert get_chat_model(Settings(llm="fake")).name == "fake"
    assert get_chat_model(Settings(llm="none")) is None


@pytest.mark.parametrize("spec", ["bogus", "openai", "openai:", "gguf:", "fake:extra", "gpt-4o", "local",
                                  "bogus:model", "Not A Provider:x"])
def test_unknown_spec_lists_valid_forms(spec):
    with pytest.raises(ConfigError) as e:
        get_chat_model(Settings(), spec)
    for form in ("none", "fake", "openai:MODEL", "gguf:", "PROVIDER:MODEL"):
        assert form in str(e.value)


@pytest.mark.parametrize("spec, package, extra", [
    ("ollama:qwen2.5:7b", "langchain_ollama", "ragreports[ollama]"),
    ("deepseek:deepseek-chat", "langchain_deepseek", "ragreports[deepseek]"),
])
def test_missing_integration_names_the_extra(monkeypatch, spec, package, extra):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "langchain_community", None)
    from langchain.chat_models import base as lc_base

    lc_base._get_chat_model_creator.cache_clear()
    try:
        with pytest.raises(ConfigError) as e:
            get_chat_model(Settings(), spec)
    finally:
        lc_base._get_chat_model_creator.cache_clear()
    msg = str(e.value)
    assert extra in msg and package.replace("_", "-") in msg and "pip install" in msg


def test_openai_without_key_or_server_says_what_to_set():
    with pytest.raises(ConfigError) as e:
        get_chat_model(Settings(llm_base_url=None, api_key=None), "openai:gpt-4o-mini")
    assert "OPENAI_API_KEY" in str(e.value) and "RAGREPORTS_LLM_BASE_URL" in str(e.value)


def test_openai_base_url_from_env_and_placeholder_key(stub, monkeypatch):
    srv = stub(ok("from the env server"))
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    model = get_chat_model(Settings(), "openai:local")
    assert ask(model) == "from the env server"
    req = srv.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["json"]["model"] == "local"
    assert req["headers"]["authorization"] == "Bearer sk-no-key"


def test_structured_method_by_provider_and_setting():
    base = {"llm_base_url": "http://127.0.0.1:9/v1"}
    assert get_chat_model(Settings(**base), "openai:m").structured == "json_schema"
    assert get_chat_model(Settings(**base, llm_structured="json_mode"), "openai:m").structured == "json_mode"
    with pytest.raises(ConfigError):
        ChatModel("x", fake_model().chat, structured="tools")


def test_gguf_missing_file_and_not_gguf(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        get_chat_model(Settings(), f"gguf:{tmp_path / 'nope.gguf'}")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"NOPE" + bytes(64))
    with pytest.raises(ConfigError, match="not a GGUF"):
        get_chat_model(Settings(), f"gguf:{junk}")


def test_gguf_without_xllamacpp_says_how_to_install(tmp_path, monkeypatch):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + bytes(64))
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # import fails as if not installed
    with pytest.raises(ConfigError) as e:
        get_chat_model(Settings(), f"gguf:{f}")
    assert "pip install" in str(e.value) and "ragreports[gguf]" in str(e.value)


# -- the fake ----------------------------------------------------------------------------------------------------
def test_fake_is_a_langchain_chat_model():
    from langchain_core.language_models import BaseChatModel

    model = get_chat_model(Settings(), "fake")
    assert isinstance(model.chat, BaseChatModel)
    assert model.chat.invoke("一句。二句。").content == "一句。"


def test_scripted_fake_in_order_raises_items_and_runs_out():
    model = fake_model(responses=["one", ProviderError("down"), "three"])
    assert ask(model) == "one"
    with pytest.raises(ProviderError, match="down"):
        ask(model)
    assert ask(model) == "three"
    with pytest.raises(ProviderError, match="no responses left"):
        ask(model)
    assert [c.outcome for c in model.calls] == ["ok", "error", "ok", "error"]
    assert model.calls[1].error.startswith("ProviderError: down")


def test_scripted_fake_callable_and_usage_recorded():
    model = fake_model(responses=lambda msgs: msgs[-1]["content"].upper())
    assert ask(model, [("human", "abc def")], prompt="x@2") == "ABC DEF"
    rec = model.calls[-1]
    counter = TokenCounter()
    assert (rec.model, rec.prompt, rec.input_tokens, rec.output_tokens) == \
        ("fake", "x@2", counter.count("abc def"), counter.count("ABC DEF"))


PASSAGES = ["全年办理行政复议案件12件。纠错率为8%。", "第二段内容。"]


def passage_messages(schema_note: str = "") -> list[tuple[str, str]]:
    return [("system", "你是助手。" + schema_note),
            ("human", f"问题：多少件？\n\n{format_passages(PASSAGES)}\n\n请回答。")]


def test_default_fake_echoes_first_sentence_of_first_passage():
    model = get_chat_model(Settings(), "fake")
    assert ask(model, passage_messages()) == "全年办理行政复议案件12件。"
    assert ask(model, [("human", "没有段落。第二句。")]) == "没有段落。"
    json_mode = model.chat.bind(response_format={"type": "json_object"})
    assert json_mode.invoke(passage_messages()).content == "{}"  # JSON mode, and no schema in the prompt


class Answer(BaseModel):
    answer: str
    quotes: list[str] = Field(min_length=1)


class Item(BaseModel):
    label: Literal["a", "b"]
    count: int = Field(ge=3)
    ratio: float
    ok: bool
    note: str | None = None


class Nested(BaseModel):
    items: list[Item] = Field(min_length=2)
    title: str = Field(max_length=4)


def structured(model: ChatModel, schema, messages, prompt: str | None = None, **kw):
    return structured_output(model, schema, **kw).invoke(messages, config=model.config(prompt))


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
@pytest.mark.parametrize("schema, expect", [
    (Answer, {"answer": "全年办理行政复议案件12件。", "quotes": ["全年办理行政复议案件12件。"]}),
    (Nested, {"items": [{"label": "a", "count": 3, "ratio": 0, "ok": False, "note": "全年办理行政复议案件12件。"}] * 2,
              "title": "全年办理"}),
])
def test_default_fake_fills_schema_from_passages(schema, expect, method):
    out = structured(fake_model(structured=method), schema, passage_messages(), reasks=0)
    assert out.model_dump() == schema.model_validate(expect).model_dump()


class Unfillable(BaseModel):
    code: str = Field(pattern=r"^[A-Z]{3}$")


def test_default_fake_returns_empty_object_for_unfillable_schema():
    with pytest.raises(StructuredOutputError) as e:
        structured(fake_model(), Unfillable, passage_messages(), reasks=1)
    assert e.value.attempts == 2 and e.value.last_output == "{}"


def test_registered_handler_by_prompt_name_with_request_fields():
    seen: list[FakeRequest] = []

    def _probe(req: FakeRequest):  # records what it sees; the checks are below, not inside the model call
        seen.append(req)
        if req.attempt == 1:
            return "not json"
        return {"answer": req.first_sentence(), "quotes": list(req.passages[-1:]) or ["(no passages)"]}

    with temporary_handler("probe", _probe):
        out = structured(fake_model(), Answer, passage_messages(), prompt="probe@3")
        assert [r.attempt for r in seen] == [1, 2]
        assert seen[0].name == "probe" and seen[0].prompt == "probe@3" and seen[0].json_mode
        # the re-ask's last user message is the correction: the passages still come from the earlier one
        assert seen[0].passages == seen[1].passages == tuple(PASSAGES)
        assert seen[0].schema["properties"].keys() == {"answer", "quotes"}
        assert out == Answer(answer="全年办理行政复议案件12件。", quotes=["第二段内容。"])
        # an instance handler wins over the registry; other prompt names fall back to the default
        assert ask(fake_model(handlers={"probe": lambda req: "instance"}), prompt="probe@1") == "instance"
        assert ask(fake_model(), passage_messages(), prompt="other@1") == "全年办理行政复议案件12件。"
    assert ask(fake_model(), passage_messages(), prompt="probe@3") == "全年办理行政复议案件12件。"
    with pytest.raises(ValueError):
        register_handler("probe@1", lambda r: "")


def test_temporary_handler_restores_what_was_registered_before():
    """The registry is process-wide: a temporary handler must not remove a handler a stage registered."""
    name = "temporary-handler-test"
    assert ask(fake_model(), prompt=f"{name}@1") == "hi"  # nothing registered: the default echoes
    register_handler(name, lambda req: "stage")
    try:
        with temporary_handler(name, lambda req: "test"):
            assert ask(fake_model(), prompt=f"{name}@1") == "test"
        assert ask(fake_model(), prompt=f"{name}@1") == "stage"
        with pytest.raises(RuntimeError), temporary_handler(name, lambda req: "test"):
            raise RuntimeError("the block fails")
        assert ask(fake_model(), prompt=f"{name}@1") == "stage"
    finally:
        unregister_handler(name)
    assert ask(fake_model(), prompt=f"{name}@1") == "hi"


# -- structured output -------------------------------------------------------------------------------------------
def test_structured_output_succeeds_after_one_bad_reply():
    sent: list[list[dict]] = []
    replies = iter(["Sure! Here it is: {answer: oops}", 'Here:\n```json\n{"answer": "a", "quotes": ["q"]}\n```'])

    def script(msgs):
        sent.append([dict(m) for m in msgs])
        return next(replies)

    out = structured(fake_model(responses=script), Answer, passage_messages(), reasks=2)
    assert out == Answer(answer="a", quotes=["q"])  # the fenced JSON of the second reply, found in its prose
    assert len(sent) == 2
    first, second = sent
    assert '"quotes"' in first[0]["content"] and first[0]["content"].startswith("你是助手。")  # schema in system
    assert second[-2] == {"role": "assistant", "content": "Sure! Here it is: {answer: oops}"}
    assert second[-1]["role"] == "user" and "no JSON object" in second[-1]["content"]


def test_structured_output_reask_carries_validation_error():
    sent = []
    replies = iter(['{"answer": "a", "quotes": []}', '{"answer": "a", "quotes": ["q"]}'])
    model = fake_model(responses=lambda m: (sent.append(m), next(replies))[1])
    structured(model, Answer, [("human", "x")])
    assert sent[0][0]["role"] == "system"  # a system message is added when there was none
    assert "quotes" in sent[1][-1]["content"] and "at least 1" in sent[1][-1]["content"]


@pytest.mark.parametrize("reasks", [0, 1, 2])
def test_structured_output_fails_after_bounded_attempts(reasks):
    bad = [f"nope {i}" for i in range(reasks + 1)] + ['{"answer": "a", "quotes": ["q"]}']
    model = fake_model(responses=bad)
    with pytest.raises(StructuredOutputError) as e:
        structured(model, Answer, USER, prompt="answer@1", reasks=reasks)
    assert e.value.attempts == reasks + 1
    assert e.value.last_output == f"nope {reasks}"
    assert "answer@1" in str(e.value) and "Answer" in str(e.value)
    assert [(c.prompt, c.attempt) for c in model.calls] == [("answer@1", i) for i in range(1, reasks + 2)]


def test_structured_output_asks_with_the_schema_as_response_format(stub):
    srv = stub(ok('{"answer": "a", "quotes": ["q"]}'), ok('{"answer": "b", "quotes": ["r"]}'))
    for method in ("json_schema", "json_mode"):
        model = served(srv.url, llm_structured=method)
        structured(model, Answer, USER)
    schema_req, mode_req = (r["json"] for r in srv.requests)
    rf = schema_req["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["schema"]["properties"].keys() == {"answer", "quotes"}
    assert mode_req["response_format"] == {"type": "json_object"}
    assert '"quotes"' in mode_req["messages"][0]["content"]  # JSON mode: the schema is in the system message


def test_reply_cut_at_max_tokens_is_an_invalid_reply_not_a_provider_error(stub, tmp_path):
    cut = ok('{"answer": "a", "quo', pt=20, ct=9)
    cut[2]["choices"][0]["finish_reason"] = "length"
    srv = stub(cut, ok('{"answer": "a", "quotes": ["q"]}'))
    model = served(srv.url, llm_trace=tmp_path / "t.jsonl", llm_trace_content=True)
    assert structured(model, Answer, USER, reasks=1) == Answer(answer="a", quotes=["q"])
    assert len(srv.requests) == 2 and "cut off" in srv.requests[1]["json"]["messages"][-1]["content"]
    first = json.loads((tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert (first["outcome"], first["input_tokens"], first["output_tokens"], first["reply"]) == \
        ("error", 20, 9, '{"answer": "a", "quo') and first["error"].startswith("LengthFinishReasonError")
    srv = stub(cut)
    with pytest.raises(StructuredOutputError) as e:
        structured(served(srv.url), Answer, USER, reasks=0)
    assert e.value.last_output == '{"answer": "a", "quo'


def test_structured_output_lets_provider_errors_through():
    with pytest.raises(ProviderError) as e:
        structured(fake_model(responses=[ProviderError("server gone")]), Answer, USER)
    assert not isinstance(e.value, StructuredOutputError)


# -- JSON in replies -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expect", [
    ('{"a": 1}', {"a": 1}),
    ('Sure, here you go:\n{"a": {"b": [1, 2]}} hope it helps', {"a": {"b": [1, 2]}}),
    ('```json\n{"a": "x"}\n```', {"a": "x"}),
    ('```\n{"a": "x"}\n```\nand {"b": 2}', {"a": "x"}),
    ('<think>maybe {"a": 0}</think>{"a": 2}', {"a": 2}),
    ('{broken} then {"ok": true}', {"ok": True}),
    ('{"s": "含{括号}的文本"}', {"s": "含{括号}的文本"}),
])
def test_extract_json(text, expect):
    assert extract_json(text) == expect


@pytest.mark.parametrize("text", ["", "no json here", "[1, 2, 3]", '{"cut": "off'])
def test_extract_json_rejects(text):
    with pytest.raises(ValueError):
        extract_json(text)


# -- context packing ------------------------------------------------------------------------------------------------
def test_pack_passages_keeps_order_and_cuts_last_at_sentence_boundary():
    counter = TokenCounter()
    ps = ["第一段第一句。第一段第二句。", "第二段第一句。第二段第二句很长很长很长很长很长。第二段第三句。", "第三段。"]
    budget = counter.count(ps[0]) + counter.count("第二段第一句。") + 2
    out = pack_passages(ps, budget, counter)
    assert out == [ps[0], "第二段第一句。"]
    assert pack_passages(ps, 10_000, counter) == ps
    assert sum(counter.count(p) for p in out) <= budget


def test_pack_passages_hard_cuts_when_no_sentence_fits():
    out = pack_passages(["一二三四五六七八九十没有句号的长段落"], 5, len)
    assert out == ["一二三四五"]
    assert pack_passages(["abc"], 0, len) == []
    assert pack_passages([], 100, len) == []


@pytest.mark.parametrize("passages, budget, expect", [
    (["a", ""], 0, []),             # CI's example: nothing fits in no budget
    (["", "a"], 0, []),             # ... not even an empty passage (it used to give [""])
    ([""], 0, []),
    (["ab"], -3, []),
    (["a", ""], 1, ["a", ""]),      # with room, an empty passage fits (it costs nothing) and keeps its place
    (["", "abc"], 1, ["", "a"]),    # a leading empty passage does not stop the hard cut of the first text
    (["ab。cd", "ef"], 4, ["ab。"]),  # sentence cut; a later passage is never hard-cut
    (["ab", "cd"], 3, ["ab"]),
])
def test_pack_passages_edge_cases(passages, budget, expect):
    assert pack_passages(passages, budget, len) == expect


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="甲乙丙。！？；\n ab", min_size=0, max_size=40), max_size=6), st.integers(-2, 120))
@example(passages=["a", ""], budget=0)
@example(passages=["", "a"], budget=0)
@example(passages=["", "abc"], budget=1)
def test_pack_passages_properties(passages, budget):
    out = pack_passages(passages, budget, len)
    assert sum(len(p) for p in out) <= budget or out == []
    assert len(out) <= len(passages)
    for i, p in enumerate(out):
        assert passages[i].startswith(p)  # positional: out[i] is a prefix of passages[i]
    assert out[:-1] == passages[: max(len(out) - 1, 0)]  # only the last kept passage may be cut
    if budget <= 0:
        assert out == []
    elif sum(len(p) for p in passages) <= budget:
        assert out == passages
    first_text = next((i for i, p in enumerate(passages) if p.strip()), None)
    if budget > 0 and first_text is not None and passages[first_text][:1].strip() and \
            sum(len(p) for p in passages[:first_text]) == 0:
        assert len(out) > first_text and out[first_text]  # a first passage too long is cut, never dropped


@given(st.text(max_size=80))
def test_sentence_pieces_cover_text(text):
    assert "".join(sentence_pieces(text)) == text


def test_format_and_parse_passages_roundtrip():
    ps = ["一。\n二", "x < y > z", ""]
    assert parse_passages("问题\n" + format_passages(ps) + "\n结尾") == ps


# -- the SDK's retries and our one-line errors, against the stub server --------------------------------------------
def test_sdk_retries_500_then_succeeds_and_records_usage(stub):
    srv = stub(err(500, headers=FAST_RETRY), ok("fine", pt=13, ct=5))
    model = served(srv.url)
    assert ask(model, prompt="p@1") == "fine"
    assert len(srv.requests) == 2
    rec = model.calls[-1]
    assert (rec.input_tokens, rec.output_tokens, rec.prompt, rec.outcome, rec.error) == (13, 5, "p@1", "ok", None)


def test_sdk_retries_429(stub):
    srv = stub(err(429, "slow down", FAST_RETRY), ok())
    assert ask(served(srv.url)) == "hello"
    assert len(srv.requests) == 2


def test_persistent_5xx_gives_up_after_the_sdk_retries(stub):
    srv = stub(*[err(503, headers=FAST_RETRY)] * 4)
    model = served(srv.url, llm_max_retries=3)
    with pytest.raises(ProviderError) as e:
        ask(model)
    msg = str(e.value)
    assert "HTTP 503" in msg and "4 attempt(s)" in msg and srv.url in msg and "\n" not in msg
    assert len(srv.requests) == 4
    assert model.calls[-1].outcome == "error"


def test_404_model_not_found_is_not_retried(stub):
    srv = stub(err(404, "model 'test-model' not found"))
    with pytest.raises(ProviderError) as e:
        ask(served(srv.url))
    msg = str(e.value)
    assert "test-model" in msg and "not found" in msg and "models the server serves" in msg
    assert len(srv.requests) == 1


def test_400_is_reported_without_retry(stub):
    srv = stub(err(400, "unsupported parameter: foo"), err(400, "prompt is too long: 9000 tokens"))
    with pytest.raises(ProviderError, match="unsupported parameter: foo"):
        ask(served(srv.url))
    with pytest.raises(ProviderError, match="RAGREPORTS_LLM_CONTEXT_TOKENS"):  # LangChain: context overflow
        ask(served(srv.url))
    assert len(srv.requests) == 2


def test_dead_port_names_the_url_after_retries():
    url = dead_url()
    with pytest.raises(ProviderError) as e:
        ask(served(url, llm_max_retries=1))
    msg = str(e.value)
    assert url in msg and "RAGREPORTS_LLM_BASE_URL" in msg and "2 attempt(s)" in msg and "cannot reach" in msg


def test_timeout_is_reported_with_what_to_do(stub):
    srv = stub(err(200, delay=2.0))
    with pytest.raises(ProviderError) as e:
        ask(served(srv.url, llm_timeout=0.3, llm_max_retries=0))
    assert "within 0.3s" in str(e.value) and "RAGREPORTS_LLM_TIMEOUT" in str(e.value)
    assert len(srv.requests) == 1


def test_request_shape_and_max_tokens(stub):
    srv = stub(ok("a"), ok("b"))
    ask(served(srv.url, llm_max_tokens=50))
    ask(served(srv.url))
    first, second = (r["json"] for r in srv.requests)
    assert first["max_tokens"] == 50 and "max_completion_tokens" not in first  # what compatible servers know
    assert first["messages"] == [{"role": "user", "content": "hi"}] and first["model"] == "test-model"
    assert "max_tokens" not in second and "response_format" not in second


# -- secrets ---------------------------------------------------------------------------------------------------------
def test_api_key_never_leaks(stub, caplog, tmp_path):
    caplog.set_level(logging.DEBUG, logger="ragreports.llm")
    srv = stub(ok(f"the reply echoes {FAKE_KEY}"), err(401, f"Incorrect API key provided: {FAKE_KEY}"),
               err(500, f"echo {FAKE_KEY}", FAST_RETRY), err(500, f"echo {FAKE_KEY}", FAST_RETRY))
    trace = tmp_path / "trace.jsonl"
    model = served(srv.url, llm_max_retries=1, llm_trace=trace, llm_trace_content=True)
    texts = [repr(model), repr(model.chat), str(model.chat)]
    ask(model, [("human", f"my key is {FAKE_KEY}")])
    assert srv.requests[0]["headers"]["authorization"] == f"Bearer {FAKE_KEY}"  # the key really is used
    errors = []
    for _ in range(2):
        with pytest.raises(ProviderError) as e:
            ask(model)
        errors.append(e.value)
    dead = served(dead_url(), llm_max_retries=0)
    with pytest.raises(ProviderError) as e:
        ask(dead)
    errors.append(e.value)
    assert "OPENAI_API_KEY" in str(errors[0])
    for exc in errors:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts += [caplog.text, repr(model.calls), repr(dead), trace.read_text(encoding="utf-8")]
    assert len(trace.read_text(encoding="utf-8").splitlines()) == 3 and "my key is ***" in texts[-1]
    leaks = [t for t in texts if FAKE_KEY in t or FAKE_KEY[8:] in t]
    assert not leaks
    assert "llm call model=openai:test-model" in caplog.text


def test_redact():
    assert redact(f"key {FAKE_KEY} and Bearer abcdefghijkl", []) == "key sk-*** and Bearer ***"
    assert redact("token s3cr3tvalue here", ["s3cr3tvalue"]) == "token *** here"


# -- traces ------------------------------------------------------------------------------------------------------------
def test_trace_writes_one_json_line_per_call(tmp_path):
    path = tmp_path / "calls.jsonl"
    trace = get_chat_model(Settings(llm_trace=path), "fake").trace  # the provider wires --trace to the file
    replies = iter(["not json", '{"answer": "a", "quotes": ["q"]}'])
    model = fake_model(responses=lambda m: next(replies), trace=trace)
    structured(model, Answer, passage_messages(), prompt="answer@9")
    with pytest.raises(ProviderError):
        ask(fake_model(responses=[ProviderError("down")], trace=trace), prompt="brief@1")
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["prompt"], r["attempt"], r["outcome"]) for r in lines] == \
        [("answer@9", 1, "ok"), ("answer@9", 2, "ok"), ("brief@1", None, "error")]
    first = lines[0]
    assert first["model"] == "fake" and first["input_tokens"] > 0 and first["output_tokens"] > 0
    assert first["latency_s"] >= 0 and first["ts"] and "messages" not in first and "reply" not in first
    assert lines[2]["error"].startswith("ProviderError: down")
    totals = model.trace.totals()
    assert totals["calls"] == 3 and totals["errors"] == 1
    assert totals["input_tokens"] == lines[0]["input_tokens"] + lines[1]["input_tokens"]


def test_trace_content_only_when_asked(tmp_path):
    plain, full = Trace(tmp_path / "a.jsonl"), Trace(tmp_path / "b.jsonl", content=True)
    for trace in (plain, full):
        ask(fake_model(trace=trace), passage_messages(), prompt="qa@1")
    a = json.loads((tmp_path / "a.jsonl").read_text(encoding="utf-8"))
    b = json.loads((tmp_path / "b.jsonl").read_text(encoding="utf-8"))
    assert "messages" not in a and "reply" not in a
    assert b["messages"][1]["role"] == "user" and "<passage" in b["messages"][1]["content"]
    assert b["reply"] == "全年办理行政复议案件12件。"
    with pytest.raises(ConfigError, match="does not exist"):
        Trace(tmp_path / "missing" / "t.jsonl")


# -- streaming drafts ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expect", [
    ('{"answer": "13311', "13311"),
    ('{"answer": "13311项", "quo', "13311项"),
    ('Sure: {"answer": "a\\"b', 'a"b'),
    ('{"quotes": ["x"], "answer": ', ""),
    ("no json yet", ""),
    ('{"answer": 5', ""),
])
def test_partial_field(text, expect):
    assert partial_field(text, "answer") == expect


def test_streaming_shows_drafts_and_gives_the_same_reply():
    drafts: list[str] = []
    replies = ['{"answer": "第一稿', '{"answer": "全年办理12件", "quotes": ["全年办理行政复议案件12件"]}']
    model = fake_model(responses=replies, chunk_chars=3)
    out = structured_output(model, Answer, stream=True).invoke(
        passage_messages(), config=model.config("qa@1", [draft_handler("answer", drafts.append)]))
    assert out == Answer(answer="全年办理12件", quotes=["全年办理行政复议案件12件"])
    restart = drafts.index("", 1)  # the re-ask starts a new draft
    first, second = drafts[1:restart], drafts[restart + 1:]
    assert first[-1] == "第一稿" and second[-1] == "全年办理12件"
    assert all(b.startswith(a) for a, b in zip(second, second[1:], strict=False)) and len(second) > 2
    assert [c.output_tokens > 0 for c in model.calls] == [True, True]  # usage arrives in streaming mode too


# -- LangChain composition -------------------------------------------------------------------------------------------
QA = PromptFile(name="qa", version=2, variables=["question", "passages"], system="只根据段落回答。",
                user="问题：{question}\n\n{passages}")


def test_langchain_chain_with_fake_and_handler_by_run_metadata():
    from langchain_core.output_parsers import StrOutputParser

    model = fake_model()
    chain = QA.to_langchain() | model.chat | StrOutputParser()
    values = {"question": "多少件？", "passages": format_passages(PASSAGES)}
    assert chain.invoke(values) == "全年办理行政复议案件12件。"
    with temporary_handler("qa", lambda req: f"handled {req.prompt} {len(req.passages)}"):
        assert chain.invoke(values, config=model.config(QA.ref)) == "handled qa@2 2"
    assert model.calls[-1].prompt == "qa@2"


def test_langchain_chain_with_openai_compatible_server(stub):
    from langchain_core.output_parsers import StrOutputParser

    srv = stub(ok("served answer"))
    model = served(srv.url)
    chain = QA.to_langchain() | model.chat | StrOutputParser()
    assert chain.invoke({"question": "q", "passages": "p"}, config=model.config(QA.ref)) == "served answer"
    sent = srv.requests[0]["json"]
    assert sent["model"] == "test-model" and sent["messages"][-1]["content"] == "问题：q\n\np"
    assert model.calls[-1].prompt == "qa@2" and model.calls[-1].input_tokens == 11


# -- embeddings through LangChain ------------------------------------------------------------------------------------
def emb_ok(*vectors) -> tuple:
    return (200, {}, {"object": "list", "model": "e", "usage": {"prompt_tokens": 1, "total_tokens": 1},
                      "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]})


def test_openai_embedder_through_langchain(stub):
    srv = stub(emb_ok([3.0, 4.0], [0.0, 2.0]), err(401, f"Incorrect API key provided: {FAKE_KEY}"))
    emb = get_embedder(Settings(llm_base_url=srv.url, api_key=FAKE_KEY, llm_max_retries=0), "openai:emb-model")
    assert emb.name == "openai:emb-model" and type(emb.embeddings).__name__ == "OpenAIEmbeddings"
    m = emb.embed_documents(["一段", "两段"])
    assert m.shape == (2, 2) and emb.dim == 2
    assert m[0].tolist() == pytest.approx([0.6, 0.8]) and m[1].tolist() == pytest.approx([0.0, 1.0])
    req = srv.requests[0]
    assert req["path"] == "/v1/embeddings" and req["json"]["input"] == ["一段", "两段"]  # text, not token ids
    with pytest.raises(ProviderError) as e:
        emb.embed_query("x")
    assert srv.url in str(e.value) and FAKE_KEY[8:] not in str(e.value)


@pytest.mark.parametrize("spec", ["bogus", "openai:", "e5-small:x", "nope:model"])
def test_unknown_embedder(spec):
    with pytest.raises(ConfigError, match="unknown embedder"):
        get_embedder(Settings(llm_base_url="http://127.0.0.1:9/v1"), spec)
