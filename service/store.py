"""The store: sources, fetches, pages, figure history, changes and the alert outbox.

One class over SQLAlchemy, the same on SQLite (the default, one process) and
PostgreSQL (several replicas).  Every method is one transaction; `ingest`
writes a fetch's page version, observations, series, changes and alerts
together, so an alert exists exactly when the figures that caused it do;
the confirmation tracks (`confirm_fetches`, reverts, see service/confirm.py)
and the ops-alert state of the source (see service/health.py) move in that
same transaction.  Times are passed in (`at`, `now`): the store never reads the clock.
Database errors are raised as `StoreError` naming the source, URL or alert.

The per-page calls (`ingest`, `record_unchanged`, `record_failure`) are Core only: the
source row is read with its page in one SELECT, its counters and ops markers move
on plain values, and one UPDATE of the columns that changed is queued with the
page's other writes (`service.db.writes`); their statements are built once, at import.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from parsers.figures.model import Conversion, Figure

from .alerts import Change, PendingAlert
from .db import outbox_batch
from .db.ingest import (
    LAST_SEEN,
    PAGE_COLUMNS,
    PAGE_OF_URL,
    PRIORS_OF_URL,
    PageState,
    add_alerts,
    apply_page_diff,
    compress_body,
    cross_source_changes,
    load_priors,
    page_columns,
    page_state_of,
    parse_counts,
    priors_of_rows,
    push_count,
    store_version,
)
from .db.models import (
    Alert,
    ChangeRow,
    DeliveryAttempt,
    Fetch,
    FigureTrack,
    Observation,
    Page,
    PageVersion,
    Source,
)
from .db.records import (
    AlertRecord,
    HistoryPoint,
    IngestResult,
    KnownPage,
    OpsState,
    ReplayFetch,
    SourceHealth,
    StoredFigure,
    StoredVersion,
)
from .db.session import WriterQueue, make_engine, session_factory
from .db.tracks import (
    TRACKS_OF_URL,
    Confirmed,
    advance,
    alert_changes,
    levels_of,
    load_sightings_unchanged,
    sightings_of_diff,
)
from .db.writes import Query, Writes, read
from .diff import diff_page, key_figures, page_changes
from .errors import StoreError
from .settings import RuleConfig, SourceConfig

__all__ = ["AlertRecord", "HistoryPoint", "IngestResult", "KnownPage", "OpsState", "ReplayFetch",
           "SourceHealth", "Store", "StoredFigure", "StoredVersion", "UnchangedFetch"]

OpsUpdate = Callable[[OpsState], tuple[OpsState, list[PendingAlert]]]


@dataclass(frozen=True, slots=True)
class UnchangedFetch:
    """A fetch that found a page unchanged (a 304 or an identical body), to record."""

    source: str
    url: str
    at: datetime
    status: int
    elapsed: float | None = None
    ops: OpsUpdate | None = None  # see `Store.update_ops`

DEFAULT_EVERY = timedelta(hours=1)
DEFAULT_CLAIM_LEASE = timedelta(minutes=5)
KNOWN_PAGES_CHUNK = 1000  # source names per query (bound parameters stay far below limits)


class Store:
    """All persistence figwatch does.  Call `migrate()` once before use."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.engine = make_engine(database_url)
        self._sessions = session_factory(self.engine)
        # SQLite has one writer at a time: threads and processes queue for it
        # here instead of polling in the busy handler (which, under a 10,000-page
        # cycle, ran out and failed the cycle with "database is locked").
        self._serial: AbstractContextManager[object] = (
            WriterQueue(self.engine.url.database) if self.engine.dialect.name == "sqlite"
            else nullcontext())
        # PostgreSQL: a page's reads go in as few pipelines as their keys allow, new ids
        # come from the sequences with the first read, and the COMMIT rides with the
        # writes (see `_read_source`): round trips, not work, bound a page there.
        self._pg = self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        self.engine.dispose()
        if isinstance(self._serial, WriterQueue):
            self._serial.close()

    @contextmanager
    def _tx(self, what: str) -> Iterator[Session]:
        try:
            with self._serial, self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"{what}: {type(exc).__name__}: {exc}") from exc

    def ping(self) -> bool:
        """Whether the database answers (for /readyz); never raises."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent, safe to race)."""
        from .db import migrate as migrations  # Alembic: not loaded by page workers

        try:
            migrations.upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate {self.engine.url.render_as_string()}: {exc}") from exc

    # -- sources and fetches ---------------------------------------------------------------

    def sync_sources(self, sources: Sequence[SourceConfig], at: datetime | None = None) -> None:
        """Make the sources table match the config; dropped sources are disabled, not deleted.

        `at` dates sources seen for the first time (a source that never succeeds is
        stale counted from then); without it, from their first recorded fetch.
        """
        wanted = {s.name: s for s in sources}
        updates: list[dict[str, object]] = []
        with self._tx("sync sources") as session:  # Core: 10,000 sources are 10,000 rows
            current = session.execute(sa.select(
                _sources.c.id, _sources.c.name, _sources.c.url, _sources.c.every_seconds,
                _sources.c.enabled, _sources.c.first_seen_at))
            for row in current:
                cfg = wanted.pop(row.name, None)
                values = {"enabled": False} if cfg is None else {
                    "enabled": True, "url": cfg.url, "every_seconds": _seconds(cfg.every),
                    "first_seen_at": row.first_seen_at or at}
                if any(getattr(row, k) != v for k, v in values.items()):  # only what changed
                    updates.append({"b_id": row.id, "url": row.url,
                                    "every_seconds": row.every_seconds,
                                    "first_seen_at": row.first_seen_at, **values})
            if updates:
                session.execute(_SYNC_SOURCE, updates)
            if wanted:
                session.execute(sa.insert(_sources), [
                    {"name": cfg.name, "url": cfg.url, "every_seconds": _seconds(cfg.every),
                     "enabled": True, "consecutive_failures": 0, "consecutive_suspects": 0,
                     "first_seen_at": at} for cfg in wanted.values()])

    def known_page(self, source: str, url: str) -> KnownPage | None:
        """The stored state of one page (None: never fetched)."""
        return self.known_pages([source]).get((source, url))

    def known_pages(self, sources: Iterable[str]) -> dict[tuple[str, str], KnownPage]:
        """The stored state of every page of `sources`, by (source, url).

        A cycle reads this once for all its sources: one query per thousand
        sources instead of one per page before its fetch.
        """
        names = sorted(set(sources))
        out: dict[tuple[str, str], KnownPage] = {}
        with self._tx("read known pages") as session:
            for start in range(0, len(names), KNOWN_PAGES_CHUNK):
                rows = session.execute(
                    sa.select(_sources.c.name, _pages.c.url, _pages.c.etag,
                              _pages.c.last_modified, _pages.c.content_hash,
                              _pages.c.recent_figure_counts)
                    .join(_sources, _sources.c.id == _pages.c.source_id)
                    .where(_sources.c.name.in_(names[start:start + KNOWN_PAGES_CHUNK])))
                for name, url, etag, last_modified, content_hash, counts in rows:
                    out[(name, url)] = KnownPage(etag, last_modified, content_hash,
                                                 parse_counts(counts))
        return out

    def record_failure(self, *, source: str, url: str, at: datetime, error: str,
                       status: int | None = None, outcome: str = "failed",
                       elapsed: float | None = None, ops: OpsUpdate | None = None) -> int:
        """Record a failed (or `parse_suspect`) fetch; returns the consecutive count of that
        outcome.

        `failed` counts in `consecutive_failures`; `parse_suspect` (the server
        answered, the parse looks broken) counts in `consecutive_suspects` and ends
        a run of fetch failures.  Neither touches the page's figures, so a source
        that cannot be fetched or parsed never makes figures "removed".
        """
        if outcome not in ("failed", "parse_suspect"):
            raise ValueError(f"outcome must be 'failed' or 'parse_suspect', not {outcome!r}")
        with self._tx(f"record failure of {source} {url}") as session:
            writes = Writes(session)
            src, _, _ = _read_source(session, source, url, at, _SOURCE)
            writes.execute(_INSERT_FETCH, [{"source_id": src.id, "url": url, "started_at": at,
                                            "status": status, "outcome": outcome,
                                            "elapsed": elapsed, "error": error}])
            v = src.values
            v["last_error"] = error
            v["next_due_at"] = at + timedelta(seconds=v["every_seconds"])
            if outcome == "parse_suspect":
                v["consecutive_failures"] = 0
                v["consecutive_suspects"] += 1
            else:
                v["consecutive_failures"] += 1
            count = int(v["consecutive_suspects"] if outcome == "parse_suspect"
                        else v["consecutive_failures"])
            _write_source(writes, src, ops)
            writes.flush(commit=True)
            return count

    def record_unchanged(self, *, source: str, url: str, at: datetime, status: int,
                         elapsed: float | None = None, rules: Sequence[RuleConfig] = (),
                         ops: OpsUpdate | None = None) -> IngestResult:
        """A 304 or an identical body: the page's figures were all seen again.

        With `rules`, that sighting counts towards their `confirm_fetches`: a value
        seen for the N-th time in a row is confirmed and alerted now.
        """
        fetch = UnchangedFetch(source, url, at, status, elapsed, ops)
        return self.record_unchanged_many([fetch], rules)[0]

    def record_unchanged_many(self, fetches: Sequence[UnchangedFetch],
                              rules: Sequence[RuleConfig] = ()) -> list[IngestResult]:
        """`record_unchanged` of several fetches, in one transaction: a result each.

        An unchanged page writes no figure: its fetch row, its `last_fetched_at` (which
        is also when its active figures were last seen, `LAST_SEEN`) and its source's
        success.  Only a page with a track waiting for confirmation (`confirm_fetches`
        above 1) needs its figures read; a missing track is settled and stays so.  So a
        cycle of 304s costs a few set-based statements per batch, not a transaction
        per page.
        """
        levels = levels_of(rules)
        with self._tx(f"record {len(fetches)} unchanged") as session:
            writes = Writes(session)
            sources, pages = _read_unchanged(session, fetches)
            page_rows: list[dict[str, Any]] = []
            fetch_rows: list[dict[str, Any]] = []
            alerts: list[PendingAlert] = []
            results = []
            for f in fetches:
                src = sources.get(f.source)
                page_id, waiting = pages.get((f.source, f.url), (None, False))
                if src is None:  # not synced from config yet: created on first use
                    src, page_id, _ = _read_source(session, f.source, f.url, f.at,
                                                   _SOURCE_AND_PAGE_ID)
                    sources[f.source], waiting = src, page_id is not None
                fetch = {"source_id": src.id, "url": f.url, "started_at": f.at,
                         "status": f.status, "outcome": "unchanged", "elapsed": f.elapsed}
                result = None
                if page_id is not None:
                    page_rows.append({"b_id": page_id, "last_fetched_at": f.at})
                    if waiting and len(levels) > 1:
                        result = _confirm_unchanged(session, writes, page_id, fetch, f, rules)
                if result is None:  # else its fetch row went in already, for its changes
                    fetch_rows.append(fetch)
                _succeeded(src.values, f.at)
                alerts += _apply_ops(src, f.ops)
                results.append(result or IngestResult())
            writes.execute(_UPDATE_PAGE, page_rows)
            writes.execute(_INSERT_FETCH, fetch_rows)
            for src in sources.values():
                _queue_source(writes, src)
            add_alerts(writes, alerts)
            writes.flush(commit=True)
            return results

    def ingest(self, *, source: str, url: str, at: datetime, figures: Sequence[Figure],
               body: bytes, content_hash: str, etag: str | None, last_modified: str | None,
               status: int, rules: Sequence[RuleConfig], keep_versions: int,
               elapsed: float | None = None, ops: OpsUpdate | None = None,
               expect_new: bool = False) -> IngestResult:
        """Store a fetched page and its figures, diff them, and queue the alerts, atomically.

        Changes are confirmed per `confirm_fetches` level (`service.confirm`) in
        this transaction; `ops` (see `update_ops`) runs on the source row here too.
        Reads are set-based and writes bulk (see `service.db.ingest`), and the writes
        are sent together at the end (`service.db.writes`): a page costs about a dozen
        statements, and on PostgreSQL fewer round trips, whatever its number of figures.
        `expect_new`: the caller knows of no stored page for `url` (no `KnownPage`), so
        its figures and tracks are not read up front.
        """
        # Pure work first: SQLite has one writer, so the transaction should hold it
        # only for what needs the database.
        keyed = key_figures(figures)
        compressed = compress_body(body)
        with self._tx(f"ingest {source} {url}") as session:
            writes = Writes(session)  # sent together once all reads are done
            # A page the caller believes new has no figures or tracks to read yet (if it
            # is stored after all, they are read by its id below).
            with_rows = (PRIORS_OF_URL, TRACKS_OF_URL) if self._pg and not expect_new else ()
            src, page, (prior_rows, track_rows) = _read_source(
                session, source, url, at, _SOURCE_AND_PAGE_PG if self._pg else _SOURCE_AND_PAGE,
                with_rows)
            fetch = {"source_id": src.id, "url": url, "started_at": at, "status": status,
                     "outcome": "ok", "bytes": len(body), "elapsed": elapsed,
                     "figures": len(figures)}
            if src.fetch_id is not None:  # from the sequence: the INSERT can wait
                fetch_id = src.fetch_id
                writes.execute(_INSERT_FETCH, [{"id": fetch_id, **fetch}])
            else:
                fetch_id = _add_fetch(session, fetch)
            baseline = page is None
            page = _save_page(writes, src.id, page, url=url, at=at, etag=etag,
                              last_modified=last_modified, content_hash=content_hash,
                              figures=len(figures), new_id=src.page_id)
            store_version(writes, page, at=at, size=len(body), compressed=compressed,
                          content_hash=content_hash, keep_versions=keep_versions)

            priors, placed = (([], {}) if baseline
                              else priors_of_rows(prior_rows) if prior_rows is not None
                              else load_priors(session, page.id))
            diff = diff_page(priors, keyed)
            apply_page_diff(writes, page.id, diff, at=at, fetch_id=fetch_id, placed=placed,
                            last_seen=page.last_fetched_at)
            # A page's first fetch is its baseline, not news, unless a rule asks.
            news = not baseline or any(r.baseline_alerts for r in rules)
            if baseline:  # every track starts settled at what is seen: nothing to step
                confirmed: dict[int, list[Confirmed]] = {}
                changes = page_changes(diff, source=source, url=url, at=at) if news else []
            else:  # the level-1 tracks: the diff's changes, with returns marked `reverted`
                confirmed = advance(session, page.id, sightings_of_diff(diff, keyed),
                                    levels=levels_of(rules), at=at, source=source, url=url,
                                    writes=writes, loaded=track_rows)
                changes = [c.change for c in confirmed.pop(1, [])]
            position = {id(k): i for i, k in enumerate(keyed)}
            changed = diff.changed
            moved = sorted([p.current for p in changed] + diff.new,
                           key=lambda k: position[id(k)])
            replaced = {id(p.current): p.prior.quantity for p in changed}
            cross = cross_source_changes(session, moved, source=source, url=url, at=at,
                                         replaced=replaced, writes=writes, with_conflicts=news)
            if news:
                changes += cross
            result = alert_changes(session, rules, confirmed, changes, at=at, source=source,
                                   fetch_id=fetch_id, baseline=baseline, writes=writes)
            _succeeded(src.values, at)
            _write_source(writes, src, ops)
            writes.flush(commit=True)
            return result

    # -- the outbox --------------------------------------------------------------------------

    def enqueue_alerts(self, alerts: Sequence[PendingAlert]) -> None:
        """Queue alerts made outside `ingest` (operations alerts); due at their `created_at`."""
        with self._tx("enqueue alerts") as session:
            add_alerts(session, alerts)

    def claim_due_alerts(self, now: datetime, limit: int = 100,
                         lease: timedelta = DEFAULT_CLAIM_LEASE) -> list[PendingAlert]:
        """Pending alerts due by `now`, each claimed for `lease` so no other process sends it.

        PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas claim disjoint rows without
        waiting.  SQLite: transactions are `BEGIN IMMEDIATE`, so claims are serial.  A
        claim that is neither marked delivered nor failed expires after `lease`
        (the dispatcher died) and the alert is claimed again: at-least-once.
        """
        with self._tx("claim due alerts") as session:
            return outbox_batch.claim_due(session, now, limit, lease)  # one UPDATE ... RETURNING

    def mark_delivered(self, alert_id: str, at: datetime) -> None:
        with self._tx(f"mark alert {alert_id} delivered") as session:
            row = _alert(session, alert_id)
            row.state, row.delivered_at, row.claimed_until = "delivered", at, None
            row.attempts += 1
            row.last_error = None
            session.add(DeliveryAttempt(alert_id=alert_id, at=at, ok=True))

    def mark_delivered_many(self, alert_ids: Sequence[str], at: datetime) -> int:
        """Mark alerts delivered in one transaction; how many existed (see db/outbox_batch.py)."""
        return outbox_batch.mark_delivered_many(self._sessions, alert_ids, at)

    def mark_attempt_failed(self, alert_id: str, at: datetime, error: str,
                            next_attempt_at: datetime | None) -> None:
        """Record a failed try; retry at `next_attempt_at`, or give up (`failed`) when None."""
        with self._tx(f"mark alert {alert_id} attempt failed") as session:
            row = _alert(session, alert_id)
            row.attempts += 1
            row.last_error, row.claimed_until = error, None
            if row.state != "delivered":
                if next_attempt_at is None:
                    row.state = "failed"
                else:
                    row.next_attempt_at = next_attempt_at
            session.add(DeliveryAttempt(alert_id=alert_id, at=at, ok=False, error=error))

    def failed_alerts(self) -> list[AlertRecord]:
        return self.alerts(state="failed")

    def alerts(self, state: str | None = None, limit: int = 1000) -> list[AlertRecord]:
        """Outbox rows, newest first, optionally only one state."""
        with self._tx("list alerts") as session:
            q = sa.select(Alert).order_by(Alert.created_at.desc(), Alert.id).limit(limit)
            if state is not None:
                q = q.where(Alert.state == state)
            return [_alert_record(r) for r in session.scalars(q)]

    def retry_alert(self, alert_id: str, now: datetime) -> None:
        """Put a failed alert back in the queue, due now, with a fresh attempt budget."""
        with self._tx(f"retry alert {alert_id}") as session:
            row = _alert(session, alert_id)
            if row.state == "delivered":
                raise StoreError(f"alert {alert_id} was already delivered")
            row.state, row.next_attempt_at, row.claimed_until, row.attempts = (
                "pending", now, None, 0)

    # -- operations state (service/health.py) -----------------------------------------------

    def ops_state(self, source: str) -> OpsState | None:
        with self._tx(f"read ops state of {source}") as session:
            row = session.execute(_OPS_STATES.where(_sources.c.name == source)).first()
            return None if row is None else _ops_of(dict(zip(_OPS_COLUMNS, row, strict=True)))

    def ops_states(self) -> list[OpsState]:
        """Every source's ops state, by name (Core rows: a cycle's stale check reads them all)."""
        with self._tx("read ops states") as session:
            return [_ops_of(dict(zip(_OPS_COLUMNS, row, strict=True)))
                    for row in session.execute(_OPS_STATES)]

    def update_ops(self, source: str, update: OpsUpdate) -> list[PendingAlert]:
        """Apply `update` to a source's ops state and queue its alerts, in one transaction.

        The source row is locked (`FOR UPDATE` on PostgreSQL; SQLite transactions are
        serial), so two replicas deciding "alert once" about one source cannot both
        alert.  Unknown sources are left alone (no alerts).
        """
        with self._tx(f"update ops state of {source}") as session:
            row = session.execute(_SOURCE_FOR_UPDATE, {"name": source}).first()
            if row is None:
                return []
            writes = Writes(session)
            alerts = _write_source(writes, _source_row(row), update)
            writes.flush()
            return alerts

    def replay_fetches(self) -> list[ReplayFetch]:
        """Every `ok`/`unchanged` fetch of every page, oldest first, with the figures the
        page stated then (rebuilt from the observations' first/last seen times)."""
        with self._tx("read history for replay") as session:
            pages = session.execute(sa.select(Page, Source.name)
                                    .join(Source, Source.id == Page.source_id)).all()
            out = []
            for page, name in pages:
                obs = session.execute(sa.select(Observation, LAST_SEEN)
                                      .join(Page, Page.id == Observation.page_id)
                                      .where(Observation.page_id == page.id)
                                      .order_by(Observation.span_start, Observation.id)).all()
                fetches = session.scalars(
                    sa.select(Fetch).where(Fetch.source_id == page.source_id,
                                           Fetch.url == page.url,
                                           Fetch.outcome.in_(("ok", "unchanged")))
                    .order_by(Fetch.started_at, Fetch.id)).all()
                for f in fetches:
                    figs = [_figure_of(o) for o, last_seen in obs
                            if o.first_seen_at <= f.started_at <= last_seen]
                    out.append(ReplayFetch(name, page.url, f.started_at, f.outcome, figs))
            out.sort(key=lambda r: (r.at, r.source, r.url))
            return out

    # -- queries -------------------------------------------------------------------------------

    def history(self, entity: str, metric: str, period: str | None = None) -> list[HistoryPoint]:
        """Every value any page stated for the series (any period unless given), oldest first."""
        with self._tx(f"history of {entity} {metric}") as session:
            q = (_figure_query()
                 .where(Observation.entity == entity, Observation.metric == metric)
                 .order_by(Observation.first_seen_at, Observation.id))
            if period is not None:
                q = q.where(Observation.period == period)
            return [
                HistoryPoint(o.first_seen_at, last_seen, o.value, o.unit, name, url,
                             o.period, o.sentence, o.active, o.low, o.high)
                for o, name, url, last_seen in session.execute(q)
            ]

    def figures(self, source: str | None = None, *, url: str | None = None,
                entity: str | None = None, metric: str | None = None,
                active: bool | None = True) -> list[StoredFigure]:
        """Stored figures (by default only those the pages currently state)."""
        with self._tx("list figures") as session:
            q = _figure_query().order_by(Page.url, Observation.span_start, Observation.id)
            for column, value in ((Source.name, source), (Page.url, url),
                                  (Observation.entity, entity), (Observation.metric, metric),
                                  (Observation.active, active)):
                if value is not None:
                    q = q.where(column == value)
            return [_stored_figure(o, name, page_url, last_seen)
                    for o, name, page_url, last_seen in session.execute(q)]

    def changes_since(self, t: datetime) -> list[Change]:
        """Changes detected at or after `t`, oldest first."""
        with self._tx("list changes") as session:
            rows = session.scalars(sa.select(ChangeRow).where(ChangeRow.detected_at >= t)
                                   .order_by(ChangeRow.detected_at, ChangeRow.id))
            return [Change(kind=r.kind, source=r.source, url=r.url, unit=r.unit,
                           new_value=r.new_value, old_value=r.old_value, sentence=r.sentence,
                           detected_at=r.detected_at, entity=r.entity, metric=r.metric,
                           period=r.period, other_source=r.other_source, page_key=r.page_key)
                    for r in rows]

    def source_health(self) -> list[SourceHealth]:
        with self._tx("read source health") as session:
            return [
                SourceHealth(s.name, s.url, s.every_seconds, s.enabled, s.last_success_at,
                             s.consecutive_failures, s.last_error, s.next_due_at)
                for s in session.scalars(sa.select(Source).order_by(Source.name))
            ]

    def page_versions(self, source: str, url: str) -> list[StoredVersion]:
        """The kept versions of a page, newest first, decompressed."""
        with self._tx(f"read versions of {url}") as session:
            page = _page(session, source, url)
            if page is None:
                return []
            rows = session.scalars(sa.select(PageVersion).where(PageVersion.page_id == page.id)
                                   .order_by(PageVersion.fetched_at.desc(), PageVersion.id.desc()))
            return [StoredVersion(v.fetched_at, v.content_hash, v.size, len(v.body),
                                  zlib.decompress(v.body)) for v in rows]


