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


def rate(fn: Callable[[str], object], items: list[str], seconds: float, weight: int) -> float:
    """Items processed per second (weighted: `weight` sentences per full pass)."""
    passes = 0
    start = time.perf_counter()
    while True:
        for item in items:
            fn(item)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return passes * weight / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = ap.parse_args()
    texts = seed_texts()
    sentences = seed_sentences(texts)
    figures = sum(len(extract(s)) for s in sentences)
    print(f"seeds: {len(texts)} articles, {len(sentences)} sentences, {figures} figures")

    extract(sentences[0])  # loads the lexicon once
    ours = rate(extract, sentences, args.seconds, len(sentences))
    docs = rate(extract, texts, args.seconds, len(sentences))
    print(f"figwatch extract, per sentence : {ours:12,.0f} sentences/s")
    print(f"figwatch extract, per document : {docs:12,.0f} sentences/s")

    try:
        from quantulum3 import parser as q3
    except ImportError:
        print("quantulum3 not installed (pip install '.[bench]'); no comparison")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q3.parse(sentences[0])
        theirs = rate(q3.parse, sentences, args.seconds, len(sentences))
    print(f"quantulum3.parser.parse        : {theirs:12,.0f} sentences/s")
    print(f"ratio (per sentence)           : {ours / theirs:12,.1f}x")


if __name__ == "__main__":
    main()
