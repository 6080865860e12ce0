"""Incremental cost: what the daemon's re-crawl of a forum costs the forum, as a fraction of
the first crawl, when nothing changed and when 1% of the threads got a new reply.

The forums (benchmarks.forum_hosts) are served on --hosts loopback addresses by a process of
their own, which counts every request and the body bytes it sent. Each crawl is the daemon's
own pass, `scraper.schedule.run_once` (what `forum-archiver run --once` does): per site, the
discover job reads the boards and fetches the threads whose board row moved (new threads
whole, changed ones from their last known page), then the refresh job revisits due threads
and spends the site's verify budget re-reading the pages verified longest ago. Three passes
on one archive: the first crawl, a re-crawl of the unchanged forum, and a re-crawl after one
new reply in 1% of the threads.

    .venv/bin/python -m benchmarks.bench_incremental [--hosts 4] [--threads 200] [--changed 0.01]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from itertools import cycle
from pathlib import Path

from benchmarks.archiver_crawl import forum_site
from benchmarks.corpus import command, machine
from benchmarks.forum_hosts import ForumHosts, ForumShape, Served
from scraper.schedule import JOBS, RunOptions, run_once

TARGET_UNCHANGED = 0.05  # requests and bytes of an unchanged re-crawl, at most, of the first crawl
TARGET_CHANGED_BASE = 0.01  # with 1% of threads changed: at most this plus the changed pages


def kind_of(record: Served) -> str:
    if record.path == "/robots.txt":
        return "robots"
    return "board" if record.path.startswith("/forum-") else "thread"


def daemon_pass(forums: ForumHosts, db: Path) -> dict:
    """One `run --once` over every forum; the server's count of requests and bytes."""
    forums.served()  # start the log afresh
    sites = [forum_site(url, i) for i, url in enumerate(forums.board_urls())]
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
        change = forums.add_replies(args.changed)
        changed = daemon_pass(forums, db)

    # Each changed thread's new reply lands on one page (a new one: every thread ends on a full page).
    changed_pages = len(change["threads"]) * args.hosts
    print(f"changed: threads {change['threads']} on every host, one new reply each "
          f"({changed_pages} new posts, each on a new last page)")
    print()
    print("| pass | requests | robots / board / thread | discover / refresh job requests | body bytes "
          "| requests, of first | bytes, of first | new posts | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, run in (("first crawl", first), ("unchanged re-crawl", unchanged), ("1% changed re-crawl", changed)):
        kinds = run["by_kind"]
        print(f"| {name} | {run['requests']} | {kinds['robots']} / {kinds['board']} / {kinds['thread']} "
              f"| {run['by_job'].get('discover', 0)} / {run['by_job'].get('refresh', 0)} | {run['bytes']:,} "
              f"| {run['requests'] / first['requests']:.2%} | {run['bytes'] / first['bytes']:.2%} "
              f"| {run['new_posts']} | {run['wall_s']:.1f} |")
    print()
    for figure in ("requests", "bytes"):
        fraction = unchanged[figure] / first[figure]
        print(f"unchanged re-crawl {figure}: {fraction:.2%} of the first crawl (target <= {TARGET_UNCHANGED:.0%}): "
              f"{'met' if fraction <= TARGET_UNCHANGED else 'MISSED'}")
    for name, run in (("unchanged", unchanged), ("1% changed", changed)):
        discover = run["by_job"].get("discover", 0)
        print(f"{name} re-crawl, discover job alone (the verify budget's requests left out): {discover} requests, "
              f"{discover / first['requests']:.2%} of the first crawl")
    allowed = TARGET_CHANGED_BASE * first["requests"] + changed_pages
    print(f"1% changed re-crawl requests: {changed['requests']} (target <= 1% of {first['requests']} + "
          f"{changed_pages} changed pages = {allowed:.0f}): {'met' if changed['requests'] <= allowed else 'MISSED'}")
    if changed["new_posts"] != changed_pages:
        print(f"CHECK FAILED: the changed re-crawl archived {changed['new_posts']} new posts, "
              f"expected {changed_pages}")
    if first["failures"] or unchanged["failures"] or changed["failures"]:
        print("CHECK FAILED: a pass recorded failures")


if __name__ == "__main__":
    main()
