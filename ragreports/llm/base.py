"""The chat-model handle every stage codes against, one-line provider errors and secret redaction.

A :class:`ChatModel` is any LangChain chat model (a ``BaseChatModel``) with what ragreports needs around it. It is
built from a string by :func:`ragreports.providers.get_chat_model` (``fake``, ``gguf:PATH``, or any
``PROVIDER:MODEL`` that LangChain's ``init_chat_model`` knows), or from a model of your own::

    model = ChatModel("ollama:qwen2.5:7b", ChatOllama(model="qwen2.5:7b"))
    model.chat                  # the LangChain chat model the stages' chains call
    model.structured            # "json_schema" | "json_mode": how with_structured_output steers it
    model.trace                 # Trace: one CallRecord per model call (tokens, latency, prompt ref, outcome)
    model.config("answer@2")    # the RunnableConfig a stage invokes its chain with (trace handler, prompt ref)
    model.close()               # stops a local server the model owns (gguf)

Retries and timeouts are the SDK's (``max_retries``/``timeout`` given to the LangChain model by the provider). A
failure of the provider ends as one :class:`ProviderError` line (:func:`provider_error`) that names the server and
what to do. The API key never appears in logs, errors, reprs or traces (:func:`redact`; every ``SecretStr`` field
of the LangChain model is a secret).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr

from ragreports import redaction
from ragreports.errors import ConfigError, ProviderError, RagReportsError
from ragreports.llm.trace import Trace

NO_KEY = "sk-no-key"
STRUCTURED_METHODS = ("json_schema", "json_mode")
# exceptions raised by these packages are provider failures (everything else is a bug and propagates)
PROVIDER_PACKAGES = {"openai", "httpx", "httpcore", "httpx2", "anthropic", "ollama", "requests", "urllib3",
                     "aiohttp", "groq", "mistralai", "google"}


# -- secrets ----------------------------------------------------------------------------------------------
def redact(text: str, secrets: Sequence[str | None] = ()) -> str:
    """Text with the given secrets and anything key-like masked: the one redaction of
    :func:`ragreports.redaction.redact` (registered secrets, ``sk-...``, ``Bearer ...``, URL user-info)."""
    return redaction.redact(text, secrets)


def display_url(url: str | None) -> str | None:
    """URL without user:password (:func:`ragreports.redaction.display_url`) and trailing slash."""
    return redaction.display_url(url).rstrip("/") if url else None


# -- the handle -------------------------------------------------------------------------------------------
@dataclasses.dataclass(eq=False)
class ChatModel:
    """A LangChain chat model chosen by a string, with its trace, its secrets and how to ask it for JSON."""

    name: str
    chat: Any  # langchain_core.language_models.BaseChatModel
    structured: str = "json_schema"
    url: str | None = None  # shown in errors (never with credentials)
    max_retries: int | None = None  # the SDK's, for "after N attempt(s)"
    timeout: float | None = None
    secrets: tuple[str, ...] = ()
    trace: Trace = dataclasses.field(default_factory=Trace)
    server: Any = None  # a local server this model owns (gguf: GGUFServer), stopped by close()

    def __post_init__(self) -> None:
        if self.structured not in STRUCTURED_METHODS:
            raise ConfigError(f"unknown structured-output method {self.structured!r}; use json_schema or json_mode")
        found = [v.get_secret_value() for v in vars(self.chat).values() if isinstance(v, SecretStr)]
        self.secrets = tuple(s for s in {*self.secrets, *found} if s and s != NO_KEY)
        self.url = display_url(self.url)
        self.trace.redact = self.redact

    def __repr__(self) -> str:
        return f"ChatModel(name={self.name!r}, url={self.url!r}, structured={self.structured!r})"

    @property
    def calls(self) -> list:
        """The trace's last records (CallRecord), oldest first."""
        return list(self.trace.records)

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def config(self, prompt: str | None = None, callbacks: Sequence[Any] = (), **metadata: Any) -> dict[str, Any]:
        """The RunnableConfig for one chain run: this model's trace handler (plus ``callbacks``) and the prompt
        ref in the run metadata, where the trace and the fake read it."""
        meta = {"prompt": prompt, **metadata} if prompt else dict(metadata)
        return {"callbacks": [self.trace.handler(self.name), *callbacks], "metadata": meta,
                "run_name": f"ragreports:{prompt.split('@')[0]}" if prompt else "ragreports"}

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- failures ---------------------------------------------------------------------------------------------
def is_provider_failure(exc: BaseException) -> bool:
    """True for what a provider SDK raises (LangChain's ModelError family, HTTP clients, provider SDKs)."""
    from langchain_core.exceptions import ModelError

    return isinstance(exc, ModelError | ConnectionError | TimeoutError) or \
        type(exc).__module__.split(".")[0] in PROVIDER_PACKAGES


