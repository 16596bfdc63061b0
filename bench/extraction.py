"""Score figwatch's main-content extraction against trafilatura on the extraction-dev set.

    .venv/bin/python bench/extraction.py [--dataset DIR] [--limit N]
                                         [--only ours,generic,trafilatura] [--worst K]

`ours` is `parsers.extract(html, url)` (a registered site parser where one
claims the URL, else the generic extractor); `generic` forces the generic
extractor on every page, which is what tuning it needs.

Metric (as the dataset README states): precision, recall and F1 over word
4-gram shingles of the extracted text against `ground_truth.main_content`,
averaged over pages.  Shingles are counted as a multiset (a repeated
4-gram counts as often as it occurs).  Tokens: the text is lower-cased and
split on whitespace.  Chinese/Japanese text has no spaces, so whitespace
tokens there would be whole sentences; every CJK character is made its own
token instead (before splitting), on both sides, for every page.  A text
shorter than four tokens is one shingle of all its tokens.  An empty output
scores P = R = F1 = 0, unless the gold text is empty too (then 1).

Speed: only the extraction call is timed (input is the decoded `str`, as the
fetcher hands it over), one process, pages in file order, the extractors
interleaved page by page; pages/s is pages divided by the summed time, given
as process CPU time (steady on a shared machine) and as wall time.

Last full run (2026-11-25 23:15 UTC, 500 pages, shared 2-core machine at load ~8;
`--only ours,generic,trafilatura`):

    generic      P=0.7716 R=0.8395 F1=0.7842  135.6 pages/s CPU   63.8 wall
    ours         P=0.7504 R=0.8138 F1=0.7594  130.1 pages/s CPU   59.7 wall
                 (48 pages carry <meta name=generator content=WordPress> and go to
                 sites/wordpress, which scores 0.640 on them where generic scores 0.885)
    trafilatura  P=0.7847 R=0.7734 F1=0.7577   12.3 pages/s CPU    5.7 wall
    speed generic/trafilatura 11.0x CPU, 11.2x wall; ours/trafilatura 10.6x CPU, 10.5x wall
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import parsers  # noqa: E402  (the repo root was just put on the path)

DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "extraction-dev"
_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af])")
NGRAM = 4


@dataclass(slots=True)
class Page:
    id: str
    url: str
    page_type: str
    html: str
    gold: str


@dataclass(slots=True)
class Score:
    precision: float
    recall: float
    f1: float


def tokens(text: str) -> list[str]:
    return _CJK.sub(r" \1 ", text.lower()).split()


def shingles(text: str) -> Counter[tuple[str, ...]]:
    toks = tokens(text)
    if not toks:
        return Counter()
    if len(toks) < NGRAM:
        return Counter([tuple(toks)])
    return Counter(tuple(toks[i : i + NGRAM]) for i in range(len(toks) - NGRAM + 1))


def score(gold: str, pred: str) -> Score:
    g, p = shingles(gold), shingles(pred)
    if not g and not p:
        return Score(1.0, 1.0, 1.0)
    if not g or not p:
        return Score(0.0, 0.0, 0.0)
    tp = sum((g & p).values())
    precision = tp / sum(p.values())
    recall = tp / sum(g.values())
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return Score(precision, recall, f1)


def load(dataset: Path, limit: int | None) -> list[Page]:
    pages: list[Page] = []
    for gt_path in sorted((dataset / "ground-truth").glob("*.json")):
        if limit is not None and len(pages) >= limit:
            break
        gt = json.loads(gt_path.read_text(encoding="utf-8"))
        html_path = dataset / "html" / f"{gt_path.stem}.html.gz"
        html = gzip.decompress(html_path.read_bytes()).decode("utf-8", "replace")
        page_type = gt.get("_internal", {}).get("page_type", {}).get("primary", "unknown")
        pages.append(Page(gt_path.stem, gt.get("url", ""), page_type, html,
                          gt["ground_truth"]["main_content"] or ""))
    return pages


def ours(html: str, url: str) -> str:
    return parsers.extract(html, url).text


def generic(html: str, url: str) -> str:
    return parsers.extract(html, url, parser="generic").text


def trafilatura_txt(html: str, url: str) -> str:
    import trafilatura

    out = trafilatura.extract(html, url=url, output_format="txt", include_comments=False,
                              include_tables=True)
    return out or ""


EXTRACTORS: dict[str, Callable[[str, str], str]] = {
    "ours": ours,  # parsers.extract: the site parser for the URL, else the generic one
    "generic": generic,  # the generic extractor on every page, whatever the URL
    "trafilatura": trafilatura_txt,
}


@dataclass(slots=True)
class Timed:
    texts: list[str]
    wall: float = 0.0
    cpu: float = 0.0


def extract_all(names: list[str], pages: list[Page]) -> dict[str, Timed]:
    """Every extractor on every page, interleaved page by page so that load from other
    processes falls on all of them alike; only the extraction call is timed."""
    fns = {name: EXTRACTORS[name] for name in names}
    for fn in fns.values():
        fn(pages[0].html, pages[0].url)  # warm-up: imports, lazy tables
    out = {name: Timed([]) for name in names}
    for page in pages:
        for name, fn in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            text = fn(page.html, page.url)
            c1, w1 = time.process_time(), time.perf_counter()
            timed = out[name]
            timed.wall += w1 - w0
            timed.cpu += c1 - c0
            timed.texts.append(text)
    return out


def report(name: str, pages: list[Page], timed: Timed, worst: int) -> None:
    scores = [(score(page.gold, text), page) for page, text in zip(pages, timed.texts,
                                                                   strict=True)]
    n = len(scores)
    mean = [sum(getattr(s, k) for s, _ in scores) / n for k in ("precision", "recall", "f1")]
    print(f"{name:12s} pages={n}  P={mean[0]:.4f}  R={mean[1]:.4f}  F1={mean[2]:.4f}  "
          f"pages/s={n / timed.cpu:.1f} (CPU time)  {n / timed.wall:.1f} (wall)")
    by_type: dict[str, list[float]] = defaultdict(list)
    for s, page in scores:
        by_type[page.page_type].append(s.f1)
    for page_type, f1s in sorted(by_type.items(), key=lambda kv: -len(kv[1])):
        print(f"    {page_type:14s} n={len(f1s):4d}  F1={sum(f1s) / len(f1s):.4f}")
    if worst:
        print("    worst pages:")
        for s, page in sorted(scores, key=lambda sp: sp[0].f1)[:worst]:
            print(f"      {page.id} {page.page_type:13s} P={s.precision:.2f} R={s.recall:.2f} "
                  f"F1={s.f1:.2f} {page.url}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET,
                    help=f"extraction-dev folder (default {DEFAULT_DATASET})")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N pages")
    ap.add_argument("--only", default="ours,trafilatura",
                    help="comma-separated extractors to run, of: "
                         f"{', '.join(EXTRACTORS)} (default: ours,trafilatura)")
    ap.add_argument("--worst", type=int, default=0, help="list the K lowest-F1 pages")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in EXTRACTORS]
    if unknown or not names:
        print(f"error: unknown extractor(s) {', '.join(unknown) or '(none)'}; "
              f"known: {', '.join(EXTRACTORS)}", file=sys.stderr)
        return 2
    if "trafilatura" in names and importlib.util.find_spec("trafilatura") is None:
        print("error: trafilatura is not installed (pip install -e '.[bench]'), or pass "
              "--only ours", file=sys.stderr)
        return 2
    if not (args.dataset / "ground-truth").is_dir() or not (args.dataset / "html").is_dir():
        print(f"error: no extraction-dev dataset at {args.dataset} (expected ground-truth/ and "
              "html/ inside); pass --dataset DIR", file=sys.stderr)
        return 2
    pages = load(args.dataset, args.limit)
    if not pages:
        print(f"error: no pages found in {args.dataset}", file=sys.stderr)
        return 2
    results = extract_all(names, pages)
    for name in names:
        report(name, pages, results[name], args.worst)
    if "trafilatura" in results:
        base = results["trafilatura"]
        for name in names:
            if name != "trafilatura":
                t = results[name]
                print(f"speed {name}/trafilatura: {base.cpu / t.cpu:.1f}x (CPU time), "
                      f"{base.wall / t.wall:.1f}x (wall)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
