"""Many sites at once: forums on different hosts are crawled together, each host still paced."""

import ast
import asyncio
import inspect
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from click.testing import CliRunner

from scraper import config, crawl, schedule
from scraper.cli import main
from scraper.crawl import CrawlOptions, crawl_sites
from scraper.demo.server import start
from scraper.errors import ConfigError
from scraper.schedule import RunOptions
from scraper.sites import Site, site_from_dict
from storage.archive import Archive
from tests.test_crawl_demo import DEMO_CONFIG, demo_site

DELAY_S = 0.1  # long beside a loopback request, so a wait for the other host would show


def named_site(name, base_url):
    return site_from_dict(dict(demo_site(base_url).raw, name=name))


def board_seeds(site):
    return [f"{site.base_url}forum-{fid}-1.html" for fid in site.boards]


def timed_crawl(db, sites, hosts):
    options = CrawlOptions(delay_s=DELAY_S, allow_private_hosts=frozenset(hosts))
    started = time.monotonic()
    with Archive(db) as archive:
        reports = asyncio.run(crawl_sites(archive, [(site, board_seeds(site)) for site in sites], options))
        posts = dict(archive.db.execute(
            "select sites.name, count(*) from posts join threads on threads.id = posts.thread_id "
            "join sites on sites.id = threads.site_id group by sites.name").fetchall())
    return time.monotonic() - started, reports, posts


def arrival_gaps(requests):
    return [later.at - earlier.at for earlier, later in zip(requests, requests[1:])]


def test_two_forums_on_two_hosts_take_about_the_time_of_one(tmp_path):
    with start("127.0.0.2", 0) as first, start("127.0.0.3", 0) as second:
        site_a, site_b = named_site("forum-a", first.base_url), named_site("forum-b", second.base_url)
        alone, [report], posts_alone = timed_crawl(tmp_path / "alone.db", [site_a], {"127.0.0.2"})
        first.requests.clear()
        together, reports, posts = timed_crawl(tmp_path / "both.db", [site_a, site_b], {"127.0.0.2", "127.0.0.3"})
        logs = [list(first.requests), list(second.requests)]
    assert not report.failures and all(not r.failures for r in reports)
    assert posts == {"forum-a": posts_alone["forum-a"], "forum-b": posts_alone["forum-a"]}
    # Pacing alone makes one forum take this long; one after another, two would take twice it.
    assert alone >= (report.requests - 1) * DELAY_S
    # Together, each host is asked while the other is: most of the second host's
    # requests arrive between the first host's first and last (one after another, none would).
    first_span = (logs[0][0].at, logs[0][-1].at)
    overlapping = sum(first_span[0] < r.at < first_span[1] for r in logs[1])
    assert overlapping >= len(logs[1]) // 2, (overlapping, len(logs[1]))
    # The wall clock says the same, loosely: a busy machine can stretch one crawl and not the other.
    assert together < 1.75 * alone, (alone, together)
    for log in logs:
        assert len(log) == report.requests
        assert min(arrival_gaps(log)) >= DELAY_S, "a host's gap was undercut"


def test_sites_sharing_a_host_are_crawled_one_after_the_other(tmp_path):
    # Two ports of one address are one host to the pacer: never two requests in flight there.
    with start("127.0.0.2", 0) as first, start("127.0.0.2", 0) as second:
        sites = [named_site("port-a", first.base_url), named_site("port-b", second.base_url)]
        _, reports, posts = timed_crawl(tmp_path / "a.db", sites, {"127.0.0.2"})
        arrivals = sorted(list(first.requests) + list(second.requests), key=lambda r: r.at)
        first_done = max(r.at for r in first.requests)
    assert set(posts) == {"port-a", "port-b"} and all(not r.failures for r in reports)
    assert all(r.at > first_done for r in second.requests), "the second site waits for the first"
    # One host: its gap holds across the two sites, from the first site's last request to the second's first.
    assert min(arrival_gaps(arrivals)) >= DELAY_S, "the host's gap was undercut between the sites"
    assert len(arrivals) == sum(r.requests for r in reports)


def test_one_site_failing_does_not_cost_the_others_their_crawl(tmp_path, demo_forum):
    good = named_site("good", demo_forum.base_url)
    # Built without validation, as a library caller could: its crawl cannot even start.
    broken = Site(name="broken", engine="vbulletin", base_url="http://127.0.0.9/")
    with Archive(tmp_path / "a.db") as archive:
        with pytest.raises(ExceptionGroup) as info:
            asyncio.run(crawl_sites(archive, [(good, board_seeds(good)), (broken, ["http://127.0.0.9/x"])],
                                    CrawlOptions(delay_s=0, allow_private_hosts=frozenset({"127.0.0.1"}))))
        posts = archive.db.execute("select count(*) from posts").fetchone()[0]
        runs = archive.db.execute("select job, status, new_posts from runs").fetchall()
    [error] = info.value.exceptions
    assert isinstance(error, ConfigError) and "vbulletin" in str(error)
    assert runs == [("crawl", "finished", posts)] and posts > 0


def run_once_args(db, tmp_path, servers):
    args = ["run", "--db", str(db), "--delay", "0", "--allow-private", "--once"]
    for name, server in servers:
        path = tmp_path / f"{name}.toml"
        path.write_text(DEMO_CONFIG.read_text(encoding="utf-8").replace(
            "http://127.0.0.1:8765/", server.base_url).replace('name = "demo"', f'name = "{name}"'),
            encoding="utf-8")
        args += ["--config", str(path)]
    return args


