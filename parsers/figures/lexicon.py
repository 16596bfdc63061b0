"""The lexicon: entity aliases and metric terms, as data a user can extend.

Two TOML shapes are read (see `config/entities.toml`, `config/metrics.toml`):

    [NVIDIA]                      # or [entities.NVIDIA]
    aliases = ["Nvidia", "Avida", "英伟达"]
    kind = "company"              # company (default), person, market

    [metrics.market_cap]
    en = ["market value", "market cap"]
    zh = ["市值"]
    units = ["currency"]          # optional: currency, count, %, x

`Lexicon.merge` adds a second lexicon's aliases and terms to the first (a name
present in both keeps the first's kind and gains the other's aliases).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParseError

KIND_PRIORITY = {"person": 3, "company": 2, "market": 1}


@dataclass(frozen=True, slots=True)
class Entity:
    """A canonical entity and the spellings that name it."""

    name: str
    aliases: tuple[str, ...]
    kind: str = "company"


@dataclass(frozen=True, slots=True)
class Metric:
    """A canonical metric, its terms, and the unit classes it may label."""

    name: str
    terms: tuple[str, ...]
    units: tuple[str, ...] = ()

    def accepts(self, unit: str) -> bool:
        """Whether a figure in `unit` may carry this metric."""
        if not self.units:
            return True
        cls = unit if unit in ("%", "x", "count") else "currency"
        return cls in self.units


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Entities and metrics; immutable and hashable so compiled matchers can be cached."""

    entities: tuple[Entity, ...] = ()
    metrics: tuple[Metric, ...] = ()
    compiled: Matchers = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Compiled once per lexicon; the lexicon is immutable, so this never goes stale.
        object.__setattr__(self, "compiled", _compile(self))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<mapping>") -> Lexicon:
        """Build from parsed TOML; raises ParseError naming `source` and the key."""
        entities: list[Entity] = []
        metrics: list[Metric] = []
        for key, table in data.items():
            if not isinstance(table, Mapping):
                raise ParseError(f"{source}: [{key}] must be a table")
            if key == "metrics":
                metrics.extend(_metric(name, t, source) for name, t in table.items())
            elif key == "entities":
                entities.extend(_entity(name, t, source) for name, t in table.items())
            else:
                entities.append(_entity(key, table, source))
        return cls(tuple(entities), tuple(metrics))

    @classmethod
    def from_files(cls, *paths: str | Path) -> Lexicon:
        """Load and merge TOML files in order."""
        lexicon = cls()
        for path in paths:
            try:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ParseError(f"{path}: cannot read lexicon: {exc}") from exc
            lexicon = lexicon.merge(cls.from_mapping(data, str(path)))
        return lexicon

    def merge(self, other: Lexicon) -> Lexicon:
        """This lexicon plus `other`'s entities, aliases, metrics and terms."""
        return Lexicon(
            _merge_named(self.entities, other.entities, _join_entity),
            _merge_named(self.metrics, other.metrics, _join_metric),
        )


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ParseError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _entity(name: str, table: Mapping[str, Any], source: str) -> Entity:
    kind = table.get("kind", "company")
    if kind not in KIND_PRIORITY:
        raise ParseError(f"{source}: [{name}].kind must be one of {sorted(KIND_PRIORITY)}")
    aliases = _strings(table.get("aliases", []), f"{source}: [{name}].aliases")
    return Entity(name, tuple(dict.fromkeys((name, *aliases))), kind)


def _metric(name: str, table: Mapping[str, Any], source: str) -> Metric:
    where = f"{source}: [metrics.{name}]"
    if not isinstance(table, Mapping):
        raise ParseError(f"{where} must be a table")
    terms = _strings(table.get("en", []), f"{where}.en") + _strings(table.get("zh", []), f"{where}.zh")
    units = _strings(table.get("units", []), f"{where}.units")
    bad = set(units) - {"currency", "count", "%", "x"}
    if bad:
        raise ParseError(f"{where}.units: unknown unit class {sorted(bad)}")
    return Metric(name, terms, units)


def _join_entity(a: Entity, b: Entity) -> Entity:
    return Entity(a.name, tuple(dict.fromkeys(a.aliases + b.aliases)), a.kind)


def _join_metric(a: Metric, b: Metric) -> Metric:
    return Metric(a.name, tuple(dict.fromkeys(a.terms + b.terms)), a.units or b.units)


def _merge_named(first: Iterable[Any], second: Iterable[Any], join: Any) -> tuple[Any, ...]:
    out: dict[str, Any] = {item.name: item for item in first}
    for item in second:
        out[item.name] = join(out[item.name], item) if item.name in out else item
    return tuple(out.values())


