"""storage.archive: sites, bodies, fetches, thread and board pages, versions, transactions."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
import zstandard
import yaml

from scraper.engines.base import BoardPage, BoardRow, PostStatus
from storage.archive import BODY_COMPRESSION_LEVEL, Archive, normalise_time
from storage.dedup import content_hash
from tests.test_discuz_engine import DISCUZ_TABLE, _one_post_thread
from tests.test_discuz_engine import thread as discuz_thread
from tests.test_storage_support import (  # noqa: F401  (fixtures)
    T0,
    T1,
    T2,
    T3,
    archive,
    count,
    fields,
    make_page,
    make_post,
    rich_post,
    site_id,
    tally,
)

REPO = Path(__file__).resolve().parent.parent
OPENING = "办公室是一个单位的综合办事机构,处在承上启下、联系左右、沟通内外的枢纽地位。"
REPLY = "一是参谋意识。办公室是一级领导决策的参谋部,办公室的同志都是“参谋长”。"
REPLY_EDITED = "一是参谋意识。办公室是一级领导决策的参谋部。"
THIRD = "要做好办公室工作,必须真正把“三个代表”的要求融入自己的思想。"


def two_post_page(reply_text: str = REPLY, **fields):
    return make_page(88, [make_post(1001, 1, OPENING), make_post(1002, 2, reply_text)], **fields)


def save(archive, site_id, page, now, url="http://bbs.example.cn/thread-88-1-1.html", **kwargs):
    return archive.save_thread_page(site_id, page, url=url, url_key=url, now=now, **kwargs)


def post_row(archive, pid):
    return next(archive.db.query("SELECT * FROM posts WHERE pid = ?", [pid]))


def stored_keys(archive):
    return [row[0] for row in archive.db.execute("SELECT post_key FROM posts ORDER BY id")]


def versions(archive, pid):
    return [row["content_text"] for row in archive.post_versions(post_row(archive, pid)["id"])]


# --- sites ------------------------------------------------------------------------------
def test_upsert_site_is_keyed_on_name_and_keeps_what_is_not_given(archive):
    first = archive.upsert_site("laomi", engine="discuz", base_url="http://a/", config={"delay_s": 5})
    again = archive.upsert_site("laomi", engine="discuz", utc_offset="+09:00")
    assert first == again
    site = archive.get_site("laomi")
    assert site["base_url"] == "http://a/"
    assert json.loads(site["config_json"]) == {"delay_s": 5}
    assert site["utc_offset"] == "+09:00"
    assert archive.upsert_site("other", engine="discuz") != first
    assert archive.get_site("nobody") is None


@pytest.mark.parametrize("offset", ["8:00", "+0800", "UTC", "+25:00"])
def test_upsert_site_rejects_a_bad_offset(archive, offset):
    with pytest.raises(ValueError, match="utc_offset"):
        archive.upsert_site("laomi", engine="discuz", utc_offset=offset)
    assert count(archive, "sites") == 0


# --- bodies and fetches -----------------------------------------------------------------
def test_bodies_are_deduplicated_and_round_trip_through_compression(archive):
    html = ("<html><head><meta charset=gbk></head><body>" + "办公室工作" * 500 + "</body></html>")
    body = html.encode("gb18030")
    digest = archive.store_body(body, now=T0)
    assert archive.store_body(body, now=T1) == digest
    assert count(archive, "bodies") == 1
    row = next(archive.db.query("SELECT * FROM bodies"))
    assert row["compression"] == "zstd" and row["size"] == len(body)
    assert row["stored_size"] == len(row["data"]) < len(body) // 10
    assert row["first_seen_at"] == T0
    assert archive.read_body(digest) == body
    assert archive.store_body(b"") != digest and archive.read_body(archive.store_body(b"")) == b""


def test_bodies_stored_by_older_versions_still_read_back(archive):
    body = ("<html><body>" + "办公室是一个单位的综合办事机构。" * 300 + "</body></html>").encode("utf-8")
    digest = archive.store_body(body, now=T0)
    stored = archive.db.execute("SELECT data FROM bodies").fetchone()[0]
    assert stored == zstandard.ZstdCompressor(level=BODY_COMPRESSION_LEVEL).compress(body)
    # Bodies written by versions that used zlib, at level 6 (its default) and at level 3.
    older = {}
    for level in (6, 3):
        page = body.replace(b"<body>", f"<body>older {level}".encode())
        older[hashlib.sha256(page).hexdigest()] = page
        data = zlib.compress(page, level)
        archive.db.execute("INSERT INTO bodies (sha256, compression, size, stored_size, data, first_seen_at) "
                           "VALUES (?, 'zlib', ?, ?, ?, ?)", [hashlib.sha256(page).hexdigest(), len(page),
                                                             len(data), data, T0])
    assert all(archive.read_body(older_digest) == page for older_digest, page in older.items())
    assert archive.read_body(digest) == body


def test_read_body_reports_missing_and_corrupt_bodies(archive):
    with pytest.raises(LookupError):
        archive.read_body("0" * 64)
    digest = archive.store_body(b"<html>original</html>")
    tampered = zstandard.ZstdCompressor().compress(b"<html>tampered</html>")
    archive.db.execute("UPDATE bodies SET data = ? WHERE sha256 = ?", [tampered, digest])
    with pytest.raises(ValueError, match="corrupt"):
        archive.read_body(digest)
    # Bytes that are no zstd frame at all, and a frame that claims more than the stored size.
    archive.db.execute("UPDATE bodies SET data = ? WHERE sha256 = ?", [b"not a frame", digest])
    with pytest.raises(ValueError, match="corrupt"):
        archive.read_body(digest)
    oversized = zstandard.ZstdCompressor().compress(b"<html>original</html>" * 1000)
    archive.db.execute("UPDATE bodies SET data = ? WHERE sha256 = ?", [oversized, digest])
    with pytest.raises(ValueError, match="corrupt"):
        archive.read_body(digest)
    archive.db.execute("UPDATE bodies SET compression = 'lzma' WHERE sha256 = ?", [digest])
    with pytest.raises(ValueError, match="unknown compression"):
        archive.read_body(digest)


def test_store_body_wants_bytes(archive):
    with pytest.raises(TypeError):
        archive.store_body("<html></html>")  # type: ignore[arg-type]


def test_record_fetch_adds_one_row_per_attempt(archive, site_id):
    digest = archive.store_body(b"<html>ok</html>")
    first = archive.record_fetch(url="http://a/1", status=200, nbytes=15, elapsed_ms=12, body_sha256=digest,
                                 site_id=site_id, now=T0)
    second = archive.record_fetch(url="http://a/1", reason="timeout", site_id=site_id, now=T1)
    assert first != second and count(archive, "fetches") == 2
    row = next(archive.db.query("SELECT * FROM fetches WHERE id = ?", [first]))
    assert (row["status"], row["bytes"], row["body_sha256"], row["method"]) == (200, 15, digest, "GET")
    with pytest.raises(LookupError, match="no body"):
        archive.record_fetch(url="http://a/1", body_sha256="f" * 64)
    assert count(archive, "fetches") == 2


def test_record_parse_failure_keeps_the_body_reference(archive, site_id):
    digest = archive.store_body(b"<html>odd</html>")
    archive.record_parse_failure(url="http://a/1", reason="parse_error", detail="no #postlist",
                                 body_sha256=digest, site_id=site_id, now=T0)
    row = next(archive.db.query("SELECT * FROM parse_failures"))
    assert fields(row, "reason", "detail", "body_sha256", "at") == ("parse_error", "no #postlist", digest, T0)


def test_noise_counts_are_stored_as_sorted_json_whatever_their_order(archive, site_id):
    noises = [{"b": 2, "a": 1}, {"a": 1, "b": 2}, {"a": 1}, {}]
    posts = [make_post(2000 + n, n + 1, f"第{n}楼", noise_removed=noise) for n, noise in enumerate(noises)]
    archive.save_thread_page(site_id, make_page(90, posts), url="http://bbs.example.cn/t90", url_key="t90", now=T0)
    stored = [row["noise_json"] for row in archive.db.query("SELECT noise_json FROM posts ORDER BY pid")]
    assert stored == ['{"a": 1, "b": 2}', '{"a": 1, "b": 2}', '{"a": 1}', "{}"]

# --- thread pages -----------------------------------------------------------------------
def test_a_new_page_stores_thread_posts_versions_and_page(archive, site_id):
    digest = archive.store_body(b"<html>thread 88</html>")
    page = make_page(88, [make_post(1001, 1, OPENING), rich_post(1002, 2, REPLY)], replies=7, views=1234,
                     board="公文写作", fid=2, page_count=3,
                     canonical_url="http://bbs.example.cn/thread-88-1-1.html")
    result = save(archive, site_id, page, T0, body_sha256=digest, encoding="gb18030", etag='"abc"')
    assert tally(result) == (2, 0, 0, True)
    assert stored_keys(archive) == ["1001", "1002"]
    thread = next(archive.db.query("SELECT * FROM threads"))
    assert thread["id"] == result.thread_id
    assert fields(thread, "tid", "thread_key", "replies", "views", "page_count") == (88, "88", 7, 1234, 3)
    assert (thread["board"], thread["fid"], thread["first_seen_at"]) == ("公文写作", 2, T0)
    reply = post_row(archive, 1002)
    assert reply["content_hash"] == content_hash(REPLY, quotes=[("引用的话", 999)]) and reply["version_count"] == 1
    assert reply["status"] == "normal" and reply["floor_label"] == "2#" and reply["page"] == 1
    assert json.loads(reply["quotes_json"]) == [
        {"text": "引用的话", "author": "李四", "posted_at_raw": "2024-3-1 09:00", "pid": 999, "attribution": None}]
    assert json.loads(reply["attachments_json"]) == [
        {"url": "http://bbs.example.cn/a.jpg", "name": "a.jpg", "aid": "55", "is_image": True}]
    assert json.loads(reply["noise_json"]) == {"jammer_text_runs": 3}
    assert reply["signature"] == "签名档文字" and reply["edit_note"].startswith("本帖最后由")
    assert versions(archive, 1002) == [REPLY]
    state = archive.page_state(site_id, "http://bbs.example.cn/thread-88-1-1.html")
    assert fields(state, "kind", "thread_id", "page_no", "post_count") == ("thread", result.thread_id, 1, 2)
    assert (state["body_sha256"], state["encoding"], state["etag"], state["last_changed_at"]) == (
        digest, "gb18030", '"abc"', T0)


def test_saving_the_same_page_again_adds_nothing_but_touches_last_seen(archive, site_id):
    save(archive, site_id, two_post_page(), T0)
    tables = {t: count(archive, t) for t in ("threads", "posts", "post_versions", "pages")}
    result = save(archive, site_id, two_post_page(), T1)
    assert tally(result) == (0, 0, 2, False)
    assert {t: count(archive, t) for t in tables} == tables
    for pid in (1001, 1002):
        row = post_row(archive, pid)
        assert (row["first_seen_at"], row["last_seen_at"], row["version_count"]) == (T0, T1, 1)
    state = archive.page_state(site_id, "http://bbs.example.cn/thread-88-1-1.html")
    assert (state["first_fetched_at"], state["last_fetched_at"], state["last_changed_at"]) == (T0, T1, T0)
    assert next(archive.db.query("SELECT last_seen_at FROM threads"))["last_seen_at"] == T1


def test_white_space_differences_are_not_an_edit(archive, site_id):
    save(archive, site_id, two_post_page("一是参谋意识。\n办公室是一级领导决策的参谋部"), T0)
    respaced = "\u3000一是参谋意识。\u00a0\r\n\n办公室是一级领导决策的参谋部 "
    result = save(archive, site_id, two_post_page(respaced), T1)
    assert result.new_versions == 0 and count(archive, "post_versions") == 2


def test_a_changed_post_adds_exactly_one_version(archive, site_id):
    save(archive, site_id, two_post_page(), T0)
    result = save(archive, site_id, two_post_page(REPLY_EDITED), T1)
    assert tally(result) == (0, 1, 1, True)
    assert versions(archive, 1002) == [REPLY, REPLY_EDITED]
    assert versions(archive, 1001) == [OPENING]
    row = post_row(archive, 1002)
    assert row["content_hash"] == content_hash(REPLY_EDITED) and row["content_text"] == REPLY_EDITED
    assert row["version_count"] == 2 and row["first_seen_at"] == T0
    state = archive.page_state(site_id, "http://bbs.example.cn/thread-88-1-1.html")
    assert state["last_changed_at"] == T1


def test_a_to_b_to_a_keeps_two_versions_and_shows_a(archive, site_id):
    save(archive, site_id, two_post_page(REPLY), T0)
    save(archive, site_id, two_post_page(REPLY_EDITED), T1)
    result = save(archive, site_id, two_post_page(REPLY), T2)
    assert result.new_versions == 1  # the content did change, back to an earlier version
    assert versions(archive, 1002) == [REPLY, REPLY_EDITED]
    row = post_row(archive, 1002)
    assert row["content_text"] == REPLY and row["content_hash"] == content_hash(REPLY)
    assert row["version_count"] == 2


def stored_versions(archive, pid):
    """post_versions rows as stored: (content_hash, content_text, content_html)."""
    return archive.db.execute(
        "SELECT v.content_hash, v.content_text, v.content_html FROM post_versions v "
        "JOIN posts p ON p.id = v.post_id WHERE p.pid = ? ORDER BY v.id", [pid]).fetchall()


def test_each_version_text_is_stored_once_and_history_shows_every_text_exactly(archive, site_id):
    save(archive, site_id, two_post_page(REPLY), T0)
    assert stored_versions(archive, 1002) == [(content_hash(REPLY), None, None)]  # posts holds it
    save(archive, site_id, two_post_page(REPLY_EDITED), T1)
    # The superseded version got its text in the same transaction as the edit.
    assert stored_versions(archive, 1002) == [
        (content_hash(REPLY), REPLY, f"<p>{REPLY}</p>"), (content_hash(REPLY_EDITED), None, None)]
    history = archive.post_versions(post_row(archive, 1002)["id"])
    assert [(v["content_text"], v["content_html"], v["seen_at"], v["is_current"]) for v in history] == [
        (REPLY, f"<p>{REPLY}</p>", T0, 0), (REPLY_EDITED, f"<p>{REPLY_EDITED}</p>", T1, 1)]
    # Back to the first text: its row hands the text back to posts, the second keeps its own.
    save(archive, site_id, two_post_page(REPLY), T2)
    assert stored_versions(archive, 1002) == [
        (content_hash(REPLY), None, None), (content_hash(REPLY_EDITED), REPLY_EDITED, f"<p>{REPLY_EDITED}</p>")]
    assert versions(archive, 1002) == [REPLY, REPLY_EDITED]


def test_the_post_history_query_shows_every_text(archive, site_id):
    config = yaml.safe_load((REPO / "datasette.yaml").read_text(encoding="utf-8"))
    post_history = config["databases"]["archive"]["queries"]["post_history"]["sql"]
    save(archive, site_id, two_post_page(REPLY), T0)
    save(archive, site_id, two_post_page(REPLY_EDITED), T1)
    rows = archive.db.execute(post_history, {"post_id": post_row(archive, 1002)["id"]}).fetchall()
    assert [(row[5], row[7]) for row in rows] == [(T0, REPLY), (T1, REPLY_EDITED)]


def test_a_deleted_rendering_keeps_the_archived_content(archive, site_id):
    save(archive, site_id, two_post_page(), T0)
    deleted = make_post(1002, 2, "", status=PostStatus.DELETED, author=None, author_uid=None)
    result = save(archive, site_id, make_page(88, [make_post(1001, 1, OPENING), deleted]), T1)
    assert result.new_versions == 0 and result.unchanged_posts == 2
    row = post_row(archive, 1002)
    assert fields(row, "status", "content_text", "author", "last_seen_at") == ("deleted", REPLY, "仲伯间", T1)
    assert versions(archive, 1002) == [REPLY]
    # Back to normal with the same text: same version, status normal again.
    save(archive, site_id, two_post_page(), T2)
    assert post_row(archive, 1002)["status"] == "normal"
    assert versions(archive, 1002) == [REPLY]


def test_a_post_first_seen_deleted_is_stored_and_later_gains_its_text(archive, site_id):
    deleted = make_post(1002, 2, "", status=PostStatus.DELETED)
    save(archive, site_id, make_page(88, [make_post(1001, 1, OPENING), deleted]), T0)
    assert post_row(archive, 1002)["status"] == "deleted"
    save(archive, site_id, two_post_page(), T1)
    row = post_row(archive, 1002)
    assert (row["status"], row["content_text"], row["version_count"]) == ("normal", REPLY, 2)


def test_a_hot_reply_repeated_on_page_one_keeps_its_real_floor(archive, site_id):
    hot = make_post(5025, None, THIRD, floor_label="推荐")
    real = make_post(5025, 25, THIRD)
    page_one = make_page(88, [make_post(1001, 1, OPENING), hot], page=1, page_count=2)
    page_two = make_page(88, [real], page=2, page_count=2)
    save(archive, site_id, page_one, T0)
    assert (post_row(archive, 5025)["floor"], post_row(archive, 5025)["page"]) == (None, 1)
    save(archive, site_id, page_two, T1, url="http://bbs.example.cn/thread-88-2-1.html")
    save(archive, site_id, page_one, T2)
    row = post_row(archive, 5025)
    assert (row["floor"], row["floor_label"], row["page"], row["last_seen_at"]) == (25, "25#", 2, T2)
    # Both renderings on one page count once, at the numbered floor.
    result = save(archive, site_id, make_page(88, [hot, real], page=2, page_count=2), T3,
                  url="http://bbs.example.cn/thread-88-2-1.html")
    assert tally(result) == (0, 0, 1, False) and stored_keys(archive).count("5025") == 1


def test_posts_without_pids_are_keyed_by_thread_and_floor(archive, site_id):
    page = make_page(None, [make_post(None, 1, OPENING), make_post(None, 2, REPLY)])
    result = save(archive, site_id, page, T0, url="file:seed.txt")
    thread_key = next(archive.db.query("SELECT thread_key FROM threads"))["thread_key"]
    assert thread_key.startswith("text:")
    assert result.new_posts == 2 and stored_keys(archive) == [f"{thread_key}#1", f"{thread_key}#2"]
    again = save(archive, site_id, page, T1, url="file:seed.txt")
    assert again.unchanged_posts == 2 and count(archive, "posts") == 2


def test_a_post_without_pid_or_floor_is_refused_and_nothing_is_written(archive, site_id):
    page = make_page(88, [make_post(1001, 1, OPENING), make_post(None, None, REPLY)])
    with pytest.raises(ValueError, match="neither a pid nor a floor"):
        save(archive, site_id, page, T0)
    assert count(archive, "threads") == count(archive, "posts") == count(archive, "pages") == 0


def test_an_unknown_site_or_body_is_refused(archive, site_id):
    with pytest.raises(LookupError, match="no site"):
        save(archive, site_id + 1, two_post_page(), T0)
    with pytest.raises(LookupError, match="no body"):
        save(archive, site_id, two_post_page(), T0, body_sha256="a" * 64)
    assert count(archive, "threads") == 0


def test_thread_fields_are_not_clobbered_by_missing_values(archive, site_id):
    first = two_post_page(replies=7, views=100, board="公文写作", fid=2,
                          canonical_url="http://bbs.example.cn/thread-88-1-1.html")
    save(archive, site_id, first, T0)
    later_page = make_page(88, [make_post(1003, 3, THIRD)], title=" ", page=2, page_count=2,
                           canonical_url="http://bbs.example.cn/thread-88-2-1.html")
    save(archive, site_id, later_page, T1, url="http://bbs.example.cn/thread-88-2-1.html")
    thread = next(archive.db.query("SELECT * FROM threads"))
    assert (thread["title"], thread["replies"], thread["views"], thread["board"]) == (
        "基层党委办公室应强化的十种意识", 7, 100, "公文写作")
    assert thread["url"] == "http://bbs.example.cn/thread-88-1-1.html"
    assert thread["page_count"] == 2 and count(archive, "threads") == 1


# --- board pages ------------------------------------------------------------------------
def board_page(replies: int = 7, title: str = "基层党委办公室应强化的十种意识"):
    return BoardPage(fid=2, name="公文写作", page=1, page_count=5, rows=[
        BoardRow(tid=88, title=title, url="http://bbs.example.cn/thread-88-1-1.html", replies=replies,
                 views=1500, author="仲伯间", last_post_at="2016-04-12T10:51:09+08:00",
                 last_post_raw="2016-4-12"),
        BoardRow(tid=89, title="办公室人员的十种意识", url="http://bbs.example.cn/thread-89-1-1.html",
                 replies=0, views=12, sticky=True),
    ])


def test_a_board_page_creates_and_updates_threads_without_clobbering(archive, site_id):
    save(archive, site_id, two_post_page(replies=5), T0)
    seen = archive.save_board_page(site_id, board_page(replies=7, title="基层党委办公室应强化的十..."),
                                   url="http://bbs.example.cn/forum-2-1.html", url_key="forum-2-1", now=T1)
    assert seen == 2 and count(archive, "threads") == 2
    rows = {row["tid"]: row for row in archive.db.query("SELECT * FROM threads")}
    assert rows[88]["title"] == "基层党委办公室应强化的十种意识"  # the thread page's own title stays
    assert fields(rows[88], "replies", "views", "last_post_at") == (7, 1500, "2016-04-12T10:51:09+08:00")
    assert (rows[89]["title"], rows[89]["board"], rows[89]["fid"], rows[89]["url"]) == (
        "办公室人员的十种意识", "公文写作", 2, "http://bbs.example.cn/thread-89-1-1.html")
    state = archive.page_state(site_id, "forum-2-1")
    assert fields(state, "kind", "thread_id", "post_count", "last_changed_at") == ("board", None, 2, T1)


def test_a_board_page_changes_only_when_its_threads_move(archive, site_id):
    kwargs = dict(url="http://bbs.example.cn/forum-2-1.html", url_key="forum-2-1")
    archive.save_board_page(site_id, board_page(), now=T0, **kwargs)
    archive.save_board_page(site_id, board_page(), now=T1, **kwargs)
    assert archive.page_state(site_id, "forum-2-1")["last_changed_at"] == T0
    archive.save_board_page(site_id, board_page(replies=8), now=T2, **kwargs)
    state = archive.page_state(site_id, "forum-2-1")
    assert (state["last_changed_at"], state["last_fetched_at"]) == (T2, T2)


# --- vanished threads (vanished posts: test_vanished_posts.py) ---------------------------
def test_mark_thread_gone_until_it_is_seen_again(archive, site_id):
    thread_id = save(archive, site_id, two_post_page(), T0).thread_id
    assert archive.mark_thread_gone(thread_id, now=T1) is True
    assert archive.mark_thread_gone(thread_id, now=T2) is False
    assert next(archive.db.query("SELECT gone_at FROM threads"))["gone_at"] == T1
    save(archive, site_id, two_post_page(), T3)
    assert next(archive.db.query("SELECT gone_at FROM threads"))["gone_at"] is None


def test_page_state_of_an_unknown_page_is_none(archive, site_id):
    assert archive.page_state(site_id, "never-fetched") is None


# --- transactions -----------------------------------------------------------------------
def test_a_transaction_that_raises_leaves_nothing_behind(archive, site_id):
    archive.enqueue(site_id, url="http://a/t88", url_key="t88", kind="thread", host="a", now=T0)
    leased = archive.lease_next(site_id, now=T0, lease_s=60)
    tables = ("fetches", "bodies", "threads", "posts", "post_versions", "pages", "frontier")
    before = {t: count(archive, t) for t in tables}
    with pytest.raises(RuntimeError, match="disk on fire"):
        with archive.transaction():
            digest = archive.store_body(b"<html>thread 88</html>", now=T1)
            archive.record_fetch(url="http://a/t88", status=200, body_sha256=digest, site_id=site_id, now=T1)
            save(archive, site_id, two_post_page(), T1, body_sha256=digest)
            archive.finish(leased["id"], "done", now=T1)
            archive.enqueue(site_id, url="http://a/t88p2", url_key="t88p2", kind="thread", host="a", now=T1)
            assert count(archive, "posts") == 2  # visible inside the transaction
            raise RuntimeError("disk on fire")
    assert {t: count(archive, t) for t in before} == before
    row = next(archive.db.query("SELECT state, attempts FROM frontier"))
    assert (row["state"], row["attempts"]) == ("leased", 1)


def test_a_committed_group_is_visible_to_another_connection(archive, site_id, tmp_path):
    with archive.transaction():
        digest = archive.store_body(b"<html>thread 88</html>", now=T1)
        archive.record_fetch(url="http://a/t88", status=200, body_sha256=digest, site_id=site_id, now=T1)
        save(archive, site_id, two_post_page(), T1, body_sha256=digest)
        with Archive(archive.path, readonly=True) as reader:
            assert reader.db["posts"].count == 0  # not committed yet
    with Archive(archive.path, readonly=True) as reader:
        assert reader.db["posts"].count == 2 and reader.db["fetches"].count == 1


def test_an_inner_failure_caught_inside_the_outer_transaction_undoes_only_itself(archive, site_id):
    with archive.transaction():
        archive.record_fetch(url="http://a/1", status=200, now=T0)
        bad_page = make_page(88, [make_post(1001, 1, OPENING), make_post(None, None, REPLY)])
        with pytest.raises(ValueError):
            save(archive, site_id, bad_page, T0)
        with pytest.raises(sqlite3.IntegrityError):
            with archive.transaction():
                archive.record_fetch(url="http://a/2", status=200, now=T0)
                archive.db.execute("INSERT INTO threads (site_id, thread_key, first_seen_at, last_seen_at) "
                                   "VALUES (999, 'x', 'x', 'x')")
    assert [row["url"] for row in archive.db.query("SELECT url FROM fetches")] == ["http://a/1"]
    assert count(archive, "threads") == 0


# --- runs, noise phrases, robots, times -------------------------------------------------
def test_runs_start_and_finish(archive, site_id):
    run_id = archive.start_run(site_id, "crawl", now=T0)
    assert next(archive.db.query("SELECT status FROM runs"))["status"] == "running"
    # A status the published metadata does not explain is refused, and the run stays open.
    with pytest.raises(ValueError, match="'ok'"):
        archive.finish_run(run_id, status="ok", requests=12, not_modified=3, new_posts=40, new_versions=2,
                           failures={}, now=T1)
    assert next(archive.db.query("SELECT status FROM runs"))["status"] == "running"
    archive.finish_run(run_id, status="finished", requests=12, not_modified=3, new_posts=40, new_versions=2,
                       failures={"timeout": 2, "http_503": 1}, now=T1)
    run = next(archive.db.query("SELECT * FROM runs"))
    assert fields(run, "status", "finished_at", "requests", "not_modified", "new_posts", "new_versions") == (
        "finished", T1, 12, 3, 40, 2)
    assert run["failures"] == 3 and json.loads(run["failures_json"]) == {"http_503": 1, "timeout": 2}
    with pytest.raises(LookupError):
        archive.finish_run(run_id + 1, status="finished", requests=0, not_modified=0, new_posts=0, new_versions=0,
                           failures={})


def test_noise_phrases_proposed_confirmed_and_rejected(archive, site_id):
    assert archive.propose_phrases(site_id, [("本文由老秘网推荐", 9), ("老秘网", 12), ("专业写文章", 6)], now=T0) == 3
    assert archive.confirmed_phrases(site_id) == []
    assert archive.set_phrase_status(site_id, "老秘网", "confirmed")
    assert archive.set_phrase_status(site_id, "本文由老秘网推荐", "confirmed")
    assert archive.set_phrase_status(site_id, "专业写文章", "rejected")
    assert not archive.set_phrase_status(site_id, "没有这个", "confirmed")
    assert archive.confirmed_phrases(site_id) == ["本文由老秘网推荐", "老秘网"]  # longest first
    # Proposing again updates counts and keeps every decision.
    assert archive.propose_phrases(site_id, [("专业写文章", 20), ("新的水印句子", 5)], now=T1) == 1
    rows = {r["phrase"]: r for r in archive.db.query("SELECT * FROM noise_phrases")}
    assert (rows["专业写文章"]["status"], rows["专业写文章"]["post_count"], rows["专业写文章"]["proposed_at"]) == (
        "rejected", 20, T0)
    with pytest.raises(ValueError):
        archive.set_phrase_status(site_id, "老秘网", "maybe")
    with pytest.raises(ValueError):
        archive.propose_phrases(site_id, [("  ", 3)])


def test_robots_cache_round_trip(archive):
    archive.put_robots("bbs.example.cn", status=200, body="User-agent: *\nDisallow: /api/",
                       expires_at="2024-03-02T08:00:00+08:00", fetched_at=T0)
    assert archive.get_robots("bbs.example.cn")["expires_at"] == T1  # stored in UTC
    archive.put_robots("bbs.example.cn", status=503, body=None, reason="http_503", expires_at=T2,
                       fetched_at=T1)
    entry = archive.get_robots("bbs.example.cn")
    assert (entry["status"], entry["body"], entry["reason"], entry["fetched_at"], entry["expires_at"]) == (
        503, None, "http_503", T1, T2)
    assert archive.get_robots("elsewhere") is None


def test_times_are_stored_in_utc_and_naive_times_refused(archive):
    assert normalise_time("2024-03-01T08:00:00+08:00") == T0
    assert normalise_time("2024-03-01T00:00:00Z") == T0
    run_id = archive.start_run(None, "crawl", now="2024-03-01T08:00:00+08:00")
    assert next(archive.db.query("SELECT started_at FROM runs WHERE id = ?", [run_id]))["started_at"] == T0
    for bad in ("2024-03-01T00:00:00", "yesterday"):
        with pytest.raises(ValueError):
            archive.start_run(None, "crawl", now=bad)
    assert count(archive, "runs") == 1


def test_a_hidden_rendering_keeps_the_archived_text_unless_its_visible_part_is_new(archive, site_id):
    save(archive, site_id, two_post_page(REPLY), T0)
    first_line = "一是参谋意识。"  # the start of REPLY
    assert REPLY.startswith(first_line) and first_line != REPLY
    # Part of the post locked away: what shows is in the archived text, nothing is lost or new.
    partly = make_post(1002, 2, first_line, status=PostStatus.HIDDEN)
    result = save(archive, site_id, make_page(88, [make_post(1001, 1, OPENING), partly]), T1)
    assert result.new_versions == 0
    assert fields(post_row(archive, 1002), "status", "content_text") == ("hidden", REPLY)
    # The author rewrote the post around a [hide] block: the visible part is an edit.
    rewritten = f"{first_line}\n补充说明：以下内容回复可见"
    edited = make_post(1002, 2, rewritten, status=PostStatus.HIDDEN)
    result = save(archive, site_id, make_page(88, [make_post(1001, 1, OPENING), edited]), T2)
    assert result.new_versions == 1
    assert fields(post_row(archive, 1002), "status", "content_text") == ("hidden", rewritten)
    assert versions(archive, 1002) == [REPLY, rewritten]  # the full text stays, as the earlier version


def test_a_crawled_post_takes_over_the_same_post_imported_from_text_without_a_pid(archive, site_id):
    # A text rendering shows no pids: its posts are keyed by floor. The crawl of the same
    # thread later sees the pids; the posts must not be stored twice.
    def post(pid, floor, text, author, at):
        return make_post(pid, floor, text, author=author, posted_at_raw=at)

    imported = [post(None, 1, OPENING, "仲伯间", "2012-3-12 14:40"), post(None, 2, REPLY, "仲伯间", "2012-3-12 14:42")]
    save(archive, site_id, make_page(88, imported), T0)
    crawled = [post(1001, 1, OPENING, "仲伯间", "2012-3-12 14:40"), post(1002, 2, REPLY_EDITED, "仲伯间", "2012-3-12 14:42"),
               post(1003, 3, THIRD, "xg0101", "2012-3-16 14:55")]
    result = save(archive, site_id, make_page(88, crawled), T1)
    assert (result.new_posts, result.new_versions, result.unchanged_posts) == (1, 1, 1)
    rows = archive.db.execute("select pid, post_key, floor, version_count from posts order by floor").fetchall()
    assert rows == [(1001, "1001", 1, 1), (1002, "1002", 2, 2), (1003, "1003", 3, 1)]
    assert versions(archive, 1002) == [REPLY, REPLY_EDITED]


def test_a_table_post_archived_a_cell_a_line_is_no_new_version_one_row_a_line(archive, site_id):
    # Before rows were kept, a post's text held each cell of a table on a line of its own;
    # read again, the post's table is one row a line, cells apart by tabs: the same content.
    html = _one_post_thread("").replace('id="postmessage_1">十二张图', f'id="postmessage_1">价目表{DISCUZ_TABLE}以上')
    page = discuz_thread(html)
    [post] = page.posts
    assert post.content_text == "价目表\n名称\t单价\t备注\n苹果\t3 元 (箱)\n梨\t5 元\t限购\n以上"
    a_cell_a_line = "价目表\n名称\n单价\n备注\n苹果\n3 元\n(箱)\n梨\n5 元\n限购\n以上"
    save(archive, site_id, replace(page, posts=[replace(post, content_text=a_cell_a_line)]), T0)
    result = save(archive, site_id, page, T1)
    assert (result.new_posts, result.new_versions, result.unchanged_posts) == (0, 0, 1)
    assert count(archive, "post_versions") == 1 and post_row(archive, post.pid)["version_count"] == 1
