"""The extractor against hand-written gold files, one per seed article.

Gold rows live in `tests/data/gold/<seed>.json` (written by reading the text,
not by running the extractor).  A gold figure matches an extracted one with the
same unit and value whose span is within 80 characters of the gold anchor.
Scores are micro-averaged over all seeds:

* precision and recall on (value, unit) — at least 0.98 and 0.95;
* attribution: of the matched figures, the share whose entity, metric and
  period each equal the gold — at least 0.90 per field.

Run `pytest tests/test_figures_gold.py -s` to see the per-seed table.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from parsers.figures import Figure, extract

DATA = Path(__file__).parent / "data"
GOLD_FILES = sorted((DATA / "gold").glob("*.json"))
NEAR = 80


@dataclass
class GoldFigure:
    anchor: str
    start: int
    value: Decimal
    unit: str
    qualifier: str
    entity: str | None
    metric: str | None
    period: str | None
    low: Decimal | None = None
    high: Decimal | None = None


@dataclass
class Score:
    gold: int = 0
    extracted: int = 0
    matched: list[tuple[GoldFigure, Figure]] = field(default_factory=list)
    missed: list[GoldFigure] = field(default_factory=list)
    spurious: list[Figure] = field(default_factory=list)

    def add(self, other: Score) -> None:
        self.gold += other.gold
        self.extracted += other.extracted
        self.matched += other.matched
        self.missed += other.missed
        self.spurious += other.spurious

    @property
    def precision(self) -> float:
        return len(self.matched) / self.extracted if self.extracted else 1.0

    @property
    def recall(self) -> float:
        return len(self.matched) / self.gold if self.gold else 1.0

    def field_accuracy(self, name: str) -> float:
        if not self.matched:
            return 1.0
        ok = sum(getattr(g, name) == getattr(f, name) for g, f in self.matched)
        return ok / len(self.matched)

    def triple_accuracy(self) -> float:
        if not self.matched:
            return 1.0
        ok = sum(
            (g.entity, g.metric, g.period) == (f.entity, f.metric, f.period)
            for g, f in self.matched
        )
        return ok / len(self.matched)


def _dec(v: str | None) -> Decimal | None:
    return None if v is None else Decimal(v)


def load(path: Path) -> tuple[dict, str, list[GoldFigure], tuple[int, int]]:
    gold = json.loads(path.read_text(encoding="utf-8"))
    text = (DATA / "seeds" / f"{gold['seed']}.txt").read_text(encoding="utf-8")
    lo = text.index(gold["body_start"]) if gold.get("body_start") else 0
    hi = text.index(gold["body_end"], lo) if gold.get("body_end") else len(text)
    rows: list[GoldFigure] = []
    cursor = lo
    for row in gold["figures"]:
        anchor = row[0]
        pos = text.find(anchor, cursor)
        assert pos >= 0, f"{path.name}: anchor {anchor!r} not found after offset {cursor}"
        cursor = pos + 1
        low, high = (row[7], row[8]) if len(row) > 7 else (None, None)
        rows.append(GoldFigure(anchor, pos, Decimal(row[1]), row[2], row[3], row[4], row[5],
                               row[6], _dec(low), _dec(high)))
    return gold, text, rows, (lo, hi)


def score_seed(path: Path) -> tuple[Score, list[Figure], dict, str]:
    gold, text, rows, (lo, hi) = load(path)
    ref = dt.date.fromisoformat(gold["reference_date"])
    figures = [f for f in extract(text, reference_date=ref) if lo <= f.start < hi]
    score = Score(gold=len(rows), extracted=len(figures))
    free = list(figures)
    for g in rows:
        candidates = [
            f for f in free
            if f.unit == g.unit and f.value == g.value and abs(f.start - g.start) <= NEAR
        ]
        if not candidates:
            score.missed.append(g)
            continue
        best = min(candidates, key=lambda f: abs(f.start - g.start))
        free.remove(best)
        score.matched.append((g, best))
    score.spurious = free
    return score, figures, gold, text


def report(score: Score) -> str:
    lines = [
        f"gold={score.gold} extracted={score.extracted} matched={len(score.matched)} "
        f"P={score.precision:.3f} R={score.recall:.3f} "
        f"entity={score.field_accuracy('entity'):.3f} metric={score.field_accuracy('metric'):.3f} "
        f"period={score.field_accuracy('period'):.3f} all3={score.triple_accuracy():.3f}"
    ]
    lines += [f"  missed   {g.anchor!r} {g.value} {g.unit}" for g in score.missed]
    lines += [f"  spurious {f.surface!r} {f.value} {f.unit}" for f in score.spurious]
    for g, f in score.matched:
        want, got = (g.entity, g.metric, g.period), (f.entity, f.metric, f.period)
        if want != got:
            lines.append(f"  attr     {g.anchor!r} want={want} got={got}")
    return "\n".join(lines)


def total_score() -> Score:
    total = Score()
    for path in GOLD_FILES:
        total.add(score_seed(path)[0])
    return total


def test_gold_files_exist() -> None:
    assert len(GOLD_FILES) >= 5


@pytest.mark.parametrize("path", GOLD_FILES, ids=lambda p: p.stem)
def test_seed_report(path: Path) -> None:
    score, _figures, gold, _text = score_seed(path)
    print(f"\n{path.stem}: {report(score)}")
    # Ranges and conversions named in the gold are read as one figure.
    for g, f in score.matched:
        assert (f.low, f.high) == (g.low, g.high), f"{g.anchor!r}: range {f.low}..{f.high}"
    by_anchor = {g.anchor: f for g, f in score.matched}
    for anchor, value, unit, qualifier in gold.get("conversions", []):
        f = by_anchor[anchor]
        assert f.conversion is not None, anchor
        assert (f.conversion.value, f.conversion.unit) == (Decimal(value), unit)
        assert f.conversion.qualifier == qualifier


@pytest.mark.parametrize("path", GOLD_FILES, ids=lambda p: p.stem)
def test_seed_negatives(path: Path) -> None:
    _score, figures, gold, text = score_seed(path)
    for neg in gold.get("negatives", []):
        pos = text.find(neg)
        assert pos >= 0, f"negative {neg!r} not in text"
        while pos >= 0:
            hits = [f for f in figures if f.start < pos + len(neg) and pos < f.end]
            assert not hits, f"{neg!r} at {pos} read as {[h.surface for h in hits]}"
            pos = text.find(neg, pos + 1)


def test_gold_thresholds() -> None:
    total = total_score()
    print(f"\nALL: {report(total).splitlines()[0]}")
    assert total.precision >= 0.98, report(total)
    assert total.recall >= 0.95, report(total)
    for name in ("entity", "metric", "period"):
        assert total.field_accuracy(name) >= 0.90, f"{name}: {report(total)}"
