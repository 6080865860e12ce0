"""Incremental re-crawls: board rows decide what is fetched; quiet threads come back less often."""

import asyncio
import json
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from scraper import config
from scraper.crawl import CrawlOptions, Crawler
from scraper.demo.forum import DemoForum
from scraper.demo.server import start
from scraper.sites import site_from_dict
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


def forum_of_200_threads():
    """The demo forum grown to 200 threads over its two boards: 5 board pages each."""
    forum = DemoForum()
    for n in range(200 - len(forum.threads)):
        forum.add_thread(1 + n % 2, f"合成主题 {n}", "admin", f"第 {n} 个合成主题的正文。")
    assert len(forum.threads) == 200 and all(forum.board_pages(fid) == 5 for fid in forum.boards)
    return forum


def first_pages(forum):
    return {f"/forum-{fid}-1.html" for fid in forum.boards}


def thread_paths(forum, threads):
    return {f"/thread-{t.tid}-{page}-1.html" for t in threads for page in range(1, forum.thread_pages(t) + 1)}


class Recrawls:
    """The 200-thread forum, served and crawled once into an archive (`first`: that run's
    report); each recrawl() runs a few minutes after the run before it."""

    def __init__(self, forum, server, archive, site, options):
        self.forum, self.server, self.archive, self.site, self.options = forum, server, archive, site, options
        self.clock = Clock()
        self.first = None

    def recrawl(self, after=timedelta(minutes=5), **options):
        """Run again `after` the last run; returns its report and the paths it asked for."""
        mark = len(self.server.requests)
        self.clock.at += after
        report = run(self.archive, self.site, self.clock, **{**self.options, **options})
        return report, gets_since(self.server, mark)


@contextmanager
def crawled_200(tmp_path, *, forum=None, boards=None, first=None, **options):
    """Recrawls of the 200-thread forum (or `forum`); `boards`: the boards the site config
    lists (default both), `first`: options of the first crawl only, `options`: of every run."""
    forum = forum or forum_of_200_threads()
    with start("127.0.0.1", 0, forum) as server, Archive(tmp_path / "a.db") as archive:
        site = demo_site(server.base_url)
        if boards is not None:
            site = site_from_dict(dict(site.raw, boards=boards))
        crawls = Recrawls(forum, server, archive, site, options)
        crawls.first = run(archive, site, crawls.clock, **{**options, **(first or {})})
        yield crawls


def board_paths(paths):
    return sorted(p for p in paths if p.startswith("/forum-"))


def test_recrawling_an_unchanged_forum_of_200_threads_fetches_only_the_first_page_of_each_board(tmp_path):
    with crawled_200(tmp_path) as crawls:
        forum = crawls.forum
        assert not crawls.first.failures, crawls.first.failures
        assert len(set(board_paths(gets_since(crawls.server, 0)))) == board_page_count(forum)
        stored = crawls.archive.db.execute("select count(*) from threads where page_count is not null").fetchone()[0]
        assert stored == 200
        second, paths = crawls.recrawl()
    # Page 1 of each board shows nothing new, and the pages after it were read in the first
    # crawl: boards list threads by last post, so those hold only older, unchanged threads.
    assert sorted(paths) == sorted(first_pages(forum))
    assert second.requests == len(paths) and second.new_posts == 0 and second.pages_saved == len(paths)


