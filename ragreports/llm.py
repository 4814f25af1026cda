"""Chat-model providers behind one small protocol, chosen by a string; structured output with bounded re-asks.

Providers (``get_chat_model(settings, spec=None)``; ``spec`` defaults to ``settings.llm``; SDKs imported lazily):

- ``none``          -> ``None`` (the extractive engines need no model).
- ``fake``          -> :class:`FakeChatModel`, deterministic and offline, registered like the real providers.
- ``openai:MODEL``  -> :class:`OpenAIChatModel` (official ``openai`` client) against OpenAI or any OpenAI-compatible
  server at ``settings.llm_base_url`` (RAGREPORTS_LLM_BASE_URL / OPENAI_BASE_URL). With a base URL and no key a
  placeholder key is sent (local servers need none); with neither -> ConfigError.
- ``gguf:PATH``     -> starts an in-process llama.cpp OpenAI-compatible server (PyPI ``xllamacpp``, the optional
  extra ``pip install 'ragreports[gguf]'``) on 127.0.0.1 at a free port, waits until healthy, and talks to it with
  the same :class:`OpenAIChatModel`. ``model.close()`` (or ``with model:`` or interpreter exit) stops the server.

The protocol every stage codes against::

    model.name                                   # "fake", "openai:gpt-4o-mini", "gguf:/path/model.gguf"
    model.complete(messages, *, json_mode=False, max_tokens=None, prompt=None) -> str
    model.to_langchain()                         # a LangChain BaseChatModel: prompt | model | StrOutputParser()
    model.calls                                  # deque of the last CallRecord(s): tokens, latency, prompt ref

``messages`` are ``[{"role": "system"|"user"|"assistant", "content": str}]`` (``PromptFile.messages()`` makes them).
``prompt`` is the ref of the prompt file that made the messages (``PromptFile.ref``, e.g. ``"answer@1"``): it is
recorded in ``calls`` and the DEBUG log of every call, and the fake uses it to choose a handler. Pass it always.

Helpers for the LLM engines:

- ``pack_passages(passages, budget_tokens, counter)``: keep passages in order within a token budget
  (``settings.llm_context_tokens``), the last one cut at a sentence boundary.
- ``format_passages(passages)``: render them for a prompt's ``{passages}`` variable as numbered blocks
  ``<passage id="1">\\n...\\n</passage>`` -- the format the fake reads back.
- ``complete_structured(model, messages, Schema, reasks=settings.llm_reasks, prompt=p.ref)``: asks in JSON mode
  with the schema appended to the system message (``prompts/json_repair.yaml``), extracts the JSON object
  (tolerates ``` fences, prose, <think> blocks), validates with pydantic, re-asks with the validation error at
  most ``reasks`` times, then raises ``StructuredOutputError`` carrying ``attempts`` and ``last_output``.

Faults: each request has ``settings.llm_timeout``; 408/429/5xx and connection errors are retried up to
``settings.llm_max_retries`` times with exponential backoff and jitter (honouring Retry-After; ``model.sleep`` is
injectable); timeouts are not retried. Every failure ends in a ``ProviderError`` that names the URL and what to do.
The API key never appears in logs, errors, reprs or ``calls``.

The fake (``FakeChatModel``), exactly:

1. Scripted: ``FakeChatModel(responses=[...])`` returns the items in order (an Exception item is raised instead;
   running out raises ProviderError); ``FakeChatModel(responses=fn)`` returns ``fn(messages)``.
2. Otherwise, a handler registered for the prompt name decides: stages register one for their own prompt::

       from ragreports.llm import FakeChatModel, FakeRequest

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
3. Default, no handler -- "echo-extractive". Let S be the first sentence (stripped) of the first passage, or of
   the first user message when no user message holds ``<passage>`` blocks. Plain mode returns S. JSON mode
   returns an object built from the JSON Schema found in the messages (the one ``complete_structured`` appends):
   every string is S (cut to maxLength), integers/numbers their minimum or 0, booleans false, arrays hold
   max(1, minItems) such items, enums/consts their first value, optional (anyOf null) fields are filled too, all
   properties are present. With no schema, or one it can't fill (pattern, format, uniqueItems with >1 item,
   minLength > len(S)...), it returns ``{}``.
Token usage of the fake is counted with ``ragreports.tokens.TokenCounter``.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import email.utils
import functools
import json
import logging
import os
import random
import re
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, TypeVar, runtime_checkable

from pydantic import BaseModel, SecretStr, ValidationError

from ragreports.errors import ConfigError, ProviderError, StructuredOutputError

log = logging.getLogger("ragreports.llm")

Messages = list[dict[str, str]]
T = TypeVar("T", bound=BaseModel)
MAX_CALLS_KEPT = 200
NO_KEY = "sk-no-key"
SPEC_FORMS = "none, fake, openai:MODEL (e.g. openai:gpt-4o-mini), gguf:/path/to/model.gguf"


@runtime_checkable
class ChatModel(Protocol):
    name: str

    def complete(self, messages: Messages, *, json_mode: bool = False, max_tokens: int | None = None,
                 prompt: str | None = None) -> str: ...

    def to_langchain(self): ...


@dataclasses.dataclass(frozen=True)
class CallRecord:
    """Usage of one model call (all HTTP retries included). Never holds secrets or message text."""

    model: str
    prompt: str | None
    json_mode: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    attempts: int = 1
    error: str | None = None


def _record(model: Any, rec: CallRecord) -> None:
    model.calls.append(rec)
    log.debug("llm call model=%s prompt=%s json=%s tokens=%s+%s latency=%.2fs attempts=%d%s", rec.model,
              rec.prompt, rec.json_mode, rec.prompt_tokens, rec.completion_tokens, rec.latency_s, rec.attempts,
              f" error={rec.error}" if rec.error else "")


# -- secrets ----------------------------------------------------------------------------------------------
_KEYLIKE = re.compile(r"(sk-|Bearer\s+)[A-Za-z0-9_\-.]{6,}")


def redact(text: str, secrets: Sequence[str | None] = ()) -> str:
    """Text with the given secrets and anything key-like (``sk-...``, ``Bearer ...``) masked."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return _KEYLIKE.sub(lambda m: m.group(1) + "***", text)


