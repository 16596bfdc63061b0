"""One full `check` cycle over thousands of local article pages: pages/s, CPU/page, peak memory.

    .venv/bin/python bench/cycle.py                 # 10,000 pages, SQLite then PostgreSQL
    .venv/bin/python bench/cycle.py --pages 2000 --backend sqlite

A separate process serves distinct realistic pages (bench/pagegen.py) with
ETags; cycle 1 fetches, parses, extracts and stores every page; cycle 2 finds
every page unchanged (304).  Each backend runs in its own process tree (the
service process and its page workers), so CPU and peak memory are that
backend's, summed over the tree; the page server is not counted there.  The
whole machine's busy CPU and the postgres server's share of it are printed
beside, since on two cores they compete with figwatch for the same time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._pg import fresh_database  # noqa: E402
from bench._procs import (  # noqa: E402
    PeakMemory,
    cpu_seconds,
    cpu_used,
    machine_busy_seconds,
    named,
    tree,
)


def reference_ms_per_page(count: int = 200) -> float:
    """CPU ms per page to parse and extract the same `count` pages: this machine's speed now.

    On this shared virtual machine the same code's CPU per page moves by tens of
    percent between runs, and more for this cache-hungry work than for a tight
    loop; timing a fixed slice of the cycle's own work beside each run says under
    which conditions it ran.  Lower is faster.
    """
    from bench.pagegen import page, parsers_by_path, templates
    from service.pages import read_page
    from service.settings import SourceConfig

    tmpl = templates()
    parsers = parsers_by_path()
    work = [(page(i, tmpl).encode(),
             SourceConfig(name=f"r{i}", url=f"http://r.example/p/{i}",
                          parser=parsers.get(tmpl[i % len(tmpl)][0])))
            for i in range(count)]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    start = time.process_time()
    for body, source in work:
        read_page(body, source.url, source, "utf-8", at)
    return 1000 * (time.process_time() - start) / count


def serve(pages: int) -> None:
    """Serve /p/<i> pages (generated once, held in this process) until killed.

    A lean asyncio HTTP/1.1 server (keep-alive, ETag / If-None-Match) with every
    response prepared up front: it shares the machine's two cores with the
    process being measured, so the less it costs, the more the bench measures
    figwatch rather than the stand-in for ten thousand web servers.
    """
    from bench.pagegen import page, templates

    tmpl = templates()
    bodies = [page(i, tmpl).encode() for i in range(pages)]
    etags = [b'"' + hashlib.sha1(b).hexdigest().encode() + b'"' for b in bodies]
    full = [b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Length: %d\r\nETag: %s\r\n\r\n%s" % (len(body), etag, body)
            for body, etag in zip(bodies, etags, strict=True)]
    not_modified = [b"HTTP/1.1 304 Not Modified\r\nETag: %s\r\nContent-Length: 0\r\n\r\n" % e
                    for e in etags]
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    def respond(head: bytes) -> bytes:
        lines = head.split(b"\r\n")
        try:
            i = int(lines[0].split(b" ")[1].rsplit(b"/", 1)[1])
            body_etag = etags[i]
        except (IndexError, ValueError):
            return missing
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"if-none-match" and value.strip() == body_etag:
                return not_modified[i]
        return full[i]

    class Connection(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:  # GETs only: no bodies
                head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
                self.transport.write(respond(head))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Connection, "127.0.0.1", 0)
        sizes = sorted(len(b) for b in bodies)
        print(json.dumps({"port": server.sockets[0].getsockname()[1],
                          "bytes_median": sizes[len(sizes) // 2], "bytes_max": sizes[-1],
                          "bytes_min": sizes[0]}), flush=True)
        await server.serve_forever()

    asyncio.run(main())


async def measure(base: str, pages: int, database_url: str) -> dict[str, float]:
    from bench.pagegen import parsers_by_path, templates
    from service.runtime import Runtime
    from service.settings import Settings, SourceConfig

    tmpl = [p for p, _ in templates()]
    parsers = parsers_by_path()
    sources = tuple(
        SourceConfig(name=f"p{i:05d}", url=f"{base}/p/{i}", every="1h",
                     parser=parsers.get(tmpl[i % len(tmpl)]))
        for i in range(pages)
    )
    # The default global concurrency (16); one local host stands in for thousands, so
    # the per-host limit is the global one and there is no per-host delay.
    settings = Settings(database_url=database_url, allow_private_targets=True, parse_workers=2,
                        respect_robots=False, per_host_delay=0, per_host_concurrency=16,
                        sources=sources)
    out: dict[str, float] = {}
    with PeakMemory() as memory:
        async with Runtime(settings, keep_figures=False) as runtime:
            for label in ("cycle1", "cycle2"):
                cpu, wall = cpu_seconds(tree()), time.perf_counter()  # with the page workers
                server, busy = cpu_seconds(named("postgres")), machine_busy_seconds()
                report = await runtime.cycle()
                wall = time.perf_counter() - wall
                after = cpu_seconds(tree())
                out[f"{label}_server_cpu_ms_per_page"] = (
                    1000 * cpu_used(server, cpu_seconds(named("postgres"))) / pages)
                out[f"{label}_machine_cpu_ms_per_page"] = (
                    1000 * (machine_busy_seconds() - busy) / pages)
                outcomes = [p.outcome for p in report.pages]
                out[f"{label}_seconds"] = wall
                out[f"{label}_pages_per_s"] = pages / wall
                out[f"{label}_cpu_ms_per_page"] = 1000 * cpu_used(cpu, after) / pages
                main = os.getpid()
                out[f"{label}_main_cpu_ms_per_page"] = 1000 * (after[main] - cpu[main]) / pages
                for kind in ("ok", "unchanged", "failed"):
                    out[f"{label}_{kind}"] = outcomes.count(kind)  # type: ignore[arg-type]
    out["peak_rss_mb"], out["peak_pss_mb"] = memory.rss_mb, memory.pss_mb
    out["peak_main_rss_mb"] = memory.main_rss_mb
    return out



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    ap.add_argument("--database-url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.pages)
        return
    if args.base:  # child: one backend, report JSON
        result = asyncio.run(measure(args.base, args.pages, args.database_url))
        print(json.dumps(result))
        return

    server = subprocess.Popen([sys.executable, __file__, "--serve", "--pages", str(args.pages)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        base = f"http://127.0.0.1:{info['port']}"
        print(f"{args.pages} pages served from {base}; sizes min/median/max "
              f"{info['bytes_min']:,}/{info['bytes_median']:,}/{info['bytes_max']:,} bytes")
        backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
        for backend in backends:
            if backend == "postgresql":
                pg = fresh_database("figwatch_bench_cycle")
                if pg is None:
                    continue
                url = pg
            else:
                url = f"sqlite:///{tempfile.mkdtemp(prefix='fw-cycle-')}/bench.db"
            speed = reference_ms_per_page()
            child = subprocess.run([sys.executable, __file__, "--pages", str(args.pages),
                                    "--base", base, "--database-url", url],
                                   capture_output=True, text=True, env=os.environ)
            speed_after = reference_ms_per_page()
            if child.returncode:
                print(f"{backend}: FAILED\n{child.stderr[-3000:]}")
                continue
            r = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"\n{backend}:  (machine speed: parsing and extracting 200 fixed pages took "
                  f"{speed:.2f} CPU ms/page before the run, {speed_after:.2f} after; "
                  f"lower is faster)")
            for n, what, count in ((1, "fetch+parse+extract+store", "ok"),
                                   (2, "all 304", "unchanged")):
                c = f"cycle{n}"
                print(f"  cycle {n} ({what}): {r[c + '_seconds']:.1f} s, "
                      f"{r[c + '_pages_per_s']:.0f} pages/s, CPU ms/page "
                      f"{r[c + '_cpu_ms_per_page']:.2f} (service process "
                      f"{r[c + '_main_cpu_ms_per_page']:.2f})  ({count} {r[c + '_' + count]:.0f}, "
                      f"failed {r[c + '_failed']:.0f})")
                print(f"    whole machine {r[c + '_machine_cpu_ms_per_page']:.2f} CPU ms/page, "
                      f"of which the postgres server "
                      f"{r[c + '_server_cpu_ms_per_page']:.2f}")
            print(f"  304 cycle speed-up: {r['cycle2_pages_per_s'] / r['cycle1_pages_per_s']:.1f}x"
                  f"   peak memory of the service and its workers: RSS {r['peak_rss_mb']:.0f} MB"
                  f" summed, PSS {r['peak_pss_mb']:.0f} MB (service process alone: RSS "
                  f"{r['peak_main_rss_mb']:.0f} MB)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
