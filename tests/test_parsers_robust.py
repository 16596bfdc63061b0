"""`parsers.extract` never lets anything but a `ParseError` out, whatever it is fed."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import parsers
from parsers import Document, InputTooLarge, ParseError

REAL_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Deal count | Example</title>
<meta property="article:published_time" content="2024-02-01">
<script type="application/ld+json">{"@type": "NewsArticle", "author": {"name": "A. B."}}</script>
<style>p { margin: 0 }</style></head>
<body><header><nav><a href="/">Home</a> <a href="/n">News</a></nav></header>
<main><article><h1>China's AI deal count</h1>
<p>China's 2023 AI deal count was 232 in one CB Insights citation and 68 in another.</p>
<p>NVIDIA's market value is reported as 1.1 万亿美元, $1.79 trillion and $3.39 trillion.</p>
<table><tr><th>Year</th><th>Deals</th></tr><tr><th>2023</th><td>232</td></tr></table>
<ul><li>OpenAI: ~$29B → $86B → $157B</li><li>英伟达市值突破3万亿美元</li></ul>
<div class="comments"><p>Nice article, thanks for writing it, very informative.</p></div>
</article></main><aside class="sidebar"><a href="/x">Related story</a></aside>
<footer>© 2024</footer></body></html>"""

TAGS = ["html", "head", "body", "div", "p", "span", "a", "table", "tr", "td", "th", "ul", "li",
        "script", "style", "h1", "h2", "article", "main", "nav", "aside", "footer", "header",
        "br", "noscript", "template", "svg", "pre", "sup", "form", "iframe", "title", "meta"]
ATTRS = ["", " class='comment'", " id=sidebar", " hidden", " aria-hidden=true",
         " style='display:none'", " class='content main'", " lang=zh", " href='/x'",
         " role=navigation", " class=\"widget", " property='og:title' content='T'"]

tag_soup = st.lists(
    st.one_of(
        st.builds(lambda t, a: f"<{t}{a}>", st.sampled_from(TAGS), st.sampled_from(ATTRS)),
        st.builds(lambda t: f"</{t}>", st.sampled_from(TAGS)),
        st.text(max_size=40),
        st.sampled_from(["<!--", "-->", "<![CDATA[", "&amp;", "&#0;", "&#xD800;", "<", ">",
                         "\x00", "\ufeff", "\u200b", "<script>", "</script", "<?xml ?>",
                         "<!doctype html>", "万亿美元，", "\ud800", "\udfff"]),
    ),
    max_size=60,
).map("".join)


@st.composite
def mutated_page(draw: st.DrawFn) -> str:
    """The realistic page, truncated, with ranges deleted and junk inserted."""
    page = REAL_PAGE
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["truncate", "delete", "insert", "unclosed"]))
        pos = draw(st.integers(0, len(page)))
        if op == "truncate":
            page = page[:pos]
        elif op == "delete":
            page = page[:pos] + page[pos + draw(st.integers(0, 200)):]
        elif op == "insert":
            page = page[:pos] + draw(st.text(max_size=30)) + page[pos:]
        else:
            tag = draw(st.sampled_from(TAGS))
            page = page[:pos] + f"<{tag}{draw(st.sampled_from(ATTRS))}>" + page[pos:]
    return page


def to_bytes(text: str, encoding: str) -> bytes:
    return text.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")


documents = st.one_of(st.text(max_size=300), tag_soup, mutated_page())
inputs = st.one_of(
    documents,
    st.builds(to_bytes, documents, st.sampled_from(["utf-8", "gb18030", "utf-16", "latin-1"])),
    st.binary(max_size=400),  # random bytes, invalid UTF-8 included
    st.builds(lambda b, page: page.encode() + b + page.encode()[:200], st.binary(max_size=50),
              mutated_page()),
)
ODD_URLS = ["not a url", "", "http://[::1", "https://exa mple.com/", "https://例子.中国/新闻",
            "javascript:alert(1)", "https://example.com:99999/"]
urls = st.one_of(st.none(), st.sampled_from(["https://example.com/a", "https://www.cnbc.com/x",
                                             "not a url", "", "https://例子.中国/新闻"]))


def check(html: str | bytes, url: str | None) -> None:
    try:
        doc = parsers.extract(html, url)
    except ParseError:
        return
    assert isinstance(doc, Document)
    assert isinstance(doc.text, str)
    for block in doc.blocks:
        assert isinstance(block.text, str)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs, urls)
def test_extract_never_raises_anything_but_parse_error(html: str | bytes, url: str | None) -> None:
    check(html, url)


@settings(max_examples=100, deadline=None)
@given(tag_soup)
def test_generic_on_tag_soup_never_raises(html: str) -> None:
    doc = parsers.extract(html, None, parser="generic")
    assert doc.parser == "generic"


@pytest.mark.parametrize("url", ODD_URLS)
def test_odd_url_is_not_an_error(url: str) -> None:
    check(REAL_PAGE, url)


def test_deep_nesting_does_not_overflow() -> None:
    # far deeper than Python's recursion limit (lexbor itself slows down past ~10k levels)
    html = "<div>" * 5_000 + "deep text, with punctuation, long enough to count." + "</div>" * 10
    check(html, None)
    doc = parsers.extract(html, None, parser="generic")
    assert "deep text, with punctuation" in doc.text
    check("<b><i>" * 5_000, "https://example.com/")


def test_realistic_page_str_and_bytes_agree() -> None:
    as_str = parsers.extract(REAL_PAGE, "https://example.com/a")
    as_bytes = parsers.extract(REAL_PAGE.encode("utf-8"), "https://example.com/a")
    assert as_str.text == as_bytes.text
    assert "232 in one CB Insights citation" in as_str.text


def test_input_over_20_mb_raises_input_too_large_naming_the_size() -> None:
    big = b"<p>" + b"x" * (20 * 1024 * 1024) + b"</p>"
    with pytest.raises(InputTooLarge) as err:
        parsers.extract(big, "https://example.com/big")
    assert f"{len(big):,}" in str(err.value)
    assert err.value.size == len(big)
    assert isinstance(err.value, ParseError)
    big_str = "<p>" + "é" * (11 * 1024 * 1024) + "</p>"  # 22 MB once encoded
    with pytest.raises(InputTooLarge) as err2:
        parsers.extract(big_str)
    assert err2.value.size == len(big_str.encode("utf-8"))
