"""Writes of one transaction, queued and sent together.

An ingest computes all its writes from a few reads; none of them is read back
before the transaction ends, so they need not wait for each other.  `Writes`
queues them (`execute`, the `Session.execute` shape) and `flush` sends them in
order.  On PostgreSQL they go in one libpq pipeline: one network round trip
for all of them instead of one each (round trips, not work, bound ingest
there).  Elsewhere they run one after the other, exactly as queued.
`flush(commit=True)` (the last flush of a transaction) sends the COMMIT in that
same pipeline, and a pipeline's statements go to the socket together
(`sent_together`).  There, a plain INSERT of many rows (the figures of a page)
goes as one `INSERT ... SELECT FROM unnest(arrays)`, and an UPDATE of many rows by
key (the series a page moves) as one `UPDATE ... FROM unnest(arrays)`: one
statement for all the rows, where an executemany costs the driver and the
server a statement per row.

`read` is the same idea for reads whose parameters are all known up front: on
PostgreSQL their statements go in one pipeline (with the transaction's BEGIN,
when they are its first), one round trip for all of them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import BinaryExpression, BindParameter


class Writes:
    """Queued write statements of one session's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._queued: list[tuple[Executable, Sequence[dict[str, Any]] | None]] = []

    def execute(self, statement: Executable,
                params: Sequence[dict[str, Any]] | None = None) -> None:
        """Queue `statement` (with a list of `params`: an executemany; an empty list: no
        statement).  Rows of the statement queued just before, with the same columns,
        join its executemany: one statement instead of two."""
        if params is not None:
            if not params:
                return
            if self._queued:
                last, rows = self._queued[-1]
                if last is statement and rows and rows[0].keys() == params[0].keys():
                    self._queued[-1] = (statement, [*rows, *params])
                    return
        self._queued.append((statement, params))

    def flush(self, *, commit: bool = False) -> None:
        """Send everything queued, in order; errors surface here, as SQLAlchemy errors.

        With `commit` (PostgreSQL; the transaction's last statement must have been
        queued), the COMMIT goes in the same pipeline: the session's own commit then
        finds the transaction done and sends nothing.  Elsewhere the session commits.
        """
        queued, self._queued = self._queued, []
        conn = self.session.connection()
        postgresql = conn.dialect.name == "postgresql"
        if not queued and not (commit and postgresql):
            return
        if not postgresql:  # Core statements: straight to the connection, past the ORM
            for statement, params in queued:
                conn.execute(statement, params)
            return
        import psycopg  # the PostgreSQL driver we ship; only needed on that backend

        driver: Any = conn.connection.driver_connection
        try:
            if len(queued) == 1 and not commit:  # one statement: no pipeline to sync
                _send(conn, driver, queued)
                return
            with driver.pipeline() as pipeline, sent_together(pipeline):
                _send(conn, driver, queued)
                if commit:  # as a statement: `commit()` would sync once more
                    driver.execute("COMMIT")
        except psycopg.Error as exc:  # raised at the pipeline's sync, outside SQLAlchemy
            raise DBAPIError(f"{len(queued)} batched writes", None, exc) from exc

    def take(self) -> list[tuple[Executable, Sequence[dict[str, Any]] | None]]:
        """Everything queued, now no longer queued (for `read` to send ahead of its reads)."""
        queued, self._queued = self._queued, []
        return queued


def _send(conn: Any, driver: Any,
          queued: Sequence[tuple[Executable, Sequence[dict[str, Any]] | None]]) -> None:
    """Send `queued` in the driver's open pipeline (PostgreSQL)."""
    for statement, params in queued:
        bulk = _bulk(statement, params, conn.dialect)
        if bulk is None:
            conn.execute(statement, params)
            continue
        with driver.cursor() as cur:
            cur.execute(bulk.sql, bulk.arrays(cast(Sequence[dict[str, Any]], params)))


Query = tuple[Executable, dict[str, Any]]


@contextmanager
def sent_together(pipeline: Any) -> Iterator[None]:
    """Statements a psycopg `pipeline` takes in this block go to the socket together.

    psycopg hands each statement to libpq and then writes it to the socket at once:
    a system call, and a wake-up of the server process, per statement (a page's
    ingest took 18 writes over its 4 round trips).  In this block each statement
    is handed to libpq only: in pipeline mode libpq keeps it in its buffer, and the
    pipeline's sync at the end writes them all out (in one write or a few: libpq
    writes by 8 KB).  The transaction's BEGIN, with the sync psycopg puts after it,
    still goes at once, so the statements after it see the transaction begun.

    The queue of statements and the step that sends it are psycopg's internals
    (psycopg is pinned in requirements.lock); if they are not there, statements go
    one by one, as without this block.
    """
    queue = getattr(pipeline, "command_queue", None)
    if queue is None or not hasattr(pipeline, "_communicate_gen"):
        yield
        return

    def hand_over() -> Iterator[Any]:  # in place of psycopg's step that also writes
        while queue:
            queue.popleft()()
        return
        yield

    pipeline._communicate_gen = hand_over
    try:
        yield
    finally:
        del pipeline._communicate_gen


