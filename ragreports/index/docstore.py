"""Storage behind one interface: SQLite docstore, Chroma vectors, BM25 (jieba) lexical index.

Write order for one document (see ``Workspace.ingest``): docstore row + chunks with ``status='pending'`` (one
transaction) -> vectors into Chroma (idempotent upsert by chunk id) -> ``status='ready'`` (one transaction, bumps the
index generation). Readers only ever see ``ready`` documents, so a killed ingest leaves no half-document visible;
the next ingest finds the pending row and redoes it. The BM25 index records the generation it was built from and
is rebuilt whenever it is stale, so it heals itself after an interruption too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import urlparse

import numpy as np

from ragreports.errors import ConfigError, DocumentNotFoundError, IndexMismatchError, ProviderError
from ragreports.types import Chunk, Meta

log = logging.getLogger("ragreports.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, source TEXT UNIQUE NOT NULL, sha256 TEXT NOT NULL, fingerprint TEXT NOT NULL,
    status TEXT NOT NULL, text TEXT NOT NULL, original TEXT NOT NULL, meta TEXT NOT NULL,
    encoding TEXT, format TEXT, chunks INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunks (
    doc_id TEXT NOT NULL, idx INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    section TEXT NOT NULL, tokens INTEGER NOT NULL, text TEXT NOT NULL, terms TEXT NOT NULL,
    PRIMARY KEY (doc_id, idx));
"""


@dataclass(frozen=True)
class DocRecord:
    doc_id: str
    source: str
    sha256: str
    fingerprint: str
    status: str
    meta: Meta
    encoding: str | None
    format: str | None
    chunks: int


def _meta_from_json(s: str) -> Meta:
    d = json.loads(s)
    return Meta(**{k: d.get(k) for k in ("issuer", "region", "year", "published", "title")})


def slugify(stem: str) -> str:
    s = unicodedata.normalize("NFKC", stem).strip().lower()
    s = re.sub(r"[^\w\u3400-\u9fff-]+", "-", s).strip("-")
    return s or "doc"


class DocStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # serialized SQLite (sqlite3.threadsafety == 3): one connection may serve LCEL worker threads too
        self.db = sqlite3.connect(str(path), check_same_thread=sqlite3.threadsafety < 3)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    # -- info ---------------------------------------------------------------------------------------------
    def info(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM info WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_info(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO info VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        return int(self.info("generation") or 0)

    def _bump(self) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO info VALUES ('generation', ?)", (str(self.generation + 1),)
        )

    # -- documents ----------------------------------------------------------------------------------------
    _COLS = "doc_id, source, sha256, fingerprint, status, meta, encoding, format, chunks"

    def _rec(self, row) -> DocRecord:
        return DocRecord(row[0], row[1], row[2], row[3], row[4], _meta_from_json(row[5]), row[6], row[7], row[8])

    def get(self, doc_id: str) -> DocRecord | None:
        row = self.db.execute(f"SELECT {self._COLS} FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return self._rec(row) if row else None

    def by_source(self, source: str) -> DocRecord | None:
        row = self.db.execute(f"SELECT {self._COLS} FROM documents WHERE source=?", (source,)).fetchone()
        return self._rec(row) if row else None

    def resolve(self, doc: str) -> DocRecord:
        """A ready document by doc id or source path; DocumentNotFoundError says how to list them."""
        rec = self.get(doc)
        if rec is None:
            rec = self.by_source(str(Path(doc).expanduser().resolve()))
        if rec is None or rec.status != "ready":
            raise DocumentNotFoundError(f"no indexed document {doc!r}; run `ragreports list` to see doc ids")
        return rec

    def list(self, status: str = "ready") -> list[DocRecord]:
        rows = self.db.execute(f"SELECT {self._COLS} FROM documents WHERE status=? ORDER BY doc_id", (status,))
        return [self._rec(r) for r in rows]

    def text(self, doc_id: str) -> tuple[str, str]:
        row = self.db.execute("SELECT text, original FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        if row is None:
            raise DocumentNotFoundError(f"no indexed document {doc_id!r}")
        return row[0], row[1]

    def new_doc_id(self, source: str) -> str:
        """Doc id from the file name; suffixed -2, -3 … when another source already has it."""
        existing = self.by_source(source)
        if existing:
            return existing.doc_id
        base = slugify(Path(source).stem)
        cand, n = base, 1
        while self.get(cand) is not None:
            n += 1
            cand = f"{base}-{n}"
        return cand

    def begin_document(self, *, doc_id: str, source: str, sha256: str, fingerprint: str, text: str,
                       original: str, meta: Meta, encoding: str, fmt: str,
                       chunks: Sequence[Chunk], terms: Sequence[str]) -> None:
        """Write the document and its chunks as ``pending`` in one transaction (invisible to readers)."""
        with self.db:
            self.db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
            self.db.execute(
                "INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (doc_id, source, sha256, fingerprint, "pending", text, original,
                 json.dumps(meta.to_dict(), ensure_ascii=False), encoding, fmt, len(chunks)),
            )
            self.db.executemany(
                'INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?)',
                [(doc_id, c.index, c.start, c.end, c.section, c.tokens, c.text, t) for c, t in zip(chunks, terms)],
            )
            if self.info("generation") is None:
                self.db.execute("INSERT INTO info VALUES ('generation', '0')")

    def mark_ready(self, doc_id: str) -> None:
        with self.db:
            self.db.execute("UPDATE documents SET status='ready' WHERE doc_id=?", (doc_id,))
            self._bump()

    def delete(self, doc_id: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
            self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            self._bump()

    def chunks(self, doc_id: str) -> list[Chunk]:
        rows = self.db.execute(
            'SELECT doc_id, idx, text, start, "end", section, tokens FROM chunks WHERE doc_id=? ORDER BY idx',
            (doc_id,),
        )
        return [Chunk(*r) for r in rows]

    def get_chunks(self, ids: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Chunk]:
        out: dict[tuple[str, int], Chunk] = {}
        for doc_id, idx in ids:
            r = self.db.execute(
                'SELECT doc_id, idx, text, start, "end", section, tokens FROM chunks WHERE doc_id=? AND idx=?',
                (doc_id, idx),
            ).fetchone()
            if r:
                out[(doc_id, idx)] = Chunk(*r)
        return out

    def ready_terms(self) -> list[tuple[str, int, str]]:
        rows = self.db.execute(
            "SELECT c.doc_id, c.idx, c.terms FROM chunks c JOIN documents d ON d.doc_id=c.doc_id "
            "WHERE d.status='ready' ORDER BY c.doc_id, c.idx"
        )
        return list(rows)

    def close(self) -> None:
        self.db.close()


# -- lexical (BM25 over jieba tokens) ---------------------------------------------------------------------
_jieba_ready = False


QUANTITY_TOKEN = "#"  # prefix of the "a count of <unit>" terms: 七十六条 / 76条 / 多少条 -> "#条"
_ASKED = re.compile(r"(?:多少|几)(?:个(?=[\u4e00-\u9fff]))?")


def _quantity_terms(text: str) -> tuple[str, list[str]]:
    """The text with Chinese-numeral counts written in Arabic digits (七十六条 -> 76条, so a query ``76条``
    matches and jieba does not split 七|十六条), and one ``#<unit>`` term per count in it (``5次`` -> ``#次``)
    and per count a question asks for (``多少条`` / ``几名`` -> ``#条`` / ``#名``). Ordinals (第三条) and
    calendar years (2024年) are not counts. Units and numerals are the data of :mod:`ragreports.numbers`."""
    from ragreports.numbers import iter_quantities, match_unit, parse_chinese_numeral, rules

    year_units = rules().year_units
    parts: list[str] = []
    extra: list[str] = []
    pos = 0
    for q in iter_quantities(text):
        if (q.num_start > 0 and text[q.num_start - 1] == "第") or (q.unit in year_units and q.value >= 1000):
            continue
        extra.append(QUANTITY_TOKEN + q.unit)
        value = parse_chinese_numeral(q.numeral) if q.chinese else None
        if value is not None:
            parts += [text[pos:q.num_start], f" {value}"]
            pos = q.num_end
    parts.append(text[pos:])
    for m in _ASKED.finditer(text):
        i = m.end()
        scale = rules().scale_re.match(text, i)
        unit = match_unit(text, scale.end() if scale else i)
        if unit is not None:
            extra.append(QUANTITY_TOKEN + unit[1])
        elif m.group(0).endswith("个"):
            extra.append(QUANTITY_TOKEN + "个")
    return "".join(parts), extra


def lexical_terms(text: str) -> list[str]:
    """BM25 terms of a (Simplified) text: jieba tokens, lower-cased, punctuation and whitespace dropped, Chinese
    numerals of counts in digits, plus one ``#<unit>`` term per count (see :func:`_quantity_terms`). Used for
    both chunks and queries, so ``共有多少条`` meets ``共设十章七十六条`` on the term ``#条``."""
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        jieba.setLogLevel(logging.WARNING)
        _jieba_ready = True
    body, extra = _quantity_terms(text)
    out = []
    for tok in jieba.lcut(body):
        tok = tok.strip().lower()
        if tok and not all(unicodedata.category(c)[0] in "PZS" for c in tok):
            out.append(tok)
    return out + extra


class LexicalIndex:
    """BM25 (bm25s) over the chunks of ready documents, persisted next to the docstore."""

    def __init__(self, directory: Path, docstore: DocStore):
        self.dir = directory
        self.docstore = docstore
        self._bm25 = None
        self._ids: list[tuple[str, int]] = []
        self._gen = -1

    def _load_or_build(self) -> None:
        gen = self.docstore.generation
        if self._bm25 is not None and self._gen == gen:
            return
        meta_path = self.dir / "ids.json"
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
                if meta.get("generation") == gen:
                    import bm25s

                    self._ids = [tuple(x) for x in meta["ids"]]  # type: ignore[misc]
                    self._bm25 = bm25s.BM25.load(str(self.dir / "bm25"), show_progress=False) if self._ids else None
                    self._gen = gen
                    return
            except (OSError, ValueError, KeyError):
                log.warning("BM25 index at %s unreadable; rebuilding", self.dir)
        self.rebuild()

    def rebuild(self) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)

        rows = self.docstore.ready_terms()
        gen = self.docstore.generation
        self._ids = [(d, i) for d, i, _ in rows]
        corpus = [t.split(" ") if t else [] for _, _, t in rows]
        tmp = self.dir.with_name(self.dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if corpus:
            bm = bm25s.BM25()
            bm.index(corpus, show_progress=False)
            bm.save(str(tmp / "bm25"), show_progress=False)
            self._bm25 = bm
        else:
            self._bm25 = None
        (tmp / "ids.json").write_text(json.dumps({"generation": gen, "ids": self._ids}))
        old = self.dir.with_name(self.dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.dir.exists():
            os.replace(self.dir, old)
        os.replace(tmp, self.dir)
        shutil.rmtree(old, ignore_errors=True)
        self._gen = gen

    def query(self, terms: list[str], n: int, doc_ids: set[str] | None) -> list[tuple[tuple[str, int], float]]:
        self._load_or_build()
        if self._bm25 is None or not terms:
            return []
        scores = np.asarray(self._bm25.get_scores(terms), dtype=np.float64)
        if doc_ids is not None:
            mask = np.array([d in doc_ids for d, _ in self._ids], dtype=bool)
            scores = np.where(mask, scores, 0.0)
        order = np.argsort(-scores, kind="stable")[:n]
        return [(self._ids[i], float(scores[i])) for i in order if scores[i] > 0]


# -- dense (Chroma) ---------------------------------------------------------------------------------------
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
        for meta, dist in zip(res["metadatas"][0], res["distances"][0]):
            out.append(((str(meta["doc_id"]), int(meta["idx"])), 1.0 - float(dist)))
        return out

    def count(self) -> int:
        return self.col.count()


def check_index_identity(docstore: DocStore, embedder_name: str, dim: int) -> None:
    """Record the embedder on first use; afterwards a different one is a clear error."""
    name, d = docstore.info("embedder"), docstore.info("dim")
    if name is None:
        docstore.set_info("embedder", embedder_name)
        docstore.set_info("dim", str(dim))
        return
    if name != embedder_name or (d and dim and int(d) != dim):
        raise IndexMismatchError(
            f"the index at {docstore.path.parent} was built with embedder {name!r} ({d}-d), not {embedder_name!r}; "
            f"set RAGREPORTS_EMBEDDER={name}, or re-index: `ragreports ingest PATH --reindex` (or use another --home)"
        )


def ensure_home(home: Path) -> None:
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to the index location {home} ({exc.strerror}); set RAGREPORTS_HOME or --home") from None
