"""`figwatch run`: scheduler, outbox dispatcher and HTTP endpoints in one asyncio process.

SIGTERM (or SIGINT) stops scheduling, lets the in-flight cycle finish and exits 0;
undelivered alerts stay in the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime, timedelta

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .metrics import Metrics
from .runtime import Runtime
from .settings import Settings, SourceConfig

log = logging.getLogger(__name__)


def create_app(runtime: Runtime, metrics: Metrics, state: dict[str, bool]) -> FastAPI:
    app = FastAPI(title="figwatch", version="0.1.0")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        db_ok = runtime.store.ping()
        ready = db_ok and state.get("scheduler", False)
        body = {"database": db_ok, "scheduler": state.get("scheduler", False)}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/sources")
    def sources() -> list[dict[str, object]]:
        return [h if isinstance(h, dict) else h.__dict__ for h in runtime.store.source_health()]

    return app


class Service:
    """The long-lived process: a due-time loop over sources plus the dispatcher."""

    def __init__(self, settings: Settings, runtime: Runtime | None = None) -> None:
        self.settings = settings
        self.runtime = runtime or Runtime(settings)
        self.metrics = Metrics()
        self.state = {"scheduler": False}
        self.stop = asyncio.Event()
        self._next_due: dict[str, datetime] = {}

    def _due(self, now: datetime) -> list[SourceConfig]:
        return [s for s in self.settings.sources if self._next_due.get(s.name, now) <= now]

    async def schedule_forever(self) -> None:
        self.state["scheduler"] = True
        self.metrics.up.set(1)
        try:
            while not self.stop.is_set():
                now = datetime.now(UTC)
                due = self._due(now)
                if due:
                    for s in due:
                        self._next_due[s.name] = now + s.every
                    report = await self.runtime.cycle(due)
                    self.metrics.cycles.inc()
                    for page in report.pages:
                        self.metrics.fetches.labels(page.outcome).inc()
                        self.metrics.figures.inc(len(page.figures))
                        for change in page.changes:
                            self.metrics.changes.labels(change.kind).inc()
                    self.metrics.alerts.labels("delivered").inc(report.dispatch.delivered)
                    self.metrics.alerts.labels("failed").inc(report.dispatch.failed)
                wake = min(self._next_due.values(), default=now + timedelta(seconds=1))
                delay = max(0.05, min(1.0, (wake - datetime.now(UTC)).total_seconds()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=delay)
        finally:
            self.state["scheduler"] = False
            self.metrics.up.set(0)

    async def serve(self, host: str, port: int) -> None:
        app = create_app(self.runtime, self.metrics, self.state)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        web = asyncio.create_task(server.serve())
        try:
            await self.schedule_forever()
        finally:
            server.should_exit = True
            await web
            await self.runtime.aclose()


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)
