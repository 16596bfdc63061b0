"""Confirmation end to end: page versions served over HTTP, alerts at a real webhook receiver.

The Forbes China seed snapshot is served by a SnapshotServer; between cycles the
served version is swapped (A = as published, B = CloudWalk's market value edited
from RMB 11.5 billion to RMB 10.8 billion).  A rule with `confirm_fetches = 2`
sends to a WebhookReceiver; the clock is injected, the backends are both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from service.runtime import CycleReport, Runtime
from service.settings import Settings
from service.snapshot_server import SnapshotServer
from service.webhook_receiver import WebhookReceiver
from tests import backends
from tests.backends import T0
from tests.conftest import SNAPSHOTS

db_url = backends.db_url

SECRET = "whsec_c2VjcmV0LWZvci10ZXN0cw=="
PATH = "/www.forbeschina.com/70175.html"
A = (SNAPSHOTS / PATH.lstrip("/")).read_bytes()
B = A.replace(b"has now shrunk to RMB 11.5 billion,", b"has now shrunk to RMB 10.8 billion,")
assert A != B


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Rig:
    site: SnapshotServer
    receiver: WebhookReceiver
    runtime: Runtime
    clock: Clock

    async def serve(self, body: bytes) -> CycleReport:
        """Serve `body` and run one cycle an hour after the previous one."""
        self.site.pages[PATH] = body
        self.clock.now += timedelta(hours=1)
        report = await self.runtime.cycle()
        assert [p.outcome for p in report.pages] != ["failed"], report.pages[0].error
        return report

    def hooks(self) -> list[dict[str, Any]]:
        return [h.body for h in self.receiver.received]


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    with SnapshotServer({PATH: A}) as site:
        async with WebhookReceiver(SECRET) as receiver:
            settings = Settings(
                database_url=db_url, allow_private_targets=True, respect_robots=False,
                per_host_delay=0,
                sources=({"name": "forbes", "url": site.base_url + PATH,
                          "parser": "forbeschina"},),
                channels=({"name": "hook", "kind": "webhook", "url": receiver.url,
                           "secret": SECRET},),
                rules=({"channels": ["hook"], "confirm_fetches": 2,
                        "kinds": ["changed", "new", "removed", "reverted"]},),
            )
            clock = Clock()
            async with Runtime(settings, clock=clock) as runtime:
                yield Rig(site, receiver, runtime, clock)


def kinds(r: Rig) -> list[str]:
    return [h["type"] for h in r.hooks()]


def cloudwalk(h: dict[str, Any]) -> tuple[str, str]:
    return h["data"]["old_value"], h["data"]["new_value"]


async def run(rig: Rig, *versions: bytes) -> list[CycleReport]:
    return [await rig.serve(v) for v in versions]


async def test_flap_then_change_then_revert(rig: Rig) -> None:
    # A -> B -> A: the store saw the flap; the rule waiting for two fetches sends nothing.
    reports = await run(rig, A, B, A)
    assert [r.pages[0].outcome for r in reports] == ["ok", "ok", "ok"]
    assert "changed" in [c.kind for c in reports[1].pages[0].changes]
    assert sum(r.dispatch.delivered for r in reports) == 0
    assert rig.receiver.requests == 0
    # A -> B -> B: one `changed`; the second B is a 304, seeing it again by its ETag.
    reports = await run(rig, B, B)
    assert [r.pages[0].outcome for r in reports] == ["ok", "unchanged"]
    assert kinds(rig) == ["figure.changed"]
    (hook,) = rig.hooks()
    assert cloudwalk(hook) == ("11500000000", "10800000000")
    assert hook["data"]["unit"] == "CNY" and hook["data"]["source"] == "forbes"
    assert hook["data"]["detected_at"] == (T0 + timedelta(hours=5)).isoformat()
    # The confirmed change reverts: one `reverted`, once the return is confirmed.
    await run(rig, A)
    assert kinds(rig) == ["figure.changed"]
    await run(rig, A, A)
    assert kinds(rig) == ["figure.changed", "figure.reverted"]
    assert cloudwalk(rig.hooks()[1]) == ("10800000000", "11500000000")
    assert all(h.verified for h in rig.receiver.received)
    assert len({h.headers["webhook-id"] for h in rig.receiver.received}) == 2
