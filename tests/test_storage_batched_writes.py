"""storage.archive's batched save path: a page's posts go in with one executemany per kind of
row, and a page stays all or nothing; re-saving a thread leaves its title's index alone."""

from __future__ import annotations

import dataclasses

import json
import re
import sqlite3
from dataclasses import replace
from urllib.parse import quote

import pytest

from scraper.engines.base import Attachment, BoardPage, BoardRow, PostStatus, Quote
from storage.archive import MEDIA_HASH_SCHEME
from storage.dedup import content_hash
from tests.test_storage_support import (  # noqa: F401  (fixtures)
    T0,
    T1,
    T2,
    T3,
    archive,
    count,
    make_page,
    make_post,
    rich_post,
    site_id,
    tally,
)

URL = "http://bbs.example.cn/thread-88-1-1.html"
TEXTS = {pid: f"第{pid}楼的内容,办公室是一个单位的综合办事机构。" for pid in range(1001, 1007)}
EDITED = "第1002楼改过的内容。"


def save(archive, site_id, page, now, url=URL):
    return archive.save_thread_page(site_id, page, url=url, url_key=url, now=now)


def post_rows(archive):
    """(pid, content_text, status, version_count, first_seen_at, last_seen_at) by pid."""
    rows = archive.db.execute(
        "SELECT pid, content_text, status, version_count, first_seen_at, last_seen_at FROM posts ORDER BY pid")
    return {row[0]: row[1:] for row in rows}


def version_rows(archive):
    """(pid, content_hash, stored text, seen_at) of every version, oldest first."""
    return archive.db.execute(
        "SELECT p.pid, v.content_hash, v.content_text, v.seen_at FROM post_versions v "
        "JOIN posts p ON p.id = v.post_id ORDER BY p.pid, v.id").fetchall()


def test_a_page_of_new_edited_unchanged_and_deleted_posts_ends_with_exactly_the_right_rows(archive, site_id):
    first = [make_post(pid, pid - 1000, TEXTS[pid]) for pid in (1001, 1002, 1003, 1004)]
    save(archive, site_id, make_page(88, first), T0)
    # Again: 1001 unchanged, 1002 edited, 1003 rendered deleted, 1004 unchanged but with new
    # details (a quote is part of the version, not a detail), 1005 and 1006 new (one with
    # quotes, attachments and noise).
    deleted = make_post(1003, 3, "", status=PostStatus.DELETED, author=None)
    detailed = dataclasses.replace(rich_post(1004, 4, TEXTS[1004]), quotes=[])
    second = [make_post(1001, 1, TEXTS[1001]), make_post(1002, 2, EDITED), deleted, detailed,
              make_post(1005, 5, TEXTS[1005]), rich_post(1006, 6, TEXTS[1006])]
    result = save(archive, site_id, make_page(88, second), T1)

    assert tally(result) == (2, 1, 3, True)
    assert post_rows(archive) == {
        1001: (TEXTS[1001], "normal", 1, T0, T1),
        1002: (EDITED, "normal", 2, T0, T1),
        1003: (TEXTS[1003], "deleted", 1, T0, T1),  # the archived text stays
        1004: (TEXTS[1004], "normal", 1, T0, T1),
        1005: (TEXTS[1005], "normal", 1, T1, T1),
        1006: (TEXTS[1006], "normal", 1, T1, T1),
    }
    assert version_rows(archive) == [
        (1001, content_hash(TEXTS[1001]), None, T0),
        (1002, content_hash(TEXTS[1002]), TEXTS[1002], T0),  # superseded: it holds its text now
        (1002, content_hash(EDITED), None, T1),
        (1003, content_hash(TEXTS[1003]), None, T0),
        (1004, content_hash(TEXTS[1004]), None, T0),
        (1005, content_hash(TEXTS[1005]), None, T1),
        (1006, content_hash(TEXTS[1006], quotes=[("引用的话", 999)]), None, T1),
    ]
    # Details that are not versioned follow the latest rendering, except a deleted one's.
    details = {row[0]: row[1:] for row in archive.db.execute(
        "SELECT pid, signature, noise_json, author, edit_note FROM posts WHERE pid IN (1003, 1004, 1006)")}
    assert details[1003] == (None, "{}", "仲伯间", None)
    assert details[1004][:2] == details[1006][:2] == ("签名档文字", '{"jammer_text_runs": 3}')
    assert details[1006][3] == "本帖最后由 张三 于 2024-3-2 11:00 编辑"
    # Saved a third time unchanged (1003 back to normal): nothing is added, all are touched.
    third = [make_post(1003, 3, TEXTS[1003]) if post.pid == 1003 else post for post in second]
    again = save(archive, site_id, make_page(88, third), T2)
    assert tally(again) == (0, 0, 6, True)
    assert count(archive, "posts") == 6 and count(archive, "post_versions") == 7
    assert {pid: row[4] for pid, row in post_rows(archive).items()} == dict.fromkeys(range(1001, 1007), T2)


def test_new_posts_take_ids_above_every_stored_post_and_the_search_watermark(archive, site_id):
    save(archive, site_id, make_page(88, [make_post(pid, pid - 1000, TEXTS[pid]) for pid in (1001, 1002)]), T0)
    archive.index_pending()
    watermark = archive.indexed_through()
    save(archive, site_id, make_page(89, [make_post(pid, pid - 1002, TEXTS[pid]) for pid in (1003, 1004, 1005)]),
         T1, url="http://bbs.example.cn/thread-89-1-1.html")
    ids = [row[0] for row in archive.db.execute("SELECT id FROM posts WHERE pid >= 1003 ORDER BY pid")]
    assert ids == [watermark + 1, watermark + 2, watermark + 3]
    assert archive.pending_index_count() == 3
    archive.index_pending()
    hits = archive.db.execute(
        "SELECT count(*) FROM posts_fts WHERE posts_fts MATCH ?", ['"综合办事机构"']).fetchone()[0]
    assert hits == 5


