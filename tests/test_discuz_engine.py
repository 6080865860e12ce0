"""The Discuz! X engine against hand-written fixture pages (tests/fixtures/discuz/): page
kinds, every field of thread and board pages, noise kept out of the text, URL forms, and
robustness: mutated pages raise only ParseError, pathological nesting stays fast."""

from __future__ import annotations

import base64
import html
import random
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from scraper import clean
from scraper.clean import NoiseRules
from scraper.engines import get_engine
from scraper.engines.base import Attachment, PageKind, ParseContext, PostStatus, Quote, ThreadPage
from scraper.engines.discuz import (
    MARKUP_NOISE,
    DiscuzEngine,
    assign_floors,
    floor_number,
    parse_post_time,
    site_timezone,
    thread_ref,
)
from scraper.errors import ParseError
from tests.test_clean import assert_safe

FIXTURES = Path(__file__).parent / "fixtures" / "discuz"
JAMMER_RUN = re.compile(rf"(?:{clean.JAMMER_UNIT}){{5}}")
FETCHED_AT = "2024-03-05T10:00:00+08:00"
SITE_NOISE = NoiseRules(phrases=("本文由老秘网推荐,",))
ENGINE = DiscuzEngine()

PAGE1_URL = "http://bbs.example.cn/thread-88-1-1.html"
PAGE2_URL = "http://bbs.example.cn/forum.php?mod=viewthread&tid=88&page=2"
BOARD_URL = "http://bbs.example.cn/forum-2-1.html"


def fixture(name: str) -> str:
    return (FIXTURES / f"{name}.html").read_text(encoding="utf-8")


def thread(html: str, url: str = PAGE1_URL, **ctx):
    ctx.setdefault("fetched_at", FETCHED_AT)
    ctx.setdefault("noise", SITE_NOISE)
    return ENGINE.parse_thread(clean.parse_html(html), ParseContext(url=url, **ctx))


def board(html: str, url: str = BOARD_URL, **ctx):
    ctx.setdefault("fetched_at", FETCHED_AT)
    return ENGINE.parse_board(clean.parse_html(html), ParseContext(url=url, **ctx))


@pytest.fixture(scope="module")
def page1():
    return thread(fixture("thread_page1"))


@pytest.fixture(scope="module")
def page2():
    return thread(fixture("thread_page2"), PAGE2_URL)


def by_pid(page, pid):
    return next(post for post in page.posts if post.pid == pid)


# --- page kinds -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [
        ("thread_page1", 200, PageKind.THREAD),
        ("thread_page2", 200, PageKind.THREAD),
        ("board_page", 200, PageKind.BOARD),
        ("notice", 200, PageKind.MISSING),  # 抱歉，指定的主题不存在或已被删除或正在被审核
        ("login", 200, PageKind.LOGIN),
        ("antiscrape", 200, PageKind.ANTISCRAPE),
        ("challenge", 403, PageKind.CHALLENGE),
        ("challenge", 503, PageKind.CHALLENGE),
    ],
)
def test_page_kind_of_fixtures(name, status, kind):
    assert ENGINE.page_kind(clean.parse_html(fixture(name)), status) is kind


@pytest.mark.parametrize(
    ("html", "status", "kind"),
    [
        # showmessage() for guests: the notice and an Ajax login box; a login wall wins.
        ('<div id="messagetext" class="alert_info"><p>抱歉，您尚未登录，没有权限访问该版块</p></div>'
         '<div id="messagelogin"></div><script>ajaxget("member.php?mod=logging&action=login&infloat=yes", "messagelogin");</script>',
         200, PageKind.LOGIN),
        ('<div id="messagetext" class="alert_error"><p>抱歉，您所在的用户组无法访问该版块</p></div>', 200,
         PageKind.NOTICE),
        ('<div id="messagetext" class="alert_error"><p>抱歉，指定的主題不存在或已被刪除或正在被審核</p></div>', 200,
         PageKind.MISSING),
        ('<div id="messagetext" class="alert_error"><p>抱歉，指定的版块不存在</p></div>', 200, PageKind.MISSING),
        ("<script>location.href='/forum.php?mod=viewthread&tid=1&_dsign=1a2b3c4d';</script>", 200, PageKind.ANTISCRAPE),
        ("<html><head><script src='/js/check.js'></script></head><body><script>go()</script></body></html>", 503,
         PageKind.CHALLENGE),
        ("<html><head><script src='/js/check.js'></script></head><body><script>go()</script></body></html>", 429,
         PageKind.CHALLENGE),
        ("<html><head><script src='/js/check.js'></script></head><body><script>go()</script></body></html>", 200,
         PageKind.UNKNOWN),
        ("<html><head><title>Just a moment...</title></head><body><p>请稍候</p></body></html>", 403, PageKind.CHALLENGE),
        ("<html><body><h1>论坛首页</h1><p>" + "欢迎" * 200 + "</p></body></html>", 403, PageKind.UNKNOWN),
        ("", 200, PageKind.UNKNOWN),
        ('<div id="postlist"></div>', 200, PageKind.UNKNOWN),
    ],
)
def test_page_kind_of_variants(html, status, kind):
    assert ENGINE.page_kind(LexborHTMLParser(html), status) is kind


def test_engine_is_registered():
    assert isinstance(get_engine("discuz"), DiscuzEngine)
    assert get_engine("discuz").name == "discuz"


# --- thread page 1 ------------------------------------------------------------------------------
def test_thread_header(page1):
    assert (page1.tid, page1.title, page1.page, page1.page_count) == (88, "基层党委办公室应强化的十种意识", 1, 3)
    assert (page1.replies, page1.views) == (25, 1234)
    assert (page1.board, page1.fid) == ("公文写作", 2)
    assert page1.canonical_url == "http://bbs.example.cn/thread-88-1-1.html"


def test_posts_in_page_order_with_floors_authors_and_times(page1):
    rows = [
        (p.pid, p.floor, p.floor_label, p.author, p.author_uid, p.posted_at, p.posted_at_raw, p.status)
        for p in page1.posts
    ]
    assert rows == [
        (1001, 1, "楼主", "张三", 7, "2024-03-02T10:05:11+08:00", "3 天前", PostStatus.NORMAL),
        (1017, None, "推荐", "王五", 9, "2024-03-04T08:00:00+08:00", "2024-3-4 08:00:00", PostStatus.NORMAL),
        (1002, 2, "沙发", "禁言用户", 8, "2024-03-02T10:07:00+08:00", "2024-3-2 10:07:00", PostStatus.BLOCKED),
        (1003, 3, "板凳", "李四", 10, "2024-03-02T10:09:00+08:00", "2024-3-2 10:09", PostStatus.NORMAL),
        (1004, 4, "地板", None, None, None, "", PostStatus.DELETED),
        (1005, 5, "5#", "匿名", None, "2024-03-04T12:30:00+08:00", "昨天 12:30", PostStatus.NORMAL),
    ]


def test_opening_post_content_and_its_separate_fields(page1):
    post = by_pid(page1, 1001)
    assert post.content_text == '第一行\n第二行继续\n第三行\nprint("hi")\nx = 1\n\n末行'
    assert post.edit_note == "本帖最后由 张三 于 2024-3-2 11:00 编辑"
    assert post.quotes == [Quote(text="引用的话\n引用第二行", author="李四", posted_at_raw="2024-3-1 09:00", pid=999,
                                 attribution="李四 发表于 2024-3-1 09:00")]
    assert post.signature == "签名档文字 我的博客"
    assert post.attachments == [
        Attachment(url="http://bbs.example.cn/data/attachment/forum/202403/02/abc.jpg", name="photo.jpg", aid="55"),
        Attachment(url="http://bbs.example.cn/forum.php?mod=attachment&aid=NTZ8ZGVm", name="资料.zip", aid="56",
                   is_image=False),
    ]
    assert post.noise_removed == {
        "ad_slots": 1,  # a_pr inside the body (a_pt and a_pb sit outside it)
        "jammer_elements": 3,  # font.jammer in the quote, on line 1, in the code block
        "hidden_elements": 3,  # the display:none run and two hidden attachment tips
        "scripts": 1,
        "jammer_text_runs": 1,  # the run whose wrapper was lost
        "site_phrases": 1,
    }


def test_opening_post_html_is_sanitised_and_keeps_the_quote(page1):
    html = by_pid(page1, 1001).content_html
    tree = LexborHTMLParser(html)
    assert [b.text(strip=True) for b in tree.css("blockquote")] == ["李四 发表于 2024-3-1 09:00引用的话引用第二行"]
    assert tree.css_first("img").attributes["src"] == "http://bbs.example.cn/data/attachment/forum/202403/02/abc.jpg"
    assert tree.css("script, style, font, i.pstatus") == []
    assert "本帖最后由" not in html and "复制代码" not in html and "公文写作百法例讲" not in html
    assert "本文由老秘网推荐" not in html


