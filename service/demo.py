"""`figwatch demo`: the whole product, offline, on the bundled seed snapshots.

Two cycles over a local server: the first is the baseline (no alerts), then
the edits in `seeds/demo_edits.toml` are applied (one figure changed, one
added, the TMTPost sidebar rotated) and the second cycle must alert exactly
the changed and the new figure, by webhook (signed, verified by a receiver
the demo starts) and on stdout.  Exits non-zero if what arrives differs.
"""

from __future__ import annotations

import secrets
import tempfile
import tomllib
from base64 import b64encode
from collections import Counter
from pathlib import Path

import typer

from .render import format_change, format_figure
from .runtime import CycleReport, Runtime
from .settings import parse_settings
from .snapshot_server import SnapshotServer
from .webhook_receiver import WebhookReceiver

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
EXPECTED = Counter({"figure.changed": 1, "figure.new": 1})


def apply_edits(server: SnapshotServer, edits_file: Path) -> list[str]:
    """Apply each `[[edits]]` find/replace to the served pages; return their reasons."""
    reasons = []
    for edit in tomllib.loads(edits_file.read_text(encoding="utf-8"))["edits"]:
        path = "/" + edit["file"]
        page = server.pages[path].decode("utf-8")
        if page.count(edit["find"]) != 1:
            raise ValueError(f"{edits_file}: edit for {edit['file']} must match exactly once")
        server.pages[path] = page.replace(edit["find"], edit["replace"]).encode("utf-8")
        reasons.append(f"{edit['file']}: {edit['why']}")
    return reasons


def _print_cycle(title: str, report: CycleReport) -> None:
    typer.echo(f"\n== {title} ==")
    for page in report.pages:
        status = page.error or f"{page.figure_count} figures"
        typer.echo(f"\n{page.outcome:9} {page.source}  {page.url}  ({status})")
        for fig in page.figures:
            typer.echo(format_figure(fig))
        for change in page.changes:
            typer.echo("  change: " + format_change(change))


async def run_demo(seeds: Path = SEEDS, keep_dir: Path | None = None) -> int:
    secret = "whsec_" + b64encode(secrets.token_bytes(24)).decode()
    workdir = keep_dir or Path(tempfile.mkdtemp(prefix="figwatch-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    with SnapshotServer.from_directory(seeds / "snapshots") as site:
        async with WebhookReceiver(secret) as receiver:
            config_text = (seeds / "demo.toml").read_text(encoding="utf-8")
            settings = parse_settings(
                config_text.replace("{demo}", site.base_url), str(seeds / "demo.toml"),
                database_url=f"sqlite:///{workdir / 'figwatch-demo.db'}",
                allow_private_targets=True, per_host_delay=0, respect_robots=False,
                channels=[{"name": "receiver", "kind": "webhook", "url": receiver.url,
                           "secret": secret},
                          {"name": "console", "kind": "stdout"}],
                rules=[{"name": "article edits", "channels": ["receiver", "console"],
                        "kinds": ["changed", "new", "removed"]}],
            )
            async with Runtime(settings) as runtime:
                first = await runtime.cycle()
                _print_cycle("cycle 1: baseline (no alerts expected)", first)
                typer.echo("\n== edits between cycles ==")
                for reason in apply_edits(site, seeds / "demo_edits.toml"):
                    typer.echo(f"  {reason}")
                typer.echo("\n== cycle 2: alerts on stdout ==")
                second = await runtime.cycle()
                _print_cycle("cycle 2: figures", second)
            expected_total = sum(EXPECTED.values())
            await receiver.wait_for(expected_total, timeout=10)
    return _verdict(first, second, receiver, workdir)


def _verdict(first: CycleReport, second: CycleReport, receiver: WebhookReceiver,
             workdir: Path) -> int:
    typer.echo("\n== webhook receiver ==")
    got: Counter[str] = Counter()
    for hook in receiver.received:
        got[hook.body["type"]] += 1
        mark = "signature ok" if hook.verified else "BAD SIGNATURE"
        data = hook.body["data"]
        typer.echo(f"  {hook.body['type']:15} {mark}  {data.get('source')}: "
                   f"{data.get('old_value')} → {data.get('new_value')} {data.get('unit')}"
                   f"  | {data.get('sentence', '')[:90]}")
    failed = [p for p in first.pages + second.pages if p.outcome == "failed"]
    ok = (got == EXPECTED and all(h.verified for h in receiver.received) and not failed)
    typer.echo(f"\ndatabase: {workdir / 'figwatch-demo.db'}")
    if ok:
        typer.echo("demo OK: exactly one `changed` and one `new` alert, none from the sidebar.")
        return 0
    typer.echo(f"demo FAILED: expected {dict(EXPECTED)}, received {dict(got)}; "
               f"failed pages: {[p.url for p in failed]}", err=True)
    return 1