def test_run_once_crawls_every_configured_site(tmp_path):
    db = tmp_path / "a.db"
    with start("127.0.0.2", 0) as first, start("127.0.0.3", 0) as second:
        result = CliRunner().invoke(main, run_once_args(db, tmp_path, [("forum-a", first), ("forum-b", second)]))
    assert result.exit_code == 0, result.output
    with Archive(db, readonly=True) as archive:
        runs = archive.db.execute("select sites.name, job, status from runs join sites on sites.id = runs.site_id "
                                  "order by sites.name, runs.id").fetchall()
    assert runs == [(name, job, "finished") for name in ("forum-a", "forum-b") for job in schedule.JOBS]


def test_run_once_names_a_failed_site_in_one_line_and_keeps_the_others(tmp_path):
    # The archive refuses forum-b's writes (a real SQLite error, as from a failing disk): its
    # crawl stops, forum-a's does not, and the command ends with one line, not a traceback.
    db = tmp_path / "a.db"
    with start("127.0.0.2", 0) as first, start("127.0.0.3", 0) as second:
        args = run_once_args(db, tmp_path, [("forum-a", first), ("forum-b", second)])
        with Archive(db) as archive:
            archive.db.execute("""CREATE TRIGGER refuse_b BEFORE INSERT ON fetches
                WHEN NEW.url LIKE 'http://127.0.0.3:%' BEGIN SELECT RAISE(ABORT, 'disk trouble'); END""")
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "2 of 4 site crawls failed" in result.output
    assert "forum-b discover: IntegrityError: disk trouble; forum-b refresh: IntegrityError" in result.output
    with Archive(db, readonly=True) as archive:
        runs = archive.db.execute("select sites.name, job, status from runs join sites on sites.id = runs.site_id "
                                  "order by sites.name, runs.id").fetchall()
    assert [run for run in runs if run[0] == "forum-a"] == [("forum-a", job, "finished") for job in schedule.JOBS]


def test_the_daemon_has_a_worker_per_job_up_to_the_cap():
    assert schedule.executor_workers(0) == 1
    assert schedule.executor_workers(4) == 4
    assert schedule.executor_workers(1000) == config.DAEMON_MAX_WORKERS


def test_no_archive_transaction_in_the_crawler_spans_an_await():
    # crawl_sites shares one connection among concurrent crawls: that is safe only while every
    # transaction opens and commits between two awaits, so no other crawl can write inside it.
    tree = ast.parse(Path(crawl.__file__).read_text(encoding="utf-8"))
    transactions = [node for node in ast.walk(tree) if isinstance(node, (ast.With, ast.AsyncWith))
                    and any(isinstance(item.context_expr, ast.Call)
                            and getattr(item.context_expr.func, "attr", None) == "transaction"
                            for item in node.items)]
    assert len(transactions) >= 5, "the check found the crawler's transactions"
    for node in transactions:
        awaits = [n for n in ast.walk(node) if isinstance(n, (ast.Await, ast.AsyncWith, ast.AsyncFor))]
        assert not awaits and isinstance(node, ast.With), f"line {node.lineno}: a transaction spans an await"
    assert not any(inspect.iscoroutinefunction(method) for _, method in inspect.getmembers(Archive))


SITES_AT_ONCE = 12


def test_the_scheduled_jobs_of_many_sites_at_once_all_finish(tmp_path):
    """The daemon runs each site's job in a thread of its own, each with its own archive
    connection: no job may hold the write lock across its fetches and gaps, or the others
    wait past the busy timeout and fail with "database is locked"."""
    db = tmp_path / "a.db"
    Archive(db).close()  # the schema, before the jobs race to create it
    options = RunOptions(delay_s=0.3, allow_private=True)
    with ExitStack() as stack:
        forums = [stack.enter_context(start(f"127.0.0.{n + 2}", 0)) for n in range(SITES_AT_ONCE)]
        sites = [named_site(f"forum-{n}", forum.base_url) for n, forum in enumerate(forums)]
        scheduler = schedule.build_scheduler(tmp_path / "jobs.db", max_workers=SITES_AT_ONCE)
        ended = []  # one entry per job run that returned or raised
        scheduler.add_listener(ended.append, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.start(paused=True)
        now = datetime.now(timezone.utc)
        for site in sites:
            discover = schedule.site_jobs(db, site, options)[0]
            schedule.add_job(scheduler, discover, next_run_time=now)
        scheduler.resume()
        try:
            deadline = time.monotonic() + 120
            while len(ended) < SITES_AT_ONCE and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            scheduler.shutdown(wait=True)
    assert [event.exception for event in ended] == [None] * SITES_AT_ONCE
    with Archive(db, readonly=True) as archive:
        runs = archive.db.execute("select sites.name, runs.status, runs.failures_json from runs "
                                  "join sites on sites.id = runs.site_id order by sites.name").fetchall()
        posts = dict(archive.db.execute(
            "select sites.name, count(*) from posts join threads on threads.id = posts.thread_id "
            "join sites on sites.id = threads.site_id group by sites.name").fetchall())
    assert sorted(runs) == sorted((site.name, "finished", "{}") for site in sites)
    assert len(set(posts.values())) == 1 and set(posts) == {site.name for site in sites}
