"""Scale benchmark: build an archive of N posts through the write path (save_thread_page,
10 posts a page, one transaction a page), then report bytes per post on disk, search
latency (p50/p95) through Datasette's in-process JSON API for 3+ character queries (FTS5
trigram) and 2-character ones (the scan fallback), and the process's RSS as it grows.

    .venv/bin/python -m benchmarks.bench_scale [--posts 20000] [--repeats 20]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.bench_writes import page_url
from benchmarks.corpus import POSTS_PER_PAGE, SITE_URL, command, machine, page_variant, parsed_pages
from scraper.publish import make_datasette
from storage.archive import Archive

TEMPLATES = 20
LONG_QUERIES = ("群众满意", "党员意识", "办公室", "实事求是")  # FTS5 trigram path
SHORT_QUERIES = ("服务", "群众", "党委")  # under 3 characters: the LIKE scan path
# Common words fill the page of results early and stop the scan; a word in no post makes
# it read every post: the worst case.
ABSENT_SHORT_QUERIES = ("鲸鱼",)
RSS_SAMPLES = 5  # RSS is read this many times while the archive grows


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


def build(path: Path, post_count: int) -> tuple[float, list[tuple[int, float]]]:
    """Write post_count posts; returns (seconds, [(posts so far, RSS MB)])."""
    templates = parsed_pages(TEMPLATES)
    page_count = post_count // POSTS_PER_PAGE
    sample_every = max(1, page_count // RSS_SAMPLES)
    samples = []
    archive = Archive(path)
    site_id = archive.upsert_site("bench", engine="discuz", base_url=SITE_URL)
    start = time.perf_counter()
    for n in range(1, page_count + 1):
        page = page_variant(templates[n % TEMPLATES], n)
        url, url_key = page_url(n)
        with archive.transaction():
            archive.save_thread_page(site_id, page, url=url, url_key=url_key)
        if n % sample_every == 0:
            samples.append((n * POSTS_PER_PAGE, rss_mb()))
    elapsed = time.perf_counter() - start
    archive.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    archive.close()
    return elapsed, samples


async def search_latencies_ms(path: Path, queries: tuple[str, ...], repeats: int) -> tuple[list[float], int]:
    """Latency of each search request (ms) and the rows the last round returned in total."""
    datasette = make_datasette(path)
    db_name = path.stem
    latencies, rows = [], 0
    await datasette.client.get(f"/{db_name}/search.json", params={"q": queries[0], "_shape": "array"})  # warm
    for _ in range(repeats):
        rows = 0
        for q in queries:
            start = time.perf_counter()
            response = await datasette.client.get(f"/{db_name}/search.json", params={"q": q, "_shape": "array"})
            latencies.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"search {q!r}: HTTP {response.status_code}: {response.text[:200]}")
            rows += len(response.json())
    return latencies, rows


def bytes_by_table(path: Path) -> list[tuple[str, int]]:
    """Bytes on disk per table and index (SQLite's dbstat), largest first; FTS shadow tables
    are listed by their own names."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
    except sqlite3.OperationalError:  # SQLite built without dbstat
        return []
    finally:
        conn.close()


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of values fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    """Build the archive, measure disk, search and RSS, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=20_000, help="posts to archive (default 20000)")
    parser.add_argument("--repeats", type=int, default=20, help="rounds of each query set")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "archive.db"
        build_s, samples = build(path, args.posts)
        stored = sqlite3.connect(path).execute("SELECT count(*) FROM posts").fetchone()[0]
        text_bytes = sqlite3.connect(path).execute(
            "SELECT sum(length(CAST(content_text AS BLOB))) FROM posts").fetchone()[0]
        disk = sum(f.stat().st_size for f in Path(tmp).iterdir())
        largest = bytes_by_table(path)[:6]
        long_ms, long_rows = asyncio.run(search_latencies_ms(path, LONG_QUERIES, args.repeats))
        short_ms, short_rows = asyncio.run(search_latencies_ms(path, SHORT_QUERIES, args.repeats))
        absent_ms, absent_rows = asyncio.run(search_latencies_ms(path, ABSENT_SHORT_QUERIES, args.repeats))

    print(f"command: {command()}")
    print(f"machine: {machine()}")
    print(f"archive: {stored} posts in {stored // POSTS_PER_PAGE} pages, built in {build_s:.1f} s "
          f"({stored / build_s:.0f} posts/s); target size 1,000,000 posts: {'met' if stored >= 1_000_000 else 'NOT reached'}")
    print(f"disk: {disk / 1e6:.1f} MB = {disk / stored:.0f} bytes/post "
          f"(post text alone: {text_bytes / stored:.0f} bytes/post UTF-8)")
    if largest:
        print("largest tables: " + ", ".join(f"{name} {size / stored:.0f} B/post" for name, size in largest))
    for label, ms, rows, queries in (("3+ chars (FTS5 trigram)", long_ms, long_rows, LONG_QUERIES),
                                     ("2 chars (scan)", short_ms, short_rows, SHORT_QUERIES),
                                     ("2 chars, no match (full scan)", absent_ms, absent_rows, ABSENT_SHORT_QUERIES)):
        print(f"search {label:30s} p50 {percentile(ms, 0.5):8.1f} ms  p95 {percentile(ms, 0.95):8.1f} ms  "
              f"mean {statistics.mean(ms):8.1f} ms  ({len(ms)} requests, queries {', '.join(queries)}; "
              f"{rows} rows per round)")
    print("RSS while building: " + ", ".join(f"{n} posts {mb:.0f} MB" for n, mb in samples))
    print(f"peak RSS of the process: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