def _seconds(every: timedelta) -> int:
    return max(1, round(every.total_seconds()))


_sources = cast(sa.Table, Source.__table__)
_SYNC_SOURCE = sa.update(_sources).where(_sources.c.id == sa.bindparam("b_id")).values(
    enabled=sa.bindparam("enabled"), url=sa.bindparam("url"),
    every_seconds=sa.bindparam("every_seconds"), first_seen_at=sa.bindparam("first_seen_at"))
_pages = cast(sa.Table, Page.__table__)
_fetches = cast(sa.Table, Fetch.__table__)
_obs = cast(sa.Table, Observation.__table__)

# The statements of the per-page write path are built once: SQLAlchemy's compiled cache
# then hits without generating a cache key from a fresh statement on every call.
_OPS_COLUMNS = ("name", "url", "every_seconds", "enabled", "last_success_at", "first_seen_at",
                "consecutive_failures", "consecutive_suspects", "last_error", "alerted_errors",
                "suspect_alerted", "stale_alerted_at")
_WRITTEN = ("last_success_at", "first_seen_at", "consecutive_failures", "consecutive_suspects",
            "last_error", "alerted_errors", "suspect_alerted", "stale_alerted_at", "next_due_at")
_SOURCE_COLUMNS = (_sources.c.id, *(_sources.c[c] for c in _OPS_COLUMNS),
                   _sources.c.next_due_at)
