"""`forum-archiver status`, and the daemon stopping cleanly on SIGTERM/SIGINT."""

import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from scraper.cli import main
from scraper.status import site_status
from storage.archive import Archive
from tests.test_crawl_demo import DEMO_CONFIG, REPO


def demo_config(tmp_path, base_url):
    path = tmp_path / "demo.toml"
    path.write_text(DEMO_CONFIG.read_text(encoding="utf-8").replace("http://127.0.0.1:8765/", base_url),
                    encoding="utf-8")
    return path


def test_status_shows_sites_queue_runs_failures_and_next_due(demo_forum, tmp_path):
    db = tmp_path / "a.db"
    tid = min(demo_forum.forum.threads)
    demo_forum.inject(f"/thread-{tid}-1-1.html", 404, times=10)
    args = ["run", "--db", str(db), "--config", str(demo_config(tmp_path, demo_forum.base_url)), "--delay", "0",
            "--allow-private", "--once"]
    assert CliRunner().invoke(main, args).exit_code == 0
    with Archive(db, readonly=True) as archive:
        [site] = site_status(archive)
        stored_posts = archive.db.execute("select count(*) from posts").fetchone()[0]
    assert site.name == "demo" and site.posts == stored_posts > 0
    assert site.queue["failed"] == 1 and site.failures == {"http_404": 1}
    assert site.queue["pending"] == site.queue["leased"] == 0
    refresh, discover = site.runs  # newest first
    assert [discover["job"], refresh["job"]] == ["discover", "refresh"]
    assert {discover["status"], refresh["status"]} == {"finished"}
    assert discover["failures_by_reason"] == {"http_404": 1}, "the thread the boards list is fetched by discovery"
    assert site.next_due and site.next_due[0]["next_due_at"] is not None

    result = CliRunner().invoke(main, ["status", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "site demo" in result.output and "failed 1" in result.output and "http_404 1" in result.output
    assert f"run {discover['id']} discover finished" in result.output and "next due" in result.output
    # Fewer pages than hourly runs in 30 days: one a run, so the round is as many hours as pages.
    pages = site.verify.thread_pages
    assert 1 <= pages < 720 and site.verify.pages_per_run == 1 and site.verify.round_s == 86400 * max(1, pages / 24)
    assert f"verify: 1 of {pages} thread pages a run (every 3600 s)" in result.output


def test_status_says_why_a_site_was_not_fetched(demo_forum, tmp_path):
    # A forum whose robots.txt asks more than a minute between requests gets nothing fetched
    # but robots.txt: the operator learns why from status, not only from a log line long gone.
    demo_forum.inject("/robots.txt", 200, body=b"User-agent: *\nCrawl-delay: 600\n", content_type="text/plain")
    db = tmp_path / "a.db"
    args = ["crawl", f"{demo_forum.base_url}forum-1-1.html", f"{demo_forum.base_url}forum-2-1.html", "--db", str(db),
            "--config", str(demo_config(tmp_path, demo_forum.base_url)), "--allow-private"]
    assert CliRunner().invoke(main, args).exit_code == 0
    with Archive(db, readonly=True) as archive:
        [site] = site_status(archive)
    assert site.skipped == {"crawl_delay_over_limit": 2} and site.failures == {}
    result = CliRunner().invoke(main, ["status", "--db", str(db)])
    assert "  skipped URLs by reason: crawl_delay_over_limit 2" in result.output.splitlines()


def test_status_of_an_empty_archive_says_so(tmp_path):
    Archive(tmp_path / "a.db").close()
    result = CliRunner().invoke(main, ["status", "--db", str(tmp_path / "a.db")])
    assert result.exit_code == 0 and "no sites" in result.output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_page_in_hand_and_stops_within_seconds(demo_forum, tmp_path, signum):
    db = tmp_path / "a.db"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "scraper.cli", "run", "--db", str(db), "--config",
         str(demo_config(tmp_path, demo_forum.base_url)), "--delay", "0.2", "--allow-private"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while len(demo_forum.requests) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(demo_forum.requests) >= 8, "the daemon started crawling"
        daemon.send_signal(signum)
        sent = time.monotonic()
        rc = daemon.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert rc == 0, daemon.stderr.read()
    assert took < 5
    db_conn = sqlite3.connect(db)
    runs = db_conn.execute("select job, status from runs").fetchall()
    leased = db_conn.execute("select count(*) from frontier where state = 'leased'").fetchone()[0]
    fetches = db_conn.execute("select count(*) from fetches").fetchone()[0]
    db_conn.close()
    assert runs == [("discover", "interrupted")], "discovery runs first; the refresh never started"
    assert leased == 0, "the page in hand was finished, not left leased"
    gets = [r for r in demo_forum.requests if r.method == "GET"]
    assert fetches == len(gets), "every request the forum answered is recorded"


def test_status_says_when_the_verify_budget_is_short_of_the_cycle(tmp_path):
    from tests.test_storage_support import make_page, make_post

    config = {"name": "s", "engine": "discuz", "base_url": "http://bbs.example.cn/", "boards": [1],
              "schedule": {"every_s": 3600, "verify_cycle_s": 4 * 3600, "verify_budget_requests": 2}}
    with Archive(tmp_path / "a.db") as archive:
        site = archive.upsert_site("s", engine="discuz", config=config)
        for tid in range(1, 13):
            url = f"http://bbs.example.cn/thread-{tid}-1-1.html"
            archive.save_thread_page(site, make_page(tid, [make_post(tid, 1, f"第{tid}帖")]), url=url, url_key=url)
    result = CliRunner().invoke(main, ["status", "--db", str(tmp_path / "a.db")])
    # 12 pages in a 4-hour cycle ask 3 a run; the budget allows 2, and no page is verified again
    # within the minimum age of a day.
    assert ("verify: 2 of 12 thread pages a run (every 3600 s), each page about every 24.0 hours; "
            "a cycle of 4.0 hours asks 3 a run, more than the budget of 2") in result.output, result.output


def test_each_job_run_says_what_it_did_in_the_log_without_verbose(demo_forum, tmp_path):
    # As under systemd or cron: output that is not a terminal, no -v. Per-page lines stay out.
    db = tmp_path / "a.db"
    done = subprocess.run(
        [sys.executable, "-m", "scraper.cli", "run", "--db", str(db), "--config",
         str(demo_config(tmp_path, demo_forum.base_url)), "--delay", "0", "--allow-private", "--once"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split("demo ", 1)[1].split(":")[0] for line in lines if "INFO scraper.schedule: demo " in line] == [
        "discover", "refresh"]
    assert not any("forum_archiver.progress" in line for line in lines)


def test_run_closes_the_dead_runs_of_sites_no_longer_configured(demo_forum, tmp_path):
    # A site dropped from the config has no job that would close what its killed process left
    # 'running'; a site whose host another process is crawling now keeps its live run.
    from scraper.schedule import HostLock

    db = tmp_path / "a.db"
    with Archive(db) as archive:
        for name, host in (("dropped", "127.0.0.9"), ("busy", "127.0.0.10")):
            site_id = archive.upsert_site(name, engine="discuz", base_url=f"http://{host}/")
            archive.start_run(site_id, "crawl")
    crawling = HostLock(db, "127.0.0.10")
    assert crawling.try_acquire()
    try:
        result = CliRunner().invoke(main, ["run", "--db", str(db), "--config", str(demo_config(tmp_path, demo_forum.base_url)),
                                           "--delay", "0", "--allow-private", "--once"])
    finally:
        crawling.release()
    assert result.exit_code == 0, result.output
    with Archive(db, readonly=True) as archive:
        runs = dict(archive.db.execute("select sites.name, runs.status from runs join sites on sites.id = runs.site_id "
                                       "where sites.name in ('dropped', 'busy')").fetchall())
    assert runs == {"dropped": "abandoned", "busy": "running"}
