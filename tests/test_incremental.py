"""Incremental re-crawls: board rows decide what is fetched; quiet threads come back less often."""

import asyncio
from datetime import datetime, timedelta, timezone

from scraper.crawl import CrawlOptions, Crawler
from scraper.demo.forum import DemoForum
from scraper.demo.server import start
from storage.archive import Archive
from tests.test_crawl_demo import demo_site

LOCAL = frozenset({"127.0.0.1"})
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


class Clock:
    """An injectable clock the test moves by hand."""

    def __init__(self, start: datetime = T0):
        self.at = start

    def __call__(self) -> str:
        return self.at.isoformat(timespec="seconds")

    def advance(self, **delta) -> None:
        self.at += timedelta(**delta)


def run(archive, site, clock, **options):
    options = CrawlOptions(**{"delay_s": 0, "allow_private_hosts": LOCAL, "incremental": True, **options})
    boards = [f"{site.base_url}forum-{fid}-1.html" for fid in site.boards]
    return asyncio.run(Crawler(archive, site, options=options, now=clock).run(boards, job="refresh"))


def gets_since(server, mark):
    return [r.path for r in server.requests[mark:] if r.method == "GET"]


def board_page_count(forum):
    return sum(forum.board_pages(fid) for fid in forum.boards)


def test_recrawling_an_unchanged_forum_of_200_threads_fetches_only_its_board_pages(tmp_path):
    forum = DemoForum()
    for n in range(200 - len(forum.threads)):
        forum.add_thread(1 + n % 2, f"合成主题 {n}", "admin", f"第 {n} 个合成主题的正文。")
    assert len(forum.threads) == 200
    clock = Clock()
    with start("127.0.0.1", 0, forum) as server, Archive(tmp_path / "a.db") as archive:
        site = demo_site(server.base_url)
        first = run(archive, site, clock)
        assert not first.failures, first.failures
        stored = archive.db.execute("select count(*) from threads where page_count is not null").fetchone()[0]
        assert stored == 200
        mark = len(server.requests)
        clock.advance(minutes=5)
        second = run(archive, site, clock)
        paths = gets_since(server, mark)
    assert paths and all(p.startswith("/forum-") for p in paths), paths
    assert len(paths) == second.requests == board_page_count(forum)
    assert second.new_posts == 0 and second.pages_saved == len(paths)


def test_a_new_reply_fetches_only_that_threads_last_known_page_onward(demo_forum, tmp_path):
    forum, clock = demo_forum.forum, Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock)
        longest = max(forum.threads.values(), key=lambda t: len(t.posts))
        last_page = forum.thread_pages(longest)
        assert last_page > 1, "the demo forum has a multi-page thread"
        # Fill the last page and spill one reply onto a new page.
        missing = forum.posts_per_page - len(longest.posts) % forum.posts_per_page + 1
        for i in range(missing):
            forum.add_reply(longest.tid, "admin", f"新的回复 {i}")
        mark = len(demo_forum.requests)
        clock.advance(minutes=5)
        report = run(archive, site, clock)
        paths = gets_since(demo_forum, mark)
        stored = archive.db.execute("select count(*) from posts join threads on threads.id = posts.thread_id "
                                    "where threads.tid = ?", [longest.tid]).fetchone()[0]
    thread_paths = [p for p in paths if not p.startswith("/forum-")]
    assert thread_paths == [f"/thread-{longest.tid}-{last_page}-1.html",
                            f"/thread-{longest.tid}-{last_page + 1}-1.html"]
    assert report.new_posts == missing
    assert stored == len(longest.posts)


def test_quiet_threads_come_back_geometrically_less_often_up_to_the_ceiling(demo_forum, tmp_path):
    clock = Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock)
        thread_id, due = archive.db.execute("select id, next_due_at from threads order by id limit 1").fetchone()
        assert due == (T0 + timedelta(hours=1)).isoformat(timespec="seconds"), "first visit found news"
        intervals = []
        for _ in range(4):
            clock.at = datetime.fromisoformat(archive.db.execute(
                "select next_due_at from threads where id = ?", [thread_id]).fetchone()[0])
            before = clock.at
            due = archive.schedule_revisit(thread_id, active=False, min_s=3600, max_s=5 * 3600, now=clock())
            intervals.append((datetime.fromisoformat(due) - before).total_seconds() / 3600)
        assert intervals == [2, 4, 5, 5]
        due = archive.schedule_revisit(thread_id, active=True, min_s=3600, max_s=5 * 3600, now=clock())
        assert datetime.fromisoformat(due) - clock.at == timedelta(hours=1)


def test_a_due_thread_is_revisited_at_its_last_page_and_then_waits_twice_as_long(demo_forum, tmp_path):
    clock = Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock)
        threads = archive.db.execute("select count(*) from threads").fetchone()[0]
        mark = len(demo_forum.requests)
        clock.advance(hours=1, minutes=1)
        report = run(archive, site, clock)
        paths = gets_since(demo_forum, mark)
        quiet = archive.db.execute("select min(quiet_visits), max(quiet_visits), min(next_due_at) from threads"
                                   ).fetchone()
    thread_paths = [p for p in paths if p.startswith("/thread-")]
    assert len(thread_paths) == threads, "each thread's last known page, once"
    assert report.new_posts == 0
    assert quiet[:2] == (1, 1)
    assert quiet[2] == (clock.at + timedelta(hours=2)).isoformat(timespec="seconds")
