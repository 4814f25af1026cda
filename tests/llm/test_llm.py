"""The model side, offline: provider selection, the fake, structured output with re-asks, context packing, faults
and retries against a tiny local HTTP server, secret redaction, and the LangChain adapters."""

from __future__ import annotations

import json
import logging
import random
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
from ragreports.llm.base import CallRecord, redact
from ragreports.llm.context import format_passages, pack_passages, parse_passages, sentence_pieces
from ragreports.llm.fake import FakeChatModel, FakeRequest
from ragreports.llm.openai import OpenAIChatModel
from ragreports.llm.prompts import PromptFile
from ragreports.llm.structured import complete_structured, extract_json
from ragreports.providers import get_chat_model
from ragreports.text.tokens import TokenCounter

FAKE_KEY = "sk-test-DoNotLeak-7f3a9c1e5b2d8f4a"


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


def client(url: str, sleeps: list, **kw) -> OpenAIChatModel:
    kw.setdefault("timeout", 5)
    kw.setdefault("max_retries", 2)
    return OpenAIChatModel("test-model", base_url=url, api_key=kw.pop("api_key", FAKE_KEY), sleep=sleeps.append,
                           rng=random.Random(0), **kw)


USER = [{"role": "user", "content": "hi"}]


# -- provider selection -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, kind, name", [
    ("none", type(None), None),
    ("fake", FakeChatModel, "fake"),
    ("openai:my-model", OpenAIChatModel, "openai:my-model"),
    (" openai:qwen2.5:7b ", OpenAIChatModel, "openai:qwen2.5:7b"),
])
def test_get_chat_model_selects_by_string(spec, kind, name):
    s = Settings(llm="none", llm_base_url="http://127.0.0.1:9/v1")
    model = get_chat_model(s, spec)
    assert isinstance(model, kind)
    if name:
        assert model.name == name


def test_get_chat_model_defaults_to_settings_llm():
    assert isinstance(get_chat_model(Settings(llm="fake")), FakeChatModel)
    assert get_chat_model(Settings(llm="none")) is None


@pytest.mark.parametrize("spec", ["bogus", "openai", "openai:", "gguf:", "fake:extra", "gpt-4o", "local"])
def test_unknown_spec_lists_valid_forms(spec):
    with pytest.raises(ConfigError) as e:
        get_chat_model(Settings(), spec)
    for form in ("none", "fake", "openai:MODEL", "gguf:"):
        assert form in str(e.value)


def test_openai_without_key_or_server_says_what_to_set():
    with pytest.raises(ConfigError) as e:
        get_chat_model(Settings(llm_base_url=None, api_key=None), "openai:gpt-4o-mini")
    assert "OPENAI_API_KEY" in str(e.value) and "RAGREPORTS_LLM_BASE_URL" in str(e.value)


def test_openai_base_url_from_env_and_placeholder_key(stub, monkeypatch):
    srv = stub(ok("from the env server"))
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    model = get_chat_model(Settings(), "openai:local")
    assert model.complete(USER) == "from the env server"
    req = srv.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["json"]["model"] == "local"
    assert req["headers"]["authorization"] == "Bearer sk-no-key"


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
def test_scripted_fake_in_order_raises_items_and_runs_out():
    fake = FakeChatModel(responses=["one", ProviderError("down"), "three"])
    assert fake.complete(USER) == "one"
    with pytest.raises(ProviderError, match="down"):
        fake.complete(USER)
    assert fake.complete(USER, json_mode=True) == "three"
    with pytest.raises(ProviderError, match="no responses left"):
        fake.complete(USER)
    assert [c.error for c in fake.calls] == [None, "ProviderError", None, "ProviderError"]


def test_scripted_fake_callable_and_usage_recorded():
    fake = FakeChatModel(responses=lambda msgs: msgs[-1]["content"].upper())
    assert fake.complete([{"role": "user", "content": "abc def"}], prompt="x@2") == "ABC DEF"
    rec = fake.calls[-1]
    counter = TokenCounter()
    assert (rec.model, rec.prompt, rec.prompt_tokens, rec.completion_tokens) == \
        ("fake", "x@2", counter.count("abc def"), counter.count("ABC DEF"))


PASSAGES = ["全年办理行政复议案件12件。纠错率为8%。", "第二段内容。"]


def passage_messages(schema_note: str = "") -> list[dict[str, str]]:
    return [{"role": "system", "content": "你是助手。" + schema_note},
            {"role": "user", "content": f"问题：多少件？\n\n{format_passages(PASSAGES)}\n\n请回答。"}]


