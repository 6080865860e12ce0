"""Write benchmark: posts per second through Archive.save_thread_page (dedup check, edit
versions, search indexing; 10 posts a page, one transaction per page as the crawler does)
against raw sqlite3 executemany of the same rows into a plain table with the posts table's
columns, also one transaction per page. Everything runs in one process, on the same
records, into fresh SQLite files with the archive's pragmas (WAL, synchronous=NORMAL).

A second baseline, not a target, attributes the gap: the same rows put by bare executemany
into the archive's own schema (its tables, indexes, foreign keys and connection settings; a
thread row, the posts, their first versions and a pages row per page, with the archive's
transactions), with no dedup check, upserts or record handling. No writer that keeps the
schema goes faster.

The archive indexes posts for search in batches, off the per-page path, so three archive
figures are reported, each against the same raw run:
  write path   save_thread_page with batch indexing switched off (index_batch_posts=None)
  index        Archive.index_pending() catching up on everything the write path left
  write+index  the archive as shipped: saves index every INDEX_BATCH_POSTS, close() the rest
The issue's write path includes the search index (its "FTS triggers"): the target is judged on
write+index alone. The other two say where the time goes.

With --search-rounds N it also times search on the write+index archive (storage's
search_posts, rank order) against the statement it replaced, which ranked every match
(ORDER BY rank over the whole match set), and again with a full batch of posts waiting
above the watermark (the tail search scans).

Raw, bare inserts and the write path take turns for --rounds rounds (default 5), each on
fresh files; their ratios are the medians of the rounds' own. The index lines run once,
against the last round's raw time.

    .venv/bin/python -m benchmarks.bench_writes [--pages 2000] [--rounds 5] [--index-batch N] [--profile]
        [--search-rounds N] [--skip-trigger-line] [--automerge N] [--text-bytes N] [--pages-per-commit N]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from benchmarks.corpus import POST_TEXT_BYTES, SITE_URL, command, machine, page_variant, parsed_pages
from storage.archive import (
    _INSERT_FIRST_VERSION_SQL,
    _INSERT_NEW_POST_SQL,
    INDEX_BATCH_POSTS,
    Archive,
    _first_version_row,
    _new_post_row,
    _post_values,
)
from storage.dedup import post_key
from storage.db import open_db
from storage.search import search_posts

TARGET_RATIO = 0.40  # archive posts/s over raw posts/s, at least, for each archive line
TEMPLATES = 20  # distinct parsed pages the synthetic pages are varied from

# The posts table's columns a page fills, plus the ones the archive adds per row.
RAW_TABLE = """CREATE TABLE posts_plain (
    id INTEGER PRIMARY KEY, site_id INTEGER, thread_id INTEGER, pid INTEGER, post_key TEXT, floor INTEGER,
    floor_label TEXT, page INTEGER, author TEXT, author_uid INTEGER, posted_at TEXT, posted_at_raw TEXT,
    content_text TEXT, content_html TEXT, content_hash TEXT, quotes_json TEXT, signature TEXT, edit_note TEXT,
    attachments_json TEXT, status TEXT, noise_json TEXT, version_count INTEGER, first_seen_at TEXT,
    last_seen_at TEXT, gone_at TEXT)"""
RAW_COLUMNS = ("site_id", "thread_id", "pid", "post_key", "floor", "floor_label", "page", "author", "author_uid",
               "posted_at", "posted_at_raw", "content_text", "content_html", "content_hash", "quotes_json",
               "signature", "edit_note", "attachments_json", "status", "noise_json", "version_count",
               "first_seen_at", "last_seen_at")
RAW_INSERT = (f"INSERT INTO posts_plain ({', '.join(RAW_COLUMNS)}) "
              f"VALUES ({', '.join('?' for _ in RAW_COLUMNS)})")
# The archive's FTS index on the plain table: attributes the gap between the two writers.
RAW_FTS = (
    'CREATE VIRTUAL TABLE posts_plain_fts USING fts5(content_text, content="posts_plain", '
    'content_rowid="id", tokenize="trigram"{options})',
    """CREATE TRIGGER posts_plain_fts_ai AFTER INSERT ON posts_plain BEGIN
        INSERT INTO posts_plain_fts (rowid, content_text) VALUES (new.id, new.content_text); END""",
)
NOW = "2026-01-15T04:00:00+00:00"
# Phrases of the demo forum's prose that recur across the corpus (as in bench_scale).
SEARCH_QUERIES = ("群众满意", "党员意识", "办公室", "实事求是")
# Version 2's search: FTS5 scores every match of the phrase before taking the first 20.
UNBOUNDED_RANK_SQL = """SELECT p.id, snippet(posts_fts, 0, '«', '»', '…', 24)
FROM posts_fts JOIN posts AS p ON p.id = posts_fts.rowid
WHERE posts_fts MATCH '"' || :q || '"' ORDER BY posts_fts.rank LIMIT 20"""


def page_url(tid: int) -> tuple[str, str]:
    """(url, url_key) of page 1 of thread `tid`."""
    url = f"{SITE_URL}thread-{tid}-1-1.html"
    return url, url


def raw_rows(pages: list) -> list[list[tuple]]:
    """Each page's rows for the plain table, computed before timing (hashes included), so the
    raw side measures SQLite alone."""
    out = []
    for n, page in enumerate(pages):
        rows = []
        for post in page.posts:
            values = _post_values(post)
            values |= {"site_id": 1, "thread_id": n + 1, "post_key": f"pid:{post.pid}", "page": page.page,
                       "version_count": 1, "first_seen_at": NOW, "last_seen_at": NOW}
            rows.append(tuple(values[c] for c in RAW_COLUMNS))
        out.append(rows)
    return out


# The schema floor's thread and pages rows: the columns a save fills that no default does.
FLOOR_THREAD_INSERT = ("INSERT INTO threads (id, site_id, tid, thread_key, title, url, first_seen_at, last_seen_at) "
                       "VALUES (?, 1, ?, ?, ?, ?, ?, ?)")
FLOOR_PAGE_INSERT = ("INSERT INTO pages (site_id, url, url_key, kind, thread_id, page_no, extract_hash, post_count, "
                     "first_fetched_at, last_fetched_at, last_changed_at) VALUES (1, ?, ?, 'thread', ?, ?, ?, ?, ?, ?, ?)")


def schema_rows(pages: list) -> list[tuple[tuple, list[tuple], list[tuple], tuple]]:
    """Each page's rows for the archive's own tables (thread, posts, first versions, pages
    row), computed before timing as raw_rows() is: thread ids are 1.., post ids 1.."""
    out = []
    post_id = 1
    for thread_id, page in enumerate(pages, start=1):
        url, url_key = page_url(page.tid)
        key_of_thread = str(page.tid)
        keyed = [(post_key(post.pid, key_of_thread, post.floor), _post_values(post)) for post in page.posts]
        ids = range(post_id, post_id + len(keyed))
        post_id += len(keyed)
        out.append((
            (thread_id, page.tid, key_of_thread, page.title, url, NOW, NOW),
            [_new_post_row(i, 1, thread_id, key, page.page, values, NOW) for i, (key, values) in zip(ids, keyed)],
            [_first_version_row(i, values, NOW) for i, (_, values) in zip(ids, keyed)],
            (url, url_key, thread_id, page.page, "0" * 64, len(keyed), NOW, NOW, NOW),
        ))
    return out


def groups(items: list, size: int) -> list[list]:
    """`items` in consecutive groups of `size` (the last may be shorter)."""
    return [items[n:n + size] for n in range(0, len(items), size)]


def write_raw(path: Path, rows_by_page: list[list[tuple]], *, with_fts: bool = False, fts_detail: str = "full",
              pages_per_commit: int = 1) -> float:
    """Seconds to write every page's rows with executemany, one transaction per
    `pages_per_commit` pages; with_fts adds the archive's trigram index (fts_detail: FTS5's
    detail option)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    options = "" if fts_detail == "full" else f", detail={fts_detail}"
    for statement in (RAW_TABLE, *(RAW_FTS if with_fts else ())):
        conn.execute(statement.replace("{options}", options))
    start = time.perf_counter()
    for group in groups(rows_by_page, pages_per_commit):
        conn.execute("BEGIN IMMEDIATE")
        for rows in group:
            conn.executemany(RAW_INSERT, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def write_schema_floor(path: Path, rows_by_page: list, *, pages_per_commit: int = 1) -> float:
    """Seconds to put every page's rows into a fresh archive file (opened as the archive
    opens it) with bare executemany, in the archive's transactions: one per
    `pages_per_commit` pages, each page a savepoint in it when they are grouped."""
    db = open_db(path)
    db.execute("INSERT INTO sites (id, name, engine, created_at) VALUES (1, 'bench', 'discuz', ?)", [NOW])
    conn = db.conn
    start = time.perf_counter()
    for group in groups(rows_by_page, pages_per_commit):
        conn.execute("BEGIN IMMEDIATE")
        for thread, posts, versions, page in group:
            if pages_per_commit > 1:
                conn.execute("SAVEPOINT page")
            conn.execute(FLOOR_THREAD_INSERT, thread)
            conn.executemany(_INSERT_NEW_POST_SQL, posts)
            conn.executemany(_INSERT_FIRST_VERSION_SQL, versions)
            conn.execute(FLOOR_PAGE_INSERT, page)
            if pages_per_commit > 1:
                conn.execute("RELEASE page")
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def write_archive(path: Path, pages: list, *, index_batch_posts: int | None,
                  automerge: int | None = None, pages_per_commit: int = 1) -> tuple[float, float]:
    """Seconds to save every page through the archive, one transaction per page, and then
    seconds for close() to index what is still pending. index_batch_posts=None: the write
    path alone; the file is left unindexed, as a kill before close() would leave it.
    pages_per_commit > 1: one transaction per that many pages, each page a savepoint in it,
    as a busy crawl's grouped commits write them."""
    archive = Archive(path, index_batch_posts=index_batch_posts)
    if automerge is not None:  # FTS5 keeps it in the file: the catch-up on it uses it too
        archive.db.execute("INSERT INTO posts_fts (posts_fts, rank) VALUES ('automerge', ?)", [automerge])
    site_id = archive.upsert_site("bench", engine="discuz", base_url=SITE_URL)
    start = time.perf_counter()
    for group in groups(pages, pages_per_commit):
        with archive.transaction():
            for page in group:
                url, url_key = page_url(page.tid)
                # A nested block is a savepoint: each page all or nothing within the group.
                with archive.transaction() if pages_per_commit > 1 else nullcontext():
                    archive.save_thread_page(site_id, page, url=url, url_key=url_key)
    written = time.perf_counter()
    if index_batch_posts is None:
        archive.db.close()
    else:
        archive.close()
    return written - start, time.perf_counter() - written


def catch_up_index(path: Path) -> tuple[float, int]:
    """Seconds for index_pending() to index every post of an archive written without
    indexing, in one batch, and how many posts it indexed."""
    archive = Archive(path, index_batch_posts=None)
    start = time.perf_counter()
    indexed = archive.index_pending()
    elapsed = time.perf_counter() - start
    archive.db.close()  # nothing left to index: skip close()'s own pass
    return elapsed, indexed


def search_latencies(path: Path, rounds: int) -> dict[str, tuple[float, float]]:
    """p50 and p95 milliseconds of each search statement over SEARCH_QUERIES x rounds."""
    conn = sqlite3.connect(path)
    samples: dict[str, list[float]] = {"bounded": [], "unbounded": []}
    for _ in range(rounds):
        for q in SEARCH_QUERIES:
            start = time.perf_counter()
            hits = search_posts(conn, q)
            samples["bounded"].append(time.perf_counter() - start)
            start = time.perf_counter()
            old = conn.execute(UNBOUNDED_RANK_SQL, {"q": q}).fetchall()
            samples["unbounded"].append(time.perf_counter() - start)
            if len(hits) != len(old):
                raise SystemExit(f"{q}: {len(hits)} hits against {len(old)} from the unbounded statement")
    conn.close()
    return {name: _p50_p95(values) for name, values in samples.items()}


def add_pending_tail(path: Path, templates: list, first_tid: int, posts: int) -> None:
    """Save `posts` more posts without indexing them, as a crawl between batches leaves them."""
    archive = Archive(path, index_batch_posts=None)
    site_id = archive.upsert_site("bench", engine="discuz", base_url=SITE_URL)
    for n in range(first_tid, first_tid + posts // 10):
        page = page_variant(templates[n % TEMPLATES], n)
        url, url_key = page_url(page.tid)
        archive.save_thread_page(site_id, page, url=url, url_key=url_key)
    archive.db.close()  # leave them pending


def bytes_per_post(path: Path, posts: int) -> dict[str, float]:
    """Bytes on disk per post: the whole file (after a checkpoint) and the tables that hold
    post text, from SQLite's dbstat."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sizes = dict(conn.execute(
        "SELECT name, sum(pgsize) FROM dbstat WHERE name IN ('posts', 'post_versions', 'posts_fts_data') "
        "GROUP BY name").fetchall())
    conn.close()
    sizes["file"] = path.stat().st_size
    return {name: size / posts for name, size in sizes.items()}


def _p50_p95(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return statistics.median(ordered) * 1000, ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000


def _verdict(ratio: float) -> str:
    return f"{ratio:6.1%} of raw  (target >= {TARGET_RATIO:.0%}: {'met' if ratio >= TARGET_RATIO else 'MISSED'})"


def _spread(ratios: list[float]) -> str:
    return f"[{min(ratios):.1%}-{max(ratios):.1%}]"


def main() -> None:
    """Build the records, time the raw and archive writers on fresh files, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=2000, help="pages to write (10 posts each)")
    parser.add_argument("--fts-detail", choices=("full", "column", "none"), default="full",
                        help="FTS5 detail option of the raw+FTS line (the archive uses full)")
    parser.add_argument("--index-batch", type=int, default=INDEX_BATCH_POSTS,
                        help="posts pending before a save indexes them, for the write+index line")
    parser.add_argument("--text-bytes", type=int, default=POST_TEXT_BYTES,
                        help="UTF-8 bytes of text per post (default ~2,000 Chinese characters)")
    parser.add_argument("--automerge", type=int, default=None,
                        help="FTS5 automerge for the archive lines (default: the archive's own, 8)")
    parser.add_argument("--search-rounds", type=int, default=0,
                        help="also time search (3+ characters) this many rounds per query")
    parser.add_argument("--skip-trigger-line", action="store_true",
                        help="leave out the raw + FTS trigger line (slow at large --pages)")
    parser.add_argument("--pages-per-commit", type=int, default=1,
                        help="pages per transaction on both sides (a busy crawl groups ~25: 0.25 s of pages)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of raw, bare and write path taking turns (the median ratio is the figure)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the write path and the catch-up indexing (pyinstrument)")
    args = parser.parse_args()
    if args.pages_per_commit < 1:
        parser.error("--pages-per-commit must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    templates = parsed_pages(TEMPLATES, text_bytes=args.text_bytes)
    pages = [page_variant(templates[n % TEMPLATES], n + 1) for n in range(args.pages)]
    posts = sum(len(p.posts) for p in pages)
    rows_by_page = raw_rows(pages)
    floor_rows = schema_rows(pages)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        per_commit = {"pages_per_commit": args.pages_per_commit}
        # The three writers take turns, each round on fresh files: the machine's load moves
        # more between passes than the writers differ, so each round's ratio is taken within
        # the round and the median of the rounds is the figure.
        rounds = []
        for n in range(args.rounds):
            last = n == args.rounds - 1
            raw_path, floor_path = tmp_path / f"raw{n}.db", tmp_path / f"floor{n}.db"
            write_path = tmp_path / ("deferred.db" if last else f"deferred{n}.db")
            raw_round_s = write_raw(raw_path, rows_by_page, **per_commit)
            floor_round_s = write_schema_floor(floor_path, floor_rows, **per_commit)
            write_round_s, _ = write_archive(write_path, pages, index_batch_posts=None, automerge=args.automerge,
                                             **per_commit)
            rounds.append((raw_round_s, floor_round_s, write_round_s))
            for path in (raw_path, floor_path, *(() if last else (write_path,))):
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        raw_s, floor_s, write_s = rounds[-1]
        raw_fts_s = None if args.skip_trigger_line else write_raw(
            tmp_path / "raw_fts.db", rows_by_page, with_fts=True, fts_detail=args.fts_detail, **per_commit)
        # Reopened without indexing: the file holds every post, none indexed yet.
        index_s, indexed = catch_up_index(tmp_path / "deferred.db")
        combined_write_s, combined_close_s = write_archive(
            tmp_path / "combined.db", pages, index_batch_posts=args.index_batch, automerge=args.automerge,
            **per_commit)
        for name in ("deferred.db", "combined.db"):
            conn = sqlite3.connect(tmp_path / name)
            stored = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
            unindexed = conn.execute("SELECT count(*) FROM posts WHERE id > (SELECT indexed_through "
                                     "FROM search_index_state WHERE fts_table = 'posts_fts')").fetchone()[0]
            conn.close()
            if stored != posts or unindexed:
                raise SystemExit(f"{name} holds {stored} posts ({unindexed} unindexed); {posts} were written")
        if indexed != posts:
            raise SystemExit(f"the catch-up indexed {indexed} posts, {posts} were written")
        disk = bytes_per_post(tmp_path / "combined.db", posts)
        searches = tail_searches = None
        if args.search_rounds:
            searches = search_latencies(tmp_path / "combined.db", args.search_rounds)
            add_pending_tail(tmp_path / "combined.db", templates, args.pages + 1, args.index_batch - 10)
            tail_searches = search_latencies(tmp_path / "combined.db", args.search_rounds)
        profile = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            write_archive(tmp_path / "profiled.db", pages, index_batch_posts=None, **per_commit)
            catch_up_index(tmp_path / "profiled.db")
            profiler.stop()
            profile = profiler.output_text(unicode=False, color=False)

    raw_rate = posts / raw_s
    combined_s = combined_write_s + combined_close_s
    print(f"command: {command()}")
    print(f"machine: {machine()}")
    print(f"records: {args.pages} pages x 10 posts = {posts} posts, mean text "
          f"{sum(len(p.content_text) for pg in pages for p in pg.posts) // posts} chars, "
          f"one transaction per {args.pages_per_commit} page(s)")
    write_ratios = [raw / write for raw, _, write in rounds]
    floor_ratios = [raw / floor for raw, floor, _ in rounds]
    print(f"{args.rounds} round(s) of raw, bare and write path taking turns; the last round's times, "
          "each line's ratio the median of the rounds' own (range in brackets):")
    print(f"  raw sqlite3 executemany          {raw_rate:10.0f} posts/s  ({raw_s:.2f} s)")
    if raw_fts_s is not None:
        print(f"  raw + FTS5 trigram trigger       {posts / raw_fts_s:10.0f} posts/s  ({raw_fts_s:.2f} s)  "
              f"detail={args.fts_detail} (not a target: what a per-insert index costs)")
    print(f"  archive schema, bare inserts     {posts / floor_s:10.0f} posts/s  ({floor_s:.2f} s)  "
          f"{statistics.median(floor_ratios):6.1%} of raw {_spread(floor_ratios)}  "
          "(not a target: the most a writer keeping the schema gets)")
    print(f"  archive write path (no indexing) {posts / write_s:10.0f} posts/s  ({write_s:.2f} s)  "
          f"{statistics.median(write_ratios):6.1%} of raw {_spread(write_ratios)}  "
          "(not the issue's write path, which keeps the search index: how far the index is the cost)")
    print(f"  archive index catch-up (1 batch) {posts / index_s:10.0f} posts/s  ({index_s:.2f} s)  "
          f"{raw_s / index_s:6.1%} of raw  (part of the next line)")
    print(f"  archive write + index, batches of {args.index_batch} posts "
          f"{posts / combined_s:10.0f} posts/s  ({combined_write_s:.2f} s saving + {combined_close_s:.2f} s "
          f"indexing at close)  {_verdict(raw_s / combined_s)}  (the issue's write path, as shipped; "
          "one run, against the last round's raw)")
    print("bytes per post on disk (write+index archive): file {file:,.0f}; posts {posts:,.0f}, "
          "post_versions {post_versions:,.0f}, posts_fts_data {posts_fts_data:,.0f}".format(**disk))
    if searches and tail_searches:
        print(f"search, 3+ characters, {len(SEARCH_QUERIES)} queries x {args.search_rounds} rounds, "
              f"p50 / p95 ms, at {posts} posts:")
        print("  all posts indexed:  search_posts (bounded rank) {:.1f} / {:.1f}   "
              "unbounded ORDER BY rank {:.1f} / {:.1f}".format(*searches["bounded"], *searches["unbounded"]))
        print(f"  {args.index_batch - 10} posts pending: search_posts (bounded rank) "
              "{:.1f} / {:.1f}".format(*tail_searches["bounded"]))
    if profile:
        print(profile)


if __name__ == "__main__":
    main()