def test_other_posts(page1):
    blocked = by_pid(page1, 1002)
    assert (blocked.content_text, blocked.content_html, blocked.signature) == ("", "", "签名被屏蔽")
    assert "屏蔽" not in blocked.content_text
    reply = by_pid(page1, 1003)
    assert reply.content_text == "一句话回复"
    assert reply.attachments == [
        Attachment(url="http://bbs.example.cn/data/attachment/forum/202403/02/ghi.png", name="现场.png", aid="57"),
        Attachment(url="http://bbs.example.cn/forum.php?mod=attachment&aid=NTh8amts", name="通知.doc", aid="58",
                   is_image=False),
    ]
    deleted = by_pid(page1, 1004)
    assert (deleted.content_text, deleted.content_html, deleted.attachments, deleted.quotes) == ("", "", [], [])
    assert by_pid(page1, 1005).content_text == "匿名的话\n\n隔了几行"
    assert by_pid(page1, 1017).content_text == "精彩回复内容"



# The pager, the header counts and the breadcrumb are each looked for in a small part of the
# page first; these pin what is read when that part is missing or holds something else.
PAGER_BAR = re.compile(r'<div id="pgt" class="pgs mbm cl">.*?</div></div></div>\n')


@pytest.mark.parametrize("bar", ["", '<div id="pgt" class="pgs mbm cl"></div>\n'], ids=["no bar", "empty bar"])
def test_a_pager_outside_the_top_bar_is_still_read(bar):
    html = fixture("thread_page1")
    top_bar = PAGER_BAR.search(html)[0]
    page = thread(html.replace(top_bar, bar))  # the pager below the posts is left
    assert (page.page, page.page_count) == (1, 3)


def test_header_counts_come_from_the_first_header_box_only():
    empty_column = '<div id="favatar1017" class="pls favatar"></div>'
    decoy = '<div class="hm"><span class="xg1">查看:</span> <span class="xi1">9</span></div>'
    html = fixture("thread_page1")
    assert empty_column in html
    page = thread(html.replace(empty_column, empty_column + decoy))  # in a post's author column
    assert (page.replies, page.views) == (25, 1234)
    without = thread(html.replace('<div class="hm ptn">', '<div class="ptn">'))
    assert (without.replies, without.views) == (None, None)


def test_the_breadcrumb_is_read_from_its_bar_only():
    html = fixture("thread_page1")
    assert (thread(html).board, thread(html).fid) == ("公文写作", 2)
    without_bar = thread(html.replace('<div id="pt"', '<div id="pt-moved"'))
    assert (without_bar.board, without_bar.fid) == (None, None)


def test_the_noise_start_tags_are_how_the_serialiser_writes_those_elements():
    from scraper.engines.discuz import MARKUP_NOISE

    element = LexborHTMLParser("<FONT CLASS=jammer>x</FONT>").css_first("font")
    assert element.css_matches(MARKUP_NOISE.jammer)
    assert element.html == f"{MARKUP_NOISE.jammer_start_tag}x</font>"
    hidden = LexborHTMLParser("<SPAN STYLE=display:none>x</SPAN>").css_first("span")
    assert hidden.html == f"{MARKUP_NOISE.hidden_start_tag}x</span>"


# --- thread page 2 ------------------------------------------------------------------------------
def test_later_page(page2):
    assert (page2.tid, page2.page, page2.page_count, page2.replies, page2.views) == (88, 2, 3, None, None)
    assert (page2.board, page2.fid) == ("公文写作", 2)
    rows = [(p.pid, p.floor, p.floor_label, p.author, p.author_uid, p.posted_at, p.status) for p in page2.posts]
    assert rows == [
        (1011, 6, "6#", "赵六", 11, "2024-03-05T07:00:00+08:00", PostStatus.NORMAL),
        (1012, 7, "7#", "孙七", 12, "2019-01-05T08:03:22+08:00", PostStatus.HIDDEN),
        (1013, 8, "8#", "周八", 13, "2024-03-05T09:30:00+08:00", PostStatus.HIDDEN),
    ]
    first = page2.posts[0]
    assert first.content_text == "第六楼\n\n同意楼主"
    assert first.quotes == [Quote(text="第一行", author="张三", posted_at_raw="2024-3-2 10:05", pid=1001,
                                 attribution="张三 发表于 2024-3-2 10:05")]
    assert first.noise_removed == {"hidden_elements": 1}
    assert page2.posts[1].content_text == "可见部分"  # the hidden part's notice is not content
    assert page2.posts[2].content_text == ""


# --- noise never leaks ----------------------------------------------------------------------------
LEAKS = ["公文写作百法例讲", "专业写文章", "老秘网虚拟稿费", "本帖最后由", "签名档", "引用的话", "李四 发表于",
         "本文由老秘网推荐", "复制代码", "如果您要查看本帖隐藏内容", "12.5 KB", "下载次数", "精彩评论"]


@pytest.mark.parametrize("page_fixture", ["page1", "page2"])
def test_no_jammer_ads_notes_quotes_or_signatures_in_content(page_fixture, request):
    page = request.getfixturevalue(page_fixture)
    for post in page.posts:
        assert not JAMMER_RUN.search(post.content_text), post.pid
        assert not JAMMER_RUN.search(post.content_html), post.pid
        for quote in post.quotes:
            assert not JAMMER_RUN.search(quote.text)
        for leak in LEAKS:
            assert leak not in post.content_text, (post.pid, leak)


def test_pay_thread_keeps_its_free_part_and_is_hidden():
    # viewthread_pay.htm: the free part in div.t_f, then a lock notice with the pay button.
    locked = re.search(r'<div class="locked">本帖为密码帖.*?</div>', fixture("thread_page2"), re.S)[0]
    pay = ('<div id="postmessage_1013" class="t_f">免费部分</div><div class="locked">'
           '<a href="javascript:;" class="y viewpay" title="购买主题">购买主题</a>本主题需向作者支付 5 金钱 才能浏览</div>')
    post = by_pid(thread(fixture("thread_page2").replace(locked, pay), PAGE2_URL), 1013)
    assert (post.status, post.content_text) == (PostStatus.HIDDEN, "免费部分")


# discuzcode.htm: tpl_hide_credits (the viewer has the credits: a notice, then the content) and
# tpl_hide_credits_hidden (short of them: a notice instead of the content).
CREDITS_SHOWN = '<div class="locked">以下内容需要积分高于 3 才可浏览</div>\n够积分才看得到<br /><br />'
CREDITS_SHOWN_TRADITIONAL = '<div class="locked">以下內容需要積分高於 3 才可瀏覽</div>\n够积分才看得到<br /><br />'
CREDITS_HIDDEN = '<div class="locked">游客，本帖隐藏的内容需要积分高于 3 才可浏览，您当前积分为 0</div>'
REPLY_HIDDEN = re.search(r'<div class="locked">游客，如果您要查看本帖隐藏内容请.*?</div>', fixture("thread_page2"), re.S)[0]


@pytest.mark.parametrize("parts, status, text", [
    # A member with the credits (or a forum that sets none) sees it all: nothing is hidden.
    ([CREDITS_SHOWN], PostStatus.NORMAL, "可见部分\n够积分才看得到"),
    ([CREDITS_SHOWN_TRADITIONAL], PostStatus.NORMAL, "可见部分\n够积分才看得到"),
    ([CREDITS_HIDDEN], PostStatus.HIDDEN, "可见部分"),
    ([CREDITS_SHOWN, REPLY_HIDDEN], PostStatus.HIDDEN, "可见部分\n够积分才看得到"),
])
def test_credits_gated_content_the_viewer_may_read_is_not_a_hidden_part(parts, status, text):
    # Marked hidden, a post shown in full was taken for a partial rendering of itself.
    from benchmarks import bs4_discuz

    html = fixture("thread_page2").replace(REPLY_HIDDEN, "".join(parts))
    ours = thread(html, PAGE2_URL)
    post = by_pid(ours, 1012)
    assert (post.status, post.content_text) == (status, text)
    assert "积分高于" not in post.content_text and "積分高於" not in post.content_text
    assert bs4_discuz.parse_thread(html, ParseContext(url=PAGE2_URL)) == ours


def test_learned_phrases_are_removed_and_counted():
    page = thread(fixture("thread_page1"), noise=NoiseRules(phrases=("本文由老秘网推荐,",), learned=("一句话",)))
    post = by_pid(page, 1003)
    assert (post.content_text, post.content_html, post.noise_removed) == ("回复", "回复", {"learned_phrases": 1})


def test_parse_does_not_change_the_callers_tree():
    tree = clean.parse_html(fixture("thread_page1"))
    before = tree.html
    ENGINE.parse_thread(tree, ParseContext(url=PAGE1_URL))
    assert tree.html == before


def test_without_fetch_time_relative_times_without_title_stay_unresolved():
    page = thread(fixture("thread_page1"), fetched_at=None)
    anonymous = by_pid(page, 1005)
    assert (anonymous.posted_at, anonymous.posted_at_raw) == (None, "昨天 12:30")
    assert by_pid(page, 1001).posted_at == "2024-03-02T10:05:11+08:00"  # the title needs no fetch time


def test_site_offset_applies_to_every_time():
    page = thread(fixture("thread_page1"), utc_offset="-05:00", fetched_at="2024-03-05T02:00:00Z")
    # 02:00 UTC is 21:00 on March 4 at -05:00, so 昨天 is March 3.
    assert by_pid(page, 1005).posted_at == "2024-03-03T12:30:00-05:00"
    assert by_pid(page, 1003).posted_at == "2024-03-02T10:09:00-05:00"


def test_renamed_floor_label_is_recorded_and_numbered_from_its_neighbours():
    page = thread(fixture("thread_page1").replace(">沙发<", ">前排<"))
    post = by_pid(page, 1002)
    assert (post.floor, post.floor_label) == (2, "前排")


