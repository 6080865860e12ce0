"""The demo forum over real HTTP on 127.0.0.1: Discuz X3.4 markup, encodings, routes,
mutations, validators and the request log."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from protego import Protego
from selectolax.lexbor import LexborHTMLParser

from scraper.clean import JAMMER_UNIT, normalise_whitespace, strip_jammer_line
from scraper.demo import render
from scraper.demo.forum import DemoForum, lines_with_jammer
from scraper.demo.seeddata import SEED_JSON_PATH, SEED_TEXT_PATH, dumps, seed_thread
from scraper.demo.server import start
from scraper.engines.base import ParseContext
from scraper.engines.discuz_text import parse_text_page
from scraper.sites import load_site

REPO = Path(__file__).resolve().parent.parent
SEED_TEXT = SEED_TEXT_PATH.read_text(encoding="utf-8")
SEED_TITLE = "基层党委办公室应强化的十种意识"
SEED_POSTS = [  # (author, time) as seeds/README.md lists them
    ("仲伯间", "2012-3-12 14:40:59"), ("仲伯间", "2012-3-12 14:42:09"), ("仲伯间", "2012-3-12 14:42:52"),
    ("仲伯间", "2012-3-12 14:43:53"), ("仲伯间", "2012-3-12 14:45:44"), ("仲伯间", "2012-3-12 15:21:03"),
    ("xg0101", "2012-3-16 14:55:32"), ("绝世赢贼", "2016-4-12 10:51:09"),
]
ADS = {102: "公文写作百法例讲", 103: "老秘网虚拟稿费", 104: "专业写文章"}
JAMMER_RUN = re.compile(f"(?:{JAMMER_UNIT}){{5}}")
HIDDEN = 'font.jammer, span[style*="display:none"]'
NOW = datetime(2024, 3, 15, 15, 30, 0)  # a pinned clock for the relative-time checks


def get(url: str, **headers) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=5) as client:
        return client.get(url, headers=headers)


def tree(response: httpx.Response, encoding: str = "utf-8") -> LexborHTMLParser:
    return LexborHTMLParser(response.content.decode(encoding))


def post_tables(page: LexborHTMLParser):
    return page.css('div#postlist > div[id^="post_"] > table[id^="pid"]')


def discuz_post(table) -> dict:
    """Read one floor with the selectors of the Discuz notes, as any parser would."""
    author = table.css_first('div.authi a.xw1, div.authi a.xi2[href*="space"]')
    posted = table.css_first('em[id^="authorposton"]')
    span = posted.css_first("span[title]") if posted else None
    body = table.css_first("td.t_f")
    text = None
    if body is not None:
        body = LexborHTMLParser(body.html).body  # a copy: the caller's tree stays whole
        for junk in body.css(f'{HIDDEN}, div.a_pr, i.pstatus, div.quote, ignore_js_op'):
            junk.decompose()
        text = body.text()
    return {
        "pid": int(table.id.removeprefix("pid")),
        "classes": table.attributes.get("class"),
        "floor": table.css_first('strong a[id^="postnum"], div.pi strong a').text(strip=True),
        "author": author.text() if author else None,
        "author_class": author.attributes.get("class") if author else None,
        "time": (span.attributes["title"] if span else posted.text().removeprefix("发表于 ").strip()) if posted else None,
        "text": text,
    }


def seed_runs() -> Counter:
    """Every jammer run of the raw seed page, found with the project's jammer filter."""
    runs: Counter = Counter()
    for line in SEED_TEXT.split("\n"):
        stripped, n = strip_jammer_line(line)
        if not n:
            continue
        if not stripped:
            runs[line] += 1
            continue
        start = line.index(stripped)
        for run in (line[:start], line[start + len(stripped):]):
            if run:
                runs[run] += 1
    return runs


@pytest.fixture
def pinned_forum():
    server = start(forum=DemoForum(now=NOW))
    yield server
    server.shutdown()


# --- the seed data -------------------------------------------------------------------------
def test_committed_seed_json_is_what_the_generator_makes():
    assert SEED_JSON_PATH.read_text(encoding="utf-8") == dumps(seed_thread(SEED_TEXT))


