"""A fresh PostgreSQL database for a benchmark run on the machine's server."""

from __future__ import annotations

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def fresh_database(name: str) -> str | None:
    """Drop and create `name`; its SQLAlchemy URL, or None (with a message) if unreachable."""
    import psycopg

    try:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
            # Flush what earlier runs left in the server's buffers and WAL now, so their
            # writes are not timed as this run's server work.
            conn.execute("CHECKPOINT")
    except psycopg.OperationalError as exc:
        print(f"postgresql: skipped, server not reachable ({exc})")
        return None
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
