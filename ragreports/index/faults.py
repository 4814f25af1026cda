"""Storage faults seen by every part of the index: a full disk, whichever library reports it.

SQLite says ``database or disk is full``, the OS ``[Errno 28] No space left on device``, Chroma's Rust core
``No space left on device (os error 28)``. :func:`is_disk_full` recognises them all; :func:`disk_full` is the one
error the user sees.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path

from ragreports.errors import DiskFullError

_MARKERS = ("no space left on device", "database or disk is full", "disk is full", "os error 28",
            "disk quota exceeded", "os error 122")


def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the device is full."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DiskFullError):
            return True
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(cur, sqlite3.Error) and getattr(cur, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        if any(m in str(cur).lower() for m in _MARKERS):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def disk_full(path: Path) -> DiskFullError:
    """The one-line error for a full device holding ``path``."""
    return DiskFullError(f"no space left on the device holding {path}: free space, then re-run")


PROBE_BYTES = 256 * 1024


def device_full(path: Path) -> bool:
    """True when the device holding ``path`` cannot take a small write (asked after a library failed without
    saying why: Chroma reports a full disk as a failed compaction)."""
    folder = Path(path)
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    probe = folder / f".space-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0" * PROBE_BYTES)
            fh.flush()
            os.fsync(fh.fileno())
        return False
    except OSError as exc:
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def ensure_space(path: Path, need: int) -> None:
    """Raise :func:`disk_full` unless the device holding ``path`` has ``need`` bytes free (checked before a write
    that a library would fail half-way through)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return
    if st.f_bavail * st.f_frsize < need:
        raise disk_full(path)
