"""Traces of model calls, fed by a LangChain callback handler: one :class:`CallRecord` per call of a chat model.

Every stage invokes its chain with ``model.config(prompt=...)`` (:class:`ragreports.llm.base.ChatModel`), which
attaches the handler of the model's :class:`Trace`; the handler reads what LangChain reports about each chat-model
run (start, end with usage metadata, error) and adds a record::

    {"ts": "2025-01-01T12:00:00+00:00", "model": "openai:gpt-4o-mini", "provider": "openai",
     "prompt": "answer@2", "attempt": 1, "input_tokens": 812, "output_tokens": 64, "latency_s": 1.92,
     "outcome": "ok", "error": null}

``Trace(path)`` also appends each record to ``path`` as one JSON line (``--trace FILE``); with ``content=True``
(``--trace-content``) a record carries the messages sent and the reply too. Records never hold an API key: the
model's secrets are masked in errors and content. ``totals()`` sums calls, tokens and model time (``eval``).
LangSmith (or any LangChain tracer) sees the same runs through its own environment variables.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ragreports.errors import ConfigError

log = logging.getLogger("ragreports.llm")

MAX_CALLS_KEPT = 200


@dataclasses.dataclass(frozen=True)
class CallRecord:
    """One model call (the SDK's own retries included). Message text only when the trace keeps content."""

    model: str
    prompt: str | None
    input_tokens: int | None
    output_tokens: int | None
    latency_s: float
    outcome: str = "ok"  # "ok" | "error"
    error: str | None = None
    attempt: int | None = None  # 1, then 2.. for the re-asks of a structured reply
    provider: str | None = None
    ts: str = ""
    messages: tuple[dict[str, str], ...] | None = None
    reply: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("messages", "reply")}
        if self.messages is not None:
            out["messages"] = [dict(m) for m in self.messages]
            out["reply"] = self.reply
        return out


class Trace:
    """The records of one model's calls (the last ``keep``), running totals, and the JSONL file if any."""

    def __init__(self, path: str | Path | None = None, *, content: bool = False, keep: int = MAX_CALLS_KEPT,
                 redact: Callable[[str], str] = str):
        self.path = Path(path).expanduser() if path else None
        if self.path is not None and not self.path.parent.is_dir():
            raise ConfigError(f"--trace {self.path}: the folder {self.path.parent} does not exist; create it first")
        self.content = content
        self.redact = redact
        self.records: collections.deque[CallRecord] = collections.deque(maxlen=keep)
        self._totals = {"calls": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "latency_s": 0.0}
        self._lock = threading.Lock()

    def add(self, rec: CallRecord) -> None:
        with self._lock:
            self.records.append(rec)
            t = self._totals
            t["calls"] += 1
            t["errors"] += rec.outcome != "ok"
            t["input_tokens"] += rec.input_tokens or 0
            t["output_tokens"] += rec.output_tokens or 0
            t["latency_s"] += rec.latency_s
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")
        log.debug("llm call model=%s prompt=%s attempt=%s tokens=%s+%s latency=%.2fs %s%s", rec.model, rec.prompt,
                  rec.attempt, rec.input_tokens, rec.output_tokens, rec.latency_s, rec.outcome,
                  f" error={rec.error}" if rec.error else "")

    def totals(self) -> dict[str, int | float]:
        """Calls, failed calls, input and output tokens and seconds spent in the model, over every call so far."""
        with self._lock:
            return {**self._totals, "latency_s": round(self._totals["latency_s"], 3)}

    def handler(self, model: str):
        """A LangChain callback handler that adds a record to this trace per chat-model call."""
        return _handler_class()(self, model)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content or [])


def _roles(messages: Sequence[Any]) -> tuple[dict[str, str], ...]:
    roles = {"human": "user", "ai": "assistant", "system": "system"}
    return tuple({"role": roles.get(m.type, m.type), "content": _text(m.content)} for m in messages)


@functools.cache
def _handler_class():
    from langchain_core.callbacks import BaseCallbackHandler

    class TraceHandler(BaseCallbackHandler):
        """Start, end (usage metadata) and error of every chat-model run -> a CallRecord in the trace."""

        raise_error = False

        def __init__(self, trace: Trace, model: str):
            self.trace, self.model = trace, model
            self.runs: dict[Any, tuple[float, dict, tuple[dict[str, str], ...] | None]] = {}

        def on_chat_model_start(self, serialized, messages, *, run_id, metadata=None, **kwargs) -> None:
            meta = dict(metadata or {})
            sent = _roles(messages[0]) if self.trace.content and messages else None
            self.runs[run_id] = (time.perf_counter(), meta, sent)

        def _record(self, run_id, **fields) -> None:
            t0, meta, sent = self.runs.pop(run_id, (time.perf_counter(), {}, None))
            ts = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            redact = self.trace.redact
            self.trace.add(CallRecord(
                model=self.model, prompt=meta.get("prompt"), attempt=meta.get("attempt"),
                provider=meta.get("ls_provider"), latency_s=round(time.perf_counter() - t0, 4), ts=ts,
                messages=None if sent is None else tuple({**m, "content": redact(m["content"])} for m in sent),
                **{k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}))

        def on_llm_end(self, response, *, run_id, **kwargs) -> None:
            if run_id not in self.runs:
                return
            gen = response.generations[0][0] if response.generations and response.generations[0] else None
            msg = getattr(gen, "message", None)
            usage = getattr(msg, "usage_metadata", None) or {}
            if not usage:  # providers that only fill llm_output
                tu = (response.llm_output or {}).get("token_usage") or {}
                usage = {"input_tokens": tu.get("prompt_tokens"), "output_tokens": tu.get("completion_tokens")}
            reply = _text(msg.content) if msg is not None else (gen.text if gen is not None else "")
            self._record(run_id, input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
                         reply=reply if self.trace.content else None)

        def on_llm_error(self, error, *, run_id, **kwargs) -> None:
            if run_id not in self.runs:
                return
            completion = getattr(error, "completion", None)  # a reply the SDK refused to parse (cut at max_tokens)
            usage = getattr(completion, "usage", None)
            choices = getattr(completion, "choices", None) or []
            reply = (choices[0].message.content or "") if choices and self.trace.content else None
            self._record(run_id, input_tokens=getattr(usage, "prompt_tokens", None),
                         output_tokens=getattr(usage, "completion_tokens", None), outcome="error", reply=reply,
                         error=f"{type(error).__name__}: {error}"[:300].replace("\n", " "))

    return TraceHandler
