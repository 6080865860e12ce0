"""End to end, politeness delays at zero: the archiver against a Scrapy spider and against the
floor of our own stack (bare httpx + selectolax + sqlite3), crawling the same forums.

The forums: one generated Discuz forum served on --hosts distinct loopback addresses by a
server in its own process (benchmarks.forum_hosts). Each contestant runs in a fresh process
of its own, one after another, starting from each host's board page, one request in flight
per host. Figures: HTML pages per second of the crawl, CPU seconds per page (user + sys of
the contestant's process, from os.wait4; also the crawl alone, measured inside it), peak RSS
(ru_maxrss), and the posts each stored, checked against the forum's own count.

    .venv/bin/python -m benchmarks.bench_e2e [--hosts 20] [--threads 34] [--only archiver,archiver-no-slowdown,scrapy,floor]
                                             [--rounds N]
                                             [--profile archiver-profile.txt] [--workdir /dev/shm]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
from pathlib import Path

from benchmarks.contest import ChildRun, run_contestant
from benchmarks.corpus import command, machine
from benchmarks.forum_hosts import ForumHosts, ForumShape, is_page, max_in_flight

TARGET_OVER_SCRAPY_RATE = 1.0  # archiver pages/s over Scrapy's, at least (at no more CPU per page)
TARGET_FLOOR_OVER_OURS = 3.0  # floor pages/s over the archiver's, at most

# name: (module, its options)
CONTESTANTS = {
    "archiver": ("benchmarks.archiver_crawl", ()),
    "scrapy": ("benchmarks.scrapy_spider", ()),
    "floor": ("benchmarks.floor_crawler", ()),
    # The archiver with the pacer's slowdown off. The slowdown is an adaptive politeness delay
    # (a host's gap grows with its response time) and on by default; Scrapy runs without its
    # counterpart (AutoThrottle is off by default), so at "politeness delays at zero" this is
    # the like-for-like line. Both are judged against the targets.
    "archiver-no-slowdown": ("benchmarks.archiver_crawl", ("--slowdown-factor", "0")),
}
DEFAULT_CONTESTANTS = ("archiver", "archiver-no-slowdown", "scrapy", "floor")
ARCHIVERS = ("archiver", "archiver-no-slowdown")


def stored_posts(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("select count(*) from posts").fetchone()[0]
    finally:
        conn.close()


def run_one(name: str, forums: ForumHosts, workdir: Path, profile_to: Path | None = None,
            round_no: int = 1) -> dict:
    """Run one contestant against the forums into a fresh database; its figures, checked
    against the server's log."""
    forums.served()  # start the log afresh
    db = workdir / f"{name}-{round_no}.db"
    module, options = CONTESTANTS[name]
    run: ChildRun = run_contestant(module, db, forums.board_urls(), options=options, profile_to=profile_to)
    served = forums.served()
    pages = sum(is_page(record) for record in served)
    page_bytes = sum(record.nbytes for record in served if is_page(record))
    return {
        "name": name, "pages": pages, "requests": len(served), "page_kb": page_bytes / max(pages, 1) / 1000,
        "robots": sum(record.path == "/robots.txt" for record in served),
        "errors": sum(record.status >= 400 for record in served),
        "in_flight": max_in_flight(served),
        "posts": stored_posts(db), "wall_s": run.result["crawl_wall_s"], "process_wall_s": run.wall_s,
        "cpu_s": run.cpu_s, "crawl_cpu_s": run.result["crawl_cpu_s"], "rss_mb": run.peak_rss_mb,
    }


def print_table(rows: list[dict]) -> None:
    print("| contestant | pages | requests (robots) | posts stored | crawl s | pages/s | CPU ms/page "
          "(process) | CPU ms/page (crawl only) | peak RSS MB | max in flight per host |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['pages']} | {r['requests']} ({r['robots']}) | {r['posts']} | {r['wall_s']:.1f} "
              f"| {r['pages'] / r['wall_s']:.1f} | {1000 * r['cpu_s'] / r['pages']:.2f} "
              f"| {1000 * r['crawl_cpu_s'] / r['pages']:.2f} | {r['rss_mb']:.0f} | {r['in_flight']} |")


