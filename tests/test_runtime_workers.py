"""Page workers (parse, extract and store in worker processes) behave like the in-thread path."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
from pathlib import Path

import pytest

import parsers
from service.errors import StoreError
from service.runtime import Runtime
from service.settings import RuleConfig, Settings, SourceConfig
from service.snapshot_server import SnapshotServer
from service.store import Store

from .conftest import SNAPSHOTS

PAGE = "/www.forbeschina.com/70175.html"


async def _figures(tmp_path: Path, workers: int) -> list[tuple[object, ...]]:
    with SnapshotServer.from_directory(SNAPSHOTS) as site:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / f'w{workers}.db'}", allow_private_targets=True,
            respect_robots=False, per_host_delay=0, parse_workers=workers,
            sources=({"name": "forbes", "url": site.base_url + PAGE, "parser": "forbeschina"},))
        async with Runtime(settings) as runtime:
            report = await runtime.cycle()
    [page] = report.pages
    assert page.outcome == "ok", page.error
    return [(f.value, f.unit, f.entity, f.metric, f.period, f.start) for f in page.figures]


async def test_worker_processes_match_in_process(tmp_path: Path) -> None:
    inline = await _figures(tmp_path, 0)
    pooled = await _figures(tmp_path, 1)
    assert len(inline) >= 10
    assert pooled == inline
    stored = [sorted((f.value, f.unit, f.entity, f.metric, f.period, f.page_key)
                     for f in Store(f"sqlite:///{tmp_path / f'w{n}.db'}").figures("forbes"))
              for n in (0, 1)]
    assert stored[0] and stored[1] == stored[0]  # the worker's own Store wrote the same rows


def _two_pages(site: SnapshotServer, db: Path, workers: int, **extra: object) -> Settings:
    return Settings(
        database_url=f"sqlite:///{db}", allow_private_targets=True, respect_robots=False,
        per_host_delay=0, parse_workers=workers,
        sources=({"name": "forbes", "url": site.base_url + PAGE, "parser": "forbeschina"},
                 {"name": "tmtpost", "url": site.base_url + "/en.tmtpost.com/6978451.html",
                  "parser": "tmtpost_en"}), **extra)


async def test_a_dead_worker_fails_only_the_page_it_held(tmp_path: Path) -> None:
    """A worker killed while idle costs no page; one killed while it holds a page (here:
    stopped before it could process it) fails that page, and a new worker takes the
    next."""
    db = tmp_path / "fw.db"
    with SnapshotServer.from_directory(SNAPSHOTS) as site:
        cbinsights = SourceConfig(name="cbinsights", parser="cbinsights",
                                  url=site.base_url + "/www.cbinsights.com/ai-trends-q1-2024.html")
        settings = _two_pages(site, db, 1)
        forbes, tmtpost = settings.sources
        async with Runtime(settings) as runtime:
            workers = runtime.workers
            assert workers is not None
            first = await runtime.cycle([forbes])
            _kill(workers.processes)
            after_idle_death = await runtime.cycle([cbinsights])
            for process in workers.processes:  # it will hold the page, not process it
                os.kill(process.pid, signal.SIGSTOP)
            cycle = asyncio.create_task(runtime.cycle([tmtpost]))
            while workers.held == 0:
                await asyncio.sleep(0.01)
            _kill(workers.processes)
            died = await cycle
            again = await runtime.cycle([tmtpost])
    assert [p.outcome for p in (*first.pages, *after_idle_death.pages)] == ["ok", "ok"]
    [page] = died.pages
    assert page.outcome == "failed" and "page worker died" in (page.error or "")
    assert "/en.tmtpost.com/" in (page.error or "")  # it names the page
    assert [p.outcome for p in again.pages] == ["ok"]
    assert len(Store(settings.database_url).figures("forbes")) >= 10  # nothing stored was lost


async def test_unchanged_pages_are_recorded_by_a_worker(tmp_path: Path) -> None:
    """A page fetched unchanged goes to a worker too, in a batch: killed while it holds a
    batch, the worker fails that batch's pages with an error naming the batch (a page that
    came later went to a new worker); the cycle after records both."""
    with SnapshotServer.from_directory(SNAPSHOTS) as site:
        settings = _two_pages(site, tmp_path / "fw.db", 1)
        async with Runtime(settings) as runtime:
            workers = runtime.workers
            assert workers is not None
            first = await runtime.cycle()
            for process in workers.processes:
                os.kill(process.pid, signal.SIGSTOP)
            cycle = asyncio.create_task(runtime.cycle())
            while workers.held == 0:
                await asyncio.sleep(0.01)
            _kill(workers.processes)
            died = await cycle
            again = await runtime.cycle()
    assert [p.outcome for p in first.pages] == ["ok", "ok"]
    lost = [p for p in died.pages if p.outcome == "failed"]
    recorded = [p for p in died.pages if p.outcome == "unchanged"]
    assert lost and len(lost) + len(recorded) == 2
    assert all("page worker died" in (p.error or "") for p in lost)
    assert any(p.url in (p.error or "") for p in lost)
    assert [p.outcome for p in again.pages] == ["unchanged", "unchanged"]
    with Store(settings.database_url).engine.connect() as conn:
        outcomes = sorted(r[0] for r in conn.exec_driver_sql("SELECT outcome FROM fetches"))
    assert outcomes == ["ok", "ok"] + ["unchanged"] * (2 + len(recorded))


def _kill(processes: list) -> None:
    for process in processes:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


async def test_workers_leave_ctrl_c_to_the_service(tmp_path: Path) -> None:
    """Ctrl-C in a terminal reaches the whole process group: a worker carries on (the
    service decides when to stop and hangs up), rather than dying mid-page."""
    with SnapshotServer.from_directory(SNAPSHOTS) as site:
        settings = _two_pages(site, tmp_path / "fw.db", 1)
        forbes, tmtpost = settings.sources
        async with Runtime(settings) as runtime:
            assert runtime.workers is not None
            first = await runtime.cycle([forbes])  # the worker is up and serving
            [worker] = runtime.workers.processes
            os.kill(worker.pid, signal.SIGINT)
            second = await runtime.cycle([tmtpost])
            assert runtime.workers.processes == [worker] and worker.poll() is None
    assert [p.outcome for p in (*first.pages, *second.pages)] == ["ok", "ok"]


async def test_new_rules_restart_the_workers(tmp_path: Path) -> None:
    with SnapshotServer.from_directory(SNAPSHOTS) as site:
        settings = _two_pages(site, tmp_path / "fw.db", 1,
                              channels=({"name": "out", "kind": "stdout"},))
        async with Runtime(settings) as runtime:
            assert runtime.workers is not None
            pids = [p.pid for p in runtime.workers.processes]
            runtime.apply_settings(settings.model_copy(update={"api_token": "x" * 32}))
            assert [p.pid for p in runtime.workers.processes] == pids  # they ignore the token
            with_rules = settings.model_copy(update={"rules": (RuleConfig(channels=("out",)),)})
            runtime.apply_settings(with_rules)
            assert set(p.pid for p in runtime.workers.processes).isdisjoint(pids)
            report = await runtime.cycle()
    assert [p.outcome for p in report.pages] == ["ok", "ok"]


def test_an_in_memory_database_keeps_pages_in_process(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(database_url="sqlite://", parse_workers=2)

    async def open_close() -> Runtime:
        async with Runtime(settings) as runtime:
            return runtime

    runtime = asyncio.run(open_close())
    assert runtime.workers is None
    assert "parse_workers = 2 ignored" in caplog.text


def test_parse_errors_survive_the_process_boundary() -> None:
    for exc in (parsers.InputTooLarge(30_000_000, 20_000_000, "https://x.test/a"),
                parsers.UnknownParser("nope", ["generic", "tmtpost"])):
        again = pickle.loads(pickle.dumps(exc))
        assert type(again) is type(exc) and str(again) == str(exc)


async def test_a_page_the_store_cannot_take_fails_alone(tmp_path: Path) -> None:
    """A database error on one page is that page's failed outcome, not the cycle's end."""
    with SnapshotServer.from_directory(SNAPSHOTS) as site:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'fw.db'}", allow_private_targets=True,
            respect_robots=False, per_host_delay=0,
            sources=({"name": "forbes", "url": site.base_url + PAGE, "parser": "forbeschina"},
                     {"name": "tmtpost", "url": site.base_url + "/en.tmtpost.com/6978451.html",
                      "parser": "tmtpost_en"}))
        async with Runtime(settings) as runtime:
            real_ingest = runtime.store.ingest

            def ingest(**kw: object) -> object:
                if kw["source"] == "forbes":  # a disk full / lock timeout, say
                    raise StoreError("ingest forbes: OperationalError: database is locked")
                return real_ingest(**kw)  # type: ignore[arg-type]

            runtime.store.ingest = ingest  # type: ignore[method-assign,assignment]
            report = await runtime.cycle()
    outcomes = {p.source: (p.outcome, p.error) for p in report.pages}
    assert outcomes["forbes"] == ("failed", "ingest forbes: OperationalError: database is locked")
    assert outcomes["tmtpost"][0] == "ok"
