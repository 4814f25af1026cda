"""The vector index: a Chroma collection on disk (PersistentClient) or on a server (HttpClient).

We always pass our own vectors (``embedding_function=None``): Chroma's default would download a model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from ragreports.errors import IndexMismatchError, ProviderError
from ragreports.types import Chunk

log = logging.getLogger("ragreports.index")

def chroma_client(path: Path, url: str | None):
    """A Chroma client: HttpClient for a server URL (checked with a heartbeat), else PersistentClient on disk."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    cs = ChromaSettings(anonymized_telemetry=False)
    if not url:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=cs)
    u = urlparse(url if "://" in url else f"http://{url}")
    try:
        client = chromadb.HttpClient(host=u.hostname or "127.0.0.1", port=u.port or 8000,
                                     ssl=u.scheme == "https", settings=cs)
        client.heartbeat()
    except Exception as exc:
        raise ProviderError(
            f"cannot reach the Chroma server at {url} ({type(exc).__name__}); start it with "
            "`chroma run --path DIR --port PORT` or unset RAGREPORTS_CHROMA_URL to use the on-disk index"
        ) from None
    return client


def drop_collection(path: Path, url: str | None, collection: str) -> None:
    """Remove the collection and every vector in it (through the client: Chroma caches open stores in-process)."""
    if not url and not path.exists():
        return
    client = chroma_client(path, url)
    try:
        client.delete_collection(collection)
    except Exception:  # missing collection: nothing to drop
        log.debug("collection %s not found on %s", collection, url)


class VectorIndex:
    """Chroma collection on disk (PersistentClient) or on a server (HttpClient, RAGREPORTS_CHROMA_URL)."""

    def __init__(self, *, path: Path, url: str | None, collection: str, embedder_name: str, dim: int):
        self.client = chroma_client(path, url)
        # embedding_function=None: we always pass our own vectors; Chroma's default would download a model.
        self.col = self.client.get_or_create_collection(
            collection, embedding_function=None,
            metadata={"hnsw:space": "cosine", "embedder": embedder_name, "dim": dim},
        )
        meta = self.col.metadata or {}
        if meta.get("embedder") != embedder_name or int(meta.get("dim", dim)) != dim:
            raise IndexMismatchError(
                f"the vector index was built with embedder {meta.get('embedder')!r} ({meta.get('dim')}-d) but "
                f"{embedder_name!r} ({dim}-d) is configured; set RAGREPORTS_EMBEDDER={meta.get('embedder')} or "
                "re-index into a fresh index (another --home / RAGREPORTS_HOME, or `ragreports ingest --reindex`)"
            )

    def upsert(self, doc_id: str, chunks: Sequence[Chunk], vectors: np.ndarray, extra: dict) -> None:
        if not chunks:
            return
        metas = [{"doc_id": doc_id, "idx": c.index, "start": c.start, "end": c.end, **extra} for c in chunks]
        for i in range(0, len(chunks), 1000):
            self.col.upsert(
                ids=[c.chunk_id for c in chunks[i : i + 1000]],
                embeddings=vectors[i : i + 1000],
                metadatas=metas[i : i + 1000],
                documents=[c.text for c in chunks[i : i + 1000]],
            )

    def delete_doc(self, doc_id: str) -> None:
        self.col.delete(where={"doc_id": doc_id})

    def query(self, vector: np.ndarray, n: int, doc_ids: set[str] | None) -> list[tuple[tuple[str, int], float]]:
        total = self.col.count()
        if total == 0 or (doc_ids is not None and not doc_ids):
            return []
        where = None
        if doc_ids is not None:
            ids = sorted(doc_ids)
            where = {"doc_id": ids[0]} if len(ids) == 1 else {"doc_id": {"$in": ids}}
        res = self.col.query(query_embeddings=[vector], n_results=min(n, total), where=where,
                             include=["metadatas", "distances"])
        out = []
        for meta, dist in zip(res["metadatas"][0], res["distances"][0], strict=True):
            out.append(((str(meta["doc_id"]), int(meta["idx"])), 1.0 - float(dist)))
        return out

    def count(self) -> int:
        return self.col.count()

