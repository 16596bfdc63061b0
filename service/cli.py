"""The `figwatch` command line.

Exit codes follow DESIGN.md: 0 done, 1 some sources failed (each printed),
2 bad usage or config.  Every command that touches a config reads it through
`service.settings`, so a bad line fails the same way everywhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

import parsers

from .errors import ConfigError, FigwatchError
from .pages import figures_of
from .pipeline import utcnow
from .render import format_figure, human_amount
from .settings import Settings, SourceConfig, load_settings
from .store import Store

if TYPE_CHECKING:
    from .runtime import CycleReport

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Watch sources of business figures; alert when a figure changes.")
alerts_app = typer.Typer(help="Inspect and retry alerts in the outbox.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (TOML).")]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"figwatch: {message}", err=True)
    return typer.Exit(code)


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None


@app.command()
def fetch(
    target: Annotated[str, typer.Argument(metavar="URL_OR_FILE", help="A URL or a saved page.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per figure.")] = False,
    parser: Annotated[str | None, typer.Option(help="Force a site parser by name.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Print the figures of one page (a URL, or a file saved from the web)."""
    path = Path(target)
    try:
        if path.is_file():
            doc = parsers.extract(path.read_bytes(), url=None, parser=parser)
        else:
            doc = asyncio.run(_fetch_document(target, parser, config))
    except (parsers.ParseError, FigwatchError) as exc:
        raise _fail(str(exc), 2 if isinstance(exc, ConfigError | parsers.UnknownParser) else 1) \
            from None
    found = figures_of(doc, fetched_at=utcnow())
    if as_json:
        for fig in found:
            typer.echo(json.dumps(fig.to_json(), ensure_ascii=False))
        return
    typer.echo(f"{doc.title or doc.url or target}  [{doc.parser}, {len(found)} figures]")
    for fig in found:
        typer.echo(format_figure(fig))


async def _fetch_document(url: str, parser: str | None, config: Path | None) -> parsers.Document:
    from .fetch.client import Fetcher

    settings = load_settings(config) if config else Settings()
    async with Fetcher(settings) as fetcher:
        result = await fetcher.fetch(url)
    return parsers.extract(result.body, url=result.final_url, parser=parser, charset=result.charset)


@app.command()
def check(
    names: Annotated[list[str] | None, typer.Argument(metavar="[SOURCE_NAME]...")] = None,
    config: ConfigOpt = None,
) -> None:
    """Run one full cycle (fetch, store, diff, alert, deliver) and exit; cron-friendly."""
    settings = _settings(config)
    try:
        sources = [settings.source(n) for n in names] if names else list(settings.sources)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None
    if not sources:
        raise _fail("no sources configured", 2)
    try:
        report = asyncio.run(_check(settings, sources))
    except FigwatchError as exc:
        raise _fail(str(exc), 1) from None
    for page in report.pages:
        detail = page.error or f"{page.figure_count} figures, {len(page.changes)} changes"
        typer.echo(f"{page.outcome:9} {page.source}  {page.url}  {detail}")
    d = report.dispatch
    typer.echo(f"alerts: {d.delivered} delivered, {d.retried} to retry, {d.failed} failed")
    if report.failed:
        for page in report.failed:
            typer.echo(f"figwatch: source {page.source!r} failed: {page.error}", err=True)
        raise typer.Exit(1)


async def _check(settings: Settings, sources: list[SourceConfig]) -> CycleReport:
    from .runtime import Runtime

    async with Runtime(settings, keep_figures=False) as runtime:
        return await runtime.cycle(sources)


@app.command()
def demo(
    keep: Annotated[Path | None, typer.Option(help="Keep the demo database here.")] = None,
) -> None:
    """The offline demo: two cycles over the bundled seed snapshots."""
    from .demo import run_demo

    code = asyncio.run(run_demo(keep_dir=keep))
    raise typer.Exit(code)


def _store(settings: Settings) -> Store:
    store = Store(settings.database_url)
    store.migrate()
    return store


@app.command()
def history(
    entity: Annotated[str, typer.Argument(help="Canonical entity, e.g. NVIDIA.")],
    metric: Annotated[str, typer.Argument(help="Canonical metric, e.g. market_cap.")],
    period: Annotated[str | None, typer.Option(help="Only this period, e.g. 2023-Q2.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per value.")] = False,
    config: ConfigOpt = None,
) -> None:
    """A series across sources over time: where each value came from, and when."""
    store = _store(_settings(config))
    points = store.history(entity, metric, period)
    store.close()
    if not points:
        raise _fail(f"no figures stored for {entity} {metric}" + (f" {period}" if period else ""),
                    1)
    for p in points:
        if as_json:
            row = {k: (str(v) if isinstance(v, Decimal) else
                       v.isoformat() if isinstance(v, datetime) else v)
                   for k, v in asdict(p).items()}
            typer.echo(json.dumps(row, ensure_ascii=False))
            continue
        when = p.first_seen_at.strftime("%Y-%m-%d %H:%M")
        gone = "" if p.active else f" (until {p.last_seen_at:%Y-%m-%d})"
        typer.echo(f"{when}  {human_amount(p.value, p.unit):>14}  {p.period or '-':8} "
                   f"{p.source}{gone}\n    {p.url}\n    {p.sentence[:140]}")


