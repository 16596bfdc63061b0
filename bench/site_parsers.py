"""Site-parser speed: `parsers.extract(bytes, parser=name)` per page, single core.

    .venv/bin/python bench/parsers.py                  # snapshots + 200 generated pages, 5 rounds
    .venv/bin/python bench/parsers.py --rounds 20 --generated 500
    .venv/bin/python bench/parsers.py --profile        # cProfile of one round, top 20
    .venv/bin/python bench/parsers.py --root /tmp/old  # the `parsers` package of another checkout

Pages are the bundled snapshots (seeds/snapshots/**) and the load-benchmark
pages of bench/pagegen.py, passed as UTF-8 bytes with the parser the demo
watchlist names for them, exactly as `bench/cycle.py` parses them.  Each page
is timed on its own after one warm-up round, in CPU time of this process
(`time.process_time_ns`; `--clock wall` for `perf_counter`) so that other
work on a shared machine inflates the numbers less.  The table gives, per site
parser and overall, the mean ms/page over all rounds, the "best" ms/page (each
page's fastest round, averaged: the least noisy figure) and pages/s from the
mean.  Only parsing is timed: page generation and encoding happen first.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pagegen import page, parsers_by_path, templates  # noqa: E402

Page = tuple[str, str, bytes]  # (label, parser name, body)


def load_pages(generated: int) -> list[Page]:
    """Every snapshot once, then `generated` pagegen pages, each with its parser."""
    tmpl = templates()
    by_path = parsers_by_path()
    pages: list[Page] = [(path, by_path[path], html.encode("utf-8")) for path, html in tmpl]
    for i in range(generated):
        path = tmpl[i % len(tmpl)][0]
        pages.append((f"gen/{i}", by_path[path], page(i, tmpl).encode("utf-8")))
    return pages


Timings = dict[int, list[int]]  # page index -> nanoseconds, one per round


def run_round(pages: list[Page], timings: Timings, clock: Callable[[], int]) -> None:
    import parsers

    extract = parsers.extract
    for i, (_, name, body) in enumerate(pages):
        start = clock()
        extract(body, parser=name)
        timings[i].append(clock() - start)


def _row(label: str, pages: list[Page], idx: list[int], timings: Timings) -> str:
    every = [t for i in idx for t in timings[i]]
    mean = sum(every) / len(every) / 1e6
    best = sum(min(timings[i]) for i in idx) / len(idx) / 1e6
    kb = sum(len(pages[i][2]) for i in idx) / len(idx) / 1024
    return (f"{label:<15}{len(idx):>7}{kb:>9.1f}{mean:>10.3f}{best:>10.3f}"
            f"{max(every) / 1e6:>9.2f}{1000 / mean:>10.0f}")


def report(pages: list[Page], timings: Timings) -> None:
    by_parser: dict[str, list[int]] = defaultdict(list)
    for i, (_, name, _) in enumerate(pages):
        by_parser[name].append(i)
    print(f"{'parser':<15}{'pages':>7}{'KB/page':>9}{'ms/page':>10}{'best ms':>10}"
          f"{'max ms':>9}{'pages/s':>10}")
    for name in sorted(by_parser):
        print(_row(name, pages, by_parser[name], timings))
    print(_row("overall", pages, list(range(len(pages))), timings))


def profile(pages: list[Page], top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    run_round(pages, defaultdict(list), time.perf_counter_ns)
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generated", type=int, default=200, help="pagegen pages (default 200)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds over all pages")
    ap.add_argument("--profile", action="store_true", help="cProfile one round, print top 20")
    ap.add_argument("--top", type=int, default=20, help="rows of profile output")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--root", type=Path, help="import `parsers` from this checkout instead")
    args = ap.parse_args()
    if args.root:  # before anything imports `parsers`
        sys.path.insert(0, str(args.root.resolve()))
    if hasattr(os, "sched_setaffinity"):  # single core, as one worker process would be
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pages = load_pages(args.generated)
    clock = time.process_time_ns if args.clock == "cpu" else time.perf_counter_ns
    run_round(pages, defaultdict(list), clock)  # warm-up: imports, regex and selector caches
    if args.profile:
        profile(pages, args.top)
        return
    timings: Timings = defaultdict(list)
    for _ in range(args.rounds):
        run_round(pages, timings, clock)
    import parsers

    where = Path(parsers.__file__).parent
    print(f"{len(pages)} pages x {args.rounds} rounds, single core, {args.clock} time, "
          f"parsers.extract(bytes, parser=name) from {where}")
    report(pages, timings)


if __name__ == "__main__":
    main()
