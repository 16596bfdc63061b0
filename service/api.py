"""The JSON API of `figwatch run` (`/api/...`): sources, figures, history, changes, alerts.

    GET  /api/sources                    every source with its health and lease
    GET  /api/sources/{name}             one source
    POST /api/sources/{name}/check       check it now, here; 200 with the outcome,
                                         409 if a replica is checking it already
    GET  /api/figures?source=&entity=&metric=&url=&active=&limit=
    GET  /api/history?entity=&metric=&period=
    GET  /api/changes?since=&limit=      changes detected at or after `since` (ISO-8601)
    GET  /api/alerts?state=&limit=       outbox rows, newest first

Every request needs `Authorization: Bearer <api_token>` when `api_token` is set;
without a token the API answers only on a loopback `listen` address (anything
else gets 403 with the reason).  Errors are `ApiError`s carrying their HTTP
status, rendered by one handler as `{"error": {"status": ..., "message": ...}}`;
FastAPI's own 404/405/422 go through the same shape.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from .db.models import Source
from .errors import StoreError
from .health import stale_sources
from .scheduler import CheckResult, NotRunning, SourceBusy
from .settings import Settings
from .store import Store

__all__ = ["ApiContext", "ApiError", "api_router", "install_error_handlers", "is_loopback"]

log = logging.getLogger(__name__)

# Module level: FastAPI resolves the (string) annotations of the endpoints here.
Limit = Annotated[int, Query(ge=1, le=10_000)]


class ApiError(Exception):
    """An API failure with the HTTP status it is answered with."""

    def __init__(self, status: int, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


class ApiContext(Protocol):
    """What the API needs from the running service."""

    loopback_only: bool

    @property
    def store(self) -> Store: ...

    @property
    def api_token(self) -> str | None: ...

    @property
    def settings(self) -> Settings: ...

    def clock(self) -> datetime: ...

    async def check_now(self, name: str) -> CheckResult: ...


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _error(status: int, message: str, **detail: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": {"status": status, "message": message, **detail}},
                        status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """One JSON shape for every error the HTTP endpoints answer with."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.message, **exc.detail)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _error(exc.status_code, str(exc.detail))

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [f"{'.'.join(str(p) for p in e['loc'] if p != 'query')}: {e['msg']}"
                    for e in exc.errors()]
        return _error(422, "; ".join(problems))

    async def store_error(_: Request, exc: Exception) -> JSONResponse:
        log.warning("API: database error: %s", exc)
        return _error(503, f"database unavailable: {exc}")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StoreError, store_error)


def _authorizer(ctx: ApiContext) -> Callable[[Request], None]:
    def authorize(request: Request) -> None:
        if ctx.api_token is None:
            if ctx.loopback_only:
                return
            raise ApiError(403, "the API is off: set api_token (FIGWATCH_API_TOKEN) or listen "
                                "on a loopback address")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                   ctx.api_token.encode()):
            raise ApiError(401, "missing or wrong bearer token")
    return authorize


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def _source_json(row: Source, now: datetime, stale: set[str]) -> dict[str, Any]:
    leased = row.lease_until is not None and row.lease_until >= now
    return {
        "name": row.name, "url": row.url, "every_seconds": row.every_seconds,
        "enabled": row.enabled, "last_success_at": _json(row.last_success_at),
        "consecutive_failures": row.consecutive_failures, "last_error": row.last_error,
        "next_due_at": _json(row.next_due_at),
        "stale": row.name in stale,
        "lease_owner": row.lease_owner if leased else None,
        "lease_until": _json(row.lease_until) if leased else None,
    }


def _sources(ctx: ApiContext, name: str | None = None) -> list[dict[str, Any]]:
    q = sa.select(Source).order_by(Source.name)
    if name is not None:
        q = q.where(Source.name == name)
    try:
        with Session(ctx.store.engine) as session:
            rows = session.scalars(q).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"list sources: {exc}") from exc
    now = ctx.clock()
    stale = {s.name for s in stale_sources(ctx.store, ctx.settings, now)}
    return [_source_json(r, now, stale) for r in rows]


def _check_json(result: CheckResult) -> dict[str, Any]:
    return {
        "source": result.source, "failed": result.failed, "seconds": round(result.elapsed, 3),
        "next_due_at": _json(result.next_due_at),
        "pages": [{"url": p.url, "outcome": p.outcome, "error": p.error,
                   "figures": p.figure_count, "alerts": p.alerts, "baseline": p.baseline,
                   "changes": [c.to_payload() for c in p.changes]}
                  for p in result.pages or ()],
    }


def api_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api", dependencies=[Depends(_authorizer(ctx))])

    @router.get("/sources")
    def list_sources() -> dict[str, Any]:
        return {"sources": _sources(ctx)}

    @router.get("/sources/{name}")
    def one_source(name: str) -> dict[str, Any]:
        found = _sources(ctx, name)
        if not found:
            raise ApiError(404, f"no source named {name!r}")
        return found[0]

    @router.post("/sources/{name}/check")
    async def check_source(name: str) -> dict[str, Any]:
        try:
            result = await ctx.check_now(name)
        except KeyError:
            raise ApiError(404, f"no enabled source named {name!r} in this replica's "
                                "config") from None
        except SourceBusy as exc:
            raise ApiError(409, str(exc), lease_owner=exc.owner) from None
        except NotRunning as exc:
            raise ApiError(503, str(exc)) from None
        return _check_json(result)

    @router.get("/figures")
    def figures(source: str | None = None, entity: str | None = None,
                metric: str | None = None, url: str | None = None,
                active: bool | None = True, limit: Limit = 1000) -> dict[str, Any]:
        found = ctx.store.figures(source, url=url, entity=entity, metric=metric, active=active)
        return {"count": len(found), "figures": [f.to_json() for f in found[:limit]]}

    @router.get("/history")
    def history(entity: str, metric: str, period: str | None = None) -> dict[str, Any]:
        points = ctx.store.history(entity, metric, period)
        return {"entity": entity, "metric": metric, "period": period,
                "points": [_json(asdict(p)) for p in points]}

    @router.get("/changes")
    def changes(since: datetime | None = None, limit: Limit = 1000) -> dict[str, Any]:
        if since is None:
            since = ctx.clock() - timedelta(days=1)
        elif since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        found = ctx.store.changes_since(since)
        return {"since": since.isoformat(), "count": len(found),
                "changes": [c.to_payload() for c in found[:limit]]}

    @router.get("/alerts")
    def alerts(state: Literal["pending", "delivered", "failed"] | None = None,
               limit: Limit = 100) -> dict[str, Any]:
        rows = ctx.store.alerts(state=state, limit=limit)
        return {"alerts": [_json(asdict(a)) for a in rows]}

    return router
