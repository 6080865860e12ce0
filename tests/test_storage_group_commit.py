"""Grouped commits: transaction blocks that commit together, each still all or nothing.

Every check of what is committed reads through a second connection, as Datasette does."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scraper.crawl import CrawlOptions, Crawler
from storage.archive import Archive
from tests.test_crawl_demo import demo_site
from tests.test_storage_support import T0, make_page, make_post


def committed_posts(path: Path) -> int:
    reader = sqlite3.connect(path)
    try:
        return reader.execute("SELECT count(*) FROM posts").fetchone()[0]
    finally:
        reader.close()


def save(archive: Archive, site_id: int, tid: int) -> None:
    posts = [make_post(tid * 100 + n, n + 1, f"帖子 {tid}-{n}") for n in range(3)]
    archive.save_thread_page(site_id, make_page(tid, posts), url=f"t{tid}", url_key=f"t{tid}", now=T0)


def new_site(archive: Archive) -> int:
    return archive.upsert_site("s", base_url="http://forum.example/", engine="discuz")


def test_blocks_of_a_group_commit_together_when_it_is_due(tmp_path):
    path = tmp_path / "a.db"
    with Archive(path) as archive:
        site_id = new_site(archive)
        with archive.grouped_commits(0.3):
            save(archive, site_id, 1)
            save(archive, site_id, 2)
            assert committed_posts(path) == 0  # open, and visible to its own connection only
            assert archive.db.execute("SELECT count(*) FROM posts").fetchone()[0] == 6
            time.sleep(0.35)
            archive.commit_due_group()
            assert committed_posts(path) == 6
            save(archive, site_id, 3)
            archive.commit_due_group()  # not due yet
            assert committed_posts(path) == 6
        assert committed_posts(path) == 9  # leaving the block commits the rest


def test_a_failing_block_undoes_itself_and_keeps_the_group(tmp_path):
    path = tmp_path / "a.db"
    with Archive(path) as archive:
        site_id = new_site(archive)
        with archive.grouped_commits(60):
            save(archive, site_id, 1)
            with pytest.raises(RuntimeError), archive.transaction():
                save(archive, site_id, 2)
                raise RuntimeError("the page failed half-way")
            save(archive, site_id, 3)
            archive.commit_group()
            assert committed_posts(path) == 6
            tids = [row[0] for row in archive.db.execute("SELECT tid FROM threads ORDER BY tid")]
        assert tids == [1, 3]


def test_closing_the_archive_commits_an_open_group(tmp_path):
    path = tmp_path / "a.db"
    archive = Archive(path)
    site_id = new_site(archive)
    group = archive.grouped_commits(60)
    group.__enter__()
    save(archive, site_id, 1)
    archive.close()
    assert committed_posts(path) == 3


def test_a_commit_is_never_taken_from_inside_a_block(tmp_path):
    path = tmp_path / "a.db"
    with Archive(path) as archive:
        site_id = new_site(archive)
        with archive.grouped_commits(0):  # 0: every block commits alone, as without a group
            save(archive, site_id, 1)
            assert committed_posts(path) == 3
        with archive.grouped_commits(60):
            save(archive, site_id, 2)
            with archive.transaction():
                save(archive, site_id, 3)
                archive.commit_group()  # half a block must not be committed
                assert committed_posts(path) == 3
        assert committed_posts(path) == 9
    with pytest.raises(ValueError):
        with Archive(path) as archive, archive.grouped_commits(-1):
            pass


def test_a_kill_loses_the_open_group_whole_and_nothing_else(tmp_path):
    path = tmp_path / "a.db"
    child = textwrap.dedent(f"""
        import os
        from storage.archive import Archive
        from tests.test_storage_group_commit import new_site, save
        archive = Archive({str(path)!r})
        site_id = new_site(archive)
        save(archive, site_id, 1)  # committed alone, before any group
        with archive.grouped_commits(60):
            save(archive, site_id, 2)
            save(archive, site_id, 3)
            os._exit(9)  # killed: no commit, no close
    """)
    result = subprocess.run([sys.executable, "-c", child], cwd=Path(__file__).parent.parent, timeout=60)
    assert result.returncode == 9
    with Archive(path) as archive:
        assert archive.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [row[0] for row in archive.db.execute("SELECT tid FROM threads")] == [1]
        assert archive.db.execute("SELECT count(*) FROM posts").fetchone()[0] == 3


def test_a_crawl_frees_the_write_lock_while_it_waits_out_the_gap(demo_forum, tmp_path):
    """The crawl's timer commits the open group while the crawler waits: another writer (the
    index command, a second daemon) is not shut out for a whole politeness gap or a slow fetch."""
    path = tmp_path / "a.db"
    attempts: list[bool] = []  # whether each try for the write lock, without waiting, got it

    async def crawl_and_try_the_lock() -> None:
        with Archive(path) as archive:
            options = CrawlOptions(allow_private_hosts=frozenset({"127.0.0.1"}), delay_s=0.6, max_requests=6,
                                   group_commit_s=0.1)
            crawl = asyncio.create_task(Crawler(archive, demo_site(demo_forum.base_url), options=options).run(
                [f"{demo_forum.base_url}forum-1-1.html"]))
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            await asyncio.sleep(0.3)  # past the first request
            while not crawl.done():
                try:
                    other.execute("BEGIN IMMEDIATE")
                    other.execute("ROLLBACK")
                    attempts.append(True)
                except sqlite3.OperationalError:  # database is locked
                    attempts.append(False)
                await asyncio.sleep(0.02)
            other.close()
            report = await crawl
            assert report.pages_saved >= 4

    asyncio.run(crawl_and_try_the_lock())
    # Each 0.6 s gap holds the lock for at most ~0.2 s (one timer period plus the group's age).
    assert len(attempts) > 50
    assert sum(attempts) / len(attempts) > 0.5, f"{sum(attempts)} of {len(attempts)} tries got the lock"
