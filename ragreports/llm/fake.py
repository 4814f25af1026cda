"""The deterministic offline chat model (``fake`` in ``get_chat_model``): a LangChain chat model, registered like
the real providers, so every test runs the real chains offline.

``fake_model(responses=None, *, handlers=None)`` gives a :class:`~ragreports.llm.base.ChatModel` whose ``chat`` is
a ``FakeChat`` (a LangChain ``BaseChatModel``: invoke, stream, callbacks, ``with_structured_output`` all work).
What it replies, exactly:

1. Scripted: ``fake_model(responses=[...])`` returns the items in order (an Exception item is raised instead;
   running out raises ProviderError); ``fake_model(responses=fn)`` returns ``fn(messages)`` (role/content dicts).
2. Otherwise, a handler registered for the prompt name decides: stages or tests register one for a prompt::

       from ragreports.llm.fake import FakeRequest, register_handler

       @register_handler("answer")                       # the prompt *name*, without "@version"
       def _fake_answer(req: FakeRequest) -> dict:       # may return str, dict/list (sent as JSON) or a BaseModel
           s = req.first_sentence()
           return {"answer": s, "quotes": [s]}

   The prompt ref comes from the run metadata (``model.config("answer@2")``, or ``config={"metadata": {"prompt":
   ...}}``). ``FakeRequest`` holds ``messages``, ``prompt``, ``name``, ``json_mode``, ``passages`` (the
   ``<passage>`` blocks of the last user message that has any, so re-asks keep them), ``schema`` (the JSON Schema
   of the call's ``response_format``, else the one found in the messages, or None) and ``attempt`` (1, then 2.. on
   re-asks). ``fake_model(handlers={...})`` overrides the process-wide registry for one model; a test that needs a
   handler for a while uses ``with temporary_handler(name, fn):``, which puts back whatever was registered
   before (``unregister_handler`` removes the name outright, a stage's own handler included).
3. Default, no handler -- "echo-extractive". Let S be the first sentence (stripped) of the first passage, or of
   the first user message when no user message holds ``<passage>`` blocks. Plain mode returns S. JSON mode (a
   call with a ``response_format``, as ``with_structured_output`` binds it) returns an object built from the
   schema: every string is S (cut to maxLength), integers/numbers their minimum or 0, booleans false, arrays hold
   max(1, minItems) such items, enums/consts their first value, optional (anyOf null) fields are filled too, all
   properties are present. With no schema, or one it can't fill (pattern, format, uniqueItems with >1 item,
   minLength > len(S)...), it returns ``{}``.

Streaming yields the reply in pieces of ``chunk_chars`` characters. Token usage (``usage_metadata``) is counted
with ``ragreports.text.tokens.TokenCounter``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydantic import BaseModel

from ragreports.errors import ProviderError
from ragreports.llm.base import ChatModel
from ragreports.llm.context import first_sentence, parse_passages
from ragreports.llm.trace import Trace
from ragreports.text.tokens import TokenCounter

Messages = list[dict[str, str]]


# -- requests and the default -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FakeRequest:
    """What a fake handler sees. ``name`` is ``prompt`` without ``@version``."""

    messages: tuple[dict[str, str], ...]
    prompt: str | None
    name: str | None
    json_mode: bool
    passages: tuple[str, ...]
    schema: dict | None
    attempt: int

    @property
    def first_user(self) -> str:
        return next((m["content"] for m in self.messages if m.get("role") == "user"), "")

    def first_sentence(self) -> str:
        """First sentence of the first passage, or of the first user message if no message holds passages."""
        return first_sentence(self.passages[0] if self.passages else self.first_user)


Handler = Callable[[FakeRequest], Any]


class _Unfillable(Exception):
    pass


def _find_schema(messages: Sequence[dict[str, str]]) -> dict | None:
    """The first JSON object in the messages that looks like a JSON Schema (has "properties" or "$defs")."""
    dec = json.JSONDecoder()
    for m in messages:
        text = m.get("content", "")
        for i, ch in enumerate(text):
            if ch == "{" and text.startswith(('{"', "{ "), i):
                try:
                    obj, _ = dec.raw_decode(text, i)
                except json.JSONDecodeError:
                    continue
                if isinstance(obj, dict) and ("properties" in obj or "$defs" in obj):
                    return obj
    return None


def _fill(node: dict, root: dict, s: str, depth: int = 0) -> Any:
    if depth > 16:
        raise _Unfillable("too deep")
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            raise _Unfillable(ref)
        node = {**root.get("$defs", {}).get(ref.split("/")[-1], {}), **{k: v for k, v in node.items() if k != "$ref"}}
    if any(k in node for k in ("pattern", "format", "not", "patternProperties")):
        raise _Unfillable("unsupported keyword")
    if "const" in node:
        return node["const"]
    if node.get("enum"):
        return node["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            options = [o for o in node[key] if o.get("type") != "null"] or node[key]
            for option in options:
                try:
                    return _fill(option, root, s, depth + 1)
                except _Unfillable:
                    continue
            raise _Unfillable(key)
    t = node.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if t is None:
        t = "object" if "properties" in node else "array" if "items" in node else "string"
    if t == "string":
        out = s[: node["maxLength"]] if "maxLength" in node else s
        if len(out) < node.get("minLength", 0):
            raise _Unfillable("minLength")
        return out
    if t in ("integer", "number"):
        lo = node.get("minimum", node["exclusiveMinimum"] + 1 if "exclusiveMinimum" in node else 0)
        hi = node.get("maximum", node["exclusiveMaximum"] - 1 if "exclusiveMaximum" in node else lo)
        if lo > hi:
            raise _Unfillable("range")
        return int(lo) if t == "integer" else lo
    if t == "boolean":
        return False
    if t == "null":
        return None
    if t == "array":
        n = max(1, node.get("minItems", 0))
        if node.get("maxItems", n) < n:
            n = node["maxItems"]
        if n > 1 and node.get("uniqueItems"):
            raise _Unfillable("uniqueItems")
        return [_fill(node.get("items", {}), root, s, depth + 1) for _ in range(n)]
    if t == "object":
        return {k: _fill(v, root, s, depth + 1) for k, v in node.get("properties", {}).items()}
    raise _Unfillable(str(t))


def fake_default(req: FakeRequest) -> str:
    """The fake's echo-extractive behaviour (see the module docstring)."""
    s = req.first_sentence()
    if not req.json_mode:
        return s
    if req.schema is None:
        return "{}"
    try:
        return json.dumps(_fill(req.schema, req.schema, s), ensure_ascii=False)
    except _Unfillable:
        return "{}"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, ensure_ascii=False)


