"""While the forum changes, incremental runs converge to its exact state at a known request cost."""

import asyncio

from scraper.crawl import CrawlOptions, Crawler
from storage.archive import Archive
from tests.test_crawl_demo import demo_site
from tests.test_incremental import Clock, board_page_count, gets_since

LOCAL = frozenset({"127.0.0.1"})


def refresh(archive, site, clock, verify_budget):
    # No minimum age: the pages were read minutes ago, and this test verifies them all; a cycle of
    # one run makes every page due now, so the budget decides how many are read.
    options = CrawlOptions(delay_s=0, allow_private_hosts=LOCAL, incremental=True,
                           verify_budget_requests=verify_budget, verify_min_age_s=0,
                           run_interval_s=3600, verify_cycle_s=3600)
    boards = [f"{site.base_url}forum-{fid}-1.html" for fid in site.boards]
    return asyncio.run(Crawler(archive, site, options=options, now=clock).run(boards, job="refresh"))


def first_refresh(archive, site, clock) -> int:
    """The first refresh of an empty archive (no verify pass); returns the thread pages it stored."""
    refresh(archive, site, clock, 0)
    return archive.db.execute("select count(*) from pages where kind = 'thread'").fetchone()[0]


def fresh_copy(server, tmp_path):
    """What a from-scratch crawl of the forum stores now: the state to converge to."""
    with Archive(tmp_path / "fresh.db") as archive:
        refresh(archive, demo_site(server.base_url), Clock(), 0)
        return archive.db.execute("select post_key, floor, content_hash, status from posts order by post_key"
                                  ).fetchall()


def test_the_archive_converges_and_the_forum_sees_only_boards_and_changed_pages(demo_forum, tmp_path):
    forum, clock = demo_forum.forum, Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        thread_pages = first_refresh(archive, site, clock)

        replied = max(forum.threads.values(), key=lambda t: len(t.posts))
        forum.add_reply(replied.tid, "admin", "收敛测试的新回复")
        new_tid = forum.add_thread(1, "收敛测试新主题", "admin", "新主题的正文。")
        quiet = [t for t in forum.threads.values() if t.tid not in (replied.tid, new_tid) and len(t.posts) > 2]
        edited, deleted = quiet[0].posts[1], quiet[-1].posts[2]
        forum.edit_post(edited.pid, "这一楼被编辑过了。")
        forum.delete_post(deleted.pid)

        mark = len(demo_forum.requests)
        clock.advance(minutes=10)
        # A budget that re-reads every stored thread page once: the only way to see the edit
        # and the deletion, which change no board row.
        report = refresh(archive, site, clock, thread_pages)
        paths = gets_since(demo_forum, mark)
        archived = archive.db.execute("select post_key, floor, content_hash, status from posts order by post_key"
                                      ).fetchall()
        versions = archive.db.execute("select version_count from posts where pid = ?", [edited.pid]).fetchone()
        gone = archive.db.execute("select status from posts where pid = ?", [deleted.pid]).fetchone()

    changed = [f"/thread-{replied.tid}-{forum.thread_pages(replied)}-1.html", f"/thread-{new_tid}-1-1.html"]
    boards = [p for p in paths if p.startswith("/forum-")]
    assert len(boards) == board_page_count(forum)
    for path in changed:
        assert path in paths
    # Boards, the two changed pages, and the verify pass over every page not already fetched.
    assert len(paths) == report.requests == board_page_count(forum) + len(changed) + thread_pages - 1
    assert len(set(paths)) == len(paths), "no page twice"
    assert report.new_posts == 2 and report.new_versions == 1
    assert versions == (2,)
    assert gone[0] == "deleted"
    fresh = fresh_copy(demo_forum, tmp_path)
    # A deleted post keeps the text it had in the archive: only its status follows the forum.
    assert [(key, floor, status) for key, floor, _, status in archived] == [
        (key, floor, status) for key, floor, _, status in fresh]
    assert [row for row in archived if row[3] == "normal"] == [row for row in fresh if row[3] == "normal"]
