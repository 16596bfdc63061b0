"""Throughput of `parsers.figures.extract` on the seed sentences, against quantulum3.

    .venv/bin/python bench/figures.py [--rounds 8] [--seconds 0.5]

Splits the five seed articles (tests/data/seeds/) into sentences, then calls
`extract` once per sentence, pass after pass, and reports sentences per second;
does the same with `quantulum3.parser.parse` (after a warm-up call that loads
its unit tables), interleaving rounds of the two so both see the same machine,
and prints the ratio.  Whole-article calls (one `extract` per article, same
sentences) are reported too.  Times are CPU seconds of this single-threaded
process (`time.process_time`), so other load on a shared machine does not
count against either side; best and median passes are both shown.
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


def one_pass(fn: Callable[[str], object], items: list[str]) -> float:
    """Seconds for one call of `fn` on every item."""
    start = time.process_time()
    for item in items:
        fn(item)
    return time.process_time() - start


def timed_passes(fn: Callable[[str], object], items: list[str], seconds: float) -> list[float]:
    """Per-pass seconds of as many passes as fit in `seconds` (at least one)."""
    times: list[float] = []
    deadline = time.process_time() + seconds
    while not times or time.process_time() < deadline:
        times.append(one_pass(fn, items))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds")
    ap.add_argument("--seconds", type=float, default=0.5, help="figwatch time per round")
    args = ap.parse_args()
    texts = seed_texts()
    sentences = seed_sentences(texts)
    n = len(sentences)
    figures = sum(len(extract(s)) for s in sentences)
    print(f"seeds: {len(texts)} articles, {n} sentences, {figures} figures (per-sentence calls)")
    extract("1 万亿美元")  # loads the lexicon once

    try:
        from quantulum3 import parser as q3
    except ImportError:
        q3 = None
        print("quantulum3 not installed (pip install '.[bench]'): no comparison")
    ours: list[float] = []
    docs: list[float] = []
    theirs: list[float] = []
    ratios: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if q3 is not None:
            q3.parse(sentences[0])  # loads its unit tables once
        # Rounds alternate between the two parsers so that both see the same
        # machine load; the best pass of each is the least disturbed.
        for _ in range(args.rounds):
            ours += timed_passes(extract, sentences, args.seconds)
            docs += timed_passes(extract, texts, args.seconds / 2)
            if q3 is not None:
                theirs.append(one_pass(q3.parse, sentences))
                ratios.append(theirs[-1] / statistics.median(ours[-20:]))
    print(f"{'':34} {'best':>10} {'median':>10}  (sentences/s, one core)")
    print(f"{'figwatch extract, per sentence':34} {n / min(ours):10,.0f} "
          f"{n / statistics.median(ours):10,.0f}")
    print(f"{'figwatch extract, whole articles':34} {n / min(docs):10,.0f} "
          f"{n / statistics.median(docs):10,.0f}")
    if q3 is not None:
        print(f"{'quantulum3.parser.parse':34} {n / min(theirs):10,.0f} "
              f"{n / statistics.median(theirs):10,.0f}")
        print(f"{'ratio (best/best, median of rounds)':34} {min(theirs) / min(ours):9,.1f}x "
              f"{statistics.median(ratios):9,.1f}x")


if __name__ == "__main__":
    main()
