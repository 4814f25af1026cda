"""The chat-model contract every stage codes against: the :class:`ChatModel` protocol, usage records and
secret redaction.

Providers (:mod:`ragreports.llm.fake`, :mod:`ragreports.llm.openai`) implement the protocol; they are chosen by a
string in :mod:`ragreports.providers`. The protocol::

    model.name                                   # "fake", "openai:gpt-4o-mini", "gguf:/path/model.gguf"
    model.complete(messages, *, json_mode=False, max_tokens=None, prompt=None) -> str
    model.to_langchain()                         # a LangChain BaseChatModel: prompt | model | StrOutputParser()
    model.calls                                  # deque of the last CallRecord(s): tokens, latency, prompt ref

``messages`` are ``[{"role": "system"|"user"|"assistant", "content": str}]`` (``PromptFile.messages()`` makes them).
``prompt`` is the ref of the prompt file that made the messages (``PromptFile.ref``, e.g. ``"answer@1"``): it is
recorded in ``calls`` and the DEBUG log of every call, and the fake uses it to choose a handler. Pass it always.

The API key never appears in logs, errors, reprs or ``calls`` (:func:`redact`). All provider modules log to the
``ragreports.llm`` logger.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ragreports import redaction

log = logging.getLogger("ragreports.llm")

Messages = list[dict[str, str]]
MAX_CALLS_KEPT = 200
NO_KEY = "sk-no-key"


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
def redact(text: str, secrets: Sequence[str | None] = ()) -> str:
    """Text with the given secrets and anything key-like masked: the one redaction of
    :func:`ragreports.redaction.redact` (registered secrets, ``sk-...``, ``Bearer ...``, URL user-info)."""
    return redaction.redact(text, secrets)