def test_seed_json_keeps_every_line_and_run_of_the_seed():
    data = json.loads(SEED_JSON_PATH.read_text(encoding="utf-8"))
    raw = SEED_TEXT.split("\n")
    assert data["title"] == SEED_TITLE
    assert [(p["author"], p["posted_at_raw"]) for p in data["posts"]] == SEED_POSTS
    assert [p["ad"] for p in data["posts"]] == [None, *ADS.values(), None, None, None, None]
    position = 0
    for post in data["posts"]:
        rebuilt = [line["lead"] + line["text"] + line["trail"] for line in post["lines"]]
        position = raw.index(rebuilt[0], position)
        assert raw[position:position + len(rebuilt)] == rebuilt
        assert all(not JAMMER_RUN.search(line["text"]) for line in post["lines"])
    runs = Counter(r for p in data["posts"] for line in p["lines"] for r in (line["lead"], line["trail"]) if r)
    assert runs == seed_runs() and sum(runs.values()) == 119
    assert "本文由老秘网推荐," in "".join(line["text"] for line in data["posts"][0]["lines"])


# --- boards --------------------------------------------------------------------------------
def test_index_links_both_boards(demo_forum):
    page = tree(get(demo_forum.base_url + "forum.php"))
    assert [a.attributes["href"] for a in page.css("td.fl_g dt > a")] == ["forum-1-1.html", "forum-2-1.html"]
    assert get(demo_forum.base_url).content == get(demo_forum.base_url + "forum.php").content


def test_board_1_lists_the_seed_thread_and_synthetic_threads(demo_forum):
    for url in ("forum-1-1.html", "forum.php?mod=forumdisplay&fid=1&page=1"):
        response = get(demo_forum.base_url + url)
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        page = tree(response)
        rows = page.css('table#threadlisttableid > tbody[id^="normalthread_"], '
                        'table#threadlisttableid > tbody[id^="stickthread_"]')
        titles = {row.id: row.css_first("th > a.s.xst").text() for row in rows}
        assert titles["normalthread_1"] == SEED_TITLE
        assert len([t for t in titles if t != "normalthread_1"]) >= 2
        seed_row = page.css_first("tbody#normalthread_1")
        assert seed_row.css_first("th > a.s.xst").attributes["href"] == "thread-1-1-1.html"
        assert seed_row.css_first("td.by cite a").text() == "仲伯间"
        assert seed_row.css_first("td.num a.xi2").text() == "7"
        assert seed_row.css_first("td.num em").text() == "2517"
        assert seed_row.css("td.by")[-1].css_first("cite > a").text() == "绝世赢贼"
        assert seed_row.css("td.by")[-1].css_first("em > a").text() == "2016-4-12 10:51"
        assert page.css_first("tbody#stickthread_4") is not None and page.css_first("tbody#separatorline")
        assert page.css_first("div.pg") is None  # one page: Discuz prints no pager


def test_board_2_is_served_in_gbk_with_the_charset_only_in_the_meta(demo_forum):
    for url in ("forum-2-1.html", "thread-21-1-1.html", "thread-22-1-1.html"):
        response = get(demo_forum.base_url + url)
        assert response.headers["content-type"] == "text/html"
        with pytest.raises(UnicodeDecodeError):
            response.content.decode("utf-8")
        text = response.content.decode("gb18030")
        head = LexborHTMLParser(text).css_first("head")
        first = next(head.iter())
        assert first.tag == "meta" and first.attributes["http-equiv"] == "Content-Type"
        assert first.attributes["content"] == "text/html; charset=gbk"
    board = tree(get(demo_forum.base_url + "forum-2-1.html"), "gbk")
    assert board.css_first("tbody#normalthread_21 a.s.xst").text() == SEED_TITLE


def test_the_gb18030_thread_holds_characters_strict_gbk_cannot_decode(demo_forum):
    body = get(demo_forum.base_url + "thread-22-1-1.html").content
    with pytest.raises(UnicodeDecodeError):
        body.decode("gbk")
    text = body.decode("gb18030")
    assert "𠮷" in text and "㐀" in text
    # The seed's GBK copy needs no GB18030 extension: it is strict GBK.
    get(demo_forum.base_url + "thread-21-1-1.html").content.decode("gbk")


def test_board_pages_paginate_twenty_threads_a_page(demo_forum):
    for n in range(20):
        demo_forum.forum.add_thread(1, f"测试主题{n}", "小王", "内容")
    page1 = tree(get(demo_forum.base_url + "forum-1-1.html"))
    page2 = tree(get(demo_forum.base_url + "forum-1-2.html"))
    assert len(page1.css('tbody[id^="normalthread_"]')) == 20
    assert len(page2.css('tbody[id^="normalthread_"]')) == 3
    assert page1.css_first("tbody#stickthread_4") and page2.css_first("tbody#stickthread_4")
    assert page1.css_first('div.pg label span[title="共 2 页"]') is not None
    assert page1.css_first("div.pg a.nxt").attributes["href"] == "forum-1-2.html"
    assert get(demo_forum.base_url + "forum-1-9.html").content == get(demo_forum.base_url + "forum-1-2.html").content