@app.command()
def sources(config: ConfigOpt = None) -> None:
    """Each source's health: last success, consecutive failures, last error, next due."""
    store = _store(_settings(config))
    for h in store.source_health():
        last = f"{h.last_success_at:%Y-%m-%d %H:%M}" if h.last_success_at else "never"
        due = f"{h.next_due_at:%Y-%m-%d %H:%M}" if h.next_due_at else "now"
        err = f"  last error: {h.last_error}" if h.last_error else ""
        typer.echo(f"{h.name:32} ok {last:16}  failures {h.consecutive_failures}  "
                   f"next {due:16}{err}")
    store.close()


@alerts_app.command("list")
def alerts_list(
    failed: Annotated[bool, typer.Option("--failed", help="Only alerts that gave up.")] = False,
    state: Annotated[str | None, typer.Option(help="pending, delivered or failed.")] = None,
    config: ConfigOpt = None,
) -> None:
    """List alerts in the outbox with their delivery state."""
    store = _store(_settings(config))
    rows = store.alerts(state="failed" if failed else state)
    store.close()
    for a in rows:
        err = f"  error: {a.last_error}" if a.last_error else ""
        typer.echo(f"{a.id}  {a.state:9} {a.channel:12} {a.type:18} attempts {a.attempts}{err}")


@alerts_app.command("retry")
def alerts_retry(
    alert_id: Annotated[str, typer.Argument(metavar="ID")],
    config: ConfigOpt = None,
) -> None:
    """Put a failed alert back in the queue; the next dispatch sends it."""
    store = _store(_settings(config))
    try:
        store.retry_alert(alert_id, utcnow())
    except FigwatchError as exc:
        raise _fail(str(exc), 1) from None
    finally:
        store.close()
    typer.echo(f"alert {alert_id} queued for delivery")


@app.command("parsers")
def list_parsers() -> None:
    """List the site parsers and the domains they handle."""
    from parsers.registry import parser_classes

    for cls in parser_classes():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        typer.echo(f"{cls.name:15} {', '.join(cls.domains) or '-':40} {doc}")


@app.command("channels")
def list_channels() -> None:
    """List the alert channel kinds."""
    from .channels import channel_classes

    for kind, cls in sorted(channel_classes().items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        typer.echo(f"{kind:10} {doc}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except FigwatchError as exc:
        # Commands translate the errors they expect; anything else from our own
        # tree (a database gone away, say) still gets one line, not a traceback.
        typer.echo(f"figwatch: {exc}", err=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)


@app.command()
def run(
    config: ConfigOpt = None,
    listen: Annotated[str | None, typer.Option(help="HOST:PORT for the HTTP endpoints.")] = None,
    grace: Annotated[float, typer.Option(help="Seconds SIGTERM waits for in-flight checks.")]
    = 30.0,
    lease_ttl: Annotated[str, typer.Option(
        help="How long a replica's claim on a source lasts without renewal (a dead replica's "
             "sources are taken over after this).")] = "60s",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Long-lived: scheduler, alert dispatcher and HTTP endpoints (/healthz, /metrics, /api)."""
    import signal

    from .logging import configure_logging
    from .server import Service, split_listen
    from .settings import parse_duration

    settings = _settings(config)
    try:
        host, port = split_listen(listen or settings.listen)
    except ValueError:
        raise _fail(f"--listen must be HOST:PORT, got {listen or settings.listen!r}", 2) from None
    try:
        ttl = parse_duration(lease_ttl)
    except ValueError as exc:
        raise _fail(f"--lease-ttl: {exc}", 2) from None
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise _fail(f"--log-level must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}", 2)
    configure_logging(log_level)

    async def serve() -> int:
        service = Service(settings, loader=lambda: load_settings(config), lease_ttl=ttl,
                          grace=grace)
        code = await service.serve(host, port)
        # Stopped: a repeated SIGTERM during interpreter teardown must not turn exit 0
        # into "killed by SIGTERM".
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return code

    try:
        code = asyncio.run(serve())
    except FigwatchError as exc:
        raise _fail(str(exc), 1) from None
    raise typer.Exit(code)


from .cli_rules import rules_app  # noqa: E402  (sub-app registered after the commands above)

app.add_typer(rules_app, name="rules")
