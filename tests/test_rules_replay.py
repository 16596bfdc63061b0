"""`figwatch rules test`: replaying stored history through the rules, on every backend.

The history is written by the real store (as `figwatch check` would); the
replay must find exactly the alerts the same rules queued live, and print them
per rule and channel without sending or storing anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer
from typer.testing import CliRunner

from parsers.figures.model import Figure
from service.cli_rules import replay_rule, rules_app
from service.settings import RuleConfig
from service.store import Store
from tests import test_confirm
from tests.backends import at, fig

migrated = test_confirm.migrated  # one migrated database per backend and module
store = test_confirm.store

runner = CliRunner()
URL = "https://a.example/openai"
URL_B = "https://b.example/openai"
RULES = (
    RuleConfig(name="confirmed", channels=("hook",), confirm_fetches=2),
    RuleConfig(name="everything", channels=("desk",)),
    RuleConfig(name="big moves", channels=("desk", "mail"), min_change=0.5, digest=True),
)


def page(billions: int) -> list[Figure]:
    return [fig(billions * 10**9, f"OpenAI was valued at ${billions} billion.",
                entity="OpenAI", metric="valuation", period="2024"),
            fig("232", "China recorded 232 AI deals in 2023.", unit="count", entity="China",
                metric="deal_count", period="2023", start=60)]


def history(store: Store, rules: Sequence[RuleConfig]) -> None:
    """86B, then a flap to 157B and back, then 157B for good (one fetch a 304)."""
    for hour, billions in enumerate([86, 157, 86, 157, 157]):
        figures = page(billions)
        body = repr([f.sentence for f in figures]).encode()
        store.ingest(source="a", url=URL, at=at(hour), figures=figures, body=body,
                     content_hash=f"h{hour}", etag=None, last_modified=None, status=200,
                     rules=rules, keep_versions=3)
    store.record_unchanged(source="a", url=URL, at=at(5), status=304, rules=rules)
    store.record_failure(source="a", url=URL, at=at(6), error="timeout")
    store.ingest(source="b", url=URL_B, at=at(7), figures=page(157)[:1], body=b"b",
                 content_hash="b", etag=None, last_modified=None, status=200, rules=rules,
                 keep_versions=3)


def test_replay_finds_what_was_queued_live(store: Store, tmp_path: Path) -> None:
    history(store, RULES)
    live = sorted((a.channel, a.type, a.created_at) for a in store.alerts())
    replayed = store.replay_fetches()
    assert [(f.source, f.outcome) for f in replayed] == [("a", "ok")] * 5 + [
        ("a", "unchanged"), ("b", "ok")]
    found = []
    for i, rule in enumerate(RULES):
        found += [(a.channel, a.type, a.created_at)
                  for a in replay_rule(replayed, rule, tmp_path / str(i))]
    assert sorted(found) == live
    assert ("hook", "figure.changed", at(4)) in live  # confirmed on the second sighting
    assert [t for c, t, _ in live if c == "hook"] == ["figure.changed"]


def test_cli_prints_per_rule_and_channel_and_sends_nothing(store: Store, tmp_path: Path
                                                           ) -> None:
    real, db_url = store, store.database_url
    history(real, ())  # the rules below were never live
    assert real.alerts() == []
    config = tmp_path / "figwatch.toml"
    channels = "".join(f'[[channels]]\nname = "{n}"\nkind = "stdout"\n\n'
                       for n in ("hook", "desk", "mail"))
    config.write_text(
        f'database_url = "{db_url}"\n\n{channels}'
        '[[rules]]\nname = "confirmed"\nchannels = ["hook"]\nconfirm_fetches = 2\n\n'
        '[[rules]]\nchannels = ["desk", "mail"]\nkinds = ["changed", "reverted"]\n'
        'digest = true\n')
    app = typer.Typer()
    app.add_typer(rules_app, name="rules")
    result = runner.invoke(app, ["rules", "test", "--config", str(config)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "replaying 7 fetches of 2 page(s)" in out and "nothing is sent" in out
    assert "rule 1 'confirmed' → hook: 1 alert(s) would have been sent" in out
    assert "changed       a: OpenAI valuation 2024: 86B USD → 157B USD" in out
    assert "rule 2 → desk, mail: 6 alert(s) would have been sent" in out
    assert out.count("figure.digest  1 change(s)") == 6
    assert "reverted      a: OpenAI valuation 2024: 157B USD → 86B USD" in out
    assert real.alerts() == []  # nothing queued, nothing sent


def test_cli_without_rules_or_history(tmp_path: Path) -> None:
    app = typer.Typer()
    app.add_typer(rules_app, name="rules")
    config = tmp_path / "figwatch.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "empty.db"}"\n')
    result = runner.invoke(app, ["rules", "test", "--config", str(config)])
    assert result.exit_code == 2 and "no [[rules]] configured" in result.output
    config.write_text(config.read_text() + '[[channels]]\nname = "x"\nkind = "stdout"\n\n'
                      '[[rules]]\nchannels = ["x"]\n')
    result = runner.invoke(app, ["rules", "test", "--config", str(config)])
    assert result.exit_code == 0 and "no stored history to replay" in result.output