# --- the seed thread ------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["thread-1-{page}-1.html", "forum.php?mod=viewthread&tid=1&page={page}"])
def test_the_seed_thread_has_two_pages_of_five_and_three_posts(demo_forum, form):
    posts = []
    for page_no, expected in ((1, 5), (2, 3)):
        response = get(demo_forum.base_url + form.format(page=page_no))
        assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
        page = tree(response)
        tables = post_tables(page)
        assert len(tables) == expected
        posts += [discuz_post(t) for t in tables]
        assert page.css_first("span#thread_subject").text() == SEED_TITLE
        assert page.css_first('div.pg label span[title="共 2 页"]') is not None
        assert page.css_first('link[rel="canonical"]').attributes["href"] == demo_forum.base_url + "thread-1-1-1.html"
        assert page.css("div#pt .z a")[2].attributes["href"] == "forum-1-1.html"
        counts = page.css_first("td.pls div.hm.ptn")
        assert (counts is not None) == (page_no == 1)
    assert [(p["author"], p["time"]) for p in posts] == SEED_POSTS
    assert [p["floor"] for p in posts] == ["楼主", "沙发", "板凳", "地板", "5#", "6#", "7#", "8#"]
    assert [p["pid"] for p in posts] == list(range(101, 109))
    assert {p["author_class"] for p in posts} == {"xi2"}


def test_both_url_forms_serve_the_same_page(demo_forum):
    for page in (1, 2):
        a = get(f"{demo_forum.base_url}thread-1-{page}-1.html").content
        b = get(f"{demo_forum.base_url}forum.php?mod=viewthread&tid=1&page={page}").content
        assert a == b


def test_a_page_past_the_end_serves_the_last_page(demo_forum):
    last = get(demo_forum.base_url + "thread-1-2-1.html").content
    assert get(demo_forum.base_url + "thread-1-99-1.html").content == last
    assert get(demo_forum.base_url + "forum.php?mod=viewthread&tid=1&page=99").content == last
    assert get(demo_forum.base_url + "forum.php?mod=viewthread&tid=1&page=abc").content == \
        get(demo_forum.base_url + "thread-1-1-1.html").content


def test_every_seed_jammer_run_is_hidden_where_discuz_puts_it(demo_forum):
    hidden: Counter = Counter()
    for page_no in (1, 2):
        html = get(f"{demo_forum.base_url}thread-1-{page_no}-1.html").text
        # font.jammer right before a line's <br />, the display:none span right after one.
        fonts = re.findall(r'<font class="jammer">', html)
        assert len(re.findall(r'<font class="jammer">[^<]*</font><br />', html)) == len(fonts)
        spans = re.findall(r'<span style="display:none">', html)
        assert len(re.findall(r'<br />\r\n<span style="display:none">', html)) == len(spans)
        page = LexborHTMLParser(html)
        for message in page.css("td.t_f"):
            hidden.update(node.text() for node in message.css(HIDDEN))
            for node in message.css(HIDDEN):
                node.decompose()
            assert not JAMMER_RUN.search(message.text())
    assert hidden == seed_runs()


def test_the_ads_sit_in_a_pr_slots_and_the_watermark_inline(demo_forum):
    page = tree(get(demo_forum.base_url + "thread-1-1-1.html"))
    for pid in range(101, 106):
        slot = page.css_first(f"td#postmessage_{pid} > div.a_pr")
        assert (slot.text() if slot else None) == ADS.get(pid)
    assert "本文由老秘网推荐," in page.css_first("td#postmessage_101").text()
    chrome = page.css_first("div.a_t").text()
    assert "《笔杆子碎语》" in chrome and page.css_first("#lightsoff").text() == "关灯"
    assert "闽ICP备19022590号-1" in page.css_first("div#ft").text()