# -- the handler registry -------------------------------------------------------------------------------------------
_REGISTRY: dict[str, Handler] = {}


def register_handler(prompt_name: str, fn: Handler | None = None):
    """Register ``fn(FakeRequest) -> str | dict | list | BaseModel`` for a prompt name; usable as decorator."""
    if "@" in prompt_name:
        raise ValueError(f"register the prompt name without its version: {prompt_name.split('@')[0]!r}")

    def _reg(f: Handler) -> Handler:
        _REGISTRY[prompt_name] = f
        return f

    return _reg(fn) if fn is not None else _reg


def unregister_handler(prompt_name: str) -> None:
    """Remove the handler registered for ``prompt_name`` (whoever registered it); no-op if there is none."""
    _REGISTRY.pop(prompt_name, None)


@contextlib.contextmanager
def temporary_handler(prompt_name: str, fn: Handler) -> Iterator[Handler]:
    """Register ``fn`` for ``prompt_name`` inside a ``with`` block, then restore what was registered before."""
    missing = object()
    previous = _REGISTRY.get(prompt_name, missing)
    register_handler(prompt_name, fn)
    try:
        yield fn
    finally:
        if previous is missing:
            _REGISTRY.pop(prompt_name, None)
        else:
            _REGISTRY[prompt_name] = previous


# -- the LangChain chat model -----------------------------------------------------------------------------------
class _Script:
    """Scripted replies, shared by copies of the model (LangChain copies bound models)."""

    def __init__(self, responses: Sequence[str | BaseException] | Callable[[Messages], str]):
        self.fn = responses if callable(responses) else None
        self.items = [] if callable(responses) else list(responses)
        self.lock = threading.Lock()

    def next(self, messages: Messages) -> str:
        if self.fn is not None:
            return self.fn(messages)
        with self.lock:
            if not self.items:
                raise ProviderError("scripted fake model has no responses left; give it more")
            item = self.items.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