_OPS_STATES = sa.select(*(_sources.c[c] for c in _OPS_COLUMNS)).order_by(_sources.c.name)
_SOURCE = sa.select(*_SOURCE_COLUMNS).where(_sources.c.name == sa.bindparam("name"))
_SOURCE_FOR_UPDATE = _SOURCE.with_for_update()  # PostgreSQL: one replica decides at a time
_SOURCE_AND_PAGE_ID = (sa.select(*_SOURCE_COLUMNS, _pages.c.id)
                       .outerjoin(_pages, PAGE_OF_URL)
                       .where(_sources.c.name == sa.bindparam("name")))
_tracks = cast(sa.Table, FigureTrack.__table__)
_UNCHANGED_PAGES = (
    sa.select(*_SOURCE_COLUMNS, _pages.c.id, _pages.c.url,
              sa.exists().where(_tracks.c.page_id == _pages.c.id, _tracks.c.level > 1))
    .outerjoin(_pages, sa.and_(_pages.c.source_id == _sources.c.id,
                               _pages.c.url.in_(sa.bindparam("urls", expanding=True))))
    .where(_sources.c.name.in_(sa.bindparam("names", expanding=True))))
_SOURCE_AND_PAGE = (sa.select(*_SOURCE_COLUMNS, *page_columns())
                    .outerjoin(_pages, PAGE_OF_URL)
                    .where(_sources.c.name == sa.bindparam("name")))