def test_the_html_says_what_the_seed_text_says(demo_forum):
    """Any parser reading the demo's seed thread gets the text importer's reading of the seed."""
    site = load_site(REPO / "seeds" / "sites" / "demo.toml")
    from_text = parse_text_page(SEED_TEXT, ParseContext(url="", noise=site.noise)).posts
    from_html = [discuz_post(t) for page_no in (1, 2)
                 for t in post_tables(tree(get(f"{demo_forum.base_url}thread-1-{page_no}-1.html")))]
    for text_post, html_post in zip(from_text, from_html, strict=True):
        html_text = html_post["text"].replace("本文由老秘网推荐,", "")
        assert normalise_whitespace(html_text) == normalise_whitespace(text_post.content_text)


def test_an_unknown_thread_or_board_is_a_discuz_notice_with_status_200(demo_forum):
    for url in ("thread-999-1-1.html", "forum.php?mod=viewthread&tid=999", "forum.php?mod=viewthread"):
        response = get(demo_forum.base_url + url)
        assert response.status_code == 200
        message = tree(response).css_first("#messagetext")
        assert message.css_first("p").text() == "抱歉，指定的主题不存在或已被删除或正在被审核"
    board = tree(get(demo_forum.base_url + "forum-9-1.html")).css_first("#messagetext p")
    assert board.text() == "抱歉，指定的版块不存在"
    assert get(demo_forum.base_url + "no/such/file.php").status_code == 404


# --- the synthetic threads --------------------------------------------------------------------
def test_synthetic_thread_markup_covers_what_the_seed_lacks(pinned_forum):
    page = tree(get(pinned_forum.base_url + "thread-2-1-1.html"))
    posts = {p["pid"]: p for p in map(discuz_post, post_tables(page))}
    assert page.css_first("h1.ts > a").text() == "[讨论]"
    assert "typeid=1" in page.css_first("h1.ts > a").attributes["href"]
    assert {p["author_class"] for p in posts.values() if p["author"]} == {"xw1"}  # authoronleft
    assert [p["floor"] for p in posts.values()] == ["楼主", "沙发", "板凳", "地板", "5#"]
    times = [page.css_first(f"em#authorposton{pid}") for pid in (201, 202, 203, 204)]
    assert [t.css_first("span").text() for t in times] == ["6\xa0天前", "5\xa0天前", "前天\xa012:30", "昨天\xa013:30"]
    assert times[0].css_first("span").attributes["title"] == "2024-3-9 10:30:00"
    assert "本帖最后由 笔耕者 于 2024-3-9 11:30 编辑" in page.css_first("td#postmessage_201 i.pstatus").text()
    image = page.css_first("td#postmessage_201 img.zoom")
    assert image.attributes["zoomfile"] == image.attributes["file"] == \
        "data/attachment/forum/202403/10/093015q7mz3h3mnhh3w3ri.jpg"
    quote = page.css_first("td#postmessage_203 div.quote blockquote")
    assert quote.css_first("font[color]").text() == "老秘书 发表于 2024-3-10 13:30"
    assert "pid=202" in quote.css_first("a").attributes["href"]
    assert page.css_first("table#pid202 div.sign").text() == "文章千古事，得失寸心知。"
    assert page.css_first("table#pid204 div.pattl a#aid302").text() == "请示与报告对照表.doc"
    deleted = page.css_first("table#pid205")
    assert deleted.attributes.get("class") is None and deleted.css_first("div.pct").text() == "无效楼层，该帖已经被删除"
    assert page.css_first("table#pid202 span[title='44705']").text() == "4万"
    page2 = tree(get(pinned_forum.base_url + "thread-2-2-1.html"))
    assert page2.css_first("table#pid206 div.locked").text() == "提示: 作者被禁止或删除 内容自动屏蔽"
    assert page2.css_first("em#authorposton207 span").text() == "25\xa0分钟前"
    assert page2.css_first("div#tath") is not None and page2.css_first("td.pls div.hm.ptn") is None


def test_the_long_thread_has_three_pages_no_jammer_and_the_default_author_link(pinned_forum):
    first = tree(get(pinned_forum.base_url + "thread-3-1-1.html"))
    assert first.css_first('div.pg label span[title="共 3 页"]') is not None
    assert [a.text() for a in first.css("div#pgt div.pg > a")][:2] == ["2", "3"]
    last = tree(get(pinned_forum.base_url + "thread-3-3-1.html"))
    posts = [discuz_post(t) for t in post_tables(last)]
    assert [p["floor"] for p in posts] == ["11#", "12#", "13#"]
    assert {p["author_class"] for p in posts} == {"xi2"}
    assert posts[0]["time"] == "2023-12-22 09:00:31"
    assert last.css_first("div.pg a.nxt") is None and last.css_first("div.pg a.prev") is not None
    assert not first.css(HIDDEN) and not last.css(HIDDEN)