def test_a_reply_that_bumps_a_thread_off_the_last_board_page_is_found(tmp_path):
    with crawled_200(tmp_path) as crawls:
        forum = crawls.forum
        oldest = [t for t in forum.board_threads(1) if not t.sticky][-1]
        last_page_before = forum.thread_pages(oldest)
        forum.now += timedelta(minutes=1)  # time passes on the forum: the reply is its newest post
        pid = forum.add_reply(oldest.tid, "admin", "把老帖顶上来的新回复")
        assert forum.board_threads(1)[1] is oldest, "after the sticky thread, at the top of page 1"
        report, paths = crawls.recrawl()
        stored = crawls.archive.db.execute("select count(*) from posts where pid = ?", [pid]).fetchone()[0]
    # Board 1: page 1 holds the changed row, page 2 nothing new (the row pushed down from page
    # 1 included), so page 3 on are left; board 2 shows nothing new on page 1.
    assert board_paths(paths) == ["/forum-1-1.html", "/forum-1-2.html", "/forum-2-1.html"]
    expected = [f"/thread-{oldest.tid}-{page}-1.html"
                for page in range(last_page_before, forum.thread_pages(oldest) + 1)]
    assert [p for p in paths if p.startswith("/thread-")] == expected
    assert report.requests == len(paths) == 3 + len(expected)
    assert report.new_posts == 1 and stored == 1


def test_changes_that_spill_onto_page_2_are_all_found(tmp_path):
    with crawled_200(tmp_path) as crawls:
        forum = crawls.forum
        changed = [t for t in forum.board_threads(1) if not t.sticky][::4][:25]  # from every board page
        forum.now += timedelta(minutes=1)
        for thread in changed:
            forum.add_reply(thread.tid, "admin", f"第 {thread.tid} 帖的新回复")
        report, paths = crawls.recrawl()
    # 25 bumped rows fill page 1 and 5 rows of page 2; page 3 is the first with nothing new.
    assert board_paths(paths) == ["/forum-1-1.html", "/forum-1-2.html", "/forum-1-3.html", "/forum-2-1.html"]
    threads = [p for p in paths if p.startswith("/thread-")]
    assert {p.split("-")[1] for p in threads} == {str(t.tid) for t in changed}
    assert report.new_posts == len(changed)


def test_a_board_not_listed_by_last_post_is_read_to_its_end(tmp_path):
    forum = forum_of_200_threads()
    forum.board_order = "dateline"  # newest opening post first: a reply moves no thread
    listed = [t for t in forum.board_threads(1) if not t.sticky]
    forum.now += timedelta(minutes=1)
    forum.add_reply(listed[5].tid, "admin", "第 6 行的回复比上面几行都新")  # page 1 out of last-post order
    with crawled_200(tmp_path, forum=forum) as crawls:
        oldest, pages = listed[-1], forum.thread_pages(listed[-1])
        forum.now += timedelta(minutes=1)
        pid = forum.add_reply(oldest.tid, "admin", "最后一页老帖的新回复")
        assert [t for t in forum.board_threads(1) if not t.sticky][-1] is oldest, "still on the last page"
        assert forum.thread_pages(oldest) == pages, "the reply lands on the thread's last known page"
        report, paths = crawls.recrawl()
        stored = crawls.archive.db.execute("select count(*) from posts where pid = ?", [pid]).fetchone()[0]
    # Every row of page 1 stands as archived, but their order shows the board is not listed by
    # last post, so page 1 says nothing of the rest: board 1 is read to the end (board 2 stops).
    assert board_paths(paths) == sorted([f"/forum-1-{page}.html" for page in range(1, 6)] + ["/forum-2-1.html"])
    assert [p for p in paths if p.startswith("/thread-")] == [f"/thread-{oldest.tid}-{pages}-1.html"]
    assert report.new_posts == 1 and stored == 1


def test_a_changed_sticky_thread_is_found_without_reading_on(tmp_path):
    with crawled_200(tmp_path) as crawls:
        forum = crawls.forum
        sticky = next(t for t in forum.board_threads(1) if t.sticky)
        forum.add_reply(sticky.tid, "admin", "置顶帖的新回复")
        report, paths = crawls.recrawl()
    # The sticky row heads every board page out of last-post order: its change is queued,
    # and the other rows of page 1 decide that the pages after it need no reading.
    assert sorted(paths) == sorted(first_pages(forum) | {f"/thread-{sticky.tid}-1-1.html"})
    assert report.new_posts == 1