# PostgreSQL: the ids a page's first writes need, drawn with the first read, so the fetch
# (and a new page) need not be inserted alone to learn theirs.
_SOURCE_AND_PAGE_PG = _SOURCE_AND_PAGE.add_columns(
    sa.func.nextval("fetches_id_seq"),
    sa.case((_pages.c.id.is_(None), sa.func.nextval("pages_id_seq"))))
_INSERT_SOURCE = sa.insert(_sources).returning(_sources.c.id)
_UPDATE_SOURCE = sa.update(_sources).where(_sources.c.id == sa.bindparam("b_id"))
_INSERT_FETCH = sa.insert(_fetches).inline()  # no implicit RETURNING: it may be queued
_INSERT_FETCH_ID = sa.insert(_fetches).returning(_fetches.c.id)
_UPDATE_PAGE = sa.update(_pages).where(_pages.c.id == sa.bindparam("b_id"))
_INSERT_PAGE = sa.insert(_pages).returning(_pages.c.id)
_INSERT_PAGE_WITH_ID = sa.insert(_pages).inline()


@dataclass(slots=True)
class _SourceRow:
    """A source row as read (`stored`) and as it will be written (`values`): plain Core,
    no ORM object and no unit of work.  Only the columns that changed are written."""

    id: int
    stored: dict[str, Any]
    values: dict[str, Any]
    fetch_id: int | None = None  # PostgreSQL: drawn for this fetch by the first read
    page_id: int | None = None  # PostgreSQL: drawn for a page fetched for the first time


