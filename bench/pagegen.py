"""Distinct, realistic article pages for load benchmarks, generated on demand.

Page i is one of the bundled seed snapshots (full site chrome, sidebar and
all) with its numbers rewritten from i and a varying number of extra article
paragraphs, so every page is distinct, sizes vary (tens of KB to ~200 KB) and
nothing needs to be held in memory.
"""

from __future__ import annotations

import random
import re
import tomllib
from pathlib import Path

SNAPSHOTS = Path(__file__).resolve().parents[1] / "seeds" / "snapshots"
_NUMBER = re.compile(r"(?<![\w.#/-])(\d{1,3}(?:\.\d+)?)(?=\s?(?:%|billion|million|trillion|亿|万))")


def templates() -> list[tuple[str, str]]:
    """(relative path, html) of every bundled snapshot page."""
    return [(p.relative_to(SNAPSHOTS).as_posix(), p.read_text(encoding="utf-8"))
            for p in sorted(SNAPSHOTS.rglob("*.html"))]


def page(i: int, tmpl: list[tuple[str, str]]) -> str:
    _, html = tmpl[i % len(tmpl)]
    rng = random.Random(i)

    def bump(m: re.Match[str]) -> str:
        return f"{float(m.group(1)) * (1 + rng.randint(1, 50) / 100):.2f}"

    html = _NUMBER.sub(bump, html)
    extra = "".join(
        f"<p>Filler paragraph {k} for page {i}: analysts expect revenue of "
        f"${rng.randint(1, 900)} million in {2020 + k % 5}, up {rng.randint(1, 99)}%.</p>"
        for k in range(rng.randint(0, 40))
    )
    # Extra paragraphs go just before the closing article container so parsers keep them.
    idx = html.rfind("</p>")
    return html[: idx + 4] + extra + html[idx + 4 :] if idx >= 0 else html + extra


def parsers_by_path() -> dict[str, str]:
    """Snapshot path → parser name, as the demo watchlist declares them."""
    demo = tomllib.loads((SNAPSHOTS.parent / "demo.toml").read_text(encoding="utf-8"))
    return {s["url"].removeprefix("{demo}/"): s["parser"] for s in demo["sources"]}
