"""The forum-archiver command line: each command is a few lines over library calls."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import click

from scraper import __version__, config
from scraper.errors import ArchiverError, ConfigError
from scraper.sites import Site, check_site_in_archive, load_site, site_for_url, site_from_dict, url_parts
from storage.db import WalNotFoldedError
from storage.schema import NotAnArchiveError, SchemaVersionError

REPO_ROOT = Path(__file__).resolve().parent.parent


class _HttpURL(click.ParamType):
    """A URL argument or option, checked before anything is opened: a broken one is named in
    click's one-line usage error, not found by urlsplit deep inside as a traceback."""

    name = "URL"

    def convert(self, value, param, ctx):
        if url_parts(value) is None:
            self.fail(f"{value!r} is not an http(s) URL with a host (and a port up to 65535)", param, ctx)
        return value


HTTP_URL = _HttpURL()


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _resolve_site(archive, urls: list[str], config_path: str | None, site_name: str | None) -> Site:
    """The site a command works on: a config file, a site already in the archive, or the
    first URL's host."""
    if config_path:
        site = load_site(config_path)
    elif site_name and (stored := archive.db.execute(
            "select config_json from sites where name = ?", [site_name]).fetchone()):
        site = site_from_dict(json.loads(stored[0]) or {"name": site_name, "base_url": urls[0]})
    elif urls:
        site = site_for_url(urls[0], name=site_name)
    else:
        raise ConfigError("name a site config (--config) or give a URL")
    base = urlsplit(site.base_url)
    if urls and (urlsplit(urls[0]).scheme, urlsplit(urls[0]).netloc.lower()) != (base.scheme, base.netloc.lower()):
        # The operator pointed the site at another address (e.g. the demo forum on a free port).
        parts = urlsplit(urls[0])
        raw = dict(site.raw, base_url=f"{parts.scheme}://{parts.netloc}{urlsplit(site.base_url).path}")
        site = site_from_dict(raw)
    return site


class _ArchiverGroup(click.Group):
    """The commands, with the errors a bad --db file gives turned into one clear line (no
    traceback): not an archive, a schema too old or too new, no such file, not SQLite."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (NotAnArchiveError, SchemaVersionError, WalNotFoldedError) as exc:
            raise click.ClickException(str(exc)) from None
        except FileNotFoundError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None
        except sqlite3.DatabaseError as exc:
            raise click.ClickException(f"the archive cannot be used: {exc}") from None


@click.group(cls=_ArchiverGroup)
@click.version_option(__version__, prog_name="forum-archiver")
@click.option("-v", "--verbose", is_flag=True, help="Log every page (each job's summary is logged anyway).")
def main(verbose: bool) -> None:
    """Archive forum threads politely into SQLite, and publish them with Datasette."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A line per job run, even unasked: a daemon's journal (or cron's mail) says what each
    # run did, and not only what went wrong.
    logging.getLogger("scraper.schedule").setLevel(logging.INFO)


@main.command()
@click.argument("urls", nargs=-1, required=True, type=HTTP_URL)
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), help="The archive (SQLite file).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="A site config (TOML).")
@click.option("--site", "site_name", help="The site's name in the archive (default: from the URL's host).")
@click.option("--delay", "delay_s", type=click.FloatRange(min=0), help="Seconds between requests to the host.")
@click.option("--allow-private", is_flag=True,
              help="Allow loopback/private addresses, only for the hosts of the URLs given here.")
@click.option("--max-requests", type=click.IntRange(min=1), help="Stop after this many requests.")
@click.option("--cookies", "cookies_path", type=click.Path(exists=True, dir_okay=False),
              help="A forum member's cookies.txt (Netscape format): crawl the pages as that member sees them.")
