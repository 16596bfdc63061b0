"""Config loading: defaults, env overrides, and errors that name file, line and key."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from service.errors import ConfigError
from service.settings import Settings, load_settings, parse_duration, parse_settings

ROOT = Path(__file__).resolve().parents[1]
GOOD = """\
database_url = "sqlite:///x.db"

[[sources]]
name = "a"
url = "https://example.com/a"
every = "15m"

[[sources]]
name = "b"
url = "https://example.com/b"

[[channels]]
name = "hook"
kind = "webhook"
url = "https://hooks.example.com/x"
secret = "whsec_c2VjcmV0"

[[rules]]
channels = ["hook"]
"""


def test_good_config_parses_with_defaults() -> None:
    s = parse_settings(GOOD)
    assert [src.name for src in s.sources] == ["a", "b"]
    assert s.sources[0].every == timedelta(minutes=15)
    assert s.sources[1].every == timedelta(hours=1)
    assert s.rules[0].kinds[0] == "changed"
    assert s.max_failures == 3


@pytest.mark.parametrize(
    ("edit", "line", "key"),
    [
        (('every = "15m"', 'every = "15 parsecs"'), 6, "sources[0].every"),
        (('url = "https://example.com/b"', 'url = "ftp://example.com/b"'), 10, "sources[1].url"),
        (('kind = "webhook"', 'kind = "pigeon"'), 14, "channels[0].kind"),
        (('channels = ["hook"]', 'channels = ["nope"]'), None, None),
        (('database_url = "sqlite:///x.db"', 'database_url = "sqlite:///x.db"\ncolour = 1'), 2,
         "colour"),
    ],
)
def test_bad_line_is_named(edit: tuple[str, str], line: int | None, key: str | None) -> None:
    text = GOOD.replace(*edit)
    with pytest.raises(ConfigError) as info:
        parse_settings(text, "watch.toml")
    msg = str(info.value)
    assert msg.startswith("watch.toml")
    if line is not None:
        assert info.value.line == line, msg
    if key is not None:
        assert key in msg
    if edit[1].startswith("channels"):
        assert "nope" in msg


def test_toml_syntax_error_names_line() -> None:
    text = GOOD.replace('name = "b"', 'name = "b')
    with pytest.raises(ConfigError) as info:
        parse_settings(text, "watch.toml")
    assert info.value.line == 9
    assert re.match(r"watch\.toml:9: invalid TOML", str(info.value))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_environment_overrides_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text(GOOD)
    monkeypatch.setenv("FIGWATCH_DATABASE_URL", "sqlite:///from-env.db")
    monkeypatch.setenv("FIGWATCH_MAX_FAILURES", "7")
    s = load_settings(path)
    assert s.database_url == "sqlite:///from-env.db"
    assert s.max_failures == 7


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration(45) == timedelta(seconds=45)
    for bad in ("", "m", "10", "-5m", "0s", "1y"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_every_setting_is_documented_in_the_example() -> None:
    example = (ROOT / "config" / "figwatch.example.toml").read_text()
    settings = load_settings(ROOT / "config" / "figwatch.example.toml")
    assert isinstance(settings, Settings)
    for name in Settings.model_fields:
        if name in ("sources", "channels", "rules"):
            assert f"[[{name}]]" in example
        else:
            assert re.search(rf"^#?\s*{name}\s*=", example, re.M), f"{name} undocumented"


def test_seed_watchlists_are_valid_configs() -> None:
    watchlist = load_settings(ROOT / "seeds" / "sources.toml")
    assert len(watchlist.sources) >= 5
    demo = parse_settings((ROOT / "seeds" / "demo.toml").read_text().replace(
        "{demo}", "http://127.0.0.1:1"))
    assert {s.name for s in demo.sources} == {s.name for s in watchlist.sources}
