"""The vector index: a Chroma collection on disk (PersistentClient) or on a server (HttpClient), through the stores
of :mod:`ragreports.index.stores` (every call is one locked, crash-marked session there).

We always pass our own vectors (``embedding_function=None``): Chroma's default would download a model.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ragreports.errors import DiskFullError, IndexMismatchError
from ragreports.index.stores import DiskStore, open_store
from ragreports.types import Chunk, Meta

log = logging.getLogger("ragreports.index")

BATCH = 1000  # vectors per upsert call: one storage-lock turn each, so readers are never kept waiting long


def vector_extra(meta: Meta) -> dict:
    """The document-level metadata Chroma stores next to each chunk's vector (filters: year, issuer)."""
    return {"year": meta.year or 0, "issuer": meta.issuer or ""}


class VectorIndex:
    """Chroma collection on disk (PersistentClient) or on a server (HttpClient, RAGREPORTS_CHROMA_URL)."""

    def __init__(self, *, path: Path, url: str | None, collection: str, embedder_name: str, dim: int,
                 check: bool = True):
        self.store = open_store(path, url)
        self.name = collection
        self.embedder_name, self.dim = embedder_name, dim
        self._warned = False
        self._meta = {"hnsw:space": "cosine", "embedder": embedder_name, "dim": dim}
        with self.store.session("open", check=check):
            meta = self.store.collection(collection, metadata=self._meta).metadata or {}
        if meta.get("embedder") != embedder_name or int(meta.get("dim", dim)) != dim:
            raise IndexMismatchError(
                f"the vector index was built with embedder {meta.get('embedder')!r} ({meta.get('dim')}-d) but "
                f"{embedder_name!r} ({dim}-d) is configured; set RAGREPORTS_EMBEDDER={meta.get('embedder')} or "
                "re-index into a fresh index (another --home / RAGREPORTS_HOME, or `ragreports ingest --reindex`)"
            )

    @property
    def on_disk(self) -> bool:
        return isinstance(self.store, DiskStore)

    @contextlib.contextmanager
    def _session(self, op: str, *, check: bool = True):
        with self.store.session(op, check=check) as store:
            yield store.collection(self.name, metadata=self._meta)

    @property
    def col(self):
        """The collection handle (for inspection and tests; index code goes through sessions)."""
        with self._session("inspect") as col:
            return col

    def upsert(self, doc_id: str, chunks: Sequence[Chunk], vectors: np.ndarray, extra: dict) -> None:
        if not chunks:
            return
        metas = [{"doc_id": doc_id, "idx": c.index, "start": c.start, "end": c.end, **extra} for c in chunks]
        for i in range(0, len(chunks), BATCH):
            with self._session(f"upsert {doc_id}") as col:
                col.upsert(ids=[c.chunk_id for c in chunks[i : i + BATCH]], embeddings=vectors[i : i + BATCH],
                           metadatas=metas[i : i + BATCH], documents=[c.text for c in chunks[i : i + BATCH]])

    def delete_doc(self, doc_id: str) -> None:
        with self._session(f"delete {doc_id}") as col:
            col.delete(where={"doc_id": doc_id})

    def delete_ids(self, ids: Sequence[str]) -> None:
        for i in range(0, len(ids), BATCH):
            with self._session("delete ids") as col:
                col.delete(ids=list(ids[i : i + BATCH]))

    def query(self, vector: np.ndarray, n: int, doc_ids: set[str] | None) -> list[tuple[tuple[str, int], float]]:
        if doc_ids is not None and not doc_ids:
            return []
        where = None
        if doc_ids is not None:
            ids = sorted(doc_ids)
            where = {"doc_id": ids[0]} if len(ids) == 1 else {"doc_id": {"$in": ids}}
        try:
            with self._session("query") as col:
                total = col.count()
                if total == 0:
                    return []
                res = col.query(query_embeddings=[vector], n_results=min(n, total), where=where,
                                include=["metadatas", "distances"])
        except DiskFullError as exc:  # Chroma writes even to read: on a full disk, search with BM25 alone
            if not self._warned:
                log.warning("%s; dense search is off, results come from BM25 only", exc)
                self._warned = True
            return []
        out = []
        for meta, dist in zip(res["metadatas"][0], res["distances"][0], strict=True):
            out.append(((str(meta["doc_id"]), int(meta["idx"])), 1.0 - float(dist)))
        return out

    def count(self) -> int:
        with self._session("count") as col:
            return col.count()

    def ids(self) -> list[str]:
        out: list[str] = []
        while True:
            with self._session("list ids") as col:
                got = col.get(include=[], limit=5000, offset=len(out))["ids"]
            if not got:
                return out
            out += got

    def close(self) -> None:
        self.store.close()


class NoVectors:
    """Stands in for a :class:`VectorIndex` that cannot be opened on a full disk: searches fall back to BM25."""

    def __init__(self, reason: str):
        log.warning("%s; dense search is off, results come from BM25 only", reason)

    def query(self, vector: np.ndarray, n: int, doc_ids: set[str] | None) -> list[tuple[tuple[str, int], float]]:
        return []

    def count(self) -> int:
        return 0
