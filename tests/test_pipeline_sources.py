"""Sources that list articles: an RSS feed with full text, and a listing page to follow."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from service.runtime import Runtime
from service.settings import Settings
from service.snapshot_server import SnapshotServer

from .conftest import SNAPSHOTS

FEED = Path(__file__).parent / "fixtures" / "feeds" / "tmtpost-rss.xml"


def _settings(tmp_path: Path, **source: object) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'fw.db'}", allow_private_targets=True,
                    respect_robots=False, per_host_delay=0, sources=(source,))


async def test_feed_entries_become_pages_with_their_own_figures(tmp_path: Path) -> None:
    with SnapshotServer({"/rss.xml": FEED.read_bytes()}) as site:
        settings = _settings(tmp_path, name="tmtpost-rss", url=f"{site.base_url}/rss.xml",
                             feed=True)
        async with Runtime(settings) as runtime:
            first = await runtime.cycle()
            second = await runtime.cycle()
    assert [p.url for p in first.pages] == ["https://www.tmtpost.com/8141972.html",
                                           "https://www.tmtpost.com/8141950.html"]
    assert all(p.outcome == "ok" for p in first.pages), [p.error for p in first.pages]
    values = {(f.value, f.unit) for f in first.pages[0].figures}
    assert (Decimal("1.79e12"), "USD") in values
    assert any(f.low == Decimal("6.8e8") and f.high == Decimal("7.2e8")
               for f in first.pages[0].figures)
    # The promo trailer and template images are not article text.
    assert all("钛媒体微信号" not in f.sentence for p in first.pages for f in p.figures)
    # The full text came from content:encoded: only the feed itself was requested.
    assert site.hits == ["/rss.xml", "/rss.xml"]
    assert [p.outcome for p in second.pages] == ["unchanged", "unchanged"]


async def test_listing_page_links_are_followed(tmp_path: Path) -> None:
    pages = {"/" + p.relative_to(SNAPSHOTS).as_posix(): p.read_bytes()
             for p in SNAPSHOTS.rglob("*.html")}
    links = "".join(f'<li><h3><a href="{path}">Story {i}</a></h3><span>3分钟前</span></li>'
                    for i, path in enumerate(sorted(pages)[:2]))
    listing = (f"<html><body><nav><a href='/'>Home</a></nav><ul class='latest-list'>{links}"
               "</ul><footer><a href='/about'>About</a></footer></body></html>").encode()
    with SnapshotServer({**pages, "/new": listing}) as site:
        settings = _settings(tmp_path, name="latest", url=f"{site.base_url}/new",
                             follow="ul.latest-list h3 a", follow_limit=5)
        async with Runtime(settings) as runtime:
            report = await runtime.cycle()
    assert len(report.pages) == 2
    assert all(p.outcome == "ok" and p.figures for p in report.pages)
    assert sorted(site.hits) == sorted(["/new", *sorted(pages)[:2]])
