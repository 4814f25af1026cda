"""Providers chosen by a string: chat models and embedders, one registry shape, both listed here.

Each registry maps a prefix to a :class:`Provider` (does it take an argument after ``:``, and the factory that
builds it from the settings and that argument). SDKs and weights load inside the providers on first use, never
here::

    get_chat_model(settings)            # RAGREPORTS_LLM: none | fake | openai:MODEL | gguf:PATH
    get_embedder(settings)              # RAGREPORTS_EMBEDDER: e5-small | use | hash | openai:MODEL

- ``fake`` is the deterministic offline chat model (:mod:`ragreports.llm.fake`), registered like the real ones.
- ``openai:MODEL`` talks to OpenAI or any OpenAI-compatible server at ``settings.llm_base_url``
  (RAGREPORTS_LLM_BASE_URL / OPENAI_BASE_URL). With a base URL and no key a placeholder key is sent (local servers
  need none); with neither -> ConfigError.
- ``gguf:PATH`` starts an in-process llama.cpp OpenAI-compatible server (PyPI ``xllamacpp``, the optional extra
  ``pip install 'ragreports[gguf]'``) on 127.0.0.1 and talks to it with the same client; ``model.close()`` stops it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ragreports.config import Settings
from ragreports.errors import ConfigError
from ragreports.index.embeddings import E5Embedder, Embedder, HashEmbedder, OpenAIEmbedder, USEEmbedder
from ragreports.llm.base import ChatModel
from ragreports.llm.fake import FakeChatModel
from ragreports.llm.openai import GGUFServer, OpenAIChatModel

P = TypeVar("P")


@dataclass(frozen=True)
class Provider(Generic[P]):
    takes_argument: bool  # "openai:MODEL" takes one, "fake" does not
    factory: Callable[[Settings, str], P]  # factory(settings, argument)
    form: str  # how users write it, for error messages


def _secret(settings: Settings) -> str | None:
    return settings.api_key.get_secret_value() if settings.api_key else None


def _openai_chat(settings: Settings, model: str) -> OpenAIChatModel:
    return OpenAIChatModel(model, base_url=settings.llm_base_url, api_key=_secret(settings),
                           timeout=settings.llm_timeout, max_retries=settings.llm_max_retries,
                           default_max_tokens=settings.llm_max_tokens)


def _gguf_chat(settings: Settings, path: str) -> OpenAIChatModel:
    server = GGUFServer(path, n_ctx=max(4096, settings.llm_context_tokens + 2048)).start()
    model = OpenAIChatModel(server.path.stem, base_url=server.base_url, api_key=None, name=f"gguf:{path}",
                            timeout=settings.llm_timeout, max_retries=settings.llm_max_retries, temperature=0.0,
                            default_max_tokens=settings.llm_max_tokens or 2048)
    model.server = server
    return model


CHAT_MODELS: dict[str, Provider[ChatModel]] = {
    "fake": Provider(False, lambda settings, _: FakeChatModel(encoding=settings.tokenizer), "fake"),
    "openai": Provider(True, _openai_chat, "openai:MODEL (e.g. openai:gpt-4o-mini)"),
    "gguf": Provider(True, _gguf_chat, "gguf:/path/to/model.gguf"),
}

EMBEDDERS: dict[str, Provider[Embedder]] = {
    "e5-small": Provider(False, lambda settings, _: E5Embedder(), "e5-small"),
    "use": Provider(False, lambda settings, _: USEEmbedder(), "use"),
    "hash": Provider(False, lambda settings, _: HashEmbedder(), "hash"),
    "openai": Provider(True, lambda settings, model: OpenAIEmbedder(model, api_key=_secret(settings),
                                                                     base_url=settings.llm_base_url),
                       "openai:MODEL"),
}


def _resolve(registry: dict[str, Provider[P]], spec: str, what: str, extra: tuple[str, ...] = ()
             ) -> tuple[Provider[P], str]:
    prefix, _, arg = spec.strip().partition(":")
    entry = registry.get(prefix)
    if entry is None or entry.takes_argument != bool(arg.strip()):
        forms = ", ".join([*extra, *(p.form for p in registry.values())])
        raise ConfigError(f"unknown {what} {spec!r}; use one of: {forms}")
    return entry, arg.strip()


def get_chat_model(settings: Settings, spec: str | None = None) -> ChatModel | None:
    """The chat model named by ``spec`` (default ``settings.llm``), or None for ``none``."""
    spec = (settings.llm if spec is None else spec).strip()
    if spec in ("", "none"):
        return None
    entry, arg = _resolve(CHAT_MODELS, spec, "chat model", extra=("none",))
    return entry.factory(settings, arg)


def get_embedder(settings: Settings, spec: str | None = None) -> Embedder:
    """The embedder named by ``spec`` (default ``settings.embedder``)."""
    entry, arg = _resolve(EMBEDDERS, settings.embedder if spec is None else spec, "embedder")
    return entry.factory(settings, arg)
