"""`forum-archiver demo`: the main job end to end on the bundled demo forum.

Starts the demo forum on 127.0.0.1, crawls both of its boards into an archive with the
demo site's config (watermark phrases included), then serves the archive with Datasette
while the forum keeps running beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scraper import config, schedule
from scraper.crawl import CrawlOptions, Crawler
from scraper.errors import ConfigError
from scraper.publish import REPO_ROOT, datasette_command, run_datasette
from scraper.sites import load_site, site_from_dict
from storage.archive import Archive

DEMO_SITE_CONFIG = REPO_ROOT / "seeds" / "sites" / "demo.toml"
DEMO_DELAY_S = 0.05  # the demo forum is ours, on this machine: no need to wait between pages


def run_demo(db_path: Path, *, datasette_port: int, forum_port: int = 0, serve: bool = True,
             echo: Callable[[str], None] = print) -> None:
    from scraper.demo.server import start

    db_path.parent.mkdir(parents=True, exist_ok=True)
    forum = start("127.0.0.1", forum_port)
    try:
        site = load_site(DEMO_SITE_CONFIG)
        site = site_from_dict(dict(site.raw, base_url=forum.base_url))
        echo(f"demo forum running at {forum.base_url}")
        boards = [f"{forum.base_url}forum-{fid}-1.html" for fid in site.boards]
        # As `crawl` does: under the host's lock, so a demo killed before is known dead (its run
        # closed, what it held leased taken back) and no other crawl of the archive's host runs beside.
        options = CrawlOptions(delay_s=DEMO_DELAY_S, allow_private_hosts=frozenset({"127.0.0.1"}),
                               reclaim_leases=True)
        with Archive(db_path) as archive, schedule.host_lock(db_path, site.host,
                                                             wait_s=config.SITE_LOCK_WAIT_S) as lock:
            if lock is None:
                raise ConfigError(f"{site.host} stayed busy in {db_path} for {config.SITE_LOCK_WAIT_S:.0f} s "
                                  "(another crawl of it); try again later")
            report = schedule.crawl_holding_lock(lock, Crawler(archive, site, options=options), boards)
        echo(f"crawled {report.requests} pages: {report.new_posts} new posts, {report.new_versions} new versions "
             f"-> {db_path}")
        if serve:
            echo(f"serving the archive at http://127.0.0.1:{datasette_port}/ (Ctrl-C to stop)")
            run_datasette(datasette_command(db_path, host="127.0.0.1", port=datasette_port))
    finally:
        forum.shutdown()