def test_default_fake_echoes_first_sentence_of_first_passage():
    fake = get_chat_model(Settings(), "fake")
    assert fake.complete(passage_messages()) == "全年办理行政复议案件12件。"
    assert fake.complete([{"role": "user", "content": "没有段落。第二句。"}]) == "没有段落。"
    assert fake.complete(passage_messages(), json_mode=True) == "{}"  # no schema in the prompt


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


@pytest.mark.parametrize("schema, expect", [
    (Answer, {"answer": "全年办理行政复议案件12件。", "quotes": ["全年办理行政复议案件12件。"]}),
    (Nested, {"items": [{"label": "a", "count": 3, "ratio": 0, "ok": False, "note": "全年办理行政复议案件12件。"}] * 2,
              "title": "全年办理"}),
])
def test_default_fake_fills_schema_from_passages(schema, expect):
    fake = FakeChatModel()
    out = complete_structured(fake, passage_messages(), schema, reasks=0)
    assert out.model_dump() == schema.model_validate(expect).model_dump()


class Unfillable(BaseModel):
    code: str = Field(pattern=r"^[A-Z]{3}$")


def test_default_fake_returns_empty_object_for_unfillable_schema():
    fake = FakeChatModel()
    with pytest.raises(StructuredOutputError) as e:
        complete_structured(fake, passage_messages(), Unfillable, reasks=1)
    assert e.value.attempts == 2 and e.value.last_output == "{}"


def test_registered_handler_by_prompt_name_with_request_fields():
    seen: list[FakeRequest] = []

    def _probe(req: FakeRequest):  # records what it sees; the checks are below, not inside the model call
        seen.append(req)
        if req.attempt == 1:
            return "not json"
        return {"answer": req.first_sentence(), "quotes": list(req.passages[-1:]) or ["(no passages)"]}

    with FakeChatModel.temporary_handler("probe", _probe):
        out = complete_structured(FakeChatModel(), passage_messages(), Answer, prompt="probe@3")
        assert [r.attempt for r in seen] == [1, 2]
        assert seen[0].name == "probe" and seen[0].prompt == "probe@3" and seen[0].json_mode
        # the re-ask's last user message is the correction: the passages still come from the earlier one
        assert seen[0].passages == seen[1].passages == tuple(PASSAGES)
        assert seen[0].schema["properties"].keys() == {"answer", "quotes"}
        assert out == Answer(answer="全年办理行政复议案件12件。", quotes=["第二段内容。"])
        # an instance handler wins over the registry; other prompt names fall back to the default
        inst = FakeChatModel(handlers={"probe": lambda req: "instance"})
        assert inst.complete(USER, prompt="probe@1") == "instance"
        assert FakeChatModel().complete(passage_messages(), prompt="other@1") == "全年办理行政复议案件12件。"
    assert FakeChatModel().complete(passage_messages(), prompt="probe@3") == "全年办理行政复议案件12件。"
    with pytest.raises(ValueError):
        FakeChatModel.register_handler("probe@1", lambda r: "")


def test_temporary_handler_restores_what_was_registered_before():
    """The registry is process-wide: a temporary handler must not remove a handler a stage registered."""
    name = "temporary-handler-test"
    assert FakeChatModel().complete(USER, prompt=f"{name}@1") == "hi"  # nothing registered: the default echoes
    FakeChatModel.register_handler(name, lambda req: "stage")
    try:
        with FakeChatModel.temporary_handler(name, lambda req: "test"):
            assert FakeChatModel().complete(USER, prompt=f"{name}@1") == "test"
        assert FakeChatModel().complete(USER, prompt=f"{name}@1") == "stage"
        with pytest.raises(RuntimeError), FakeChatModel.temporary_handler(name, lambda req: "test"):
            raise RuntimeError("the block fails")
        assert FakeChatModel().complete(USER, prompt=f"{name}@1") == "stage"
    finally:
        FakeChatModel.unregister_handler(name)
    assert FakeChatModel().complete(USER, prompt=f"{name}@1") == "hi"


