"""The archiver as a benchmark contestant: scraper.crawl.crawl_sites over every forum host (one
Crawler per host, all in one event loop sharing one Archive), everything on (robots.txt, raw
bodies, fetch log, versions, FTS).

    .venv/bin/python -m benchmarks.archiver_crawl --db archive.db --seeds http://127.0.0.2:PORT/forum-1-1.html ...
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.contest import contestant_main
from scraper.crawl import CrawlOptions, CrawlReport, Crawler, crawl_sites
from scraper.politeness import HostPacer
from scraper.sites import Site, site_from_dict
from storage.archive import Archive


def forum_site(board_url: str, index: int) -> Site:
    """The site config of one benchmark forum (its base URL is the board URL's root)."""
    parts = urlsplit(board_url)
    return site_from_dict({"name": f"forum-{index}", "base_url": f"{parts.scheme}://{parts.netloc}/",
                           "boards": [1]})


def crawl_options(seeds: list[str], **overrides) -> CrawlOptions:
    """Options for a crawl of the benchmark forums: their loopback hosts allowed, no delay
    unless one is given."""
    hosts = frozenset(urlsplit(url).hostname for url in seeds)
    return CrawlOptions(**{"delay_s": 0.0, "allow_private_hosts": hosts, **overrides})


async def crawl_forums(archive: Archive, seeds: list[str], options: CrawlOptions, *,
                       pacer_for: Callable[[], HostPacer] | None = None,
                       site_numbers: list[int] | None = None) -> list[CrawlReport]:
    """Crawl every forum from its board URL, concurrently (one Crawler per host, as
    scraper.crawl.crawl_sites does, which takes no pacer); `pacer_for` builds each
    Crawler's pacer. Forum n of the seeds is site forum-n, or forum-{site_numbers[n]}
    (crawls that share an archive give each forum its own name)."""
    numbers = range(len(seeds)) if site_numbers is None else site_numbers
    crawlers = [Crawler(archive, forum_site(url, number), options=options,
                        pacer=pacer_for() if pacer_for else None) for number, url in zip(numbers, seeds)]
    return list(await asyncio.gather(*(crawler.run([url]) for crawler, url in zip(crawlers, seeds))))


def crawl(db: Path, seeds: list[str], slowdown_factor: float | None = None) -> dict:
    """Crawl the forums with crawl_sites; with `slowdown_factor`, with Crawlers whose pacers
    use that factor instead (0: a host's gap never grows with its response time)."""
    with Archive(db) as archive:
        if slowdown_factor is None:
            targets = [(forum_site(url, i), [url]) for i, url in enumerate(seeds)]
            reports = asyncio.run(crawl_sites(archive, targets, crawl_options(seeds)))
        else:
            reports = asyncio.run(crawl_forums(archive, seeds, crawl_options(seeds), pacer_for=lambda: HostPacer(
                delay_s=0.0, slowdown_factor=slowdown_factor)))
    failures = sum(sum(report.failures.values()) for report in reports)
    return {"pages": sum(report.pages_saved for report in reports),
            "requests": sum(report.requests for report in reports), "failures": failures}


def main() -> None:
    contestant_main(crawl, __doc__.splitlines()[0], lambda parser: parser.add_argument(
        "--slowdown-factor", type=float, default=None, help="the pacer's slowdown factor (default: the pacer's own)"))


if __name__ == "__main__":
    main()
