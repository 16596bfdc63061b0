"""The fetcher alone: pages/s and CPU ms per fetch, 200s then 304s, against local pages.

    .venv/bin/python bench/fetch.py                  # 2,000 pages, concurrency 16
    .venv/bin/python bench/fetch.py --pages 5000 --concurrency 64

The pages and their server are bench/cycle.py's (a separate process); here only
`Fetcher.fetch` runs: the SSRF guard, politeness limits, retries wrapper,
streaming with the size cap, conditional requests.  Round 1 fetches every page
(200); round 2 sends each page's ETag back (304).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.fetch.client import Fetcher  # noqa: E402
from service.settings import Settings  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def measure(base: str, pages: int, concurrency: int) -> None:
    settings = Settings(database_url="sqlite://", allow_private_targets=True,
                        respect_robots=False, per_host_delay=0, max_concurrency=concurrency,
                        per_host_concurrency=concurrency)
    etags: dict[int, str | None] = {}
    async with Fetcher(settings) as fetcher:
        for label in ("200", "304"):
            async def one(i: int) -> None:
                result = await fetcher.fetch(f"{base}/p/{i}", etag=etags.get(i))
                etags[i] = result.etag

            cpu, wall = _cpu(), time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(pages)))
            wall, cpu = time.perf_counter() - wall, _cpu() - cpu
            print(f"  {label}: {pages / wall:6,.0f} pages/s, {1000 * cpu / pages:.2f} CPU ms/fetch")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "cycle.py"), "--serve",
                               "--pages", str(args.pages)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        print(f"{args.pages} pages, concurrency {args.concurrency}:")
        asyncio.run(measure(f"http://127.0.0.1:{port}", args.pages, args.concurrency))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
