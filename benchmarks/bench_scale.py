"""Scale benchmark: build an archive of N posts through the write path (save_thread_page,
10 posts a page, one transaction a page) and, at checkpoints on the way (by default 10%, 50%
and 100% of N), measure:

- bytes per post on disk (database + WAL after a checkpoint), by table;
- search p50/p95 through Datasette's in-process JSON API, 3+ character queries (FTS5 trigram)
  and 2-character ones (common words: the newest-first scan; a word in no post: the bigram
  index), as storage.search routes them; the fixed queries are asked --repeats times, so
  DISTINCT_QUERY_COUNT others, cut from the archive's posts, are each asked once;
- thread page render time: GET /-/thread/{id} (the archive's reader) for random threads;
- every other stored query of datasette.yaml, p50/p95 (a thread, a post and an author of the
  archive as their parameters);
- the daemon's peak RSS: `forum-archiver run --once` in a child process, refreshing the site
  the archive holds (a demo forum served here), its VmHWM as it exits.

The archive's site IS the demo forum's site, so the daemon's run works against all N posts:
it reads the board, takes a batch of due threads (the benchmark's threads, which the forum
does not have: each answers Discuz's "no such thread" notice and is marked gone, as a deleted
thread would be) and spends its verify budget on the oldest-verified pages. Saves set no due
time and the pages are minutes old, so before each run every benchmark thread still on the
forum is made due and every page old enough to verify (as a day of the archive's life would
leave them): the run's queries then choose among all of them.

    .venv/bin/python -m benchmarks.bench_scale [--posts 1000000] [--text-bytes 600]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.corpus import POSTS_PER_PAGE, command, machine, page_variant, parsed_pages
from scraper.demo.server import start as start_demo_forum
from scraper.engines.discuz import DiscuzEngine
from scraper.engines.discuz import board_url as discuz_board_url
from scraper.engines.discuz import thread_url as discuz_thread_url
from scraper.frontier import entry_for
from scraper.publish import make_datasette
from scraper.sites import site_for_url
from storage.archive import Archive

TEMPLATES = 20
LONG_QUERIES = ("群众满意", "党员意识", "办公室", "实事求是")  # FTS5 trigram path
SHORT_QUERIES = ("服务", "群众", "党委")  # 2 characters in many posts: the newest-first scan
# Common words fill the page of results early and stop the scan; a word in no post would
# make a scan read every post (the worst case before posts_bigram), so it takes the index.
ABSENT_SHORT_QUERIES = ("鲸鱼",)
# The benchmark's thread ids start here: far above the demo forum's own, so they never meet.
TID_OFFSET = 1_000_000


def rss_mb() -> float:
    """Resident set size of this process now, in MB (from /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of values fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def write_pages(archive: Archive, site_id: int, base_url: str, templates, first: int, last: int) -> None:
    """Pages first..last (inclusive) of the synthetic archive, one transaction each."""
    engine = DiscuzEngine()
    for n in range(first, last + 1):
        page = page_variant(templates[n % TEMPLATES], TID_OFFSET + n)
        url = discuz_thread_url(base_url, page.tid, 1)
        with archive.transaction():
            archive.save_thread_page(site_id, page, url=url, url_key=entry_for(url, engine).key)


# The four LONG_QUERIES asked again and again find what they read in SQLite's cache: as many
# distinct ones, each asked once, say what a researcher's next new query costs.
DISTINCT_QUERY_COUNT = 40


def distinct_queries(db_path: Path, rng: random.Random, count: int) -> tuple[str, ...]:
    """`count` distinct 3-4 character runs of Chinese text, cut at random from the archive's
    own posts (so each finds something), none of them a LONG_QUERIES one."""
    conn = sqlite3.connect(db_path)
    try:
        max_id = conn.execute("SELECT max(id) FROM posts").fetchone()[0]
        found: set[str] = set()
        for _ in range(100 * count):
            if len(found) == count:
                break
            row = conn.execute("SELECT content_text FROM posts WHERE id >= ? ORDER BY id LIMIT 1",
                               [rng.randint(1, max_id)]).fetchone()
            text = row[0] if row else ""
            length = rng.choice((3, 4))
            if len(text) < length:
                continue
            start = rng.randrange(len(text) - length + 1)
            run = text[start:start + length]
            if all("\u4e00" <= ch <= "\u9fff" for ch in run) and run not in LONG_QUERIES:
                found.add(run)
    finally:
        conn.close()
    if len(found) < count:
        raise SystemExit(f"found only {len(found)} distinct runs of Chinese text to search for")
    return tuple(sorted(found))


async def search_latencies_ms(datasette, db_name: str, queries: tuple[str, ...], repeats: int,
                              warm_with: str | None = None) -> list[float]:
    """Latency of each search request, in ms; a search Datasette cut at its SQL time limit
    (HTTP 400, "took too long") counts as infinitely slow, so the percentiles say so. One
    unmeasured search first (warm_with, default the first query) warms Datasette up."""
    latencies = []
    await datasette.client.get(f"/{db_name}/search.json", params={"q": warm_with or queries[0], "_shape": "array"})
    for _ in range(repeats):
        for q in queries:
            start = time.perf_counter()
            response = await datasette.client.get(f"/{db_name}/search.json", params={"q": q, "_shape": "array"})
            latencies.append((time.perf_counter() - start) * 1000)
            if response.status_code == 400 and "took too long" in response.text:
                latencies[-1] = math.inf
            elif response.status_code != 200:
                raise SystemExit(f"search {q!r}: HTTP {response.status_code}: {response.text[:200]}")
    return latencies


async def render_latencies_ms(datasette, thread_ids: list[int]) -> list[float]:
    """Latency of the thread reader page for each thread id, in ms."""
    latencies = []
    await datasette.client.get(f"/-/thread/{thread_ids[0]}")  # warm
    for thread_id in thread_ids:
        start = time.perf_counter()
        response = await datasette.client.get(f"/-/thread/{thread_id}")
        latencies.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200 or "floor" not in response.text:
            raise SystemExit(f"/-/thread/{thread_id}: HTTP {response.status_code}")
    return latencies


async def stored_query_latencies_ms(datasette, db_path: Path, params: dict[str, str],
                                    repeats: int) -> dict[str, list[float]]:
    """Latency of each stored query of datasette.yaml but search (timed above), in ms, with
    `params` for those that take them; one cut at the SQL time limit counts as infinitely slow."""
    from scraper.publish import load_config

    db_name = db_path.stem
    names = [name for name in load_config(db_path)["databases"][db_name]["queries"] if name != "search"]
    latencies: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            start = time.perf_counter()
            response = await datasette.client.get(f"/{db_name}/{name}.json", params={**params, "_shape": "array"})
            latencies[name].append((time.perf_counter() - start) * 1000)
            if response.status_code == 400 and "took too long" in response.text:
                latencies[name][-1] = math.inf
            elif response.status_code != 200:
                raise SystemExit(f"stored query {name}: HTTP {response.status_code}: {response.text[:200]}")
    return latencies


# The daemon's peak RSS, read by the daemon itself as it exits: VmHWM belongs to the
# process's own address space. Its ru_maxrss would not do: Linux carries the spawning
# process's high-water mark across fork and exec into the child's, so a child of this
# (large) benchmark process would report this process's size, not its own.
DAEMON_LAUNCHER = """
import atexit, sys
def report_peak():
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    print("DAEMON " + peak.strip(), file=sys.stderr, flush=True)
atexit.register(report_peak)
from scraper.cli import main
sys.argv[0] = "forum-archiver"
main()
"""


LONG_AGO = "2000-01-01T00:00:00+00:00"


def daemon_run(db_path: Path, board: str) -> dict:
    """`forum-archiver run --once` against the archive in a child process, with every benchmark
    thread due and every page old enough to verify: peak RSS and time."""
    conn = sqlite3.connect(db_path)
    try:
        with conn:
            conn.execute("UPDATE threads SET next_due_at = ? WHERE tid > ? AND gone_at IS NULL", [LONG_AGO, TID_OFFSET])
            conn.execute("UPDATE pages SET last_fetched_at = ? WHERE kind = 'thread'", [LONG_AGO])
        last_run_before = conn.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0]
    finally:
        conn.close()
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", DAEMON_LAUNCHER, "run", "--db", str(db_path), "--site", board,
                              "--allow-private", "--delay", "0", "--once"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = child.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"the daemon failed ({child.returncode}): {stderr[-800:]}")
    peak_kb = int(next(line for line in stderr.splitlines() if line.startswith("DAEMON VmHWM:")).split()[2])
    conn = sqlite3.connect(db_path)
    try:  # the run --once makes a run row per job (discover, refresh)
        runs = conn.execute("SELECT job, requests, status FROM runs WHERE id > ? ORDER BY id",
                            [last_run_before]).fetchall()
    finally:
        conn.close()
    return {"peak_rss_mb": peak_kb / 1024, "seconds": time.perf_counter() - started,
            "cpu_s": usage.ru_utime + usage.ru_stime, "requests": sum(r[1] for r in runs),
            "status": ", ".join(f"{job} {status} ({requests} requests)" for job, requests, status in runs)}


