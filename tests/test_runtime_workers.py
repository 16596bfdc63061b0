"""Parsing in worker processes gives the same figures as parsing in-process."""

from __future__ import annotations

import pickle
from pathlib import Path

import parsers
from service.errors import StoreError
from service.runtime import Runtime
from service.settings import Settings
from service.snapshot_server import SnapshotServer

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
