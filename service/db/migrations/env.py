"""Alembic environment: migrations run on a connection handed in by `service.db.migrate`.

There is no alembic.ini: `service.db.migrate.alembic_config(conn)` builds the
Config in code, so the same migrations run from `Store.migrate`, the tests and
any tool that calls `alembic.command` with that Config.
"""

from __future__ import annotations

from alembic import context

from service.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through service.db.migrate (Store.migrate), "
                       "which hands Alembic a connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only ALTER through table rebuilds
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