def test_authoronleft_off_and_xw1_missing_falls_back_to_header_link():
    html = fixture("thread_page1").replace('class="xw1">张三</a>', '>张三</a>')
    post = by_pid(thread(html), 1001)
    # No a.xw1 and no header a.xi2: the left column's plain uid link is the author.
    assert (post.author, post.author_uid) == ("张三", 7)


# --- board ----------------------------------------------------------------------------------------
def test_board_page():
    page = board(fixture("board_page"))
    assert (page.fid, page.name, page.page, page.page_count) == (2, "公文写作", 1, 5)
    rows = [(r.tid, r.title, r.url, r.replies, r.views, r.author, r.last_post_at, r.last_post_raw, r.sticky)
            for r in page.rows]
    assert rows == [
        (90, "版规", "http://bbs.example.cn/thread-90-1-1.html", 3, 1500, "版主", "2024-03-01T12:00:00+08:00",
         "2024-3-1 12:00", True),
        (88, "基层党委办公室应强化的十种意识", "http://bbs.example.cn/forum.php?mod=viewthread&tid=88&extra=page%3D1",
         25, 1234, "张三", "2024-03-04T08:00:00+08:00", "昨天 08:00", False),
        (91, "新人报到", "http://bbs.example.cn/thread-91-1-1.html", 0, 12, "匿名", "2024-03-05T09:30:00+08:00",
         "半小时前", False),
        (95, "旧帖已移走", "http://bbs.example.cn/forum.php?mod=viewthread&tid=95&extra=page%3D1", None, None, "吴九",
         "2023-12-01T09:15:00+08:00", "2023-12-1 09:15", False),
    ]


def test_board_row_without_a_thread_link_gets_the_plain_thread_url():
    html = fixture("board_page").replace('<a href="thread-91-1-1.html" onclick="atarget(this)" class="s xst">',
                                         '<a href="javascript:;" class="s xst">')
    row = next(r for r in board(html).rows if r.title == "新人报到")
    assert (row.tid, row.url) == (91, "http://bbs.example.cn/forum.php?mod=viewthread&tid=91")


def test_images_that_are_not_web_files_are_not_attachments():
    html = fixture("thread_page1").replace("精彩回复内容", '<img src="data:image/png;base64,AAAA" /><img src="javascript:x" />正文')
    post = by_pid(thread(html), 1017)
    assert (post.attachments, post.content_text) == ([], "正文")


@pytest.mark.parametrize("body_tag", ["xmp", "noembed"])
def test_a_post_body_whose_text_is_serialised_raw_is_still_sanitised(body_tag):
    html = fixture("thread_page1").replace(
        '<td class="t_f" id="postmessage_1017">\n精彩回复内容</td>',
        f'<td class="t_f"><{body_tag} id="postmessage_1017">正文<img src=x onerror=alert(1)></{body_tag}></td>',
    )
    post = by_pid(thread(html), 1017)
    assert_safe(post.content_html)
    assert "onerror" not in post.content_html


_PLAIN_POST_END = "精彩回复内容</td></tr></table></div></div></div>"
_EMPTY_LEFT_COLUMN = '<div id="favatar1017" class="pls favatar"></div>'
_LEFT_AUTHOR = ('<div id="favatar1017" class="pls favatar"><div class="pi"><div class="authi">'
                '<a href="home.php?mod=space&amp;uid=77" class="xw1">左栏名</a></div></div></div>')


@pytest.mark.parametrize("signed, left_author", [(False, False), (True, False), (False, True), (True, True)])
def test_signature_and_left_author_are_read_whichever_a_post_holds(signed, left_author):
    # One walk tells whether a post holds any part most posts lack; each is still read alone.
    html = fixture("thread_page1")
    assert _PLAIN_POST_END in html and _EMPTY_LEFT_COLUMN in html
    if signed:
        html = html.replace(_PLAIN_POST_END, _PLAIN_POST_END + '<div class="sign">签名档</div>')
    if left_author:
        html = html.replace(_EMPTY_LEFT_COLUMN, _LEFT_AUTHOR)
    post = by_pid(thread(html), 1017)
    assert post.signature == ("签名档" if signed else None)
    assert (post.author, post.author_uid) == (("左栏名", 77) if left_author else ("王五", 9))
    assert post.content_text == "精彩回复内容"


def test_board_fid_from_url_or_table_when_breadcrumb_is_missing():
    html = re.sub(r'<div id="pt".*?</div></div>', "", fixture("board_page"), flags=re.S)
    assert board(html, "http://bbs.example.cn/forum.php?mod=forumdisplay&fid=7&page=3").fid == 7
    page = board(html, "http://bbs.example.cn/somewhere.html")
    assert (page.fid, page.name) == (2, "公文写作")


# --- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["notice", "login", "antiscrape", "challenge", "board_page"])
def test_parse_thread_of_other_pages_raises_parse_error(name):
    with pytest.raises(ParseError, match="no posts"):
        thread(fixture(name))


@pytest.mark.parametrize("name", ["notice", "thread_page1", "antiscrape"])
def test_parse_board_of_other_pages_raises_parse_error(name):
    with pytest.raises(ParseError, match="no thread list"):
        board(fixture(name))


def test_thread_without_title_raises_parse_error():
    html = fixture("thread_page2").replace('<span id="thread_subject">基层党委办公室应强化的十种意识</span>', "")
    html = re.sub(r"<title>.*?</title>", "<title></title>", html)
    with pytest.raises(ParseError, match="no thread title"):
        thread(html, PAGE2_URL)


def test_bad_context_raises_parse_error():
    with pytest.raises(ParseError, match="utc_offset"):
        thread(fixture("thread_page2"), PAGE2_URL, utc_offset="Beijing")
    with pytest.raises(ParseError, match="fetched_at"):
        thread(fixture("thread_page2"), PAGE2_URL, fetched_at="yesterday")


# --- floors and times -----------------------------------------------------------------------------
def test_floor_number():
    assert [floor_number(x) for x in ["楼主", "沙发", "板凳", "地板", "12#", "来自 3#", "前排", "", "0#"]] == \
        [1, 2, 3, 4, 12, 3, None, None, None]


def test_assign_floors():
    assert assign_floors(["楼主", "推荐", "沙发", "板凳"], 1, 1) == [1, None, 2, 3]
    # A stuck reply (置顶回复, '来自 45#') is shown again on page 1, out of its order: it has no
    # floor there and numbers no neighbour (the renamed 沙发 is 2, not 46).
    assert assign_floors(["楼主", "来自 45#", "抢到沙发", "板凳"], 1, 9) == [1, None, 2, 3]
    # Renamed labels take their number from the nearest readable floor.
    assert assign_floors(["头条", "前排", "板凳", "4#"], 1, 2) == [1, 2, 3, 4]
    # No number anywhere: the position, with this page's size on a page that is not the last.
    assert assign_floors(["甲", "乙", "丙"], 3, 5) == [7, 8, 9]
    # ... and Discuz's default of 10 per page on the last page.
    assert assign_floors(["甲", "乙"], 2, 2) == [11, 12]
    # A neighbour that would number a post below 1 is not trusted.
    assert assign_floors(["甲", "乙", "楼主"], 1, 1) == [1, 2, 1]


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        ("2012-3-12 14:40:59", "2012-03-12T14:40:59+08:00"),
        ("2018-11-1 23:44", "2018-11-01T23:44:00+08:00"),
        ("2018/11/01 23:44", "2018-11-01T23:44:00+08:00"),
        ("刚刚", "2024-03-05T10:00:00+08:00"),
        ("25 秒前", "2024-03-05T09:59:35+08:00"),
        ("5 分钟前", "2024-03-05T09:55:00+08:00"),
        ("半小时前", "2024-03-05T09:30:00+08:00"),
        ("3\xa0小时前", "2024-03-05T07:00:00+08:00"),
        ("昨天 23:10", "2024-03-04T23:10:00+08:00"),
        ("前天\xa008:05", "2024-03-03T08:05:00+08:00"),
        ("4 天前", "2024-03-01T10:00:00+08:00"),
        ("2012-13-40 10:00", None),
        ("很久以前", None),
        # timeformat 'h:i A': a 12-hour clock
        ("2018-11-1 11:44 PM", "2018-11-01T23:44:00+08:00"),
        ("2018-11-1 12:05 AM", "2018-11-01T00:05:00+08:00"),
        ("2018-11-1 12:05 pm", "2018-11-01T12:05:00+08:00"),
        ("2018-11-1 09:30:15 AM", "2018-11-01T09:30:15+08:00"),
        ("昨天 11:30 PM", "2024-03-04T23:30:00+08:00"),
        ("2018-11-1 13:05 PM", "2018-11-01T13:05:00+08:00"),  # a 24-hour hour stays one
    ],
)
def test_post_times(printed, expected):
    tz = site_timezone("+08:00")
    fetched = datetime.fromisoformat(FETCHED_AT)
    assert parse_post_time(printed, tz, fetched) == expected


