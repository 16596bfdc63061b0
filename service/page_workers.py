"""Page workers: processes that parse, extract and store fetched pages (and record
unchanged ones, a batch at a time).

A cycle's CPU goes to parsing, figure extraction and the store's diff and
writes.  In one process all of it shares one core, under the GIL, with the
event loop that fetches.  With `parse_workers = N`, N processes each hold a
`PageProcessor` with their own `Store` (engine and connections), and the
service process only fetches and hands each body over: a page is still one
transaction, committed by the worker that processed it.

Each worker is a fresh interpreter (`python -m service.page_workers`: it holds
only what it imports), joined to the service by a socket pair that the event
loop itself writes tasks to and reads results from: no helper thread in the
service process.  (A ProcessPoolExecutor runs two, a feeder and a manager, that
take the GIL from the event loop on every page: a profile of a 4,000-page cycle
found the loop waiting to get it back after waking the manager thread in a
quarter of its samples.)  Nor multiprocessing's `spawn`, which also starts a
resource tracker process (12 MB of a 300 MB budget, for semaphores no one
makes) and runs the parent's main script again in every worker (a script
without an `if __name__ == "__main__"` guard then starts a service in each).

A worker holds at most `DEPTH` pages, the one it works on and the next, so it
never waits for the loop, and a page waits for the first worker that has room.

Workers get the settings once, when they start (without the watchlist, which
they never read); `restart` replaces them when the rules change, and the old
ones finish what they hold.  A worker that dies (out of memory, a crash in a C
extension) fails the pages it held with `PageWorkerError`, and a new worker
takes its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from .errors import PageWorkerError
from .fetch import FetchResult
from .pages import Fetched, PageOutcome, PageProcessor
from .settings import Settings, SourceConfig
from .store import KnownPage, Store

log = logging.getLogger(__name__)

DEPTH = 2  # pages handed to one worker at a time: the one it works on, and the next
_HEADER = struct.Struct("!i")  # multiprocessing.connection's frame: a length, then a pickle
_STOP_TIMEOUT = 10.0  # seconds a closing worker gets to finish before it is killed


def _serve(conn: Connection) -> None:
    """A worker's life: take the settings, then a task (a page, or a batch of unchanged
    pages) at a time, do it, answer; until the service hangs up."""
    try:
        settings, keep_figures = conn.recv()
    except EOFError:  # the service went away first
        return
    processor = PageProcessor(settings, Store(settings.database_url), keep_figures=keep_figures)
    while True:
        try:
            seq, (call, args) = conn.recv()
        except EOFError:
            return
        try:
            conn.send((seq, _CALLS[call](processor, *args), None))
        except Exception as exc:  # the caller's to handle, as if processed in its process
            conn.send((seq, None, _portable(exc)))


_CALLS: dict[str, Callable[..., Any]] = {
    "process": PageProcessor.process,
    "record_unchanged": PageProcessor.record_unchanged,
}


def _portable(exc: Exception) -> Exception:
    """`exc` if it survives pickling, else a RuntimeError that names it."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # any failure to round-trip means: describe it instead
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


