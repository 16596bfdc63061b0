"""Figure extraction: text in, figures (value, unit, entity, metric, period) out.

`extract(text, lang=None, reference_date=None, lexicon=None)` is pure: no I/O
beyond reading the bundled lexicon once (`default_lexicon()`), no clock, no
mutable globals.  Modules, one job each:

* `numbers` — numerals: Arabic (full-width too), Chinese (一百二十亿, 两千万),
  English words (five, twenty-five, a dozen, twice);
* `units` — currency, counter and time-word tables;
* `grammar` — one compiled pass finds every amount with its unit and decides
  what is not a figure (years, dates, clock times, stock codes, model names,
  ranks, list numbering, footnote markers; those drop rules are in `drops`);
* `sentences` — EN/ZH sentence spans ("1.79" and "U.S." do not end one);
* `attribution` — entity, metric and period from the figure's sentence;
* `lexicon` — entity aliases and metric terms, TOML data a user can extend;
* `extract` — the pipeline, ranges and conversions, machine-translation repairs.

Decisions worth knowing: units are ISO 4217 codes, "%", "x" (multiples:
"five times", "19x", 五倍, doubled) and "count" (counted things: "1,151
deals", 3,000 枚, 12 万人; spelled-out small counts such as "six startups" are
not read); percentages and multiples get no level metric (market_cap etc.
label amounts, not changes); "X to Y" is a range unless the clause says the
amount changed ("rose by $9.6 billion to $129.5 billion"); relative periods
("last year", 去年) need `reference_date`.
"""

from __future__ import annotations

from .extract import extract
from .lexicon import Lexicon, default_lexicon
from .model import Conversion, Figure

__all__ = ["Conversion", "Figure", "Lexicon", "default_lexicon", "extract"]
