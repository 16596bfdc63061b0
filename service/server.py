"""`figwatch run`: the scheduler, the outbox dispatcher and the HTTP endpoints in one
asyncio process.

    /healthz   200 while the process runs
    /readyz    200 when the database answers and the scheduler claims work, else 503
    /metrics   Prometheus text (see service.metrics)
    /api/...   the JSON API (see service.api)

Signals: SIGTERM (or SIGINT) stops claiming sources, gives in-flight checks
`grace` seconds (a second signal cuts that short), hands back the leases of
any it had to cancel, leaves undelivered alerts in the outbox and exits 0.
SIGHUP re-reads the config file and syncs the watchlist (sources and rules); a
bad file is logged and the running config kept.  Next-due times live in the
database (service.leases), so a restart resumes the schedule and replicas share
it; APScheduler jobs claim due sources from there (service.scheduler).  Every
`stale_interval` a job of the same scheduler queues `source_stale` ops alerts
(service.health; replicas alert once per episode).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .api import api_router, install_error_handlers, is_loopback
from .db.session import make_engine
from .errors import ConfigError, FigwatchError
from .leases import DEFAULT_LEASE_TTL, SourceLeases, replica_id, startup_lock
from .metrics import Metrics, TimedFetcher
from .pages import PageOutcome
from .pipeline import Clock, utcnow
from .runtime import Runtime
from .scheduler import CheckResult, LeaseScheduler, default_is_failure
from .settings import Settings, SourceConfig, load_settings
from .store import Store

__all__ = ["Service", "create_app", "split_listen"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the Service owns SIGTERM/SIGINT/SIGHUP."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="figwatch", version="0.1.0", docs_url=None, redoc_url=None)
    install_error_handlers(app)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "replica": service.owner}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        db_ok = service.store.ping()
        running = service.scheduler_running
        body = {"database": db_ok, "scheduler": running, "replica": service.owner}
        return JSONResponse(body, status_code=200 if db_ok and running else 503)

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api_router(service))
    return app


class Service:
    """The long-lived process.  `open()` builds the runtime; `serve()` runs until stopped.

    `loader` re-reads the config on SIGHUP; `lease_ttl` is how long a dead
    replica's sources stay claimed; `grace` is how long SIGTERM waits for
    in-flight checks; `capacity` caps checks in flight (default
    `max_concurrency`); `poll` caps how long the scheduler waits between claims.
    """

    def __init__(self, settings: Settings, *, loader: Callable[[], Settings] | None = None,
                 runtime: Runtime | None = None, lease_ttl: timedelta = DEFAULT_LEASE_TTL,
                 grace: float = 30.0, capacity: int | None = None, poll: float = 1.0,
                 dispatch_interval: float = 5.0, stale_interval: float = 30.0,
                 owner: str | None = None, clock: Clock = utcnow) -> None:
        self.settings = settings
        self._loader = loader or (lambda: load_settings(None))
        self._runtime = runtime
        self.lease_ttl, self.grace, self.poll = lease_ttl, grace, poll
        self.capacity = capacity or settings.max_concurrency
        self.dispatch_interval, self.stale_interval = dispatch_interval, stale_interval
        self.owner = owner or replica_id()
        self.clock = clock
        self.metrics = Metrics()
        self.stop = asyncio.Event()
        self.loopback_only = True
        self._by_name = {s.name: s for s in settings.sources}
        self._scheduler: LeaseScheduler | None = None
        self._reloading: asyncio.Task[bool] | None = None

    # -- what the API and the health endpoints read -----------------------------------------

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("Service.open() was not called")
        return self._runtime

    @property
    def store(self) -> Store:
        return self.runtime.store

    @property
    def scheduler(self) -> LeaseScheduler:
        if self._scheduler is None:
            raise RuntimeError("Service.open() was not called")
        return self._scheduler

    @property
    def scheduler_running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    @property
    def api_token(self) -> str | None:
        token = self.settings.api_token
        return token.get_secret_value() if token is not None else None

    async def check_now(self, name: str) -> CheckResult:
        return await self.scheduler.check_now(name)

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Migrate, sync the watchlist (one replica at a time) and wire the parts."""
        if self._runtime is None:
            lock_engine = make_engine(self.settings.database_url)
            try:
                with startup_lock(lock_engine):
                    self._runtime = Runtime(self.settings, clock=self.clock, keep_figures=False)
            finally:
                lock_engine.dispose()
        runtime = self.runtime
        runtime.pipeline.fetcher = TimedFetcher(  # type: ignore[assignment]
            runtime.fetcher, self.metrics.fetch_seconds)
        leases = SourceLeases(runtime.store.engine, self.owner, self.lease_ttl)
        self._scheduler = LeaseScheduler(
            leases, runtime.pipeline.check_source, lambda: self._by_name,
            capacity=self.capacity, poll=self.poll, clock=self.clock,
            on_checked=self._checked)
        self._scheduler.every(self.stale_interval, self._check_stale, name="stale-watch")
        self.metrics.watch_database(runtime.store, lambda: self.settings, self.clock)
        self.metrics.watch_scheduler(self.owner, lambda: self.scheduler_running,
                                     lambda: self.scheduler.in_flight)

    def _checked(self, name: str, pages: list[PageOutcome] | None, seconds: float) -> None:
        failed = pages is None or default_is_failure(pages)
        self.metrics.observe_check(pages, seconds, failed)
        alerts = sum(p.alerts for p in pages or ())
        if alerts:
            self.runtime.dispatcher.notify()  # deliver now, not at the next interval
        for page in pages or ():
            if page.changes:
                log.info("source %s: %d change(s), %d alert(s)", name, len(page.changes),
                         page.alerts, extra={"source": name, "url": page.url})

    async def serve(self, host: str, port: int) -> int:
        """Run until SIGTERM/SIGINT (or `stop` is set); returns the exit code."""
        sock = _bind(host, port)
        self.loopback_only = is_loopback(host)
        if self.api_token is None and not self.loopback_only:
            log.warning("JSON API is off: listening on %s without api_token "
                        "(set FIGWATCH_API_TOKEN)", host)
        if self._scheduler is None:
            try:
                self.open()
            except BaseException:
                sock.close()
                raise
        loop = asyncio.get_running_loop()
        # Checks park their database work and parsing in threads (asyncio.to_thread); the
        # default pool (cpus + 4) would cap a replica at a handful of checks in progress.
        loop.set_default_executor(ThreadPoolExecutor(max_workers=self.capacity + 8,
                                                     thread_name_prefix="figwatch"))
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        config = uvicorn.Config(create_app(self), log_level="warning", log_config=None,
                                access_log=False, lifespan="off")
        server = _Server(config)
        tasks = {
            asyncio.create_task(server.serve(sockets=[sock]), name="http"),
            asyncio.create_task(self.scheduler.run(self.stop, self.grace), name="scheduler"),
            asyncio.create_task(self.runtime.dispatcher.run_forever(
                self.stop, self.dispatch_interval), name="dispatcher"),
        }
        bound = sock.getsockname()
        log.info("figwatch run: listening on http://%s:%d, %d sources, replica %s",
                 bound[0], bound[1], len(self.settings.sources), self.owner,
                 extra={"replica": self.owner, "listen": f"{bound[0]}:{bound[1]}"})
        code = 0
        try:
            code = await self._until_stopped(server, tasks)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self.runtime.aclose()
            sock.close()
        log.info("figwatch run: stopped", extra={"replica": self.owner})
        return code

    async def _until_stopped(self, server: uvicorn.Server, tasks: set[asyncio.Task[None]]) -> int:
        stopper = asyncio.create_task(self.stop.wait())
        await asyncio.wait({stopper, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        self.stop.set()
        await stopper
        work = [t for t in tasks if t.get_name() != "http"]
        await asyncio.gather(*work, return_exceptions=True)
        server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        code = 0
        for task in tasks:
            exc = task.exception() if not task.cancelled() else None
            if exc is not None:
                log.error("%s stopped with an error: %r", task.get_name(), exc, exc_info=exc)
                code = 1
        return code

    async def _check_stale(self) -> None:
        """Queue `source_stale` ops alerts (service.health; a job of the scheduler, every
        `stale_interval` seconds); replicas sharing the database alert once per episode."""
        try:
            alerts = await asyncio.to_thread(self.runtime.pipeline.health.check_stale,
                                             self.clock())
        except FigwatchError as exc:
            log.warning("stale check failed: %s", exc)
            return
        if alerts:
            self.runtime.dispatcher.notify()

    def _on_stop_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self.stop.is_set():
            log.warning("received %s again: cancelling the checks in flight", name)
            if self._scheduler is not None:
                self._scheduler.force()
            return
        log.info("received %s: stopping (in-flight checks get %gs)", name, self.grace)
        self.stop.set()

    def _on_reload_signal(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.create_task(self.reload())

    async def reload(self) -> bool:
        """Re-read the config and apply its watchlist and rules; False if the file is bad."""
        try:
            new = await asyncio.to_thread(self._loader)
        except ConfigError as exc:
            log.error("reload failed, keeping the running config: %s", exc)
            return False
        kept = ("sources", "rules", "api_token")
        if new.model_dump(exclude=set(kept)) != self.settings.model_dump(exclude=set(kept)):
            log.warning("reload: only sources, rules and api_token change on SIGHUP; "
                        "restart to apply the other settings")
        await asyncio.to_thread(self._sync_sources, new.sources)
        self.settings = new
        self.runtime.apply_settings(new)
        self._by_name = {s.name: s for s in new.sources}
        self.scheduler.sources_changed()
        log.info("reloaded config: %d sources, %d rules", len(new.sources), len(new.rules))
        return True

    def _sync_sources(self, sources: tuple[SourceConfig, ...]) -> None:
        with startup_lock(self.store.engine):
            self.store.sync_sources(sources)


def _bind(host: str, port: int) -> socket.socket:
    """Bind before anything starts, so a taken port is a clear error, not a dying task."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise FigwatchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)
