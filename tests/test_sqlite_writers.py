"""SQLite writers of several processes queue on one file lock and hand over at once."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from service.db.session import WriterQueue


def _acquire(database: str, started: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue = WriterQueue(database)
    with queue:
        out.put(time.monotonic() - started)
    queue.close()


def test_a_second_process_waits_for_the_writer_then_gets_the_lock_at_once(tmp_path: Path) -> None:
    database = str(tmp_path / "fw.db")
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    queue = WriterQueue(database)
    started = time.monotonic()
    with queue, queue:  # re-entrant within the thread; released once, at the outer exit
        child = context.Process(target=_acquire, args=(database, started, out))
        child.start()
        time.sleep(1.0)
        assert out.empty()  # still waiting for us
        released = time.monotonic() - started
    got = out.get(timeout=10)
    child.join(10)
    queue.close()
    assert released <= got < released + 0.5
    assert (tmp_path / "fw.db-writer.lock").exists()


def test_an_in_memory_database_needs_no_file() -> None:
    queue = WriterQueue(":memory:")
    with queue:
        pass
    queue.close()
