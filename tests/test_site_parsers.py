"""Site parsers, driven by fixture files (STYLE.md #9).

Every `tests/fixtures/sites/<site>/<case>.expected.json` is one case.  The page
is the sibling `<case>.html`, or the bundled snapshot named by `"snapshot"`
(under `seeds/snapshots/`).  Pages are passed as bytes so charset handling is
exercised too.  Keys, all optional except `parser`:

    url              passed to `parsers.extract` (default None: the page routes itself)
    extract_args     extra keyword arguments for `parsers.extract` (keep / drop / parser)
    doc_url, title, published, author, lang    expected Document fields
    must_contain / must_not_contain            substrings of `Document.text`
    empty            the Document has no text
    blocks           blocks that must be present (kind, text, row/column headers)
    footnotes        markers that must sit right after the given text
    seed             compare with a scraped seed text in tests/data/seeds/:
                     every line is in the text, except the title line (checked
                     against the title) and chrome lines (checked absent).
Adding a site or a case adds data, not test code.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import parsers
from parsers import Document
from parsers.registry import parser_classes

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "sites"
SNAPSHOTS = ROOT / "seeds" / "snapshots"
SEEDS = ROOT / "tests" / "data" / "seeds"

CASES = sorted(FIXTURES.glob("*/*.expected.json"))


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name.removesuffix('.expected.json')}"


def _load(path: Path) -> tuple[dict[str, Any], bytes]:
    expected = json.loads(path.read_text(encoding="utf-8"))
    if "snapshot" in expected:
        page = SNAPSHOTS / expected["snapshot"]
    else:
        page = path.with_name(path.name.removesuffix(".expected.json") + ".html")
    return expected, page.read_bytes()


def _with_markers(doc: Document) -> str:
    """Document text with each footnote marker put back where it stood ("171%" + "2")."""
    parts = []
    for block in doc.blocks:
        text = block.text
        # Right to left; markers sharing an offset ("4567") keep their order.
        for note in reversed(sorted(block.footnotes, key=lambda f: f.offset)):
            text = text[: note.offset] + note.marker + text[note.offset :]
        parts.append(text)
    return "\n\n".join(parts)


_LIST_MARK = re.compile(r"^\s+(?:•|\d+\.)\s+")


def _norm(line: str) -> str:
    """A seed line as text: list bullets/numbering (indented lines) dropped, spaces collapsed."""
    return " ".join(_LIST_MARK.sub("", line).split())


def _squash(text: str) -> str:
    """Text without whitespace: a scrape and a parser may differ on the space
    beside a footnote marker at the end of a line ("States? 8" / "States?8")."""
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_site_fixture(case: Path) -> None:
    expected, page = _load(case)
    doc = parsers.extract(page, expected.get("url"), **expected.get("extract_args", {}))
    text = doc.text

    assert doc.parser == expected["parser"]
    for key in ("title", "published", "author", "lang"):
        if key in expected:
            assert getattr(doc, key) == expected[key], key
    if "url" in expected or "doc_url" in expected:
        assert doc.url == expected.get("doc_url", expected.get("url"))
    assert doc.is_empty() == expected.get("empty", False)
    for needle in expected.get("must_contain", []):
        assert needle in text, f"missing {needle!r}"
    for needle in expected.get("must_not_contain", []):
        assert needle not in text, f"boilerplate {needle!r} in text"
    for want in expected.get("blocks", []):
        assert any(
            all(getattr(block, k) == v for k, v in want.items()) for block in doc.blocks
        ), f"no block {want}"
    for want in expected.get("footnotes", []):
        _assert_footnotes(doc, want["before"], want.get("markers") or [want["marker"]])
    if "seed" in expected:
        _assert_seed(doc, expected["seed"])


def _assert_footnotes(doc: Document, before: str, markers: list[str]) -> None:
    for block in doc.blocks:
        at = block.text.find(before)
        if at < 0:
            continue
        end = at + len(before)
        found = [f.marker for f in block.footnotes if f.offset == end]
        assert found == markers, f"markers after {before!r}: {found}"
        return
    pytest.fail(f"no block contains {before!r}")


def _assert_seed(doc: Document, seed: dict[str, Any]) -> None:
    raw = (SEEDS / seed["file"]).read_text(encoding="utf-8").split("\n")
    lines = [_norm(line) for line in raw if line.strip()]
    marked = _with_markers(doc)
    squashed = _squash(marked)
    text_lines = {" ".join(line.split()) for line in marked.split("\n")}
    chrome_from = len(lines)
    if "chrome_after" in seed:
        marker = seed["chrome_after"]
        chrome_from = next(i for i, line in enumerate(lines) if line.startswith(marker))
    if seed.get("title_line"):
        assert doc.title == lines[0]
        lines[0] = ""
    checked = 0
    for i, line in enumerate(lines):
        if not line:
            continue
        if i >= chrome_from or any(line.startswith(p) for p in seed.get("chrome", [])):
            assert line not in text_lines, f"chrome line kept: {line!r}"
        else:
            assert _squash(line) in squashed, f"seed line missing: {line[:80]!r}"
            checked += 1
    assert checked >= 10


def test_every_snapshot_has_an_expected_file() -> None:
    covered = {
        json.loads(p.read_text(encoding="utf-8")).get("snapshot") for p in CASES
    }
    snapshots = {p.relative_to(SNAPSHOTS).as_posix() for p in SNAPSHOTS.rglob("*.html")}
    assert snapshots, "no bundled snapshots"
    assert snapshots <= covered


def test_every_seed_is_checked_against_its_snapshot() -> None:
    used = {json.loads(p.read_text(encoding="utf-8")).get("seed", {}).get("file") for p in CASES}
    assert {p.name for p in SEEDS.glob("*.txt")} <= used


def test_site_parsers_are_documented_and_named() -> None:
    names = [cls.name for cls in parser_classes()]
    for expected in ("tmtpost", "tmtpost_en", "wordpress", "cnbc", "forbeschina",
                     "footnote_blog", "cbinsights", "selectors"):
        assert expected in names
    for cls in parser_classes():
        doc = (cls.__doc__ or "").strip()
        assert doc and "\n" not in doc, f"{cls.__name__} needs a one-line docstring"


def test_snapshot_parse_is_deterministic() -> None:
    page = (SNAPSHOTS / "aiwatcher.github.io" / "state-of-ai-2023-industry.html").read_bytes()
    assert parsers.extract(page) == parsers.extract(page)


SEEDS_DIR = ROOT / "seeds"


def _toml(name: str) -> dict[str, Any]:
    return tomllib.loads((SEEDS_DIR / name).read_text(encoding="utf-8"))


def _edit_id(edit: dict[str, str]) -> str:
    return edit["why"].split(")")[0].strip("(")


@pytest.mark.parametrize("edit", _toml("demo_edits.toml")["edits"], ids=_edit_id)
def test_demo_edit_changes_only_what_it_says(edit: dict[str, str]) -> None:
    """An edit inside article text shows up verbatim in Document.text; any other
    edit (the rotated 快报 rail) leaves Document.text exactly as it was."""
    page = (SNAPSHOTS / edit["file"]).read_text(encoding="utf-8")
    assert page.count(edit["find"]) == 1
    before = parsers.extract(page).text
    after = parsers.extract(page.replace(edit["find"], edit["replace"])).text
    if edit["find"] in before:
        assert after == before.replace(edit["find"], edit["replace"])
    else:
        assert after == before


def test_demo_sources_mirror_the_watchlist() -> None:
    sources = {s["name"]: s for s in _toml("sources.toml")["sources"]}
    demo = {s["name"]: s for s in _toml("demo.toml")["sources"]}
    assert sources.keys() == demo.keys()
    names = {cls.name for cls in parser_classes()}
    for name, source in demo.items():
        assert source["url"].startswith("{demo}/")
        snapshot = SNAPSHOTS / source["url"].removeprefix("{demo}/")
        assert snapshot.is_file(), name
        assert source["parser"] in names
        # The snapshot routes itself (canonical URL or generator) to the same parser,
        # and the watchlist URL routes there too.
        page = snapshot.read_bytes()
        assert parsers.extract(page).parser == source["parser"]
        assert parsers.extract(page, sources[name]["url"]).parser == source["parser"]
        assert sources[name]["url"].startswith("https://")
