"""Page keys and the diff, as pure functions (no database)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from parsers.figures.model import Figure
from service.diff import (
    PageDiff,
    Prior,
    Quantity,
    SeriesLatest,
    Statement,
    conflicts,
    diff_page,
    first_per_series,
    key_figures,
    page_changes,
    relative_difference,
    same_amount,
    series_updates,
)
from service.keys import mask_sentence, page_key, series_key, similarity
from tests.backends import at, fig


def priors_of(figures: Sequence[Figure]) -> list[Prior]:
    """The active observations a previous fetch of `figures` would have left."""
    return [Prior(id=i, page_key=k.page_key, sentence=k.figure.sentence, quantity=k.quantity,
                  entity=k.figure.entity, metric=k.figure.metric, period=k.figure.period)
            for i, k in enumerate(key_figures(figures))]


def run(old: Sequence[Figure], new: Sequence[Figure]) -> PageDiff:
    return diff_page(priors_of(old), key_figures(new))


def summary(d: PageDiff) -> dict[str, list[tuple[str | None, str | None]]]:
    def s(v: Decimal | None) -> str | None:
        return None if v is None else format(v, "f")

    return {
        "changed": [(s(p.prior.quantity.value), s(p.current.figure.value)) for p in d.changed],
        "new": [(None, s(k.figure.value)) for k in d.new],
        "removed": [(s(p.quantity.value), None) for p in d.removed],
    }


NO_CHANGE = {"changed": [], "new": [], "removed": []}


# -- keys -------------------------------------------------------------------------------------

def test_mask_masks_numbers_and_normalises_whitespace() -> None:
    assert mask_sentence("Revenue  rose to\n$3.39 trillion in 2024.") == (
        "revenue rose to $# trillion in #.")
    assert mask_sentence("It made 1,234,567.5 dollars") == "it made # dollars"
    assert mask_sentence("英伟达市值\n达到 1.1 万亿美元") == "英伟达市值达到#万亿美元"


def test_page_key_counts_occurrences_of_one_masked_sentence() -> None:
    keyed = key_figures([fig(5, "Up from $5B to $6B."), fig(6, "Up from $5B to $6B."),
                         fig(9, "Other $9B."), fig(7, "Up from $7B to  $8B.")])
    assert [k.occurrence for k in keyed] == [0, 1, 0, 2]
    assert keyed[0].page_key == page_key("up from $#b to $#b.", 0)
    assert keyed[3].page_key == page_key("up from $#b to $#b.", 2)
    assert len({k.page_key for k in keyed}) == 4


def test_similarity_and_series_key() -> None:
    a = mask_sentence("OpenAI was valued at $86 billion, according to people familiar.")
    b = mask_sentence("OpenAI is now valued at $86 billion, according to people familiar.")
    assert similarity(a, b) >= 0.8
    assert similarity(a, mask_sentence("China recorded 232 AI deals in 2023.")) < 0.5
    assert series_key("NVIDIA", "market_cap", "") == ("NVIDIA", "market_cap", None)
    assert series_key(None, "market_cap", "2024") is None


# -- pairing ----------------------------------------------------------------------------------

def test_identical_page_makes_no_change() -> None:
    page = [fig(1, "A is $1."), fig(2, "B is $2."), fig(3, "A is $3.")]
    d = run(page, page)
    assert summary(d) == NO_CHANGE and len(d.unchanged) == 3


def test_reordered_and_rewrapped_page_makes_no_change() -> None:
    old = [fig(1, "Sales were $1 million."), fig(2, "Sales were $2 million."),
           fig(3, "Profit was $3 million.")]
    new = [fig(3, "Profit was\n $3   million."), fig(2, "Sales were $2 million."),
           fig(1, "Sales  were $1 million.")]
    assert summary(run(old, new)) == NO_CHANGE


def test_changed_value_pairs_by_page_key() -> None:
    d = run([fig(86, "OpenAI was valued at $86B."), fig(5, "Other $5B.")],
            [fig(157, "OpenAI was valued at $157B."), fig(5, "Other $5B.")])
    assert summary(d) == {"changed": [("86", "157")], "new": [], "removed": []}


def test_two_figures_of_one_sentence_both_change() -> None:
    d = run([fig(5, "Grew from $5B to $6B."), fig(6, "Grew from $5B to $6B.")],
            [fig(6, "Grew from $6B to $7B."), fig(7, "Grew from $6B to $7B.")])
    assert summary(d)["changed"] == [("5", "6"), ("6", "7")]


def test_deleted_sentence_removes_its_own_figure() -> None:
    old = [fig(5, "Sales were $5M."), fig(6, "Sales were $6M."), fig(7, "Sales were $7M.")]
    new = [fig(6, "Sales were $6M."), fig(7, "Sales were $7M.")]
    assert summary(run(old, new)) == {"changed": [], "new": [], "removed": [("5", None)]}


def test_added_sentence_is_new() -> None:
    old = [fig(5, "Sales were $5M.")]
    new = [fig(4, "Sales were $4M."), fig(5, "Sales were $5M.")]
    assert summary(run(old, new)) == {"changed": [], "new": [(None, "4")], "removed": []}


def test_lightly_edited_sentence_still_pairs() -> None:
    old = [fig(86, "OpenAI was valued at $86 billion, according to people familiar.")]
    same = [fig(86, "OpenAI is now valued at $86 billion, according to people familiar.")]
    moved = [fig(90, "OpenAI is now valued at $90 billion, according to people familiar.")]
    assert summary(run(old, same)) == NO_CHANGE
    assert summary(run(old, moved))["changed"] == [("86", "90")]


def test_unrelated_sentences_do_not_pair() -> None:
    d = run([fig(86, "OpenAI was valued at $86 billion.")],
            [fig(90, "Anthropic's revenue run-rate hit $90 billion this quarter, it said.")])
    assert summary(d) == {"changed": [], "new": [(None, "90")], "removed": [("86", None)]}


def test_different_metric_or_unit_never_pairs() -> None:
    old = [fig(5, "X had revenue of $5B.", entity="X", metric="revenue")]
    new = [fig(6, "X had revenue of $6B.", entity="X", metric="net_income")]
    assert summary(run(old, new))["changed"] == []
    pct = [fig(5, "X had revenue of 5%.", unit="%")]
    assert summary(run([fig(5, "X had revenue of $5B.")], pct))["changed"] == []


def test_conversion_is_not_a_change() -> None:
    usd = fig(2, "It raised $2 billion (about 14.25 billion yuan).", conversion=("14.25", "CNY"))
    rate = fig(2, "It raised $2 billion (about 14.5 billion yuan).", conversion=("14.5", "CNY"))
    cny = fig("14.25", "It raised 14.25 billion yuan (about $2 billion).", unit="CNY",
              conversion=("2", "USD"))
    assert summary(run([usd], [rate])) == NO_CHANGE
    assert summary(run([usd], [cny])) == NO_CHANGE


def test_range_bounds_are_part_of_the_amount() -> None:
    old = [fig(15, "Between $10 and $20.", low="10", high="20")]
    new = [fig(15, "Between $12 and $18.", low="12", high="18")]
    assert summary(run(old, new))["changed"] == [("15", "15")]


def test_page_changes_kinds_and_fields() -> None:
    old = [fig(86, "OpenAI was valued at $86B.", entity="OpenAI", metric="valuation"),
           fig(1, "Gone $1.")]
    new = [fig(157, "OpenAI was valued at $157B.", entity="OpenAI", metric="valuation"),
           fig(3, "Fresh 3 users.", unit="count")]
    changes = page_changes(run(old, new), source="s", url="u", at=at(1))
    assert [(c.kind, c.old_value, c.new_value) for c in changes] == [
        ("changed", Decimal(86), Decimal(157)), ("new", None, Decimal(3)),
        ("removed", Decimal(1), None)]
    assert changes[0].entity == "OpenAI" and changes[0].detected_at == at(1)
    assert changes[0].page_key == key_figures(new)[0].page_key


# -- series and conflicts ---------------------------------------------------------------------

NV = ("NVIDIA", "market_cap", "2024")


def nv(value: str, unit: str = "USD", conversion: tuple[str, str] | None = None) -> Figure:
    return fig(value, f"NVIDIA is worth {value}.", unit=unit, entity="NVIDIA",
               metric="market_cap", period="2024", conversion=conversion)


def test_series_first_seen_sets_latest_without_change() -> None:
    firsts = first_per_series(key_figures([nv("3.39"), nv("1.79")]))
    assert firsts[NV].figure.value == Decimal("3.39")  # the headline, not the last mention
    changes, latest = series_updates(firsts, {}, source="a", url="u", at=at(0))
    assert changes == [] and latest[NV].figure.value == Decimal("3.39")


def test_series_update_only_when_value_differs() -> None:
    prev = {NV: SeriesLatest(Quantity(Decimal("3.39"), "USD"), "b")}
    same = first_per_series(key_figures([nv("3.390")]))
    assert series_updates(same, prev, source="a", url="u", at=at(0)) == ([], {})
    other = first_per_series(key_figures([nv("1.79")]))
    changes, latest = series_updates(other, prev, source="a", url="u", at=at(0))
    assert [(c.kind, c.old_value, c.new_value, c.other_source) for c in changes] == [
        ("series_update", Decimal("3.39"), Decimal("1.79"), "b")]
    assert NV in latest
    incomparable = first_per_series(key_figures([nv("24", unit="CNY")]))
    assert series_updates(incomparable, prev, source="a", url="u", at=at(0)) == ([], {})


def test_conflict_beyond_tolerance_once_per_other_source() -> None:
    firsts = first_per_series(key_figures([nv("3.39")]))
    others = {NV: [Statement("b", Quantity(Decimal("1.79"), "USD")),
                   Statement("b", Quantity(Decimal("1.5"), "USD")),
                   Statement("c", Quantity(Decimal("3.40"), "USD")),  # within 1%
                   Statement("a", Quantity(Decimal("9"), "USD"))]}  # the same source
    changes = conflicts(firsts, others, source="a", url="u", at=at(0))
    assert [(c.kind, c.other_source, c.old_value) for c in changes] == [
        ("conflict", "b", Decimal("1.79"))]


def test_no_conflict_when_one_statement_agrees_or_units_differ() -> None:
    firsts = first_per_series(key_figures([nv("3.39", conversion=("24", "CNY"))]))
    others = {NV: [Statement("b", Quantity(Decimal("1.79"), "USD")),
                   Statement("b", Quantity(Decimal("3.39"), "USD")),
                   Statement("c", Quantity(Decimal("24.1"), "CNY")),  # via the conversion
                   Statement("d", Quantity(Decimal("5"), "EUR"))]}  # not comparable
    assert conflicts(firsts, others, source="a", url="u", at=at(0)) == []


def test_no_conflict_without_period_or_when_already_disagreeing() -> None:
    undated = fig("3.39", "NVIDIA is worth 3.39.", entity="NVIDIA", metric="market_cap")
    firsts = first_per_series(key_figures([undated]))
    others = {("NVIDIA", "market_cap", None): [Statement("b", Quantity(Decimal("1.79"), "USD"))]}
    assert conflicts(firsts, others, source="a", url="u", at=at(0)) == []
    dated = first_per_series(key_figures([nv("3.39")]))
    others = {NV: [Statement("b", Quantity(Decimal("1.79"), "USD")),
                   Statement("c", Quantity(Decimal("3.0"), "USD"))]}
    # The figure moved 3.0 -> 3.39: b disagreed before too; c agreed before, so c is news.
    changes = conflicts(dated, others, source="a", url="u", at=at(0),
                        previous={NV: Quantity(Decimal("3.0"), "USD")})
    assert [c.other_source for c in changes] == ["c"]


@pytest.mark.parametrize(("a", "b", "equal"), [
    (Quantity(Decimal("1.0"), "USD"), Quantity(Decimal("1"), "USD"), True),
    (Quantity(Decimal("1"), "USD"), Quantity(Decimal("1"), "CNY"), False),
    (Quantity(Decimal("2"), "USD", conv_value=Decimal("14"), conv_unit="CNY"),
     Quantity(Decimal("14"), "CNY"), True),
    (Quantity(Decimal("15"), "USD", Decimal("10"), Decimal("20")),
     Quantity(Decimal("15"), "USD"), False),
])
def test_same_amount(a: Quantity, b: Quantity, equal: bool) -> None:
    assert same_amount(a, b) is equal
    assert same_amount(b, a) is equal


def test_relative_difference() -> None:
    assert relative_difference(Decimal(100), Decimal(99)) == Decimal("0.01")
    assert relative_difference(Decimal(0), Decimal(0)) == 0
    assert relative_difference(Decimal(0), Decimal(5)) == 1