# --- URLs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "ref"),
    [
        ("http://bbs.example.cn/thread-88-2-1.html", (88, 2)),
        ("thread-88-1-3.html", (88, 1)),
        ("http://bbs.example.cn/bbs/forum.php?mod=viewthread&tid=88", (88, 1)),
        ("forum.php?mod=viewthread&tid=88&page=3&extra=page%3D1&ordertype=1&authorid=7", (88, 3)),
        ("forum.php?mod=viewthread&tid=88&page=abc", (88, 1)),
        ("forum.php?mod=viewthread&action=printable&tid=88", None),
        ("forum.php?mod=redirect&goto=findpost&ptid=88&pid=1002", None),
        ("forum-2-1.html", None),
        ("http://[broken/thread-1-1-1.html", None),
    ],
)
def test_thread_ref(url, ref):
    assert ENGINE.thread_ref(url) == ref


@pytest.mark.parametrize(
    ("url", "ref"),
    [
        ("http://bbs.example.cn/forum-2-1.html", (2, 1)),
        ("forum.php?mod=forumdisplay&fid=2&page=4", (2, 4)),
        ("forum.php?mod=forumdisplay&fid=2&filter=typeid&typeid=5", (2, 1)),
        ("thread-88-1-1.html", None),
        ("forum.php?gid=1", None),
    ],
)
def test_board_ref(url, ref):
    assert ENGINE.board_ref(url) == ref


def test_url_kind_and_builders():
    assert ENGINE.url_kind("http://x/thread-1-1-1.html") is PageKind.THREAD
    assert ENGINE.url_kind("http://x/forum-1-1.html") is PageKind.BOARD
    assert ENGINE.url_kind("http://x/home.php?mod=space&uid=1") is PageKind.UNKNOWN
    assert ENGINE.thread_url("http://bbs.example.cn/", 88, 2) == "http://bbs.example.cn/thread-88-2-1.html"
    assert ENGINE.thread_url("http://bbs.example.cn/bbs", 88) == "http://bbs.example.cn/bbs/thread-88-1-1.html"
    assert ENGINE.board_url("http://bbs.example.cn/", 2, 3) == "http://bbs.example.cn/forum-2-3.html"
    assert ENGINE.thread_ref(ENGINE.thread_url("http://a/", 5, 7)) == (5, 7)
    assert ENGINE.board_ref(ENGINE.board_url("http://a/", 5, 7)) == (5, 7)


# --- robustness -----------------------------------------------------------------------------------
MUTATED_FIXTURES = ["thread_page1", "thread_page2", "board_page", "notice", "thread_poll", "thread_reward",
                    "thread_activity", "thread_debate", "thread_trade"]


WEB_URL = re.compile(r"https?://", re.I)
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")


def assert_sound(result) -> None:
    """What holds for any page a parser accepts, however mangled."""
    assert 1 <= result.page <= result.page_count
    if isinstance(result, ThreadPage):
        assert result.title and result.posts
        for post in result.posts:
            assert post.pid > 0 and (post.floor is None or post.floor >= 1)
            assert post.posted_at is None or ISO_TIME.fullmatch(post.posted_at)
            assert_safe(post.content_html)
            for attachment in post.attachments:
                assert WEB_URL.match(attachment.url)
    else:
        for row in result.rows:
            assert row.tid > 0 and WEB_URL.match(row.url)
            assert row.last_post_at is None or ISO_TIME.fullmatch(row.last_post_at)


def test_no_part_a_post_often_lacks_is_a_table():
    # One query finds the post tables and those parts together, told apart by the tag alone.
    from scraper.engines.discuz import _OFTEN_ABSENT_IN_TABLE

    for selector in _OFTEN_ABSENT_IN_TABLE.split(","):
        last = re.split(r"[\s>+~]+", selector.strip())[-1]
        tag = re.match(r"[a-z][a-z0-9]*", last)
        assert tag is not None and tag[0] != "table", selector


def parse_both(html: str) -> None:
    """Both parsers on `html` through both tree builders: each returns a sound page or raises
    ParseError, never anything else."""
    ctx = ParseContext(url=PAGE1_URL, fetched_at=FETCHED_AT, noise=SITE_NOISE)
    for tree in (LexborHTMLParser(html), clean.parse_html(html)):
        assert isinstance(ENGINE.page_kind(tree, 200), PageKind)
        for parse in (ENGINE.parse_thread, ENGINE.parse_board):
            try:
                result = parse(tree, ctx)
            except ParseError:
                continue
            assert_sound(result)


def delete_elements(html: str, seed: int, count: int) -> str:
    rng = random.Random(seed)
    tree = LexborHTMLParser(html)
    for _ in range(count):
        elements = tree.body.css("*")[1:]  # never the body itself
        if not elements:
            break
        rng.choice(elements).decompose()
    return tree.html


def inject(html: str, seed: int, payload: str) -> str:
    positions = [m.end() - 1 for m in re.finditer(r"<[a-zA-Z][^<>]*>", html)]
    at = random.Random(seed).choice(positions)
    return html[:at] + payload + html[at:]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(MUTATED_FIXTURES), seed=st.integers(0, 2**32), count=st.integers(1, 12))
def test_pages_with_elements_deleted(name, seed, count):
    parse_both(delete_elements(fixture(name), seed, count))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(MUTATED_FIXTURES), fraction=st.floats(0, 1))
def test_pages_truncated_at_any_byte(name, fraction):
    data = fixture(name).encode("utf-8")
    parse_both(data[: int(len(data) * fraction)].decode("utf-8", errors="replace"))


@pytest.mark.parametrize("name", MUTATED_FIXTURES)
def test_pages_read_with_the_wrong_encoding(name):
    # GB18030 bytes read as UTF-8: every CJK character turns into replacement characters.
    parse_both(fixture(name).encode("gb18030").decode("utf-8", errors="replace"))
    parse_both(fixture(name).encode("utf-8").decode("gb18030", errors="replace"))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(MUTATED_FIXTURES),
    seed=st.integers(0, 2**32),
    payload=st.sampled_from([
        ' data-x="' + "A" * 200_000 + '"',
        ' style="' + "display:none;" * 20_000 + '"',
        ' class="' + " ".join(f"a_{i}" for i in range(20_000)) + '"',
        ' id="pid' + "9" * 5_000 + '"',
        ' href="' + "http://x/" + "%" * 100_000 + '"',
        ' title="' + "共 999999999999 页" + '"',
    ]),
)
def test_pages_with_huge_attributes(name, seed, payload):
    parse_both(inject(fixture(name), seed, payload))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(MUTATED_FIXTURES),
    seed=st.integers(0, 2**32),
    tag=st.sampled_from(["div", "blockquote", "font", "table", "span", "a"]),
    depth=st.integers(100, 3000),
)
def test_pages_with_deep_nesting(name, seed, tag, depth):
    html = fixture(name)
    at = random.Random(seed).randrange(len(html))
    parse_both(html[:at] + f"<{tag}>" * depth + html[at:])


def test_hundred_thousand_nested_divs_in_a_post_parse_within_seconds():
    deep = "<div>" * 100_000 + "最深处" + "</div>" * 100_000
    html = fixture("thread_page1").replace("精彩回复内容", deep)
    started = time.monotonic()
    page = thread(html)
    assert time.monotonic() - started < 5
    assert by_pid(page, 1017).content_text == "最深处"


def test_hundred_thousand_nested_divs_alone_are_not_a_thread():
    html = "<div>" * 100_000 + "x" + "</div>" * 100_000
    started = time.monotonic()
    tree = clean.parse_html(html)
    assert ENGINE.page_kind(tree) is PageKind.UNKNOWN
    with pytest.raises(ParseError):
        ENGINE.parse_thread(tree, ParseContext(url=PAGE1_URL))
    assert time.monotonic() - started < 5


def test_deep_tree_built_without_the_guard_is_still_handled():
    # A caller that builds the tree itself gets no depth guard; parsing must not recurse.
    deep = "<div>" * 15_000 + "深" + "</div>" * 15_000
    tree = LexborHTMLParser(fixture("thread_page1").replace("精彩回复内容", deep))
    started = time.monotonic()
    page = ENGINE.parse_thread(tree, ParseContext(url=PAGE1_URL))
    assert by_pid(page, 1017).content_text == "深"
    assert time.monotonic() - started < 10


def test_a_body_wrapped_in_a_font_reads_as_the_same_post(page1):
    # Posters often set one font for a whole post: the quote, edit note and images inside the
    # wrapper are still the quote, the note and the attachments they were without it.
    html = fixture("thread_page1")
    opening = '<td class="t_f" id="postmessage_1001">'
    start = html.index(opening) + len(opening)
    end = html.index("</td>", start)
    wrapped = thread(html[:start] + '<font face="宋体">' + html[start:end] + "</font>" + html[end:])
    post, plain = by_pid(wrapped, 1001), by_pid(page1, 1001)
    assert post.quotes == plain.quotes and post.quotes
    assert post.content_text == plain.content_text and "引用的话" not in post.content_text
    assert post.edit_note == plain.edit_note and post.attachments == plain.attachments


