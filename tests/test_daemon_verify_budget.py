"""The verify pass: each run re-reads its share of the site's thread pages so that every page comes
round once a verify cycle (pages x run interval / cycle, rounded up), the least recently verified
first, on pages read at least the minimum age ago, one page per request; the budget (per site in its
config, per command with `run --verify-budget`) caps it."""

import asyncio
import json
import logging
import time
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from scraper import config
from scraper.cli import main
from scraper.crawl import RETRY_WAIT_MAX_S, CrawlOptions, Crawler, verify_cycle_achieved_s, verify_pages_per_run
from scraper.errors import ConfigError
from scraper.schedule import RunOptions, add_job, build_scheduler, crawl_options, jobs_path_for, site_jobs
from scraper.sites import load_site, site_from_dict
from storage.archive import Archive
from tests.test_crawl_demo import demo_site
from tests.test_daemon_status import demo_config
from tests.test_incremental import LOCAL, Clock, gets_since, run


def run_once(db, config_path, *extra):
    result = CliRunner().invoke(main, ["run", "--db", str(db), "--config", str(config_path), "--delay", "0",
                                       "--allow-private", "--once", *extra])
    assert result.exit_code == 0, result.output


def with_budget(config_path, budget, min_age_s=None, cycle_s=3600):
    # The default cycle, the demo's every_s: every page is due each run, so the budget decides.
    settings = f"verify_budget_requests = {budget}\nverify_cycle_s = {cycle_s}\n"
    if min_age_s is not None:
        settings += f"verify_min_age_s = {min_age_s}\n"
    text = config_path.read_text(encoding="utf-8").replace("[schedule]\n", f"[schedule]\n{settings}")
    config_path.write_text(text, encoding="utf-8")
    return config_path


@pytest.mark.parametrize(("site_budget", "flag", "expected"), [(3, (), 3), (3, ("--verify-budget", "5"), 5),
                                                                 (3, ("--verify-budget", "0"), 0)])
def test_an_unchanged_forum_costs_its_boards_and_guide_plus_exactly_the_verify_budget(demo_forum, tmp_path, site_budget,
                                                                             flag, expected):
    db = tmp_path / "a.db"
    # No minimum age: the pages the second run verifies were read a second before it.
    config_path = with_budget(demo_config(tmp_path, demo_forum.base_url), site_budget, min_age_s=0)
    run_once(db, config_path, "--verify-budget", "0")
    time.sleep(1.05)  # times are stored to the second: pages read in the same second count as just verified
    mark = len(demo_forum.requests)
    run_once(db, config_path, *flag)
    paths = [r.path for r in demo_forum.requests[mark:]]
    boards = [p for p in paths if p.startswith("/forum-")]
    guide = [p for p in paths if "mod=guide" in p]
    verified = [p for p in paths if p.startswith("/thread-")]
    assert len(boards) == len(demo_forum.forum.boards) and len(guide) == 1
    assert len(verified) == expected and len(set(verified)) == expected
    assert len(paths) == len(boards) + len(guide) + expected, paths


def test_pages_read_less_than_the_minimum_age_ago_are_not_verified(demo_forum, tmp_path):
    db = tmp_path / "a.db"
    config_path = with_budget(demo_config(tmp_path, demo_forum.base_url), 3)  # the default age: a day
    run_once(db, config_path, "--verify-budget", "0")
    time.sleep(1.05)
    mark = len(demo_forum.requests)
    run_once(db, config_path)
    paths = [r.path for r in demo_forum.requests[mark:]]
    assert paths and not [p for p in paths if p.startswith("/thread-")], paths


MIN_AGE_S = 3600  # less than robots.txt is cached for, so the pass spends its budget on pages alone
RUN_INTERVAL_S = 3600


def verify_only(archive, site, clock, budget, **options):
    """A run that only verifies: no boards, no due threads. By default the cycle is one run, so
    every page is due each run and the budget decides how many are read."""
    options = CrawlOptions(**{"delay_s": 0, "allow_private_hosts": LOCAL, "incremental": True,
                              "revisit_due_threads": False, "verify_budget_requests": budget,
                              "verify_min_age_s": MIN_AGE_S, "run_interval_s": RUN_INTERVAL_S,
                              "verify_cycle_s": RUN_INTERVAL_S, **options})
    return asyncio.run(Crawler(archive, site, options=options, now=clock).run([], job="refresh"))