# -- structured output -------------------------------------------------------------------------------------------
def test_complete_structured_succeeds_after_one_bad_reply():
    sent: list[list[dict]] = []
    replies = iter(["Sure! Here it is: {answer: oops}", 'Here:\n```json\n{"answer": "a", "quotes": ["q"]}\n```'])

    def script(msgs):
        sent.append([dict(m) for m in msgs])
        return next(replies)

    out = complete_structured(FakeChatModel(responses=script), passage_messages(), Answer, reasks=2)
    assert out == Answer(answer="a", quotes=["q"])
    assert len(sent) == 2
    first, second = sent
    assert '"quotes"' in first[0]["content"] and first[0]["content"].startswith("你是助手。")  # schema in system
    assert second[-2] == {"role": "assistant", "content": "Sure! Here it is: {answer: oops}"}
    assert second[-1]["role"] == "user" and "no JSON object" in second[-1]["content"]


def test_complete_structured_reask_carries_validation_error():
    sent = []
    replies = iter(['{"answer": "a", "quotes": []}', '{"answer": "a", "quotes": ["q"]}'])
    fake = FakeChatModel(responses=lambda m: (sent.append(m), next(replies))[1])
    complete_structured(fake, [{"role": "user", "content": "x"}], Answer)
    assert sent[0][0]["role"] == "system"  # a system message is added when there was none
    assert "quotes" in sent[1][-1]["content"] and "at least 1" in sent[1][-1]["content"]


@pytest.mark.parametrize("reasks", [0, 1, 2])
def test_complete_structured_fails_after_bounded_attempts(reasks):
    bad = [f"nope {i}" for i in range(reasks + 1)] + ['{"answer": "a", "quotes": ["q"]}']
    fake = FakeChatModel(responses=bad)
    with pytest.raises(StructuredOutputError) as e:
        complete_structured(fake, USER, Answer, reasks=reasks, prompt="answer@1")
    assert e.value.attempts == reasks + 1
    assert e.value.last_output == f"nope {reasks}"
    assert "answer@1" in str(e.value) and "Answer" in str(e.value)
    assert len(fake.calls) == reasks + 1 and all(c.json_mode and c.prompt == "answer@1" for c in fake.calls)


def test_complete_structured_lets_provider_errors_through():
    with pytest.raises(ProviderError) as e:
        complete_structured(FakeChatModel(responses=[ProviderError("server gone")]), USER, Answer)
    assert not isinstance(e.value, StructuredOutputError)


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


# -- faults and retries against the stub server ----------------------------------------------------------------------
def test_retries_500_then_succeeds_and_records_usage(stub):
    srv = stub(err(500), ok("fine", pt=13, ct=5))
    sleeps: list[float] = []
    model = client(srv.url, sleeps)
    assert model.complete(USER, prompt="p@1") == "fine"
    assert len(srv.requests) == 2 and len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5
    rec = model.calls[-1]
    assert (rec.prompt_tokens, rec.completion_tokens, rec.attempts, rec.prompt, rec.error) == (13, 5, 2, "p@1", None)


def test_429_honours_retry_after(stub):
    srv = stub(err(429, "slow down", {"Retry-After": "3"}), ok())
    sleeps: list[float] = []
    assert client(srv.url, sleeps).complete(USER) == "hello"
    assert sleeps == [3.0]


def test_persistent_5xx_gives_up_with_exponential_backoff(stub):
    srv = stub(err(503), err(503), err(503), err(503))
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as e:
        client(srv.url, sleeps, max_retries=3).complete(USER)
    assert "HTTP 503" in str(e.value) and "4 attempt(s)" in str(e.value) and srv.url in str(e.value)
    assert len(srv.requests) == 4 and len(sleeps) == 3
    assert sleeps == sorted(sleeps) and 0.25 <= sleeps[0] <= 0.5 and 1.0 <= sleeps[2] <= 2.0


def test_404_model_not_found_is_not_retried(stub):
    srv = stub(err(404, "model 'test-model' not found"))
    sleeps: list[float] = []
    with pytest.raises(ProviderError) as e:
        client(srv.url, sleeps).complete(USER)
    msg = str(e.value)
    assert "'test-model'" in msg and "not found" in msg and "models the server serves" in msg
    assert len(srv.requests) == 1 and sleeps == []


def test_400_is_reported_without_retry(stub):
    srv = stub(err(400, "context length exceeded"))
    with pytest.raises(ProviderError, match="context length exceeded"):
        client(srv.url, []).complete(USER)
    assert len(srv.requests) == 1


def test_dead_port_names_the_url_after_retries():
    url, sleeps = dead_url(), []
    with pytest.raises(ProviderError) as e:
        client(url, sleeps, max_retries=2).complete(USER)
    msg = str(e.value)
    assert url in msg and "RAGREPORTS_LLM_BASE_URL" in msg and "3 attempt(s)" in msg
    assert len(sleeps) == 2