def crawl(urls, db_path, config_path, site_name, delay_s, allow_private, max_requests, cookies_path) -> None:
    """Crawl board or thread URLS once: follow board rows and thread pages, store everything."""
    from scraper import schedule
    from scraper.crawl import CrawlOptions, Crawler
    from scraper.progress import ProgressReporter
    from storage.archive import Archive

    with Archive(db_path) as archive, contextlib.ExitStack() as held_locks:
        try:
            site = _resolve_site(archive, list(urls), config_path, site_name)
            if cookies_path:
                site = site_from_dict(dict(site.raw, cookies_file=str(Path(cookies_path).resolve())))
        except ConfigError as exc:
            _fail(str(exc))
        hosts = frozenset(urlsplit(u).hostname.lower() for u in urls if urlsplit(u).hostname)
        # reclaim_leases: this crawl runs only while holding the host's lock (below), so a lease
        # of the site's is a killed crawl's, taken back now instead of when it expires.
        options = CrawlOptions(delay_s=delay_s, allow_private_hosts=hosts if allow_private else frozenset(),
                               max_requests=max_requests, reclaim_leases=True)
        # The host's lock, as a daemon job takes it: never two crawls of one host at once, and
        # this one starts once the last one's gap (or a server's pause) has passed.
        lock = held_locks.enter_context(schedule.host_lock(db_path, site.host))
        if lock is None:
            click.echo(f"{site.host} is being crawled into {db_path} (a daemon job or another crawl); waiting "
                       f"up to {config.SITE_LOCK_WAIT_S:.0f} s for it to finish", err=True)
            lock = held_locks.enter_context(schedule.host_lock(db_path, site.host, wait_s=config.SITE_LOCK_WAIT_S))
            if lock is None:
                _fail(f"{site.host} stayed busy for {config.SITE_LOCK_WAIT_S:.0f} s; try again later")
        progress = ProgressReporter(site.name)
        try:
            try:
                crawler = Crawler(archive, site, options=options, on_page=progress)
            except ConfigError as exc:
                _fail(str(exc))
            report = schedule.crawl_holding_lock(lock, crawler, list(urls))
        finally:
            progress.close()
    failures = ", ".join(f"{k} {v}" for k, v in sorted(report.failures.items())) or "none"
    click.echo(f"{report.requests} requests, {report.pages_saved} pages saved, {report.new_posts} new posts, "
               f"{report.new_versions} new versions, {report.gone_posts} posts gone, {report.not_modified} not modified; "
               f"failures: {failures}")


def _daemon_sites(config_paths: tuple[str, ...], board_urls: tuple[str, ...]) -> list[Site]:
    """The sites `run` keeps current: one per config file, and one per host of the board URLs."""
    from scraper.engines import get_engine

    sites = [load_site(path) for path in config_paths]
    boards_of: dict[str, tuple[Site, set[int]]] = {}
    for url in board_urls:
        ref = get_engine("discuz").board_ref(url)
        if ref is None:
            raise ConfigError(f"{url!r} is not a board URL (forum-FID-PAGE.html or forum.php?mod=forumdisplay&fid=)")
        site = site_for_url(url)
        boards_of.setdefault(site.base_url, (site, set()))[1].add(ref[0])
    for site, fids in boards_of.values():
        sites.append(site_from_dict(dict(site.raw, boards=sorted(fids))))
    names = [site.name for site in sites]
    if len(set(names)) != len(names):
        raise ConfigError(f"two sites share a name: {sorted(n for n in names if names.count(n) > 1)}")
    return sites


def _prepare_archive(db_path: str, sites: list[Site]) -> None:
    """Before any job starts: open the archive for writing once, which creates it or upgrades
    its schema (the jobs would otherwise race to, and a reader refuses an older schema), and
    check that no site is another forum than the one the archive holds under its name
    (scraper.sites.check_same_forum); then close the runs that processes which died left
    'running', a site dropped from the config's included."""
    from scraper import schedule
    from storage.archive import Archive

    with Archive(db_path) as archive:
        for site in sites:
            check_site_in_archive(archive, site)
        schedule.close_dead_runs(db_path, archive)


