"""Saving into threads the archive already holds: what a crawl does for every page after a
thread's first, and for every board page of a re-crawl. bench_writes saves new threads only.

Three passes on fresh archives (the archive's pragmas), each timed after a first pass that
stores the threads; automatic checkpoints are off while timing, so the WAL's size says how
many database pages each save wrote (WAL frames per saved page):
  thread pages  page 2 of each of --threads known threads (10 new posts each, text as in
                bench_writes --text-bytes), one transaction per page
  same pages    page 1 of each known thread again, unchanged (10 posts touched, none added)
  board pages   each of --threads / 30 board pages again, 30 known threads a page, with new
                reply counts, one transaction per page

    .venv/bin/python -m benchmarks.bench_resave [--threads 1000] [--text-bytes 600]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.corpus import SITE_URL, command, machine, page_variant, parsed_pages
from scraper.engines.base import BoardPage, BoardRow
from storage.archive import Archive

TEMPLATES = 20
ROWS_PER_BOARD_PAGE = 30
WAL_FRAME_BYTES = 4096 + 24  # a page of the archive's page size plus the frame header
T0 = "2026-01-15T04:00:00+00:00"
T1 = "2026-01-16T04:00:00+00:00"


def _timed(archive: Archive, saves: list, wal: Path) -> tuple[float, float]:
    """(ms per save, WAL frames per save) of running `saves` (callables) after a checkpoint."""
    archive.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    archive.db.conn.execute("PRAGMA wal_autocheckpoint = 0")
    start = time.perf_counter()
    for save in saves:
        save()
    elapsed = time.perf_counter() - start
    return elapsed * 1000 / len(saves), wal.stat().st_size / WAL_FRAME_BYTES / len(saves)


def thread_pages(tmp: Path, threads: int, text_bytes: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(ms, WAL frames) per page 2 of a known thread, then per page 1 saved again unchanged."""
    templates = parsed_pages(TEMPLATES, text_bytes=text_bytes)
    first = [page_variant(templates[n % TEMPLATES], n + 1) for n in range(threads)]
    second = [replace(page_variant(templates[(n + 7) % TEMPLATES], threads + n + 1), tid=page.tid,
                      title=page.title, page=2) for n, page in enumerate(first)]
    archive = Archive(tmp / "threads.db", index_batch_posts=None)
    site_id = archive.upsert_site("bench", engine="discuz", base_url=SITE_URL)
    for page in first:
        url = f"{SITE_URL}thread-{page.tid}-1-1.html"
        archive.save_thread_page(site_id, page, url=url, url_key=url, now=T0)

    def saver(page, page_no):
        url = f"{SITE_URL}thread-{page.tid}-{page_no}-1.html"
        return lambda: archive.save_thread_page(site_id, page, url=url, url_key=url, now=T1)

    new_posts = _timed(archive, [saver(page, 2) for page in second], tmp / "threads.db-wal")
    unchanged = _timed(archive, [saver(page, 1) for page in first], tmp / "threads.db-wal")
    archive.db.close()
    return new_posts, unchanged


def board_pages(tmp: Path, threads: int) -> tuple[float, float]:
    def board(n: int, replies: int) -> BoardPage:
        tids = range(n * ROWS_PER_BOARD_PAGE + 1, (n + 1) * ROWS_PER_BOARD_PAGE + 1)
        return BoardPage(fid=1, name="基准版块", page=n + 1, page_count=pages, rows=[
            BoardRow(tid=tid, title=f"基准论坛主题 {tid}", url=f"{SITE_URL}thread-{tid}-1-1.html",
                     replies=replies, views=replies * 3) for tid in tids])

    pages = max(1, threads // ROWS_PER_BOARD_PAGE)
    archive = Archive(tmp / "boards.db", index_batch_posts=None)
    site_id = archive.upsert_site("bench", engine="discuz", base_url=SITE_URL)
    for n in range(pages):
        archive.save_board_page(site_id, board(n, 1), url=f"{SITE_URL}forum-1-{n + 1}.html",
                                url_key=f"forum-1-{n + 1}", now=T0)

    def saver(n):
        return lambda: archive.save_board_page(site_id, board(n, 2), url=f"{SITE_URL}forum-1-{n + 1}.html",
                                               url_key=f"forum-1-{n + 1}", now=T1)

    result = _timed(archive, [saver(n) for n in range(pages)], tmp / "boards.db-wal")
    archive.db.close()
    return result


def main() -> None:
    """Store the threads, save into them again, print ms and WAL frames per saved page."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1000, help="known threads")
    parser.add_argument("--text-bytes", type=int, default=600, help="UTF-8 bytes of text per post")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (thread_ms, thread_frames), (same_ms, same_frames) = thread_pages(Path(tmp), args.threads, args.text_bytes)
        board_ms, board_frames = board_pages(Path(tmp), args.threads)
    print(f"command: {command()}")
    print(f"machine: {machine()}")
    print(f"  page 2 of a known thread (10 new posts)   {thread_ms:7.3f} ms/page  {thread_frames:5.1f} WAL frames/page")
    print(f"  page 1 of a known thread again, unchanged {same_ms:7.3f} ms/page  {same_frames:5.1f} WAL frames/page")
    print(f"  board page of {ROWS_PER_BOARD_PAGE} known threads, again   "
          f"{board_ms:7.3f} ms/page  {board_frames:5.1f} WAL frames/page")


if __name__ == "__main__":
    main()
