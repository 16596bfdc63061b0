"""`figwatch run` over real HTTP: health, metrics, the JSON API, signals and structured logs.

The in-process tests run `Service.serve` on a free port against a SQLite file,
a page server and a webhook receiver on 127.0.0.1; the process tests start
`figwatch run` itself and send it SIGHUP and SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from service.server import Service
from service.settings import load_settings
from service.webhook_receiver import WebhookReceiver
from tests.live import SECRET, PageFarm, Replica, free_port, wait_until, write_config

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def nvidia_page(i: int, version: int) -> bytes:
    value = ["3.39", "3.52", "3.61", "3.70"][version % 4]
    return (f"<html><body><article><h1>Chip makers {i}</h1><p>NVIDIA's market value reached "
            f"${value} trillion in 2024, according to Forbes China.</p></article></body>"
            f"</html>").encode()


@asynccontextmanager
async def running(tmp_path: Path, farm: PageFarm, hook_url: str | None, *, host: str = "127.0.0.1",
                  extra: str = "") -> AsyncIterator[tuple[Service, str]]:
    config = write_config(tmp_path / "figwatch.toml", f"sqlite:///{tmp_path / 'fw.db'}",
                          [(f"s{i:03}", farm.url(i)) for i in range(farm.n)], every="1h",
                          hook_url=hook_url, extra=extra)
    service = Service(load_settings(config), loader=lambda: load_settings(config),
                      dispatch_interval=0.2, poll=0.2)
    port = free_port()
    task = asyncio.create_task(service.serve(host, port))
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            async def ready() -> bool:
                try:
                    return (await client.get(f"{base}/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            deadline = time.monotonic() + 15
            while not await ready():
                assert not task.done(), task.exception() if not task.cancelled() else "cancelled"
                assert time.monotonic() < deadline, "service not ready"
                await asyncio.sleep(0.05)  # polling with a deadline
        yield service, base
    finally:
        service.stop.set()
        assert await asyncio.wait_for(task, 20) == 0


async def test_health_api_and_metrics_over_http(tmp_path: Path) -> None:
    with PageFarm(2, render=nvidia_page, slow=frozenset({1}), delay=0.5) as farm:
        async with WebhookReceiver(SECRET) as receiver, \
                running(tmp_path, farm, receiver.url,
                        extra=f'api_token = "{TOKEN}"') as (svc, base), \
                httpx.AsyncClient(base_url=base, timeout=10) as http:
            assert (await http.get("/healthz")).json()["replica"] == svc.owner
            await wait_until(lambda: farm.served_current(range(2), 0), 10, "baseline fetches")

            r = await http.get("/api/sources")
            assert r.status_code == 401
            assert r.json() == {"error": {"status": 401,
                                          "message": "missing or wrong bearer token"}}
            assert (await http.get("/api/sources", headers={"Authorization": "Bearer no"})
                    ).status_code == 401
            sources = (await http.get("/api/sources", headers=AUTH)).json()["sources"]
            assert [s["name"] for s in sources] == ["s000", "s001"]
            assert {"last_success_at", "next_due_at", "stale", "lease_owner",
                    "consecutive_failures"} <= set(sources[0])
            assert sources[0]["stale"] is False

            before = datetime.now(UTC)
            farm.change(0)
            r = await http.post("/api/sources/s000/check", headers=AUTH)
            assert r.status_code == 200, r.text
            (page,) = r.json()["pages"]
            assert page["outcome"] == "ok"
            assert [(c["old_value"], c["new_value"]) for c in page["changes"]
                    if c["kind"] == "changed"] == [("3390000000000", "3520000000000")]
            (hook,) = await receiver.wait_for(1, timeout=10)
            assert hook.verified and hook.body["data"]["new_value"] == "3520000000000"

            # A check of a source some replica is checking already is a 409.
            first = asyncio.create_task(http.post("/api/sources/s001/check", headers=AUTH))
            await wait_until(lambda: svc.scheduler.in_flight > 0, 5, "the slow check to start")
            busy = await http.post("/api/sources/s001/check", headers=AUTH)
            assert busy.status_code == 409 and "being checked" in busy.json()["error"]["message"]
            assert (await first).status_code == 200

            figures = (await http.get("/api/figures", params={"source": "s000"},
                                      headers=AUTH)).json()
            assert [f["value"] for f in figures["figures"]] == ["3520000000000"]
            assert (await http.get("/api/figures", params={"metric": "market_cap"},
                                   headers=AUTH)).json()["count"] == 2
            history = (await http.get("/api/history", headers=AUTH, params={
                "entity": "NVIDIA", "metric": "market_cap", "period": "2024"})).json()
            assert sorted(p["value"] for p in history["points"]) == [
                "3390000000000", "3390000000000", "3520000000000"]
            changes = (await http.get("/api/changes", headers=AUTH, params={
                "since": before.isoformat()})).json()["changes"]
            assert [c["new_value"] for c in changes if c["kind"] == "changed"] == [
                "3520000000000"]
            alerts = (await http.get("/api/alerts", params={"state": "delivered"},
                                     headers=AUTH)).json()["alerts"]
            assert [a["id"] for a in alerts] == [hook.headers["webhook-id"]]

            # Errors: one JSON shape, with the status.
            for method, path, params, status in (
                ("GET", "/api/changes", {"since": "yesterday"}, 422),
                ("GET", "/api/alerts", {"state": "lost"}, 422),
                ("GET", "/api/history", {"entity": "NVIDIA"}, 422),
                ("POST", "/api/sources/nope/check", {}, 404),
                ("GET", "/api/sources/nope", {}, 404),
                ("GET", "/api/nothing-here", {}, 404),
            ):
                r = await http.request(method, path, params=params, headers=AUTH)
                assert r.status_code == status, (path, r.text)
                assert r.json()["error"]["status"] == status and r.json()["error"]["message"]

            text = (await http.get("/metrics")).text
            for line in ('figwatch_fetches_total{outcome="ok"}', "figwatch_fetch_seconds_bucket",
                         'figwatch_changes_total{kind="changed"} 1.0',
                         'figwatch_alerts{state="delivered"} 1.0', "figwatch_sources 2.0",
                         "figwatch_sources_stale 0.0", "figwatch_scheduler_running 1.0",
                         "figwatch_source_oldest_success_age_seconds",
                         "figwatch_pages_parsed_total",
                         "figwatch_figures_total", "figwatch_database_up 1.0"):
                assert line in text, line


async def test_api_needs_a_token_off_loopback(tmp_path: Path) -> None:
    with PageFarm(1) as farm:
        async with running(tmp_path, farm, None, host="0.0.0.0") as (_, base), \
                httpx.AsyncClient(base_url=base, timeout=5) as http:
            assert (await http.get("/healthz")).status_code == 200
            r = await http.get("/api/sources")
            assert r.status_code == 403 and "api_token" in r.json()["error"]["message"]
        (tmp_path / "loopback").mkdir()
        async with running(tmp_path / "loopback", farm, None) as (_, base), \
                httpx.AsyncClient(base_url=base, timeout=5) as http:
            assert (await http.get("/api/sources")).status_code == 200  # loopback: open


@pytest.mark.slow
async def test_sighup_reloads_and_sigterm_drains_in_flight_work(tmp_path: Path) -> None:
    dead_hook = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: alerts stay pending
    with PageFarm(4, render=nvidia_page, slow=frozenset({1}), delay=1.5) as farm:
        db = tmp_path / "fw.db"
        config = write_config(tmp_path / "figwatch.toml", f"sqlite:///{db}",
                              [(f"s{i:03}", farm.url(i)) for i in range(2)]
                              + [("gone", f"{farm.base_url}/missing")],
                              every="1h", hook_url=dead_hook)
        proc = Replica(config, tmp_path / "run.log", "--grace", "10")
        try:
            await proc.wait_ready()
            await wait_until(lambda: farm.served_current(range(2), 0), 10, "baseline fetches")
            async with httpx.AsyncClient(base_url=proc.url, timeout=10) as http:
                # SIGHUP: a new source is synced and checked; a broken file changes nothing.
                write_config(config, f"sqlite:///{db}",
                             [(f"s{i:03}", farm.url(i)) for i in range(3)], every="1h",
                             hook_url=dead_hook)
                proc.proc.send_signal(signal.SIGHUP)
                await wait_until(lambda: 2 in farm.arrived, 10, "the reloaded source's fetch")
                config.write_text(config.read_text() + "\nnot toml at all = = =\n")
                proc.proc.send_signal(signal.SIGHUP)
                await wait_until(lambda: "reload failed" in proc.log.read_text(), 10,
                                 "the bad reload to be logged")
                names = [s["name"] for s in (await http.get("/api/sources")).json()["sources"]]
                assert names == ["gone", "s000", "s001", "s002"]

                farm.change(0)  # an alert the dead webhook cannot take
                assert (await http.post("/api/sources/s000/check")).status_code == 200
                # SIGTERM while a slow check is in flight: it finishes, then the process exits 0.
                farm.arrived.discard(1)
                slow = asyncio.create_task(http.post("/api/sources/s001/check"))
                await wait_until(lambda: 1 in farm.arrived, 10, "the slow fetch to start")
                stopped_at = time.monotonic()
                proc.sigterm()
                assert (await slow).status_code == 200
            assert await asyncio.to_thread(proc.proc.wait, 20) == 0
            assert time.monotonic() - stopped_at >= 1.0  # it did wait for the slow page
        finally:
            proc.kill()

    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT state FROM alerts").fetchall() == [("pending",)]
        slow_fetches = conn.execute("SELECT count(*) FROM fetches f JOIN sources s ON "
                                    "s.id = f.source_id WHERE s.name = 's001'").fetchone()
        assert slow_fetches == (2,)  # the baseline and the one SIGTERM let finish
    lines = [json.loads(line) for line in proc.log.read_text().splitlines() if line.strip()]
    assert {"ts", "level", "logger", "msg"} <= set(lines[0])
    failed = [e for e in lines if e.get("source") == "gone"]
    assert failed and failed[0]["url"].endswith("/missing") and failed[0]["level"] == "warning"
    assert any("received SIGTERM" in e["msg"] for e in lines)

