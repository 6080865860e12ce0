"""The new-threads guide: the demo forum serves it, the engine reads it, discovery uses it."""

import re
import json

import httpx
import pytest

from scraper import schedule
from scraper.clean import parse_html
from scraper.demo.forum import GUIDE_THREADS_PER_PAGE, DemoForum
from scraper.demo.server import start
from scraper.engines.base import PageKind, ParseContext
from scraper.engines.discuz import DiscuzEngine, guide_ref
from scraper.errors import ConfigError, ParseError
from scraper.schedule import RunOptions
from scraper.sites import site_from_dict
from storage.archive import Archive
from tests.test_crawl_demo import demo_site

ENGINE = DiscuzEngine()
GUIDE = "forum.php?mod=guide&view=newthread&page={}"


def guide_page(server, page=1):
    url = server.base_url + GUIDE.format(page)
    response = httpx.get(url)
    assert response.status_code == 200
    return parse_html(response.content.decode("utf-8")), ParseContext(url=url)


def add_threads(forum, count, fid=1):
    return [forum.add_thread(fid, f"导读测试主题 {n}", "admin", f"第 {n} 个主题的正文。") for n in range(count)]


def test_the_guide_lists_every_boards_threads_newest_first(demo_forum):
    forum = demo_forum.forum
    tree, ctx = guide_page(demo_forum)
    assert ENGINE.page_kind(tree) == PageKind.GUIDE
    guide = ENGINE.parse_guide(tree, ctx)
    assert [row.tid for row in guide.rows] == [t.tid for t in forum.guide_threads()]
    assert {row.fid for row in guide.rows} == set(forum.boards), "threads of both boards"
    for row in guide.rows:
        thread = forum.threads[row.tid]
        assert (row.fid, row.board, row.title) == (thread.fid, forum.boards[thread.fid].name, thread.title)
        assert (row.author, row.replies, row.views) == (thread.opening_post.author, thread.replies, thread.views)
        assert row.url == demo_forum.base_url + f"thread-{row.tid}-1-1.html"
    assert (guide.fid, guide.page, guide.page_count) == (None, 1, 1)
    newest = forum.add_thread(2, "导读里最新的主题", "admin", "正文。")
    assert ENGINE.parse_guide(*guide_page(demo_forum)).rows[0].tid == newest


def test_the_guide_pages_fifty_threads_a_page_and_serves_its_last_page_past_the_end(demo_forum):
    forum = demo_forum.forum
    add_threads(forum, GUIDE_THREADS_PER_PAGE + 10 - len(forum.threads))
    first = ENGINE.parse_guide(*guide_page(demo_forum, 1))
    second = ENGINE.parse_guide(*guide_page(demo_forum, 2))
    past_end = ENGINE.parse_guide(*guide_page(demo_forum, 9))
    assert (first.page, first.page_count, len(first.rows)) == (1, 2, GUIDE_THREADS_PER_PAGE)
    assert (second.page, len(second.rows)) == (2, 10)
    assert [r.tid for r in first.rows + second.rows] == [t.tid for t in forum.guide_threads()]
    assert past_end.rows == second.rows


def test_board_pages_stay_board_pages(demo_forum):
    url = demo_forum.base_url + "forum-1-1.html"
    tree = parse_html(httpx.get(url).content.decode("utf-8"))
    assert ENGINE.page_kind(tree) == PageKind.BOARD
    assert all(row.fid is None and row.board is None for row in ENGINE.parse_board(tree, ParseContext(url=url)).rows)


def test_a_guide_is_known_by_its_board_column_even_without_the_body_class(demo_forum):
    tree, ctx = guide_page(demo_forum)
    html = tree.html.replace('class="pg_guide"', 'class="pg_other"')
    assert ENGINE.page_kind(parse_html(html)) == PageKind.GUIDE


@pytest.mark.parametrize("html", ["<html><body class='pg_guide'><p>出错了</p></body></html>", "", "<div>x</div>"])
def test_a_page_without_a_thread_list_is_a_parse_error(html):
    with pytest.raises(ParseError, match="no thread list"):
        ENGINE.parse_guide(parse_html(html), ParseContext(url="http://bbs.example.cn/" + GUIDE.format(1)))


