from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ragreports.config import Settings

REPO = Path(__file__).resolve().parent.parent
DEV_SUITE = REPO / "eval" / "suites" / "dev"
SAMPLES = REPO / "examples" / "reports"


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """A private copy of the sample reports (tests may modify it)."""
    dst = tmp_path / "reports"
    shutil.copytree(SAMPLES, dst)
    return dst


_CACHE: list[Path] = []


def _session_cache(factory) -> Path:
    if not _CACHE:  # an outer RAGREPORTS_CACHE_DIR (scripts/test.sh) is shared with the eval run after pytest
        outer = os.environ.get("RAGREPORTS_CACHE_DIR")
        _CACHE.append(Path(outer) if outer else factory.mktemp("cache"))
    return _CACHE[0]


@pytest.fixture
def hash_settings(tmp_path: Path) -> Settings:
    """Settings for a fresh index in tmp with the deterministic hashing embedder (fast, offline)."""
    return Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache", embedder="hash", llm="none")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Never touch the user's real index from tests."""
    monkeypatch.setenv("RAGREPORTS_HOME", str(tmp_path_factory.mktemp("default-home")))
    # one embedding cache per test session: e2e tests share e5 vectors, nothing leaks from the user's cache
    monkeypatch.setenv("RAGREPORTS_CACHE_DIR", str(_session_cache(tmp_path_factory)))
    for var in ("RAGREPORTS_LLM", "RAGREPORTS_CHROMA_URL", "RAGREPORTS_EMBEDDER", "OPENAI_BASE_URL",
                "RAGREPORTS_LLM_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


def big_report(path: Path, copies: int, tag: str = "") -> Path:
    """A long report made of the samples repeated ``copies`` times with small changes (about 125 chunks per copy
    at the default chunk size), for tests that need an ingest long enough to overlap with other processes."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLES.glob("*.txt"))]
    parts = [t.replace("。", f"（{tag}第{i}部分）。", 3) for i in range(copies) for t in texts]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def cli_env(home: Path, cache: Path, **extra: str) -> dict[str, str]:
    """Environment for running the CLI in a subprocess against ``home`` with the hashing embedder, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGREPORTS_", "OPENAI_", "TIKTOKEN_"))}
    env.update({"RAGREPORTS_HOME": str(home), "RAGREPORTS_CACHE_DIR": str(cache), "RAGREPORTS_EMBEDDER": "hash",
                "RAGREPORTS_LLM": "none", **extra})
    return env