def _read_source(session: Session, name: str, url: str, at: datetime,
                 query: sa.Select[Any], with_rows: Sequence[sa.Select[Any]] = ()
                 ) -> tuple[_SourceRow, Any, tuple[list[Any] | None, ...]]:
    """The source row and, by `query`, nothing more, its page's id, or its `PageState`
    (None: the page's first fetch), in one query.  A source not synced from config yet is
    created on first use; its first use dates it (`first_seen_at`).

    `with_rows` (PostgreSQL; queries on `:name` and `:url`) are sent in the same pipeline:
    their rows come back third (None for each when there are none to send, so the
    caller reads by page id).  `_SOURCE_AND_PAGE_PG` also draws the fetch's id, and the
    page's when it is new.
    """
    conn = session.connection()
    params = {"name": name, "url": url}
    if conn.dialect.name == "postgresql":  # one pipeline, with the transaction's BEGIN
        queries: list[Query] = [(query, params), *((q, params) for q in with_rows)]
        first, *rest = read(session, queries)
        row = first[0] if first else None
        extra: tuple[list[Any] | None, ...] = tuple(rest) if with_rows else (None, None)
    else:
        row = conn.execute(query, params).first()
        extra = (None, None)
    if row is None:
        stored: dict[str, Any] = {
            "name": name, "url": url, "every_seconds": _seconds(DEFAULT_EVERY), "enabled": True,
            "last_success_at": None, "first_seen_at": at, "consecutive_failures": 0,
            "consecutive_suspects": 0, "last_error": None, "alerted_errors": None,
            "suspect_alerted": False, "stale_alerted_at": None, "next_due_at": None}
        source_id = conn.execute(_INSERT_SOURCE, {  # as configured sources are inserted
            c: stored[c] for c in ("name", "url", "every_seconds", "enabled", "first_seen_at",
                                   "consecutive_failures", "consecutive_suspects")}
        ).scalar_one()
        src, page = _SourceRow(int(source_id), stored, dict(stored)), None
    else:
        n = len(_SOURCE_COLUMNS)
        src = _source_row(row)
        if src.stored["first_seen_at"] is None:
            src.values["first_seen_at"] = at
        if query is _SOURCE_AND_PAGE_PG:
            page = page_state_of(row[n:n + PAGE_COLUMNS])
            src.fetch_id, src.page_id = row[n + PAGE_COLUMNS], row[n + PAGE_COLUMNS + 1]
        else:
            page = row[n] if query is _SOURCE_AND_PAGE_ID else (
                None if query is _SOURCE else page_state_of(row[n:]))
    return src, page, extra