def fail_versions_of(archive, text):
    """Make SQLite itself fail when a version of `text` is written: a crash in the middle
    of a page's writes, after its thread and new posts went in."""
    archive.db.execute(
        "CREATE TEMP TRIGGER fail_mid_page BEFORE INSERT ON post_versions "
        f"WHEN new.content_hash = '{content_hash(text)}' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")


def snapshot(archive):
    return {table: archive.db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("threads", "posts", "post_versions", "pages")}


def test_a_failure_mid_page_leaves_nothing_of_the_page(archive, site_id):
    fail_versions_of(archive, TEXTS[1003])
    page = make_page(88, [make_post(pid, pid - 1000, TEXTS[pid]) for pid in (1001, 1002, 1003)])
    with pytest.raises(sqlite3.IntegrityError, match="disk on fire"):
        save(archive, site_id, page, T0)
    assert snapshot(archive) == {"threads": [], "posts": [], "post_versions": [], "pages": []}
    assert not archive.db.conn.in_transaction


def test_a_failure_mid_page_of_a_known_thread_leaves_it_as_it_was(archive, site_id):
    save(archive, site_id, make_page(88, [make_post(pid, pid - 1000, TEXTS[pid]) for pid in (1001, 1002)]), T0)
    before = snapshot(archive)
    # The edit of 1002 fails after 1003 and 1004 went in and 1001 was touched.
    fail_versions_of(archive, EDITED)
    page = make_page(88, [make_post(1001, 1, TEXTS[1001]), make_post(1002, 2, EDITED),
                          make_post(1003, 3, TEXTS[1003]), make_post(1004, 4, TEXTS[1004])], replies=9)
    with pytest.raises(sqlite3.IntegrityError, match="disk on fire"):
        save(archive, site_id, page, T1)
    assert snapshot(archive) == before
    # Inside the caller's transaction, the page's savepoint undoes the page alone.
    with archive.transaction():
        archive.record_fetch(url=URL, status=200, site_id=site_id, now=T1)
        with pytest.raises(sqlite3.IntegrityError):
            save(archive, site_id, page, T1)
    assert snapshot(archive) == before and count(archive, "fetches") == 1


def fts_segments(archive):
    """The threads_fts index's stored rows: any write to the index changes them."""
    return archive.db.execute("SELECT rowid, block FROM threads_fts_data ORDER BY rowid").fetchall()


def test_saving_a_thread_again_leaves_its_title_index_alone(archive, site_id):
    title = "基层党委办公室应强化的十种意识"
    save(archive, site_id, make_page(88, [make_post(1001, 1, TEXTS[1001])], page_count=2), T0)
    indexed = fts_segments(archive)
    save(archive, site_id, make_page(88, [make_post(1002, 11, TEXTS[1002])], page=2, page_count=2), T1,
         url="http://bbs.example.cn/thread-88-2-1.html")
    save(archive, site_id, make_page(88, [make_post(1001, 1, TEXTS[1001])], page_count=2), T2)
    board = BoardPage(fid=2, name="公文写作", page=1, page_count=1, rows=[
        BoardRow(tid=88, title=title, url=URL, replies=11, views=50)])
    archive.save_board_page(site_id, board, url="http://bbs.example.cn/forum-2-1.html",
                            url_key="forum-2-1", now=T2)
    assert fts_segments(archive) == indexed
    row = archive.db.execute("SELECT title, replies, last_seen_at FROM threads").fetchone()
    assert row == (title, 11, T2)
    # A new title still reaches the index; a board's title never replaces the thread's own.
    save(archive, site_id, make_page(88, [make_post(1001, 1, TEXTS[1001])], title="新的标题文字"), T2)
    board.rows[0] = BoardRow(tid=88, title="板块上的旧标题", url=URL, replies=11, views=60)
    archive.save_board_page(site_id, board, url="http://bbs.example.cn/forum-2-1.html",
                            url_key="forum-2-1", now=T2)
    found = archive.db.execute(
        "SELECT t.title FROM threads_fts JOIN threads t ON t.id = threads_fts.rowid WHERE threads_fts MATCH ?",
        ['"标题文字"']).fetchall()
    assert found == [("新的标题文字",)]
    assert archive.db.execute("SELECT count(*) FROM threads_fts WHERE threads_fts MATCH ?",
                              ['"十种意识"']).fetchone()[0] == 0


def test_a_board_fills_a_title_the_thread_lacks(archive, site_id):
    board = BoardPage(fid=2, name="公文写作", page=1, page_count=1, rows=[
        BoardRow(tid=90, title=None, url="http://bbs.example.cn/thread-90-1-1.html", replies=1, views=5)])
    archive.save_board_page(site_id, board, url="http://bbs.example.cn/forum-2-1.html", url_key="forum-2-1", now=T0)
    assert archive.db.execute("SELECT title FROM threads").fetchone() == (None,)
    board.rows[0] = BoardRow(tid=90, title="补上的标题", url="http://bbs.example.cn/thread-90-1-1.html",
                             replies=1, views=6)
    archive.save_board_page(site_id, board, url="http://bbs.example.cn/forum-2-1.html", url_key="forum-2-1", now=T1)
    assert archive.db.execute("SELECT title FROM threads").fetchone() == ("补上的标题",)
    assert archive.db.execute("SELECT count(*) FROM threads_fts WHERE threads_fts MATCH ?",
                              ['"上的标"']).fetchone()[0] == 1