def test_board_pages_never_read_are_read_whatever_page_1_shows(tmp_path):
    # The first crawl reads 2 pages a board, as a run stopped after page 2 would.
    with crawled_200(tmp_path, first={"max_board_pages": 2}) as crawls:
        forum = crawls.forum
        report, paths = crawls.recrawl()  # the default limit: 50 pages
        _, third = crawls.recrawl()
    unread = [t for fid in forum.boards for t in [t for t in forum.board_threads(fid) if not t.sticky][40:]]
    assert board_paths(paths) == sorted(f"/forum-{fid}-{page}.html" for fid in forum.boards for page in range(1, 6))
    assert sorted(p for p in paths if p.startswith("/thread-")) == sorted(thread_paths(forum, unread))
    assert report.new_posts == sum(len(t.posts) for t in unread)
    assert sorted(third) == sorted(first_pages(forum)), "read to the end once, the boards stop at page 1 again"


@pytest.mark.parametrize("validators", [False, True])
def test_a_thread_moved_in_from_an_unlisted_board_is_found_by_the_daily_full_read(tmp_path, validators):
    # With validators on, a board page asked conditionally would answer 304, and the read would
    # end there: board pages are asked whole.
    quiet = {"revisit_min_s": 30 * 86400, "revisit_max_s": 30 * 86400}  # no thread comes due meanwhile
    forum = forum_of_200_threads()
    forum.validators = validators
    with crawled_200(tmp_path, forum=forum, boards=[1], **quiet) as crawls:
        forum = crawls.forum
        moved = [t for t in forum.board_threads(2) if not t.sticky][-1]  # an old thread of board 2
        forum.move_thread(moved.tid, 1)
        # and one the other way, so board 1 keeps its 5 pages (a 6th, never read, would be read at once)
        forum.move_thread([t for t in forum.board_threads(1) if not t.sticky][0].tid, 2)
        normal = [t for t in forum.board_threads(1) if not t.sticky]
        assert forum.board_pages(1) == 5 and normal.index(moved) >= 80, "on board 1's last page"
        _, soon = crawls.recrawl()
        # The later pages were read a day and 5 minutes ago.
        report, later = crawls.recrawl(after=timedelta(seconds=config.BOARD_FULL_READ_S))
        stored = crawls.archive.db.execute("select page_count from threads where tid = ?", [moved.tid]).fetchone()
    # Its row changes nothing on page 1, so a run minutes later does not see it ...
    assert soon == ["/forum-1-1.html"]
    # ... but once the later pages are a day old, the board is read to its end and it is found.
    assert board_paths(later) == [f"/forum-1-{page}.html" for page in range(1, 6)]
    assert sorted(p for p in later if p.startswith("/thread-")) == sorted(thread_paths(forum, [moved]))
    assert report.new_posts == len(moved.posts) and stored == (forum.thread_pages(moved),)


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
        # A thread whose posts carry no time: its interval follows its visits alone.
        thread_id = archive.db.execute("select id from threads order by id limit 1").fetchone()[0]
        archive.db.execute("update threads set last_archived_post_at = null where id = ?", [thread_id])
        due = archive.schedule_revisit(thread_id, active=True, min_s=3600, max_s=5 * 3600, now=clock())
        assert due == (T0 + timedelta(hours=1)).isoformat(timespec="seconds"), "a visit that found news"
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