def read(session: Session, queries: Sequence[Query], *, after: Writes | None = None
         ) -> list[list[Any]]:
    """The rows (tuples, by position) of each of `queries`, run in order, after the
    writes queued in `after`.

    On PostgreSQL they are sent in one pipeline: one round trip for all of them.
    Each statement is compiled once (bind and result processing as SQLAlchemy's
    own); an error surfaces as a SQLAlchemy error.  Elsewhere: one execute each.
    """
    conn = session.connection()
    queued = after.take() if after is not None else []
    if conn.dialect.name != "postgresql" or len(queries) == 0:
        for statement, many in queued:
            conn.execute(statement, many)
        return [list(conn.execute(q, p).all()) for q, p in queries]
    import psycopg

    driver: Any = conn.connection.driver_connection
    cursors = []
    try:
        with driver.pipeline() as pipeline, sent_together(pipeline):
            _send(conn, driver, queued)
            for statement, params in queries:
                compiled = _compiled(statement, conn.dialect)
                cur = driver.cursor()
                cur.execute(compiled.sql, compiled.params(params))
                cursors.append((cur, compiled))
            # the pipeline's exit syncs: every result is in when it ends
        return [compiled.rows(cur.fetchall(), cur.pgresult)
                if cur.pgresult is not None and cur.pgresult.nfields else []
                for cur, compiled in cursors]
    except psycopg.Error as exc:
        raise DBAPIError(f"{len(queries)} pipelined reads", None, exc) from exc
    finally:
        for cur, _ in cursors:
            cur.close()


class _Compiled:
    """A statement compiled for the driver: its SQL, and SQLAlchemy's bind and result
    processors (so values come back as `conn.execute` would give them)."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled: Any = cast(Any, statement).compile(dialect=dialect)
        self.sql: str = compiled.string
        self._compiled = compiled
        self._dialect = dialect
        self._binds: dict[str, Any] = dict(compiled._bind_processors)
        self._types = [rc.type for rc in compiled._result_columns]
        self._results: dict[tuple[Any, ...], list[Any]] = {}  # by the columns' type codes

    def params(self, given: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._compiled.construct_params(given)
        for name, process in self._binds.items():
            if name in out and out[name] is not None:
                out[name] = process(out[name])
        return out

    def rows(self, raw: list[Any], result: Any) -> list[Any]:
        """`raw` rows processed as SQLAlchemy would, by the result's column type codes."""
        if not raw or len(self._types) != result.nfields:
            return raw
        codes = tuple(result.ftype(i) for i in range(result.nfields))
        procs = self._results.get(codes)
        if procs is None:
            procs = self._results[codes] = [
                t._cached_result_processor(self._dialect, code)
                for t, code in zip(self._types, codes, strict=True)]
        if not any(procs):
            return raw
        return [tuple(v if p is None else p(v) for p, v in zip(procs, r, strict=True))
                for r in raw]


T = TypeVar("T")
_Memo = dict[tuple[Any, ...], tuple[Executable, Any]]


def _memo(memo: _Memo, statement: Executable, key: tuple[Any, ...],
          build: Callable[[], T]) -> T:
    """`build()` once per (statement, `key`): statements are built once, at import, so
    their `id` is a cheap key; the entry holds the statement, so the id is not reused."""
    full = (id(statement), *key)
    hit = memo.get(full)
    if hit is None or hit[0] is not statement:
        if len(memo) >= 1024:  # built-once statements: never near this in practice
            memo.clear()
        hit = memo[full] = (statement, build())
    return cast(T, hit[1])


_COMPILED: _Memo = {}


def _compiled(statement: Executable, dialect: Dialect) -> _Compiled:
    return _memo(_COMPILED, statement, (dialect.name,), lambda: _Compiled(statement, dialect))