def disk_figures(directory: Path, db_path: Path) -> tuple[int, int, int, list[tuple[str, int]]]:
    """(posts, bytes on disk, bytes of post text, [(table, bytes)] largest first)."""
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
        text = conn.execute("SELECT sum(length(CAST(content_text AS BLOB))) FROM posts").fetchone()[0]
        try:
            tables = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
        except sqlite3.OperationalError:  # SQLite built without dbstat
            tables = []
    finally:
        conn.close()
    disk = sum(f.stat().st_size for f in directory.iterdir() if f.name.startswith(db_path.name)
               and not f.name.endswith((".jobs.db", ".lock")))
    return posts, disk, text, tables


def measure(directory: Path, db_path: Path, board: str, repeats: int, render_samples: int) -> dict:
    """Every figure of one checkpoint."""
    daemon = daemon_run(db_path, board)
    posts, disk, text, tables = disk_figures(directory, db_path)
    datasette = make_datasette(db_path)
    conn = sqlite3.connect(db_path)
    try:
        thread_ids = [row[0] for row in conn.execute("SELECT id FROM threads WHERE tid > ?", [TID_OFFSET])]
    finally:
        conn.close()
    sample = random.Random(posts).sample(thread_ids, min(render_samples, len(thread_ids)))
    conn = sqlite3.connect(db_path)
    try:  # a thread, a post and an author the stored queries are asked about
        post_id, author = conn.execute("SELECT id, author FROM posts WHERE thread_id = ? LIMIT 1", [sample[0]]).fetchone()
    finally:
        conn.close()
    query_params = {"thread_id": str(sample[0]), "post_id": str(post_id), "author": author, "page": "1"}
    fresh_queries = distinct_queries(db_path, random.Random(posts), DISTINCT_QUERY_COUNT)

    async def web() -> dict:
        return {"long": await search_latencies_ms(datasette, db_path.stem, LONG_QUERIES, repeats),
                "fresh": await search_latencies_ms(datasette, db_path.stem, fresh_queries, 1,
                                                   warm_with=LONG_QUERIES[0]),
                "short": await search_latencies_ms(datasette, db_path.stem, SHORT_QUERIES, repeats),
                "absent": await search_latencies_ms(datasette, db_path.stem, ABSENT_SHORT_QUERIES, repeats),
                "render": await render_latencies_ms(datasette, sample),
                "stored": await stored_query_latencies_ms(datasette, db_path, query_params, repeats)}

    return {"posts": posts, "disk": disk, "text": text, "tables": tables, "daemon": daemon, **asyncio.run(web())}