def test_a_thread_is_not_looked_at_again_sooner_than_it_has_been_quiet_on_the_forum(demo_forum, tmp_path):
    # A first crawl finds every post new, but a thread last posted to long ago is quiet: looked at
    # again after an hour, then 2, 4, 8 ... hours, a forum's every old thread cost it a request a
    # run for days (34% of the first crawl an hour later, in bench_incremental's forum).
    clock = Clock()
    with Archive(tmp_path / "a.db") as archive:
        run(archive, demo_site(demo_forum.base_url), clock)
        thread_id = archive.db.execute("select id from threads order by id limit 1").fetchone()[0]
        for quiet_for, expected in ((timedelta(days=400), timedelta(days=30)), (timedelta(days=3), timedelta(days=3)),
                                    (timedelta(minutes=10), timedelta(hours=1)), (-timedelta(days=1), timedelta(hours=1))):
            last_post = (clock.at - quiet_for).astimezone(timezone(timedelta(hours=8))).isoformat(timespec="seconds")
            # The thread's first visit: every post in it is new.
            archive.db.execute("update threads set last_archived_post_at = ?, quiet_visits = 0, visits = 0 "
                               "where id = ?", [last_post, thread_id])
            due = archive.schedule_revisit(thread_id, active=True, new_replies=True, min_s=3600, max_s=30 * 86400,
                                           now=clock())
            assert datetime.fromisoformat(due) - clock.at == expected, quiet_for
        # A quiet visit's doubling still applies where it waits longer.
        archive.db.execute("update threads set quiet_visits = 6 where id = ?", [thread_id])
        due = archive.schedule_revisit(thread_id, active=False, min_s=3600, max_s=30 * 86400, now=clock())
        assert datetime.fromisoformat(due) - clock.at == timedelta(hours=2**7)


def test_replies_new_since_the_last_visit_bring_a_thread_back_soon_whatever_time_they_print(demo_forum, tmp_path):
    # Posts new since an earlier visit are activity. With the site's offset set wrong (+14:00 for
    # this forum at +08:00), a reply posted minutes ago reads as six hours old, and one whose
    # time cannot be read leaves the thread's latest post years back: neither may put the
    # thread's next visit off by its quiet on the forum.
    forum = demo_forum.forum
    clock = Clock(start=forum.now.replace(tzinfo=forum.tz))
    site = site_from_dict(dict(demo_site(demo_forum.base_url).raw, utc_offset="+14:00"))
    with Archive(tmp_path / "a.db") as archive:
        run(archive, site, clock)
        thread = min((t for t in forum.threads.values() if forum.thread_pages(t) == 1),
                     key=lambda t: t.posts[-1].posted_at)
        thread_id, first_due = archive.db.execute("select id, next_due_at from threads where tid = ?",
                                                  [thread.tid]).fetchone()
        assert datetime.fromisoformat(first_due) - clock.at == timedelta(days=30), "quiet for years: a month"
        clock.advance(minutes=5)
        forum.add_reply(thread.tid, "admin", "一条新的回复")
        report = run(archive, site, clock)
        due = archive.db.execute("select next_due_at from threads where id = ?", [thread_id]).fetchone()[0]
        # The same visit with the new reply's time unread: the thread's latest post is years back.
        archive.db.execute("update threads set last_archived_post_at = ? where id = ?",
                           [thread.posts[0].posted_at.replace(tzinfo=forum.tz).isoformat(), thread_id])
        unread_due = archive.schedule_revisit(thread_id, active=True, new_replies=True, min_s=config.REVISIT_MIN_S,
                                              max_s=config.REVISIT_MAX_S, now=clock())
    assert report.new_posts == 1
    assert datetime.fromisoformat(due) - clock.at == timedelta(seconds=config.REVISIT_MIN_S)
    assert datetime.fromisoformat(unread_due) - clock.at == timedelta(seconds=config.REVISIT_MIN_S)


