"""Table-driven tests of the figure grammar: English, Chinese, negatives, bad input."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest

from parsers.figures import Figure, extract
from parsers.figures.sentences import split

D = Decimal


def only(text: str, **kw: object) -> Figure:
    figures = extract(text, **kw)  # type: ignore[arg-type]
    assert len(figures) == 1, [(f.surface, f.value, f.unit) for f in figures]
    return figures[0]


# (text, value, unit, qualifier)
AMOUNTS = [
    # English money, with every way of writing the currency and the scale
    ("Its valuation has reached $157 billion.", "157e9", "USD", "exact"),
    ("Anthropic received US$2.7bn from Amazon.", "2.7e9", "USD", "exact"),
    ("a market value of $1.79 trillion", "1.79e12", "USD", "exact"),
    ("a market value of $ 1.79 trillion", "1.79e12", "USD", "exact"),
    ("approximately RMB 24 trillion in value", "24e12", "CNY", "approx"),
    ("a total of 14.25 billion yuan", "14.25e9", "CNY", "exact"),
    ("peaked at HK$ 3.2 million", "3.2e6", "HKD", "exact"),
    ("valued at US $14 billion", "14e9", "USD", "exact"),
    ("valued at over USD 1 billion", "1e9", "USD", "over"),
    ("raised 7 trillion us dollars", "7e12", "USD", "exact"),
    ("more than 99 billion yuan RMB", "99e9", "CNY", "over"),
    ("BioNTech paid €500 million", "500e6", "EUR", "exact"),
    ("Check out those bills: $18B invested", "18e9", "USD", "exact"),
    ("as it enters the $1T market cap club", "1e12", "USD", "exact"),
    ("31 billion billion US dollars", "31e9", "USD", "exact"),  # MT-doubled scale word
    # counts
    ("the U.S. reached 1,151 deals", "1151", "count", "exact"),
    ("with over 200 large models registered", "200", "count", "over"),
    ("connect 10 million GPUs together", "10e6", "count", "exact"),
    ("30 of the world's richest", "30", "count", "exact"),
    ("the number of deals was about 232, down", "232", "count", "approx"),
    # multiples
    ("Chip giant Avida rose nearly five times", "5", "x", "approx"),
    ("an overall increase of more than 100 times", "100", "x", "over"),
    ("NVIDIA chips are used 19x more", "19", "x", "exact"),
    ("about twice the valuation", "2", "x", "approx"),
    ("Microsoft's stock doubled", "2", "x", "exact"),
    # percentages
    ("a 38% year-on-year decrease", "38", "%", "exact"),
    ("increased by more than 770 percent", "770", "%", "over"),
    ("fell by nearly 15 per cent", "15", "%", "approx"),
    ("Sixty percent of the executives", "60", "%", "exact"),
    ("twenty-five per cent of the total", "25", "%", "exact"),
    ("raised five billion dollars", "5e9", "USD", "exact"),
    ("reached two million users", "2e6", "count", "exact"),
    ("a dozen deals closed", "12", "count", "exact"),
    # qualifiers
    ("approximately $2 billion", "2e9", "USD", "approx"),
    ("exceeded $80 billion", "80e9", "USD", "over"),
    ("less than $5 million", "5e6", "USD", "under"),
    ("valuing it at up to RMB 20 billion", "20e9", "CNY", "under"),
    # Chinese
    ("NVIDIA 迅速突破了市值 1 万亿美元的俱乐部", "1e12", "USD", "exact"),
    ("推动了 180 亿美元的风险投资", "18e9", "USD", "exact"),
    ("收入创下了创纪录的 103.2 亿美元", "10.32e9", "USD", "exact"),
    ("市值达到1.1万亿美元", "1.1e12", "USD", "exact"),
    ("融资千万美元", "1e7", "USD", "exact"),
    ("营收百亿元", "1e10", "CNY", "exact"),
    ("获得两千万美元投资", "2e7", "USD", "exact"),
    ("营收一百二十亿元", "1.2e10", "CNY", "exact"),
    ("占据三成市场", "30", "%", "exact"),
    ("估值增长了五倍", "5", "x", "exact"),
    ("同比增长 141%", "141", "%", "exact"),
    ("收入达到１８０亿美元", "18e9", "USD", "exact"),  # full-width digits
    ("同比下降３８％", "38", "%", "exact"),
    ("亏损人民币 24.77 亿元", "2.477e9", "CNY", "exact"),
    ("港股市值 537 亿港元", "53.7e9", "HKD", "exact"),
    ("约 232 笔交易", "232", "count", "approx"),
    ("超过 10 亿美元的 GPU", "1e9", "USD", "over"),
    ("成交近 80 亿元", "8e9", "CNY", "approx"),
    ("逾 100 家公司", "100", "count", "over"),
    ("购买了超过 3,000 枚 H100 GPU", "3000", "count", "over"),
    ("拥有 90 亿参数的模型", "9e9", "count", "exact"),
    ("公司的收入在过去 6 个月翻了一番", "2", "x", "exact"),
]


@pytest.mark.parametrize(("text", "value", "unit", "qualifier"), AMOUNTS)
def test_amounts(text: str, value: str, unit: str, qualifier: str) -> None:
    f = only(text)
    assert (f.value, f.unit, f.qualifier) == (D(value), unit, qualifier)
    assert text[f.start : f.end] == f.surface
    assert f.surface in f.sentence


# (text, low, high, unit)
RANGES = [
    ("expects revenue of 0.68 billion yuan to 0.72 billion yuan", "0.68e9", "0.72e9", "CNY"),
    ("revenue of 0.68 billion yuan to 0.72 billion yuan", "0.68e9", "0.72e9", "CNY"),
    ("a round of $2-3 billion", "2e9", "3e9", "USD"),
    ("growth between 10% and 15%", "10", "15", "%"),
    ("between 680 million yuan and 720 million yuan", "680e6", "720e6", "CNY"),
    ("narrowing 26.47 to 39.84 percent", "26.47", "39.84", "%"),
    ("a year-on-year increase of 15%-30%", "15", "30", "%"),
    ("营收 6.8亿元至7.2亿元", "6.8e8", "7.2e8", "CNY"),
    ("发货 150 万至 200 万枚 H100 GPU", "1.5e6", "2e6", "count"),
    ("中国占据了数据中心收入的 20-25%16。", "20", "25", "%"),
    ("80 million -0.12 billion yuan", "80e6", "120e6", "CNY"),
    # MT damage: 6.45-7.3 亿 with only the upper bound converted to billions
    ("a net profit of 6.45-0.73 billion yuan", "0.645e9", "0.73e9", "CNY"),
]


@pytest.mark.parametrize(("text", "low", "high", "unit"), RANGES)
def test_ranges(text: str, low: str, high: str, unit: str) -> None:
    f = only(text)
    assert (f.low, f.high, f.unit) == (D(low), D(high), unit)
    assert f.value == (D(low) + D(high)) / 2


@pytest.mark.parametrize(
    "text",
    [
        "his worth soared by $19.6 billion to $62.5 billion",
        "Jensen Huang added $19.6 billion to $62.5 billion.",
        "its market value shrank from a peak of over HK$320 billion to just HK$53.7 billion",
        "总企业价值从 4.6 万亿美元增长到 5.9 万亿美元",
    ],
)
def test_changes_are_two_figures(text: str) -> None:
    figures = extract(text)
    assert len(figures) == 2 and all(f.low is None for f in figures)


def test_conversion_is_one_figure() -> None:
    f = only("a total financing amount of about $2 billion (approximately 14.25 billion yuan)")
    assert (f.value, f.unit, f.qualifier) == (D("2e9"), "USD", "approx")
    assert f.conversion is not None
    assert (f.conversion.value, f.conversion.unit) == (D("14.25e9"), "CNY")
    assert f.surface.endswith(")")
    g = only("its market capitalization has reached $3.39 trillion (approximately RMB 24 trillion)")
    assert g.conversion is not None and g.conversion.unit == "CNY"


def test_same_currency_in_brackets_is_not_a_conversion() -> None:
    figures = extract("valuation exceeded $80 billion (Bloomberg data is $86 billion).")
    assert [f.value for f in figures] == [D("80e9"), D("86e9")]


def test_footnote_marker_glued_after_percent() -> None:
    f = only("比一年前增长了 171%2。")
    assert (f.value, f.unit, f.footnote, f.surface) == (D(171), "%", "2", "171%")
    g = only("开盘时估值达到 600 亿美元19")
    assert (g.value, g.footnote) == (D("60e9"), "19")


NOT_FIGURES = [
    "The report came out in 2023.",
    "2023年发布的报告",
    "2023 年 8 月底发布",
    "released on February 15, has aroused discussion",
    "on the 16th he said",
    "13:04",
    "AI chip leader Cambrian (688256.SH) announced",
    "Baidu Hong Kong stocks (HKG: 9888) fell",
    "Baidu (NASDAQ: BIDU) shares",
    "GPT-4 and GPT-5 and GPT3.5",
    "the H100 and A100 and RTX 3090 cards",
    "a Top-5 largest compute cluster",
    "supplying the iPhone 16 with",
    "during the 2nd Global Digital Trade Expo",
    "a supercomputer named Shaheen III",
    "  1. State of AI 2023 报告年度总结",
    "  2. 科研进展",
    "发表评论\n0 / 300",
    "the world's third-largest technology company",
    "shortened from 10 years to one year, earlier than the estimated ten years",
    "In less than 15 months, over the past 12 months",
    "here are the top 10 fastest-growing billionaires",
    "Deep Speech 2: End-to-End Speech Recognition",
    "模型训练方面尚处于早期阶段101112。",
    "一个多小时内售罄,第二百万用户",
    "数十亿行代码, 数百万张照片",
    "Lambda 提供了价值 9 位数美元的 H100 GPU",
    "Founder of 360, talked about",
    "one of the biggest, the Six Little Tigers, two parallel ecosystems",
    "$ invested in AI categories 2010-23",
    "reaching 20,000 petaFLOPS",
]


@pytest.mark.parametrize("text", NOT_FIGURES)
def test_not_figures(text: str) -> None:
    assert extract(text) == [], [(f.surface, f.value, f.unit) for f in extract(text)]


REF = dt.date(2024, 2, 17)
# (text, entity, metric, period)
ATTRIBUTION = [
    ("Chip giant Avida's market value climbed to $1.79 trillion in 2023.",
     "NVIDIA", "market_cap", "2023"),
    ("In fiscal year 2024, NVIDIA's net income reached $29.76 billion.",
     "NVIDIA", "net_income", "FY2024"),
    ("截至 2023 年第二季度,英伟达数据中心的收入创下了 103.2 亿美元。",
     "NVIDIA", "revenue", "2023-Q2"),
    ("SenseTime's losses amounted to RMB 2.477 billion in H1 2024.",
     "SenseTime", "net_loss", "2024-H1"),
    ("SenseTime's losses amounted to RMB 2.477 billion in the first half of 2024.",
     "SenseTime", "net_loss", "2024-H1"),
    ("Last year, the number of AI financing deals in China was about 232.",
     "China", "deal_count", "2023"),
    ("去年,寒武纪的营收为 7 亿元。", "Cambricon", "revenue", "2023"),
    ("商汤的估值为 100 亿美元", "SenseTime", "valuation", None),
    ("Cambrian expects revenue of 0.7 billion yuan in Q2 2023.",
     "Cambricon", "revenue", "2023-Q2"),
    ("OpenAI's annual recurring revenue (ARR) exceeded $2 billion", "OpenAI", "arr", None),
    ("Baidu's Ernie Bot reached 100 million users", "Baidu", "users", None),
    ("2022 年度收入达到 270 亿美元,较 2021 年增长了 61.4%", None, "revenue", "2022"),
    ("a big drop from 2022's $5.5 billion in 377 deals", None, None, "2022"),
]


@pytest.mark.parametrize(("text", "entity", "metric", "period"), ATTRIBUTION)
def test_attribution(text: str, entity: str | None, metric: str | None, period: str | None) -> None:
    f = extract(text, reference_date=REF)[0]
    assert (f.entity, f.metric, f.period) == (entity, metric, period)


def test_relative_periods_need_a_reference_date() -> None:
    assert extract("Last year, revenue was $5 billion.")[0].period is None
    assert extract("Last year, revenue was $5 billion.", reference_date=REF)[0].period == "2023"
    assert extract("今年营收 5 亿元", reference_date=REF)[0].period == "2024"


def test_percentages_and_multiples_carry_no_level_metric() -> None:
    f = only("NVIDIA's market value rose 38% in 2023")
    assert (f.entity, f.metric, f.period) == ("NVIDIA", None, "2023")


def test_language_per_sentence() -> None:
    figures = extract("NVIDIA is worth $1 trillion.\n英伟达市值 1 万亿美元。")
    assert [f.lang for f in figures] == ["en", "zh"]
    assert [f.lang for f in extract("英伟达市值 1 万亿美元。", lang="en")] == ["en"]


SENTENCES = [
    ("The U.S. market grew 5%. China fell 3%.", ["The U.S. market grew 5%.", "China fell 3%."]),
    ("It reached $1.79 trillion. Then it fell.", ["It reached $1.79 trillion.", "Then it fell."]),
    ("营收 1.5 亿元。利润 3000 万元！", ["营收 1.5 亿元。", "利润 3000 万元！"]),
    ("Line one\nLine two", ["Line one", "Line two"]),
]


@pytest.mark.parametrize(("text", "expected"), SENTENCES)
def test_sentences(text: str, expected: list[str]) -> None:
    assert [text[s:e] for s, e in split(text)] == expected


BAD_INPUT = [
    "",
    "   \n\n  ",
    "\ud800\udfff lone surrogates \udc00 5% \ud800",
    "日本語とEnglishと한국어 mixed 5 万美元 text",
    "$$$ %%% ... ---",
    "9" * 200,
    "1," * 5000,
    "$" * 10_000 + "5",
]


@pytest.mark.parametrize("text", BAD_INPUT, ids=range(len(BAD_INPUT)))
def test_bad_input_is_harmless(text: str) -> None:
    for f in extract(text):
        assert text[f.start : f.end] == f.surface


def test_ten_megabytes_of_digits_is_quick_and_empty() -> None:
    text = "7" * 10_000_000
    started = time.process_time()
    figures = extract(text)
    # A loose bound: this checks for runaway (quadratic) work, not speed.
    assert time.process_time() - started < 10
    assert figures == []


def test_long_prose_and_unpunctuated_text() -> None:
    prose = "Revenue was $5 billion in 2023, up 7%. " * 5_000
    figures = extract(prose)
    assert len(figures) == 10_000
    assert figures[-1].sentence == "Revenue was $5 billion in 2023, up 7%."
    table = "US 5% " * 3_000  # one 18,000-character "sentence"
    figures = extract(table)
    assert len(figures) == 3_000
    assert all(len(f.sentence) <= 2_000 and f.entity == "US" for f in figures)