def test_media_refs_stay_the_same_across_views_of_an_unchanged_post():
    # Discuz signs attachment links per view (base64 of aid|hash|time|uid|tid), and a forum may
    # be read over http or https, at another port, under either URL form: none of it is an edit.
    from scraper.engines.discuz import media_refs

    def html(token, site):
        return (f'<p>见附件<a href="{site}forum.php?mod=attachment&amp;aid={token}&amp;nothumb=yes">资料.zip</a>'
                f'<img src="{site}data/attachment/forum/a.jpg"><img src="{site}static/image/smiley/default/smile.gif">'
                f'<a href="{site}thread-88-1-1.html#part2">下文</a><a href="https://other.example.com/x">外链</a></p>')

    monday, tuesday = (base64.b64encode(f"56|{h}|{t}|0|88".encode()).decode()
                       for h, t in (("abc12345", 1710000000), ("def67890", 1710086400)))
    first = media_refs(html(monday, "http://bbs.example.cn/"), "http://bbs.example.cn/thread-88-1-1.html")
    again = media_refs(html(tuesday, "https://bbs.example.cn:8443/"), "https://bbs.example.cn:8443/thread-88-1-1.html")
    assert first == again == ("attachment:56", "/data/attachment/forum/a.jpg", "#part2", "https://other.example.com/x")
    # A listed attachment is named once, with its file name (a file replaced under its id is an edit).
    listed = Attachment(url="http://bbs.example.cn/data/attachment/forum/a.jpg", name="a.jpg", aid="55")
    assert media_refs(html(monday, "http://bbs.example.cn/"), "http://bbs.example.cn/thread-88-1-1.html", [listed]) == (
        "attachment:56", "#part2", "https://other.example.com/x", "attachment:55:a.jpg")
    assert media_refs("<p>纯文本</p>", "http://bbs.example.cn/") == ()
    # A link to a place in this thread is its fragment from whichever page: the post may move.
    anchor = '<a href="http://bbs.example.cn/thread-88-1-1.html#pid5">上文</a><a href="http://bbs.example.cn/x.html#a">x</a>'
    assert media_refs(anchor, "http://bbs.example.cn/thread-88-3-1.html") == media_refs(
        anchor, "http://bbs.example.cn/forum.php?mod=viewthread&tid=88") == ("#pid5", "/x.html#a")
    # A [url] over a line break takes in the jammer element Discuz writes there, differently each view.
    jammed = '<a href="http://a.example.com/x&lt;font class=">说明</a>'
    assert media_refs(jammed, "http://bbs.example.cn/") == ("http://a.example.com/x",)



PICTURE_BOARD = """<html><body class="pg_forumdisplay"><div id="pt"><div class="z">
<a href="forum.php?mod=forumdisplay&fid=5">图片</a></div></div>
<div id="pgt"><div class="pg"><strong>1</strong><a href="forum-5-2.html">2</a>
<label><span title="共 2 页"> / 2 页</span></label></div></div>
<div id="threadlist"><form id="moderate">
<table summary="forum_5" id="threadlisttableid">
<tbody id="stickthread_100"><tr><th><a href="thread-100-1-1.html" class="s xst">版规</a></th>
<td class="by"><cite><a href="home.php?mod=space&uid=1">admin</a></cite></td>
<td class="num"><a href="thread-100-1-1.html" class="xi2">0</a><em>9</em></td>
<td class="by"><cite>admin</cite><em><a href="#">2024-3-1 10:00</a></em></td></tr></tbody>
<tbody id="separatorline"><tr><td></td></tr></tbody></table>
<ul id="waterfall" class="ml waterfall cl">
<li style="width:227px"><div class="c cl"><a href="thread-101-1-1.html" title="照片一" class="z"><img src="a.jpg"></a></div>
<h3 class="xw0"><a href="thread-101-1-1.html" title="照片一">照片一</a></h3>
<div class="auth cl"><cite class="xg1 y">喜欢: 0 &nbsp; 回复: <a href="thread-101-1-1.html" title="3 回复">3</a></cite>
<a href="home.php?mod=space&uid=7">张三</a></div></li>
<li style="width:227px"><div class="c cl"><a href="thread-102-1-1.html" title="照片二" class="z"><img src="b.jpg"></a></div>
<h3 class="xw0"><a href="thread-102-1-1.html" title="照片二">照片二</a></h3>
<div class="auth cl"><cite class="xg1 y">回复: <a href="thread-102-1-1.html">1</a></cite>
<a href="home.php?mod=space&uid=8">李四</a></div></li>
</ul></form></div></body></html>"""


def test_a_board_in_picture_mode_lists_its_tiles_beside_its_sticky_rows():
    # picstyle boards (what guests see on picture boards) keep only sticky threads in the table.
    tree = clean.parse_html(PICTURE_BOARD)
    assert ENGINE.page_kind(tree) == PageKind.BOARD
    board = ENGINE.parse_board(tree, ParseContext(url="https://bbs.example.cn/forum-5-1.html"))
    assert [(r.tid, r.title, r.replies, r.author, r.sticky) for r in board.rows] == [
        (100, "版规", 0, "admin", True), (101, "照片一", 3, "张三", False), (102, "照片二", 1, "李四", False)]
    assert board.rows[1].url == "https://bbs.example.cn/thread-101-1-1.html"
    assert (board.fid, board.page, board.page_count) == (5, 1, 2)
    without_table = clean.parse_html(re.sub(r"<table.*?</table>", "", PICTURE_BOARD, flags=re.S))
    assert ENGINE.page_kind(without_table) == PageKind.BOARD
    assert [r.tid for r in ENGINE.parse_board(without_table, ParseContext(url="https://bbs.example.cn/forum-5-1.html")).rows] == [101, 102]


def _one_post_thread(after_body: str) -> str:
    return f"""<html><head><title>T - B - S</title></head><body>
<div id="pt"><div class="z"><a href="forum.php?mod=forumdisplay&fid=2">Board</a></div></div>
<div id="postlist"><table><tr><td class="plc"><h1><span id="thread_subject">Subject</span></h1></td></tr></table>
<div id="post_1"><table id="pid1"><tr><td class="plc">
<div class="pi"><strong><a href="forum.php?mod=redirect&goto=findpost&ptid=88&pid=1" id="postnum1">楼主</a></strong>
<div class="pti"><div class="authi"><a href="home.php?mod=space&uid=7" class="xi2">张三</a>
<em id="authorposton1">发表于 2024-3-2 10:05:11</em></div></div></div>
<div class="pct"><div class="pcb"><div class="t_fsz"><table><tr><td class="t_f" id="postmessage_1">十二张图</td></tr></table>
{after_body}</div></div></div></td></tr></table></div></div></body></html>"""


def test_images_in_the_hidden_image_list_are_the_posts_attachments():
    # With many images Discuz lists them all in div#imagelist_{pid}, hidden until its script
    # builds the thumbnails: the images are the post's, the hiding is the page's.
    images = "".join(
        f'<dl class="tattl attm"><dd><p class="mbn"><a href="forum.php?mod=attachment&amp;aid=Nzd8{n}" id="aid{n}">'
        f'photo{n}.jpg</a></p><div class="mbn savephotop"><img id="aimg_{n}" aid="{n}" src="static/image/common/none.gif" '
        f'zoomfile="data/attachment/forum/p{n}.jpg" file="data/attachment/forum/p{n}.jpg" class="zoom" /></div></dd></dl>'
        for n in range(70, 82))
    pattl = (f'<div class="pattl"><div id="imagelist_1" class="cl" style="display:none">{images}</div>'
             f'<div id="imagelistthumb_1" class="pattl_c cl">组图打开中，请稍候......</div></div>')
    [post] = thread(_one_post_thread(pattl), url="https://bbs.example.cn/thread-88-1-1.html").posts
    assert [(a.aid, a.name, a.url) for a in post.attachments] == [
        (str(n), f"photo{n}.jpg", f"https://bbs.example.cn/data/attachment/forum/p{n}.jpg") for n in range(70, 82)]
    assert post.content_text == "十二张图"


@pytest.mark.parametrize(("quote", "attribution"), [
    # X2/X2.5 BBCode quotes, still rendered so on X3: the link wraps only a back-arrow image.
    ('<div class="quote"><blockquote><font size="2"><font color="#999999">李四 发表于 2012-3-1 09:00</font> '
     '<a href="forum.php?mod=redirect&amp;goto=findpost&amp;pid=999&amp;ptid=88"><img src="static/image/common/back.gif" '
     'border="0" alt="" /></a></font><br />\r\n引用的话</blockquote></div><br />\r\n', "李四 发表于 2012-3-1 09:00"),
    # Discuz 6/7 posts kept in X: the words stand straight in the blockquote.
    ('<div class="quote"><blockquote>原帖由 <i>李四</i> 于 2012-3-1 09:00 发表 <a href="redirect.php?goto=findpost'
     '&amp;pid=999&amp;ptid=88"><img src="images/common/back.gif" border="0" alt="" /></a><br />\r\n引用的话</blockquote>'
     '</div><br />\r\n', "原帖由 李四 于 2012-3-1 09:00 发表"),
    # ... on a traditional-Chinese forum.
    ('<div class="quote"><blockquote>原帖由 <i>李四</i> 於 2012-3-1 09:00 發表 <a href="redirect.php?goto=findpost'
     '&amp;pid=999&amp;ptid=88"><img src="images/common/back.gif" border="0" alt="" /></a><br />\r\n引用的话</blockquote>'
     '</div><br />\r\n', "原帖由 李四 於 2012-3-1 09:00 發表"),
])
def test_older_quotes_keep_their_attribution_out_of_the_quoted_text(quote, attribution):
    html = _one_post_thread("").replace('id="postmessage_1">十二张图', f'id="postmessage_1">{quote}回复正文')
    [post] = thread(html, url="https://bbs.example.cn/thread-88-1-1.html").posts
    assert post.quotes == [Quote(text="引用的话", author="李四", posted_at_raw="2012-3-1 09:00", pid=999,
                                 attribution=attribution)]
    assert post.content_text == "回复正文"


