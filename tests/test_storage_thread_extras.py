"""Storing what a thread page shows outside the post bodies: posts.subject, threads.poll_json and
threads.classified_json (migration 17), threads.special_json (migration 19), and each value they
took in thread_part_versions (migration 20), from pages the engine parsed off the fixtures."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import sqlite_utils

from scraper.engines.base import ParseContext, PostStatus
from scraper.engines.discuz_text import parse_text_page
from storage.archive import Archive, _distinct_posts, _post_values, thread_page_extract_hash
from storage.dedup import extract_hash, thread_key
from storage.schema import MIGRATIONS, SCHEMA_VERSION, ensure_schema
from tests.test_discuz_engine import fixture
from tests.test_discuz_thread_extras import CLASSIFIED_URL, POLL_URL, thread
from tests.test_storage_support import T0, T1, T2, T3, archive, site_id  # noqa: F401  (fixtures)
from tests.test_text_import import SEED_TEXT, demo_ctx

POLL_PAGE_2_URL = "http://bbs.example.cn/thread-120-2-1.html"


def save(archive, site_id, page, now, url=POLL_URL):
    return archive.save_thread_page(site_id, page, url=url, url_key=url, now=now)


def thread_row(archive, tid):
    return next(archive.db.query("SELECT * FROM threads WHERE tid = ?", [tid]))


def stored_poll(archive, tid=120):
    value = thread_row(archive, tid)["poll_json"]
    return json.loads(value) if value is not None else None


def subjects(archive):
    return archive.db.execute("SELECT pid, subject FROM posts ORDER BY pid").fetchall()


def poll_page(votes_of_first: int = 9):
    return thread(fixture("thread_poll").replace('(9)</em>', f'({votes_of_first})</em>'))


def poll_page_2():
    """Page 2 of the poll thread: replies only, no opening post and so no poll (as the engine
    reads a page without floor 1: test_discuz_thread_extras)."""
    page = poll_page()
    replies = [replace(post, pid=post.pid + 10, floor=post.floor + 10, floor_label=f"{post.floor + 10}#", subject=None)
               for post in page.posts]
    return replace(page, page=2, page_count=2, poll=None, posts=replies)


def test_a_poll_page_stores_its_poll_and_the_replies_subjects(archive, site_id):
    save(archive, site_id, poll_page(), T1)
    assert stored_poll(archive) == {
        "options": [{"text": "按时间顺序写", "votes": 9}, {"text": "按工作板块写 范文", "votes": 8},
                    {"text": "不写", "votes": 1}],
        "voters": 12, "multiple": True, "max_choices": 2, "results_hidden": False, "ended": False,
        "remaining_raw": "3 天 5 小时 12 分钟", "seen_at": T1,
    }
    assert thread_row(archive, 120)["classified_json"] is None
    assert subjects(archive) == [(2001, None), (2002, "回复：按时间顺序 & 分板块"), (2003, None)]
    # SQL reads the options with json_each.
    rows = archive.db.execute("""SELECT o.value ->> 'text', o.value ->> 'votes' FROM threads,
        json_each(threads.poll_json, '$.options') AS o WHERE tid = 120""").fetchall()
    assert rows == [("按时间顺序写", 9), ("按工作板块写 范文", 8), ("不写", 1)]


def test_a_later_page_keeps_the_poll_and_page_1_refreshes_it(archive, site_id):
    save(archive, site_id, poll_page(), T1)
    second = poll_page_2()
    assert second.page == 2 and second.poll is None
    save(archive, site_id, second, T2, url=POLL_PAGE_2_URL)
    assert stored_poll(archive)["options"][0] == {"text": "按时间顺序写", "votes": 9}
    save(archive, site_id, poll_page(votes_of_first=10), T3)
    assert stored_poll(archive)["options"][0] == {"text": "按时间顺序写", "votes": 10}
    assert stored_poll(archive)["seen_at"] == T3


def test_new_votes_make_page_1_worth_saving_again_but_the_countdown_does_not():
    # The crawler skips a page whose extract hash is as archived: counts must change it.
    assert thread_page_extract_hash(poll_page(10)) != thread_page_extract_hash(poll_page(9))
    later = thread(fixture("thread_poll").replace("12 分钟", "11 分钟"))
    assert thread_page_extract_hash(later) == thread_page_extract_hash(poll_page(9))


def test_a_page_without_extras_hashes_as_before():
    # A page without subjects, poll or classified fields hashes as its posts alone, as before
    # these were read: they add nothing to it. (A release that moves the hash scheme still
    # has every page saved once more when next fetched: the scheme is in each post's entry.)
    page = thread(fixture("thread_page1"), "http://bbs.example.cn/thread-88-1-1.html")
    posts = _distinct_posts(thread_key(page.tid, page.title), page.posts)
    before = extract_hash((key, v["content_hash"], v["hash_covers_media"])
                          for key, v in ((k, _post_values(p)) for k, p in posts.items()))
    assert thread_page_extract_hash(page) == before


def test_page_1_without_the_poll_clears_it_and_a_locked_opening_post_does_not(archive, site_id):
    save(archive, site_id, poll_page(), T1)
    page = poll_page()
    locked = replace(page, poll=None, posts=[replace(page.posts[0], status=PostStatus.BLOCKED), *page.posts[1:]])
    save(archive, site_id, locked, T2)
    assert stored_poll(archive) is not None
    save(archive, site_id, replace(page, poll=None), T3)
    assert stored_poll(archive) is None


def test_classified_information_is_stored_and_cleared_only_by_page_1(archive, site_id):
    page = thread(fixture("thread_classified"), CLASSIFIED_URL)
    save(archive, site_id, page, T1, url=CLASSIFIED_URL)
    assert json.loads(thread_row(archive, 130)["classified_json"]) == {"sort_name": "房屋出租", "fields": [
        {"title": "租金", "value": "2500 元/月"}, {"title": "户型", "value": "两室一厅"},
        {"title": "地址", "value": "城东区 光明路 12 号"}, {"title": "联系电话", "value": "-"}]}
    rows = archive.db.execute("""SELECT f.value ->> 'value' FROM threads, json_each(threads.classified_json, '$.fields') AS f
        WHERE tid = 130 AND f.value ->> 'title' = '租金'""").fetchall()
    assert rows == [("2500 元/月",)]
    save(archive, site_id, replace(page, classified=None), T2, url=CLASSIFIED_URL)
    assert thread_row(archive, 130)["classified_json"] is None


def test_a_changed_subject_is_refreshed_without_a_new_version(archive, site_id):
    save(archive, site_id, poll_page(), T1)
    page = poll_page()
    renamed = replace(page, posts=[page.posts[0], replace(page.posts[1], subject="改过的标题"), page.posts[2]])
    result = save(archive, site_id, renamed, T2)
    assert (result.new_versions, result.new_posts) == (0, 0)
    assert subjects(archive)[1] == (2002, "改过的标题")
    assert archive.db.execute("SELECT version_count FROM posts WHERE pid = 2002").fetchone() == (1,)
    # A rendering that shows no subject (a blocked post) keeps the one archived.
    blocked = replace(page, posts=[page.posts[0], replace(page.posts[1], subject=None, status=PostStatus.BLOCKED),
                                   page.posts[2]])
    save(archive, site_id, blocked, T3)
    assert subjects(archive)[1] == (2002, "改过的标题")


def test_a_subject_removed_on_the_forum_is_removed_but_a_repeat_on_page_1_keeps_it(archive, site_id):
    save(archive, site_id, poll_page(), T1)
    page = poll_page()
    # The reply repeated at the top of page 1 (a hot reply: no floor number, no title there),
    # its own floor on another page; a vote makes the page one to save.
    hot = replace(page.posts[1], floor=None, floor_label="推荐", subject=None)
    assert save(archive, site_id, replace(poll_page(10), posts=[page.posts[0], hot, page.posts[2]]), T2).page_changed
    assert subjects(archive)[1] == (2002, "回复：按时间顺序 & 分板块")
    # The forum page itself, at the reply's floor, without the title: its author took it out.
    untitled = thread(fixture("thread_poll").replace("<h2>回复：按时间顺序 &amp; 分板块</h2>", ""))
    assert untitled.posts[1].floor == 2 and untitled.posts[1].subject is None
    result = save(archive, site_id, untitled, T3)
    assert result.page_changed and result.new_versions == 0
    assert subjects(archive)[1] == (2002, None)


def test_a_text_rendering_of_page_1_erases_nothing(archive, site_id):
    text_page = parse_text_page(SEED_TEXT, demo_ctx(POLL_URL))
    assert text_page.page == 1 and text_page.posts[0].floor == 1 and text_page.poll is None
    crawled = replace(
        text_page, poll=poll_page().poll, classified=thread(fixture("thread_classified"), CLASSIFIED_URL).classified,
        posts=[replace(post, pid=9000 + post.floor, media_refs=(), subject="标题" if post.floor == 2 else None)
               for post in text_page.posts])
    save(archive, site_id, crawled, T1)
    save(archive, site_id, text_page, T2)
    row = thread_row(archive, 120)
    assert json.loads(row["poll_json"])["voters"] == 12
    assert json.loads(row["classified_json"])["sort_name"] == "房屋出租"
    assert archive.db.execute("SELECT subject FROM posts WHERE floor = 2").fetchall() == [("标题",)]


def test_migrations_17_to_19_upgrade_a_version_16_archive_in_place(tmp_path):
    path = tmp_path / "archive.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert ensure_schema(sqlite_utils.Database(conn), MIGRATIONS[:16]) == 16
    conn.executescript("""
        INSERT INTO sites (id, name, engine, base_url, created_at) VALUES (1, 'laomi', 'discuz', 'http://bbs.example.cn/', 'x');
        INSERT INTO threads (id, site_id, tid, thread_key, title, first_seen_at, last_seen_at)
            VALUES (1, 1, 120, '120', '年终总结怎么写？大家投个票', 'x', 'x');
        INSERT INTO threads (id, site_id, tid, thread_key, title, next_due_at, first_seen_at, last_seen_at)
            VALUES (2, 1, 121, '121', '已经来过的主题', '2024-04-01T00:00:00+00:00', 'x', 'x');
        INSERT INTO posts (id, site_id, thread_id, pid, post_key, floor, content_text, content_html, content_hash,
            version_count, first_seen_at, last_seen_at)
        VALUES (1, 1, 1, 2002, '2002', 2, '我两样都用。', '我两样都用。', 'h', 1, 'x', 'x');
    """)
    conn.close()
    with Archive(path) as upgraded:
        assert upgraded.db.execute("SELECT max(version) FROM schema_version").fetchone() == (SCHEMA_VERSION,) == (20,)
        assert upgraded.db.execute(
            "SELECT poll_json, classified_json, special_json FROM threads WHERE id = 1").fetchone() == (None, None, None)
        # A thread with a due time was most likely visited to its end; one without, not yet.
        assert upgraded.db.execute("SELECT id, visits FROM threads ORDER BY id").fetchall() == [(1, 0), (2, 1)]
        assert upgraded.db.execute("SELECT subject FROM posts").fetchone() == (None,)
        save(upgraded, 1, poll_page(), T1)
        assert stored_poll(upgraded)["voters"] == 12
        assert upgraded.db.execute("SELECT count(*) FROM threads").fetchone() == (2,)
        assert upgraded.db.execute("SELECT subject FROM posts WHERE pid = 2002").fetchone() == ("回复：按时间顺序 & 分板块",)


SPECIAL_URL = "http://bbs.example.cn/thread-120-1-1.html"


def special_page(name: str, html_edit=lambda html: html):
    return thread(html_edit(fixture(name)), SPECIAL_URL)


def stored_special(archive, tid=120):
    value = thread_row(archive, tid)["special_json"]
    return json.loads(value) if value is not None else None


def test_a_debate_thread_stores_both_sides_and_saves_again_when_the_votes_move(archive, site_id):
    first = save(archive, site_id, special_page("thread_debate"), T1, url=SPECIAL_URL)
    special = stored_special(archive)
    assert special["kind"] == "debate" and special["best_answer_pid"] is None
    fields = {field["name"]: field["value"] for field in special["fields"]}
    assert fields["affirm_point"] == "要写不足，才显得实事求是。" and fields["negative_votes"] == "5"
    # The same page again is unchanged: nothing is written.
    assert not save(archive, site_id, special_page("thread_debate"), T2, url=SPECIAL_URL).page_changed
    # Votes are not a post's text: the page is saved again, the thread's sides refreshed, no version made.
    moved = save(archive, site_id, special_page("thread_debate", lambda h: h.replace("反方观点 (5)", "反方观点 (6)")),
                 T3, url=SPECIAL_URL)
    assert moved.page_changed and moved.new_versions == 0 and first.new_posts == 3
    assert {f["name"]: f["value"] for f in stored_special(archive)["fields"]}["negative_votes"] == "6"


def test_a_reward_thread_stores_its_bounty_and_best_answer(archive, site_id):
    save(archive, site_id, special_page("thread_reward"), T1, url=SPECIAL_URL)
    assert stored_special(archive) == {
        "kind": "reward",
        "fields": [{"name": "price", "value": "20"}, {"name": "credit", "value": "金钱"},
                   {"name": "state", "value": "已解决"}, {"name": "best_answer_author", "value": "李四"}],
        "best_answer_pid": 2002,
    }


def test_special_parts_gone_from_the_opening_post_are_gone_from_the_thread(archive, site_id):
    save(archive, site_id, special_page("thread_activity"), T1, url=SPECIAL_URL)
    assert stored_special(archive)["kind"] == "activity"
    # A later page shows no opening post: the thread keeps what page 1 showed.
    page_2 = replace(special_page("thread_activity"), page=2, page_count=2, special=None,
                     posts=[replace(post, pid=post.pid + 10, floor=post.floor + 10, floor_label=f"{post.floor + 10}#")
                            for post in special_page("thread_activity").posts])
    save(archive, site_id, page_2, T2, url=POLL_PAGE_2_URL)
    assert stored_special(archive)["kind"] == "activity"
    # Page 1 shown whole without them (the thread made an ordinary one): they are gone.
    save(archive, site_id, replace(special_page("thread_activity"), special=None), T3, url=SPECIAL_URL)
    assert stored_special(archive) is None


# thread_page_extract_hash of fixture pages, computed by 37ded5b (before migration 19).
HASHES_BEFORE_SPECIAL_THREADS = {
    "thread_poll": "3c13c6435d1dd6b12d5caa4c37343072b30b3e0fb65b41cacfe9648c65fd0c5f",
    "thread_classified": "25a6a1d71ec0496806494e63619a0d53e8789bb4d9c6da4e69cbfc35dad00bc4",
}


def test_pages_without_special_parts_hash_as_before():
    # Else an archive from before migration 19 would save every ordinary page again.
    pages = {"thread_poll": thread(fixture("thread_poll")),
             "thread_classified": thread(fixture("thread_classified"), CLASSIFIED_URL)}
    assert {name: thread_page_extract_hash(page) for name, page in pages.items()} == HASHES_BEFORE_SPECIAL_THREADS
    assert thread_page_extract_hash(special_page("thread_debate")) != thread_page_extract_hash(
        replace(special_page("thread_debate"), special=None))


def part_versions(archive, part):
    rows = archive.db.execute("SELECT value_json, seen_at FROM thread_part_versions WHERE part = ? ORDER BY id",
                              [part]).fetchall()
    return [(json.loads(value) if value is not None else None, seen_at) for value, seen_at in rows]


def test_each_value_a_poll_takes_is_kept_and_a_countdown_alone_is_no_change(archive, site_id):
    save(archive, site_id, poll_page(9), T1)
    # A reply edited and the countdown moved: the page is saved again, and the poll is the same.
    countdown = thread(fixture("thread_poll").replace("12 分钟", "11 分钟").replace("我两样都用。", "我两样都用过。"))
    assert save(archive, site_id, countdown, T2).new_versions == 1
    assert stored_poll(archive)["remaining_raw"] == "3 天 5 小时 11 分钟"
    save(archive, site_id, poll_page(10), T3)
    versions = part_versions(archive, "poll")
    assert [(v["options"][0]["votes"], seen_at) for v, seen_at in versions] == [(9, T1), (10, T3)]
    assert versions[-1][0] == stored_poll(archive)  # the latest is the threads row's
    assert part_versions(archive, "classified") == [] and part_versions(archive, "special") == []


def test_a_part_gone_from_page_1_is_kept_as_gone(archive, site_id):
    save(archive, site_id, special_page("thread_debate"), T1, url=SPECIAL_URL)
    save(archive, site_id, replace(special_page("thread_debate"), posts=special_page("thread_debate").posts[1:],
                                   page=2, page_count=2, special=None), T2, url=POLL_PAGE_2_URL)
    save(archive, site_id, replace(special_page("thread_debate"), special=None), T3, url=SPECIAL_URL)
    versions = part_versions(archive, "special")
    assert [(v["kind"] if v else None, seen_at) for v, seen_at in versions] == [("debate", T1), (None, T3)]


def test_migration_20_starts_the_versions_with_each_part_as_last_seen(tmp_path):
    path = tmp_path / "archive.db"
    with Archive(path) as archive:
        site = archive.upsert_site("laomi", engine="discuz", base_url="http://bbs.example.cn/")
        save(archive, site, poll_page(), T1)
        save(archive, site, thread(fixture("thread_classified"), CLASSIFIED_URL), T2, url=CLASSIFIED_URL)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("DROP TABLE thread_part_versions; DELETE FROM schema_version WHERE version = 20;")
    conn.close()
    with Archive(path) as upgraded:
        rows = upgraded.db.execute("SELECT thread_id, part, seen_at FROM thread_part_versions ORDER BY id").fetchall()
        assert rows == [(1, "poll", T1), (2, "classified", T2)]
        # Seeded with the stored values themselves: the next save of the same poll adds nothing.
        save(upgraded, 1, poll_page(), T3)
        assert len(part_versions(upgraded, "poll")) == 1


def test_an_expired_classified_sort_is_kept_with_its_notice_and_its_fields_in_the_versions(archive, site_id):
    from tests.test_discuz_thread_extras import _expired

    page = thread(fixture("thread_classified"), CLASSIFIED_URL)
    save(archive, site_id, page, T1, url=CLASSIFIED_URL)
    save(archive, site_id, thread(_expired(fixture("thread_classified")), CLASSIFIED_URL), T2, url=CLASSIFIED_URL)
    assert json.loads(thread_row(archive, 130)["classified_json"]) == {
        "sort_name": None, "fields": [], "expired_notice": "该信息已经过期"}
    versions = part_versions(archive, "classified")
    assert [v["sort_name"] for v, _ in versions] == ["房屋出租", None]  # the fields as they were, then the notice
