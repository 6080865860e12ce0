"""The floor of our own stack: a bare httpx.AsyncClient + selectolax + sqlite3 crawl loop.

No robots.txt, no pacing, no raw bodies, no versions, no FTS, no frontier: one coroutine per
host (one request in flight per host, as the other contestants), following the board's
thread links and the pagers, writing each thread page's posts in one transaction. It
extracts the fields the Scrapy spider extracts (pid, author, time as printed, text without
jammer, ad slot, edit note and quotes).

    .venv/bin/python -m benchmarks.floor_crawler --db floor.db --seeds http://127.0.0.2:PORT/forum-1-1.html ...
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
from selectolax.lexbor import LexborHTMLParser, LexborNode

from benchmarks.bench_extract import NOISE_CSS, PID_ID, TIME_PREFIX, Row
from benchmarks.contest import contestant_main, open_plain_db, save_rows
from scraper.clean import strip_jammer_text

THREAD_LINKS = "tbody[id^=normalthread_] th a.xst"
NEXT_PAGE = "div.pg a.nxt"
POSTS = 'div#postlist table[id^="pid"]'
AUTHOR = 'div.authi a.xi2[href*="space"]'
POSTED = 'em[id^="authorposton"]'
POSTED_TITLE = "span[title]"
BODY = '[id^="postmessage_"]'


def post_text(body: LexborNode) -> str:
    """The body's text without noise elements, line breaks kept, jammer runs at line edges removed."""
    for noise in body.css(", ".join(NOISE_CSS)):
        noise.decompose()
    for br in body.css("br"):
        br.replace_with("\n")
    text = "\n".join(line.strip() for line in body.text(deep=True).replace("\r", "").split("\n"))
    text, _ = strip_jammer_text(text)
    return "\n".join(line for line in text.split("\n") if line)


def thread_rows(tree: LexborHTMLParser) -> list[Row]:
    """(pid, author, time as printed, text) of every post on a thread page."""
    rows = []
    for table in tree.css(POSTS):
        match = PID_ID.match(table.attributes.get("id") or "")
        if not match:
            continue
        author = table.css_first(AUTHOR)
        posted = table.css_first(POSTED)
        titled = posted.css_first(POSTED_TITLE)
        time_text = titled.text() if titled else posted.text().replace(TIME_PREFIX, "").strip()
        rows.append((int(match[1]), author.text(strip=True), time_text, post_text(table.css_first(BODY))))
    return rows


async def crawl_host(client: httpx.AsyncClient, conn: sqlite3.Connection, board_url: str) -> int:
    """Crawl one host from its board page; returns the pages fetched."""
    host = urlsplit(board_url).hostname
    queue, seen, pages = deque([board_url]), {board_url}, 0

    def follow(url: str | None, base: str) -> None:
        if url:
            url = urljoin(base, url)
            if url not in seen:
                seen.add(url)
                queue.append(url)

    while queue:
        url = queue.popleft()
        response = await client.get(url)
        pages += 1
        tree = LexborHTMLParser(response.text)
        for link in tree.css(THREAD_LINKS):
            follow(link.attributes.get("href"), url)
        rows = thread_rows(tree)
        next_page = tree.css_first(NEXT_PAGE)
        follow(next_page.attributes.get("href") if next_page else None, url)
        if rows:
            save_rows(conn, host, rows)
    return pages


async def crawl(db: Path, seeds: list[str]) -> dict:
    conn = open_plain_db(db)
    limits = httpx.Limits(max_connections=len(seeds), max_keepalive_connections=len(seeds))
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        pages = await asyncio.gather(*(crawl_host(client, conn, seed) for seed in seeds))
    conn.close()
    return {"pages": sum(pages)}


def main() -> None:
    contestant_main(lambda db, seeds: asyncio.run(crawl(db, seeds)), __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