def test_the_verify_pass_waits_for_the_minimum_age_then_spends_exactly_its_budget(demo_forum, tmp_path):
    clock = Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock)
        clock.advance(seconds=MIN_AGE_S)  # read exactly the minimum age ago: not yet
        mark = len(demo_forum.requests)
        assert verify_only(archive, site, clock, 3).requests == 0
        clock.advance(seconds=1)
        report = verify_only(archive, site, clock, 3)
        verified = gets_since(demo_forum, mark)
    assert report.requests == len(verified) == len(set(verified)) == 3
    assert all(p.startswith("/thread-") for p in verified)


def next_page(key):
    kind, tid, page = key.split(":")
    return f"{kind}:{tid}:{int(page) + 1}"


def path_of(key):
    _, tid, page = key.split(":")
    return f"/thread-{tid}-{page}-1.html"


def test_a_verify_re_read_queues_no_further_page_and_nothing_outlives_the_budget(demo_forum, tmp_path):
    clock = Clock()
    quiet = {"revisit_min_s": 30 * 86400, "revisit_max_s": 30 * 86400}  # no thread comes due meanwhile
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock, **quiet)
        clock.advance(seconds=MIN_AGE_S + 1)
        site_id = archive.get_site(site.name)["id"]
        chosen = [p["url_key"] for p in archive.least_recently_verified_pages(site_id, clock(), 5)]
        archived = {key for (key,) in archive.db.execute("select url_key from pages where kind = 'thread'")}
        leads_on = [key for key in chosen if next_page(key) in archived and next_page(key) not in chosen]
        assert leads_on, "the pass re-reads a page whose thread has a page after it the pass does not re-read"
        # Another answers 500: its retry is set for after the pass (a backoff longer than a run waits).
        failing = next(key for key in chosen if key not in leads_on)
        demo_forum.inject(path_of(failing), 500)
        mark = len(demo_forum.requests)
        report = verify_only(archive, site, clock, 5, backoff_base_s=RETRY_WAIT_MAX_S + 60)
        verified = gets_since(demo_forum, mark)
        left = archive.db.execute("select url_key, state, reason from frontier where url_key in "
                                  "(select value from json_each(?))", [json.dumps(chosen)]).fetchall()
        pending = archive.frontier_counts(site_id)["pending"]
        mark = len(demo_forum.requests)
        clock.advance(minutes=5)
        run(archive, site, clock, **quiet)  # the next discovery: it must not fetch what the pass left
        next_run = gets_since(demo_forum, mark)
    assert sorted(verified) == sorted(path_of(key) for key in chosen), "each chosen page once, and no other"
    assert report.requests == 5 and report.skipped == {"verify_budget": 1}
    assert pending == 0
    assert sorted(left) == sorted((key, "skipped", "verify_budget") if key == failing else (key, "done", None)
                                  for key in chosen)
    assert next_run and all(p.startswith("/forum-") for p in next_run), next_run


def test_the_default_budget_and_minimum_age_live_in_config():
    site = site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/"})
    assert site.verify_budget_requests == config.VERIFY_BUDGET_REQUESTS
    assert site.verify_min_age_s == config.VERIFY_MIN_AGE_S
    assert crawl_options(site, RunOptions(), "refresh").verify_min_age_s == config.VERIFY_MIN_AGE_S
    site = site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/", "schedule": {"verify_min_age_s": 600}})
    assert crawl_options(site, RunOptions(), "refresh").verify_min_age_s == 600


def test_the_default_verify_cycle_lives_in_config_and_a_site_may_set_its_own():
    site = site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/"})
    assert site.verify_cycle_s == config.VERIFY_CYCLE_S
    site = site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/", "schedule": {"verify_cycle_s": 7 * 86400}})
    assert site.verify_cycle_s == 7 * 86400


