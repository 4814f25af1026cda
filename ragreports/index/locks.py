"""Inter-process locks on small files in the index home (``fcntl.flock``), re-entrant inside a process.

Two locks guard an index (see :mod:`ragreports.workspace` and :mod:`ragreports.index.stores`):

- ``write.lock``: one writer at a time (``ingest``, ``delete``, ``doctor``), held for the whole command. A second
  writer waits (and is told who holds it) or, with ``wait=False``, fails at once with :class:`IndexBusyError`.
- ``storage.lock``: every access to Chroma's on-disk files and every swap of the BM25 files, held for one call.
  Chroma's persistent client rewrites its HNSW segments even when it only reads, so this lock is exclusive.

The kernel releases a ``flock`` when its process dies, so a killed process never leaves a stale lock. Each lock
file holds one small JSON record, rewritten in place (no new disk blocks, so it works on a full disk): the holder
of ``write.lock``, and for ``storage.lock`` which process touched the store last and whether that access finished.

Inside one process a lock is shared by every object that names the same file and is re-entrant per thread (a
``threading.RLock`` in front of the ``flock``), so nested use and several :class:`~ragreports.workspace.Workspace`
objects on one home cannot deadlock, and threads take turns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ragreports.errors import IndexBusyError

try:  # POSIX; elsewhere the locks are no-ops (README: concurrent use needs a POSIX system or the Chroma server)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("ragreports.index")

RECORD_BYTES = 1024  # the record is padded to this size and rewritten in place
POLL_S = 0.1


@dataclass
class _Held:
    thread_lock: threading.RLock = field(default_factory=threading.RLock)
    count: int = 0
    fd: int | None = None


_held: dict[str, _Held] = {}
_held_guard = threading.Lock()


def _entry(path: Path) -> _Held:
    key = os.path.abspath(path)
    with _held_guard:
        return _held.setdefault(key, _Held())


def describe_process() -> dict:
    """Who we are, for the record of a lock: pid, the command line and the time."""
    argv = [os.path.basename(sys.argv[0]) if sys.argv else "python", *sys.argv[1:]]
    if argv and argv[0] in ("__main__.py", "-c"):
        argv[0] = "ragreports"
    return {"pid": os.getpid(), "command": " ".join(argv)[:300],
            "since": datetime.now().isoformat(timespec="seconds")}


def holder_text(record: dict | None) -> str:
    """``pid 123 (ragreports ingest big.txt, since 2025-01-01T10:00:00)`` or ``another process``."""
    if not record or "pid" not in record:
        return "another process"
    return f"pid {record['pid']} ({record.get('command', '?')}, since {record.get('since', '?')})"


class FileLock:
    """An exclusive lock on ``path`` shared by the processes using one index home (see the module docstring)."""

    def __init__(self, path: Path, purpose: str):
        self.path = Path(path)
        self.purpose = purpose  # for messages: "write", "storage"

    # -- the record ---------------------------------------------------------------------------------------
    def read_record(self) -> dict | None:
        """The JSON record in the lock file (None when empty or unreadable); readable without holding the lock."""
        try:
            raw = self.path.read_bytes()[:RECORD_BYTES]
        except OSError:
            return None
        try:
            rec = json.loads(raw.rstrip(b"\0 \n").decode("utf-8") or "null")
        except (ValueError, UnicodeDecodeError):
            return None
        return rec if isinstance(rec, dict) else None

    def write_record(self, record: dict) -> bool:
        """Rewrite the record in place (only while holding the lock); False when it could not be written."""
        fd = _entry(self.path).fd
        if fd is None:
            return False
        data = json.dumps(record, ensure_ascii=False).encode("utf-8")[: RECORD_BYTES - 1]
        try:
            os.pwrite(fd, data.ljust(RECORD_BYTES - 1) + b"\n", 0)
            return True
        except OSError as exc:  # a full disk cannot grow a new lock file: the lock itself still works
            log.debug("cannot write the record of %s (%s)", self.path, exc)
            return False

    # -- locking ------------------------------------------------------------------------------------------
    def _open(self) -> int | None:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            try:
                return os.open(self.path, os.O_RDONLY)  # a read-only index: flock works on a read-only fd too
            except OSError as exc:
                log.debug("cannot open lock file %s (%s); going on without it", self.path, exc)
                return None

    def acquire(self, *, wait: bool = True, timeout: float | None = None,
                on_wait: Callable[[dict | None], None] | None = None, record: dict | None = None) -> None:
        """Take the lock. Busy: ``wait=False`` raises :class:`IndexBusyError` naming the holder; otherwise
        ``on_wait(holder_record)`` is called once and we wait (up to ``timeout`` seconds, then IndexBusyError).
        ``record`` is written into the lock file once it is ours."""
        held = _entry(self.path)
        deadline = None if timeout is None else time.monotonic() + timeout
        got = (held.thread_lock.acquire(blocking=False) if not wait
               else held.thread_lock.acquire(timeout=-1 if timeout is None else timeout))
        if not got:
            raise self._busy(None)
        try:
            if held.count == 0:
                self._lock_file(held, wait, deadline, on_wait)
                if record is not None:
                    self.write_record(record)
            held.count += 1
        except BaseException:
            held.thread_lock.release()
            raise

    def _lock_file(self, held: _Held, wait: bool, deadline: float | None,
                   on_wait: Callable[[dict | None], None] | None) -> None:
        fd = self._open()
        if fd is None or fcntl is None:
            held.fd = fd
            return
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.fd = fd
                return
            except BlockingIOError:
                pass
            except OSError as exc:  # e.g. a file system without flock support
                log.debug("flock on %s failed (%s); going on without it", self.path, exc)
                held.fd = fd
                return
            if not wait or (deadline is not None and time.monotonic() > deadline):
                os.close(fd)
                raise self._busy(self.read_record())
            if not told:
                told = True
                if on_wait is not None:
                    on_wait(self.read_record())
            time.sleep(POLL_S)

    def _busy(self, record: dict | None) -> IndexBusyError:
        home = self.path.parent
        return IndexBusyError(f"the index at {home} is being written by {holder_text(record)}; wait for it to "
                              "finish (run again without --no-wait to queue behind it)")

    def release(self) -> None:
        held = _entry(self.path)
        held.count -= 1
        if held.count == 0 and held.fd is not None:
            with contextlib.suppress(OSError):
                if fcntl is not None:
                    fcntl.flock(held.fd, fcntl.LOCK_UN)
                os.close(held.fd)
            held.fd = None
        held.thread_lock.release()

    @property
    def held_here(self) -> bool:
        """True when this process (any thread) holds the lock."""
        return _entry(self.path).count > 0

    @contextlib.contextmanager
    def hold(self, **kw) -> Iterator[FileLock]:
        self.acquire(**kw)
        try:
            yield self
        finally:
            self.release()


def storage_lock(home: Path) -> FileLock:
    """The lock every access to a home's Chroma files and BM25 files takes (one call long)."""
    return FileLock(Path(home) / "storage.lock", "storage")


def write_lock(home: Path) -> FileLock:
    """The lock a writer (``ingest``, ``delete``, ``doctor``) holds for its whole command."""
    return FileLock(Path(home) / "write.lock", "write")