def test_a_post_seen_deleted_twice_keeps_its_archived_text(archive, site_id):
    save(archive, site_id, make_page(88, [make_post(1001, 1, TEXTS[1001])]), T0)
    deleted = make_page(88, [make_post(1001, 1, "", status=PostStatus.DELETED)])
    save(archive, site_id, deleted, T1)
    save(archive, site_id, deleted, T2)
    assert post_rows(archive)[1001][:3] == (TEXTS[1001], "deleted", 1)
    blocked = make_page(88, [make_post(1001, 1, "该用户帖子内容已被屏蔽", status=PostStatus.BLOCKED)])
    save(archive, site_id, blocked, T2)  # another notice later: still the archived text
    assert post_rows(archive)[1001][:3] == (TEXTS[1001], "blocked", 1)


def test_a_post_only_ever_seen_hidden_keeps_the_edits_of_its_visible_part(archive, site_id):
    # Text archived from a hidden rendering is all the archive has: a new rendering of it is an edit.
    hidden = "游客，如果您要查看本帖隐藏内容请回复"
    save(archive, site_id, make_page(88, [make_post(1001, 1, "开头 " + hidden, status=PostStatus.HIDDEN)]), T0)
    save(archive, site_id, make_page(88, [make_post(1001, 1, "改过的开头 " + hidden, status=PostStatus.HIDDEN)]), T1)
    assert post_rows(archive)[1001][:3] == ("改过的开头 " + hidden, "hidden", 2)
    save(archive, site_id, make_page(88, [make_post(1001, 1, TEXTS[1001])]), T2)  # replied: now readable
    assert post_rows(archive)[1001][:3] == (TEXTS[1001], "normal", 3)


def test_a_deleted_post_restored_unchanged_is_no_new_version(archive, site_id):
    save(archive, site_id, make_page(88, [make_post(1001, 1, TEXTS[1001])]), T0)
    save(archive, site_id, make_page(88, [make_post(1001, 1, "", status=PostStatus.DELETED)]), T1)
    save(archive, site_id, make_page(88, [make_post(1001, 1, TEXTS[1001])]), T2)
    assert post_rows(archive)[1001][:3] == (TEXTS[1001], "normal", 1)


def test_a_post_already_deleted_before_the_upgrade_keeps_its_text(archive, site_id):
    # Migration 6 cannot tell whose text a post off normal holds; it is read as archived text.
    save(archive, site_id, make_page(88, [make_post(1001, 1, TEXTS[1001])]), T0)
    archive.db.execute("UPDATE posts SET status = 'deleted', content_status = NULL")
    save(archive, site_id, make_page(88, [make_post(1001, 1, "", status=PostStatus.DELETED)]), T1)
    assert post_rows(archive)[1001][:3] == (TEXTS[1001], "deleted", 1)


