"""The Scrapy contestant: a spider a user would write for the same forums.

Scrapy 2.19 in a CrawlerProcess of its own: ROBOTSTXT_OBEY on, DOWNLOAD_DELAY 0,
CONCURRENT_REQUESTS_PER_DOMAIN 1 (Scrapy's download slots are keyed on the host name, so
each loopback address is a slot of its own) and enough global concurrency for every host at
once. The spider follows the board's thread links and the pagers, extracts posts with parsel
(benchmarks.bench_extract.parsel_rows: the same fields as the floor) and an item pipeline
writes each page's posts to SQLite in one transaction.

    .venv/bin/python -m benchmarks.scrapy_spider --db scrapy.db --seeds http://127.0.0.2:PORT/forum-1-1.html ...
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess

from benchmarks.bench_extract import parsel_rows
from benchmarks.contest import contestant_main, open_plain_db, save_rows

THREAD_LINKS = "tbody[id^=normalthread_] th a.xst::attr(href)"
NEXT_PAGE = "div.pg a.nxt::attr(href)"
TWISTED_REACTOR = "twisted.internet.epollreactor.EPollReactor"


class ForumSpider(scrapy.Spider):
    name = "forum"

    def __init__(self, seeds: list[str], **kwargs):
        super().__init__(**kwargs)
        self.start_urls = seeds

    def parse(self, response):
        """Board pages and thread pages alike: follow thread links and the pager, yield posts."""
        for href in response.css(THREAD_LINKS).getall():
            yield response.follow(href, self.parse)
        next_page = response.css(NEXT_PAGE).get()
        if next_page:
            yield response.follow(next_page, self.parse)
        rows = parsel_rows(response.selector)
        if rows:
            yield {"host": urlsplit(response.url).hostname, "rows": rows}


class SqlitePipeline:
    """One page's posts per item, one transaction per item."""

    def __init__(self, db: str):
        self.db = db
        self.conn = None

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings["SQLITE_PATH"])

    def open_spider(self, spider=None):
        self.conn = open_plain_db(self.db)

    def close_spider(self, spider=None):
        self.conn.close()

    def process_item(self, item, spider=None):
        save_rows(self.conn, item["host"], item["rows"])
        return item


def crawl(db: Path, seeds: list[str]) -> dict:
    process = CrawlerProcess(settings={
        "ROBOTSTXT_OBEY": True,
        "DOWNLOAD_DELAY": 0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "CONCURRENT_REQUESTS": max(16, len(seeds)),
        "SQLITE_PATH": str(db),
        "ITEM_PIPELINES": {f"{__name__}.SqlitePipeline": 300},
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
        "USER_AGENT": "forum-archiver-benchmark-scrapy",
        # With Scrapy's default asyncio reactor, Downloader._process_queue starts every queued
        # request of a slot at once (the coroutine that marks a request as transferring is
        # only scheduled, so the free-slot check never sees it): up to ~5 requests per host
        # in flight despite CONCURRENT_REQUESTS_PER_DOMAIN=1. Twisted's own reactor runs that
        # coroutine at once, and the limit holds.
        "TWISTED_REACTOR": TWISTED_REACTOR,
    })
    crawler = process.create_crawler(ForumSpider)
    process.crawl(crawler, seeds=seeds)
    process.start()
    stats = crawler.stats.get_stats()
    return {"pages": stats.get("response_received_count", 0), "items": stats.get("item_scraped_count", 0)}


def main() -> None:
    contestant_main(crawl, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
