"""The channel registry, build_channels, the stdout channel and alert wordings."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from service.alerts import Change, PendingAlert
from service.channels import (
    Channel,
    ChannelContext,
    StdoutChannel,
    WebhookChannel,
    build_channels,
    channel_classes,
)
from service.channels import base as channel_base
from service.channels.summary import change_line, headline, number
from service.errors import ConfigError
from service.settings import Settings, parse_settings

T0 = datetime(2024, 2, 1, 8, 0, tzinfo=UTC)


def figure_alert(kind: str = "changed", **fields: Any) -> PendingAlert:
    change = Change(kind=kind, source="tmtpost", url="https://www.tmtpost.com/1.html", unit="USD",
                    new_value=None, old_value=None, sentence="…", detected_at=T0,
                    entity="NVIDIA", metric="market_cap")
    data = change.to_payload() | fields
    return PendingAlert(id="a1", channel="console", type=f"figure.{kind}", data=data,
                        created_at=T0)


def test_builtins_are_registered_with_a_docstring() -> None:
    classes = channel_classes()
    assert {"webhook", "email", "stdout"} <= set(classes)
    for cls in classes.values():
        assert cls.__doc__ and cls.__doc__.strip()


def test_a_plugin_registers_by_subclassing_and_a_kind_cannot_be_taken_twice() -> None:
    try:
        class Pager(Channel):
            """Page someone."""

            kind: ClassVar[str] = "test-pager"

            @classmethod
            def from_config(cls, config: Any, context: ChannelContext) -> Pager:
                return cls(config.name)

            async def send(self, alert: PendingAlert) -> None:
                return None

        assert channel_classes()["test-pager"] is Pager
        with pytest.raises(TypeError, match="'webhook' is already registered"):
            class Imposter(WebhookChannel):
                kind = "webhook"
    finally:
        channel_base._REGISTRY.pop("test-pager", None)


def test_unknown_kind_is_a_config_error_listing_the_known() -> None:
    class Odd:
        name, kind = "odd", "carrier-pigeon"

    settings = Settings.model_construct(channels=(Odd(),), allow_private_targets=False)
    with pytest.raises(ConfigError, match=r"channels\[0\]\.kind: unknown channel kind "
                                          r"'carrier-pigeon' \(known: .*email.*webhook"):
        build_channels(settings, env={})


def test_build_channels_makes_each_configured_kind() -> None:
    settings = parse_settings("""
[[channels]]
name = "hook"
kind = "webhook"
url = "https://hooks.example.test/figwatch"
secret = "plain"

[[channels]]
name = "mail"
kind = "email"
smtp_host = "smtp.example.test"
from = "figwatch@example.test"
to = ["ana@example.test"]

[[channels]]
name = "console"
kind = "stdout"
""")
    channels = build_channels(settings, env={})
    assert {n: c.kind for n, c in channels.items()} == {
        "hook": "webhook", "mail": "email", "console": "stdout"}
    assert channels.disabled == {}


@pytest.mark.parametrize(("value", "unit", "text"), [
    ("1790000000000", "USD", "1.79T"), ("86000000000", "USD", "86B"),
    ("1100000", "CNY", "1.1M"), ("250000", "USD", "250000"), ("232", "count", "232"),
    ("38.50", "%", "38.5%"), ("2.5", "x", "2.5x"), (None, "USD", "-"), ("n/a", "USD", "n/a"),
])
def test_number(value: str | None, unit: str, text: str) -> None:
    assert number(value, unit) == text


def test_change_lines() -> None:
    base = figure_alert().data
    assert change_line(base | {"old_value": "1790000000000", "new_value": "1850000000000"}) == \
        "NVIDIA market_cap changed: 1.79T → 1.85T USD"
    # A move too small for the short form shows the full values.
    assert change_line(base | {"old_value": "1790000000000.5",
                               "new_value": "1790000000000.25"}) == \
        "NVIDIA market_cap changed: 1790000000000.5 → 1790000000000.25 USD"
    assert change_line(base | {"kind": "conflict", "old_value": "1100000000000",
                               "new_value": "3390000000000", "other_source": "forbes",
                               "period": "2024"}) == \
        "NVIDIA market_cap (2024) sources disagree: 1.1T USD (forbes) vs 3.39T USD (tmtpost)"
    assert change_line(base | {"kind": "removed", "old_value": "1"}) == \
        "NVIDIA market_cap removed: 1 USD"


async def test_stdout_one_line_per_alert_including_digests() -> None:
    out = io.StringIO()
    console = StdoutChannel("console", out)
    single = figure_alert("new", new_value="157000000000", entity="OpenAI", metric="valuation")
    digest = PendingAlert(id="d1", channel="console", type="figure.digest", created_at=T0,
                          data={"changes": [single.data, figure_alert(
                              old_value="1790000000000", new_value="1850000000000").data]})
    ops = PendingAlert(id="o1", channel="console", type="ops.source_error", created_at=T0,
                       data={"source": "tmtpost", "url": "https://www.tmtpost.com/",
                             "error": "503 Service Unavailable"})
    for a in (single, digest, ops):
        await console.send(a)
    assert out.getvalue().splitlines() == [
        "[figwatch] OpenAI valuation new: 157B USD  (tmtpost https://www.tmtpost.com/1.html)",
        "[figwatch] 2 changes: OpenAI valuation new: 157B USD; "
        "NVIDIA market_cap changed: 1.79T → 1.85T USD",
        "[figwatch] source tmtpost: source_error: 503 Service Unavailable",
    ]
    assert headline(digest) == "2 changes"


async def test_stdout_defaults_to_the_current_sys_stdout(
        capsys: pytest.CaptureFixture[str]) -> None:
    await StdoutChannel("console").send(figure_alert("removed", old_value="5"))
    assert capsys.readouterr().out == \
        "[figwatch] NVIDIA market_cap removed: 5 USD  (tmtpost https://www.tmtpost.com/1.html)\n"
