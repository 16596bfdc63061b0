"""Shared test fixtures: paths, the PostgreSQL URL, a snapshot server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.snapshot_server import SnapshotServer

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SNAPSHOTS = SEEDS / "snapshots"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def snapshot_server() -> Iterator[SnapshotServer]:
    """The bundled seed snapshots served on 127.0.0.1 (pages can be swapped per test)."""
    with SnapshotServer.from_directory(SNAPSHOTS) as server:
        yield server