def report(point: dict, build_s: float, writer_rss_mb: float) -> None:
    posts = point["posts"]
    print(f"\n== {posts:,} posts (writes so far {build_s:.0f} s, {posts / build_s:.0f} posts/s; "
          f"writer RSS {writer_rss_mb:.0f} MB)")
    print(f"disk: {point['disk'] / 1e6:,.1f} MB = {point['disk'] / posts:,.0f} bytes/post "
          f"(post text alone {point['text'] / posts:,.0f} bytes/post of UTF-8)")
    if point["tables"]:
        print("largest tables: " + ", ".join(f"{name} {size / posts:,.0f} B/post" for name, size in point["tables"][:6]))
    for label, key, queries in (("3+ chars (FTS5 trigram)", "long", LONG_QUERIES),
                                ("3-4 chars, each asked once", "fresh", None),
                                ("2 chars, common (scan)", "short", SHORT_QUERIES),
                                ("2 chars, in no post (bigram)", "absent", ABSENT_SHORT_QUERIES),
                                ("thread page /-/thread/{id}", "render", None)):
        ms = point[key]
        cut = sum(math.isinf(m) for m in ms)
        print(f"{label:28s} p50 {percentile(ms, 0.5):8.1f} ms  p95 {percentile(ms, 0.95):8.1f} ms  "
              f"({len(ms)} requests{', queries ' + ', '.join(queries) if queries else ''}"
              f"{f'; {cut} cut at the SQL time limit (inf)' if cut else ''})")
    for name, ms in point["stored"].items():
        cut = sum(math.isinf(m) for m in ms)
        print(f"{'stored query ' + name:28s} p50 {percentile(ms, 0.5):8.1f} ms  p95 {percentile(ms, 0.95):8.1f} ms  "
              f"({len(ms)} requests{f'; {cut} cut at the SQL time limit (inf)' if cut else ''})")
    daemon = point["daemon"]
    print(f"daemon run --once: peak RSS {daemon['peak_rss_mb']:.0f} MB, {daemon['requests']} requests, "
          f"{daemon['seconds']:.1f} s wall, {daemon['cpu_s']:.1f} s CPU; runs: {daemon['status']}")


