"""All settings in one declared place: the TOML file, overridden by FIGWATCH_* variables.

This is the only module that reads `FIGWATCH_*` environment variables.  A bad
file fails at start with a `ConfigError` naming the file, the line and the key,
because a monitor that starts with half its config silently ignored is worse
than one that refuses to start.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError

ChangeKind = Literal["changed", "new", "removed", "series_update", "conflict", "reverted"]
ALL_FIGURE_KINDS: tuple[ChangeKind, ...] = ("changed", "new", "removed", "series_update",
                                           "conflict", "reverted")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """ "15m", "1h30m", "2d", or seconds as a number."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    text = value.strip().lower().replace(" ", "")
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {value!r} (use e.g. '30s', '15m', '1h', '1d')")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {value!r}")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, Field(json_schema_extra={"format": "duration"})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceConfig(_Strict):
    """One watched page, feed or listing."""

    name: str = Field(min_length=1)
    url: str = Field(min_length=1)
    every: Duration = timedelta(hours=1)
    parser: str | None = None
    keep: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    feed: bool = False
    follow: str | None = None
    follow_limit: int = Field(default=20, ge=1)
    lang: Literal["en", "zh"] | None = None

    _every = field_validator("every", mode="before")(parse_duration)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"url must start with http:// or https:// and name a host: {v!r}")
        return v


class WebhookChannelConfig(_Strict):
    """POST a signed JSON body (Standard Webhooks) to a URL."""

    name: str
    kind: Literal["webhook"]
    url: str
    secret: str | None = None
    secret_env: str | None = None
    timeout: float = Field(default=10.0, gt=0)


class EmailChannelConfig(_Strict):
    """Send text+HTML mail over SMTP (STARTTLS, implicit TLS or plain)."""

    name: str
    kind: Literal["email"]
    smtp_host: str
    smtp_port: int = 587
    tls: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    sender: str = Field(alias="from")
    to: tuple[str, ...] = Field(min_length=1)
    timeout: float = Field(default=20.0, gt=0)


class StdoutChannelConfig(_Strict):
    """Print alerts as lines on standard output (demo, cron mail)."""

    name: str
    kind: Literal["stdout"]


ChannelConfig = Annotated[
    WebhookChannelConfig | EmailChannelConfig | StdoutChannelConfig, Field(discriminator="kind")
]


class RuleConfig(_Strict):
    """Which changes go to which channels."""

    name: str | None = None
    channels: tuple[str, ...] = Field(min_length=1)
    kinds: tuple[ChangeKind, ...] = ("changed", "new", "removed", "conflict", "reverted")
    sources: tuple[str, ...] | None = None
    entities: tuple[str, ...] | None = None
    metrics: tuple[str, ...] | None = None
    min_change: float | None = Field(default=None, ge=0)
    min_abs_change: float | None = Field(default=None, ge=0)
    above: float | None = None
    below: float | None = None
    new_high: bool = False
    new_low: bool = False
    confirm_fetches: int = Field(default=1, ge=1)
    confirm_sources: int = Field(default=1, ge=1)
    digest: bool = False
    baseline_alerts: bool = False


class Settings(BaseSettings):
    """Everything figwatch can be told.  Every key is documented in config/figwatch.example.toml."""

    model_config = SettingsConfigDict(env_prefix="FIGWATCH_", extra="forbid", frozen=True,
                                      populate_by_name=True)

    database_url: str = "sqlite:///figwatch.db"
    listen: str = "127.0.0.1:8787"
    api_token: SecretStr | None = None  # repr shows '**********', never the token
    user_agent: str = "figwatch/0.1 (+https://github.com/figwatch/figwatch)"
    allow_private_targets: bool = False
    respect_robots: bool = True
    max_failures: int = Field(default=3, ge=1)
    parser_suspect_after: int = Field(default=2, ge=1)
    ops_channels: tuple[str, ...] = ()
    keep_versions: int = Field(default=3, ge=1)
    max_concurrency: int = Field(default=16, ge=1)
    per_host_concurrency: int = Field(default=2, ge=1)
    per_host_delay: float = Field(default=1.0, ge=0)
    timeout: float = Field(default=30.0, gt=0)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_redirects: int = Field(default=5, ge=0)
    parse_workers: int = Field(default=0, ge=0)
    entities_file: str | None = None
    metrics_file: str | None = None
    sources: tuple[SourceConfig, ...] = ()
    channels: tuple[ChannelConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (init kwargs come from the TOML file).
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _references(self) -> Settings:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate source names: {', '.join(dupes)}")
        channels = {c.name for c in self.channels}
        for i, rule in enumerate(self.rules):
            for ch in rule.channels:
                if ch not in channels:
                    raise ValueError(f"rules[{i}] names unknown channel {ch!r}")
        for ch in self.ops_channels:
            if ch not in channels:
                raise ValueError(f"ops_channels names unknown channel {ch!r}")
        return self

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} (known: {known})")


def default_config_path() -> Path:
    return Path(os.environ.get("FIGWATCH_CONFIG") or "figwatch.toml")


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read and validate a config file; `overrides` replace top-level keys (tests, demo)."""
    cfg_path = Path(path) if path else default_config_path()
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", path=str(cfg_path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", path=str(cfg_path)) from exc
    return parse_settings(text, str(cfg_path), **overrides)


def parse_settings(text: str, path: str = "<config>", **overrides: Any) -> Settings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else max(1, len(text.splitlines()))
        raise ConfigError(f"invalid TOML: {exc}", path=path, line=line) from None
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, "kind")
        key = _dotted(loc)
        raise ConfigError(err["msg"], path=path, line=locate(text, loc), key=key or None) from None


_UNION_TAGS = {"webhook", "email", "stdout"}


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def locate(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of a validation error's location in the TOML text, best effort.

    Handles top-level keys and keys inside the n-th `[[table]]`, which is
    where nearly every config mistake is.
    """
    lines = text.splitlines()
    if not loc:
        return None
    start, end = 0, len(lines)
    head = loc[0]
    if len(loc) >= 2 and isinstance(loc[1], int):
        headers = [i for i, ln in enumerate(lines) if re.match(rf"^\s*\[\[\s*{head}\s*\]\]", ln)]
        if loc[1] >= len(headers):
            return None
        start = headers[loc[1]]
        nxt = [i for i, ln in enumerate(lines) if i > start and re.match(r"^\s*\[", ln)]
        end = nxt[0] if nxt else len(lines)
        key = loc[2] if len(loc) >= 3 and isinstance(loc[2], str) else None
        if key is None:
            return start + 1
    else:
        key = head
        first_table = next((i for i, ln in enumerate(lines) if re.match(r"^\s*\[", ln)), len(lines))
        end = first_table
    for i in range(start, end):
        if re.match(rf"^\s*\"?{re.escape(str(key))}\"?\s*=", lines[i]):
            return i + 1
    return start + 1 if start else None