def reply_for(messages: Messages, *, response_format: dict | None, prompt: str | None, attempt: int | None,
              handlers: dict[str, Handler] | None = None, script: _Script | None = None) -> str:
    """What the fake replies to ``messages`` (see the module docstring)."""
    if script is not None:
        return script.next(messages)
    name = prompt.split("@", 1)[0] if prompt else None
    passages = next((ps for m in reversed(messages) if m.get("role") == "user"
                     for ps in [parse_passages(m.get("content", ""))] if ps), [])
    rf = response_format or {}
    schema = (rf.get("json_schema") or {}).get("schema") if rf.get("type") == "json_schema" else None
    req = FakeRequest(messages=tuple(dict(m) for m in messages), prompt=prompt, name=name, json_mode=bool(rf),
                      passages=tuple(passages), schema=schema or _find_schema(messages),
                      attempt=attempt or 1 + sum(m.get("role") == "assistant" for m in messages))
    handler = ((handlers or {}).get(name) or _REGISTRY.get(name)) if name else None
    return _as_text(handler(req)) if handler else fake_default(req)


def fake_model(responses: Sequence[str | BaseException] | Callable[[Messages], str] | None = None, *,
               handlers: dict[str, Handler] | None = None, encoding: str = "cl100k_base", chunk_chars: int = 4,
               structured: str = "json_schema", trace: Trace | None = None) -> ChatModel:
    """The fake as a ChatModel (``get_chat_model(settings, "fake")`` gives the default one)."""
    chat = fake_chat_class()(script=None if responses is None else _Script(responses), handlers=dict(handlers or {}),
                             encoding=encoding, chunk_chars=chunk_chars)
    return ChatModel("fake", chat, structured=structured, trace=trace or Trace())


@functools.cache
def fake_chat_class():
    """The LangChain class of the fake (langchain_core is imported on first use)."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.output_parsers import JsonOutputParser
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.runnables import RunnableMap, RunnablePassthrough

    roles = {"human": "user", "ai": "assistant", "system": "system"}

    class FakeChat(BaseChatModel):
        """Deterministic offline chat model (scripted, handler-driven or echo-extractive)."""

        script: Any = None
        handlers: dict = {}
        encoding: str = "cl100k_base"
        chunk_chars: int = 4

        @property
        def _llm_type(self) -> str:
            return "ragreports-fake"

        @property
        def _identifying_params(self) -> dict[str, Any]:
            return {"model_name": "fake"}

        def _reply(self, messages, run_manager, kwargs) -> tuple[str, dict]:
            meta = (run_manager.metadata if run_manager is not None else None) or {}
            dicts = [{"role": roles.get(m.type, "user"),
                      "content": m.content if isinstance(m.content, str) else m.text} for m in messages]
            text = reply_for(dicts, response_format=kwargs.get("response_format"), prompt=meta.get("prompt"),
                             attempt=meta.get("attempt"), handlers=self.handlers, script=self.script)
            counter = TokenCounter(self.encoding)
            pt, ct = counter.count("\n".join(m["content"] for m in dicts)), counter.count(text)
            return text, {"input_tokens": pt, "output_tokens": ct, "total_tokens": pt + ct}

        def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            text, usage = self._reply(messages, run_manager, kwargs)
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text, usage_metadata=usage))])

        def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
            text, usage = self._reply(messages, run_manager, kwargs)
            n = max(1, self.chunk_chars)
            for i in range(0, len(text), n):
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text[i:i + n]))
                if run_manager is not None:
                    run_manager.on_llm_new_token(text[i:i + n], chunk=chunk)
                yield chunk
            yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))

        def with_structured_output(self, schema, *, method: str = "json_schema", include_raw: bool = False,
                                   **kwargs):
            """JSON schema or JSON mode, the way ChatOpenAI binds them: ``response_format`` on the call, the JSON
            reply parsed (a dict); with ``include_raw`` the ``{raw, parsed, parsing_error}`` dict."""
            body = schema.model_json_schema() if isinstance(schema, type) else dict(schema)
            if method == "json_schema":
                rf = {"type": "json_schema", "json_schema": {"name": body.get("title", "reply"), "schema": body}}
            elif method == "json_mode":
                rf = {"type": "json_object"}
            else:
                raise ValueError(f"the fake supports json_schema and json_mode, not {method!r}")
            llm = self.bind(response_format=rf, **kwargs)
            if not include_raw:
                return llm | JsonOutputParser()
            parsed = RunnablePassthrough.assign(parsed=(lambda x: x["raw"]) | JsonOutputParser(),
                                                parsing_error=lambda _: None)
            fallback = RunnablePassthrough.assign(parsed=lambda _: None)
            return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")

    return FakeChat