def _source_row(row: Sequence[Any]) -> _SourceRow:
    """The `_SourceRow` of a row that starts with `_SOURCE_COLUMNS`."""
    n = len(_SOURCE_COLUMNS)
    stored = dict(zip(_OPS_COLUMNS, row[1:n - 1], strict=True))
    stored["next_due_at"] = row[n - 1]
    return _SourceRow(row[0], stored, dict(stored))


def _write_source(writes: Writes, src: _SourceRow, update: OpsUpdate | None
                  ) -> list[PendingAlert]:
    """Run an ops policy on the source's new state, then queue one UPDATE of the columns
    that changed and the policy's alerts."""
    alerts = _apply_ops(src, update)
    _queue_source(writes, src)
    add_alerts(writes, alerts)
    return alerts


def _apply_ops(src: _SourceRow, update: OpsUpdate | None) -> list[PendingAlert]:
    """Run an ops policy on the source's state as it will be written; its alerts."""
    if update is None:
        return []
    v = src.values
    new, alerts = update(_ops_of(v))
    v["alerted_errors"] = list(new.alerted_errors) or None
    v["suspect_alerted"], v["stale_alerted_at"] = new.suspect_alerted, new.stale_alerted_at
    return alerts


def _queue_source(writes: Writes, src: _SourceRow) -> None:
    """Queue the UPDATE of the source's columns that changed (if any)."""
    changed = {c: v for c in _WRITTEN if (v := src.values[c]) != src.stored[c]}
    if changed:
        writes.execute(_UPDATE_SOURCE, [{"b_id": src.id, **changed}])