def _detail(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    msg = body.get("message") or body.get("error") if isinstance(body, dict) else None
    if isinstance(msg, dict):
        msg = msg.get("message", msg)
    text = str(msg or getattr(exc, "message", None) or exc)
    return re.sub(r"\s+", " ", text).strip()


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while (nxt := exc.__cause__ or exc.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        exc = nxt
    return exc


def provider_error(exc: BaseException, model: ChatModel) -> RagReportsError:
    """One clear, redacted line for a provider failure: what failed, where, and what to do."""
    if isinstance(exc, RagReportsError):
        return exc
    from langchain_core import exceptions as lce

    where = model.url or f"the {model.name.split(':', 1)[0]} API"
    status = getattr(exc, "status_code", None)
    detail = model.redact(_detail(exc))[:300]
    tries = f" after {model.max_retries + 1} attempt(s)" if model.max_retries is not None else ""
    cls = type(exc).__name__
    if isinstance(exc, lce.ModelTimeoutError | TimeoutError) or "Timeout" in cls:
        within = f" within {model.timeout:g}s" if model.timeout else ""
        msg = (f"the model server at {where} did not answer{within}{tries} (model {model.name!r}); raise "
               "RAGREPORTS_LLM_TIMEOUT, send fewer passages, or use a faster model")
    elif isinstance(exc, lce.ModelConnectionError | ConnectionError) or "Connect" in cls:
        cause = _root_cause(exc)
        msg = (f"cannot reach the model server at {where}{tries} ({type(cause).__name__}: "
               f"{model.redact(_detail(cause))[:200]}); check that the server is running and that "
               "RAGREPORTS_LLM_BASE_URL (or OPENAI_BASE_URL) points at it")
    elif isinstance(exc, lce.ModelAuthenticationError | lce.ModelPermissionDeniedError) or status in (401, 403):
        msg = (f"authentication failed at {where} (HTTP {status}: {detail}); set OPENAI_API_KEY (or "
               "RAGREPORTS_API_KEY, or the provider's own key variable) to a valid key for this server")
    elif isinstance(exc, lce.ModelNotFoundError) or status == 404:
        msg = (f"model {model.name!r} not found at {where} (HTTP 404: {detail}); check the model name against "
               f"the models the server serves (GET {where}/models) and that the base URL ends in /v1")
    elif isinstance(exc, lce.ModelRateLimitError) or status == 429:
        msg = f"rate limited by {where} (HTTP 429){tries}; wait and retry, or raise RAGREPORTS_LLM_MAX_RETRIES"
    elif isinstance(exc, lce.ContextOverflowError):
        msg = (f"the prompt is larger than the context window of {model.name!r} ({detail}); lower "
               "RAGREPORTS_LLM_CONTEXT_TOKENS or use a model with a larger context")
    elif isinstance(exc, lce.ModelAPIError) or (status or 0) >= 500:
        msg = f"the model server at {where} failed with HTTP {status}{tries}: {detail}; check the server's logs"
    elif status is not None:
        hint = (" set RAGREPORTS_LLM_STRUCTURED=json_mode if it cannot follow a JSON schema;"
                if "response_format" in detail or "json_schema" in detail else "")
        msg = (f"the model server at {where} rejected the request (HTTP {status}: {detail});{hint} check the "
               "model name, the prompt size against the model's context window, and the server's options")
    else:
        msg = f"the model call to {where} failed ({cls}: {detail}); check the server and the model name"
    return ProviderError(model.redact(msg))


def invoke(chain: Any, value: Any, model: ChatModel, config: dict[str, Any]) -> Any:
    """``chain.invoke(value, config)``; a provider failure becomes one ProviderError line (no SDK traceback)."""
    try:
        return chain.invoke(value, config=config)
    except RagReportsError:
        raise
    except Exception as exc:
        if not is_provider_failure(exc):
            raise
        failure = exc
    raise provider_error(failure, model)