class _Bulk:
    """An executemany as one statement over `unnest(arrays)` (PostgreSQL): one array
    parameter per column, each value bound as SQLAlchemy would bind it, and the same
    SQL text whatever the number of rows, so the server plans it once per connection.
    Arrays go in binary (%b), element by element, with no text escaping to do."""

    def __init__(self, columns: Sequence[tuple[str, sa.Column[Any]]], defaults: dict[str, Any],
                 dialect: Dialect) -> None:
        self.names = [name for name, _ in columns][:len(columns) - len(defaults)]
        self.defaults = defaults
        self._binds = [c.type._cached_bind_processor(dialect) for _, c in columns]
        self.unnest = "unnest({})".format(", ".join(
            f"CAST(%b AS {c.type.compile(dialect=dialect)}[])" for _, c in columns))
        self.sql = ""
        self.key: str | None = None  # an UPDATE's key: a row each, as an executemany would

    @classmethod
    def of(cls, columns: Sequence[tuple[str, sa.Column[Any]]], defaults: dict[str, Any],
           dialect: Dialect) -> _Bulk | None:
        """None when a column is JSON: an executemany stores None there as JSON null,
        an array element as SQL NULL."""
        if any(isinstance(c.type, sa.JSON) for _, c in columns):
            return None
        return cls(columns, defaults, dialect)

    def arrays(self, rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
        columns = [[row[name] for row in rows] for name in self.names]
        columns += [[value] * len(rows) for value in self.defaults.values()]
        return [values if bind is None else [None if v is None else bind(v) for v in values]
                for values, bind in zip(columns, self._binds, strict=True)]


def _plan_insert(statement: sa.Insert, names: tuple[str, ...], dialect: Dialect
                 ) -> _Bulk | None:
    """`INSERT INTO t (...) SELECT * FROM unnest(...)`; columns the rows leave out take
    their plain-value defaults (None: one is not a plain value, or see `_Bulk.of`)."""
    table = statement.table
    if (not isinstance(table, sa.Table) or statement._returning
            or statement._values or statement._multi_values
            or any(name not in table.c for name in names)):
        return None
    defaults = {}
    for column in table.c:
        if column.name in names or column.default is None:
            continue
        if not column.default.is_scalar:
            return None
        defaults[column.name] = cast(Any, column.default).arg
    columns = [(n, table.c[n]) for n in (*names, *defaults)]
    bulk = _Bulk.of(columns, defaults, dialect)
    if bulk is None:
        return None
    quote = dialect.identifier_preparer.quote
    bulk.sql = (f"INSERT INTO {quote(table.name)} "
                f"({', '.join(quote(c.name) for _, c in columns)}) SELECT * FROM {bulk.unnest}")
    return bulk


def _plan_update(statement: sa.Update, names: tuple[str, ...], dialect: Dialect
                 ) -> _Bulk | None:
    """`UPDATE t SET c = v.c, ... FROM unnest(...) AS v(...) WHERE t.key = v.key`, for an
    UPDATE whose only condition is `key == bindparam(...)` and whose values are all in
    the rows (None: any other shape, or see `_Bulk.of`)."""
    table = statement.table
    where = statement._where_criteria
    if (not isinstance(table, sa.Table) or statement._returning or statement._values
            or len(where) != 1 or not isinstance(where[0], BinaryExpression)
            or where[0].operator is not operator.eq
            or not isinstance(where[0].right, BindParameter)):
        return None
    key_column, key = where[0].left, where[0].right.key
    values = [n for n in names if n != key]
    if (not isinstance(key_column, sa.Column) or key_column.table is not table
            or key not in names or not values or any(n not in table.c for n in values)):
        return None
    columns = [(key, key_column), *((n, table.c[n]) for n in values)]
    bulk = _Bulk.of(columns, {}, dialect)
    if bulk is None:
        return None
    bulk.key = key
    quote = dialect.identifier_preparer.quote
    aliases = [f"v{i}" for i in range(len(columns))]
    bulk.sql = (f"UPDATE {quote(table.name)} SET "
                + ", ".join(f"{quote(n)} = v.{a}" for (n, _), a in zip(columns[1:], aliases[1:],
                                                                      strict=True))
                + f" FROM {bulk.unnest} AS v({', '.join(aliases)}) "
                f"WHERE {quote(table.name)}.{quote(key_column.name)} = v.{aliases[0]}")
    return bulk


_BULK: _Memo = {}


def _bulk(statement: Executable, params: Sequence[dict[str, Any]] | None,
          dialect: Dialect) -> _Bulk | None:
    """The `_Bulk` of an executemany of at least two rows, if its statement has a shape
    `_plan_insert` or `_plan_update` takes, or None (then it runs as it is)."""
    if params is None or len(params) < 2 or not isinstance(statement, sa.Insert | sa.Update):
        return None
    names = tuple(params[0])
    plan = _plan_insert if isinstance(statement, sa.Insert) else _plan_update
    bulk: _Bulk | None = _memo(_BULK, statement, names,
                               lambda: plan(statement, names, dialect))  # type: ignore[arg-type]
    if bulk is not None and bulk.key is not None and (
            len({row[bulk.key] for row in params}) < len(params)):
        return None  # a key twice: one UPDATE FROM would apply only one of its rows
    return bulk


Target = Session | Writes
"""Where a write goes: straight to the session, or queued."""