def _read_unchanged(session: Session, fetches: Sequence[UnchangedFetch]
                    ) -> tuple[dict[str, _SourceRow], dict[tuple[str, str], tuple[int, bool]]]:
    """The source rows of `fetches` by name, and their pages' (id, whether a track of the
    page waits at a level above 1) by (source, url), in one query."""
    rows = session.connection().execute(_UNCHANGED_PAGES, {
        "names": sorted({f.source for f in fetches}), "urls": sorted({f.url for f in fetches})})
    n = len(_SOURCE_COLUMNS)
    sources: dict[str, _SourceRow] = {}
    pages: dict[tuple[str, str], tuple[int, bool]] = {}
    for row in rows:
        name = row[1]
        if name not in sources:
            sources[name] = _source_row(row)
            if sources[name].stored["first_seen_at"] is None:
                sources[name].values["first_seen_at"] = min(
                    f.at for f in fetches if f.source == name)
        if row[n] is not None:
            pages[(name, row[n + 1])] = (row[n], bool(row[n + 2]))
    return sources, pages


def _confirm_unchanged(session: Session, writes: Writes, page_id: int, fetch: dict[str, Any],
                       f: UnchangedFetch, rules: Sequence[RuleConfig]) -> IngestResult | None:
    """Step a page's tracks with every active figure seen again; alert what that confirms
    (inserting the fetch row now, for the changes to name).  None: nothing confirmed."""
    confirmed = advance(session, page_id, load_sightings_unchanged(session, page_id),
                        levels=levels_of(rules), at=f.at, source=f.source, url=f.url,
                        writes=writes)
    if not any(confirmed.values()):
        return None
    fetch_id = _add_fetch(session, fetch)
    return alert_changes(session, rules, confirmed, [], at=f.at, source=f.source,
                         fetch_id=fetch_id, writes=writes)