@pytest.mark.parametrize("board_link", ["forum-news-1.html", "forum.php?mod=forumdisplay&amp;fid=news"])
def test_a_board_linked_by_its_alias_is_named_and_numbered(board_link):
    # A board given an alias (forumkeys) is linked by it; the post buttons still name its number.
    html = _one_post_thread("").replace('<a href="forum.php?mod=forumdisplay&fid=2">Board</a>',
                                        f'<a href="{board_link}">新闻</a>')
    page = thread(html, url="https://bbs.example.cn/thread-88-1-1.html")
    assert (page.board, page.fid) == ("新闻", None)
    # X3's button: the number is in its onclick, its href is javascript:;
    with_button = html.replace('<div id="postlist">',
                               '<a href="javascript:;" id="newspecial" onclick="showWindow(\'newthread\', '
                               '\'forum.php?mod=post&amp;action=newthread&amp;fid=7\')">发帖</a><div id="postlist">')
    page = thread(with_button, url="https://bbs.example.cn/thread-88-1-1.html")
    assert (page.board, page.fid) == ("新闻", 7)


def test_words_before_a_back_arrow_link_that_name_no_author_stay_in_the_quote():
    quote = ('<div class="quote"><blockquote>见上文 <a href="forum.php?mod=redirect&amp;goto=findpost&amp;pid=999&amp;ptid=88">'
             '<img src="static/image/common/back.gif" /></a><br />引用的话</blockquote></div>')
    html = _one_post_thread("").replace('id="postmessage_1">十二张图', f'id="postmessage_1">{quote}回复正文')
    [post] = thread(html, url="https://bbs.example.cn/thread-88-1-1.html").posts
    assert post.quotes == [Quote(text="见上文\n引用的话", author=None, posted_at_raw=None, pid=999)]


def test_numbers_a_forum_user_writes_in_other_digits_are_no_numbers():
    # '²' passes str.isdigit() but not int(): a post linking tid=² must not fail its page.
    from scraper.engines.discuz import board_ref, thread_ref

    assert thread_ref("http://bbs.example.cn/forum.php?mod=viewthread&tid=%C2%B2") is None
    assert thread_ref("http://bbs.example.cn/forum.php?mod=viewthread&tid=5&page=%C2%B2") == (5, 1)
    assert board_ref("http://bbs.example.cn/forum.php?mod=forumdisplay&fid=%C2%B2") is None
    post = ('<a href="forum.php?mod=viewthread&amp;tid=%C2%B2#pid1">上文</a>'
            '<div class="quote"><blockquote><font size="2"><a href="forum.php?mod=redirect&amp;goto=findpost&amp;'
            'pid=%C2%B2&amp;ptid=88"><font color="#999999">李四 发表于 2012-3-1 09:00</font></a></font><br />引用</blockquote></div>')
    html = _one_post_thread("").replace('id="postmessage_1">十二张图', f'id="postmessage_1">{post}')
    [parsed] = thread(html, url="https://bbs.example.cn/thread-88-1-1.html").posts
    assert parsed.quotes[0].pid is None and parsed.quotes[0].author == "李四"


def test_a_link_with_a_huge_number_in_one_post_does_not_fail_the_page():
    # Python's int() refuses more than 4,300 digits; a post may hold such a link, and one post
    # must never cost the page (and the thread pages queued from it) its parse.
    digits = "9" * 5000
    aid = base64.b64encode(f"{digits}|abc|1|2|88".encode()).decode()
    body = (f'<a href="https://bbs.example.cn/thread-{digits}-1-1.html#pid1">a</a>'
            f'<a href="https://bbs.example.cn/forum-{digits}-1.html">b</a>'
            f'<a href="forum.php?mod=viewthread&amp;tid={digits}&amp;page={digits}">c</a>'
            f'<a href="forum.php?mod=attachment&amp;aid={aid}">d.zip</a>'
            f'<div class="quote"><blockquote><font size="2"><a href="forum.php?mod=redirect&amp;goto=findpost'
            f'&amp;pid={digits}&amp;ptid={digits}"><font color="#999999">李四 发表于 2012-3-1 09:00</font></a></font>'
            f'<br />引用的话</blockquote></div>十二张图')
    html = _one_post_thread("").replace('id="postmessage_1">十二张图', f'id="postmessage_1">{body}')
    [post] = thread(html, url="https://bbs.example.cn/thread-88-1-1.html").posts
    assert post.content_text.endswith("十二张图")
    assert [(q.text, q.pid) for q in post.quotes] == [("引用的话", None)]
    assert thread_ref(f"https://bbs.example.cn/thread-{digits}-1-1.html") is None
    assert thread_ref(f"https://bbs.example.cn/thread-88-{digits}-1.html") == (88, 1)
    # A post table whose id is past any post id (SQLite could not store it) is no post.
    html = fixture("thread_page1")
    posts = thread(html).posts
    odd = thread(html.replace('<table id="pid1017"', '<table id="pid' + "9" * 19 + '"')).posts
    assert [p.pid for p in odd] == [p.pid for p in posts if p.pid != 1017]
    # An author link naming a uid no forum gives: the author, without a uid.
    first = posts[0]
    assert first.author_uid is not None and f"uid={first.author_uid}" in html
    huge_uid = thread(html.replace(f"uid={first.author_uid}", "uid=" + "9" * 19)).posts[0]
    assert (huge_uid.author, huge_uid.author_uid) == (first.author, None)


def test_a_quote_link_no_url_parser_reads_and_a_superscript_count_do_not_fail_the_page():
    # urlsplit refuses http://[x/...; int() refuses the '²' that str.isdigit() admits.
    quote = ('<div class="quote"><blockquote><a href="http://[x/forum.php?mod=redirect&amp;goto=findpost&amp;pid=5">'
             '李四 发表于 2024-1-1 10:00</a><br />引用的话</blockquote></div>')
    html = _one_post_thread("").replace('id="postmessage_1">十二张图', f'id="postmessage_1">{quote}十二张图')
    [post] = thread(html, url="https://bbs.example.cn/thread-88-1-1.html").posts
    assert [(q.text, q.author, q.pid) for q in post.quotes] == [("引用的话", "李四", None)]
    assert post.content_text == "十二张图"
    counts = '<span class="xg1">查看:</span> <span class="xi1">1234</span>'
    html = fixture("thread_page1")
    assert counts in html
    for odd, read_as in (('title="²">1234', 1234), ("9" * 400, None), ("9" * 19, None), ("9" * 308, None),
                         ("9" * 18, 10**18 - 1)):
        page = thread(html.replace(counts, counts.replace(">1234", f" {odd}" if "title" in odd else f">{odd}")))
        assert (page.views, len(page.posts)) == (read_as, len(thread(html).posts)), odd


def test_download_links_are_kept_and_a_changed_target_changes_the_posts_media():
    # Resource forums post eMule and magnet links: the target (a file's hash) is the content.
    def post_with(target_hash):
        body = (f'<a href="ed2k://|file|电影.mkv|1048576|{target_hash}|/">电影.mkv</a><br />'
                '<a href="magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a">磁力</a>')
        html = _one_post_thread("").replace('id="postmessage_1">十二张图', f'id="postmessage_1">{body}')
        [post] = thread(html, url="https://bbs.example.cn/thread-88-1-1.html").posts
        return post

    first, swapped = post_with("0123456789ABCDEF0123456789ABCDEF"), post_with("FEDCBA9876543210FEDCBA9876543210")
    encoded = "ed2k://%7Cfile%7C%E7%94%B5%E5%BD%B1.mkv%7C1048576%7C0123456789ABCDEF0123456789ABCDEF%7C/"
    assert encoded in first.content_html
    assert 'href="magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a"' in first.content_html
    assert first.media_refs == (
        encoded,
        "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a")
    assert first.content_text == swapped.content_text and first.media_refs != swapped.media_refs


def test_code_block_lines_keep_their_indentation_in_the_text():
    # Discuz writes a [code] block's indentation as &nbsp;: collapsed, Python lost its meaning.
    code = ('<div class="blockcode"><div id="code_a"><ol><li>def f(x):<br /><li>&nbsp; &nbsp; return x&nbsp;&nbsp;+ 1'
            '<font class="jammer">7 q2 Z; m0 C4 x</font><br /><li><br /><li>&nbsp; &nbsp; # 注释 &nbsp;<br /></ol></div>'
            '<em onclick="copycode($(\'code_a\'));">复制代码</em></div>')
    html = _one_post_thread("").replace('id="postmessage_1">十二张图', f'id="postmessage_1">说明：&nbsp; 见下<br />{code}完')
    [post] = thread(html, url="https://bbs.example.cn/thread-88-1-1.html").posts
    assert post.content_text == "说明： 见下\ndef f(x):\n    return x  + 1\n\n    # 注释\n完"
    assert "\x00" not in post.content_html
    # As Discuz writes a post stored with CRLF (nl2br leaves "\r\n" before each <li>), pretty
    # printed, and as Discuz 6/7 wrote it, without the copy button.
    for joint in ("<br />\r\n<li>", "<br />\r<li>", "</li>\n<li>"):
        variant = code.replace("<br /><li>", joint)
        assert joint in variant
        for block in (variant, variant.replace('<em onclick="copycode($(\'code_a\'));">复制代码</em>', "")):
            html = _one_post_thread("").replace('id="postmessage_1">十二张图', f'id="postmessage_1">{block}完')
            [post] = thread(html, url="https://bbs.example.cn/thread-88-1-1.html").posts
            assert post.content_text == "def f(x):\n    return x  + 1\n\n    # 注释\n完", (joint, block)