def ratios(by_name: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Per archiver line present: its pages/s and CPU per page over Scrapy's, and the floor's
    pages/s over its own (each only where the other contestant ran)."""
    rate = {name: r["pages"] / r["wall_s"] for name, r in by_name.items()}
    cpu = {name: r["cpu_s"] / r["pages"] for name, r in by_name.items()}
    out = {}
    for archiver in (name for name in ARCHIVERS if name in by_name):
        out[archiver] = {}
        if "scrapy" in by_name:
            out[archiver]["rate_over_scrapy"] = rate[archiver] / rate["scrapy"]
            out[archiver]["cpu_over_scrapy"] = cpu[archiver] / cpu["scrapy"]
        if "floor" in by_name:
            out[archiver]["floor_over_rate"] = rate["floor"] / rate[archiver]
            out[archiver]["cpu_over_floor"] = cpu[archiver] / cpu["floor"]
    return out


def verdicts(found: dict[str, dict[str, float]], what: str = "") -> None:
    """One line per target and archiver line, with its verdict."""
    for archiver, r in found.items():
        if "rate_over_scrapy" in r:
            met = r["rate_over_scrapy"] >= TARGET_OVER_SCRAPY_RATE and r["cpu_over_scrapy"] <= 1.0
            print(f"{what}{archiver}/scrapy pages/s: {r['rate_over_scrapy']:.2f}x; CPU per page {archiver}/scrapy: "
                  f"{r['cpu_over_scrapy']:.2f}x (target >= {TARGET_OVER_SCRAPY_RATE:.0f}x at <= 1x CPU): "
                  f"{'met' if met else 'MISSED'}")
        if "floor_over_rate" in r:
            print(f"{what}floor/{archiver} pages/s: {r['floor_over_rate']:.2f}x; CPU per page {archiver}/floor: "
                  f"{r['cpu_over_floor']:.2f}x (target floor/archiver <= {TARGET_FLOOR_OVER_OURS:.0f}x): "
                  f"{'met' if r['floor_over_rate'] <= TARGET_FLOOR_OVER_OURS else 'MISSED'}")


def median_ratios(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Each ratio's median over the rounds (each round's ratios come from one run of each
    contestant, back to back, so the machine's load moves them together)."""
    return {archiver: {key: statistics.median(found[archiver][key] for found in rounds) for key in keys}
            for archiver, keys in rounds[0].items()}


def rounds_meeting(rounds: list[dict[str, dict[str, float]]]) -> None:
    """How many rounds met each target on their own: the medians of rate and CPU are taken
    apart, so they may come from different rounds."""
    for archiver in rounds[0]:
        found = [r[archiver] for r in rounds]
        if "rate_over_scrapy" in found[0]:
            met = sum(r["rate_over_scrapy"] >= TARGET_OVER_SCRAPY_RATE and r["cpu_over_scrapy"] <= 1.0 for r in found)
            print(f"rounds in which {archiver} met the Scrapy target (rate and CPU in the same round): {met} of {len(found)}")
        if "floor_over_rate" in found[0]:
            met = sum(r["floor_over_rate"] <= TARGET_FLOOR_OVER_OURS for r in found)
            print(f"rounds in which {archiver} met the floor target: {met} of {len(found)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20, help="forum hosts (127.0.0.2 onward)")
    parser.add_argument("--threads", type=int, default=34, help="threads per forum (1-5 pages each)")
    parser.add_argument("--only", default=",".join(DEFAULT_CONTESTANTS), help="contestants, comma-separated, in order")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="run the first archiver line under pyinstrument and write its text report to FILE "
                             "(its figures then carry the profiler's overhead)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every contestant this many times, round by round; the verdicts then "
                             "judge each ratio's median over the rounds")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the contestants' SQLite files go (default: the system's temp dir; "
                             "/dev/shm takes the disk out of the comparison)")
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in CONTESTANTS]
    if unknown:
        parser.error(f"unknown contestant {unknown[0]!r}; known: {', '.join(CONTESTANTS)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    print(f"machine: {machine()}")
    print(f"command: {command()}")
    with ForumHosts(ForumShape(host_count=args.hosts, thread_count=args.threads)) as forums, \
            tempfile.TemporaryDirectory(prefix="bench-e2e-", dir=args.workdir) as workdir:
        expected_posts = forums.posts * args.hosts
        print(f"databases in: {workdir}")
        print(f"forums: {args.hosts} hosts x ({forums.threads} threads, {forums.thread_pages} thread pages, "
              f"{forums.board_pages} board pages, {forums.posts} posts) = {forums.thread_pages * args.hosts} "
              f"thread pages, {expected_posts} posts; 10 posts a page, jammer on")
        found_by_round = []
        profiled = next((name for name in names if name.startswith("archiver")), None)
        for round_no in range(1, args.rounds + 1):
            rows = []
            for name in names:
                profile_to = args.profile if name == profiled and round_no == 1 else None
                row = run_one(name, forums, Path(workdir), profile_to=profile_to, round_no=round_no)
                rows.append(row)
                print(f"  round {round_no}, {name}: {row['pages']} pages (mean {row['page_kb']:.1f} KB as served) "
                      f"in {row['wall_s']:.1f} s, {row['posts']} posts", flush=True)
            print()
            if args.rounds > 1:
                print(f"round {round_no}:")
            print_table(rows)
            print()
            for row in rows:
                if row["posts"] != expected_posts or row["errors"]:
                    print(f"CHECK FAILED: {row['name']} stored {row['posts']} posts of {expected_posts} "
                          f"({row['errors']} error responses)")
                if row["in_flight"] > 1:
                    print(f"CHECK FAILED: {row['name']} had {row['in_flight']} requests in flight to one host")
            found_by_round.append(ratios({row["name"]: row for row in rows}))
            verdicts(found_by_round[-1], what=f"round {round_no}: " if args.rounds > 1 else "")
            print()
        if args.rounds > 1:
            verdicts(median_ratios(found_by_round), what=f"median of {args.rounds} rounds: ")
            rounds_meeting(found_by_round)


if __name__ == "__main__":
    main()
