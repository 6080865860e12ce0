"""Incremental cost: what the daemon's re-crawl of a forum costs the forum, as a fraction of
the first crawl, when nothing changed and when 1% of the threads got a new reply.

The forums (benchmarks.forum_hosts) are served on --hosts loopback addresses by a process of
their own, which counts every request and the body bytes it sent. Each crawl is the daemon's
own pass, `scraper.schedule.run_once` (what `forum-archiver run --once` does): per site, the
discover job reads the boards (page 1 on, up to the first page showing nothing new whose later
pages it has read) and fetches the threads whose board row moved (new threads whole, changed
ones from their last known page), then the refresh job revisits due threads and runs the
verify pass: it re-reads the site's share of its thread pages for the verify cycle,
ceil(thread pages x every_s / VERIFY_CYCLE_S) (1 a run for 600 pages, hourly, 30 days), at most
the verify budget, the pages verified longest ago first, of those read at least the verify
minimum age ago (a day by default). Passes on one archive, seconds apart:

1. the first crawl;
2. a re-crawl of the unchanged forum, as the daemon runs it (its pages are minutes old, so
   the verify pass finds none old enough: it costs nothing);
3. the same as the daemon's next hourly run: every thread's next due time moved one run
   interval back first, as if the run came an hour later (threads come due by then; boards are
   read whole, and pages verified, only once a day, which pass 4 stands in for);
4. the same with the verify pass forced (minimum age 0): what a run costs once pages are a day old
   (the pace, not the pages' age, then sets how many it re-reads);
5. a re-crawl after one new reply in 1% of the threads, as the daemon runs it;
6. a re-crawl after one more reply in those threads, with the verify pass forced.

    .venv/bin/python -m benchmarks.bench_incremental [--hosts 4] [--threads 200] [--changed 0.01]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from itertools import cycle
from pathlib import Path

from benchmarks.archiver_crawl import forum_site
from benchmarks.corpus import command, machine
from benchmarks.forum_hosts import ForumHosts, ForumShape, Served
from scraper import config
from scraper.crawl import verify_pages_per_run
from scraper.schedule import JOBS, RunOptions, run_once
from scraper.sites import site_from_dict

TARGET_UNCHANGED = 0.05  # requests and bytes of an unchanged re-crawl, at most, of the first crawl
TARGET_CHANGED_BASE = 0.01  # with 1% of threads changed: at most this plus the changed pages


def kind_of(record: Served) -> str:
    if record.path == "/robots.txt":
        return "robots"
    return "board" if record.path.startswith("/forum-") else "thread"


def as_if_later(db: Path, seconds: float) -> None:
    """Stand in for a run `seconds` later: every thread's next due time moves that much back
    (the archive's other clocks, the boards' full reads and the pages' verify age, count in days)."""
    conn = sqlite3.connect(db)
    with conn:
        rows = conn.execute("SELECT id, next_due_at FROM threads WHERE next_due_at IS NOT NULL").fetchall()
        conn.executemany("UPDATE threads SET next_due_at = ? WHERE id = ?", [
            ((datetime.fromisoformat(due) - timedelta(seconds=seconds)).isoformat(timespec="seconds"), thread_id)
            for thread_id, due in rows])
    conn.close()


def daemon_pass(forums: ForumHosts, db: Path, *, verify_min_age_s: float | None = None) -> dict:
    """One `run --once` over every forum (with the sites' verify minimum age set to
    `verify_min_age_s` where given); the server's count of requests and bytes."""
    forums.served()  # start the log afresh
    sites = [forum_site(url, i) for i, url in enumerate(forums.board_urls())]
    if verify_min_age_s is not None:
        sites = [site_from_dict({**site.raw, "schedule": {**site.raw.get("schedule", {}),
                                                          "verify_min_age_s": verify_min_age_s}})
                 for site in sites]
    started = time.perf_counter()
    reports = run_once(db, sites, RunOptions(delay_s=0.0, allow_private=True))
    wall = time.perf_counter() - started
    served = forums.served()
    if None in reports or len(reports) != len(sites) * len(JOBS):
        raise SystemExit("a site's jobs did not run (its lock was taken?)")
    by_job = Counter()
    for report, job in zip(reports, cycle(JOBS)):  # run_once: each site's jobs, in JOBS order
        by_job[job] += report.requests
    return {"requests": len(served), "bytes": sum(r.nbytes for r in served), "wall_s": wall,
            "by_kind": Counter(kind_of(r) for r in served), "by_job": by_job,
            "new_posts": sum(r.new_posts for r in reports), "failures": sum(sum(r.failures.values()) for r in reports)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--threads", type=int, default=200, help="threads per forum (1-5 pages each)")
    parser.add_argument("--changed", type=float, default=0.01, help="fraction of threads given a new reply")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"command: {command()}")
    with ForumHosts(ForumShape(host_count=args.hosts, thread_count=args.threads)) as forums, \
            tempfile.TemporaryDirectory(prefix="bench-incremental-") as workdir:
        print(f"forums: {args.hosts} hosts x ({forums.threads} threads, {forums.thread_pages} thread pages, "
              f"{forums.board_pages} board pages, {forums.posts} posts)")
        db = Path(workdir) / "archive.db"
        first = daemon_pass(forums, db)
        unchanged = daemon_pass(forums, db)
        as_if_later(db, config.SCHEDULE_EVERY_S)
        unchanged_next_run = daemon_pass(forums, db)
        unchanged_verify = daemon_pass(forums, db, verify_min_age_s=0)
        change = forums.add_replies(args.changed)
        changed = daemon_pass(forums, db)
        change_again = forums.add_replies(args.changed)
        changed_verify = daemon_pass(forums, db, verify_min_age_s=0)

    # Each changed thread's new reply lands on one page: the first on a new page (every thread
    # ends on a full page), the second on that same page.
    changed_pages = len(change["threads"]) * args.hosts
    if change_again["threads"] != change["threads"]:
        raise SystemExit("the second change did not reply to the same threads")
    print(f"changed: threads {change['threads']} on every host, one new reply each, twice "
          f"({changed_pages} new posts each time; the first reply opens a new last page, the second lands on it)")
    pace = verify_pages_per_run(forums.thread_pages, config.SCHEDULE_EVERY_S, config.VERIFY_CYCLE_S)
    print(f"verify pass: ceil({forums.thread_pages} thread pages x {config.SCHEDULE_EVERY_S} s / cycle "
          f"{config.VERIFY_CYCLE_S} s) = {pace} a site a run, budget {config.VERIFY_BUDGET_REQUESTS}, minimum age "
          f"{config.VERIFY_MIN_AGE_S:.0f} s by default; 'verify forced' sets the minimum age to 0")
    print()
    print("| pass | requests | robots / board / thread | discover / refresh job requests | body bytes "
          "| requests, of first | bytes, of first | new posts | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    passes = (("first crawl", first), ("unchanged re-crawl", unchanged),
              ("unchanged re-crawl, next hourly run", unchanged_next_run),
              ("unchanged re-crawl, verify forced", unchanged_verify), ("1% changed re-crawl", changed),
              ("1% changed again, verify forced", changed_verify))
    for name, run in passes:
        kinds = run["by_kind"]
        print(f"| {name} | {run['requests']} | {kinds['robots']} / {kinds['board']} / {kinds['thread']} "
              f"| {run['by_job'].get('discover', 0)} / {run['by_job'].get('refresh', 0)} | {run['bytes']:,} "
              f"| {run['requests'] / first['requests']:.2%} | {run['bytes'] / first['bytes']:.2%} "
              f"| {run['new_posts']} | {run['wall_s']:.1f} |")
    print()
    for name, run in (("unchanged re-crawl", unchanged), ("unchanged re-crawl, next hourly run", unchanged_next_run),
                      ("unchanged re-crawl, verify forced", unchanged_verify)):
        for figure in ("requests", "bytes"):
            fraction = run[figure] / first[figure]
            print(f"{name} {figure}: {fraction:.2%} of the first crawl (target <= {TARGET_UNCHANGED:.0%}): "
                  f"{'met' if fraction <= TARGET_UNCHANGED else 'MISSED'}")
    allowed = TARGET_CHANGED_BASE * first["requests"] + changed_pages
    # The changed pages' bytes, as the first crawl's mean thread page: 1% of the bytes plus theirs.
    allowed_bytes = TARGET_CHANGED_BASE + changed_pages / first["by_kind"]["thread"]
    for name, run in (("1% changed re-crawl", changed), ("1% changed again, verify forced", changed_verify)):
        print(f"{name} requests: {run['requests']} (target <= 1% of {first['requests']} + {changed_pages} changed "
              f"pages = {allowed:.0f}): {'met' if run['requests'] <= allowed else 'MISSED'}")
        fraction = run["bytes"] / first["bytes"]
        print(f"{name} bytes: {fraction:.2%} of the first crawl (target <= 1% + {changed_pages} of "
              f"{first['by_kind']['thread']} thread pages = {allowed_bytes:.2%}): "
              f"{'met' if fraction <= allowed_bytes else 'MISSED'}")
    for name, run in passes[1:]:
        if run["by_job"].get("refresh", 0) == 0:
            print(f"{name}: the refresh job made no request (no thread due, no page old enough to verify)")
    for name, run in (("1% changed re-crawl", changed), ("1% changed again, verify forced", changed_verify)):
        if run["new_posts"] != changed_pages:
            print(f"CHECK FAILED: the {name} archived {run['new_posts']} new posts, expected {changed_pages}")
    if any(run["failures"] for _, run in passes):
        print("CHECK FAILED: a pass recorded failures")


if __name__ == "__main__":
    main()