def test_a_thread_whose_last_page_failed_in_its_first_crawl_waits_as_long_as_it_was_quiet(demo_forum, tmp_path):
    # The failed page makes the thread due for the next run, where its posts come in all new:
    # that is still the thread's first visit, and a thread quiet for years waits a month after
    # it, not an hour (a rate-limited first crawl would otherwise bring its every such thread
    # back within the hour). An edit found on a later visit is no reply: it keeps the floor too.
    forum = demo_forum.forum
    clock = Clock(start=forum.now.replace(tzinfo=forum.tz))
    thread = min((t for t in forum.threads.values() if forum.thread_pages(t) > 1), key=lambda t: t.posts[-1].posted_at)
    last_page = forum.thread_pages(thread)
    demo_forum.inject(f"/thread-{thread.tid}-{last_page}-1.html", 503)
    site = site_from_dict(dict(demo_site(demo_forum.base_url).raw, politeness={"delay_s": 0, "max_tries": 1}))
    on_last_page = len(thread.posts) - (last_page - 1) * forum.posts_per_page
    with Archive(tmp_path / "a.db") as archive:
        failed = run(archive, site, clock)
        clock.advance(minutes=5)
        later = run(archive, site, clock)
        due = archive.db.execute("select next_due_at from threads where tid = ?", [thread.tid]).fetchone()[0]
        assert datetime.fromisoformat(due) - clock.at == timedelta(days=30)
        forum.edit_post(thread.posts[-1].pid, "改过的最后一楼。")
        clock.at = datetime.fromisoformat(due) + timedelta(minutes=1)
        edited = run(archive, site, clock)
        due_after_edit = archive.db.execute("select next_due_at from threads where tid = ?", [thread.tid]).fetchone()[0]
    assert failed.failures == {"http_503": 1} and later.new_posts == on_last_page
    assert edited.new_versions == 1
    assert datetime.fromisoformat(due_after_edit) - clock.at == timedelta(days=30)


def test_a_due_thread_is_revisited_at_its_last_page_and_then_waits_twice_as_long(demo_forum, tmp_path):
    clock = Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock)
        mark = len(demo_forum.requests)
        clock.advance(hours=1, minutes=1)
        due = dict(archive.db.execute("select tid, page_count from threads where next_due_at <= ?", [clock()]))
        not_due = archive.db.execute("select count(*) from threads where next_due_at > ?", [clock()]).fetchone()[0]
        report = run(archive, site, clock)
        paths = gets_since(demo_forum, mark)
        quiet = archive.db.execute("select min(quiet_visits), max(quiet_visits), min(next_due_at) from threads "
                                   "where tid in (select value from json_each(?))", [json.dumps(list(due))]).fetchone()
    # Of the demo forum's threads one was posted to in its last days; the others, quiet since
    # 2016-2023, are not due for a month.
    assert len(due) >= 1 and not_due >= 4
    thread_paths = sorted(p for p in paths if p.startswith("/thread-"))
    assert thread_paths == sorted(f"/thread-{tid}-{pages}-1.html" for tid, pages in due.items()), \
        "each due thread's last known page, once"
    assert report.new_posts == 0
    assert quiet[:2] == (1, 1)
    assert quiet[2] >= (clock.at + timedelta(hours=2)).isoformat(timespec="seconds")


def test_a_new_reply_whose_thread_fetch_failed_is_fetched_by_the_next_run(demo_forum, tmp_path):
    # The board page that showed the new reply stored the thread's new reply count, so the next
    # board read shows no change: the thread itself must stay due.
    forum, clock = demo_forum.forum, Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = site_from_dict(dict(demo_site(demo_forum.base_url).raw, politeness={"delay_s": 0, "max_tries": 1}))
        run(archive, site, clock)
        thread = next(t for t in forum.threads.values() if forum.thread_pages(t) == 1)
        pid = forum.add_reply(thread.tid, "admin", "一条新的回复")
        demo_forum.inject(f"/thread-{thread.tid}-1-1.html", 503)
        clock.advance(minutes=5)
        failed = run(archive, site, clock)
        clock.advance(minutes=5)
        later = run(archive, site, clock)
        archived = archive.db.execute("select count(*) from posts where pid = ?", [pid]).fetchone()[0]
    assert failed.failures == {"http_503": 1} and failed.new_posts == 0
    assert later.new_posts == 1 and archived == 1


