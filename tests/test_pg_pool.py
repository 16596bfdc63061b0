"""PostgreSQL: a pooled connection the server ended is replaced before use, without a
`SELECT 1` round trip on every checkout."""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

from service.store import Store
from tests.backends import POSTGRES_DSN, at, fig, pg_schema_url


def test_a_connection_ended_by_the_server_is_replaced_not_failed() -> None:
    with pg_schema_url() as url:
        store = Store(url)
        try:
            store.migrate()
            statements: list[str] = []
            sa.event.listen(store.engine, "before_cursor_execute",
                            lambda *args: statements.append(args[2]))
            assert store.ping()
            assert store.ping()  # a healthy pooled connection: no extra statement
            assert [s for s in statements if s.strip().upper() == "SELECT 1"] == ["SELECT 1"] * 2
            with store.engine.connect() as conn:
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits for it
            store.ingest(source="a", url="https://a.example/", at=at(0),
                         figures=[fig(5, "Five.")], body=b"v1", content_hash="v1", etag=None,
                         last_modified=None, status=200, rules=(), keep_versions=1)
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != pid
            assert len(store.figures("a")) == 1
        finally:
            store.close()
