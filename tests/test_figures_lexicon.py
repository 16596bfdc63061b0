"""The lexicon is data: bundled TOML, user files merged on top, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers.errors import ParseError
from parsers.figures import Lexicon, default_lexicon, extract

ROOT = Path(__file__).resolve().parents[1]


def test_default_lexicon_loads_the_bundled_files() -> None:
    lex = default_lexicon()
    names = {e.name for e in lex.entities}
    assert {"NVIDIA", "OpenAI", "SenseTime", "Cambricon", "China", "US"} <= names
    nvidia = next(e for e in lex.entities if e.name == "NVIDIA")
    assert {"Avida", "英伟达", "Nvidia"} <= set(nvidia.aliases)
    metrics = {m.name for m in lex.metrics}
    assert {"market_cap", "valuation", "revenue", "net_income", "net_loss", "funding",
            "deal_count", "arr", "users", "gpus", "share_price", "net_worth"} <= metrics
    assert default_lexicon() is lex  # read once


def test_bundled_files_are_the_repo_config() -> None:
    assert Lexicon.from_files(ROOT / "config/entities.toml", ROOT / "config/metrics.toml") == (
        default_lexicon()
    )


def test_user_file_extends_aliases_and_metrics(tmp_path: Path) -> None:
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[NVIDIA]\naliases = ["Team Green"]\n\n'
        '[Moonshot]\naliases = ["Moonshot AI", "月之暗面"]\n\n'
        '[metrics.gross_margin]\nen = ["gross margin"]\nzh = ["毛利率"]\nunits = ["%"]\n',
        encoding="utf-8",
    )
    lex = default_lexicon().merge(Lexicon.from_files(extra))
    f = extract("Team Green's gross margin was 75% in 2024.", lexicon=lex)[0]
    assert (f.entity, f.metric, f.period) == ("NVIDIA", "gross_margin", "2024")
    g = extract("月之暗面估值 25 亿美元", lexicon=lex)[0]
    assert (g.entity, g.metric) == ("Moonshot", "valuation")
    # the default lexicon is untouched
    assert extract("Team Green's gross margin was 75%.")[0].entity is None


def test_an_empty_lexicon_still_reads_numbers() -> None:
    f = extract("NVIDIA's market value is $3 trillion.", lexicon=Lexicon())[0]
    assert (f.value, f.entity, f.metric) == (3 * 10**12, None, None)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[NVIDIA\naliases = []", "cannot read lexicon"),
        ('[NVIDIA]\naliases = "Nvidia"', "[NVIDIA].aliases must be a list"),
        ('[NVIDIA]\nkind = "robot"', "[NVIDIA].kind must be one of"),
        ('[metrics.x]\nen = ["x"]\nunits = ["kg"]', "unknown unit class"),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(ParseError) as info:
        Lexicon.from_files(bad)
    assert "bad.toml" in str(info.value) and message in str(info.value)
