"""The generic extractor on small but complete pages: main text kept, chrome dropped."""

from __future__ import annotations

import parsers
from parsers.generic import GenericExtractor

NEWS_PAGE = """<!doctype html>
<html lang="en-US">
<head>
  <meta charset="utf-8">
  <title>OpenAI valuation reaches $157 billion | Example News</title>
  <meta property="og:title" content="OpenAI valuation reaches $157 billion">
  <meta property="article:published_time" content="2024-10-02T14:00:00Z">
  <meta name="author" content="Jane Reporter">
  <script>window.tracking = {"a": "do not extract me"};</script>
  <style>.x { color: red }</style>
</head>
<body>
  <header class="site-header">
    <a href="/">Example News</a>
    <nav><ul><li><a href="/tech">Tech</a></li><li><a href="/markets">Markets</a></li>
      <li><a href="/opinion">Opinion</a></li></ul></nav>
  </header>
  <div class="cookie-banner">We use cookies to improve your experience. Accept all cookies?</div>
  <div class="layout">
    <main>
      <article>
        <h1>OpenAI valuation reaches $157 billion</h1>
        <p class="byline">By <a href="/jane">Jane Reporter</a></p>
        <p>OpenAI has closed a funding round that values the company at $157 billion,
           almost double the $86 billion it was worth in February, people familiar with
           the deal said on Wednesday.</p>
        <p>The round raised $6.6 billion from investors including Thrive Capital,
           Microsoft and Nvidia, making it one of the largest private fundraisings ever.</p>
        <h2>Revenue is growing fast</h2>
        <p>The company expects revenue of $3.7 billion this year, rising to $11.6 billion
           next year, according to documents seen by reporters.</p>
        <ul>
          <li>Annualised revenue passed $3.4 billion in June.</li>
          <li>ChatGPT has more than 250 million weekly users.</li>
        </ul>
        <div class="share-bar"><a href="#">Share on X</a> <a href="#">Share on Facebook</a></div>
      </article>
      <section class="comments">
        <h3>42 comments</h3>
        <div class="comment"><p>First! This valuation is absurd, it will never last, mark
           my words, everybody.</p></div>
      </section>
    </main>
    <aside class="sidebar">
      <h3>Most read</h3>
      <ul><li><a href="/a">Markets slump as rates rise again</a></li>
          <li><a href="/b">Ten gadgets you need this autumn</a></li></ul>
      <div class="newsletter"><p>Sign up for our daily newsletter, it is free and you can
         unsubscribe at any time.</p></div>
    </aside>
  </div>
  <footer><p>Copyright 2024 Example News. All rights reserved.</p>
    <a href="/privacy">Privacy</a> <a href="/terms">Terms</a></footer>
</body>
</html>
"""

CHINESE_PAGE = """<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>英伟达市值突破3万亿美元_科技频道_示例网</title>
  <script type="application/ld+json">
  {"@context": "https://schema.org", "@type": "NewsArticle",
   "headline": "英伟达市值突破3万亿美元", "datePublished": "2024-06-05T20:30:00+08:00",
   "author": {"@type": "Person", "name": "李明"}}
  </script>
</head>
<body>
  <div id="nav" class="menu"><a href="/">首页</a><a href="/tech">科技</a><a href="/fin">财经</a>
    <a href="/auto">汽车</a></div>
  <div class="main-wrap">
    <div class="article-content">
      <h1>英伟达市值突破3万亿美元</h1>
      <p>当地时间周三，英伟达股价上涨超过5%，市值首次突破3万亿美元，超越苹果成为全球市值第二高的公司。</p>
      <p>今年以来，英伟达股价已累计上涨约147%。分析人士认为，人工智能芯片需求持续旺盛是主要推动因素。</p>
      <p>英伟达最新财报显示，公司第一财季营收为260亿美元，同比增长262%，数据中心业务营收达到226亿美元。</p>
    </div>
    <div class="related-news"><h3>相关阅读</h3>
      <ul><li><a href="/1">苹果发布新款芯片，性能大幅提升</a></li>
          <li><a href="/2">微软市值再创新高，云业务增长强劲</a></li></ul></div>
  </div>
  <div class="footer">版权所有 © 2024 示例网 京ICP备12345678号</div>
</body>
</html>
"""