def _bundled_paths() -> list[Path]:
    here = Path(__file__).parent
    for folder in (here / "lexicon_data", here.parent.parent / "config"):
        files = [folder / "entities.toml", folder / "metrics.toml"]
        if all(f.is_file() for f in files):
            return files
    return []


@functools.cache
def default_lexicon() -> Lexicon:
    """The bundled lexicon (wheel's lexicon_data/, else the repo's config/); read once."""
    return Lexicon.from_files(*_bundled_paths())


def _alternation(terms: Iterable[str]) -> str:
    """Longest first, right word edge where a term ends in a Latin letter or digit.

    The pattern starts with the bare alternation so that the regex engine can skip
    ahead on the set of first characters; the left edge is checked by `finditer`.
    """
    ordered = sorted(set(terms), key=len, reverse=True)
    parts = []
    for t in ordered:
        right = _EDGE_R if t[-1].isascii() and t[-1].isalnum() else ""
        parts.append(f"{re.escape(t)}{right}")
    return "|".join(parts)


def finditer(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Matches of a lexicon pattern that do not start inside a Latin word."""
    for m in pattern.finditer(text):
        i = m.start()
        if i and text[i].isascii() and text[i].isalnum():
            prev = text[i - 1]
            if prev.isascii() and prev.isalnum():
                continue
        yield m


_TOKEN_RE = re.compile(r"[a-z0-9$]+(?:[-'.][a-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class Matchers:
    """Compiled look-ups for one lexicon.

    Entities: one case-sensitive alternation.  Metrics: Latin terms are looked up
    as word n-grams of the lower-cased sentence (a dict probe per word is much
    cheaper than a long regex alternation); other terms (Chinese) by an
    alternation whose first characters rarely occur in English text.
    """

    entity_re: re.Pattern[str] | None
    entity_of: Mapping[str, Entity]
    metrics_of: Mapping[str, tuple[Metric, ...]]
    latin_terms: Mapping[tuple[str, ...], tuple[Metric, ...]]
    first_words: frozenset[str]
    longest: int
    cjk_re: re.Pattern[str] | None

    def find_metrics(self, low: str) -> list[tuple[int, int, tuple[Metric, ...]]]:
        """(start, end, metrics) for every metric term in an ASCII-lower-cased sentence."""
        out: list[tuple[int, int, tuple[Metric, ...]]] = []
        if self.first_words:
            tokens = list(_TOKEN_RE.finditer(low))
            words = [t.group() for t in tokens]
            i, n = 0, len(words)
            while i < n:
                if words[i] in self.first_words:
                    for size in range(min(self.longest, n - i), 0, -1):
                        found = self.latin_terms.get(tuple(words[i : i + size]))
                        if found:
                            out.append((tokens[i].start(), tokens[i + size - 1].end(), found))
                            i += size - 1
                            break
                i += 1
        if self.cjk_re is not None:
            out.extend((m.start(), m.end(), self.metrics_of[m.group()]) for m in self.cjk_re.finditer(low))
        return out


_EDGE_L = r"(?<![A-Za-z0-9])"
# An uppercase letter may follow when it starts a glued word ("iFLYTEKThe",
# "AmazonAnd" in scraped text) but not when it extends an acronym ("USD").
_EDGE_R = r"(?![a-z0-9$])(?![A-Z](?![a-z]))(?!\s?dollars?\b)"


def matchers(lexicon: Lexicon) -> Matchers:
    """Compiled entity and metric alternations for `lexicon`."""
    return lexicon.compiled


def _compile(lexicon: Lexicon) -> Matchers:
    entity_of = {alias: e for e in lexicon.entities for alias in e.aliases}
    metrics_of: dict[str, tuple[Metric, ...]] = {}
    for metric in lexicon.metrics:
        for term in metric.terms:
            key = term.lower()
            metrics_of[key] = (*metrics_of.get(key, ()), metric)
    entity_re = _first_char_guarded(list(entity_of)) if entity_of else None
    latin: dict[tuple[str, ...], tuple[Metric, ...]] = {}
    other: list[str] = []
    for term, found in metrics_of.items():
        words = tuple(_TOKEN_RE.findall(term))
        if term[0].isascii() and " ".join(words) == " ".join(term.split()):
            latin[words] = found
        else:
            other.append(term)
    return Matchers(
        entity_re,
        entity_of,
        metrics_of,
        latin,
        frozenset(k[0] for k in latin),
        max((len(k) for k in latin), default=0),
        _first_char_guarded(other) if other else None,
    )


def _first_char_guarded(terms: list[str]) -> re.Pattern[str]:
    """An alternation behind a lookahead on its first characters, which lets the
    regex engine skip ahead instead of trying every branch at every position."""
    firsts = "".join(sorted({re.escape(t[0]) for t in terms}))
    return re.compile(f"(?=[{firsts}])(?:{_alternation(terms)})")
