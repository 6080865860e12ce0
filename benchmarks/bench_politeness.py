"""Politeness efficiency: with a real gap between requests to each host, how close does the
archiver come to the ceiling of hosts / gap requests per second, and does it ever undercut
the gap?

The forums (benchmarks.forum_hosts) are served on --hosts loopback addresses by a process of
their own, which logs when each request arrived and when its response was written. The
archiver crawls all of them at once (one Crawler per host, one event loop, one Archive) with
delay_s = --gap, twice: with the pacer's default jitter (each gap lengthened by a random
factor in [1, 1.5)) and with jitter off (HostPacer's rng fixed at 0), after one unmeasured
crawl that warms the process up. From the server's log:

- efficiency: requests / (last start - first start) over all hosts, as a fraction of
  hosts / gap (the per-host steady rate is printed too);
- gap violations: a request that arrived less than `gap` after the server began writing the
  previous response to the same host. The pacer's rule is stricter (a gap from the client's
  end of one request to the start of the next), but the server cannot see the client's end;
  it can only bound it: it comes after the server began to write. The gap measured to the
  moment the server finished writing is printed too; its log can lag the client by a few ms.
- requests in flight at once to one host (must never exceed 1).

A third pass per gap, jitter and the pacer's slowdown both off, attributes the loss: the
pacer stretches a host's gap to 5x the server time of its last request (Heritrix's delay
factor). Until that time left out the event loop's own lag, the slowdown lengthened every
host's gap the busier the crawler was.

The CPU the crawler and the server process spend per request gives the cores the ceiling's
rate would need on this machine: above one, one crawler process cannot reach it; above the
machine's count, nothing can here.

With --processes N (N > 1) each pass splits the hosts over N crawler processes (one event
loop and one archive connection each, on the same archive file), started together; their CPU
is the crawler CPU. It measures whether more cores would reach the ceiling: the processes
share SQLite's one write lock.

Each gap of --gaps is measured both ways: 0.2 s is the issue's; a longer one shows the pacer
where the crawler's CPU is not the limit (at 0.2 s, 50 hosts ask for 250 pages/s).

    .venv/bin/python -m benchmarks.bench_politeness [--hosts 50] [--gaps 0.2,2.0] [--threads 6] [--processes N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.archiver_crawl import crawl_forums, crawl_options
from benchmarks.contest import cpu_s
from benchmarks.corpus import command, machine
from benchmarks.forum_hosts import ForumHosts, ForumShape, Served, by_host, max_in_flight
from scraper.politeness import HostPacer
from storage.archive import Archive

TARGET_EFFICIENCY = 0.95  # at least, with zero gap violations


def gap_report(served: list[Served], gap_s: float) -> dict:
    """Efficiency and violations of one crawl, from the server's log."""
    hosts = by_host(served)
    first = min(r.started for r in served)
    last = max(r.started for r in served)
    # Requests after the first of each host, over the window: the first ones all start at once.
    overall = (len(served) - len(hosts)) / (last - first) if last > first else 0.0
    per_host_rates, gaps, bounds, violations = [], [], [], 0
    for records in hosts.values():
        if len(records) > 1:
            per_host_rates.append((len(records) - 1) / (records[-1].started - records[0].started))
        for before, after in zip(records, records[1:]):
            gaps.append(after.started - before.finished)
            bounds.append(after.started - before.sending)
            violations += bounds[-1] < gap_s
    ceiling = len(hosts) / gap_s
    return {
        "hosts": len(hosts), "ceiling": ceiling, "requests": len(served), "window_s": last - first,
        "rate": overall, "efficiency": overall / ceiling,
        "per_host_efficiency": statistics.mean(per_host_rates) * gap_s if per_host_rates else 0.0,
        "violations": violations, "min_bound_ms": 1000 * min(bounds), "min_gap_ms": 1000 * min(gaps),
        "mean_gap_ms": 1000 * statistics.mean(gaps),
        "in_flight": max_in_flight(served),
    }


def pacers(gap_s: float) -> dict[str, Callable[[], HostPacer] | None]:
    """The pacer variants measured, by label; None: the Crawler's own default pacer."""
    # rng=0: the pacer's jitter factor 1 + 0.5 * rng() is exactly 1 (no lengthening).
    return {
        "default (x1-1.5)": None,
        "off": lambda: HostPacer(delay_s=gap_s, rng=lambda: 0.0),
        "off, slowdown off": lambda: HostPacer(delay_s=gap_s, rng=lambda: 0.0, slowdown_factor=0.0),
    }


def crawl_share(db: Path, seeds: list[str], numbers: list[int], options, pacer_for, reports_to) -> None:
    """One crawler process's share of the forums; its reports' (pages, failures) go to reports_to."""
    with Archive(db) as archive:
        reports = asyncio.run(crawl_forums(archive, seeds, options, pacer_for=pacer_for, site_numbers=numbers))
    reports_to.put((sum(r.pages_saved for r in reports), sum(sum(r.failures.values()) for r in reports)))