def main() -> None:
    """Build the archive in steps, measure at each checkpoint, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000, help="posts to archive (default 1000000)")
    parser.add_argument("--text-bytes", type=int, default=600,
                        help="UTF-8 bytes of each post's text (default 600: about 200 Chinese characters)")
    parser.add_argument("--checkpoints", default="0.1,0.5,1",
                        help="fractions of --posts at which to measure (default 0.1,0.5,1)")
    parser.add_argument("--repeats", type=int, default=10, help="rounds of each query set per checkpoint")
    parser.add_argument("--render-samples", type=int, default=50, help="thread pages rendered per checkpoint")
    parser.add_argument("--dir", help="build the archive in a temporary directory under this one, e.g. a disk with room (default: the system's temp dir)")
    args = parser.parse_args()
    fractions = sorted({float(f) for f in args.checkpoints.split(",")})
    page_count = args.posts // POSTS_PER_PAGE
    checkpoints = [max(1, round(page_count * f)) for f in fractions]

    print(f"command: {command()}")
    print(f"machine: {machine()}")
    print(f"building {page_count * POSTS_PER_PAGE:,} posts of {args.text_bytes} text bytes, "
          f"measuring at {', '.join(f'{c * POSTS_PER_PAGE:,}' for c in checkpoints)} posts")
    templates = parsed_pages(TEMPLATES, text_bytes=args.text_bytes)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, start_demo_forum("127.0.0.1", 0) as forum:
        directory = Path(tmp)
        db_path = directory / "archive.db"
        board = discuz_board_url(forum.base_url, 1, 1)
        site = site_for_url(board)
        writer_rss = []
        daemon_rss = []
        build_s = 0.0
        written = 0
        for checkpoint in checkpoints:
            archive = Archive(db_path)
            site_id = archive.upsert_site(site.name, engine=site.engine, base_url=site.base_url)
            started = time.perf_counter()
            write_pages(archive, site_id, site.base_url, templates, written + 1, checkpoint)
            archive.close()
            build_s += time.perf_counter() - started
            written = checkpoint
            writer_rss.append(rss_mb())
            point = measure(directory, db_path, board, args.repeats, args.render_samples)
            report(point, build_s, writer_rss[-1])
            daemon_rss.append((point["posts"], point["daemon"]["peak_rss_mb"]))
    print("\ndaemon peak RSS by archive size: " + ", ".join(f"{posts:,} posts {mb:.0f} MB" for posts, mb in daemon_rss)
          + f"; largest / smallest archive: {daemon_rss[-1][1] / daemon_rss[0][1]:.2f}x (flat is 1.00x)")
    print(f"writer (this process) RSS at the checkpoints: {', '.join(f'{mb:.0f} MB' for mb in writer_rss)}; "
          f"peak {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
