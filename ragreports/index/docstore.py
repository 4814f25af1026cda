"""The docstore (SQLite): documents, their normalised text and chunks; the source of truth of an index.

Write order for one document (see ``Workspace.ingest``): docstore row + chunks with ``status='pending'`` (one
transaction) -> vectors into Chroma (idempotent upsert by chunk id) -> ``status='ready'`` (one transaction, bumps the
index generation). Readers only ever see ``ready`` documents, so a killed ingest leaves no half-document visible;
the next ingest finds the pending row and redoes it. The BM25 index (:mod:`ragreports.index.lexical`) records the
generation it was built from and is rebuilt whenever it is stale, so it heals itself after an interruption too.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragreports.errors import ConfigError, DocumentNotFoundError, IndexMismatchError
from ragreports.types import Chunk, Meta

log = logging.getLogger("ragreports.index")

SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, source TEXT UNIQUE NOT NULL, sha256 TEXT NOT NULL, fingerprint TEXT NOT NULL,
    status TEXT NOT NULL, text TEXT NOT NULL, original TEXT NOT NULL, meta TEXT NOT NULL,
    encoding TEXT, format TEXT, chunks INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunks (
    doc_id TEXT NOT NULL, idx INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    section TEXT NOT NULL, tokens INTEGER NOT NULL, text TEXT NOT NULL, terms TEXT NOT NULL,
    years TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT '', mentions TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (doc_id, idx));
"""
# columns added after the first release: (table, column, declaration), added to older index files on open
_ADDED_COLUMNS = (("chunks", "years", "TEXT NOT NULL DEFAULT ''"), ("chunks", "kind", "TEXT NOT NULL DEFAULT ''"),
                  ("chunks", "mentions", "TEXT NOT NULL DEFAULT ''"))
_CHUNK_COLS = 'doc_id, idx, text, start, "end", section, tokens, years, kind, mentions'


def _years(s: str) -> tuple[int, ...]:
    return tuple(int(y) for y in s.split(",") if y)


def _chunk(row: Sequence) -> Chunk:
    return Chunk(*row[:7], years=_years(row[7]), kind=row[8], mentions=_years(row[9]))


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
    return Meta.from_json(json.loads(s))


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
        for table, column, decl in _ADDED_COLUMNS:
            have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                with self.db:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

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
                 json.dumps(meta.to_json(), ensure_ascii=False), encoding, fmt, len(chunks)),
            )
            self.db.executemany(
                'INSERT INTO chunks (doc_id, idx, start, "end", section, tokens, text, terms, years, kind, mentions) '
                'VALUES (?,?,?,?,?,?,?,?,?,?,?)',
                [(doc_id, c.index, c.start, c.end, c.section, c.tokens, c.text, t, ",".join(map(str, c.years)), c.kind,
                  ",".join(map(str, c.mentions))) for c, t in zip(chunks, terms, strict=True)],
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
        rows = self.db.execute(f"SELECT {_CHUNK_COLS} FROM chunks WHERE doc_id=? ORDER BY idx", (doc_id,))
        return [_chunk(r) for r in rows]

    def get_chunks(self, ids: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Chunk]:
        out: dict[tuple[str, int], Chunk] = {}
        for doc_id, idx in ids:
            r = self.db.execute(f"SELECT {_CHUNK_COLS} FROM chunks WHERE doc_id=? AND idx=?", (doc_id, idx)).fetchone()
            if r:
                out[(doc_id, idx)] = _chunk(r)
        return out

    def periods(self) -> dict[tuple[str, int], tuple[tuple[int, ...], str, tuple[int, ...]]]:
        """(years, kind, mentioned years) of every chunk of the ready documents (:mod:`ragreports.extract.periods`)."""
        rows = self.db.execute(
            "SELECT c.doc_id, c.idx, c.years, c.kind, c.mentions FROM chunks c JOIN documents d ON d.doc_id=c.doc_id "
            "WHERE d.status='ready'"
        )
        return {(d, i): (_years(ys), kind, _years(ms)) for d, i, ys, kind, ms in rows}

    def ready_terms(self) -> list[tuple[str, int, str]]:
        rows = self.db.execute(
            "SELECT c.doc_id, c.idx, c.terms FROM chunks c JOIN documents d ON d.doc_id=c.doc_id "
            "WHERE d.status='ready' ORDER BY c.doc_id, c.idx"
        )
        return list(rows)

    def close(self) -> None:
        self.db.close()



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
        raise ConfigError(f"cannot write to the index location {home} ({exc.strerror}); "
                          "set RAGREPORTS_HOME or --home") from None