def crawl_in_processes(db: Path, seeds: list[str], options, pacer_for, processes: int) -> tuple[int, int, float]:
    """The forums split round-robin over `processes` crawler processes on one archive, run
    together: pages saved, failures, and the processes' CPU seconds."""
    Archive(db).close()  # the schema, before the processes race to create it
    context = multiprocessing.get_context("fork")  # the pacer factory travels without pickling
    results = context.Queue()
    children = [context.Process(target=crawl_share, args=(db, seeds[k::processes],
                                                          list(range(len(seeds)))[k::processes], options,
                                                          pacer_for, results)) for k in range(processes)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for child in children:
        child.start()
    shares = [results.get() for _ in children]  # before join: a full queue would block the child's exit
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"a crawler process failed with exit code {child.exitcode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return sum(pages for pages, _ in shares), sum(failures for _, failures in shares), cpu


def crawl_once(forums: ForumHosts, db: Path, gap_s: float, pacer_for: Callable[[], HostPacer] | None,
               processes: int = 1) -> dict:
    """One crawl of every forum with a real gap; its figures from the server's log."""
    forums.served()  # start the log afresh
    seeds = forums.board_urls()
    options = crawl_options(seeds, delay_s=gap_s)
    wall, cpu, server_cpu = time.perf_counter(), cpu_s(), forums.cpu_s()
    if processes > 1:
        pages, failures, cpu = crawl_in_processes(db, seeds, options, pacer_for, processes)
    else:
        with Archive(db) as archive:
            reports = asyncio.run(crawl_forums(archive, seeds, options, pacer_for=pacer_for))
        pages, failures = sum(r.pages_saved for r in reports), sum(sum(r.failures.values()) for r in reports)
        cpu = cpu_s() - cpu
    wall, server_cpu = time.perf_counter() - wall, forums.cpu_s() - server_cpu
    report = gap_report(forums.served(), gap_s)
    crawler_ms, server_ms = 1000 * cpu / report["requests"], 1000 * server_cpu / report["requests"]
    report.update(wall_s=wall, cpu_busy=cpu / wall, failures=failures,
                  pages=pages, crawler_cpu_ms=crawler_ms, server_cpu_ms=server_ms,
                  # CPU the ceiling's request rate asks of this machine, crawler and server together.
                  ceiling_cores=report["ceiling"] * (crawler_ms + server_ms) / 1000)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--gaps", default="0.2,2.0", help="delay_s values (seconds between requests to one host)")
    parser.add_argument("--threads", type=int, default=6, help="threads per forum (1-5 pages each)")
    parser.add_argument("--posts-per-page", type=int, default=10)
    parser.add_argument("--processes", type=int, default=1,
                        help="crawler processes the hosts are split over, on one archive (default 1)")
    args = parser.parse_args()
    if args.processes < 1:
        parser.error("--processes must be at least 1")

    print(f"machine: {machine()}")
    print(f"command: {command()}")
    shape = ForumShape(host_count=args.hosts, thread_count=args.threads, posts_per_page=args.posts_per_page)
    with ForumHosts(shape) as forums, tempfile.TemporaryDirectory(prefix="bench-politeness-") as workdir:
        print(f"crawler processes: {args.processes}")
        print(f"forums: {args.hosts} hosts x ({forums.threads} threads, {forums.thread_pages} thread pages, "
              f"{forums.board_pages} board pages, {args.posts_per_page} posts a page)")
        # The first crawl of a process pays its warm-up (imports, first connections, the
        # allocator's growth), which the first measured pass used to pay alone: an unmeasured
        # crawl with the first gap and jitter off goes first. (With --processes above 1 every
        # pass forks fresh crawler processes, which this warms only as far as they inherit it.)
        first_gap = float(args.gaps.split(",")[0])
        crawl_once(forums, Path(workdir) / "warm-up.db", first_gap, pacers(first_gap)["off"], args.processes)
        print(f"  warm-up crawl (gap {first_gap} s, jitter off; not measured) done", flush=True)
        rows = []
        for gap in [float(g) for g in args.gaps.split(",")]:
            for n, (label, pacer_for) in enumerate(pacers(gap).items()):
                row = crawl_once(forums, Path(workdir) / f"gap-{gap}-{n}.db", gap, pacer_for, args.processes)
                row.update(gap=gap, jitter=label)
                rows.append(row)
                print(f"  gap {gap} s, jitter {row['jitter']}: {row['efficiency']:.1%}", flush=True)
        print()
        print("| gap s | ceiling req/s | jitter | requests | window s | requests/s | efficiency | per-host efficiency "
              "| mean gap ms (end to start) | min gap ms (end to start) | min gap ms (write began to start) "
              "| gap violations | max in flight | crawler CPU busy | crawler CPU ms/request | server CPU ms/request "
              "| cores the ceiling needs |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['gap']} | {r['ceiling']:.0f} | {r['jitter']} | {r['requests']} | {r['window_s']:.2f} | {r['rate']:.1f} | {r['efficiency']:.1%} "
                  f"| {r['per_host_efficiency']:.1%} | {r['mean_gap_ms']:.1f} | {r['min_gap_ms']:.1f} | {r['min_bound_ms']:.1f} "
                  f"| {r['violations']} | {r['in_flight']} | {r['cpu_busy']:.0%} | {r['crawler_cpu_ms']:.2f} "
                  f"| {r['server_cpu_ms']:.2f} | {r['ceiling_cores']:.2f} of {os.cpu_count()} |")
        print()
        for r in rows:
            met = r["efficiency"] >= TARGET_EFFICIENCY and r["violations"] == 0 and r["in_flight"] <= 1
            print(f"gap {r['gap']} s, jitter {r['jitter']}: efficiency {r['efficiency']:.1%} (target >= {TARGET_EFFICIENCY:.0%}, "
                  f"zero violations): {'met' if met else 'MISSED'}; {r['pages']} pages saved, "
                  f"{r['failures']} failures")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
