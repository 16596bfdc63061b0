"""Throughput of `parsers.figures.extract` on the seed sentences, against quantulum3.

    .venv/bin/python bench/figures.py [--seconds 3]

Splits the five seed articles (tests/data/seeds/) into sentences, then, on one
core, calls `extract` once per sentence for a few seconds and reports
sentences per second; does the same with `quantulum3.parser.parse` (after a
warm-up call that loads its models) and prints the ratio.  Whole-document
calls (one `extract` per article) are reported too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from parsers.figures import extract  # noqa: E402
from parsers.figures.sentences import split  # noqa: E402

SEEDS = ROOT / "tests" / "data" / "seeds"


def seed_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]


def seed_sentences(texts: list[str]) -> list[str]:
    return [t[s:e] for t in texts for s, e in split(t)]


def rate(fn: Callable[[str], object], items: list[str], seconds: float, weight: int) -> tuple[float, float]:
    """(best, median) sentences per second over repeated full passes for `seconds`.

    One pass calls `fn` on every item; `weight` is the number of sentences a pass
    covers.  The best pass is the least disturbed by other processes (as timeit
    recommends); the median is reported beside it.
    """
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while not times or time.perf_counter() < deadline:
        start = time.perf_counter()
        for item in items:
            fn(item)
        times.append(time.perf_counter() - start)
    return weight / min(times), weight / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = ap.parse_args()
    texts = seed_texts()
    sentences = seed_sentences(texts)
    figures = sum(len(extract(s)) for s in sentences)
    print(f"seeds: {len(texts)} articles, {len(sentences)} sentences, {figures} figures")

    extract("1 万亿美元")  # loads the lexicon once
    ours = rate(extract, sentences, args.seconds, len(sentences))
    docs = rate(extract, texts, args.seconds, len(sentences))
    print(f"{'':32} {'best':>10} {'median':>10}  (sentences/s, one core)")
    print(f"{'figwatch extract, per sentence':32} {ours[0]:10,.0f} {ours[1]:10,.0f}")
    print(f"{'figwatch extract, per document':32} {docs[0]:10,.0f} {docs[1]:10,.0f}")

    try:
        from quantulum3 import parser as q3
    except ImportError:
        print("quantulum3 not installed (pip install '.[bench]'); no comparison")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q3.parse(sentences[0])
        theirs = rate(q3.parse, sentences, args.seconds * 3, len(sentences))
    print(f"{'quantulum3.parser.parse':32} {theirs[0]:10,.0f} {theirs[1]:10,.0f}")
    print(f"{'ratio, per sentence':32} {ours[0] / theirs[0]:9,.1f}x {ours[1] / theirs[1]:9,.1f}x")


if __name__ == "__main__":
    main()