@main.command()
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), help="The archive (SQLite file).")
@click.option("--config", "config_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A site config (TOML); repeat for more sites.")
@click.option("--site", "board_urls", multiple=True, type=HTTP_URL,
              help="A board URL to keep current; repeat for more boards.")
@click.option("--every", "every_s", type=click.FloatRange(min=60),
              help="Seconds between runs of each site's job (with --once: how often cron runs it; the verify pass "
                   "paces its share to it). Default: the site's [schedule] every_s.")
@click.option("--delay", "delay_s", type=click.FloatRange(min=0), help="Seconds between requests to a host.")
@click.option("--allow-private", is_flag=True, help="Allow loopback/private addresses for the sites named here.")
@click.option("--verify-budget", "verify_budget", type=click.IntRange(min=0),
              help="Requests each site's refresh may spend re-reading old pages (default: the site's "
                   f"[schedule] verify_budget_requests, else {config.VERIFY_BUDGET_REQUESTS}).")
@click.option("--once", is_flag=True, help="Run every site's jobs once, then exit (for cron).")
def run(db_path, config_paths, board_urls, every_s, delay_s, allow_private, verify_budget, once) -> None:
    """Keep the archive current: each site's boards (discover), then its due threads (refresh),
    on a schedule. Sites on different hosts are crawled at the same time.

    SIGTERM or SIGINT lets the page in hand finish, then stops.
    """
    import signal

    from scraper import schedule

    if not config_paths and not board_urls:
        _fail("name at least one site: --config FILE or --site BOARD_URL")
    try:
        sites = _daemon_sites(config_paths, board_urls)
        _prepare_archive(db_path, sites)
    except ConfigError as exc:
        _fail(str(exc))
    options = schedule.RunOptions(delay_s=delay_s, allow_private=allow_private, verify_budget_requests=verify_budget,
                                  every_s=every_s)

    def request_stop(signum, _frame):
        logging.getLogger(__name__).warning("signal %d: finishing the page in hand, then stopping", signum)
        schedule.STOP.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if once:
        try:
            schedule.run_once(db_path, sites, options)
        except ExceptionGroup as failed:  # each site's error is in the log already, with its traceback
            _fail(f"{failed.message} (the log above has each one's traceback): " + "; ".join(
                f"{' '.join(getattr(e, '__notes__', ()))}: {type(e).__name__}: {e}" for e in failed.exceptions))
        return
    try:
        with schedule.daemon_lock(db_path):
            _run_daemon(db_path, sites, options)
    except ConfigError as exc:
        _fail(str(exc))


def _run_daemon(db_path: str, sites: list, options) -> None:
    """The scheduler's loop, until SIGTERM or SIGINT; the caller holds the archive's daemon lock."""
    from scraper import schedule

    specs = [spec for site in sites for spec in schedule.site_jobs(db_path, site, options)]
    scheduler = schedule.build_scheduler(schedule.jobs_path_for(db_path),
                                         max_workers=schedule.executor_workers(len(specs)))
    scheduler.start(paused=True)
    wanted = {spec.job_id for spec in specs}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            job.remove()  # a site no longer configured: its jobs go with it
    now = datetime.now(timezone.utc)
    for spec in specs:
        schedule.add_job(scheduler, spec, next_run_time=now + schedule.first_run_lag(spec))
    scheduler.resume()
    click.echo(f"running {len(specs)} jobs for {len(sites)} site(s); stop with SIGTERM or Ctrl-C")
    while not schedule.STOP.wait(1.0):
        pass
    scheduler.shutdown(wait=True)


@main.command()
@click.option("--db", "db_path", required=True, type=click.Path(exists=True, dir_okay=False))
def status(db_path) -> None:
    """Show each site's threads, queue by state, last runs, failures by reason and next due times."""
    from scraper.status import format_status, index_backlog_note, site_status
    from storage.archive import Archive

    with Archive(db_path, readonly=True) as archive:
        click.echo(format_status(site_status(archive)))
        note = index_backlog_note(archive)
        if note:
            click.echo(note)