def test_a_middle_page_that_failed_for_good_is_fetched_by_a_later_run(demo_forum, tmp_path):
    # A revisit starts at the thread's last known page: a page before it whose every try failed
    # in the first crawl would never be asked for again, and its posts never archived.
    forum, clock = demo_forum.forum, Clock()
    thread = max(forum.threads.values(), key=lambda t: len(t.posts))
    while forum.thread_pages(thread) < 3:
        forum.add_reply(thread.tid, "admin", f"第 {len(thread.posts)} 条回复")
    demo_forum.inject(f"/thread-{thread.tid}-2-1.html", 500, times=3)  # every try of the first crawl
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        first = run(archive, site, clock, backoff_base_s=0.01)
        clock.advance(hours=1)
        run(archive, site, clock, backoff_base_s=0.01)
        stored = archive.db.execute("select count(*) from posts join threads on threads.id = posts.thread_id "
                                    "where threads.tid = ?", [thread.tid]).fetchone()[0]
    assert first.failures == {"http_500": 3}  # every try
    assert stored == len(thread.posts)


def test_a_forum_that_moved_to_another_port_keeps_its_threads_revisited(tmp_path):
    # The site stays the same forum; its stored thread URLs still name the old address, and
    # revisits must ask where it is now.
    forum, clock = DemoForum(), Clock()
    with Archive(tmp_path / "a.db") as archive:
        with start("127.0.0.1", 0, forum) as before:
            run(archive, demo_site(before.base_url), clock)
        thread = next(t for t in forum.threads.values() if not t.sticky)
        pid = forum.add_reply(thread.tid, "admin", "搬家以后的新回复")
        clock.advance(minutes=5)
        with start("127.0.0.1", 0, forum) as after:
            report = run(archive, demo_site(after.base_url), clock, backoff_base_s=0.01)
        archived = archive.db.execute("select count(*) from posts where pid = ?", [pid]).fetchone()[0]
    assert report.failures == {} and report.new_posts == 1 and archived == 1


def test_a_thread_shrunk_by_deletions_has_its_new_replies_found(demo_forum, tmp_path):
    # A revisit asks for the last known page; once deletions take that page away, Discuz serves
    # its last page instead. That answer is the thread's last page now, not a pager's trap.
    forum, clock = demo_forum.forum, Clock()
    tid = forum.add_thread(1, "会变短的主题", "admin", "主楼")
    for i in range(forum.posts_per_page):
        forum.add_reply(tid, "bob", f"回复 {i}")
    assert forum.thread_pages(forum.threads[tid]) == 2
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock)
        for post in forum.threads[tid].posts[-2:]:
            forum.remove_post(post.pid)
        pid = forum.add_reply(tid, "carol", "删帖以后的新回复")
        clock.advance(minutes=5)
        mark = len(demo_forum.requests)
        run(archive, site, clock)
        asked = [p for p in gets_since(demo_forum, mark) if p.startswith(f"/thread-{tid}-")]
        archived = archive.db.execute("select count(*) from posts where pid = ?", [pid]).fetchone()[0]
        page_count = archive.db.execute("select page_count from threads where tid = ?", [tid]).fetchone()[0]
    assert asked == [f"/thread-{tid}-2-1.html"]  # the last known page; the forum answers with page 1
    assert archived == 1 and page_count == 1


def newest_first_thread(forum):
    longest = max(forum.threads.values(), key=lambda t: len(t.posts))
    longest.newest_first = True
    assert forum.thread_pages(longest) > 2, "the demo forum has a thread of 3 pages or more"
    return longest


def test_a_thread_listed_newest_first_waits_as_long_as_it_was_quiet_after_its_first_crawl(demo_forum, tmp_path):
    # Its first crawl sets its next visit twice, at page 1 (where its replies land) and at its
    # last page: both belong to its first visit, whose posts are all new, and a thread quiet for
    # years still waits a month, not an hour.
    forum = demo_forum.forum
    clock = Clock(start=forum.now.replace(tzinfo=forum.tz))
    thread = newest_first_thread(forum)
    assert forum.now - thread.posts[-1].posted_at > timedelta(days=60)
    with Archive(tmp_path / "a.db") as archive:
        run(archive, demo_site(demo_forum.base_url), clock)
        due, visits = archive.db.execute("select next_due_at, visits from threads where tid = ?",
                                         [thread.tid]).fetchone()
    assert visits == 2  # page 1 and the last page
    assert datetime.fromisoformat(due) - clock.at == timedelta(days=30)


