"""Chat-model providers behind one small protocol, chosen by a string; structured output with bounded re-asks.

This module is the shared contract: the :class:`ChatModel` protocol, :class:`CallRecord` usage records,
provider selection, structured output, prompt-context helpers and secret redaction. The providers live in
:mod:`ragreports.llm_fake` (the deterministic fake) and :mod:`ragreports.llm_openai` (OpenAI-compatible servers and
local GGUF); their public names are re-exported here lazily (``from ragreports.llm import FakeChatModel`` works and
``import ragreports.llm`` loads neither provider module nor any SDK).

Providers (``get_chat_model(settings, spec=None)``; ``spec`` defaults to ``settings.llm``; SDKs imported lazily):

- ``none``          -> ``None`` (the extractive engines need no model).
- ``fake``          -> :class:`~ragreports.llm_fake.FakeChatModel`, deterministic and offline, registered like the
  real providers (handlers, echo-extractive default: see :mod:`ragreports.llm_fake`).
- ``openai:MODEL``  -> :class:`~ragreports.llm_openai.OpenAIChatModel` (official ``openai`` client) against OpenAI or
  any OpenAI-compatible server at ``settings.llm_base_url`` (RAGREPORTS_LLM_BASE_URL / OPENAI_BASE_URL). With a base
  URL and no key a placeholder key is sent (local servers need none); with neither -> ConfigError.
- ``gguf:PATH``     -> starts an in-process llama.cpp OpenAI-compatible server (PyPI ``xllamacpp``, the optional
  extra ``pip install 'ragreports[gguf]'``) on 127.0.0.1 at a free port, waits until healthy, and talks to it with
  the same ``OpenAIChatModel``. ``model.close()`` (or ``with model:`` or interpreter exit) stops the server.

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
  (``settings.llm_context_tokens``), the last one cut at a sentence boundary; a budget <= 0 keeps nothing.
- ``format_passages(passages)``: render them for a prompt's ``{passages}`` variable as numbered blocks
  ``<passage id="1">\\n...\\n</passage>`` -- the format the fake reads back (``parse_passages``).
- ``complete_structured(model, messages, Schema, reasks=settings.llm_reasks, prompt=p.ref)``: asks in JSON mode
  with the schema appended to the system message (``prompts/json_repair.yaml``), extracts the JSON object
  (tolerates ``` fences, prose, <think> blocks), validates with pydantic, re-asks with the validation error at
  most ``reasks`` times, then raises ``StructuredOutputError`` carrying ``attempts`` and ``last_output``.

Faults (retries, backoff, error messages) are described in :mod:`ragreports.llm_openai`. The API key never appears
in logs, errors, reprs or ``calls`` (:func:`redact`). All provider modules log to the ``ragreports.llm`` logger.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from ragreports.errors import ConfigError, StructuredOutputError

if TYPE_CHECKING:  # the providers, re-exported lazily by __getattr__ at the bottom
    from ragreports.llm_fake import FakeChatModel, FakeRequest, Handler, fake_default
    from ragreports.llm_openai import GGUFServer, OpenAIChatModel

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


def record_call(model: Any, rec: CallRecord) -> None:
    """Append ``rec`` to ``model.calls`` and log it (DEBUG, logger ``ragreports.llm``); every provider calls this."""
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


# -- text helpers -------------------------------------------------------------------------------------------
_SENTENCE = re.compile(r"[^。！？!?；;\n]*(?:[。！？!?；;]+[”’\"」』）)]*|\n+)|[^。！？!?；;\n]+$")
_PASSAGE = re.compile(r'<passage id="(\d+)">\n(.*?)\n</passage>', re.S)


def split_sentences(text: str) -> list[str]:
    """Sentence pieces (ending in 。！？!?；; or a newline) whose concatenation is ``text``."""
    return [m.group(0) for m in _SENTENCE.finditer(text) if m.group(0)]


def first_sentence(text: str) -> str:
    """The first non-blank sentence of ``text``, stripped ("" if there is none)."""
    for s in split_sentences(text):
        if s.strip():
            return s.strip()
    return ""


def format_passages(passages: Sequence[str]) -> str:
    """Render passages for a prompt: ``<passage id="N">`` blocks, numbered from 1 (the fake parses them back)."""
    return "\n\n".join(f'<passage id="{i}">\n{p}\n</passage>' for i, p in enumerate(passages, 1))


def parse_passages(text: str) -> list[str]:
    """The passage texts of the ``format_passages`` blocks in ``text``, in order."""
    return [m.group(2) for m in _PASSAGE.finditer(text)]


def _count_fn(counter: Any) -> Callable[[str], int]:
    return counter.count if hasattr(counter, "count") else counter


def pack_passages(passages: Sequence[str], budget_tokens: int, counter: Any) -> list[str]:
    """Passages in order while they fit ``budget_tokens`` (counted with ``counter``, a TokenCounter or callable).

    The contract (``out = pack_passages(ps, budget, counter)``):

    - ``budget <= 0`` keeps nothing: ``[]``, even for empty passages.
    - ``out[i]`` is a prefix of ``ps[i]`` (callers zip ``out`` with their sources), so quotes stay verbatim; every
      kept passage but the last is whole, and the counts of the kept texts sum to at most ``budget``.
    - The first passage that does not fit is cut at the last sentence boundary that fits, and packing stops. If
      nothing with text has been kept yet and not even its first sentence fits, it is cut to the longest character
      prefix that fits instead (a first passage too long is cut, not dropped). Passages that fit are kept whole,
      empty ones included (they cost nothing).

    The budget covers the passage text only: leave headroom for the template and ``format_passages`` tags.
    """
    if budget_tokens <= 0:
        return []
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
        if not cut and not any(k.strip() for k in out):
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
    from ragreports.config import default_prompts_dir

    repair = _repair_prompt(str(prompts_dir or default_prompts_dir()))
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


# -- selection ----------------------------------------------------------------------------------------------
def _secret(settings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key else None


def _make_fake(settings, arg: str) -> FakeChatModel:
    from ragreports import llm_fake

    return llm_fake.FakeChatModel(encoding=settings.tokenizer)


def _make_openai(settings, arg: str) -> OpenAIChatModel:
    from ragreports import llm_openai

    return llm_openai.OpenAIChatModel(arg, base_url=settings.llm_base_url, api_key=_secret(settings),
                                      timeout=settings.llm_timeout, max_retries=settings.llm_max_retries,
                                      default_max_tokens=settings.llm_max_tokens)


def _make_gguf(settings, arg: str) -> OpenAIChatModel:
    from ragreports import llm_openai

    server = llm_openai.GGUFServer(arg, n_ctx=max(4096, settings.llm_context_tokens + 2048)).start()
    model = llm_openai.OpenAIChatModel(server.path.stem, base_url=server.base_url, api_key=None,
                                       name=f"gguf:{arg}", timeout=settings.llm_timeout,
                                       max_retries=settings.llm_max_retries, temperature=0.0,
                                       default_max_tokens=settings.llm_max_tokens or 2048)
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


# -- lazy re-exports of the providers ------------------------------------------------------------------------------
# The provider modules import this one at their top, so this one imports them only on first use (PEP 562): no
# import cycle whichever module is imported first, and ``import ragreports.llm`` stays cheap.
_LAZY = {
    "FakeChatModel": "ragreports.llm_fake",
    "FakeRequest": "ragreports.llm_fake",
    "Handler": "ragreports.llm_fake",
    "fake_default": "ragreports.llm_fake",
    "OpenAIChatModel": "ragreports.llm_openai",
    "GGUFServer": "ragreports.llm_openai",
}

__all__ = [
    "MAX_CALLS_KEPT", "NO_KEY", "PROVIDERS", "SPEC_FORMS", "CallRecord", "ChatModel", "Messages", "complete_structured",
    "extract_json", "first_sentence", "format_passages", "get_chat_model", "pack_passages", "parse_passages",
    "record_call", "redact", "schema_json", "split_sentences",
    # lazy (see _LAZY)
    "FakeChatModel", "FakeRequest", "Handler", "fake_default", "GGUFServer", "OpenAIChatModel",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