@pytest.mark.parametrize("bad", [-1, 0, 59, "3", True, [86400]])
def test_a_bad_verify_cycle_names_the_key(bad):
    with pytest.raises(ConfigError, match=r"schedule\.verify_cycle_s.*seconds >= 60"):
        site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/", "schedule": {"verify_cycle_s": bad}})


def test_an_unknown_schedule_key_names_the_verify_cycle_among_the_known_ones():
    with pytest.raises(ConfigError, match="verify_cycle_s"):
        site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/", "schedule": {"verify_cycle": 86400}})


@pytest.mark.parametrize("bad", [-1, "3", True])
def test_a_bad_minimum_age_names_the_key(bad):
    with pytest.raises(ConfigError, match="schedule.verify_min_age_s.*seconds >= 0"):
        site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/", "schedule": {"verify_min_age_s": bad}})


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_a_bad_budget_names_the_key(bad):
    with pytest.raises(ConfigError, match="schedule.verify_budget_requests.*integer >= 0"):
        site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/", "schedule": {"verify_budget_requests": bad}})


def test_an_unknown_schedule_key_is_refused():
    with pytest.raises(ConfigError, match="schedule.verify_budget"):
        site_from_dict({"name": "x", "base_url": "https://bbs.example.cn/", "schedule": {"verify_budget": 3}})


def test_a_negative_budget_on_the_command_line_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["run", "--db", str(tmp_path / "a.db"), "--site",
                                       "http://127.0.0.1:9/forum-1-1.html", "--once", "--verify-budget", "-1"])
    assert result.exit_code != 0 and "--verify-budget" in result.output


# The demo forum holds 11 thread pages: at a cycle of 4 hours, a run every hour re-reads
# ceil(11 x 1 / 4) = 3 of them, a run every 2 hours ceil(11 x 2 / 4) = 6.
DEMO_THREAD_PAGES = 11
FOUR_HOURS_S = 4 * 3600


def thread_page_count(db):
    with Archive(db, readonly=True) as archive:
        return archive.db.execute("select count(*) from pages where kind = 'thread'").fetchone()[0]


def verified_since(server, mark):
    return [r.path for r in server.requests[mark:] if r.path.startswith("/thread-")]


def test_the_pace_is_the_sites_share_of_a_cycle_rounded_up_and_at_least_one_page():
    cycle_s = config.VERIFY_CYCLE_S
    assert verify_pages_per_run(0, 3600, cycle_s) == 0
    assert verify_pages_per_run(5, 3600, cycle_s) == 1  # a small site: one page a run, not none
    assert verify_pages_per_run(600, 3600, cycle_s) == 1  # 600 x 1 h / 30 days = 0.83
    assert verify_pages_per_run(720, 3600, cycle_s) == 1  # exactly one a run: 720 hourly runs in 30 days
    assert verify_pages_per_run(721, 3600, cycle_s) == 2
    assert verify_pages_per_run(600, 86400, cycle_s) == 20  # a daily cron run of the same site
    assert verify_cycle_achieved_s(600, 3600, 1) == 600 * 3600
    assert verify_cycle_achieved_s(5, 3600, 1, min_age_s=86400) == 86400  # no page sooner than its minimum age


@pytest.mark.parametrize(("flag", "expected"), [((), 3), (("--every", "7200"), 6)])
def test_a_once_run_reads_exactly_its_share_of_the_cycle(demo_forum, tmp_path, flag, expected):
    db = tmp_path / "a.db"
    config_path = with_budget(demo_config(tmp_path, demo_forum.base_url), 20, min_age_s=0, cycle_s=FOUR_HOURS_S)
    run_once(db, config_path, "--verify-budget", "0")
    assert thread_page_count(db) == DEMO_THREAD_PAGES
    time.sleep(1.05)  # times are stored to the second: pages read in the same second count as just verified
    mark = len(demo_forum.requests)
    run_once(db, config_path, *flag)  # the site's every_s (3600), or the cron interval --every names
    verified = verified_since(demo_forum, mark)
    assert len(verified) == len(set(verified)) == expected, verified


