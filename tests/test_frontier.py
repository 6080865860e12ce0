"""Frontier keys: one key per content, trap shapes refused."""

import pytest

from scraper.engines.base import PageKind
from scraper.engines.discuz import DiscuzEngine
from scraper.errors import TrapDetected
from scraper.frontier import canonicalize, entry_for, sibling_page_url

ENGINE = DiscuzEngine()


def test_both_discuz_thread_forms_share_one_key():
    a = entry_for("http://bbs.example.cn/thread-88-2-1.html", ENGINE)
    b = entry_for("http://bbs.example.cn/forum.php?page=2&tid=88&mod=viewthread&extra=page%3D1", ENGINE)
    assert a.key == b.key == "thread:88:2"
    assert a.kind is PageKind.THREAD


def test_board_forms_share_one_key():
    a = entry_for("http://bbs.example.cn/forum-7-3.html", ENGINE)
    b = entry_for("http://bbs.example.cn/forum.php?mod=forumdisplay&fid=7&page=3", ENGINE)
    assert a.key == b.key == "board:7:3"


def test_session_ids_and_order_do_not_make_new_urls():
    urls = {canonicalize(f"HTTP://BBS.Example.cn:80/home.php?sid=s{i}&b=2&a=1#frag") for i in range(1000)}
    assert urls == {"http://bbs.example.cn/home.php?a=1&b=2"}


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://bbs.example.cn/" + "a" * 3000, "url_length"),
        ("http://bbs.example.cn/x/x/x/x/page.html", "repeated_path"),
        ("http://bbs.example.cn/thread-1-999999-1.html", "page_ceiling"),
    ],
)
def test_trap_shapes_are_refused_with_their_rule(url, rule):
    with pytest.raises(TrapDetected) as info:
        entry_for(url, ENGINE)
    assert info.value.reason == f"trap:{rule}"


def test_a_thread_of_tens_of_thousands_of_pages_is_no_trap():
    # A check-in thread of 200,000 replies has 20,000 pages; its revisits start at its last.
    assert entry_for("http://bbs.example.cn/thread-1-20000-1.html", ENGINE).key == "thread:1:20000"


def test_next_page_keeps_the_sites_url_style():
    assert sibling_page_url("http://h/bbs/thread-5-1-1.html", ENGINE, 2) == "http://h/bbs/thread-5-2-1.html"
    assert sibling_page_url("http://h/forum.php?mod=viewthread&tid=5", ENGINE, 3) == \
        "http://h/forum.php?mod=viewthread&tid=5&page=3"


def test_fetched_url_keeps_the_sites_parameter_order():
    # robots.txt rules like "Disallow: /forum.php?mod=redirect" are prefix matches on this order.
    entry = entry_for("http://h/forum.php?mod=redirect&goto=lastpost&sid=abc", ENGINE)
    assert entry.url == "http://h/forum.php?mod=redirect&goto=lastpost"
    assert entry.key == "url:http://h/forum.php?goto=lastpost&mod=redirect"
    assert sibling_page_url("http://h/forum-2-1.html", ENGINE, 2) == "http://h/forum-2-2.html"


def test_a_filtered_view_of_a_thread_or_board_is_fetched_whole():
    # "只看该作者" and a board's category filter show part of the page their key names.
    thread = entry_for("http://h/forum.php?mod=viewthread&tid=2&page=1&authorid=2001", ENGINE)
    board = entry_for("http://h/forum.php?mod=forumdisplay&fid=7&filter=typeid&typeid=5&orderby=dateline", ENGINE)
    assert (thread.url, thread.key) == ("http://h/forum.php?mod=viewthread&tid=2&page=1", "thread:2:1")
    assert (board.url, board.key) == ("http://h/forum.php?mod=forumdisplay&fid=7", "board:7:1")
    # A URL no key names keeps them: there they may be what the page is.
    other = entry_for("http://h/home.php?mod=space&uid=7&authorid=7", ENGINE)
    assert other.url == "http://h/home.php?mod=space&uid=7&authorid=7"


def test_a_url_with_a_port_past_65535_is_a_bad_url():
    from scraper.errors import BadURL
    from scraper.frontier import canonicalize

    with pytest.raises(BadURL):
        canonicalize("http://bbs.example.cn:99999/thread-5-1-1.html")
