"""The home's locks: one writer at a time across processes, re-entrant inside one, and a busy lock names its holder."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from ragreports.errors import IndexBusyError
from ragreports.index.locks import FileLock, write_lock

HOLD = """
import sys, time
from ragreports.index.locks import write_lock
lock = write_lock(sys.argv[1])
lock.acquire(record={"pid": 4242, "command": "ragreports ingest big.txt", "since": "2025-01-01T10:00:00"})
print("held", flush=True)
sys.stdin.readline()  # hold until the test says so (or closes stdin)
lock.release()
"""


@pytest.fixture
def other_process(tmp_path):
    """A child process holding ``write.lock`` of ``tmp_path`` until released."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "held"
    yield p
    if p.poll() is None:
        p.stdin.close()
        p.wait(timeout=30)


def test_busy_lock_fails_fast_and_names_the_holder(tmp_path, other_process):
    with pytest.raises(IndexBusyError, match=r"pid 4242 \(ragreports ingest big\.txt, since 2025-01-01T10:00:00\)"):
        write_lock(tmp_path).acquire(wait=False)


def test_waiter_is_told_once_then_gets_the_lock(tmp_path, other_process):
    told: list[dict | None] = []
    lock = write_lock(tmp_path)
    got = threading.Event()

    def wait_for_it():
        with lock.hold(on_wait=told.append, record={"pid": 1, "command": "second"}):
            got.set()

    t = threading.Thread(target=wait_for_it)
    t.start()
    deadline = time.monotonic() + 30
    while not told and time.monotonic() < deadline:
        time.sleep(0.05)
    assert told and told[0]["pid"] == 4242 and not got.is_set()  # told who holds it, and still waiting
    other_process.stdin.write("\n")
    other_process.stdin.flush()
    t.join(timeout=30)
    assert got.is_set() and len(told) == 1
    assert lock.read_record()["command"] == "second"  # the new holder's record replaced the old one


def test_timeout_gives_up_with_the_holder(tmp_path, other_process):
    with pytest.raises(IndexBusyError, match="pid 4242"):
        write_lock(tmp_path).acquire(timeout=0.3)


def test_reentrant_in_a_process_and_exclusive_between_threads(tmp_path):
    a, b = FileLock(tmp_path / "x.lock", "x"), FileLock(tmp_path / "x.lock", "x")  # two objects, one lock
    order: list[str] = []
    with a.hold(), b.hold():  # nested use in one thread never deadlocks
        assert a.held_here
        t = threading.Thread(target=lambda: (b.acquire(), order.append("thread"), b.release()))
        t.start()
        time.sleep(0.3)
        order.append("main")  # the other thread cannot enter while this one holds the lock
    t.join(timeout=10)
    assert order == ["main", "thread"] and not a.held_here


def test_lock_is_released_when_its_process_dies(tmp_path, other_process):
    other_process.kill()
    other_process.wait(timeout=30)
    with write_lock(tmp_path).hold(wait=False):  # no stale lock after a kill
        pass
