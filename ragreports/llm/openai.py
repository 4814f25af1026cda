"""OpenAI and OpenAI-compatible servers (``openai:MODEL``) and local GGUF models through llama.cpp (``gguf:PATH``).

Chosen by :func:`ragreports.providers.get_chat_model`. The ``openai``
SDK, ``langchain_openai`` and ``xllamacpp`` are imported on first use, never at import time.

Faults: each request has ``settings.llm_timeout``; 408/429/5xx and connection errors are retried up to
``settings.llm_max_retries`` times with exponential backoff and jitter (honouring Retry-After; ``model.sleep`` is
injectable); timeouts are not retried. Every failure ends in a ``ProviderError`` that names the URL and what to do.
The API key never appears in logs, errors, reprs or ``calls``.

``gguf:PATH`` starts a :class:`GGUFServer` (an in-process llama.cpp OpenAI-compatible server, PyPI ``xllamacpp``,
the optional extra ``pip install 'ragreports[gguf]'``) on 127.0.0.1 at a free port and talks to it with the same
:class:`OpenAIChatModel`; ``model.close()`` (or ``with model:`` or interpreter exit) stops the server.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import email.utils
import logging
import os
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ragreports.errors import ConfigError, ProviderError
from ragreports.llm.base import MAX_CALLS_KEPT, NO_KEY, CallRecord, Messages, log, record_call, redact


# -- OpenAI-compatible ---------------------------------------------------------------------------------------
def _display_url(url: str) -> str:
    """URL without user:password."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        parts = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
    return urllib.parse.urlunsplit(parts).rstrip("/")


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
            record_call(self, CallRecord(self.name, prompt, json_mode, None, None, latency, attempts,
                                         failure.status and f"HTTP {failure.status}" or failure.kind))
            raise ProviderError(message)
        choice = resp.choices[0] if resp.choices else None
        text = (choice.message.content if choice is not None else None) or ""
        if choice is not None and choice.finish_reason == "length":
            log.warning("reply from %s was cut at max_tokens (prompt %s)", self.name, prompt)
        usage = resp.usage
        record_call(self, CallRecord(self.name, prompt, json_mode, usage.prompt_tokens if usage else None,
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

    def start(self, timeout: float = 120.0) -> GGUFServer:
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
