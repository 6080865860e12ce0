"""Vanished posts: a post the forum no longer shows gets gone_at, and only such a post.

A thread's pages list its posts as runs of one order of their pids, so a page proves gone
the stored posts inside its run that it does not show (storage.archive.vanished_pid_span).
Posts that move to another page when one before them goes must never be stamped."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from scraper.crawl import CrawlOptions, Crawler
from scraper.sites import load_site, site_from_dict
from storage.archive import _COUNT_IN_SPAN_SQL, Archive, vanished_pid_span
from storage.schema import SCHEMA_VERSION
from tests.test_storage_support import T0, T1, T2, archive, make_page, make_post, site_id  # noqa: F401
from tests.test_crawl_demo import DEMO_CONFIG, demo_site
from tests.test_daemon_convergence import first_refresh, fresh_copy, refresh
from tests.test_incremental import Clock

PER_PAGE = 5
TID = 77


def thread_pages(pids: list[int]):
    """The pages of a thread holding `pids` in order, PER_PAGE a page, floors by place."""
    pages = []
    count = -(-len(pids) // PER_PAGE)
    for n in range(count):
        chunk = pids[n * PER_PAGE:(n + 1) * PER_PAGE]
        posts = [make_post(pid, n * PER_PAGE + i + 1, f"第{pid}帖的内容") for i, pid in enumerate(chunk)]
        pages.append(make_page(TID, posts, page=n + 1, page_count=count))
    return pages


def save_page(archive, site_id, page, now):
    url = f"http://bbs.example.cn/thread-{TID}-{page.page}-1.html"
    return archive.save_thread_page(site_id, page, url=url, url_key=url, now=now)


def gone(archive) -> dict[int, str]:
    return dict(archive.db.execute("select pid, gone_at from posts where gone_at is not null").fetchall())


@pytest.fixture
def stored(archive, site_id):
    """A thread of 13 posts (pids 101-113) on three pages, saved at T0."""
    for page in thread_pages(list(range(101, 114))):
        save_page(archive, site_id, page, T0)
    return archive


def test_a_post_missing_inside_a_pages_run_is_gone_and_comes_back_when_seen(stored, site_id):
    without_103 = [pid for pid in range(101, 114) if pid != 103]
    result = save_page(stored, site_id, thread_pages(without_103)[0], T1)
    assert result.gone_posts == 1 and gone(stored) == {103: T1}
    # Saved again: already gone, stamped once.
    assert save_page(stored, site_id, thread_pages(without_103)[0], T2).gone_posts == 0
    assert gone(stored) == {103: T1}
    save_page(stored, site_id, thread_pages(list(range(101, 114)))[0], T2)
    assert gone(stored) == {}


def test_posts_moving_up_a_page_are_not_gone_whichever_page_is_read_first(stored, site_id):
    # 103 goes: 106 moves from page 2 to page 1, 111 from page 3 to page 2.
    pages = thread_pages([pid for pid in range(101, 114) if pid != 103])
    assert save_page(stored, site_id, pages[2], T1).gone_posts == 0  # the last page alone: 111 is elsewhere
    assert save_page(stored, site_id, pages[1], T1).gone_posts == 0
    assert save_page(stored, site_id, pages[0], T1).gone_posts == 1
    assert gone(stored) == {103: T1}
    pages_of = dict(stored.db.execute("select pid, page from posts").fetchall())
    assert (pages_of[106], pages_of[111]) == (1, 2)


def test_the_last_page_proves_the_posts_after_its_run_gone(stored, site_id):
    pages = thread_pages(list(range(101, 113)))  # 113, the last post, goes
    assert save_page(stored, site_id, pages[2], T1).gone_posts == 1
    assert gone(stored) == {113: T1}


def test_a_page_count_read_short_condemns_no_post_on_a_later_page(stored, site_id):
    page_2 = thread_pages(list(range(101, 114)))[1]
    misread = make_page(TID, page_2.posts, page=2, page_count=2)  # as if page 2 were the last
    assert save_page(stored, site_id, misread, T1).gone_posts == 0
    assert gone(stored) == {}


def test_hot_replies_stand_outside_the_run_and_unordered_pages_prove_nothing(stored, site_id):
    page_1 = thread_pages([pid for pid in range(101, 114) if pid != 103])[0]
    hot = make_post(112, None, "第112帖的内容", floor_label="推荐")
    # A popular late reply repeated under the opening post neither stretches page 1's run to
    # 112 nor hides that 103 has gone.
    with_hot = make_page(TID, [page_1.posts[0], hot, *page_1.posts[1:]], page=1, page_count=3)
    assert save_page(stored, site_id, with_hot, T1).gone_posts == 1
    assert gone(stored) == {103: T1}
    # Pids in no one order prove nothing.
    mixed = make_page(TID, [make_post(p, p - 100, "x") for p in (104, 106, 105)], page=1, page_count=3)
    assert vanished_pid_span(mixed) is None
    assert save_page(stored, site_id, mixed, T2).gone_posts == 0
    assert gone(stored) == {103: T1}


def newest_first_pages(pids: list[int]):
    """The pages of a thread listed newest first (Discuz's 倒序看帖): the opening post on top of
    page 1, then the replies newest first; each post keeps its floor."""
    order = pids[:1] + pids[:0:-1]
    floor = {pid: n + 1 for n, pid in enumerate(pids)}
    count = -(-len(order) // PER_PAGE)
    return [make_page(TID, [make_post(pid, floor[pid], f"第{pid}帖的内容") for pid in order[n * PER_PAGE:(n + 1) * PER_PAGE]],
                      page=n + 1, page_count=count) for n in range(count)]


def test_a_thread_shown_newest_first_is_read_in_its_own_direction(archive, site_id):
    pids = list(range(101, 114))
    for page in newest_first_pages(pids):
        save_page(archive, site_id, page, T0)
    # Its last page holds the oldest replies: neither the newer ones on earlier pages nor the
    # opening post on top of page 1 are gone.
    assert save_page(archive, site_id, newest_first_pages(pids)[2], T1).gone_posts == 0
    without_106 = [pid for pid in pids if pid != 106]
    assert save_page(archive, site_id, newest_first_pages(without_106)[1], T1).gone_posts == 1
    assert gone(archive) == {106: T1}
    # Page 1's run is its replies, below the opening post: nothing is newer than them.
    span = vanished_pid_span(newest_first_pages(pids)[0])
    assert (span.above, span.run_low, span.run_high) == (110, 110, 113) and span.below > 10**18
    assert save_page(archive, site_id, newest_first_pages(pids)[0], T2).gone_posts == 0
    assert gone(archive) == {106: T1}


def test_one_post_proves_only_a_whole_thread(archive, site_id):
    save_page(archive, site_id, make_page(TID, [make_post(101, 1, "主帖"), make_post(102, 2, "回复")]), T0)
    assert vanished_pid_span(make_page(TID, [make_post(105, 6, "x")], page=2, page_count=2)) is None
    alone = make_page(TID, [make_post(101, 1, "主帖")], page=1, page_count=1)
    assert save_page(archive, site_id, alone, T1).gone_posts == 1 and gone(archive) == {102: T1}


def test_posts_without_pids_are_never_stamped(archive, site_id):
    keyed_by_floor = [make_post(None, f, f"第{f}楼") for f in (1, 2, 3)]
    save_page(archive, site_id, make_page(TID, keyed_by_floor), T0)
    assert save_page(archive, site_id, make_page(TID, keyed_by_floor[:1]), T1).gone_posts == 0


def test_the_check_counts_on_the_thread_pid_index_alone(stored):
    # Every saved page runs this count: it must not read the posts' rows.
    plan = stored.db.execute("EXPLAIN QUERY PLAN " + _COUNT_IN_SPAN_SQL, [1, 3, 9]).fetchall()
    assert [row[-1] for row in plan] == [
        "SEARCH posts USING COVERING INDEX idx_posts_thread_pid (thread_id=? AND pid>? AND pid<?)"]


def test_migration_9_swaps_the_page_index_for_the_pid_index_and_counts_gone_posts_per_run(tmp_path):
    path = tmp_path / "archive.db"
    Archive(path).close()
    conn = sqlite3.connect(path)
    indexes = {row[0] for row in conn.execute("select name from sqlite_master where type = 'index'")}
    assert "idx_posts_thread_pid" in indexes and "idx_posts_thread_page" not in indexes
    assert "gone_posts" in {row[1] for row in conn.execute("pragma table_info(runs)")}
    assert conn.execute("select max(version) from schema_version").fetchone()[0] == SCHEMA_VERSION >= 9
    conn.close()


# --- end to end, over HTTP ------------------------------------------------------------------
def crawl(archive, base_url, urls):
    site = site_from_dict(dict(load_site(DEMO_CONFIG).raw, base_url=base_url))
    options = CrawlOptions(delay_s=0, allow_private_hosts=frozenset({"127.0.0.1"}))
    return asyncio.run(Crawler(archive, site, options=options).run(urls))


def test_a_crawl_stamps_exactly_the_posts_taken_off_the_forum(demo_forum, tmp_path):
    forum, base = demo_forum.forum, demo_forum.base_url
    threads = {tid: forum.thread(tid) for tid in (1, 3)}
    pages = {tid: forum.thread_pages(thread) for tid, thread in threads.items()}
    urls = [f"{base}thread-{tid}-{n}-1.html" for tid, count in pages.items() for n in range(1, count + 1)]
    with Archive(tmp_path / "archive.db") as archive:
        first = crawl(archive, base, urls)
        assert first.gone_posts == 0 and first.new_posts == 8 + 13
        forum.remove_post(303)  # inside page 1 of thread 3: 306 and 311 move up a page
        forum.remove_post(108)  # the last post of thread 1
        assert {tid: forum.thread_pages(thread) for tid, thread in threads.items()} == pages
        second = crawl(archive, base, urls)
        assert second.gone_posts == 2
        assert set(gone(archive)) == {303, 108}
        # Every other post is where the forum shows it now, floor and page.
        shown = {post.pid: (post.floor, (place // forum.posts_per_page) + 1)
                 for thread in threads.values() for place, post in enumerate(thread.posts)}
        stored = {pid: (floor, page) for pid, floor, page in archive.db.execute(
            "select pid, floor, page from posts where gone_at is null")}
        assert stored == shown
        run = archive.db.execute("select gone_posts from runs order by id desc limit 1").fetchone()[0]
        assert run == 2


def test_the_daemons_verify_pass_finds_a_post_taken_off_a_quiet_thread(demo_forum, tmp_path):
    # Taking a post off changes no board row: only the verify pass re-reads the page.
    forum, clock = demo_forum.forum, Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        thread_pages = first_refresh(archive, site, clock)
        forum.remove_post(303)  # thread 3 keeps its three pages
        clock.advance(minutes=10)
        report = refresh(archive, site, clock, thread_pages)
        assert report.gone_posts == 1 and set(gone(archive)) == {303}
        kept = archive.db.execute("select post_key, floor from posts where gone_at is null order by post_key")
        assert kept.fetchall() == [(key, floor) for key, floor, _, _ in fresh_copy(demo_forum, tmp_path)]


def test_an_archive_of_schema_8_is_upgraded_and_its_posts_can_be_found_gone(tmp_path):
    path = tmp_path / "old.db"
    with Archive(path) as archive:
        site = archive.upsert_site("old", engine="discuz", base_url="http://bbs.example.cn/")
        for page in thread_pages(list(range(101, 111))):
            save_page(archive, site, page, T0)
    # Back to what version 8 left: its posts indexes, no gone_posts column, no migrations 9-11.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("""
        DROP INDEX idx_posts_gone; DROP INDEX idx_posts_thread_pid; ALTER TABLE runs DROP COLUMN gone_posts;
        ALTER TABLE posts DROP COLUMN hash_covers_media; ALTER TABLE threads DROP COLUMN newest_first;
        ALTER TABLE threads DROP COLUMN last_archived_post_at;
        ALTER TABLE post_versions DROP COLUMN attachments_json; ALTER TABLE post_versions DROP COLUMN quotes_json;
        DROP TABLE post_reverts;
        ALTER TABLE posts DROP COLUMN subject; ALTER TABLE threads DROP COLUMN poll_json;
        ALTER TABLE threads DROP COLUMN classified_json; ALTER TABLE threads DROP COLUMN visits;
        ALTER TABLE threads DROP COLUMN special_json; DROP TABLE thread_part_versions;
        CREATE INDEX idx_posts_thread_page ON posts (thread_id, page);
        DELETE FROM schema_version WHERE version > 8;
    """)
    conn.close()
    with Archive(path) as upgraded:
        assert upgraded.db.execute("select max(version) from schema_version").fetchone()[0] == SCHEMA_VERSION
        page_1 = thread_pages([pid for pid in range(101, 111) if pid != 104])[0]
        assert save_page(upgraded, site, page_1, T1).gone_posts == 1 and gone(upgraded) == {104: T1}