@main.command()
@click.option("--db", "db_path", required=True, type=click.Path(exists=True, dir_okay=False))
def index(db_path) -> None:
    """Index every post still waiting for the search indexes, now (an upgraded archive fills
    a new index only a few thousand posts per crawl batch otherwise). Safe beside a running
    daemon: each batch is a short transaction of its own."""
    from storage.archive import Archive

    with Archive(db_path) as archive:
        pending = archive.pending_index_count()
        if not pending:
            click.echo("nothing to index: every post is in the search indexes")
            return
        click.echo(f"{pending} posts to index")
        done = archive.index_all(lambda done, left: click.echo(f"indexed {done}, {left} left") if left else None)
    click.echo(f"indexed {done} posts; nothing pending")


def _export(db_path: str, write):
    """Run an export over the archive, read only; its refusals (the target exists, no such
    site) end the command with their message."""
    from storage.archive import Archive
    from storage.export import ExportError

    with Archive(db_path, readonly=True) as archive:
        try:
            return write(archive)
        except ExportError as exc:
            _fail(str(exc))


@main.command("export-jsonl")
@click.argument("target", type=click.Path(dir_okay=False))
@click.option("--db", "db_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--site", "site_name", help="Only this site's posts (its name in the archive).")
def export_jsonl(target, db_path, site_name) -> None:
    """Write the archive's posts to TARGET as JSON lines (gzipped if TARGET ends in .gz): one
    object a post, with its thread and its earlier versions, in thread order."""
    from storage.export import export_jsonl as write_export

    summary = _export(db_path, lambda archive: write_export(archive, target, site=site_name))
    click.echo(f"{target}: {summary.posts} posts, {summary.earlier_versions} earlier versions")


@main.command("export-warc")
@click.argument("target", type=click.Path(dir_okay=False))
@click.option("--db", "db_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--site", "site_name", help="Only this site's pages (its name in the archive).")
def export_warc(target, db_path, site_name) -> None:
    """Write the pages the archive fetched to TARGET as a WARC file (.warc.gz), for web
    archives and replay tools: each kept body once, at the URL and time it was fetched."""
    from storage.export import export_warc as write_export

    software = f"{config.PRODUCT_TOKEN}/{__version__}"
    summary = _export(db_path, lambda archive: write_export(archive, target, site=site_name, software=software))
    click.echo(f"{target}: {summary.resources} pages ({summary.body_bytes:,} bytes) and "
               f"{summary.revisits} revisits of a page's same bytes")