def _display_url(url: str) -> str:
    """URL without user:password."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        parts = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
    return urllib.parse.urlunsplit(parts).rstrip("/")


# -- text helpers -------------------------------------------------------------------------------------------
_SENTENCE = re.compile(r"[^。！？!?；;\n]*(?:[。！？!?；;]+[”’\"」』）)]*|\n+)|[^。！？!?；;\n]+$")
_PASSAGE = re.compile(r'<passage id="(\d+)">\n(.*?)\n</passage>', re.S)


def split_sentences(text: str) -> list[str]:
    """Sentence pieces (ending in 。！？!?；; or a newline) whose concatenation is ``text``."""
    return [m.group(0) for m in _SENTENCE.finditer(text) if m.group(0)]


def first_sentence(text: str) -> str:
    for s in split_sentences(text):
        if s.strip():
            return s.strip()
    return ""


def format_passages(passages: Sequence[str]) -> str:
    """Render passages for a prompt: ``<passage id="N">`` blocks, numbered from 1 (the fake parses them back)."""
    return "\n\n".join(f'<passage id="{i}">\n{p}\n</passage>' for i, p in enumerate(passages, 1))


def parse_passages(text: str) -> list[str]:
    return [m.group(2) for m in _PASSAGE.finditer(text)]


def _count_fn(counter: Any) -> Callable[[str], int]:
    return counter.count if hasattr(counter, "count") else counter


def pack_passages(passages: Sequence[str], budget_tokens: int, counter: Any) -> list[str]:
    """Passages in order while they fit ``budget_tokens`` (counted with ``counter``, a TokenCounter or callable).

    The first passage that does not fit is cut at the last sentence boundary that fits, and packing stops. Every
    kept text is a prefix of its passage, so quotes from it stay verbatim. If not even the first sentence of the
    first passage fits, that passage is cut to the longest character prefix that fits. The budget covers the
    passage text only: leave headroom for the template and ``format_passages`` tags.
    """
    count = _count_fn(counter)
    out: list[str] = []
    used = 0
    for p in passages:
        n = count(p)
        if used + n <= budget_tokens:
            out.append(p)
            used += n
            continue
        room = budget_tokens - used
        cut = _cut(p, room, count, [m.end() for m in _SENTENCE.finditer(p) if m.group(0)])
        if not cut and not out:
            cut = _cut(p, room, count, list(range(1, len(p) + 1)))
        if cut:
            out.append(cut)
        break
    return out


def _cut(text: str, room: int, count: Callable[[str], int], ends: list[int]) -> str:
    """Longest ``text[:e].rstrip()`` over the candidate ends that fits ``room`` tokens (binary search)."""
    lo, hi, best = 0, len(ends) - 1, ""
    while lo <= hi:
        mid = (lo + hi) // 2
        cand = text[: ends[mid]].rstrip()
        if cand and count(cand) <= room:
            best, lo = cand, mid + 1
        else:
            hi = mid - 1
    return best


# -- structured output ---------------------------------------------------------------------------------------
_FENCE = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)```", re.S)
_THINK = re.compile(r"<think>.*?</think>", re.S)


def extract_json(text: str) -> dict:
    """The first JSON object in a model reply: inside ``` fences first, then anywhere; prose is ignored."""
    cleaned = _THINK.sub("", text)
    dec = json.JSONDecoder()
    for chunk in [m.group(1) for m in _FENCE.finditer(cleaned)] + [cleaned]:
        for i, ch in enumerate(chunk):
            if ch != "{":
                continue
            try:
                obj, _ = dec.raw_decode(chunk, i)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    raise ValueError("the reply holds no JSON object" + (" (it looks cut off)" if "{" in cleaned else ""))


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errs = exc.errors(include_url=False)
        parts = [f"{'.'.join(str(x) for x in e['loc']) or '(root)'}: {e['msg']}" for e in errs[:8]]
        return "; ".join(parts) + (f"; and {len(errs) - 8} more" if len(errs) > 8 else "")
    return str(exc)


@functools.lru_cache(maxsize=8)
def _repair_prompt(prompts_dir: str):
    from ragreports.prompts import load_prompt

    return load_prompt("json_repair", Path(prompts_dir))


def schema_json(schema: type[BaseModel]) -> str:
    return json.dumps(schema.model_json_schema(), ensure_ascii=False, separators=(",", ":"))


def complete_structured(model: ChatModel, messages: Messages, schema: type[T], *, reasks: int = 2,
                        prompt: str | None = None, max_tokens: int | None = None,
                        prompts_dir: Path | None = None) -> T:
    """Ask for JSON matching ``schema``; validate; re-ask at most ``reasks`` times; else StructuredOutputError.

    The schema instruction (``json_repair`` prompt, ``system`` part, from ``prompts_dir`` or the project's
    prompts/) is appended to the first system message; each re-ask appends the bad reply and the correction
    (``user`` part) with the validation error. Provider failures propagate as ProviderError.
    """
    if reasks < 0:
        raise ConfigError(f"reasks must be >= 0, got {reasks}")
    from ragreports.config import REPO_ROOT

    repair = _repair_prompt(str(prompts_dir or REPO_ROOT / "prompts"))
    hint = repair.system.format(schema=schema_json(schema)).strip()
    msgs = [dict(m) for m in messages]
    if msgs and msgs[0].get("role") == "system":
        msgs[0]["content"] = msgs[0]["content"].rstrip() + "\n\n" + hint
    else:
        msgs.insert(0, {"role": "system", "content": hint})
    kw = {"prompt": prompt} if prompt else {}
    last, error = "", ""
    for attempt in range(1, reasks + 2):
        last = model.complete(msgs, json_mode=True, max_tokens=max_tokens, **kw)
        try:
            return schema.model_validate(extract_json(last))
        except (ValueError, ValidationError) as exc:
            error = _describe(exc)
        log.info("structured reply from %s invalid (attempt %d/%d, prompt %s): %s", model.name, attempt,
                 reasks + 1, prompt, error)
        msgs = msgs + [{"role": "assistant", "content": last},
                       {"role": "user", "content": repair.user.format(error=error).strip()}]
    what = f" for prompt {prompt}" if prompt else ""
    raise StructuredOutputError(f"{model.name} gave no valid {schema.__name__} JSON{what}: {error}", reasks + 1, last)


# -- the fake --------------------------------------------------------------------------------------------------
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
        cls._registry.pop(prompt_name, None)

    @functools.cached_property
    def _counter(self):
        from ragreports.tokens import TokenCounter

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
            _record(self, CallRecord(self.name, prompt, json_mode, None, None, time.perf_counter() - t0, 1,
                                     type(exc).__name__))
            raise
        latency = time.perf_counter() - t0
        rec = CallRecord(self.name, prompt, json_mode, self._counter.count("\n".join(m["content"] for m in messages)),
                         self._counter.count(text), latency)
        _record(self, rec)
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


# -- OpenAI-compatible ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Failure:
    kind: str  # "timeout" | "unreachable" | "status" | "other"
    retryable: bool
    status: int | None = None
    detail: str = ""
    retry_after: float | None = None


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, when.timestamp() - time.time()) if when else None


class OpenAIChatModel:
    """OpenAI or an OpenAI-compatible server through the official client, with our own retries (testable)."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | SecretStr | None = None,
                 timeout: float = 60.0, max_retries: int = 2, name: str | None = None,
                 temperature: float | None = None, default_max_tokens: int | None = None,
                 backoff_base: float = 0.5, backoff_max: float = 8.0, max_retry_after: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None):
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not key and not base_url:
            raise ConfigError("openai:MODEL needs OPENAI_API_KEY (or RAGREPORTS_API_KEY) for OpenAI, or "
                              "RAGREPORTS_LLM_BASE_URL (or OPENAI_BASE_URL) for an OpenAI-compatible server")
        self.model = model
        self.name = name or f"openai:{model}"
        self.base_url = base_url.rstrip("/") if base_url else None
        self._key = SecretStr(key or NO_KEY)
        self.timeout, self.max_retries = float(timeout), int(max_retries)
        self.temperature, self.default_max_tokens = temperature, default_max_tokens
        self.backoff_base, self.backoff_max, self.max_retry_after = backoff_base, backoff_max, max_retry_after
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.calls: collections.deque[CallRecord] = collections.deque(maxlen=MAX_CALLS_KEPT)
        self.server: GGUFServer | None = None  # set when this model owns a local llama.cpp server
        self._client = None

    def __repr__(self) -> str:
        return f"OpenAIChatModel(name={self.name!r}, url={self.url!r})"

    @property
    def url(self) -> str:
        return _display_url(self.base_url or "https://api.openai.com/v1")

    def _c(self):
        if self._client is None:
            try:
                import openai
            except ImportError:
                raise ConfigError("the openai package is missing: pip install openai") from None
            self._client = openai.OpenAI(api_key=self._key.get_secret_value(), base_url=self.base_url,
                                         timeout=self.timeout, max_retries=0)
        return self._client

    def _redact(self, text: str) -> str:
        return redact(text, [self._key.get_secret_value()])

    def _classify(self, exc: Exception) -> _Failure:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return _Failure("timeout", False)
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__ or exc
            return _Failure("unreachable", True, detail=self._redact(f"{type(cause).__name__}: {cause}")[:200])
        if isinstance(exc, openai.APIStatusError):
            s = exc.status_code
            body = exc.body
            msg = body.get("message") or body.get("error") if isinstance(body, dict) else body
            if isinstance(msg, dict):
                msg = msg.get("message", msg)
            detail = self._redact(str(msg or exc.message))[:300]
            return _Failure("status", s in (408, 429) or s >= 500, s, detail, _retry_after(exc.response.headers))
        if isinstance(exc, openai.OpenAIError):
            return _Failure("other", False, detail=self._redact(f"{type(exc).__name__}: {exc}")[:300])
        raise exc

    def _message(self, f: _Failure, attempts: int) -> str:
        url, tries = self.url, f"after {attempts} attempt(s)"
        if f.kind == "timeout":
            return (f"the model server at {url} did not answer within {self.timeout:g}s (model {self.model!r}); "
                    "raise RAGREPORTS_LLM_TIMEOUT, send fewer passages, or use a faster model")
        if f.kind == "unreachable":
            return (f"cannot reach the model server at {url} {tries} ({f.detail}); check that the server is "
                    "running and that RAGREPORTS_LLM_BASE_URL (or OPENAI_BASE_URL) points at it")
        if f.kind == "other":
            return f"unexpected reply from the model server at {url} ({f.detail}); check the server"
        s, detail = f.status, f": {f.detail}" if f.detail else ""
        if s in (401, 403):
            return (f"authentication failed at {url} (HTTP {s}{detail}); set OPENAI_API_KEY (or RAGREPORTS_API_KEY) "
                    "to a valid key for this server")
        if s == 404:
            return (f"model {self.model!r} not found at {url} (HTTP 404{detail}); check the model name against the "
                    f"models the server serves (GET {url}/models) and that the base URL ends in /v1")
        if s == 429:
            return (f"rate limited by {url} (HTTP 429) {tries}; wait and retry, or raise "
                    "RAGREPORTS_LLM_MAX_RETRIES")
        if s >= 500:
            return f"the model server at {url} failed with HTTP {s} {tries}{detail}; check the server's logs"
        return (f"the model server at {url} rejected the request (HTTP {s}{detail}); check the model name, the "
                "prompt size against the model's context window, and the server's options")

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """Delay before retry number ``retry`` (0-based): in [d/2, d] for d = base*2**retry (capped), or Retry-After."""
        d = min(self.backoff_max, self.backoff_base * 2 ** retry)
        delay = d * (0.5 + 0.5 * self.rng.random())
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    def _request(self, messages: Messages, json_mode: bool, max_tokens: int | None):
        kw: dict[str, Any] = {"model": self.model,
                              "messages": [{"role": m["role"], "content": m["content"]} for m in messages]}
        if self.temperature is not None:
            kw["temperature"] = self.temperature
        mt = max_tokens or self.default_max_tokens
        if mt:  # OpenAI's newer models only take max_completion_tokens; compatible servers know max_tokens
            kw["max_tokens" if self.base_url else "max_completion_tokens"] = mt
        if json_mode:
            kw["response_format"] = {"type": "json_object"}
        return self._c().chat.completions.create(**kw)

    def complete(self, messages: Messages, *, json_mode: bool = False, max_tokens: int | None = None,
                 prompt: str | None = None) -> str:
        t0 = time.perf_counter()
        attempts, failure = 0, None
        while True:
            attempts += 1
            try:
                resp = self._request(messages, json_mode, max_tokens)
                failure = None
            except Exception as exc:  # classified below, outside the except block: no chained SDK exception
                failure = self._classify(exc)
            if failure is None or not failure.retryable or attempts > self.max_retries:
                break
            delay = self.backoff(attempts - 1, failure.retry_after)
            log.warning("model request to %s failed (%s); retry %d/%d in %.1fs", self.url,
                        failure.status or failure.kind, attempts, self.max_retries, delay)
            self.sleep(delay)
        latency = time.perf_counter() - t0
        if failure is not None:
            message = self._redact(self._message(failure, attempts))
            _record(self, CallRecord(self.name, prompt, json_mode, None, None, latency, attempts,
                                     failure.status and f"HTTP {failure.status}" or failure.kind))
            raise ProviderError(message)
        choice = resp.choices[0] if resp.choices else None
        text = (choice.message.content if choice is not None else None) or ""
        if choice is not None and choice.finish_reason == "length":
            log.warning("reply from %s was cut at max_tokens (prompt %s)", self.name, prompt)
        usage = resp.usage
        _record(self, CallRecord(self.name, prompt, json_mode, usage.prompt_tokens if usage else None,
                                 usage.completion_tokens if usage else None, latency, attempts))
        return text

    def to_langchain(self):
        from langchain_openai import ChatOpenAI

        kw: dict[str, Any] = {"model": self.model, "base_url": self.base_url, "api_key": self._key,
                              "timeout": self.timeout, "max_retries": self.max_retries}
        if self.temperature is not None:
            kw["temperature"] = self.temperature
        return ChatOpenAI(**kw)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.server is not None:
            self.server.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- local GGUF through llama.cpp (xllamacpp) ---------------------------------------------------------------
def _default_threads() -> int:
    """Half the usable CPUs: llama.cpp wants physical cores, and oversubscribed OpenMP threads spin (measured 4x
    slower with 2 threads than 1 on a busy 2-vCPU machine)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return max(1, n // 2)


class GGUFServer:
    """An in-process llama.cpp OpenAI-compatible server (xllamacpp) on 127.0.0.1 at a free port."""

    def __init__(self, path: str | Path, *, n_ctx: int = 4096, threads: int | None = None):
        self.path = Path(path).expanduser()
        self.n_ctx, self.threads = n_ctx, threads
        self.base_url: str | None = None
        self.startup_s: float | None = None
        self._server = None

    def start(self, timeout: float = 120.0) -> "GGUFServer":
        if not self.path.is_file():
            raise ConfigError(f"GGUF model file {self.path} not found; give gguf:/path/to/model.gguf")
        with open(self.path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ConfigError(f"{self.path} is not a GGUF model file")
        try:
            import xllamacpp
        except ImportError:
            raise ConfigError("gguf:PATH needs the optional llama.cpp bindings: pip install 'ragreports[gguf]' "
                              "(or pip install xllamacpp)") from None
        p = xllamacpp.CommonParams()
        p.model.path = str(self.path)
        p.model_alias = {self.path.stem}
        p.n_ctx = self.n_ctx
        p.port = 0  # the OS picks a free port; listening_address tells which
        p.hostnames = ["127.0.0.1"]
        p.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else -1
        p.warmup = False
        p.cpuparams.n_threads = p.cpuparams_batch.n_threads = self.threads or _default_threads()
        t0 = time.perf_counter()
        try:
            self._server = xllamacpp.Server(p)
        except Exception as exc:
            raise ProviderError(f"llama.cpp could not load {self.path} ({exc}); check it is a chat model GGUF "
                                "that this xllamacpp version supports") from None
        root = self._server.listening_address.rstrip("/")
        self.base_url = root + "/v1"
        atexit.register(self.close)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(root + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise ProviderError(f"the llama.cpp server for {self.path} did not become healthy in {timeout:g}s")
            time.sleep(0.1)
        self.startup_s = time.perf_counter() - t0
        log.info("llama.cpp server for %s ready at %s in %.2fs", self.path.name, self.base_url, self.startup_s)
        return self

    @property
    def running(self) -> bool:
        return self._server is not None

    def close(self) -> None:
        """Stop the server (idempotent): dropping the last reference runs llama.cpp's shutdown."""
        server, self._server = self._server, None
        if server is not None:
            atexit.unregister(self.close)
            del server

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- selection ----------------------------------------------------------------------------------------------
def _secret(settings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key else None


def _make_fake(settings, arg: str) -> FakeChatModel:
    return FakeChatModel(encoding=settings.tokenizer)


def _make_openai(settings, arg: str) -> OpenAIChatModel:
    return OpenAIChatModel(arg, base_url=settings.llm_base_url, api_key=_secret(settings),
                           timeout=settings.llm_timeout, max_retries=settings.llm_max_retries)


def _make_gguf(settings, arg: str) -> OpenAIChatModel:
    server = GGUFServer(arg, n_ctx=max(4096, settings.llm_context_tokens + 2048)).start()
    model = OpenAIChatModel(server.path.stem, base_url=server.base_url, api_key=None, name=f"gguf:{arg}",
                            timeout=settings.llm_timeout, max_retries=settings.llm_max_retries,
                            temperature=0.0, default_max_tokens=2048)
    model.server = server
    return model


PROVIDERS: dict[str, tuple[bool, Callable[[Any, str], ChatModel]]] = {
    # prefix: (takes an argument after ":", factory(settings, argument))
    "fake": (False, _make_fake),
    "openai": (True, _make_openai),
    "gguf": (True, _make_gguf),
}


def get_chat_model(settings, spec: str | None = None) -> ChatModel | None:
    """The chat model named by ``spec`` (default ``settings.llm``), or None for ``none``."""
    spec = (settings.llm if spec is None else spec).strip()
    if spec in ("", "none"):
        return None
    prefix, _, arg = spec.partition(":")
    entry = PROVIDERS.get(prefix)
    if entry is None or entry[0] != bool(arg.strip()):
        raise ConfigError(f"unknown chat model {spec!r}; use one of: {SPEC_FORMS}")
    return entry[1](settings, arg.strip())