def _ops_of(v: dict[str, Any]) -> OpsState:
    return OpsState(v["name"], v["url"], v["every_seconds"], v["enabled"],
                    v["last_success_at"], v["first_seen_at"], v["consecutive_failures"],
                    v["consecutive_suspects"], v["last_error"], tuple(v["alerted_errors"] or ()),
                    v["suspect_alerted"], v["stale_alerted_at"])


def _add_fetch(session: Session, values: dict[str, Any]) -> int:
    """Insert a fetch row (Core, no ORM object) and return its id."""
    return int(session.connection().execute(_INSERT_FETCH_ID, values).scalar_one())


def _save_page(writes: Writes, source_id: int, page: PageState | None, *, url: str,
               at: datetime, etag: str | None, last_modified: str | None,
               content_hash: str, figures: int, new_id: int | None = None) -> PageState:
    """Insert the page on its first fetch (now: its id is needed, unless `new_id` was drawn
    for it: then queued), else queue the update of its validators and figure counts."""
    values = {"etag": etag, "last_modified": last_modified, "content_hash": content_hash,
              "last_fetched_at": at,
              "recent_figure_counts": push_count(page.recent_counts if page else (), figures)}
    if page is not None:
        writes.execute(_UPDATE_PAGE, [{"b_id": page.id, **values}])
        return page
    if new_id is not None:
        writes.execute(_INSERT_PAGE_WITH_ID, [{"id": new_id, "source_id": source_id, "url": url,
                                               "first_fetched_at": at, **values}])
        return PageState(new_id, None, 0)
    writes.flush()
    page_id = writes.session.connection().execute(
        _INSERT_PAGE, {"source_id": source_id, "url": url, "first_fetched_at": at, **values}
    ).scalar_one()
    return PageState(int(page_id), None, 0)


def _figure_of(o: Observation) -> Figure:
    conv = (Conversion(o.conversion_value, o.conversion_unit)
            if o.conversion_value is not None and o.conversion_unit else None)
    return Figure(value=o.value, unit=o.unit, start=o.span_start, end=o.span_end, surface="",
                  sentence=o.sentence, lang="", low=o.low, high=o.high,
                  qualifier=o.qualifier,  # type: ignore[arg-type]
                  entity=o.entity, metric=o.metric, period=o.period, conversion=conv)


def _page(session: Session, source: str, url: str) -> Page | None:
    return session.scalars(
        sa.select(Page).join(Source, Source.id == Page.source_id)
        .where(Source.name == source, Page.url == url)
    ).first()


def _succeeded(v: dict[str, Any], at: datetime) -> None:
    """A fetch that checked the page: ends failure, parser-suspect and stale episodes.

    `alerted_errors` stays until `service.health` has sent the recovery alert.
    """
    v["last_success_at"], v["consecutive_failures"], v["last_error"] = at, 0, None
    v["consecutive_suspects"], v["suspect_alerted"], v["stale_alerted_at"] = 0, False, None
    v["next_due_at"] = at + timedelta(seconds=v["every_seconds"])


def _alert(session: Session, alert_id: str) -> Alert:
    row = session.get(Alert, alert_id)
    if row is None:
        raise StoreError(f"no alert with id {alert_id!r}")
    return row


def _alert_record(r: Alert) -> AlertRecord:
    return AlertRecord(r.id, r.channel, r.type, r.data, r.state, r.attempts, r.next_attempt_at,
                       r.last_error, r.created_at, r.delivered_at)


def _figure_query() -> sa.Select[Observation, str, str, datetime]:
    return (sa.select(Observation, Source.name, Page.url, LAST_SEEN)
            .join(Page, Page.id == Observation.page_id)
            .join(Source, Source.id == Page.source_id))


def _stored_figure(o: Observation, source: str, url: str, last_seen: datetime
                   ) -> StoredFigure:
    return StoredFigure(
        id=o.id, source=source, url=url, page_key=o.page_key, value=o.value, unit=o.unit,
        low=o.low, high=o.high, qualifier=o.qualifier, entity=o.entity, metric=o.metric,
        period=o.period, conversion_value=o.conversion_value, conversion_unit=o.conversion_unit,
        sentence=o.sentence, first_seen_at=o.first_seen_at, last_seen_at=last_seen,
        active=o.active,
    )