# What Discuz writes for [table=98%][tr][td]...[/td][/tr][/table]: a price list, in a post.
DISCUZ_TABLE = ('<table cellspacing="0" class="t_table" style="width:98%">\r\n<tr><td>名称</td><td>单价</td><td>备注</td></tr>'
                '<tr><td><font class="jammer">7 q2 Z; m0 C4 x</font>苹果</td><td>3 元<br />\r\n(箱)</td><td></td></tr>'
                '<tr><td><span style="display:none">3 k. R8 w% D1 p</span>& Z; k9 @. o1 ]: |梨</td><td>5 元</td>'
                '<td>本文由老秘网推荐,限购</td></tr></table>')


def test_a_table_in_a_post_keeps_its_rows_in_the_text():
    html = _one_post_thread("").replace('id="postmessage_1">十二张图',
                                        f'id="postmessage_1">价目表<br />\r\n{DISCUZ_TABLE}以上')
    tree = clean.parse_html(html)
    # Not text and <br> only: the tree path lays it out, not the one-serialisation path.
    assert clean.clean_plain_body(tree.css_first("#postmessage_1"), MARKUP_NOISE, SITE_NOISE) is None
    [post] = thread(html).posts
    assert post.content_text == "价目表\n名称\t单价\t备注\n苹果\t3 元 (箱)\n梨\t5 元\t限购\n以上"
    assert post.noise_removed == {"jammer_elements": 1, "hidden_elements": 1, "jammer_text_runs": 1, "site_phrases": 1}
    assert "<td>苹果</td>" in post.content_html and "\t" not in post.content_html


def test_the_beautifulsoup_port_lays_out_tables_as_the_engine_does():
    from benchmarks import bs4_discuz

    tables = (DISCUZ_TABLE + '<table><tr><td>单格<br />两行</td></tr><tr><td>第一行 % q8 Z# <b>@; r1 b* x</b><br />'
              '第二行</td><td>c</td></tr></table>')
    html = _one_post_thread("").replace('id="postmessage_1">十二张图', f'id="postmessage_1">价目表<br />\r\n{tables}以上')
    ours = thread(html)
    assert ours.posts[0].content_text.endswith("单格\n两行\n第一行 第二行\tc\n以上")
    assert bs4_discuz.parse_thread(html, ParseContext(url=PAGE1_URL, fetched_at=FETCHED_AT, noise=SITE_NOISE)) == ours


# [flash], [media] and [audio] as Discuz X3.4 writes them (function_discuzcode.php: parseflash,
# parsemedia, parseaudio, parseflv; attachinpost's music player), and 7.2's document.write.
# The post's text was escaped before the players were written: "&" is "&amp;" in a script, and
# parsemedia escapes its URL once more. Each form with the file it plays.
_SCRIPT_PLAYER = ('<span id="{id}"></span><script type="text/javascript" reload="1">$(\'{id}\').innerHTML='
                  "AC_FL_RunContent('width', '550', 'height', '400', 'allowNetworking', 'internal', "
                  "'allowScriptAccess', 'never', {source}, 'quality', 'high', 'wmode', 'transparent', "
                  "'allowfullscreen', 'true');</script>")
PLAYER_FORMS = {
    "flash swf": (_SCRIPT_PLAYER.format(id="swf_Ab1", source="'src', encodeURI('http://www.example.com/game.swf?a=1&amp;b=2')"),
                  "http://www.example.com/game.swf?a=1&b=2"),
    "flash flv": (_SCRIPT_PLAYER.format(id="swf_Cd2", source="'src', 'static/image/common/flvplayer.swf', "
                                        "'flashvars', 'file=http%3A%2F%2Fv.example.com%2Fclips%2Fa%20b.flv'"),
                  "http://v.example.com/clips/a%20b.flv"),
    "media swf": (_SCRIPT_PLAYER.format(id="swf_Ef3", source="'src', encodeURI('http://www.example.com/m.swf?id=1&amp;amp;t=2')"),
                  "http://www.example.com/m.swf?id=1&t=2"),
    "media flv": (_SCRIPT_PLAYER.format(id="flv_Gh4", source="'src', 'http://cdn.example.cn/static/image/common/flvplayer.swf', "
                                        "'flashvars', 'file=https%3A%2F%2Fv.example.com%2Fb.flv%3Fx%3D1%26amp%3By%3D2'"),
                  "https://v.example.com/b.flv?x=1&y=2"),
    "parseflv": ('<span id="flv_Ij5"></span><script type="text/javascript" reload="1">$(\'flv_Ij5\').innerHTML=(mobileplayer() ? '
                 '"<iframe height=\'400\' width=\'500\' src=\'http://player.youku.com/embed/XNDU2\' frameborder=0 allowfullscreen></iframe>" : '
                 "AC_FL_RunContent('width', '500', 'height', '400', 'allowNetworking', 'internal', 'allowScriptAccess', 'never', "
                 "'src', 'http://player.youku.com/player.php/sid/XNDU2/v.swf', 'quality', 'high', 'bgcolor', '#ffffff', "
                 "'wmode', 'transparent', 'allowfullscreen', 'true'));</script>",
                 "http://player.youku.com/player.php/sid/XNDU2/v.swf"),
    "media wmv": ('<object classid="clsid:6BF52A52-394A-11d3-B153-00C04F79FAA6" width="500" height="375">'
                  '<param name="invokeURLs" value="0"><param name="autostart" value="0" />'
                  '<param name="url" value="http://media.example.com/talk.wmv?a=1&amp;amp;b=2" />'
                  '<embed src="http://media.example.com/talk.wmv?a=1&amp;amp;b=2" autostart="0" type="application/x-mplayer2" '
                  'width="500" height="375"></embed></object>', "http://media.example.com/talk.wmv?a=1&b=2"),
    "media rm": ('<object classid="clsid:CFCDAA03-8BE4-11cf-B84B-0020AFBBCCFA" width="500" height="375">'
                 '<param name="autostart" value="0" /><param name="src" value="rtsp-free/clip.rm" />'
                 '<param name="controls" value="imagewindow" /><param name="console" value="media_Kl6_" />'
                 '<embed src="rtsp-free/clip.rm" autostart="0" type="audio/x-pn-realaudio-plugin" controls="imagewindow" '
                 'console="media_Kl6_" width="500" height="375"></embed></object><br />'
                 '<object classid="clsid:CFCDAA03-8BE4-11CF-B84B-0020AFBBCCFA" width="500" height="32">'
                 '<param name="src" value="rtsp-free/clip.rm" /><param name="controls" value="controlpanel" />'
                 '<embed src="rtsp-free/clip.rm" autostart="0" type="audio/x-pn-realaudio-plugin" controls="controlpanel" '
                 'width="500" height="32"></embed></object>', "https://bbs.example.cn/rtsp-free/clip.rm"),
    "media mov": ('<object classid="clsid:02BF25D5-8C17-4B23-BC80-D3488ABDDC6B" width="500" height="375">'
                  '<param name="autostart" value="false" /><param name="src" value="https://v.example.com/trip.mov" />'
                  '<embed src="https://v.example.com/trip.mov" autostart="false" type="video/quicktime" controller="true" '
                  'width="500" height="375"></embed></object>', "https://v.example.com/trip.mov"),
    "audio mp3": ('<span id="mp3_Mn7"></span><script type="text/javascript" reload="1">$(\'mp3_Mn7\').innerHTML=AC_FL_RunContent('
                  "'FlashVars', 'soundFile=http%3A%2F%2Fmusic.example.com%2F%E6%AD%8C.mp3', 'width', '290', 'height', '24', "
                  "'allowNetworking', 'internal', 'allowScriptAccess', 'never', 'src', 'static/image/common/player.swf', "
                  "'quality', 'high', 'bgcolor', '#FFFFFF', 'menu', 'false', 'wmode', 'transparent', "
                  "'allowNetworking', 'internal');</script>", "http://music.example.com/歌.mp3"),
    "audio wma": ('<object classid="clsid:6BF52A52-394A-11d3-B153-00C04F79FAA6" width="400" height="64">'
                  '<param name="invokeURLs" value="0"><param name="autostart" value="0" />'
                  '<param name="url" value="http://music.example.com/a.wma" /><embed src="http://music.example.com/a.wma" '
                  'autostart="0" type="application/x-mplayer2" width="400" height="64"></embed></object>',
                  "http://music.example.com/a.wma"),
    "attached mp3": ('<audio controls="controls"><source src="data/attachment/forum/201701/05/song.mp3"></audio>',
                     "https://bbs.example.cn/data/attachment/forum/201701/05/song.mp3"),
    "7.2 flash": ('<script type="text/javascript" reload="1">document.write(AC_FL_RunContent(\'width\', \'550\', '
                  "'height', '400', 'allowNetworking', 'internal', 'allowScriptAccess', 'never', "
                  "'src', \"http://www.example.com/it\\'s \\x26 \\u4e2d.swf\", 'quality', 'high'))</script>",
                  "http://www.example.com/it's%20&%20中.swf"),
}
PLAYER_PAGE_URL = "https://bbs.example.cn/thread-88-1-1.html"