BOILERPLATE_PAGE = """<!doctype html>
<html lang="en"><head><title>Example</title></head>
<body>
  <header><nav><a href="/">Home</a> <a href="/about">About</a> <a href="/contact">Contact</a>
  </nav></header>
  <div class="cookie-consent">This site uses cookies. <button>OK</button></div>
  <ul class="menu"><li><a href="/1">Products</a></li><li><a href="/2">Pricing</a></li>
      <li><a href="/3">Blog</a></li></ul>
  <footer>© 2024 Example Inc. <a href="/privacy">Privacy</a></footer>
</body></html>
"""

LISTING_PAGE = """<!doctype html>
<html lang="en">
<head><title>AI funding deals this week - Deal Tracker</title></head>
<body>
  <nav class="top-nav"><a href="/">Deal Tracker</a> <a href="/deals">Deals</a>
    <a href="/investors">Investors</a> <a href="/login">Log in</a></nav>
  <div id="content">
    <h1>AI funding deals this week</h1>
    <p>Twelve artificial intelligence start-ups raised a combined $4.2 billion this week,
       led by a large round for a model developer.</p>
    <div class="deal">
      <h2>Anthropic raises $4 billion</h2>
      <p>The AI safety company raised $4 billion from Amazon, bringing Amazon's total
         investment to $8 billion.</p>
    </div>
    <div class="deal">
      <h2>Mistral closes $640 million round</h2>
      <p>The Paris-based model maker is now valued at about $6 billion after the round,
         which was led by General Catalyst.</p>
    </div>
    <div class="deal">
      <h2>Cohere secures $500 million</h2>
      <p>The enterprise AI firm raised $500 million at a $5.5 billion valuation from a group
         of investors including Cisco and AMD.</p>
    </div>
  </div>
  <div class="pagination"><a href="?p=1">1</a> <a href="?p=2">2</a> <a href="?p=3">Next</a></div>
  <footer>Deal Tracker · All rights reserved · <a href="/rss">RSS</a></footer>
</body>
</html>
"""


def generic(html: str, url: str | None = "https://news.example.com/a/1") -> parsers.Document:
    return parsers.extract(html, url, parser="generic")


def test_news_article_keeps_body_drops_chrome() -> None:
    doc = generic(NEWS_PAGE)
    text = doc.text
    assert "values the company at $157 billion" in text
    assert "Thrive Capital" in text
    assert "Revenue is growing fast" in text
    assert "250 million weekly users" in text
    for chrome in ("Markets slump", "Tech\n", "Share on X", "First! This valuation",
                   "daily newsletter", "Copyright 2024", "cookies", "do not extract me",
                   "color: red", "Privacy"):
        assert chrome not in text, chrome


def test_news_article_block_kinds_in_order() -> None:
    doc = generic(NEWS_PAGE)
    kinds = [(b.kind, b.text[:20]) for b in doc.blocks]
    assert ("heading", "Revenue is growing f") in kinds
    assert ("list_item", "Annualised revenue p") in kinds
    texts = [b.text for b in doc.blocks]
    first = next(i for i, t in enumerate(texts) if "values the company" in t)
    second = next(i for i, t in enumerate(texts) if "Thrive Capital" in t)
    assert first < second


def test_news_article_metadata() -> None:
    doc = generic(NEWS_PAGE)
    assert doc.title == "OpenAI valuation reaches $157 billion"
    assert doc.published == "2024-10-02T14:00:00Z"
    assert doc.author == "Jane Reporter"
    assert doc.lang == "en"
    assert doc.url == "https://news.example.com/a/1"
    assert doc.parser == "generic"


def test_unknown_domain_falls_back_to_generic() -> None:
    doc = parsers.extract(NEWS_PAGE, "https://unknown-site.example.org/story")
    assert doc.parser == "generic"
    assert "Thrive Capital" in doc.text


def test_chinese_article() -> None:
    doc = generic(CHINESE_PAGE, "https://www.example.cn/tech/1.html")
    text = doc.text
    assert "市值首次突破3万亿美元" in text
    assert "累计上涨约147%" in text
    assert "260亿美元" in text
    for chrome in ("首页", "相关阅读", "苹果发布新款芯片", "版权所有"):
        assert chrome not in text, chrome
    assert doc.lang == "zh"  # no html[lang]: guessed from the CJK text
    assert doc.title == "英伟达市值突破3万亿美元"  # "_科技频道_示例网" stripped
    assert doc.published == "2024-06-05T20:30:00+08:00"
    assert doc.author == "李明"