def test_relative_times_on_the_board_carry_the_full_time_in_a_title(pinned_forum):
    row = tree(get(pinned_forum.base_url + "forum-1-1.html")).css_first("tbody#normalthread_2")
    last = row.css("td.by")[-1].css_first("em > a > span")
    assert last.text() == "25\xa0分钟前" and last.attributes["title"] == "2024-3-15 15:05"


def test_dgmdate_forms():
    def label(**ago):
        t = NOW.replace(**ago) if ago else NOW
        return render.dgmdate_u(t, NOW)
    assert label() == '<span title="2024-3-15 15:30:00">刚刚</span>'
    assert label(minute=29, second=30) == '<span title="2024-3-15 15:29:30">30&nbsp;秒前</span>'
    assert label(minute=0) == '<span title="2024-3-15 15:00:00">30&nbsp;分钟前</span>'
    assert label(hour=14, minute=50) == '<span title="2024-3-15 14:50:00">半小时前</span>'
    assert label(hour=9) == '<span title="2024-3-15 09:30:00">6&nbsp;小时前</span>'
    assert label(day=14, hour=22) == '<span title="2024-3-14 22:30:00">昨天&nbsp;22:30</span>'
    assert label(day=13) == '<span title="2024-3-13 15:30:00">前天&nbsp;15:30</span>'
    assert label(day=10) == '<span title="2024-3-10 15:30:00">5&nbsp;天前</span>'
    assert label(day=8) == '<span title="2024-3-8 15:30:00">7&nbsp;天前</span>'
    assert label(day=7) == "2024-3-7 15:30:00"
    assert label(day=16) == "2024-3-16 15:30:00"  # the future is printed as is


def test_the_pager_follows_discuz_multi():
    def href(page):
        return f"p{page}"
    html = render.pager(200, 5, 20, href, "jump=")
    links = LexborHTMLParser(html)
    assert links.css_first("a.first").text() == "1 ..." and links.css_first("a.last").text() == "... 40"
    assert links.css_first("a.prev").attributes["href"] == "p19"
    assert links.css_first("a.nxt").attributes["href"] == "p21"
    assert [a.text() for a in links.css("a:not([class])")] == [str(n) for n in range(15, 25) if n != 20]
    assert links.css_first("strong").text() == "20"
    assert render.pager(5, 5, 1, href, "j") == ""


def test_jammer_insertion_is_deterministic_and_one_run_per_break():
    lines = lines_with_jammer(["一", "二", "三", "四"], "seed")
    assert lines == lines_with_jammer(["一", "二", "三", "四"], "seed")
    runs = [r for line in lines for r in (line.lead, line.trail) if r]
    assert len(runs) == 3 and all(JAMMER_RUN.fullmatch(r[:15]) for r in runs)
    assert all(strip_jammer_line(line.lead + line.text + line.trail)[0] == line.text for line in lines)


# --- mutations, validators, the request log -------------------------------------------------
def test_mutations_change_what_is_served(demo_forum):
    forum, base = demo_forum.forum, demo_forum.base_url
    forum.edit_post(108, "做好党办工作,还真得具备以上十种意识。")
    page = tree(get(base + "thread-1-2-1.html"))
    assert "以上十种意识" in discuz_post(page.css_first("table#pid108"))["text"]
    assert page.css_first("td#postmessage_108 i.pstatus") is not None

    pid = forum.add_reply(1, "新用户", "第一行\n第二行", "2024-3-1 08:00:00")
    page = tree(get(base + "thread-1-2-1.html"))
    reply = discuz_post(page.css_first(f"table#pid{pid}"))
    assert (reply["author"], reply["time"], reply["floor"]) == ("新用户", "2024-3-1 08:00:00", "9#")
    assert normalise_whitespace(reply["text"]) == "第一行 第二行"
    assert tree(get(base + "forum-1-1.html")).css_first("tbody#normalthread_1 td.num a.xi2").text() == "8"

    forum.delete_post(pid)
    deleted = tree(get(base + "thread-1-2-1.html")).css_first(f"table#pid{pid}")
    assert "无效楼层" in deleted.text() and deleted.attributes.get("class") is None

    tid = forum.add_thread(2, "新主题", "小王", "正文")
    row = tree(get(base + "forum-2-1.html"), "gbk").css_first(f"tbody#normalthread_{tid}")
    assert row.css_first("a.s.xst").text() == "新主题"
    assert discuz_post(post_tables(tree(get(base + row.css_first("a.s.xst").attributes["href"]), "gbk"))[0])[
        "author"] == "小王"
    with pytest.raises(KeyError):
        forum.edit_post(424242, "x")


