"""Providers chosen by a string: chat models and embedders, one registry shape, both listed here.

Each registry maps a prefix to a :class:`Provider` (does it take an argument after ``:``, and the factory that
builds it from the settings and that argument). A prefix the registry does not hold is a LangChain provider: the
string goes to LangChain's ``init_chat_model`` / ``init_embeddings``. SDKs and weights load inside the providers on
first use, never here::

    get_chat_model(settings)            # RAGREPORTS_LLM: none | fake | gguf:PATH | PROVIDER:MODEL
    get_embedder(settings)              # RAGREPORTS_EMBEDDER: e5-small | use | hash | PROVIDER:MODEL

- ``fake`` is the deterministic offline LangChain chat model (:mod:`ragreports.llm.fake`), registered like the rest.
- ``gguf:PATH`` starts an in-process llama.cpp OpenAI-compatible server (:mod:`ragreports.llm.gguf`, the optional
  extra ``pip install 'ragreports[gguf]'``) on 127.0.0.1 and talks to it through ``ChatOpenAI``; ``close()`` stops it.
- ``openai:MODEL`` is ``ChatOpenAI``: OpenAI, or any OpenAI-compatible server (vLLM, Ollama, llama.cpp, ...) at
  ``settings.llm_base_url`` (RAGREPORTS_LLM_BASE_URL / OPENAI_BASE_URL); with a base URL and no key a placeholder
  key is sent (local servers need none); with neither -> ConfigError.
- Any other ``PROVIDER:MODEL`` (``ollama:qwen2.5:7b``, ``deepseek:deepseek-chat``, ``anthropic:...``) is built by
  ``init_chat_model``; its integration package is an extra (``pip install 'ragreports[ollama]'``), and a missing one
  is a ConfigError naming it. Those providers read their own keys and hosts (DEEPSEEK_API_KEY, OLLAMA_HOST, ...).

Timeouts and retries are the SDK's: ``timeout=settings.llm_timeout``, ``max_retries=settings.llm_max_retries``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import SecretStr

from ragreports.config import Settings
from ragreports.errors import ConfigError
from ragreports.index.embeddings import E5Embedder, Embedder, HashEmbedder, LangChainEmbedder, USEEmbedder
from ragreports.llm.base import NO_KEY, ChatModel, display_url
from ragreports.llm.fake import fake_model
from ragreports.llm.gguf import GGUFServer
from ragreports.llm.trace import Trace

P = TypeVar("P")

# LangChain providers with a ragreports extra that installs their integration package
EXTRAS = {"ollama": "ollama", "deepseek": "deepseek", "anthropic": "anthropic"}
# providers whose LangChain models take the SDK's timeout, max_retries and max_tokens
SDK_OPTIONS = {"openai", "azure_openai", "deepseek", "anthropic", "xai", "groq", "mistralai", "fireworks", "together"}
OPENAI_URL = "https://api.openai.com/v1"
CHAT_FORMS = "none, fake, gguf:/path/to/model.gguf, PROVIDER:MODEL (openai:MODEL e.g. openai:gpt-4o-mini, " \
             "ollama:qwen2.5:7b, deepseek:deepseek-chat, or any provider LangChain's init_chat_model knows)"


@dataclass(frozen=True)
class Provider(Generic[P]):
    takes_argument: bool  # "gguf:PATH" takes one, "fake" does not
    factory: Callable[[Settings, str], P]  # factory(settings, argument)
    form: str  # how users write it, for error messages


def _secret(settings: Settings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key else None


def _trace(settings: Settings) -> Trace:
    return Trace(settings.llm_trace, content=settings.llm_trace_content)


def _structured(settings: Settings, provider: str) -> str:
    if settings.llm_structured != "auto":
        return settings.llm_structured
    return "json_mode" if provider == "deepseek" else "json_schema"


def _integration_error(spec: str, provider: str, exc: Exception) -> ConfigError:
    found = re.search(r"pip install ([A-Za-z0-9_.\-\[\]]+)", str(exc))
    package = found.group(1) if found else f"langchain-{provider.replace('_', '-')}"
    how = f"pip install 'ragreports[{EXTRAS[provider]}]' (or pip install {package})" if provider in EXTRAS \
        else f"pip install {package}"
    return ConfigError(f"{spec} needs LangChain's {provider} integration, which is not installed: {how}")


def _openai_kwargs(settings: Settings) -> dict[str, Any]:
    key = _secret(settings)
    if not key and not settings.llm_base_url:
        raise ConfigError("openai:MODEL needs OPENAI_API_KEY (or RAGREPORTS_API_KEY) for OpenAI, or "
                          "RAGREPORTS_LLM_BASE_URL (or OPENAI_BASE_URL) for an OpenAI-compatible server")
    return {"base_url": settings.llm_base_url, "api_key": SecretStr(key or NO_KEY), "stream_usage": True}


def _max_tokens(n: int, compatible_server: bool) -> dict[str, Any]:
    """ChatOpenAI sends max_completion_tokens (OpenAI's newer models take only that); OpenAI-compatible servers
    (vLLM, Ollama, llama.cpp) know max_tokens, so they get it in the request body instead."""
    return {"extra_body": {"max_tokens": n}} if compatible_server else {"max_tokens": n}


def _langchain_chat(settings: Settings, spec: str) -> ChatModel:
    """``PROVIDER:MODEL`` through LangChain's ``init_chat_model``."""
    provider, _, model_id = spec.partition(":")
    kw: dict[str, Any] = _openai_kwargs(settings) if provider == "openai" else {}
    if provider in SDK_OPTIONS:
        kw.update(timeout=settings.llm_timeout, max_retries=settings.llm_max_retries)
        if settings.llm_max_tokens:
            kw.update(_max_tokens(settings.llm_max_tokens, provider == "openai" and bool(settings.llm_base_url)))
    try:
        from langchain.chat_models import init_chat_model

        chat = init_chat_model(model_id, model_provider=provider, **kw)
    except ImportError as exc:
        raise _integration_error(spec, provider, exc) from None
    except ValueError as exc:
        if "Unsupported" in str(exc):
            raise ConfigError(f"unknown chat model {spec!r}; use one of: {CHAT_FORMS}") from None
        raise ConfigError(f"cannot set up the chat model {spec!r}: {exc}") from None
    url = (settings.llm_base_url or OPENAI_URL) if provider == "openai" else getattr(chat, "base_url", None)
    return ChatModel(spec, chat, structured=_structured(settings, provider), url=url, timeout=settings.llm_timeout,
                     max_retries=settings.llm_max_retries if provider in SDK_OPTIONS else None,
                     secrets=tuple(s for s in [_secret(settings)] if s and provider == "openai"),
                     trace=_trace(settings))


def _gguf_chat(settings: Settings, path: str) -> ChatModel:
    trace = _trace(settings)  # a bad --trace path fails before the server starts
    server = GGUFServer(path, n_ctx=max(4096, settings.llm_context_tokens + 2048)).start()
    try:
        from langchain_openai import ChatOpenAI

        chat = ChatOpenAI(model=server.path.stem, base_url=server.base_url, api_key=SecretStr(NO_KEY),
                          temperature=0.0, timeout=settings.llm_timeout, max_retries=settings.llm_max_retries,
                          stream_usage=True, **_max_tokens(settings.llm_max_tokens or 2048, True))
    except BaseException:
        server.close()
        raise
    return ChatModel(f"gguf:{path}", chat, structured=_structured(settings, "gguf"), url=server.base_url,
                     timeout=settings.llm_timeout, max_retries=settings.llm_max_retries, trace=trace, server=server)


CHAT_MODELS: dict[str, Provider[ChatModel]] = {
    "fake": Provider(False, lambda settings, _: fake_model(encoding=settings.tokenizer, trace=_trace(settings)),
                     "fake"),
    "gguf": Provider(True, _gguf_chat, "gguf:/path/to/model.gguf"),
}


def _langchain_embedder(settings: Settings, spec: str) -> Embedder:
    """``PROVIDER:MODEL`` through LangChain's ``init_embeddings`` (raw text is sent: no client-side tokenising)."""
    provider, _, model_id = spec.partition(":")
    kw: dict[str, Any] = {}
    if provider == "openai":
        kw = {**_openai_kwargs(settings), "timeout": settings.llm_timeout, "max_retries": settings.llm_max_retries,
              "check_embedding_ctx_length": False}
        kw.pop("stream_usage")
    try:
        from langchain.embeddings import init_embeddings

        emb = init_embeddings(model_id, provider=provider, **kw)
    except ImportError as exc:
        raise _integration_error(spec, provider, exc) from None
    except ValueError as exc:
        raise ConfigError(f"unknown embedder {spec!r} ({str(exc).splitlines()[0]}); use e5-small, use, hash or "
                          "PROVIDER:MODEL (e.g. openai:text-embedding-3-small)") from None
    where = display_url(settings.llm_base_url or OPENAI_URL) if provider == "openai" else spec
    return LangChainEmbedder(spec, emb, where=where)


EMBEDDERS: dict[str, Provider[Embedder]] = {
    "e5-small": Provider(False, lambda settings, _: E5Embedder(), "e5-small"),
    "use": Provider(False, lambda settings, _: USEEmbedder(), "use"),
    "hash": Provider(False, lambda settings, _: HashEmbedder(), "hash"),
}


def _resolve(registry: dict[str, Provider[P]], spec: str, what: str, forms: str) -> tuple[Provider[P] | None, str]:
    """The registry entry for ``spec`` and its argument; (None, spec) for a LangChain ``PROVIDER:MODEL``."""
    prefix, _, arg = spec.partition(":")
    entry = registry.get(prefix)
    if entry is None and prefix and arg.strip() and re.fullmatch(r"[a-z][a-z0-9_\-]*", prefix):
        return None, f"{prefix}:{arg.strip()}"
    if entry is None or entry.takes_argument != bool(arg.strip()):
        raise ConfigError(f"unknown {what} {spec!r}; use one of: {forms}")
    return entry, arg.strip()


def get_chat_model(settings: Settings, spec: str | None = None) -> ChatModel | None:
    """The chat model named by ``spec`` (default ``settings.llm``), or None for ``none``."""
    spec = (settings.llm if spec is None else spec).strip()
    if spec in ("", "none"):
        return None
    entry, arg = _resolve(CHAT_MODELS, spec, "chat model", CHAT_FORMS)
    return _langchain_chat(settings, arg) if entry is None else entry.factory(settings, arg)


def get_embedder(settings: Settings, spec: str | None = None) -> Embedder:
    """The embedder named by ``spec`` (default ``settings.embedder``)."""
    spec = (settings.embedder if spec is None else spec).strip()
    forms = ", ".join([*(p.form for p in EMBEDDERS.values()), "PROVIDER:MODEL (e.g. openai:text-embedding-3-small)"])
    entry, arg = _resolve(EMBEDDERS, spec, "embedder", forms)
    return _langchain_embedder(settings, arg) if entry is None else entry.factory(settings, arg)
