"""Chroma's stores behind the vector index: the on-disk one (``DiskStore``, one per home and process) and a server
(``ServerStore``). Every access to Chroma goes through a store's ``session``; the collection-level API on top is
:class:`ragreports.index.vectors.VectorIndex`.

On disk, Chroma's files are not safe for several processes at once: its persistent client rewrites the HNSW segment
files even when it only reads, and a process that loads them while another writes them can crash (SIGSEGV) and
leave them unreadable. So every ``DiskStore.session``

1. holds the home's ``storage.lock`` (exclusive, one call long: readers and writers take turns);
2. reopens the client when another process touched the store since this one did (its in-memory segments would be
   stale), so each process always works on what is on disk;
3. marks the store busy in the lock's record and clears the mark when the call returns. A mark left behind means a
   process died inside Chroma (killed, crashed, disk full): the next session probes the store in a child process
   (a crash there cannot take us down) and either goes on or raises :class:`IndexDamagedError`, which says to run
   ``ragreports doctor --repair`` (it rebuilds the vectors from the docstore and the embedding cache).

With a Chroma server (``RAGREPORTS_CHROMA_URL``) the server serializes access and there is nothing to lock: that is
the mode for many concurrent users.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlparse

from ragreports.errors import ConfigError, IndexDamagedError, ProviderError, RagReportsError
from ragreports.index.faults import device_full, disk_full, is_disk_full
from ragreports.index.locks import describe_process, storage_lock
from ragreports.redaction import display_url, redact

log = logging.getLogger("ragreports.index")

PROBE_TIMEOUT_S = 300
_SEGMENT_DIR = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Run in a child process by :meth:`DiskStore.probe`: opens the store, reads every id and embedding and runs one
# query. Prints one JSON object; a crash (signal) or an exception is itself the finding.
PROBE_SCRIPT = r"""
import json, sys
import chromadb
from chromadb.config import Settings
path, name = sys.argv[1], sys.argv[2]
out = {"collection": False, "count": 0, "ids": [], "missing": [], "query": None}
client = chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))
try:
    col = client.get_collection(name)
except Exception:
    print(json.dumps(out)); sys.exit(0)
out["collection"] = True
out["count"] = col.count()
offset, first = 0, None
while True:
    got = col.get(include=["embeddings"], limit=2000, offset=offset)
    if not got["ids"]:
        break
    embs = got["embeddings"]
    for i, e in zip(got["ids"], embs if embs is not None else [None] * len(got["ids"])):
        out["ids"].append(i)
        if e is None or len(e) == 0:
            out["missing"].append(i)
        elif first is None:
            first = [float(x) for x in e]
    offset += len(got["ids"])
if first is not None:
    res = col.query(query_embeddings=[first], n_results=min(10, max(1, out["count"])), include=[])
    out["query"] = len(res["ids"][0])