def test_validators_are_off_by_default_and_answer_304_when_on(demo_forum):
    url = demo_forum.base_url + "thread-1-1-1.html"
    plain = get(url)
    assert "etag" not in plain.headers and "last-modified" not in plain.headers
    demo_forum.forum.validators = True
    first = get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.content == plain.content
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        again = get(url, **headers)
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    board = get(demo_forum.base_url + "forum-1-1.html")
    assert get(demo_forum.base_url + "forum-1-1.html", **{"If-None-Match": board.headers["etag"]}).status_code == 304
    assert get(demo_forum.base_url + "robots.txt").headers.get("etag") is None

    demo_forum.forum.edit_post(101, "改过的正文")
    changed = get(url, **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert get(url, **{"If-Modified-Since": modified}).status_code == 200


def test_the_request_log_records_every_request(demo_forum):
    get(demo_forum.base_url + "robots.txt", **{"User-Agent": "forum-archiver/test"})
    with httpx.Client(trust_env=False) as client:
        client.head(demo_forum.base_url + "thread-1-1-1.html")
    assert [(r.method, r.path) for r in demo_forum.requests] == [("GET", "/robots.txt"),
                                                                 ("HEAD", "/thread-1-1-1.html")]
    method, path, headers, _ = demo_forum.requests[0]
    assert headers["User-Agent"] == "forum-archiver/test"


def test_robots_txt_allows_threads_and_boards_but_not_actions(demo_forum):
    robots = Protego.parse(get(demo_forum.base_url + "robots.txt").text)
    base = demo_forum.base_url
    for allowed in ("thread-1-1-1.html", "forum-1-1.html", "forum.php?mod=viewthread&tid=1&page=2",
                    "forum.php?mod=forumdisplay&fid=1"):
        assert robots.can_fetch(base + allowed, "forum-archiver")
    for refused in ("forum.php?mod=redirect&goto=lastpost", "forum.php?mod=post&action=reply", "member.php",
                    "home.php?mod=spacecp", "data/attachment/forum/x.jpg", "forum.php?mod=attachment&aid=1"):
        assert not robots.can_fetch(base + refused, "forum-archiver")


def test_attachments_are_served(demo_forum):
    page = tree(get(demo_forum.base_url + "thread-2-1-1.html"))
    doc = get(demo_forum.base_url + page.css_first("a#aid302").attributes["href"])
    assert doc.status_code == 200 and doc.content == "请示与报告对照表.doc\n".encode()
    image = get(demo_forum.base_url + page.css_first("img.zoom").attributes["file"])
    assert image.headers["content-type"] == "image/gif"


def test_keep_alive_responses_are_not_delayed_by_nagle(demo_forum):
    with httpx.Client(trust_env=False) as client:
        client.get(demo_forum.base_url + "robots.txt")
        started = time.perf_counter()
        for _ in range(20):
            assert client.get(demo_forum.base_url + "robots.txt").status_code == 200
        elapsed = time.perf_counter() - started
    assert elapsed < 0.4  # ~40 ms each without disable_nagle_algorithm


def test_pids_are_unique_and_follow_the_rule():
    forum = DemoForum()
    pids = [p.pid for t in forum.threads.values() for p in t.posts]
    assert len(pids) == len(set(pids))
    assert all(p.pid == t.tid * 100 + p.floor for t in forum.threads.values() for p in t.posts)
    copy, seed = forum.thread(21), forum.thread(1)
    assert [(p.author, p.posted_at, [line.text for line in p.lines]) for p in copy.posts] == \
        [(p.author, p.posted_at, [line.text for line in p.lines]) for p in seed.posts]


def test_serve_forever_serves_until_interrupted():
    with socket.socket() as probe:  # a free port for the child to bind
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen([sys.executable, "-c", "from scraper.demo.server import serve_forever; "
                              f"serve_forever('127.0.0.1', {port})"], cwd=REPO)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                response = get(f"http://127.0.0.1:{port}/thread-1-1-1.html")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the demo forum did not come up"
                time.sleep(0.05)
        assert response.status_code == 200 and SEED_TITLE in response.text
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=5) == 0
    finally:
        child.kill()
        child.wait()
