"""At-least-once: a process killed after committing an alert, before sending it.

The alert row is written in the same transaction as the observations that
caused it, so a crash between commit and delivery loses nothing: the next
process delivers it, with the same idempotency key (webhook-id).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from service.snapshot_server import SnapshotServer
from service.store import Store
from service.webhook_receiver import WebhookReceiver

from .conftest import ROOT, SNAPSHOTS

SECRET = "whsec_c2VjcmV0LWZvci10aGUtY3Jhc2gtdGVzdA=="
PAGE = "/en.tmtpost.com/6978451.html"

CRASH_AFTER_COMMIT = textwrap.dedent("""
    import asyncio, os, signal, sys
    from service.runtime import Runtime
    from service.settings import load_settings

    async def main():
        runtime = Runtime(load_settings(sys.argv[1]))
        await runtime.pipeline.check_all(runtime.settings.sources)  # commits the alert
        os.kill(os.getpid(), signal.SIGKILL)                         # ...and dies unsent

    asyncio.run(main())
""")


def _figwatch(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("figwatch")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


async def test_alert_committed_before_a_crash_is_delivered_after_restart(tmp_path: Path) -> None:
    db = tmp_path / "fw.db"
    with SnapshotServer.from_directory(SNAPSHOTS) as site:
        async with WebhookReceiver(SECRET) as receiver:
            cfg = tmp_path / "figwatch.toml"
            cfg.write_text(f"""
database_url = "sqlite:///{db}"
allow_private_targets = true
respect_robots = false
per_host_delay = 0

[[sources]]
name = "tmtpost-en"
url = "{site.base_url}{PAGE}"
parser = "tmtpost_en"

[[channels]]
name = "hook"
kind = "webhook"
url = "{receiver.url}"
secret = "{SECRET}"

[[rules]]
channels = ["hook"]
kinds = ["changed"]
""")
            baseline = await asyncio.to_thread(_figwatch, "check", "--config", str(cfg))
            assert baseline.returncode == 0, baseline.stderr
            page = site.pages[PAGE].decode()
            assert page.count("$1.79 trillion") == 1
            site.pages[PAGE] = page.replace("$1.79 trillion", "$1.85 trillion").encode()

            crashed = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", CRASH_AFTER_COMMIT, str(cfg)],
                cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert crashed.returncode == -signal.SIGKILL, crashed.stderr
            assert receiver.received == []

            store = Store(f"sqlite:///{db}")
            pending = store.alerts(state="pending")
            store.close()
            assert [a.type for a in pending] == ["figure.changed"]
            assert pending[0].data["new_value"] == "1850000000000"

            restarted = await asyncio.to_thread(_figwatch, "check", "--config", str(cfg))
            assert restarted.returncode == 0, restarted.stderr
            hooks = await receiver.wait_for(1, timeout=10)
    assert len(hooks) == 1 and hooks[0].verified
    assert hooks[0].headers["webhook-id"] == pending[0].id
    assert hooks[0].body["data"]["old_value"] == "1790000000000"
    assert os.path.exists(db)
