"""Builders and fixtures shared by the storage tests (this module holds no tests itself).

Records are scraper.engines.base's own dataclasses, so the tests also prove that storage
accepts exactly what the engines return.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scraper.engines.base import Attachment, Post, PostStatus, Quote, ThreadPage
from storage.archive import Archive

T0 = "2024-03-01T00:00:00+00:00"
T1 = "2024-03-02T00:00:00+00:00"
T2 = "2024-03-03T00:00:00+00:00"
T3 = "2024-03-04T00:00:00+00:00"


def make_post(
    pid: int | None,
    floor: int | None,
    text: str,
    *,
    author: str = "仲伯间",
    status: PostStatus = PostStatus.NORMAL,
    **fields,
) -> Post:
    """A post as the Discuz engine would return it."""
    fields.setdefault("floor_label", "楼主" if floor == 1 else f"{floor}#")
    fields.setdefault("author_uid", 7)
    fields.setdefault("posted_at", "2012-03-12T14:40:59+08:00")
    fields.setdefault("posted_at_raw", "2012-3-12 14:40:59")
    fields.setdefault("content_html", "<p>" + text.replace("\n", "<br>") + "</p>")
    fields.setdefault("media_refs", ())  # the HTML engine always names a post's media, none here
    return Post(pid=pid, floor=floor, author=author, content_text=text, status=status, **fields)


def make_page(
    tid: int | None,
    posts: list[Post],
    *,
    title: str = "基层党委办公室应强化的十种意识",
    page: int = 1,
    page_count: int = 1,
    **fields,
) -> ThreadPage:
    """A thread page holding `posts`."""
    return ThreadPage(tid=tid, title=title, page=page, page_count=page_count, posts=posts, **fields)


def rich_post(pid: int, floor: int, text: str) -> Post:
    """A post with a quote, an attachment, a signature, an edit note and noise counts."""
    return make_post(
        pid,
        floor,
        text,
        quotes=[Quote(text="引用的话", author="李四", posted_at_raw="2024-3-1 09:00", pid=999)],
        attachments=[Attachment(url="http://bbs.example.cn/a.jpg", name="a.jpg", aid="55")],
        signature="签名档文字",
        edit_note="本帖最后由 张三 于 2024-3-2 11:00 编辑",
        noise_removed={"jammer_text_runs": 3},
    )


def count(archive: Archive, table: str) -> int:
    return archive.db[table].count


def fields(row: dict, *names: str) -> tuple:
    """The values of `names` in a row, for comparing several columns at once."""
    return tuple(row[name] for name in names)


def tally(result) -> tuple[int, int, int, bool]:
    """A SaveResult's counts: (new_posts, new_versions, unchanged_posts, page_changed)."""
    return (result.new_posts, result.new_versions, result.unchanged_posts, result.page_changed)


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    with Archive(tmp_path / "archive.db") as opened:
        yield opened


@pytest.fixture
def site_id(archive: Archive) -> int:
    return archive.upsert_site("laomi", engine="discuz", base_url="http://bbs.example.cn/", now=T0)
