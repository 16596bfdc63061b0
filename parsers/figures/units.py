"""Unit tables: currencies, counters, time words.  Frozen data, no logic beyond look-ups."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

# Currency markers written before the number.  "$" alone is read as USD.
CURRENCY_PREFIX: Mapping[str, str] = MappingProxyType({
    "us$": "USD", "usd": "USD", "$": "USD", "hk$": "HKD", "hkd": "HKD", "nt$": "TWD",
    "a$": "AUD", "c$": "CAD", "s$": "SGD", "r$": "BRL", "rmb": "CNY", "cny": "CNY",
    "eur": "EUR", "gbp": "GBP", "jpy": "JPY", "人民币": "CNY", "€": "EUR", "£": "GBP",
    "¥": "CNY", "￥": "CNY", "美元": "USD", "港币": "HKD", "港元": "HKD",
})

# Currency words written after the number (lower-cased, inner whitespace collapsed).
CURRENCY_SUFFIX: Mapping[str, str] = MappingProxyType({
    "us dollars": "USD", "us dollar": "USD", "u.s. dollars": "USD", "dollars": "USD",
    "dollar": "USD", "usd": "USD", "yuan": "CNY", "yuan rmb": "CNY", "renminbi": "CNY",
    "rmb": "CNY", "cny": "CNY", "hk dollars": "HKD", "hong kong dollars": "HKD", "hkd": "HKD",
    "euros": "EUR", "euro": "EUR", "eur": "EUR", "pounds": "GBP", "pounds sterling": "GBP",
    "gbp": "GBP", "yen": "JPY", "jpy": "JPY",
    "美元": "USD", "美金": "USD", "港元": "HKD", "港币": "HKD", "欧元": "EUR", "英镑": "GBP",
    "日元": "JPY", "元人民币": "CNY", "人民币": "CNY", "元": "CNY", "块": "CNY", "韩元": "KRW",
})

# Chinese measure words that make a number a count of things (not of time).
ZH_COUNTERS = frozenset("个家笔枚台名位款项次张件人户座颗块套辆部份只条")
# Measure words that, followed by these, are not counters: 个月, 位数, 个百分点.
ZH_COUNTER_BLOCK = ("个月", "个小时", "个百分点", "个季度", "个星期", "个工作日", "位数",
                    "次方", "人次")

ZH_TIME = (
    "个月", "个小时", "个季度", "个星期", "个工作日", "年", "月", "日", "号", "天", "周",
    "小时", "分钟", "秒", "季度", "世纪", "岁", "时", "点", "星期",
)

EN_TIME_WORDS = frozenset({
    "year", "years", "month", "months", "day", "days", "hour", "hours", "minute",
    "minutes", "second", "seconds", "week", "weeks", "decade", "decades", "century",
    "centuries", "quarter", "quarters", "am", "pm", "a.m.", "p.m.", "o'clock",
})

MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december"
    "|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)

# Words that end in "s" but are not plural nouns.
NOT_PLURAL = frozenset({
    "this", "its", "has", "was", "is", "as", "us", "yes", "plus", "always", "thus",
    "perhaps", "less", "across", "whereas", "his", "hers", "ours", "yours", "theirs",
    "does", "goes", "unless", "afterwards", "towards", "besides", "percents",
})

# Words that end a counted-noun phrase before any noun is found.
NOUN_STOP = frozenset({
    "of", "to", "in", "at", "by", "from", "and", "or", "the", "a", "an", "for", "with",
    "on", "is", "are", "was", "were", "be", "been", "than", "that", "which", "who",
    "per", "percent", "up", "down", "more", "less", "times", "ago", "later", "earlier",
    "old", "before", "after", "this", "last", "next", "each", "every", "into", "as",
})

CURRENCY_CODES = frozenset(set(CURRENCY_PREFIX.values()) | set(CURRENCY_SUFFIX.values()))

STOCK_EXCHANGE_BEFORE = re.compile(
    r"(?:HKG|HKEX|SEHK|NASDAQ|NYSE|AMEX|SHA|SHE|SSE|SZSE|TYO|TSE|KRX|LSE|BSE|NSE)\s?[:：]\s?$"
)
STOCK_SUFFIX_AFTER = re.compile(r"\.(?:SH|SZ|SS|HK|BJ|US|N|O|T|KS|L)\b")


def is_currency(unit: str | None) -> bool:
    """True for ISO 4217 codes (every unit that is not %, x or count)."""
    return unit is not None and unit not in ("%", "x", "count")