@pytest.mark.parametrize("validators", [False, True])
def test_a_thread_listed_newest_first_is_revisited_at_page_1_where_its_replies_land(demo_forum, tmp_path,
                                                                                     validators):
    # A thread set to show replies newest first (倒序看帖) puts new replies on page 1 and pushes
    # the rest down: its last page holds its oldest replies, and asking there found nothing new.
    forum, clock = demo_forum.forum, Clock()
    forum.validators = validators  # then a quiet page 1 answers 304, which must move its next visit too
    longest = newest_first_thread(forum)
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock)
        # The opening post, kept on top of page 1, is not taken for gone by the last page.
        assert archive.db.execute("select count(*) from posts where gone_at is not null").fetchone()[0] == 0
        new_pids = [forum.add_reply(longest.tid, "admin", f"置顶之下的新回复 {i}") for i in range(2)]
        mark = len(demo_forum.requests)
        clock.advance(minutes=5)
        report = run(archive, site, clock)
        after_replies = [p for p in gets_since(demo_forum, mark) if p.startswith("/thread-")]
        stored = {row[0]: row[1:] for row in archive.db.execute(
            "select pid, floor, page from posts join threads on threads.id = posts.thread_id where threads.tid = ?",
            [longest.tid])}
        gone = archive.db.execute("select count(*) from posts where gone_at is not null").fetchone()[0]
        # Quiet since: when it falls due, its page 1 is asked, once.
        clock.at = datetime.fromisoformat(archive.db.execute(
            "select next_due_at from threads where tid = ?", [longest.tid]).fetchone()[0]) + timedelta(minutes=1)
        mark = len(demo_forum.requests)
        quiet = run(archive, site, clock)
        when_due = [p for p in gets_since(demo_forum, mark) if p.startswith(f"/thread-{longest.tid}-")]
        next_due = archive.db.execute("select next_due_at from threads where tid = ?", [longest.tid]).fetchone()[0]
        answered = archive.db.execute("select status from fetches where url like ? order by id desc limit 1",
                                      [f"%/thread-{longest.tid}-1-1.html"]).fetchone()[0]
    # Page 1 held the new replies; page 2 held none (only replies pushed down from page 1): no further.
    assert after_replies == [f"/thread-{longest.tid}-1-1.html", f"/thread-{longest.tid}-2-1.html"]
    assert report.new_posts == 2 and all(stored[pid][1] == 1 for pid in new_pids)
    assert len(stored) == len(longest.posts) and gone == 0  # pushed down a page, not gone
    assert when_due == [f"/thread-{longest.tid}-1-1.html"] and quiet.new_posts == 0
    assert next_due > clock(), "a quiet page 1 sets the next visit, 304 or not"
    assert answered == (304 if validators else 200)


def test_a_thread_listed_newest_first_gets_its_unsaved_last_page_on_a_revisit(demo_forum, tmp_path):
    forum, clock = demo_forum.forum, Clock()
    longest = newest_first_thread(forum)
    last = forum.thread_pages(longest)
    with Archive(tmp_path / "a.db") as archive:
        site = site_from_dict(dict(demo_site(demo_forum.base_url).raw, politeness={"delay_s": 0, "max_tries": 1}))
        demo_forum.inject(f"/thread-{longest.tid}-{last}-1.html", 503)
        run(archive, site, clock)
        missing = archive.db.execute("select count(*) from posts join threads on threads.id = posts.thread_id "
                                     "where threads.tid = ?", [longest.tid]).fetchone()[0]
        clock.at = datetime.fromisoformat(archive.db.execute(
            "select next_due_at from threads where tid = ?", [longest.tid]).fetchone()[0]) + timedelta(minutes=1)
        mark = len(demo_forum.requests)
        run(archive, site, clock)
        asked = [p for p in gets_since(demo_forum, mark) if p.startswith(f"/thread-{longest.tid}-")]
        stored = archive.db.execute("select count(*) from posts join threads on threads.id = posts.thread_id "
                                    "where threads.tid = ?", [longest.tid]).fetchone()[0]
    assert missing < len(longest.posts)
    assert f"/thread-{longest.tid}-{last}-1.html" in asked and stored == len(longest.posts)