def test_timeout_is_quick_and_not_retried(stub):
    srv = stub(err(200, delay=2.0))
    t0 = time.monotonic()
    with pytest.raises(ProviderError) as e:
        client(srv.url, [], timeout=0.3).complete(USER)
    assert time.monotonic() - t0 < 1.5
    assert "within 0.3s" in str(e.value) and "RAGREPORTS_LLM_TIMEOUT" in str(e.value)
    assert len(srv.requests) == 1


def test_request_shape_json_mode_and_max_tokens(stub):
    srv = stub(ok('{"a": 1}'), ok("plain"))
    model = client(srv.url, [], temperature=0.0)
    model.complete(USER, json_mode=True, max_tokens=50)
    model.complete(USER)
    first, second = (r["json"] for r in srv.requests)
    assert first["response_format"] == {"type": "json_object"} and first["max_tokens"] == 50
    assert first["temperature"] == 0.0 and first["messages"] == USER
    assert "response_format" not in second and "max_tokens" not in second


# -- secrets ---------------------------------------------------------------------------------------------------------
def test_api_key_never_leaks(stub, caplog):
    caplog.set_level(logging.DEBUG, logger="ragreports.llm")
    srv = stub(ok(), err(401, f"Incorrect API key provided: {FAKE_KEY}"), err(500, f"echo {FAKE_KEY}"),
               err(500, f"echo {FAKE_KEY}"))
    model = get_chat_model(Settings(llm_base_url=srv.url, api_key=FAKE_KEY, llm_max_retries=1), "openai:m")
    model.sleep = lambda s: None
    texts = [repr(model), repr(model.to_langchain())]
    model.complete(USER)
    assert srv.requests[0]["headers"]["authorization"] == f"Bearer {FAKE_KEY}"  # the key really is used
    errors = []
    for _ in range(2):
        with pytest.raises(ProviderError) as e:
            model.complete(USER)
        errors.append(e.value)
    dead = OpenAIChatModel("m", base_url=dead_url(), api_key=FAKE_KEY, max_retries=0)
    with pytest.raises(ProviderError) as e:
        dead.complete(USER)
    errors.append(e.value)
    assert "OPENAI_API_KEY" in str(errors[0])
    for exc in errors:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts += [caplog.text, repr(list(model.calls)), repr(dead)]
    leaks = [t for t in texts if FAKE_KEY in t or FAKE_KEY[8:] in t]
    assert not leaks
    assert "llm call model=openai:m" in caplog.text


def test_redact():
    assert redact(f"key {FAKE_KEY} and Bearer abcdefghijkl", []) == "key sk-*** and Bearer ***"
    assert redact("token s3cr3tvalue here", ["s3cr3tvalue"]) == "token *** here"


# -- LangChain adapters ----------------------------------------------------------------------------------------------
QA = PromptFile(name="qa", version=2, variables=["question", "passages"], system="只根据段落回答。",
                user="问题：{question}\n\n{passages}")


def test_langchain_chain_with_fake():
    from langchain_core.output_parsers import StrOutputParser

    fake = FakeChatModel()
    chain = QA.to_langchain() | fake.to_langchain() | StrOutputParser()
    values = {"question": "多少件？", "passages": format_passages(PASSAGES)}
    assert chain.invoke(values) == "全年办理行政复议案件12件。"
    assert isinstance(fake.calls[-1], CallRecord) and fake.calls[-1].prompt_tokens > 0

    with FakeChatModel.temporary_handler("qa", lambda req: f"handled {req.prompt} {len(req.passages)}"):
        assert chain.invoke(values, config={"metadata": {"prompt": QA.ref}}) == "handled qa@2 2"
        bound = QA.to_langchain() | fake.to_langchain().bind(prompt="qa@2") | StrOutputParser()
        assert bound.invoke(values) == "handled qa@2 2"


def test_langchain_chain_with_openai_compatible_server(stub):
    from langchain_core.output_parsers import StrOutputParser

    srv = stub(ok("served answer"))
    model = client(srv.url, [])
    chain = QA.to_langchain() | model.to_langchain() | StrOutputParser()
    assert chain.invoke({"question": "q", "passages": "p"}) == "served answer"
    sent = srv.requests[0]["json"]
    assert sent["model"] == "test-model" and sent["messages"][-1]["content"] == "问题：q\n\np"