@main.command("import-text")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False), help="The archive (SQLite file).")
@click.option("--site", "site_name", default="text", show_default=True, help="The site's name in the archive.")
@click.option("--url", type=HTTP_URL, help="The page's original URL (gives the thread id and page number).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="A site config (TOML) whose noise rules apply.")
def import_text(file, db_path, site_name, url, config_path) -> None:
    """Import a text rendering of a Discuz thread page (as a browser copies it)."""
    from scraper.textimport import import_text_file
    from storage.archive import Archive

    with Archive(db_path) as archive:
        try:
            result = import_text_file(archive, Path(file), site_name=site_name, url=url, config_path=config_path)
        except ArchiverError as exc:
            _fail(f"{file}: {exc}")
    click.echo(f"{result.posts} posts ({result.new_posts} new, {result.new_versions} new versions) "
               f"from {file}: {result.title}")


@main.group()
def phrases() -> None:
    """Watermark phrases learned from a site's posts: propose, then confirm or reject."""


def _site_id(archive, site_name: str) -> int:
    site = archive.get_site(site_name)
    if site is None:
        _fail(f"no site named {site_name!r} in the archive")
    return site["id"]


@phrases.command("propose")
@click.option("--db", "db_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--site", "site_name", required=True, help="The site's name in the archive.")
@click.option("--min-posts", default=config.LEARNED_PHRASE_MIN_POSTS, show_default=True, type=click.IntRange(2))
def phrases_propose(db_path, site_name, min_posts) -> None:
    """Find phrases that recur across many posts at varying places, and record them as proposals."""
    from scraper.phrases import propose
    from storage.archive import Archive

    with Archive(db_path) as archive:
        found = propose(archive, _site_id(archive, site_name), min_posts=min_posts)
    for phrase, count in found:
        click.echo(f"{count:6d}  {phrase}")
    click.echo(f"{len(found)} phrases proposed; confirm one with: forum-archiver phrases confirm --db {db_path} "
               f"--site {site_name} PHRASE")


@phrases.command("list")
@click.option("--db", "db_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--site", "site_name", required=True)
def phrases_list(db_path, site_name) -> None:
    """List the site's phrases with their status."""
    from scraper.phrases import listing
    from storage.archive import Archive

    with Archive(db_path, readonly=True) as archive:
        for phrase, count, status in listing(archive, _site_id(archive, site_name)):
            click.echo(f"{status:9s} {count:6d}  {phrase}")


@phrases.command("confirm")
@click.option("--db", "db_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--site", "site_name", required=True)
@click.option("--reject", is_flag=True, help="Reject the phrase instead: it is real content.")
@click.argument("phrase")
def phrases_confirm(db_path, site_name, reject, phrase) -> None:
    """Confirm PHRASE as a watermark (removed from pages parsed from now on), or --reject it."""
    from storage.archive import Archive

    with Archive(db_path) as archive:
        if not archive.set_phrase_status(_site_id(archive, site_name), phrase, "rejected" if reject else "confirmed"):
            _fail(f"{phrase!r} is not a proposed phrase of {site_name}; see `forum-archiver phrases list`")
    click.echo(f"{'rejected' if reject else 'confirmed'}: {phrase}")


@main.command()
@click.option("--db", "db_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=config.DEMO_DATASETTE_PORT, show_default=True, type=int)
@click.option("--immutable", is_flag=True, help="Serve a snapshot that nothing writes to (faster, cacheable).")
def serve(db_path, host, port, immutable) -> None:
    """Serve the archive read-only with Datasette."""
    from scraper.publish import datasette_command, run_datasette
    from storage.db import open_db

    open_db(db_path, readonly=True).close()  # an old or foreign file is named here, not by 400s in the browser
    sys.exit(run_datasette(datasette_command(db_path, host=host, port=port, immutable=immutable)))


@main.command("demo-forum")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=config.DEMO_PORT, show_default=True, type=int)
def demo_forum(host, port) -> None:
    """Run the local demo forum (Discuz! X3.4-style pages built from seeds/)."""
    from scraper.demo.server import serve_forever

    click.echo(f"demo forum on http://{host}:{port}/")
    serve_forever(host, port)


@main.command()
@click.option("--db", "db_path", default="data/demo.db", show_default=True, type=click.Path(dir_okay=False))
@click.option("--port", default=config.DEMO_DATASETTE_PORT, show_default=True, type=int,
              help="Datasette's port.")
@click.option("--forum-port", default=0, type=int, help="The demo forum's port (default: any free port).")
@click.option("--no-serve", is_flag=True, help="Crawl the demo forum, then exit without serving.")
def demo(db_path, port, forum_port, no_serve) -> None:
    """Start the demo forum, crawl it into an archive, then serve the archive."""
    from scraper.demo_run import run_demo

    try:
        run_demo(Path(db_path), datasette_port=port, forum_port=forum_port, serve=not no_serve, echo=click.echo)
    except ConfigError as exc:
        _fail(str(exc))


if __name__ == "__main__":  # pragma: no cover
    main()