def test_an_archive_hashed_before_versions_covered_media_takes_them_up_without_a_version(demo_forum, tmp_path):
    # As the version before schema 11 left it: every post hashed on its text alone (scheme 0),
    # every page's extract made of those hashes. One full read later every post covers its
    # media, and not one of them became a version.
    from storage.archive import MEDIA_HASH_SCHEME
    from storage.dedup import content_hash, extract_hash

    clock = Clock()
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock)
        posts = archive.db.execute("select id, content_text, content_hash from posts").fetchall()
        for post_id, text, version_hash in posts:
            archive.db.execute("update posts set content_hash = ?, hash_covers_media = 0 where id = ?",
                               [content_hash(text), post_id])
            archive.db.execute("update post_versions set content_hash = ? where post_id = ? and content_hash = ?",
                               [content_hash(text), post_id, version_hash])
        for page_id, thread_id, page_no in archive.db.execute(
                "select id, thread_id, page_no from pages where kind = 'thread'").fetchall():
            on_page = archive.db.execute("select post_key, content_hash from posts where thread_id = ? and page = ? "
                                         "order by floor is not null, floor", [thread_id, page_no]).fetchall()
            archive.db.execute("update pages set extract_hash = ? where id = ?",
                               [extract_hash(list(row) for row in on_page), page_id])
        changed_by_media = sum(content_hash(text) != version_hash for _, text, version_hash in posts)
        clock.advance(minutes=5)
        report = run(archive, site, clock, incremental=False)
        after = archive.db.execute("select hash_covers_media, version_count from posts").fetchall()
        mismatched = archive.db.execute(
            "select count(*) from posts p join post_versions v on v.post_id = p.id where v.content_hash <> p.content_hash"
        ).fetchone()[0]
    assert 0 < changed_by_media < len(posts), "the demo forum has posts with media and without"
    assert report.new_versions == 0 and report.new_posts == 0
    assert set(after) == {(MEDIA_HASH_SCHEME, 1)} and mismatched == 0


def test_a_thread_listed_newest_first_stays_so_when_a_later_page_was_read_alone(demo_forum, tmp_path):
    # After a page of new replies, page 2 read on its own (a verify re-read, a crawl of that
    # URL) holds what page 1 held: the order must not be read from where posts were last seen.
    forum, clock = demo_forum.forum, Clock()
    longest = newest_first_thread(forum)
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, clock)
        new_pids = [forum.add_reply(longest.tid, "admin", f"又一条新回复 {i}") for i in range(forum.posts_per_page)]
        page_2 = f"{demo_forum.base_url}thread-{longest.tid}-2-1.html"
        options = CrawlOptions(delay_s=0, allow_private_hosts=LOCAL, incremental=True)
        asyncio.run(Crawler(archive, site, options=options, now=clock).run([page_2]))
        clock.at = datetime.fromisoformat(archive.db.execute(
            "select next_due_at from threads where tid = ?", [longest.tid]).fetchone()[0]) + timedelta(minutes=1)
        mark = len(demo_forum.requests)
        run(archive, site, clock)
        asked = [p for p in gets_since(demo_forum, mark) if p.startswith(f"/thread-{longest.tid}-")]
        stored = {row[0] for row in archive.db.execute("select pid from posts")}
    assert f"/thread-{longest.tid}-1-1.html" in asked
    assert set(new_pids) <= stored