def test_title_suffix_stripped_from_title_tag() -> None:
    html = ("<html><head><title>Deal count falls to 232 in 2023 | CB Example</title></head>"
            "<body><p>Nothing else.</p></body></html>")
    assert generic(html).title == "Deal count falls to 232 in 2023"


def test_all_boilerplate_page_is_empty() -> None:
    doc = generic(BOILERPLATE_PAGE)
    assert doc.is_empty()
    assert doc.blocks == []
    assert doc.text == ""
    assert doc.lang == "en"


def test_listing_page_keeps_every_item() -> None:
    doc = generic(LISTING_PAGE, "https://deals.example.com/week")
    text = doc.text
    for item in ("Anthropic raises $4 billion", "bringing Amazon's total",
                 "Mistral closes $640 million round", "General Catalyst",
                 "Cohere secures $500 million", "Cisco and AMD", "combined $4.2 billion"):
        assert item in text, item
    for chrome in ("Log in", "Investors", "Next", "RSS", "All rights reserved"):
        assert chrome not in text, chrome
    headings = [b.text for b in doc.blocks if b.kind == "heading"]
    assert "Cohere secures $500 million" in headings


def test_data_table_cells_carry_headers() -> None:
    html = """<html lang="en"><body><article>
      <p>Quarterly funding to AI start-ups rose sharply through the year, the data show.</p>
      <table><tr><th>Quarter</th><th>Funding</th><th>Deals</th></tr>
        <tr><th>Q3'24</th><td>$2B</td><td>232</td></tr>
        <tr><th>Q4'24</th><td>$3B</td><td>68</td></tr></table>
      <p>Most of the money went to a handful of model developers, the report says.</p>
    </article></body></html>"""
    cells = [b for b in generic(html).blocks if b.kind == "table_cell" and b.text == "$2B"]
    assert len(cells) == 1
    assert cells[0].row_header == "Q3'24"
    assert cells[0].column_header == "Funding"
    assert cells[0].context_text == "Q3'24 · Funding: $2B"


def test_page_builder_wrappers_are_not_mistaken_for_widgets() -> None:
    # Elementor/Blogger-style pages wrap the article itself in "widget" containers.
    paras = "".join(
        f"<p>Paragraph {i} of the article explains, at some length, how the market moved.</p>"
        for i in range(5)
    )
    html = (f"<html><body><div class='sidebar-layout'><div class='widget Blog'>{paras}</div>"
            "<div class='sidebar'><a href='/x'>Archive 2023</a> <a href='/y'>Archive 2024</a>"
            "</div></div></body></html>")
    text = generic(html).text
    assert "Paragraph 0 of the article" in text
    assert "Paragraph 4 of the article" in text
    assert "Archive" not in text


def test_extractor_class_contract() -> None:
    assert GenericExtractor.name == "generic"
    assert GenericExtractor.domains == ()
    assert GenericExtractor.__doc__ and "\n" not in GenericExtractor.__doc__.strip()
    assert "generic" in parsers.parser_names()


def test_article_inside_display_none_wrapper_is_still_found() -> None:
    # Shops and streamed pages ship the content hidden and reveal it with JS.
    paras = "".join(
        f"<p>Sentence {i} describes the product in detail, with commas, at length.</p>"
        for i in range(4)
    )
    html = (f"<html lang='en'><body><div style='display:none'><main>{paras}</main></div>"
            "<div style='display: none'><p>Sign up for our newsletter today, it is free.</p>"
            "</div></body></html>")
    text = generic(html).text
    assert "Sentence 0 describes the product" in text
    assert "Sentence 3 describes the product" in text
    assert "newsletter" not in text


def test_byline_author_when_no_meta() -> None:
    html = ("<html><body><article><p class='byline'>By <a rel='author' href='/a/li'>Li Ming</a>"
            "</p><p>A long enough paragraph of article text, with commas, to be content.</p>"
            "</article></body></html>")
    assert generic(html).author == "Li Ming"
