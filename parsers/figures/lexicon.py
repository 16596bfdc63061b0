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
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import ParseError

_NON_CURRENCY = frozenset({"%", "x", "count"})
KIND_PRIORITY = MappingProxyType({"person": 3, "company": 2, "market": 1})


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
        return not self.units or (unit if unit in _NON_CURRENCY else "currency") in self.units


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
    terms = _strings(table.get("en", []), f"{where}.en")
    terms += _strings(table.get("zh", []), f"{where}.zh")
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


def _trie_pattern(terms: Iterable[str]) -> str:
    """One regex for many literal terms, shaped as a trie (r"A(?:MD|rm)|B(?:aidu)").

    Python's regex engine tries the branches of a flat alternation one after the
    other at every position; a trie-shaped pattern decides on each character
    once, which makes a lexicon of hundreds of terms cheap to scan for.  Optional
    tails are greedy, so the longest term wins.
    """
    trie: dict[str, Any] = {}
    for term in terms:
        node = trie
        for ch in term:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            body = f"(?:{body})?" if len(branches) > 1 or len(body) > 1 else f"{body}?"
        return body

    return build(trie)


_ALNUM = frozenset(string.ascii_letters + string.digits)
_UPPER = frozenset(string.ascii_uppercase)
_GLUES_AFTER = frozenset(string.ascii_lowercase + string.digits + "$")


def _latin_edge(text: str, start: int, end: int, acronym_ok: bool) -> bool:
    """Whether [start, end) is a whole word where it begins or ends in a Latin letter.

    With `acronym_ok`, an uppercase letter may follow when it starts a glued word
    ("iFLYTEKThe", "AmazonAnd" in scraped text) but not when it extends an acronym
    ("USD" is not "US").  (ASCII letters and digits are tested by set membership:
    one look-up instead of isascii() and isalnum().)
    """
    if start and text[start] in _ALNUM and text[start - 1] in _ALNUM:
        return False
    if end < len(text) and text[end - 1] in _ALNUM:
        nxt = text[end]
        if nxt in _GLUES_AFTER:
            return False
        if nxt in _UPPER:
            after = text[end + 1 : end + 2]
            if not acronym_ok or not (after.isascii() and after.islower()):
                return False
    return True


@dataclass(frozen=True, slots=True)
class Matchers:
    """Compiled look-ups for one lexicon: trie-shaped regexes plus word-edge checks."""

    entity_re: re.Pattern[str] | None
    entity_of: Mapping[str, Entity]
    metric_res: tuple[re.Pattern[str], ...]
    metrics_of: Mapping[str, tuple[Metric, ...]]
    # The same trie without the aliases that start with a lower-case letter
    # ("nvidia", "iFlytek", "the United States"), and those aliases.  Lower-case
    # first letters are common in prose, so the full trie stops on most letters;
    # in a text that contains none of these aliases (checked by substring), no
    # branch of theirs can match, and the smaller trie finds the same matches.
    entity_re_upper: re.Pattern[str] | None = None
    lower_aliases: tuple[str, ...] = ()
    # `metric_res` without the pattern for terms that start with a non-ASCII
    # character (中文 terms): on an all-ASCII sentence it cannot match.
    metric_res_ascii: tuple[re.Pattern[str], ...] | None = None

    def find_entities(self, text: str) -> list[tuple[int, int, Entity]]:
        """(start, end, entity) for each alias in `text` (case-sensitive, whole words)."""
        out: list[tuple[int, int, Entity]] = []
        pattern = self.entity_re
        if pattern is None:
            return out
        if self.entity_re_upper is not None:
            for alias in self.lower_aliases:  # a plain loop: any(genexpr) is ~2x slower
                if alias in text:
                    break
            else:
                pattern = self.entity_re_upper
        for m in pattern.finditer(text):
            s, e = m.span()
            if not _latin_edge(text, s, e, acronym_ok=True):
                continue
            if text.startswith(("dollar", " dollar"), e):
                continue  # "US dollars" is a currency, not the market
            out.append((s, e, self.entity_of[m.group()]))
        return out

    def find_metrics(self, low: str) -> list[tuple[int, int, tuple[Metric, ...]]]:
        """(start, end, metrics) for each metric term in a lower-cased sentence."""
        out: list[tuple[int, int, tuple[Metric, ...]]] = []
        patterns = self.metric_res
        if self.metric_res_ascii is not None and low.isascii():  # isascii() is O(1)
            patterns = self.metric_res_ascii
        for pattern in patterns:
            for m in pattern.finditer(low):
                s, e = m.span()
                if _latin_edge(low, s, e, acronym_ok=False):
                    out.append((s, e, self.metrics_of[m.group()]))
        return out


def matchers(lexicon: Lexicon) -> Matchers:
    """Compiled entity and metric patterns for `lexicon`."""
    return lexicon.compiled


# Past a handful of lower-case-initial aliases, `find_entities`'s substring checks
# cost more than the smaller trie saves (see `Matchers.entity_re_upper`).
_MAX_LOWER_ALIASES = 16


def _compile(lexicon: Lexicon) -> Matchers:
    entity_of = {alias: e for e in lexicon.entities for alias in e.aliases}
    metrics_of: dict[str, tuple[Metric, ...]] = {}
    for metric in lexicon.metrics:
        for term in metric.terms:
            key = term.lower()
            metrics_of[key] = (*metrics_of.get(key, ()), metric)
    lower = tuple(alias for alias in entity_of if alias[0].islower())
    upper = [alias for alias in entity_of if not alias[0].islower()]
    split = 0 < len(lower) <= _MAX_LOWER_ALIASES and bool(upper)
    terms = list(metrics_of)
    return Matchers(
        re.compile(_trie_pattern(entity_of)) if entity_of else None,
        entity_of,
        _split_patterns(terms),
        metrics_of,
        re.compile(_trie_pattern(upper)) if split else None,
        lower if split else (),
        _split_patterns([t for t in terms if t[0].isascii()]),
    )



def _split_patterns(terms: list[str]) -> tuple[re.Pattern[str], ...]:
    """Latin terms behind a word boundary, others as a bare trie.

    On lower-cased English the word-boundary check rejects mid-word positions
    before any branch is tried, which halves the scan (measured on the seeds).
    A lookahead on the terms' first characters goes before it: positions at a
    digit, a space or a CJK character are then rejected in one set test (~12%
    faster on the seeds' sentences; same matches).
    """
    latin = [t for t in terms if t[0].isascii()]
    other = [t for t in terms if not t[0].isascii()]
    out = []
    if latin:
        firsts = "".join(re.escape(ch) for ch in sorted({t[0] for t in latin}))
        out.append(re.compile(rf"(?=[{firsts}])\b(?:{_trie_pattern(latin)})"))
    if other:
        # A bare trie starts with an alternation of literals, from which the regex
        # compiler builds a first-character set to skip on in C (a leading
        # lookahead would hide it: measured ~2.5x slower on the seeds).
        out.append(re.compile(_trie_pattern(other)))
    return tuple(out)
