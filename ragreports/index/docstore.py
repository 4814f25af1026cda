"""The docstore (SQLite): documents, their normalised text and chunks; the source of truth of an index.

Write order for one document (see ``Workspace.ingest``): docstore row + chunks with ``status='pending'`` (one
transaction) -> vectors into Chroma (idempotent upsert by chunk id) -> ``status='ready'`` (one transaction, bumps the
index generation). Readers only ever see ``ready`` documents, so a killed ingest leaves no half-document visible;
the next ingest finds the pending row and redoes it. The BM25 index (:mod:`ragreports.index.lexical`) records the
generation it was built from and is rebuilt whenever it is stale, so it heals itself after an interruption too.

Several processes may open the docstore at once (SQLite WAL: readers see committed state, writers wait up to
``BUSY_TIMEOUT_S`` for each other); one writer at a time is the job of the home's ``write.lock``. Each chunk row
keeps its ``flags`` (JSON: spans of text addressed to a model, spans of unreadable text; see
:mod:`ragreports.text.flags`). A full disk is a :class:`~ragreports.errors.DiskFullError`; on a full disk or a
read-only home the docstore still opens for reading. Deleted rows are overwritten (``secure_delete``) and
:meth:`DocStore.vacuum` leaves no trace of them in the files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragreports.errors import ConfigError, DocumentNotFoundError, IndexMismatchError, RagReportsError
from ragreports.index.faults import disk_full, is_disk_full
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
# Columns added after the first release (additive: ALTER TABLE ... ADD COLUMN on open when missing).
ADDED_COLUMNS = {"chunks": [("years", "TEXT NOT NULL DEFAULT ''"), ("kind", "TEXT NOT NULL DEFAULT ''"),
                            ("mentions", "TEXT NOT NULL DEFAULT ''"), ("flags", "TEXT NOT NULL DEFAULT ''")]}
BUSY_TIMEOUT_S = 30.0
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
        self.readonly = False
        try:
            self.db = self._connect(str(path), uri=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA secure_delete=ON")
            self._migrate()
        except sqlite3.OperationalError as exc:
            if not path.exists() or not (is_disk_full(exc) or "readonly" in str(exc) or "read-only" in str(exc)
                                         or "disk I/O" in str(exc) or "unable to open" in str(exc)):
                raise
            self._open_readonly(exc)

    @staticmethod
    def _connect(target: str, uri: bool) -> sqlite3.Connection:
        # serialized SQLite (sqlite3.threadsafety == 3): one connection may serve LCEL worker threads too
        return sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, check_same_thread=sqlite3.threadsafety < 3)

    def _migrate(self) -> None:
        have = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"info", "documents", "chunks"} <= have:
            self.db.executescript(SCHEMA)
        for table, cols in ADDED_COLUMNS.items():
            present = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            for name, decl in cols:
                if name not in present:
                    with self.db:
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    def _open_readonly(self, cause: Exception) -> None:
        """The docstore for reading only (a full disk or a read-only home): read-only mode, else immutable."""
        for query in ("mode=ro", "immutable=1"):
            try:
                db = self._connect(f"file:{self.path}?{query}", uri=True)
                db.execute("SELECT count(*) FROM documents").fetchone()
            except sqlite3.Error:
                continue
            self.db, self.readonly = db, True
            log.warning("the docstore at %s is open for reading only (the disk is full or read-only: %s)",
                        self.path, cause)
            return
        raise cause

    @contextlib.contextmanager
    def _write(self):
        """One write transaction; a full disk becomes DiskFullError (the transaction is rolled back)."""
        try:
            with self.db:
                yield self.db
        except sqlite3.OperationalError as exc:
            if is_disk_full(exc):
                raise disk_full(self.path) from None
            if self.readonly or "readonly" in str(exc):
                raise ConfigError(f"the index at {self.path.parent} is read-only here ({exc}); make it writable "
                                  "or use another --home") from None
            raise

    # -- info ---------------------------------------------------------------------------------------------
    def info(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM info WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_info(self, key: str, value: str) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO info VALUES (?, ?)", (key, value))

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
                       chunks: Sequence[Chunk], terms: Sequence[str], flags: Sequence[str] | None = None) -> None:
        """Write the document and its chunks as ``pending`` in one transaction (invisible to readers).

        ``flags`` holds one JSON string per chunk (``""`` for none). A ``doc_id`` already used by another source
        is an error, never a silent replacement."""
        flags = list(flags) if flags is not None else [""] * len(chunks)
        with self._write() as db:
            row = db.execute("SELECT source FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
            if row is not None and row[0] != source:
                raise RagReportsError(f"doc id {doc_id!r} already names {row[0]}, not {source}; re-run the "
                                      "ingest (ids are chosen under the index's write lock)")
            db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
            db.execute(
                "INSERT OR REPLACE INTO documents (doc_id, source, sha256, fingerprint, status, text, original, "
                "meta, encoding, format, chunks) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (doc_id, source, sha256, fingerprint, "pending", text, original,
                 json.dumps(meta.to_json(), ensure_ascii=False), encoding, fmt, len(chunks)),
            )
            db.executemany(
                'INSERT INTO chunks (doc_id, idx, start, "end", section, tokens, text, terms, years, kind, mentions, '
                "flags) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [(doc_id, c.index, c.start, c.end, c.section, c.tokens, c.text, t, ",".join(map(str, c.years)), c.kind,
                  ",".join(map(str, c.mentions)), f) for c, t, f in zip(chunks, terms, flags, strict=True)],
            )
            if self.info("generation") is None:
                db.execute("INSERT INTO info VALUES ('generation', '0')")

    def mark_ready(self, doc_id: str) -> None:
        with self._write() as db:
            db.execute("UPDATE documents SET status='ready' WHERE doc_id=?", (doc_id,))
            self._bump()

    def delete(self, doc_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
            db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            self._bump()

    def vacuum(self) -> bool:
        """Rewrite the file without free pages and empty the WAL, so deleted text is gone from disk. False when
        another connection kept part of the WAL (it is emptied by a later write)."""
        try:
            self.db.execute("VACUUM")
            busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError as exc:
            if is_disk_full(exc):
                raise disk_full(self.path) from None
            log.warning("could not vacuum the docstore at %s (%s)", self.path, exc)
            return False
        return not busy

    def chunk_flags(self, doc_id: str) -> dict[int, dict]:
        """The flags of each flagged chunk of ``doc_id`` (chunk index -> {"injection": [...], "unreadable": [...]})."""
        try:
            rows = self.db.execute("SELECT idx, flags FROM chunks WHERE doc_id=? AND flags<>''", (doc_id,)).fetchall()
        except sqlite3.OperationalError:  # an older docstore opened read-only, before its column was added
            return {}
        return {int(i): json.loads(f) for i, f in rows}

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

    def chunk_ids(self, status: str = "ready") -> dict[str, list[int]]:
        """Chunk indexes per document of the given status."""
        rows = self.db.execute(
            "SELECT c.doc_id, c.idx FROM chunks c JOIN documents d ON d.doc_id=c.doc_id WHERE d.status=? "
            "ORDER BY c.doc_id, c.idx", (status,))
        out: dict[str, list[int]] = {}
        for d, i in rows:
            out.setdefault(d, []).append(int(i))
        return out

    def integrity(self) -> list[str]:
        """Problems SQLite and the rows themselves report: ``quick_check``, chunk counts, chunk text vs offsets."""
        problems = [r[0] for r in self.db.execute("PRAGMA quick_check") if r[0] != "ok"]
        for rec in self.list("ready"):
            text, _ = self.text(rec.doc_id)
            chunks = self.chunks(rec.doc_id)
            if len(chunks) != rec.chunks:
                problems.append(f"{rec.doc_id}: {len(chunks)} chunk rows, {rec.chunks} recorded")
            bad = [c.index for c in chunks if text[c.start:c.end] != c.text]
            if bad:
                problems.append(f"{rec.doc_id}: chunk(s) {bad[:5]} do not match the document text")
        return problems

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
    """Check that the index location can be written (writers call this before any change)."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(home) from None
        raise ConfigError(f"cannot write to the index location {home} ({exc.strerror}); "
                          "set RAGREPORTS_HOME or --home") from None
