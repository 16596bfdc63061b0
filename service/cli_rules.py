"""`figwatch rules test`: what the configured rules would have sent over the stored history.

The stored history (every `ok`/`unchanged` fetch of every page, with the figures
the page stated then, rebuilt from the observations) is replayed, oldest first,
through the real `Store.ingest` into a scratch SQLite database, once per rule,
so diffing, confirmation (`confirm_fetches`, reverts), cross-source kinds and
every rule condition behave exactly as they do live.  Nothing is sent and the
real database is only read (and migrated, as every command does).

Limits of the rebuild: failed and parser-suspect fetches change no figures and
are skipped; a sentence edited while its value stayed is replayed with its
newest wording; a page's first stored fetch is its baseline, as it was live.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from .alerts import PendingAlert
from .db.records import ReplayFetch
from .errors import ConfigError, FigwatchError
from .render import human_amount
from .settings import RuleConfig, Settings, load_settings
from .store import Store

__all__ = ["replay_rule", "rules_app"]

rules_app = typer.Typer(help="Try alert rules against the stored history.",
                        no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (TOML).")]


def replay_rule(history: Sequence[ReplayFetch], rule: RuleConfig, workdir: Path,
                *, keep_versions: int = 1) -> list[PendingAlert]:
    """The alerts `rule` would have queued over `history` (oldest first), in order."""
    workdir.mkdir(parents=True, exist_ok=True)
    scratch = Store(f"sqlite:///{workdir / 'replay.db'}")
    try:
        scratch.migrate()
        alerts: list[PendingAlert] = []
        for n, fetch in enumerate(history):
            body = f"{fetch.source}\n{fetch.url}\n{n}".encode()
            result = scratch.ingest(source=fetch.source, url=fetch.url, at=fetch.at,
                                    figures=fetch.figures, body=body, content_hash=str(n),
                                    etag=None, last_modified=None, status=200, rules=(rule,),
                                    keep_versions=keep_versions)
            alerts += result.alerts
        return alerts
    finally:
        scratch.close()


def _amount(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return human_amount(None if value is None else Decimal(value), data.get("unit") or "")


def describe(data: dict[str, Any]) -> str:
    """One line for one change payload (the webhook `data` object)."""
    about = " ".join(str(x) for x in (data.get("entity"), data.get("metric"),
                                      data.get("period")) if x) or "figure"
    other = f" (vs {data['other_source']})" if data.get("other_source") else ""
    return (f"{data.get('kind', '?'):13} {data.get('source')}: {about}: "
            f"{_amount(data, 'old_value')} → {_amount(data, 'new_value')}{other}")


def _rule_title(i: int, rule: RuleConfig) -> str:
    name = f" {rule.name!r}" if rule.name else ""
    return f"rule {i + 1}{name} → {', '.join(rule.channels)}"


def _print_rule(i: int, rule: RuleConfig, alerts: Sequence[PendingAlert]) -> None:
    typer.echo(f"{_rule_title(i, rule)}: {len(alerts)} alert(s) would have been sent")
    by_channel: dict[str, list[PendingAlert]] = defaultdict(list)
    for a in alerts:
        by_channel[a.channel].append(a)
    for channel in rule.channels:
        sent = by_channel.get(channel, [])
        typer.echo(f"  channel {channel}: {len(sent)}")
        for a in sent:
            when = a.created_at.isoformat(timespec="seconds")
            if a.type == "figure.digest":
                changes = a.data.get("changes", [])
                typer.echo(f"    {when}  figure.digest  {len(changes)} change(s)")
                for data in changes:
                    typer.echo(f"      {describe(data)}")
            else:
                typer.echo(f"    {when}  {describe(a.data)}")


@rules_app.command("test")
def test_rules(config: ConfigOpt = None) -> None:
    """Replay the stored history through the configured rules; print what each rule would
    have sent, per channel, without sending anything."""
    try:
        settings: Settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"figwatch: {exc}", err=True)
        raise typer.Exit(2) from None
    if not settings.rules:
        typer.echo("figwatch: no [[rules]] configured", err=True)
        raise typer.Exit(2)
    try:
        store = Store(settings.database_url)
        try:
            store.migrate()
            history = store.replay_fetches()
        finally:
            store.close()
        pages = {(f.source, f.url) for f in history}
        if not history:
            typer.echo("no stored history to replay (run `figwatch check` first)")
            return
        typer.echo(f"replaying {len(history)} fetches of {len(pages)} page(s), "
                   f"{history[0].at.isoformat(timespec='seconds')} to "
                   f"{history[-1].at.isoformat(timespec='seconds')}; nothing is sent\n")
        with tempfile.TemporaryDirectory(prefix="figwatch-rules-") as tmp:
            for i, rule in enumerate(settings.rules):
                alerts = replay_rule(history, rule, Path(tmp) / f"rule{i}")
                _print_rule(i, rule, alerts)
    except FigwatchError as exc:
        typer.echo(f"figwatch: {exc}", err=True)
        raise typer.Exit(1) from None
