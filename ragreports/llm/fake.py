"""The deterministic offline chat model (``fake`` in ``get_chat_model``), registered like the real providers.

``FakeChatModel``, exactly:

1. Scripted: ``FakeChatModel(responses=[...])`` returns the items in order (an Exception item is raised instead;
   running out raises ProviderError); ``FakeChatModel(responses=fn)`` returns ``fn(messages)``.
2. Otherwise, a handler registered for the prompt name decides: stages register one for their own prompt::

       from ragreports.llm.fake import FakeChatModel, FakeRequest

       @FakeChatModel.register_handler("answer")         # the prompt *name*, without "@version"
       def _fake_answer(req: FakeRequest) -> dict:       # may return str, dict/list (sent as JSON) or a BaseModel
           s = req.first_sentence()
           return {"answer": s, "quotes": [s]}

   and call ``model.complete(..., prompt="answer@1")`` / ``complete_structured(..., prompt="answer@1")``
   (in LangChain: ``model.to_langchain().bind(prompt="answer@1")`` or ``config={"metadata": {"prompt": ...}}``).
   ``FakeRequest`` holds ``messages``, ``prompt``, ``name``, ``json_mode``, ``passages`` (the ``<passage>`` blocks
   of the last user message that has any, so re-asks keep them), ``schema`` (the JSON Schema found in the
   messages, or None) and ``attempt`` (1, then 2.. on re-asks). ``FakeChatModel(handlers={...})`` overrides the
   class-wide registry for one instance. Register at import time of the stage's module (no side effects).
   The registry is process-wide: a test that needs a handler for a while uses
   ``with FakeChatModel.temporary_handler(name, fn):`` (or ``handlers={...}``), which puts back whatever was
   registered before -- ``unregister_handler`` removes the name outright, a stage's own handler included.
3. Default, no handler -- "echo-extractive". Let S be the first sentence (stripped) of the first passage, or of
   the first user message when no user message holds ``<passage>`` blocks. Plain mode returns S. JSON mode
   returns an object built from the JSON Schema found in the messages (the one ``complete_structured`` appends):
   every string is S (cut to maxLength), integers/numbers their minimum or 0, booleans false, arrays hold
   max(1, minItems) such items, enums/consts their first value, optional (anyOf null) fields are filled too, all
   properties are present. With no schema, or one it can't fill (pattern, format, uniqueItems with >1 item,
   minLength > len(S)...), it returns ``{}``.

Token usage of the fake is counted with ``ragreports.text.tokens.TokenCounter``. ``to_langchain()`` gives a LangChain
``BaseChatModel`` over the same fake (langchain_core imported on first use).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydantic import BaseModel

from ragreports.errors import ProviderError
from ragreports.llm.base import MAX_CALLS_KEPT, CallRecord, Messages, record_call
from ragreports.llm.context import first_sentence, parse_passages
from ragreports.text.tokens import TokenCounter


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


class FakeChatModel:
    """Deterministic offline chat model (scripted, handler-driven or echo-extractive; see the module docstring)."""

    _registry: dict[str, Handler] = {}

    def __init__(self, responses: Sequence[str | Exception] | Callable[[Messages], str] | None = None, *,
                 handlers: dict[str, Handler] | None = None, encoding: str = "cl100k_base"):
        self.name = "fake"
        self._script = responses if callable(responses) else (None if responses is None else list(responses))
        self.handlers = dict(handlers or {})
        self.encoding = encoding
        self.calls: collections.deque[CallRecord] = collections.deque(maxlen=MAX_CALLS_KEPT)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        mode = "scripted" if self._script is not None else "default"
        return f"FakeChatModel({mode}, handlers={sorted(self.handlers)})"

    @classmethod
    def register_handler(cls, prompt_name: str, fn: Handler | None = None):
        """Register ``fn(FakeRequest) -> str | dict | list | BaseModel`` for a prompt name; usable as decorator."""
        if "@" in prompt_name:
            raise ValueError(f"register the prompt name without its version: {prompt_name.split('@')[0]!r}")

        def _reg(f: Handler) -> Handler:
            cls._registry[prompt_name] = f
            return f

        return _reg(fn) if fn is not None else _reg

    @classmethod
    def unregister_handler(cls, prompt_name: str) -> None:
        """Remove the handler registered for ``prompt_name`` (whoever registered it); no-op if there is none."""
        cls._registry.pop(prompt_name, None)

    @classmethod
    @contextlib.contextmanager
    def temporary_handler(cls, prompt_name: str, fn: Handler) -> Iterator[Handler]:
        """Register ``fn`` for ``prompt_name`` inside a ``with`` block, then restore what was registered before."""
        missing = object()
        previous = cls._registry.get(prompt_name, missing)
        cls.register_handler(prompt_name, fn)
        try:
            yield fn
        finally:
            if previous is missing:
                cls._registry.pop(prompt_name, None)
            else:
                cls._registry[prompt_name] = previous

    @functools.cached_property
    def _counter(self):
        return TokenCounter(self.encoding)

    def _reply(self, messages: Messages, json_mode: bool, prompt: str | None) -> str:
        if self._script is not None:
            if callable(self._script):
                return self._script(messages)
            with self._lock:
                if not self._script:
                    raise ProviderError("scripted FakeChatModel has no responses left; give it more")
                item = self._script.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item
        name = prompt.split("@", 1)[0] if prompt else None
        passages = next((ps for m in reversed(messages) if m.get("role") == "user"
                         for ps in [parse_passages(m.get("content", ""))] if ps), [])
        req = FakeRequest(messages=tuple(dict(m) for m in messages), prompt=prompt, name=name, json_mode=json_mode,
                          passages=tuple(passages), schema=_find_schema(messages),
                          attempt=1 + sum(m.get("role") == "assistant" for m in messages))
        handler = self.handlers.get(name) or self._registry.get(name) if name else None
        return _as_text(handler(req)) if handler else fake_default(req)

    def complete_with_record(self, messages: Messages, *, json_mode: bool = False, max_tokens: int | None = None,
                             prompt: str | None = None) -> tuple[str, CallRecord]:
        t0 = time.perf_counter()
        try:
            text = self._reply(messages, json_mode, prompt)
        except Exception as exc:
            record_call(self, CallRecord(self.name, prompt, json_mode, None, None, time.perf_counter() - t0, 1,
                                         type(exc).__name__))
            raise
        latency = time.perf_counter() - t0
        rec = CallRecord(self.name, prompt, json_mode, self._counter.count("\n".join(m["content"] for m in messages)),
                         self._counter.count(text), latency)
        record_call(self, rec)
        return text, rec

    def complete(self, messages: Messages, *, json_mode: bool = False, max_tokens: int | None = None,
                 prompt: str | None = None) -> str:
        return self.complete_with_record(messages, json_mode=json_mode, max_tokens=max_tokens, prompt=prompt)[0]

    def to_langchain(self):
        return _fake_langchain_class()(fake=self)

    def close(self) -> None:
        pass


@functools.cache
def _fake_langchain_class():
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    roles = {"human": "user", "ai": "assistant", "system": "system"}

    class FakeLangChainChat(BaseChatModel):
        """LangChain view of a FakeChatModel; prompt ref from ``.bind(prompt=...)`` or run metadata "prompt"."""

        fake: Any

        @property
        def _llm_type(self) -> str:
            return "ragreports-fake"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            meta = (run_manager.metadata if run_manager is not None else None) or {}
            dicts = [{"role": roles.get(m.type, "user"),
                      "content": m.content if isinstance(m.content, str) else m.text} for m in messages]
            text, rec = self.fake.complete_with_record(dicts, json_mode=bool(kwargs.get("json_mode")),
                                                       max_tokens=kwargs.get("max_tokens"),
                                                       prompt=kwargs.get("prompt") or meta.get("prompt"))
            pt, ct = rec.prompt_tokens or 0, rec.completion_tokens or 0
            msg = AIMessage(content=text, usage_metadata={"input_tokens": pt, "output_tokens": ct,
                                                          "total_tokens": pt + ct})
            return ChatResult(generations=[ChatGeneration(message=msg)])

    return FakeLangChainChat
