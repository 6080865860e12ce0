"""The daemon's scheduler: persistent jobs, coalesced late runs, one instance per site, `run --once`."""

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from scraper import config, schedule
from scraper.cli import main
from scraper.schedule import JobSpec, add_job, build_scheduler
from storage.archive import Archive
from tests.test_crawl_demo import DEMO_CONFIG

RECORDER = f"{__name__}:record_run"


def record_run(log_path: str, hold_s: str) -> None:
    """A job that logs its start and end (monotonic seconds) and holds for `hold_s`."""
    with open(log_path, "a") as log:
        log.write(f"start {time.monotonic()}\n")
    time.sleep(float(hold_s))
    with open(log_path, "a") as log:
        log.write(f"end {time.monotonic()}\n")


def runs_of(log_path: Path) -> list[tuple[float, float]]:
    lines = log_path.read_text().split() if log_path.exists() else []
    marks = list(zip(lines[::2], map(float, lines[1::2])))
    starts = [t for kind, t in marks if kind == "start"]
    ends = [t for kind, t in marks if kind == "end"]
    return list(zip(starts, ends))


def wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_jobs_survive_a_restart_and_re_registering_replaces_them(tmp_path):
    jobs = tmp_path / "a.db.jobs.db"
    spec = JobSpec("refresh:demo", RECORDER, (str(tmp_path / "log"), "0"), every_s=3600)
    first = build_scheduler(jobs)
    first.start(paused=True)
    add_job(first, spec)
    due = first.get_job("refresh:demo").next_run_time
    first.shutdown()

    second = build_scheduler(jobs)
    second.start(paused=True)
    try:
        [job] = second.get_jobs()
        assert (job.id, job.args, job.next_run_time) == ("refresh:demo", spec.args, due)
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
        add_job(second, spec)  # every start registers its sites again
        assert [j.id for j in second.get_jobs()] == ["refresh:demo"]
    finally:
        second.shutdown()


def test_a_late_job_runs_once_and_a_job_past_its_grace_waits(tmp_path):
    jobs, late_log, stale_log = tmp_path / "j.db", tmp_path / "late", tmp_path / "stale"
    now = datetime.now(timezone.utc)
    scheduler = build_scheduler(jobs, max_workers=2)
    scheduler.start(paused=True)
    # Missed ten runs (every 60 s, first due 10 minutes ago) but within its grace: coalesced to one.
    add_job(scheduler, JobSpec("late", RECORDER, (str(late_log), "0"), every_s=60), misfire_grace_s=3600,
            next_run_time=now - timedelta(minutes=10))
    add_job(scheduler, JobSpec("stale", RECORDER, (str(stale_log), "0"), every_s=3600), misfire_grace_s=60,
            next_run_time=now - timedelta(minutes=10))
    scheduler.resume()
    try:
        wait_for(lambda: len(runs_of(late_log)) >= 1)
        time.sleep(1.0)  # room for a wrong second run to show up
        assert len(runs_of(late_log)) == 1
        assert runs_of(stale_log) == []
        assert scheduler.get_job("late").next_run_time > now
        assert scheduler.get_job("stale").next_run_time > now
    finally:
        scheduler.shutdown()


def test_a_job_hours_late_still_runs_once(tmp_path):
    # As after the machine slept, or a job queued behind long first crawls for a worker: with
    # a grace it would be dropped, run after run.
    log = tmp_path / "log"
    now = datetime.now(timezone.utc)
    scheduler = build_scheduler(tmp_path / "j.db", max_workers=1)
    scheduler.start(paused=True)
    add_job(scheduler, JobSpec("refresh:late", RECORDER, (str(log), "0"), every_s=3600),
            next_run_time=now - timedelta(hours=5, minutes=30))  # its latest missed time: 30 min ago
    scheduler.resume()
    try:
        wait_for(lambda: len(runs_of(log)) >= 1)
        time.sleep(1.0)  # room for a wrong second run to show up
        assert len(runs_of(log)) == 1
        assert scheduler.get_job("refresh:late").next_run_time > now
    finally:
        scheduler.shutdown()


def test_one_sites_job_never_runs_twice_at_once(tmp_path):
    log = tmp_path / "log"
    scheduler = build_scheduler(tmp_path / "j.db", max_workers=4)
    scheduler.start(paused=True)
    # Fires every second but takes 1.5 s: without max_instances=1 the runs would overlap.
    add_job(scheduler, JobSpec("refresh:slow", RECORDER, (str(log), "1.5"), every_s=1),
            next_run_time=datetime.now(timezone.utc))
    scheduler.resume()
    try:
        wait_for(lambda: len(runs_of(log)) >= 2, timeout_s=8)
    finally:
        scheduler.shutdown(wait=True)
    runs = runs_of(log)
    assert len(runs) >= 2
    for (_, end), (next_start, _) in zip(runs, runs[1:]):
        assert next_start >= end, runs


@pytest.mark.parametrize("left_by", ["the version before", "touch"])
def test_run_upgrades_an_older_archive_instead_of_refusing_to_start(demo_forum, tmp_path, left_by):
    # After an upgrade of the software the daemon must keep archiving: its site check opened
    # the archive read-only, which refuses an older schema (and an empty file made in advance).
    import sqlite_utils

    from storage.schema import MIGRATIONS, SCHEMA_VERSION, ensure_schema

    db = tmp_path / "a.db"
    if left_by == "touch":
        db.touch()
    else:
        ensure_schema(sqlite_utils.Database(db), MIGRATIONS[:-1])
    site_config = tmp_path / "demo.toml"
    site_config.write_text(DEMO_CONFIG.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:8765/", demo_forum.base_url), encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "--db", str(db), "--config", str(site_config), "--delay", "0",
                                       "--allow-private", "--once"])
    assert result.exit_code == 0, result.output
    with Archive(db, readonly=True) as archive:
        assert archive.db.execute("select max(version) from schema_version").fetchone()[0] == SCHEMA_VERSION
        assert archive.db.execute("select count(*) from posts").fetchone()[0] > 0


def test_run_once_crawls_each_site_once_and_exits(demo_forum, tmp_path):
    db = tmp_path / "a.db"
    site_config = tmp_path / "demo.toml"
    site_config.write_text(DEMO_CONFIG.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:8765/", demo_forum.base_url), encoding="utf-8")
    args = ["run", "--db", str(db), "--config", str(site_config), "--delay", "0", "--allow-private", "--once"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    board_requests = len(demo_forum.requests)
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    recrawl = [r.path for r in demo_forum.requests[board_requests:]]
    with Archive(db, readonly=True) as archive:
        runs = archive.db.execute("select job, status, new_posts from runs order by id").fetchall()
        posts = archive.db.execute("select count(*) from posts").fetchone()[0]
    assert [r[:2] for r in runs] == [("discover", "finished"), ("refresh", "finished")] * 2
    assert runs[0][2] == posts > 0 and runs[1][2] == runs[2][2] == runs[3][2] == 0
    boards = [p for p in recrawl if p.startswith("/forum-")]
    assert boards and len(recrawl) - len(boards) <= config.VERIFY_BUDGET_REQUESTS, "boards, then the verify pass"
    assert not schedule.jobs_path_for(db).exists(), "--once schedules nothing"
