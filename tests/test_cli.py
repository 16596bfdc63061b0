"""The command line through its runner: fetch, check, exit codes, nothing lost on failure."""

from __future__ import annotations

import json
import socket
from decimal import Decimal
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser
from typer.testing import CliRunner

from service.cli import app
from service.snapshot_server import SnapshotServer
from service.store import Store

from .conftest import SNAPSHOTS

runner = CliRunner()


def _snapshot(domain: str) -> Path:
    return next((SNAPSHOTS / domain).rglob("*.html"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fetch_json_prints_article_figures_not_sidebar() -> None:
    page = _snapshot("en.tmtpost.com")
    result = runner.invoke(app, ["fetch", str(page), "--json"])
    assert result.exit_code == 0, result.output
    figs = [json.loads(line) for line in result.output.splitlines()]
    values = {(Decimal(f["value"]), f["unit"]) for f in figs}
    assert (Decimal(232), "count") in values
    assert (Decimal(38), "%") in values
    assert (Decimal(70), "%") in values
    assert (Decimal("1.79e12"), "USD") in values
    two_bn = [f for f in figs if Decimal(f["value"]) == Decimal("2e9") and f["unit"] == "USD"]
    assert any(f["conversion"] and Decimal(f["conversion"]["value"]) == Decimal("14.25e9")
               and f["conversion"]["unit"] == "CNY" for f in two_bn)
    nvidia = [f for f in figs if Decimal(f["value"]) == Decimal("1.79e12")]
    assert nvidia[0]["entity"] == "NVIDIA" and nvidia[0]["metric"] == "market_cap"
    assert all({"sentence", "start", "end", "entity", "metric", "period"} <= f.keys()
               for f in figs)
    # Nothing printed may come from the page's chrome: every sentence is article text.
    tree = LexborHTMLParser(page.read_text(encoding="utf-8"))
    for chrome in tree.css("aside, footer, header, nav, [class*=comment], [class*=sidebar]"):
        chrome_text = chrome.text(separator=" ")
        for f in figs:
            assert f["sentence"] not in chrome_text or len(f["sentence"]) < 20


def test_fetch_human_output_and_missing_file() -> None:
    result = runner.invoke(app, ["fetch", str(_snapshot("en.tmtpost.com"))])
    assert result.exit_code == 0
    assert "figures]" in result.output and "1.79" in result.output
    missing = runner.invoke(app, ["fetch", "http://127.0.0.1:1/nothing"])
    assert missing.exit_code == 1
    assert "127.0.0.1:1" in missing.output


def test_check_with_broken_config_line_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "figwatch.toml"
    cfg.write_text('[[sources]]\nname = "a"\nurl = "https://example.com"\nevery = "soon"\n')
    result = runner.invoke(app, ["check", "--config", str(cfg)])
    assert result.exit_code == 2
    assert f"{cfg}:4" in result.output and "sources[0].every" in result.output


def test_check_unknown_source_name_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "figwatch.toml"
    cfg.write_text('[[sources]]\nname = "a"\nurl = "https://example.com"\n')
    result = runner.invoke(app, ["check", "--config", str(cfg), "b"])
    assert result.exit_code == 2
    assert "no source named 'b'" in result.output


def _config(tmp_path: Path, base: str, dead: str) -> Path:
    page = _snapshot("en.tmtpost.com").relative_to(SNAPSHOTS).as_posix()
    cfg = tmp_path / "figwatch.toml"
    cfg.write_text(f"""
database_url = "sqlite:///{tmp_path / 'fw.db'}"
allow_private_targets = true
respect_robots = false
per_host_delay = 0

[[sources]]
name = "tmtpost-en"
url = "{base}/{page}"
parser = "tmtpost_en"

[[sources]]
name = "gone"
url = "{dead}"
""")
    return cfg


def test_check_unreachable_source_exits_1_and_keeps_figures(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}/article.html"
    with SnapshotServer.from_directory(SNAPSHOTS) as site:
        cfg = _config(tmp_path, site.base_url, dead)
        first = runner.invoke(app, ["check", "--config", str(cfg), "tmtpost-en"])
        assert first.exit_code == 0, first.output
    store = Store(f"sqlite:///{tmp_path / 'fw.db'}")
    before = store.figures(source="tmtpost-en")
    assert len(before) >= 5
    # The site is now down too: both sources fail, each is named, nothing stored is lost.
    second = runner.invoke(app, ["check", "--config", str(cfg)])
    assert second.exit_code == 1
    assert "'gone' failed" in second.output and dead in second.output
    assert "'tmtpost-en' failed" in second.output
    assert len(store.figures(source="tmtpost-en")) == len(before)
    store.close()
    # `figwatch sources` shows each one's health: last success, failures, last error.
    health = runner.invoke(app, ["sources", "--config", str(cfg)])
    assert health.exit_code == 0, health.output
    rows = {line.split()[0]: line for line in health.output.splitlines()}
    assert "ok never" in rows["gone"] and "failures 1" in rows["gone"]
    assert f"last error: {dead}" in rows["gone"]
    assert "ok never" not in rows["tmtpost-en"] and "failures 1" in rows["tmtpost-en"]
    assert "last error: " in rows["tmtpost-en"] and "next " in rows["tmtpost-en"]


@pytest.mark.slow
def test_demo_prints_exactly_the_two_alerts(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--keep", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "demo OK" in result.output
    assert result.output.count("figure.changed") == 1
    assert result.output.count("figure.new") == 1
    assert "BAD SIGNATURE" not in result.output


def test_parsers_and_channels_are_listed() -> None:
    out = runner.invoke(app, ["parsers"]).output
    for name in ("tmtpost", "tmtpost_en", "wordpress", "forbeschina", "footnote_blog",
                 "cbinsights", "generic"):
        assert name in out
    out = runner.invoke(app, ["channels"]).output
    for kind in ("webhook", "email", "stdout"):
        assert kind in out