def _post_with_body(body: str):
    html = _one_post_thread("").replace('id="postmessage_1">十二张图', f'id="postmessage_1">{body}')
    [post] = thread(html, url=PLAYER_PAGE_URL).posts
    return post


@pytest.mark.parametrize("form", PLAYER_FORMS)
def test_the_file_each_player_plays_is_linked_where_the_player_stood(form):
    # Layer 1 removes the script that writes a player, the sanitiser the object or embed that
    # holds one: the video or song a post was about was named only in the raw page.
    player, played = PLAYER_FORMS[form]
    post = _post_with_body(f"看这个<br />\n{player}<br />\n看完了")
    escaped = played.replace("&", "&amp;")  # as the serialiser writes it (no quotes or brackets in these)
    link = f'<a href="{escaped}" data-from="player" rel="nofollow noopener noreferrer">{escaped}</a>'
    assert post.content_html.count(link) == 1, post.content_html
    assert post.content_html.index("看这个") < post.content_html.index(link) < post.content_html.index("看完了")
    own_host = played.startswith("https://bbs.example.cn/")
    assert post.media_refs == ("player:" + (played.removeprefix("https://bbs.example.cn") if own_host else played),)
    assert post.content_text == "看这个\n\n看完了"  # the player showed no words
    assert_safe(post.content_html)


def test_a_swapped_video_changes_the_references():
    player = PLAYER_FORMS["flash swf"][0]
    first = _post_with_body(player).media_refs
    assert _post_with_body(player.replace("game.swf", "other.swf")).media_refs != first


def test_a_body_plain_once_its_player_script_is_gone_keeps_the_players_link():
    # Discuz 7.2 wrote the player as a bare script: without it the body is text and <br>,
    # which the engine cleans from one serialisation; the link must survive that path.
    player, played = PLAYER_FORMS["7.2 flash"]
    post = _post_with_body(f"老视频<br />{player}")
    assert post.content_html.startswith("老视频<br><a href=") and post.media_refs == (f"player:{played}",)
    assert post.content_text == "老视频"


def test_a_link_of_the_post_marked_as_a_players_is_not_taken_for_one():
    # A post written in HTML may carry any attribute the sanitiser keeps: only the engine's
    # links may carry the player mark, or the archive would read the post's own link as a
    # player's file.
    player, played = PLAYER_FORMS["flash swf"]
    post = _post_with_body(f'<a href="https://example.com/mine" data-from="player">我的链接</a>{player}')
    assert post.media_refs == ("https://example.com/mine", "player:" + played)
    assert post.content_html.count('data-from="player"') == 1
    from benchmarks.bs4_discuz import parse_thread as parse_with_bs4

    html_page = _one_post_thread("").replace(
        'id="postmessage_1">十二张图', f'id="postmessage_1"><a href="https://example.com/mine" data-from="player">我的</a>{player}')
    ctx = ParseContext(url=PLAYER_PAGE_URL, fetched_at=FETCHED_AT, noise=SITE_NOISE)
    assert parse_with_bs4(html_page, ctx) == thread(html_page, url=PLAYER_PAGE_URL)


def test_a_players_relative_file_is_resolved_against_the_page():
    for player in ("<embed src=\"../media/a.wma\" type=\"application/x-mplayer2\">",
                   _SCRIPT_PLAYER.format(id="swf_Op8", source="'src', encodeURI('data/attachment/forum/a.swf')"),
                   _SCRIPT_PLAYER.format(id="swf_Qr9", source="'src', '//cdn.example.com/b.swf'")):
        post = _post_with_body(player)
        [ref] = post.media_refs
        assert ref in ("player:/media/a.wma", "player:/data/attachment/forum/a.swf", "player:https://cdn.example.com/b.swf")
        assert re.search(r'<a href="https://[^"]+" data-from="player"', post.content_html)


@pytest.mark.parametrize("player", [
    _SCRIPT_PLAYER.format(id="swf_St0", source=source) for source in (
        "'src', 'javascript:alert(1)'", "'src', encodeURI('JavaScript:alert(document.cookie)')",
        "'src', '\\x6aavascript:alert(1)'", "'src', '\\u006aavascript:alert(1)'", "'src', ' javascript:alert(1)'",
        "'src', 'data:text/html;base64,PHNjcmlwdD4='", "'src', 'vbscript:msgbox(1)'",
        "'flashvars', 'file=javascript%3Aalert(1)', 'src', 'static/image/common/flvplayer.swf'",
        "'src', 'ftp://files.example.com/a.swf'", "'src', 'http://exa\\nmple.com/a.swf'")
] + [
    '<embed src="javascript:alert(1)">', '<embed src="&#106;avascript:alert(1)">',
    '<iframe src="JAVASCRIPT:alert(1)"></iframe>', '<object data="data:application/x-shockwave-flash,x"></object>',
    '<video src="mms://media.example.com/live"></video>', '<embed src="http://exa&#10;mple.com/a.swf">',
])
def test_a_player_file_that_is_no_web_address_is_not_linked(player):
    # Only http(s) files are linked: never javascript:, data: or another scheme, however escaped.
    # The post's other player still is.
    other, played = PLAYER_FORMS["media mov"]
    post = _post_with_body(f"文字<br />{player}{other}")
    assert post.media_refs == (f"player:{played}",) and post.content_html.count("data-from") == 1
    assert "script" not in post.content_html.lower() and post.content_text == "文字"
    assert_safe(post.content_html)


@pytest.mark.parametrize("script", [
    "AC_FL_RunContent(", "AC_FL_RunContent('src', 'http://v.example.com/unterminated.swf",
    "AC_FL_RunContent('src')", "AC_FL_RunContent('src', encodeURI(", "AC_FL_RunContent('src', '\\uD800.swf')",
    "AC_FL_RunContent('src', '\\x4', '\\u12')", "AC_FL_RunContent('flashvars', 'file=%ZZ%', 'src')",
    "AC_FL_RunContent('src', 'http://[::1/a.swf')", "x = \"<iframe src=\" + y; AC_FL_RunContent(1, 2, 3)",
    "'" * 5000 + "AC_FL_RunContent(" + "'a', " * 5000, "\\" * 3001, "AC_FL_RunContent('src', 'http://v.example.com/\\",
])
def test_a_malformed_player_script_does_not_fail_the_page(script):
    # Any exception in the engine loses the page; a script the reader cannot make out links nothing
    # of its own, and the post's other player is still linked.
    other, played = PLAYER_FORMS["flash swf"]
    post = _post_with_body(f'文字<br /><script type="text/javascript" reload="1">{html.escape(script, quote=False)}</script>'
                           f'<br />{other}')
    assert post.content_text == "文字" and post.media_refs[-1] == f"player:{played}"
    assert all(ref.startswith("player:") for ref in post.media_refs)  # a bare name is a file on the site
    assert_safe(post.content_html)


@pytest.mark.parametrize("form", PLAYER_FORMS)
def test_the_beautifulsoup_port_links_players_as_the_engine_does(form):
    from benchmarks.bs4_discuz import parse_thread as parse_with_bs4

    html_page = _one_post_thread("").replace('id="postmessage_1">十二张图',
                                             f'id="postmessage_1">看这个<br />{PLAYER_FORMS[form][0]}<br />看完了')
    ctx = ParseContext(url=PLAYER_PAGE_URL, fetched_at=FETCHED_AT, noise=SITE_NOISE)
    page = thread(html_page, url=PLAYER_PAGE_URL)
    assert parse_with_bs4(html_page, ctx) == page and page.posts[0].media_refs[0].startswith("player:")


@pytest.mark.parametrize("body", [
    # A literal never closed, full of escaped quotes: a search that demanded the closing quote
    # tried again from each quote inside (46 s at 100 KB).
    '文字<script>x="' + '\\"' * 50_000 + "</script>",
    # One literal of many "<iframe": each attempt read to the literal's end (8 s).
    "<script>x='" + "<iframe " * 12_500 + "'</script>",
    # Many calls: each read every literal of the script (7 s at 300 KB).
    "<script>" + "AC_FL_RunContent('','')" * 13_000 + "</script>",
    # "&amp;" escaped 100,000 deep: one level undone a pass (about 30 s).
    '<embed src="http://v.example.com/&' + "amp;" * 100_000 + 'a.swf">',
    # 500 players nested, 6 sources each: every one read its whole subtree again (29 s).
    ("<object>" + '<param name="src" value="http://v.example.com/a.swf">' * 6) * 500 + "</object>" * 500,
])
def test_a_hostile_player_costs_its_page_no_more_than_its_size(body):
    started = time.monotonic()
    post = _post_with_body(body)
    assert time.monotonic() - started < 3.0
    assert len(post.media_refs) <= 1


def test_an_unclosed_string_in_a_player_script_hides_no_later_line():
    script = "<script>var broken = 'no end\n$('swf_a').innerHTML=AC_FL_RunContent('src', 'http://v.example.com/b.swf');</script>"
    assert _post_with_body(script).media_refs == ("player:http://v.example.com/b.swf",)