class _CallCounter:
    """The archive's connection, counting the statements handed to SQLite (an executemany is
    one call however many rows it binds)."""

    def __init__(self, conn):
        self._conn = conn
        self.calls = 0

    def execute(self, *args):
        self.calls += 1
        return self._conn.execute(*args)

    def executemany(self, *args):
        self.calls += 1
        return self._conn.executemany(*args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def calls_to_save(archive, site_id, page, now):
    counter = archive.db.conn = _CallCounter(archive.db.conn)
    try:
        save(archive, site_id, page, now, url=f"http://bbs.example.cn/thread-{page.tid}-1-1.html")
    finally:
        archive.db.conn = counter._conn
    return counter.calls


def test_the_statements_a_page_takes_do_not_grow_with_its_posts(archive, site_id):
    small = make_page(88, [make_post(pid, pid - 1000, TEXTS[pid]) for pid in range(1001, 1004)])
    large = make_page(89, [make_post(pid, pid - 2000, f"第{pid}楼") for pid in range(2001, 2010)])
    for now in (T0, T1):  # new posts, then the same posts seen again
        calls = calls_to_save(archive, site_id, small, now)
        assert calls > 0 and calls_to_save(archive, site_id, large, now) == calls, now
    assert count(archive, "posts") == 12


# --- versions cover a post's images and links ------------------------------------------------
PHOTO = "http://bbs.example.cn/data/attachment/forum/202403/02/abc.jpg"
OTHER_PHOTO = "http://bbs.example.cn/data/attachment/forum/202403/02/xyz.jpg"


def illustrated(pid, photo, text="看图说话。"):
    return make_post(pid, pid - 1000, text, content_html=f'<p>{text}<br><img src="{photo}"></p>',
                     media_refs=(photo,))


def test_an_edit_that_swaps_an_image_but_keeps_the_text_is_a_new_version(archive, site_id):
    save(archive, site_id, make_page(88, [illustrated(1001, PHOTO)]), T0)
    assert tally(save(archive, site_id, make_page(88, [illustrated(1001, PHOTO)]), T1))[:3] == (0, 0, 1)  # the same
    result = save(archive, site_id, make_page(88, [illustrated(1001, OTHER_PHOTO)]), T2)
    assert tally(result)[:3] == (0, 1, 0)  # a new version
    current = archive.db.execute("SELECT content_html, version_count FROM posts").fetchone()
    assert OTHER_PHOTO in current[0] and current[1] == 2
    superseded = archive.db.execute("SELECT content_html FROM post_versions WHERE content_html IS NOT NULL").fetchall()
    assert len(superseded) == 1 and PHOTO in superseded[0][0]  # the HTML before the edit is kept


def test_a_post_hashed_on_its_text_alone_takes_up_the_new_hash_without_a_version(archive, site_id):
    # As an archive written before versions covered media holds it: the text's hash, scheme 0.
    save(archive, site_id, make_page(88, [illustrated(1001, PHOTO)]), T0)
    text_hash = content_hash("看图说话。")
    archive.db.execute("UPDATE posts SET content_hash = ?, hash_covers_media = 0", [text_hash])
    archive.db.execute("UPDATE post_versions SET content_hash = ?", [text_hash])
    assert tally(save(archive, site_id, make_page(88, [illustrated(1001, PHOTO)]), T1))[:3] == (0, 0, 1)  # the same
    row = archive.db.execute("SELECT content_hash, hash_covers_media, version_count FROM posts").fetchone()
    assert row == (content_hash("看图说话。", [PHOTO]), MEDIA_HASH_SCHEME, 1)
    assert archive.db.execute("SELECT content_hash FROM post_versions").fetchall() == [(row[0],)]
    # From then on, a swapped image is an edit.
    assert tally(save(archive, site_id, make_page(88, [illustrated(1001, OTHER_PHOTO)]), T2))[:3] == (0, 1, 0)


def test_a_post_hashed_on_its_text_alone_whose_attachments_changed_meanwhile_is_a_version(archive, site_id):
    # The older scheme did not hash attachments, but the archive kept them: another picture
    # attached since the last visit is an edit, not the archived version.
    def attached(aid, name):
        return make_post(1001, 1, "看图说话。", attachments=[Attachment(url=f"http://x/{name}", name=name, aid=aid)],
                         media_refs=(f"attachment:{aid}:{name}",))

    save(archive, site_id, make_page(88, [attached("55", "a.jpg")]), T0)
    archive.db.execute("UPDATE posts SET content_hash = ?, hash_covers_media = 0", [content_hash("看图说话。")])
    assert tally(save(archive, site_id, make_page(88, [attached("57", "b.jpg")]), T1))[:3] == (0, 1, 0)


def test_a_text_import_then_a_crawl_of_the_same_post_is_one_version(archive, site_id):
    # A text rendering shows no media (media_refs None: scheme 0), attachments included; the
    # crawl's rendering of the same text takes the post up, its picture, attachment and HTML.
    text_post = make_post(None, 1, "看图说话。", media_refs=None)
    archive.save_thread_page(site_id, make_page(None, [text_post]), url="text", url_key="text", now=T0)
    assert archive.db.execute("SELECT hash_covers_media FROM posts").fetchone() == (0,)
    crawled = make_post(1001, 1, "看图说话。", content_html=f'<p>看图说话。<br><img src="{PHOTO}"></p>',
                        attachments=[Attachment(url=PHOTO, name="abc.jpg", aid="55")],
                        media_refs=("attachment:55:abc.jpg",))
    result = save(archive, site_id, make_page(None, [crawled]), T1)
    assert tally(result)[:3] == (0, 0, 1)
    assert archive.db.execute("SELECT pid, version_count, hash_covers_media FROM posts").fetchall() == [
        (1001, 1, MEDIA_HASH_SCHEME)]
    assert PHOTO in archive.db.execute("SELECT content_html FROM posts").fetchone()[0]
    assert tally(save(archive, site_id, make_page(None, [crawled]), T2))[:3] == (0, 0, 1)


def test_a_text_rendering_changes_nothing_of_a_post_crawled_before_the_media_scheme(archive, site_id):
    # Migration 11 left every post it found at scheme 0, as a text rendering's posts are: a post
    # crawled then was told from a text import by its pid alone. Compared as equals, the text's
    # empty attachments and quotes overwrote the crawled ones and its inline edit note made a version.
    crawled = make_post(1001, 1, "看图说话。", content_html=f'<p>看图说话。<br><img src="{PHOTO}"></p>',
                        attachments=[Attachment(url=PHOTO, name="abc.jpg", aid="55")],
                        quotes=[Quote(text="引用的话", author="李四", posted_at_raw="2024-3-1 09:00", pid=999)],
                        media_refs=("attachment:55:abc.jpg",))
    save(archive, site_id, make_page(88, [crawled]), T0)
    archive.db.execute("UPDATE posts SET content_hash = ?, hash_covers_media = 0", [content_hash("看图说话。")])
    before = archive.db.execute("SELECT content_text, content_html, attachments_json, quotes_json, version_count "
                                "FROM posts").fetchone()
    for n, text in enumerate(("看图说话。", "本帖最后由 仲伯间 于 2012-3-13 编辑\n看图说话。")):
        as_text = make_post(None, 1, text, media_refs=None)
        result = archive.save_thread_page(site_id, make_page(88, [as_text]), url=f"text{n}", url_key=f"text{n}", now=T1)
        assert tally(result)[:3] == (0, 0, 1)
        assert archive.db.execute("SELECT content_text, content_html, attachments_json, quotes_json, version_count "
                                  "FROM posts").fetchone() == before


@pytest.mark.parametrize(("as_text", "crawled_parts"), [
    ("本帖最后由 仲伯间 于 2012-3-13 10:00 编辑\n强化十种意识。", {"edit_note": "本帖最后由 仲伯间 于 2012-3-13 10:00 编辑"}),
    ("李四 发表于 2024-3-1 09:00\n引用的话\n强化十种意识。",
     {"quotes": [Quote(text="引用的话", author="李四", posted_at_raw="2024-3-1 09:00", pid=999,
                       attribution="李四 发表于 2024-3-1 09:00")]}),
    # A Discuz 6/7 quote kept in X prints its attribution in other words: the copy shows those.
    ("原帖由 李四 于 2012-3-1 09:00 发表\n引用的话\n强化十种意识。",
     {"quotes": [Quote(text="引用的话", author="李四", posted_at_raw="2012-3-1 09:00", pid=999,
                       attribution="原帖由 李四 于 2012-3-1 09:00 发表")]}),
])
def test_a_text_import_then_a_crawl_showing_its_edit_note_or_quote_apart_is_one_version(
        archive, site_id, as_text, crawled_parts):
    # A text copy shows the edit note and the quotes inline; the crawled rendering keeps them
    # apart from the text. The same post, not an edit made between the copy and the crawl.
    text_post = make_post(None, 1, as_text, media_refs=None)
    archive.save_thread_page(site_id, make_page(88, [text_post]), url="text", url_key="text", now=T0)
    crawled = make_post(1001, 1, "强化十种意识。", **crawled_parts)
    assert tally(save(archive, site_id, make_page(88, [crawled]), T1))[:3] == (0, 0, 1)
    assert archive.db.execute("SELECT pid, version_count, content_text FROM posts").fetchall() == [
        (1001, 1, "强化十种意识。")]
    # A real edit after the copy is still one.
    edited = make_post(1001, 1, "强化十种意识,改了。", **crawled_parts)
    assert tally(save(archive, site_id, make_page(88, [edited]), T2))[:3] == (0, 1, 0)


def test_a_post_without_images_or_links_hashes_as_its_text(archive, site_id):
    save(archive, site_id, make_page(88, [make_post(1001, 1, TEXTS[1001])]), T0)
    assert archive.db.execute("SELECT content_hash, hash_covers_media FROM posts").fetchone() == (
        content_hash(TEXTS[1001]), MEDIA_HASH_SCHEME)


def test_a_text_rendering_of_a_crawled_post_changes_nothing_of_it(archive, site_id):
    # The text shows no pid (keyed by floor), no media and no attachments: it is the crawled
    # post at its floor, by its author at its time, and the archive keeps that post as crawled.
    crawled = make_post(1001, 1, "看图说话。", content_html=f'<p>看图说话。<br><img src="{PHOTO}"></p>',
                        attachments=[Attachment(url=PHOTO, name="abc.jpg", aid="55")],
                        media_refs=("attachment:55:abc.jpg",))
    save(archive, site_id, make_page(88, [crawled]), T0)
    as_text = make_post(None, 1, "看图说话。", media_refs=None)
    result = archive.save_thread_page(site_id, make_page(88, [as_text]), url="text", url_key="text", now=T1)
    assert tally(result)[:3] == (0, 0, 1)
    row = archive.db.execute("SELECT count(*), max(version_count), max(content_html), max(attachments_json), "
                             "max(hash_covers_media) FROM posts").fetchone()
    assert row[:2] == (1, 1) and PHOTO in row[2] and "abc.jpg" in row[3] and row[4] == MEDIA_HASH_SCHEME
    # Text that reads otherwise changes nothing either: a text shows less than the crawl did
    # (edit notes, quotes and notices inline), so it cannot tell an edit.
    otherwise = make_post(None, 1, "本帖最后由 仲伯间 于 2012-3-13 编辑\n看图说话。", media_refs=None)
    result = archive.save_thread_page(site_id, make_page(88, [otherwise]), url="text2", url_key="text2", now=T2)
    assert tally(result)[:3] == (0, 0, 1)
    assert archive.db.execute("SELECT content_text, version_count, last_seen_at FROM posts").fetchone() == (
        "看图说话。", 1, T0)


def test_a_version_keeps_the_attachments_and_quotes_it_was_seen_with(archive, site_id):
    # Attachments listed below a post are not in its HTML: swapped, the old file was named
    # nowhere, and the history showed two versions with the same text and HTML.
    def post(aid, name, quote):
        return make_post(1001, 1, "附件见下。", attachments=[Attachment(url=f"http://x/{aid}", name=name, aid=aid)],
                         quotes=[Quote(text=quote, author="李四", posted_at_raw="2024-3-1 09:00", pid=999)],
                         media_refs=(f"attachment:{aid}:{name}",))

    save(archive, site_id, make_page(88, [post("58", "通知.doc", "原来的引用")]), T0)
    assert tally(save(archive, site_id, make_page(88, [post("59", "新通知-修订版.doc", "改过的引用")]), T1))[:3] == (0, 1, 0)
    post_id = archive.db.execute("SELECT id FROM posts").fetchone()[0]
    history = [(json.loads(v["attachments_json"])[0]["name"], json.loads(v["quotes_json"])[0]["text"], v["is_current"])
               for v in archive.post_versions(post_id)]
    assert history == [("通知.doc", "原来的引用", 0), ("新通知-修订版.doc", "改过的引用", 1)]
    # Back to the first: its row gives its parts back to posts, which holds the current ones.
    save(archive, site_id, make_page(88, [post("58", "通知.doc", "原来的引用")]), T2)
    assert archive.db.execute("SELECT count(*) FROM post_versions WHERE content_text IS NULL AND "
                              "attachments_json IS NULL AND quotes_json IS NULL").fetchone() == (1,)
    assert [v["is_current"] for v in archive.post_versions(post_id)] == [1, 0]


def test_a_quote_changed_without_the_text_is_a_new_version(archive, site_id):
    # The engine reads quotes apart from the text: an author who trims or rewrites the passage
    # they quoted, and nothing else, has edited the post. The version before keeps the old
    # quote, the post shows the new one (its HTML and quotes change together, never apart).
    def post(quote, attribution="李四 发表于 2024-3-1 09:00", pid=999):
        return make_post(1001, 1, "同意楼上。", content_html=f'<div class="quote">{quote}</div><p>同意楼上。</p>',
                         quotes=[Quote(text=quote, author="李四", posted_at_raw="2024-3-1 09:00", pid=pid,
                                       attribution=attribution)])

    save(archive, site_id, make_page(88, [post("原来的引用")]), T0)
    result = save(archive, site_id, make_page(88, [post("改过的引用")]), T1)
    html, quotes = archive.db.execute("SELECT content_html, quotes_json FROM posts").fetchone()
    assert tally(result)[1] == 1  # edited
    assert "改过的引用" in html and "原来的引用" not in html and json.loads(quotes)[0]["text"] == "改过的引用"
    post_id = archive.db.execute("SELECT id FROM posts").fetchone()[0]
    history = archive.post_versions(post_id)
    assert [json.loads(v["quotes_json"])[0]["text"] for v in history] == ["原来的引用", "改过的引用"]
    # Another quoted post is an edit too. White space is not, nor the attribution line, which
    # restates the quoted post's author and time: a rendering that prints the time anew (the
    # demo forum restarted) would otherwise make a version of an unchanged post.
    assert tally(save(archive, site_id, make_page(88, [post("改过的引用", pid=1000)]), T2))[1] == 1
    assert tally(save(archive, site_id, make_page(88, [post(" 改过的引用\n", attribution="李四 发表于 2024-3-1 09:01",
                                                            pid=1000)]), T3))[1] == 0


def test_a_post_edited_back_and_forth_says_when_it_went_back(archive, site_id):
    # One row per distinct content: A -> B -> A -> B left two rows and no trace of the returns.
    for text, at in (("初稿。", T0), ("改稿。", T1), ("初稿。", T2), ("改稿。", T3)):
        save(archive, site_id, make_page(88, [make_post(1001, 1, text)]), at)
    post_id = archive.db.execute("SELECT id FROM posts").fetchone()[0]
    history = [(v["content_text"], v["seen_at"], json.loads(v["seen_again_at"]), v["is_current"])
               for v in archive.post_versions(post_id)]
    assert history == [("初稿。", T0, [T2], 0), ("改稿。", T1, [T3], 1)]
    assert archive.db.execute("SELECT version_count FROM posts").fetchone() == (2,)


@pytest.mark.parametrize("older_scheme", [0, 1, 2, 3])
def test_a_post_archived_before_download_links_were_kept_takes_them_up_without_a_version(
        archive, site_id, older_scheme):
    # Before scheme 4 the sanitiser dropped an eMule link's target (it kept only http(s)): the
    # post was hashed on its text and no reference. Read again, it shows the link: the same
    # post, now with the link's target in its HTML, not an edit; a changed target after that is one.
    ed2k = "ed2k://%7Cfile%7Ca.mkv%7C1%7C0123456789ABCDEF0123456789ABCDEF%7C/"

    def with_link(target):
        html = "<p>资源<a>a.mkv</a></p>" if target is None else f'<p>资源<a href="{target}">a.mkv</a></p>'
        return make_post(1001, 1, "资源a.mkv", content_html=html, media_refs=() if target is None else (target,))

    save(archive, site_id, make_page(88, [with_link(None)]), T0)
    archive.db.execute("UPDATE posts SET hash_covers_media = ?", [older_scheme])
    assert tally(save(archive, site_id, make_page(88, [with_link(ed2k)]), T1))[:3] == (0, 0, 1)
    assert archive.db.execute("SELECT hash_covers_media, version_count, content_html LIKE '%ed2k:%' FROM posts"
                              ).fetchone() == (MEDIA_HASH_SCHEME, 1, 1)
    other = ed2k.replace("0123456789ABCDEF", "FEDCBA9876543210")
    assert tally(save(archive, site_id, make_page(88, [with_link(other)]), T2))[:3] == (0, 1, 0)


def test_a_post_hashed_on_its_text_alone_keeps_its_html_when_more_than_download_links_changed(archive, site_id):
    # Scheme 0 hashed text alone: the image seen then is known only from the stored HTML. A
    # rendering that shows another image besides the link's target leaves that HTML in place.
    stored = make_post(1001, 1, "资源a.mkv", content_html=f'<p>资源<a>a.mkv</a><img src="{PHOTO}"></p>',
                       media_refs=(PHOTO,))
    save(archive, site_id, make_page(88, [stored]), T0)
    archive.db.execute("UPDATE posts SET hash_covers_media = 0, content_hash = ?", [content_hash("资源a.mkv")])
    ed2k = "ed2k://%7Cfile%7Ca.mkv%7C1%7C0123456789ABCDEF0123456789ABCDEF%7C/"
    shown = make_post(1001, 1, "资源a.mkv", content_html=f'<p>资源<a href="{ed2k}">a.mkv</a><img src="{OTHER_PHOTO}"></p>',
                      media_refs=(ed2k, OTHER_PHOTO))
    assert tally(save(archive, site_id, make_page(88, [shown]), T1))[:3] == (0, 0, 1)
    assert PHOTO in archive.db.execute("SELECT content_html FROM posts").fetchone()[0]


def test_a_post_stored_under_scheme_3_whose_picture_changed_meanwhile_is_a_version(archive, site_id):
    # Scheme 3 hashed images and links already: the first read under scheme 4 takes up the new
    # hash only when the references are the same but for download links; a swapped picture is
    # an edit, recorded as one, not passed over as the scheme's take-up.
    save(archive, site_id, make_page(88, [illustrated(1001, PHOTO)]), T0)
    archive.db.execute("UPDATE posts SET hash_covers_media = 3")
    assert tally(save(archive, site_id, make_page(88, [illustrated(1001, OTHER_PHOTO)]), T1))[:3] == (0, 1, 0)
    current = archive.db.execute("SELECT content_html, version_count, hash_covers_media FROM posts").fetchone()
    assert OTHER_PHOTO in current[0] and current[1:] == (2, MEDIA_HASH_SCHEME)


def test_a_post_hashed_without_its_quotes_takes_up_the_new_hash_without_a_version(archive, site_id):
    # Scheme 4 hashed the text and the references, not the quotes: a post stored so takes up
    # the hash that covers them when next seen as it was hashed, and from then on a changed
    # quote is an edit. A picture swapped meanwhile is an edit at once.
    def quoting(quote, photo=PHOTO):
        return make_post(1001, 1, "同意楼上。", content_html=f'<p>同意楼上。<img src="{photo}"></p>', media_refs=(photo,),
                         quotes=[Quote(text=quote, author="李四", posted_at_raw="2024-3-1 09:00", pid=999,
                                       attribution="李四 发表于 2024-3-1 09:00")])

    save(archive, site_id, make_page(88, [quoting("原来的引用")]), T0)
    scheme_4_hash = content_hash("同意楼上。", [PHOTO])
    archive.db.execute("UPDATE posts SET content_hash = ?, hash_covers_media = 4", [scheme_4_hash])
    archive.db.execute("UPDATE post_versions SET content_hash = ?", [scheme_4_hash])
    assert tally(save(archive, site_id, make_page(88, [quoting("原来的引用")]), T1))[:3] == (0, 0, 1)
    current = archive.db.execute("SELECT content_hash, hash_covers_media, version_count FROM posts").fetchone()
    assert current == (content_hash("同意楼上。", [PHOTO], [("原来的引用", 999)]),
                       MEDIA_HASH_SCHEME, 1)
    assert archive.db.execute("SELECT content_hash FROM post_versions").fetchall() == [(current[0],)]
    assert tally(save(archive, site_id, make_page(88, [quoting("改过的引用")]), T2))[:3] == (0, 1, 0)

    archive.db.execute("UPDATE posts SET content_hash = ?, hash_covers_media = 4", [scheme_4_hash])
    assert tally(save(archive, site_id, make_page(88, [quoting("改过的引用", OTHER_PHOTO)]), T3))[:3] == (0, 1, 0)


@pytest.mark.parametrize("older_scheme", [3, 4])
def test_a_post_hashed_without_its_quotes_whose_quote_changed_meanwhile_is_a_version(archive, site_id, older_scheme):
    # The older schemes did not hash the quotes, but the archive kept them with the version: a
    # quote rewritten before the post's first read under the new scheme is an edit, recorded
    # as one, not passed over as the scheme's take-up (which would leave the old quote shown
    # under a hash that covers the new one, and no later read would record it).
    def quoting(quote):
        return make_post(1001, 1, "同意楼上。", content_html=f"<p>{quote}</p><p>同意楼上。</p>",
                         quotes=[Quote(text=quote, author="李四", posted_at_raw="2024-3-1 09:00", pid=999,
                                       attribution="李四 发表于 2024-3-1 09:00")])

    save(archive, site_id, make_page(88, [quoting("原来的引用")]), T0)
    archive.db.execute("UPDATE posts SET content_hash = ?, hash_covers_media = ?",
                       [content_hash("同意楼上。"), older_scheme])
    assert tally(save(archive, site_id, make_page(88, [quoting("改写后的引用")]), T1))[:3] == (0, 1, 0)
    quotes, html = archive.db.execute("SELECT quotes_json, content_html FROM posts").fetchone()
    assert json.loads(quotes)[0]["text"] == "改写后的引用" and "改写后的引用" in html
    # White space and the attribution line aside, it is the same quote.
    archive.db.execute("UPDATE posts SET content_hash = ?, hash_covers_media = ?, quotes_json = ?",
                       [content_hash("同意楼上。"), older_scheme,
                        json.dumps([{"text": " 改写后的\n引用 ", "pid": 999, "attribution": None}])])
    assert tally(save(archive, site_id, make_page(88, [quoting("改写后的 引用")]), T2))[:3] == (0, 0, 1)


@pytest.mark.parametrize("short_lived", [5, 7])
def test_a_post_stored_under_a_short_lived_scheme_is_read_as_the_oldest_schemes_are(archive, site_id, short_lived):
    # Scheme 5 hashed a form of the references that was reverted (cb6403d), 7 the quotes'
    # attribution lines too (08be46b): their hashes are not rebuilt, so the same text and
    # attachments decide, as for schemes 0-2.
    save(archive, site_id, make_page(88, [illustrated(1001, PHOTO)]), T0)
    archive.db.execute("UPDATE posts SET content_hash = 'hashed by a short-lived scheme', hash_covers_media = ?",
                       [short_lived])
    assert tally(save(archive, site_id, make_page(88, [illustrated(1001, PHOTO)]), T1))[:3] == (0, 0, 1)
    assert archive.db.execute("SELECT hash_covers_media, version_count FROM posts").fetchone() == (
        MEDIA_HASH_SCHEME, 1)


# A post with a picture, a player, and maybe a quote, read by the engine; read as the engine
# before scheme 8 did (no player link), the page lacks the player's script: layer 1 dropped it.
_QUOTE = ('<div class="quote"><blockquote><font size="2"><a href="forum.php?mod=redirect&amp;goto=findpost&amp;pid=999'
          '&amp;ptid=88" target="_blank"><font color="#999999">李四 发表于 2024-3-1 09:00</font></a></font><br />'
          '原来的引用</blockquote></div>')


def read_with_player(*, photo=PHOTO, played="http://v.example.com/clips/a.flv", quoted=False, before_players=False):
    from tests.test_discuz_engine import _SCRIPT_PLAYER, _post_with_body

    player = _SCRIPT_PLAYER.format(id="swf_Ab1", source=f"'src', 'static/image/common/flvplayer.swf', "
                                                         f"'flashvars', 'file={quote(played, safe='')}'")
    if before_players:
        player = re.sub(r"<script.*?</script>", "", player)
    post = _post_with_body(f'{_QUOTE if quoted else ""}视频在此<br />\n<img src="{photo}" /><br />\n{player}<br />\n看完了')
    return replace(post, pid=1001)


@pytest.mark.parametrize(("older_scheme", "quoted"), [(3, False), (4, False), (6, False), (6, True)])
def test_a_post_stored_before_players_were_linked_takes_up_their_files_without_a_version(
        archive, site_id, older_scheme, quoted):
    # Before scheme 8 the engine dropped a player with its script: the post was hashed on its
    # text, picture (and from 6 on its quotes). Read again, it links the player's file: the same
    # post, now with that link in its HTML, not an edit; another file after that is one.
    stored = read_with_player(quoted=quoted, before_players=True)
    save(archive, site_id, make_page(88, [stored]), T0)
    archive.db.execute("UPDATE posts SET hash_covers_media = ?", [older_scheme])
    now_read = read_with_player(quoted=quoted)
    assert now_read.media_refs == (*stored.media_refs, "player:http://v.example.com/clips/a.flv")
    assert tally(save(archive, site_id, make_page(88, [now_read]), T1))[:3] == (0, 0, 1)
    row = archive.db.execute("SELECT hash_covers_media, version_count, content_html, content_hash FROM posts").fetchone()
    assert row[:3] == (MEDIA_HASH_SCHEME, 1, now_read.content_html) and 'data-from="player"' in row[2]
    assert archive.db.execute("SELECT content_hash FROM post_versions").fetchall() == [(row[3],)]
    assert tally(save(archive, site_id, make_page(88, [now_read]), T2))[:3] == (0, 0, 1)
    other_video = read_with_player(quoted=quoted, played="http://v.example.com/clips/b.flv")
    assert tally(save(archive, site_id, make_page(88, [other_video]), T3))[:3] == (0, 1, 0)


def test_a_post_stored_under_scheme_6_whose_picture_changed_meanwhile_is_a_version(archive, site_id):
    # The take-up leaves out the players' files only: a picture swapped before the first read
    # under scheme 8 is an edit, recorded as one, not passed over as the scheme's take-up.
    save(archive, site_id, make_page(88, [read_with_player(before_players=True)]), T0)
    archive.db.execute("UPDATE posts SET hash_covers_media = 6")
    swapped = read_with_player(photo=OTHER_PHOTO)
    assert tally(save(archive, site_id, make_page(88, [swapped]), T1))[:3] == (0, 1, 0)
    current = archive.db.execute("SELECT content_html, version_count, hash_covers_media FROM posts").fetchone()
    assert current == (swapped.content_html, 2, MEDIA_HASH_SCHEME) and 'data-from="player"' in current[0]
    first = archive.db.execute("SELECT content_html FROM post_versions ORDER BY id").fetchone()[0]
    assert PHOTO in first and "data-from" not in first


def test_a_post_whose_stored_html_differs_by_more_than_its_player_link_keeps_it(archive, site_id):
    # Same hash without the player's file, but the stored HTML says something else besides
    # (bold text, which no hash covers): the take-up leaves the stored HTML as it is.
    stored = read_with_player(before_players=True)
    stored = replace(stored, content_html=stored.content_html.replace("视频在此", "<strong>视频在此</strong>"))
    save(archive, site_id, make_page(88, [stored]), T0)
    archive.db.execute("UPDATE posts SET hash_covers_media = 6")
    now_read = read_with_player()
    assert 'data-from="player"' in now_read.content_html
    assert tally(save(archive, site_id, make_page(88, [now_read]), T1))[:3] == (0, 0, 1)
    assert archive.db.execute("SELECT content_html, version_count FROM posts").fetchone() == (stored.content_html, 1)


def _without_players(markup: str) -> str:
    # What the engine read before scheme 8: the scripts went with layer 1, the players' other
    # elements with the sanitiser, and nothing else changed.
    return re.sub(r"<(script|object|audio|iframe)\b.*?</\1>|<embed\b[^>]*>(?:</embed>)?", "", markup, flags=re.S)


def test_a_player_leading_the_body_takes_up_its_link_with_its_html(archive, site_id):
    # Without its script the body began with the white space after it, which the parser drops:
    # the HTML read then and the HTML read now without the link differ at their edge alone.
    from tests.test_discuz_engine import PLAYER_FORMS, _post_with_body

    player = PLAYER_FORMS["7.2 flash"][0]
    body = "{}  <table><tr><td>片名</td><td>时长</td></tr></table>老视频"
    before, now_read = (replace(_post_with_body(body.format(p)), pid=1001) for p in ("", player))
    assert before.content_html != _PLAYER_LINK_RE.sub("", now_read.content_html)
    save(archive, site_id, make_page(88, [before]), T0)
    archive.db.execute("UPDATE posts SET hash_covers_media = 6")
    assert tally(save(archive, site_id, make_page(88, [now_read]), T1))[:3] == (0, 0, 1)
    assert archive.db.execute("SELECT content_html FROM posts").fetchone() == (now_read.content_html,)


_PLAYER_LINK_RE = re.compile(r'<a href="[^"]*" data-from="player"[^>]*>[^<]*</a>')


@pytest.mark.parametrize("form", ["flash swf", "parseflv", "media rm", "audio mp3", "attached mp3", "7.2 flash"])
def test_every_player_form_stored_under_scheme_6_takes_up_its_link_with_its_html(archive, site_id, form):
    # The take-up holds only if the read without the player links is the read of before, text,
    # references and HTML alike, whichever path the body takes (a body that was text and <br>
    # once its script went was cleaned from one serialisation, now on the tree).
    from tests.test_discuz_engine import PLAYER_FORMS, _post_with_body

    player = PLAYER_FORMS[form][0]
    jammer = '<font class="jammer">4a0 p; ; b5 s</font><span style="display:none">1 R3 h$ R</span>'
    body = f"第一行{jammer}<br />\n{{}}<br />\n第二行 &nbsp; 完{jammer}"
    before, now_read = (replace(_post_with_body(body.format(p)), pid=1001) for p in (_without_players(player), player))
    save(archive, site_id, make_page(88, [before]), T0)
    archive.db.execute("UPDATE posts SET hash_covers_media = 6")
    assert tally(save(archive, site_id, make_page(88, [now_read]), T1))[:3] == (0, 0, 1)
    assert archive.db.execute("SELECT content_html, version_count, hash_covers_media FROM posts").fetchone() == (
        now_read.content_html, 1, MEDIA_HASH_SCHEME)
    assert now_read.media_refs[-1].startswith("player:")