def test_guide_urls():
    url = ENGINE.guide_url("http://bbs.example.cn/bbs/", 3)
    assert url == "http://bbs.example.cn/bbs/forum.php?mod=guide&view=newthread&page=3"
    assert guide_ref(url) == ("newthread", 3) and ENGINE.url_kind(url) == PageKind.GUIDE
    assert guide_ref("http://bbs.example.cn/forum.php?mod=guide") == ("hot", 1)
    assert guide_ref("http://bbs.example.cn/forum-1-1.html") is None


def test_the_guide_switch_is_validated():
    base = {"name": "x", "base_url": "https://bbs.example.cn/"}
    assert site_from_dict(base).guide is False
    assert site_from_dict(dict(base, guide=True)).guide is True
    with pytest.raises(ConfigError, match="guide must be true or false"):
        site_from_dict(dict(base, guide="yes"))


# --- discovery through the guide ------------------------------------------------------------
def board_one_site(base_url):
    """The demo site as a config that lists only board 1 but reads the guide."""
    return site_from_dict(dict(demo_site(base_url).raw, boards=[1], guide=True))


def discover(db, site):
    return schedule.discover_site(str(db), json.dumps(site.raw, ensure_ascii=False),
                                  RunOptions(delay_s=0, allow_private=True).to_json())


def gets_since(server, mark):
    return [r.path for r in server.requests[mark:] if r.method == "GET"]


def test_a_new_thread_on_a_board_the_config_does_not_list_is_found_through_the_guide(demo_forum, tmp_path):
    db, forum = tmp_path / "a.db", demo_forum.forum
    site = board_one_site(demo_forum.base_url)
    discover(db, site)
    mark = len(demo_forum.requests)
    tid = forum.add_thread(2, "只在第二版块的新主题", "admin", "第二版块不在配置里。")
    result = discover(db, site)
    paths = gets_since(demo_forum, mark)
    assert paths == ["/forum-1-1.html", "/" + GUIDE.format(1), f"/thread-{tid}-1-1.html"]
    with Archive(db, readonly=True) as archive:
        thread = archive.db.execute("select fid, board, page_count from threads where tid = ?", [tid]).fetchone()
        posts = archive.db.execute("select count(*) from posts join threads on threads.id = posts.thread_id "
                                   "where tid = ?", [tid]).fetchone()[0]
    assert thread == (2, forum.boards[2].name, 1) and posts == 1
    assert result["new_posts"] == 1


def test_an_unchanged_forum_costs_exactly_its_board_and_guide_pages(demo_forum, tmp_path):
    db = tmp_path / "a.db"
    site = board_one_site(demo_forum.base_url)
    discover(db, site)
    mark = len(demo_forum.requests)
    result = discover(db, site)
    assert gets_since(demo_forum, mark) == ["/forum-1-1.html", "/" + GUIDE.format(1)]
    assert result["requests"] == 2 and result["new_posts"] == 0


def test_discovery_reads_the_guide_on_only_while_its_pages_hold_nothing_archived(tmp_path):
    forum = DemoForum()
    add_threads(forum, 2 * GUIDE_THREADS_PER_PAGE + 5 - len(forum.threads), fid=2)
    with start("127.0.0.1", 0, forum) as server:
        site = site_from_dict(dict(demo_site(server.base_url).raw, boards=[], guide=True))
        discover(tmp_path / "a.db", site)
        first = [p for p in gets_since(server, 0) if "mod=guide" in p]
        mark = len(server.requests)
        add_threads(forum, 3, fid=1)
        discover(tmp_path / "a.db", site)
        second = gets_since(server, mark)
    assert first == ["/" + GUIDE.format(page) for page in (1, 2, 3)], "every page was new"
    assert second[0] == "/" + GUIDE.format(1) and len(second) == 1 + 3, "page 1 reached archived threads"


def test_a_guide_row_of_a_board_linked_by_its_alias_keeps_its_board_and_author(demo_forum):
    # With forumkeys a row's board link is forum-{alias}-1.html: it is still the board column,
    # not the author's.
    tree, ctx = guide_page(demo_forum)
    first_board = demo_forum.forum.boards[1]
    html = re.sub(r'href="forum-1-1\.html"', 'href="forum-news-1.html"', tree.html)
    assert html != tree.html
    rows = ENGINE.parse_guide(parse_html(html), ctx).rows
    aliased = [row for row in rows if demo_forum.forum.threads[row.tid].fid == 1]
    assert aliased and all(row.board == first_board.name for row in aliased)
    assert all(row.author == demo_forum.forum.threads[row.tid].opening_post.author for row in rows)