def test_a_scheduled_refresh_job_paces_to_its_jobs_interval(demo_forum, tmp_path):
    db = tmp_path / "a.db"
    config_path = with_budget(demo_config(tmp_path, demo_forum.base_url), 20, min_age_s=0, cycle_s=FOUR_HOURS_S)
    run_once(db, config_path, "--verify-budget", "0")
    time.sleep(1.05)
    mark = len(demo_forum.requests)
    site = load_site(config_path)
    [_, refresh] = site_jobs(db, site, RunOptions(delay_s=0, allow_private=True, every_s=7200))
    scheduler = build_scheduler(jobs_path_for(db))
    scheduler.start()
    try:
        add_job(scheduler, refresh, next_run_time=datetime.now(timezone.utc))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and refresh_runs_finished(db) < 2:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert refresh_runs_finished(db) == 2, "the --once refresh, then the scheduled one"
    verified = verified_since(demo_forum, mark)
    assert len(verified) == len(set(verified)) == 6, verified  # ceil(11 x 2 h / 4 h)


def refresh_runs_finished(db):
    with Archive(db, readonly=True) as archive:
        return archive.db.execute("select count(*) from runs where job = 'refresh' and status = 'finished'"
                                  ).fetchone()[0]


def test_the_budget_caps_the_pace_and_the_log_names_the_cycle_the_site_gets(demo_forum, tmp_path, caplog):
    clock = Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock)
        clock.advance(seconds=MIN_AGE_S + 1)
        mark = len(demo_forum.requests)
        with caplog.at_level(logging.WARNING, logger="scraper.crawl"):
            report = verify_only(archive, site, clock, 2, verify_cycle_s=FOUR_HOURS_S)  # the pace asks 3
        verified = gets_since(demo_forum, mark)
    assert report.requests == len(verified) == len(set(verified)) == 2
    # 11 pages at 2 a run, hourly: round in 6 runs, not the 4 hours asked.
    assert "verify budget allows 2" in caplog.text and "about every 6.0 hours instead" in caplog.text


def test_over_one_cycle_of_runs_every_page_is_verified_once_the_least_recently_verified_first(demo_forum, tmp_path):
    demo_forum.forum.add_thread(1, "第十二页", "admin", "一页的主题。")  # 12 pages: 2 a run over a 6-run cycle
    runs_per_cycle, cycle_s = 6, 6 * RUN_INTERVAL_S
    clock = Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock)
        archived = sorted(path_of(key) for (key,) in
                          archive.db.execute("select url_key from pages where kind = 'thread'"))
        assert len(archived) == 12
        clock.advance(seconds=MIN_AGE_S + 1)
        per_run = []
        for _ in range(runs_per_cycle + 1):
            mark = len(demo_forum.requests)
            report = verify_only(archive, site, clock, 20, verify_cycle_s=cycle_s)
            per_run.append(gets_since(demo_forum, mark))
            assert report.requests == 2
            clock.advance(seconds=RUN_INTERVAL_S)
    one_cycle = [path for paths in per_run[:runs_per_cycle] for path in paths]
    assert sorted(one_cycle) == archived, "each page once in a cycle"
    assert sorted(per_run[runs_per_cycle]) == sorted(per_run[0]), "the next cycle starts with the first verified"


def test_a_verify_read_that_failed_leaves_its_page_first_in_line(demo_forum, tmp_path):
    # Counted as verified, a failed re-read would wait a whole verify cycle for its next try.
    clock = Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = site_from_dict(dict(demo_site(demo_forum.base_url).raw, politeness={"delay_s": 0, "max_tries": 1}))
        run(archive, site, clock)
        clock.advance(seconds=MIN_AGE_S + 1)
        mark = len(demo_forum.requests)
        oldest = archive.least_recently_verified_pages(archive.get_site("demo")["id"], clock(), 1)[0]["url"]
        demo_forum.inject(oldest[len(demo_forum.base_url) - 1:], 503)
        failed = verify_only(archive, site, clock, 1)
        clock.advance(seconds=60)
        verify_only(archive, site, clock, 1)
        asked = gets_since(demo_forum, mark)
    assert failed.failures == {"http_503": 1}
    assert asked == [oldest[len(demo_forum.base_url) - 1:]] * 2  # asked again, not passed over
