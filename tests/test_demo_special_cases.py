"""Each special case of the demo forum's synthetic threads lands in its own field.

The forum's clock is pinned, so the relative times it prints ("6 天前", "前天 08:30") and the
absolute times in their span[title] are known here exactly.
"""

import asyncio
import json
from datetime import datetime

import pytest

from scraper.crawl import CrawlOptions, Crawler
from scraper.demo.forum import DemoForum
from scraper.demo.server import start
from storage.archive import Archive
from tests.test_crawl_demo import demo_site

FORUM_NOW = datetime(2026, 11, 28, 11, 30, 42)  # site-local (+08:00)


@pytest.fixture(scope="module")
def posts(tmp_path_factory):
    server = start("127.0.0.1", 0, DemoForum(now=FORUM_NOW))
    try:
        with Archive(tmp_path_factory.mktemp("special") / "a.db") as archive:
            site = demo_site(server.base_url)
            options = CrawlOptions(delay_s=0, allow_private_hosts=frozenset({"127.0.0.1"}))
            report = asyncio.run(Crawler(archive, site, options=options).run(
                [f"{server.base_url}forum-1-1.html", f"{server.base_url}forum-2-1.html"]))
            assert not report.failures
            archive.db.conn.row_factory = None
            cursor = archive.db.execute(
                "select t.tid, p.floor, p.* from posts p join threads t on t.id = p.thread_id")
            names = [d[0] for d in cursor.description]
            rows = {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in cursor.fetchall()}
            threads = {r[0]: r for r in archive.db.execute(
                "select tid, title, replies, views, page_count, board from threads").fetchall()}
    finally:
        server.shutdown()
    return rows, threads


def test_relative_times_come_from_span_title(posts):
    rows, _ = posts
    assert rows[(2, 1)]["posted_at_raw"] == "6 天前"
    assert rows[(2, 1)]["posted_at"] == "2026-11-22T06:30:42+08:00"
    assert rows[(2, 3)]["posted_at_raw"] == "前天 08:30"
    assert rows[(2, 3)]["posted_at"] == "2026-11-26T08:30:42+08:00"
    assert rows[(2, 7)]["posted_at_raw"] == "25 分钟前"
    assert rows[(2, 7)]["posted_at"] == "2026-11-28T11:05:42+08:00"


def test_absolute_times_with_seconds(posts):
    rows, _ = posts
    assert rows[(3, 1)]["posted_at"] == "2023-12-18T09:12:40+08:00"
    assert rows[(4, 1)]["posted_at"] == "2020-05-01T09:00:00+08:00"


def test_authoronleft_and_default_author_markup(posts):
    rows, _ = posts
    assert (rows[(2, 1)]["author"], rows[(2, 1)]["author_uid"]) == ("笔耕者", 2001)  # a.xw1, authoronleft
    assert (rows[(3, 2)]["author"], rows[(3, 2)]["author_uid"]) == ("秘书小李", 2008)  # a.xi2, default


def test_floor_labels_then_numbers(posts):
    rows, _ = posts
    labels = [rows[(3, n)]["floor_label"] for n in range(1, 14)]
    assert labels[:4] == ["楼主", "沙发", "板凳", "地板"]
    assert labels[4:] == [f"{n}#" for n in range(5, 14)]
    assert [rows[(3, n)]["page"] for n in (1, 5, 6, 10, 11, 13)] == [1, 1, 2, 2, 3, 3]


def test_edit_note_is_its_own_field(posts):
    rows, _ = posts
    first = rows[(2, 1)]
    assert first["edit_note"] == "本帖最后由 笔耕者 于 2026-11-22 07:30 编辑"
    assert "本帖最后由" not in first["content_text"]


def test_quote_is_its_own_field(posts):
    rows, _ = posts
    reply = rows[(2, 3)]
    quotes = json.loads(reply["quotes_json"])
    assert quotes == [{"author": "老秘书", "pid": 202, "posted_at_raw": "2026-11-23 09:30",
                       "text": "区分的关键就一句话：请示要批复，报告不要批复。",
                       "attribution": "老秘书 发表于 2026-11-23 09:30"}]
    assert "请示要批复" not in reply["content_text"]
    assert reply["content_text"].startswith("学习了！之前一直以为只是标题不同。")


def test_signature_is_its_own_field(posts):
    rows, _ = posts
    assert rows[(2, 2)]["signature"] == "文章千古事，得失寸心知。"
    assert "文章千古事" not in rows[(2, 2)]["content_text"]


def test_image_from_zoomfile_and_file_attachment(posts):
    rows, _ = posts
    image = json.loads(rows[(2, 1)]["attachments_json"])
    assert len(image) == 1 and image[0]["is_image"] and image[0]["aid"] == "301"
    assert image[0]["url"].endswith("/data/attachment/forum/202403/10/093015q7mz3h3mnhh3w3ri.jpg")
    doc = json.loads(rows[(2, 4)]["attachments_json"])
    assert [(a["name"], a["is_image"], a["aid"]) for a in doc] == [("请示与报告对照表.doc", False, "302")]
    assert "mod=attachment" in doc[0]["url"]


def test_deleted_and_blocked_floors(posts):
    rows, _ = posts
    assert rows[(2, 5)]["status"] == "deleted" and rows[(2, 5)]["content_text"] == ""
    blocked = rows[(2, 6)]
    assert blocked["status"] == "blocked" and blocked["author"] == "推广达人"
    assert "代写" not in blocked["content_text"] and "屏蔽" not in blocked["content_text"]


def test_thread_counts_and_pages(posts):
    _, threads = posts
    assert threads[2][2:6] == (5, 368, 2, "公文写作")  # replies as printed, views, 7 posts over 2 pages
    assert threads[3][4] == 3
    assert threads[22][5] == "旧版存档"


def test_gb18030_only_characters_survive(posts):
    rows, _ = posts
    assert "𠮷" in rows[(22, 1)]["content_text"]
    assert "𡈽" in rows[(22, 1)]["content_text"] and "㐀" in rows[(22, 1)]["content_text"]