class _Worker:
    """One worker process and the pages it holds, by task number (with their URLs)."""

    def __init__(self, settings: Settings, keep_figures: bool) -> None:
        ours, theirs = socket.socketpair()
        # The same interpreter, environment and working directory: it imports this code.
        self.process = subprocess.Popen([sys.executable, "-m", __name__, str(theirs.fileno())],
                                        pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        theirs.close()
        # Before the loop takes the socket.  If the worker died at once, its first task
        # finds it gone and a new one starts.
        with contextlib.suppress(OSError):
            ours.sendall(_frame((settings, keep_figures)))
        self._sock = ours
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self.held: dict[int, tuple[asyncio.Future[Any], str]] = {}
        self.alive = True
        self.stopping = False

    async def send(self, seq: int, what: str, call: str, args: tuple[Any, ...]
                   ) -> asyncio.Future[Any]:
        """Hand over `_CALLS[call](processor, *args)`; `what` names the page(s) in errors."""
        if self._writer is None:
            reader, self._writer = await asyncio.open_unix_connection(sock=self._sock)
            self._reading = asyncio.create_task(self._read(reader))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.held[seq] = (future, what)
        self._writer.write(_frame((seq, (call, args))))  # buffered: never blocks the loop
        return future

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
                seq, outcome, exc = pickle.loads(await reader.readexactly(size))
                future, _ = self.held.pop(seq)
                if not future.done():
                    if exc is None:
                        future.set_result(outcome)
                    else:
                        future.set_exception(exc)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker is gone: stopped, or dead
        self.alive = False
        exit_code = self.process.poll()
        if self.held and not self.stopping:
            log.error("a page worker died (exit code %s); starting a new one", exit_code)
        for future, url in self.held.values():
            if not future.done():
                future.set_exception(PageWorkerError(
                    f"page worker died while processing {url} (exit code {exit_code})"))
        self.held.clear()

    def stop(self) -> None:
        """Hang up: the worker finishes what it holds, answers, and exits."""
        self.stopping = True
        if self._writer is not None:
            if not self._writer.is_closing():
                self._writer.write_eof()
        else:
            self._sock.close()
            self.alive = False

    def join(self) -> None:
        try:
            self.process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._writer is not None:
            self._writer.close()


class PageWorkers:
    """The page worker processes (see the module docstring)."""

    def __init__(self, settings: Settings, count: int, *, keep_figures: bool) -> None:
        self.count = count
        self.keep_figures = keep_figures
        self._settings = settings
        self._workers = [self._spawn() for _ in range(count)]
        self._retired: list[_Worker] = []
        self._room: asyncio.Condition | None = None
        self._seq = 0

    def _spawn(self) -> _Worker:
        light = self._settings.model_copy(update={"sources": ()})
        return _Worker(light, self.keep_figures)

    @property
    def held(self) -> int:
        """Pages handed to workers and not answered yet."""
        return sum(len(w.held) for w in self._workers)

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        """The worker processes taking pages now."""
        return [w.process for w in self._workers]

    async def process(self, source: SourceConfig, url: str, result: FetchResult, at: datetime,
                      known: KnownPage | None) -> PageOutcome:
        outcome: PageOutcome = await self._call(url, "process", (source, url, result, at, known))
        return outcome

    async def record_unchanged(self, pages: Sequence[Fetched]) -> list[PageOutcome]:
        """A batch of unchanged pages (`service.group_commit`), recorded by a worker in one
        transaction: in a cycle of 304s the service process then only fetches."""
        what = pages[0].url if len(pages) == 1 else (
            f"{len(pages)} unchanged pages ({pages[0].url}, ...)")
        outcomes: list[PageOutcome] = await self._call(what, "record_unchanged", (list(pages),))
        return outcomes

    async def _call(self, what: str, call: str, args: tuple[Any, ...]) -> Any:
        if self._room is None:
            self._room = asyncio.Condition()
        async with self._room:
            worker = await self._room.wait_for(self._free)
            assert worker is not None  # `wait_for` returns once `_free` finds one
            self._seq += 1
            future = await worker.send(self._seq, what, call, args)
        try:
            return await future
        finally:
            async with self._room:
                self._room.notify()

    def _free(self) -> _Worker | None:
        """The worker holding the fewest pages, if it has room (a dead one is replaced)."""
        for i, worker in enumerate(self._workers):
            if not worker.alive and not worker.stopping:
                worker.join()
                self._workers[i] = self._spawn()
        best = min(self._workers, key=lambda w: len(w.held))
        return best if len(best.held) < DEPTH else None

    def restart(self, settings: Settings) -> None:
        """New workers with `settings`; pages already handed over finish in the old ones."""
        old, self._settings = self._workers, settings
        self._workers = [self._spawn() for _ in range(self.count)]
        for worker in old:
            worker.stop()
        self._retired = [w for w in self._retired if w.process.poll() is None] + old

    def close(self) -> None:
        workers: Sequence[_Worker] = [*self._workers, *self._retired]
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join()


if __name__ == "__main__":  # a worker: `python -m service.page_workers FD`
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the service's to handle
    _serve(Connection(int(sys.argv[1])))