client.close()
print(json.dumps(out))
"""


def _chroma_settings():
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False)


# -- on disk ----------------------------------------------------------------------------------------------------
class DiskStore:
    """The Chroma files of one home, opened at most once per process (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = storage_lock(self.path.parent)
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.client = None
        self._cols: dict[str, object] = {}
        self._guard = threading.RLock()
        self._repaired = False

    def _open(self):
        import chromadb

        self.path.mkdir(parents=True, exist_ok=True)
        self.client = chromadb.PersistentClient(path=str(self.path), settings=_chroma_settings())
        self._cols = {}
        return self.client

    def close(self) -> None:
        with self._guard:
            client, self.client, self._cols = self.client, None, {}
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()

    def collection(self, name: str, **create):
        """The collection ``name`` of the open client (created with ``create`` kwargs when given)."""
        col = self._cols.get(name)
        if col is None:
            if create:
                col = self.client.get_or_create_collection(name, embedding_function=None, **create)
            else:
                col = self.client.get_collection(name, embedding_function=None)
            self._cols[name] = col
        return col

    @contextlib.contextmanager
    def session(self, op: str, *, check: bool = True) -> Iterator[DiskStore]:
        """Exclusive, crash-marked access to the store for one call (``op`` names it in the record)."""
        with self._guard, self.lock.hold():
            rec = self.lock.read_record() or {}
            if check and (rec.get("busy") or rec.get("damaged")):
                self._after_crash(rec)
            if self.client is not None and rec.get("owner") != self.token:
                self.close()  # another process changed the files: our loaded segments are stale
            busy = {**describe_process(), "op": op}
            self.lock.write_record({"owner": self.token, "busy": busy, "damaged": rec.get("damaged")})
            self._repaired = False
            try:
                if self.client is None:
                    self._open()
                yield self
            except (KeyboardInterrupt, SystemExit, RagReportsError):
                # Chroma's calls return before Python sees an interrupt: the files are whole.
                self._finish(rec)
                raise
            except Exception as exc:
                self.close()  # the mark stays: the next session checks the files first
                if is_disk_full(exc) or device_full(self.path):
                    raise disk_full(self.path) from None
                raise IndexDamagedError(
                    f"the vector index at {self.path} failed during {op} ({type(exc).__name__}: "
                    f"{redact(str(exc))[:200]}); run `ragreports doctor` to check it and `ragreports doctor "
                    "--repair` to rebuild it from the docstore") from None
            self._finish(rec)

    def _finish(self, rec: dict) -> None:
        damaged = None if self._repaired else rec.get("damaged")
        self.lock.write_record({"owner": self.token, "busy": None, "damaged": damaged})

    def _after_crash(self, rec: dict) -> None:
        """A previous access did not finish (or found damage): check the files in a child process first."""
        busy = rec.get("busy") or {}
        self.close()
        report = self.probe()
        if report.get("error") is None:
            log.info("the vector index at %s was left mid-%s by pid %s; checked, it reads fine", self.path,
                     busy.get("op"), busy.get("pid"))
            self.lock.write_record({"owner": None, "busy": None, "damaged": None})
            return
        if device_full(self.path):  # Chroma cannot even read without writing: not damage, a full disk
            raise disk_full(self.path)
        self.lock.write_record({**rec, "damaged": report["error"]})
        how = (f"was left mid-{busy.get('op', 'write')} by pid {busy.get('pid')} ({busy.get('command', '?')}) and "
               if busy else "")
        raise IndexDamagedError(
            f"the vector index at {self.path} {how}cannot be read ({report['error']}); run `ragreports doctor "
            "--repair` to rebuild it from the docstore and the embedding cache")

    def mark_repaired(self) -> None:
        """Clear the damage mark when the current session ends (after a rebuild)."""
        self._repaired = True

    def probe(self, collection: str | None = None) -> dict:
        """Read the whole store in a child process (call while holding the lock). Returns the probe's JSON
        (``ids``, ``missing`` embeddings, ``count``, ``query``) plus ``error``: None, or what went wrong (a crash
        signal, an exception, a timeout)."""
        names = [collection] if collection else self._collection_names()
        out: dict = {"error": None, "collections": {}}
        if not self.path.exists() or not names:
            return out
        for name in names:
            try:
                p = subprocess.run([sys.executable, "-c", PROBE_SCRIPT, str(self.path), name], capture_output=True,
                                   text=True, timeout=PROBE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                out["error"] = f"reading it took over {PROBE_TIMEOUT_S}s"
                break
            if p.returncode < 0:
                out["error"] = f"reading it crashed the process (signal {-p.returncode})"
                break
            if p.returncode != 0:
                last = [line for line in p.stderr.strip().splitlines() if line.strip()][-1:] or ["?"]
                out["error"] = redact(last[0])[:240]
                break
            try:
                out["collections"][name] = json.loads(p.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                out["error"] = "the probe printed no result"
                break
        return out

    def _collection_names(self) -> list[str]:
        db = self.path / "chroma.sqlite3"
        if not db.exists():
            return []
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                return [r[0] for r in con.execute("SELECT name FROM collections")]
        except sqlite3.Error:
            return ["?"]  # unreadable: let the probe say why

    def log_holds(self, doc_ids: Sequence[str]) -> bool | None:
        """Whether Chroma's write-ahead log still holds records of ``doc_ids`` (it keeps the text of recent writes
        until their HNSW segment is next persisted); None when the log cannot be read (treat as yes)."""
        db = self.path / "chroma.sqlite3"
        if not db.exists():
            return False
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                for d in doc_ids:
                    like = d.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
                    if con.execute("SELECT 1 FROM embeddings_queue WHERE id LIKE ? ESCAPE '\\' LIMIT 1",
                                   (like,)).fetchone():
                        return True
            return False
        except sqlite3.Error:
            return None

    def vacuum(self) -> None:
        """Rewrite chroma.sqlite3 without its free pages (deleted text) and remove segment folders no collection
        uses; call inside a session. Chroma's client is closed first and reopened on next use."""
        self.close()
        db = self.path / "chroma.sqlite3"
        if db.exists():
            with contextlib.closing(sqlite3.connect(str(db), timeout=30)) as con:
                con.execute("VACUUM")
        self.remove_orphan_segments()

    def remove_orphan_segments(self) -> None:
        db = self.path / "chroma.sqlite3"
        if not db.exists():
            return
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                used = {str(r[0]) for r in con.execute("SELECT id FROM segments")}
        except sqlite3.Error:
            return
        for d in self.path.iterdir():
            if d.is_dir() and _SEGMENT_DIR.match(d.name) and d.name not in used:
                shutil.rmtree(d, ignore_errors=True)

    def wipe(self) -> None:
        """Remove the store's files entirely (repair of an unreadable store); call inside a session."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._repaired = True


_stores: dict[str, DiskStore] = {}
_stores_guard = threading.Lock()


def disk_store(path: Path) -> DiskStore:
    """The process's one :class:`DiskStore` for ``path``."""
    key = os.path.abspath(path)
    with _stores_guard:
        return _stores.setdefault(key, DiskStore(Path(key)))


# -- on a server ------------------------------------------------------------------------------------------------
class ServerStore:
    """A Chroma server: no file lock (the server serializes access); failures are ProviderErrors."""

    def __init__(self, url: str):
        import chromadb

        self.url = url
        u = urlparse(url if "://" in url else f"http://{url}")
        try:
            self.client = chromadb.HttpClient(host=u.hostname or "127.0.0.1", port=u.port or 8000,
                                              ssl=u.scheme == "https", settings=_chroma_settings())
            self.client.heartbeat()
        except Exception as exc:
            raise ConfigError(
                f"cannot reach the Chroma server at {display_url(url)} ({type(exc).__name__}); start it with "
                "`chroma run --path DIR --port PORT` or unset RAGREPORTS_CHROMA_URL to use the on-disk index"
            ) from None
        self._cols: dict[str, object] = {}

    def collection(self, name: str, **create):
        col = self._cols.get(name)
        if col is None:
            if create:
                col = self.client.get_or_create_collection(name, embedding_function=None, **create)
            else:
                col = self.client.get_collection(name, embedding_function=None)
            self._cols[name] = col
        return col

    @contextlib.contextmanager
    def session(self, op: str, *, check: bool = True) -> Iterator[ServerStore]:
        try:
            yield self
        except (KeyboardInterrupt, SystemExit, RagReportsError):
            raise
        except Exception as exc:
            self._cols = {}
            raise ProviderError(f"the Chroma server at {display_url(self.url)} failed during {op} "
                                f"({type(exc).__name__}: {redact(str(exc))[:200]}); check the server") from None

    def close(self) -> None:
        self._cols = {}


def open_store(path: Path, url: str | None) -> DiskStore | ServerStore:
    return ServerStore(url) if url else disk_store(path)


def drop_collection(path: Path, url: str | None, collection: str) -> None:
    """Remove the collection and every vector in it (through the seam: Chroma caches open stores in-process)."""
    if not url and not path.exists():
        return
    store = open_store(path, url)
    with store.session("drop collection", check=False):
        try:
            store.client.delete_collection(collection)
        except Exception:  # missing collection (or a store too broken to say): nothing more to drop here
            log.debug("collection %s not dropped on %s", collection, url or path)
        store.close()
        if isinstance(store, DiskStore):
            store.remove_orphan_segments()
            store.mark_repaired()
