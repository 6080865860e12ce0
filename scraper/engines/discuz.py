"""The Discuz! X engine: classify, and parse thread and board pages of Discuz X3.x forums.

Markup facts come from the Discuz templates (see the project's Discuz notes): viewthread.htm,
viewthread_node.htm, viewthread_node_body.htm, discuzcode.htm, forumdisplay_list.htm,
guide.htm and guide_list_row.htm.
Every selector and marker text is data at the top of this module. Nothing here does I/O:
functions take a parsed tree (clean.parse_html) and a ParseContext and return the records of
engines.base. The only exception they raise is ParseError.
"""

from __future__ import annotations

import base64
import html
import re
from bisect import bisect_left
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from scraper import clean
from scraper.clean import MarkupSelectors, NoiseRules, absolute_url, normalise_whitespace
from scraper.engines.base import (
    Attachment,
    BoardPage,
    BoardRow,
    ClassifiedInfo,
    PageKind,
    ParseContext,
    Poll,
    Post,
    PostStatus,
    Quote,
    SpecialThread,
    ThreadPage,
)
from scraper.errors import ParseError


# --- selectors and marker texts (data) ----------------------------------------------------
@dataclass(frozen=True)
class DiscuzSelectors:
    """CSS selectors for Discuz X3.x pages, default template."""

    # page kinds
    postlist: str = "div#postlist"
    post_table: str = 'table[id^="pid"]'  # inside postlist; id must be pid{digits}
    thread_list: str = "table#threadlisttableid"
    thread_rows: str = 'tbody[id^="normalthread_"], tbody[id^="stickthread_"]'
    # A board in picture mode (picstyle, as guests see it): the table keeps the sticky rows,
    # the others are tiles of ul#waterfall, with title, replies and author but no last post.
    picture_rows: str = "ul#waterfall > li"
    picture_title: str = "h3 a"
    picture_replies: str = "div.auth cite a"
    picture_author: str = 'div.auth > a[href*="uid="]'
    notice: str = "#messagetext"  # showmessage(): no permission, no such thread...
    login_box: str = "#messagelogin"  # showmessage() asking the visitor to log in
    # A login form; the header's quick-login form (#lsform) is on every page for guests.
    login_form: str = 'form[action*="mod=logging"][action*="action=login"]:not(#lsform)'
    # thread header
    subject: str = "#thread_subject"
    header_box: str = "td.pls div.hm"  # inside postlist: 查看: N | 回复: N, page 1 only
    header_counts: str = "span"  # inside header_box
    canonical: str = 'link[rel="canonical"]'
    breadcrumb: str = "#pt"
    breadcrumb_links: str = ".z a"  # inside breadcrumb
    # Links that name the thread's board by its number whatever the breadcrumb's URLs say: the
    # post buttons (发帖 #newspecial, 回复 #post_reply) of a board given an alias (forum-news-1.html).
    fid_links: str = 'a[href*="mod=post"][href*="fid="], a[onclick*="mod=post"][onclick*="fid="]'
    pager_bar: str = "#pgt"  # the bar above the posts; it holds the pager of a thread with pages
    pager: str = "div.pg"
    pager_total: str = "label span[title]"  # title="共 N 页"
    pager_current: str = "strong"
    pager_links: str = "a"
    # one post
    floor_link: str = 'a[id^="postnum"]'
    floor_label_any: str = "div.pi strong a"  # deleted floors print the label without an id
    author_links: tuple[str, ...] = (
        "div.authi a.xw1",  # authoronleft
        'div.authi a.xi2[href*="space"]',  # the default: in the post header
        'div.authi a[href*="uid="]',
        "div.authi a.xi2",  # javascript:; links of hidden identities
    )
    author_header: str = "div.pti div.authi"
    posted_at: str = 'em[id^="authorposton"]'
    posted_at_title: str = "span[title]"
    body: str = '[id^="postmessage_"]'  # td.t_f, or div.t_f on pay threads
    post_body_box: str = "div.pcb"
    locked: str = "div.locked"
    password_input: str = 'input[id^="postpw_"]'
    pay_button: str = "a.viewpay"
    signature: str = "div.sign"
    edit_note: str = "i.pstatus"
    quote: str = "div.quote"
    quote_block: str = "blockquote"
    quote_attribution: str = 'a[href*="findpost"]'
    # Page furniture inside a post body: "复制代码" buttons, "本帖隐藏的内容" headings,
    # guest notices, and the lock notices of hidden parts (recorded as a status instead).
    body_furniture: tuple[str, ...] = (
        'em[onclick*="copycode"]',
        "div.showhide > h4",
        "div.attach_nopermission",
        "div.locked",
    )
    # Attachment listings (file name, size, download count) kept in the HTML but not in the
    # text: the attachments are their own field.
    text_furniture: tuple[str, ...] = ("dl.tattl",)
    # The lines of a [code] block (indented with &nbsp;): the text keeps their white space.
    code_lines: str = "div.blockcode li"
    # [flash], [media] and [audio] players (function_discuzcode.php): a script that writes the
    # player (AC_FL_RunContent), or an object, embed, video or audio holding the file; an
    # iframe in a post written in HTML. Layer 1 drops the scripts, the sanitiser the rest.
    players: str = "script, object, embed, iframe, video, audio"
    # Inside a player (or the player itself): the elements that name its file.
    player_sources: str = "object[data], param[value], embed[src], iframe[src], video[src], audio[src], source[src]"
    # The link the engine puts where a player stood (clean.PLAYER_LINK_MARK).
    player_links: str = f'a[{clean.PLAYER_LINK_ATTRIBUTE}="{clean.PLAYER_LINK_VALUE}"]'
    unplaced_attachments: str = "div.pattl"
    # With many images and imagelistthumb on, div.pattl holds them all in a list hidden until
    # its script builds the thumbnails: hidden by design, not noise.
    hidden_image_list: str = 'div[id^="imagelist_"]:not([id^="imagelistthumb_"])'
    image_tip_names: str = 'div[id^="aimg_"][id$="_menu"]'  # hidden tip with the file name
    attachment_links: str = 'a[href*="mod=attachment"]'
    # A reply's own title (viewthread_node_body.htm): the opening post's is never printed there.
    reply_subject: str = "div.pcb > h2"
    # parts of the opening post outside its body (page 1 only)
    poll: str = "form#poll"  # viewthread_poll.htm
    poll_summary: str = "div.pinf"  # 多选投票: ( 最多可选 N 项 ) , 投票后结果可见, 共有 N 人参与投票
    poll_countdown: str = "p.ptmr"  # 距结束还有: ... or 投票已经结束
    poll_rows: str = "div.pcht tr"  # an option's row (td.pvt), then its results row unless hidden
    poll_option: str = "td.pvt"
    poll_votes: str = "em"  # in the results row: "50.00% <em>(6)</em>"
    # An image poll lays its options out as cells instead: text, then "N票" under the bar.
    poll_image_options: str = 'td[id^="polloption_"]'
    poll_image_text: str = "p.xi2"
    poll_image_votes: str = "p.imgfc span.z"
    classified_box: str = "div.typeoption"  # 分类信息; a sort with its own template has none
    classified: str = "table.cgtl"  # in the box; an expired sort prints a notice there instead
    classified_caption: str = "caption"
    classified_rows: str = "tr"
    classified_title: str = "th"
    classified_value: str = "td"
    # Reward, activity, debate and trade threads (viewthread_reward/_activity/_debate/_trade.htm)
    # print their own parts beside the opening post's body, in div.pcbs (div.t_fsz in other threads).
    special_box: str = "div.pcbs"
    reward: str = "div.rwd > div.z"  # 悬赏 <cite>20</cite> 金钱 <em>已解决</em>
    reward_price: str = "cite"
    reward_state: str = "em"
    reward_best: str = "div.rwdbst"  # 最佳答案: its author, and a link to the reply
    reward_best_author: str = "div.psta a.xw1"
    reward_best_link: str = 'a[onclick*="goto=findpost"]'  # window.open('forum.php?...&pid=N')
    activity: str = "div.act div.spi"  # its details, as dt (label) and dd (value) pairs
    defined_terms: str = "dl > dt, dl > dd"  # an activity's details, an item's terms
    debate_verdict: str = "div#umpirepoint p.dbresult label"  # 正方 获胜, 平局
    debate_umpire_point: str = "div#umpirepoint p.umpirepoint"  # <strong>裁判观点</strong>: ...
    debate_best_debater: str = "div#umpirepoint p.bestdebater"
    debate_schedule: str = "p.dtm:not(.pns)"  # 结束时间: ... 裁判: ...
    debate_sides: str = "div.ds"
    debate_points: tuple[str, str] = ("td.si_1 div.point", "td.si_2 div.point")  # <strong>正方观点 (N)</strong><p>
    debate_debaters: tuple[str, str] = ("div.dr td.sr_1 h5", "div.dr td.sr_2 h5")  # 辩手:N ( 加入 )
    trade_goods: str = "div.trdb"  # one item on sale, or the notice that it was removed
    trade_name: str = "h4 a"
    trade_price: str = "div.mtn"  # <strong>199</strong> 元, and a struck-through cost price
    trade_cost_price: str = "p.xg1"
    # board rows
    row_title: str = "th a.xst"
    row_cells_by: str = "td.by"
    row_cite: str = "cite"
    row_replies: str = "td.num a"
    row_views: str = "td.num em"
    row_last_post: str = "em"
    board_heading: str = "div.bm_h h1 a, h1.xs2 a"
    # the guide (forum.php?mod=guide, guide.htm + guide_list_row.htm): no threadlisttableid;
    # each row's first td.by holds a link to the thread's board instead of the author
    guide_page: str = "body.pg_guide"
    guide_list: str = "div#threadlist"
    guide_board_link: str = "a"  # a tag name: the board link is a direct child of the first td.by


SELECTORS = DiscuzSelectors()

# Layer 1 of the noise filters, for clean.strip_markup_noise and clean.clean_plain_body.
MARKUP_NOISE = MarkupSelectors(jammer="font.jammer", jammer_start_tag='<font class="jammer">',
                               hidden_start_tag='<span style="display:none">',
                               ad_slot='div[class*="a_"]', ad_class_prefix="a_")

# Default floor names ($postno, install_var.php); admins may rename them.
FLOOR_NAMES = {"楼主": 1, "沙发": 2, "板凳": 3, "地板": 4}
HOT_REPLY_LABELS = frozenset({"推荐"})  # hot replies pulled to the top of page 1 carry no number
# A reply stuck to the top of page 1 (置顶回复, X3.2+) is labelled '来自 45#': shown again there,
# out of the page's order; its place is on its own page.
_STUCK_REPLY_LABEL = re.compile(r"^来自\s*\d+\s*#?$")
DEFAULT_POSTS_PER_PAGE = 10  # Discuz's setting postperpage, used only when nothing else tells
POSTED_PREFIX = "发表于"
# showmessage() texts that mean "no such thread/board" (thread_nonexistence,
# forum_nonexistence in lang_message.php), simplified and traditional script.
MISSING_NOTICE_MARKS = ("主题不存在", "主題不存在", "版块不存在", "版塊不存在")
BLOCKED_NOTICE_MARK = "屏蔽"  # 作者被禁止或删除 内容自动屏蔽 / 该帖被管理员或版主屏蔽
# The lock notice Discuz prints ABOVE credits-gated content the viewer may read
# (tpl_hide_credits, lang post_hide_credits "以下内容需要积分高于 N 才可浏览"), simplified and
# traditional script: the content follows it, so the post hides nothing. A viewer short of the
# credits gets "本帖隐藏的内容需要积分高于 N 才可浏览" instead, and no content.
CREDITS_SHOWN_MARKS = ("以下内容需要积分高于", "以下內容需要積分高於")
THREAD_STARTER_MARKS = ("楼主", "|")  # printed next to the author in the post header

# The poll's printed texts (lang_template.php), simplified and traditional script.
POLL_MULTIPLE_MARKS = ("多选", "多選")
POLL_RESULTS_AFTER_VOTE_MARKS = ("投票后结果可见", "投票後結果可見")
POLL_ENDED_MARKS = ("投票已经结束", "投票已經結束")
POLL_COUNTDOWN_PREFIXES = ("距结束还有", "距結束還有")
_POLL_VOTERS = re.compile(r"共有\s*([0-9]+)\s*人[参參][与與]投票")
_POLL_MAX_CHOICES = re.compile(r"最多可[选選]\s*([0-9]+)\s*[项項]")
_POLL_OPTION_NUMBER = re.compile(r"^[0-9]+\.\s*")  # "1. &nbsp;选项" : the number is the template's
_POLL_ROW_VOTES = re.compile(r"^\(([0-9]+)\)$")
_POLL_IMAGE_VOTES = re.compile(r"^([0-9]+)\s*票")
CLASSIFIED_TITLE_ENDS = ":："  # "<th>价格:</th>"

# Page-kind markers. Discuz's antitheft script builds its URL from 1-3 character pieces, so
# "_dsign" itself may be split; the getName.caller helper it always defines is not.
ANTISCRAPE_MARKERS = ("_dsign", "getName.caller")
CHALLENGE_MARKERS = ("cf-chl", "_cf_chl_opt", "cf_chl_")  # Cloudflare challenge, any status
CHALLENGE_HINTS = ("Just a moment", "challenge-platform", "cf-browser-verification", "Checking your browser")
CHALLENGE_STATUSES = frozenset({403, 429, 503})
NEAR_EMPTY_TEXT_CHARS = 200  # visible text of a page that is "only scripts"
_NO_VISIBLE_TEXT_TAGS = frozenset({"script", "style", "noscript", "template", "title"})

# Images that are page furniture, not content: placeholders, smilies, icons.
FURNITURE_IMAGE_PATHS = ("static/image/", "/smiley/")

# A player's file in a post's media references: apart from a link to the same file, so the
# archive knows which references a player gave (storage.archive knows the prefix too).
PLAYER_REF_PREFIX = "player:"
# An object's <param>s that name the file: Windows Media's url, RealPlayer's and QuickTime's
# src, Flash's movie.
_PLAYER_FILE_PARAMS = frozenset({"url", "src", "movie", "filename"})
# A JavaScript string literal, either quote, with its escapes, and its closing quote, which an
# unclosed one lacks: it then ends at its line's end, where the search goes on (a pattern that
# demanded the quote would try again from every quote inside, in time square to the script).
_JS_STRING = re.compile(r"'((?:[^'\\\n]|\\.)*)('?)" r'|"((?:[^"\\\n]|\\.)*)("?)', re.S)
_JS_ESCAPE = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|(.))", re.S)
_JS_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_FLASH_PLAYER_CALL = re.compile(r"AC_FL_RunContent\s*\(")
# Discuz's own players take the file in their flashvars: the flv player as file=, the mp3
# player as soundFile=; the src is then the player, page furniture.
_FLASHVARS_FILE_NAMES = ("file", "soundfile")
# parseflv's player for phones: "<iframe ... src='URL' ...>" in a string of the script.
# [^<>]: an attempt stops at the next tag, so a string of many "<iframe" is read in one pass.
_IFRAME_SOURCE = re.compile(r"""<iframe\b[^<>]*?\ssrc\s*=\s*(?:'([^'<>]*)'|"([^"<>]*)"|([^\s<>'"]+))""", re.I)

_PID_ID = re.compile(r"pid([0-9]{1,18})")  # a post id fits BIGINT, as Discuz writes it
_UID_IN_HREF = re.compile(r"(?:[?&]uid=|space-uid-)(\d+)")
_AID_ID = re.compile(r"aid(\d+)")
_PAGES_TOTAL = re.compile(r"共\s*(\d+)\s*页")
_PRINTED_COUNT = re.compile(r"(\d+(?:\.\d+)?)\s*(万?)")  # 25031, or 4.5万 in user stats
_DIGITS = re.compile(r"\d+")
_THREAD_FILE = re.compile(r"(?:^|/)thread-(\d+)-(\d+)-(\d+)\.html$")
_BOARD_FILE = re.compile(r"(?:^|/)forum-(\d+)-(\d+)\.html$")
# A board given an alias (Discuz's forumkeys): forum-{alias}-{page}.html, forumdisplay&fid={alias}.
_BOARD_ALIAS_FILE = re.compile(r"(?:^|/)forum-[A-Za-z_]\w*-\d+\.html$")
_FID_PARAM = re.compile(r"[?&;]fid=(\d+)")  # also inside onclick="showWindow('newthread', 'forum.php?...&fid=13')"
_BOARD_SUMMARY = re.compile(r"forum_(\d+)")
GUIDE_NEW_THREADS = "newthread"  # the guide view listing every board's threads, newest first
_QUOTE_ATTRIBUTION = (
    re.compile(r"^(?P<author>.*?)\s*发表于\s*(?P<time>.+)$"),  # X3.x
    re.compile(r"^原帖由\s*(?P<author>.*?)\s*[于於]\s*(?P<time>.+?)\s*[发發]表$"),  # Discuz 6/7 posts kept in X
)


# --- times --------------------------------------------------------------------------------
# The hour may be a 12-hour one with AM/PM after it (a site whose timeformat is 'h:i A').
_ABSOLUTE_TIME = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"(?:\s*([AaPp][Mm])\b)?"
)
_UTC_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_DAY_CLOCK = re.compile(r"^(今天|昨天|前天)\s*(\d{1,2}):(\d{2})(?:\s*([AaPp][Mm]))?$")
_DAYS_BACK = {"今天": 0, "昨天": 1, "前天": 2}
# dgmdate()'s relative forms, as (pattern, how far back from the fetch time).
_RELATIVE_TIMES = (
    (re.compile(r"^刚刚$"), lambda m: timedelta(0)),
    (re.compile(r"^(\d+)\s*秒前$"), lambda m: timedelta(seconds=int(m[1]))),
    (re.compile(r"^(\d+)\s*分钟前$"), lambda m: timedelta(minutes=int(m[1]))),
    (re.compile(r"^半小时前$"), lambda m: timedelta(minutes=30)),
    (re.compile(r"^(\d+)\s*小时前$"), lambda m: timedelta(hours=int(m[1]))),
    (re.compile(r"^(\d+)\s*天前$"), lambda m: timedelta(days=int(m[1]))),
)


def site_timezone(utc_offset: str) -> timezone:
    """A fixed-offset timezone from '+08:00' (also '+0800', 'Z', 'UTC')."""
    text = (utc_offset or "").strip()
    if text.upper() in ("Z", "UTC"):
        return timezone.utc
    match = _UTC_OFFSET.match(text)
    if not match:
        raise ParseError(f"utc_offset {utc_offset!r} is not of the form +HH:MM")
    delta = timedelta(hours=int(match[2]), minutes=int(match[3]))
    if delta >= timedelta(hours=24):
        raise ParseError(f"utc_offset {utc_offset!r} is out of range")
    return timezone(-delta if match[1] == "-" else delta)


def fetch_time(fetched_at: str | None, tz: timezone) -> datetime | None:
    """ctx.fetched_at as an aware datetime in the site's timezone (naive means site-local)."""
    if not fetched_at:
        return None
    try:
        moment = datetime.fromisoformat(fetched_at.strip())
    except ValueError as exc:
        raise ParseError(f"fetched_at {fetched_at!r} is not ISO 8601") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(tz).replace(microsecond=0)


def _hour_24(hour: int, meridiem: str | None) -> int:
    """The hour on a 24-hour clock: 12 AM is 0, 1 PM is 13; an hour outside 1-12 is one already."""
    if meridiem is None or not 1 <= hour <= 12:
        return hour
    return hour % 12 + (12 if meridiem.lower() == "pm" else 0)


def parse_absolute_time(text: str, tz: timezone) -> str | None:
    """'2012-3-12 14:40:59' or '2018-11-1 23:44' (anywhere in `text`) -> ISO 8601 in `tz`."""
    match = _ABSOLUTE_TIME.search(text or "")
    if not match:
        return None
    year, month, day, hour, minute = map(int, match.group(1, 2, 3, 4, 5))
    try:
        moment = datetime(year, month, day, _hour_24(hour, match[7]), minute, int(match[6] or 0), tzinfo=tz)
    except ValueError:  # 2012-13-40: printed, but no real time
        return None
    return moment.isoformat(timespec="seconds")


def parse_post_time(text: str, tz: timezone, fetched: datetime | None) -> str | None:
    """A Discuz time as printed: absolute, or relative (刚刚, N 分钟前, 昨天 HH:MM, N 天前 ...)
    resolved against the fetch time. None when it cannot be read or resolved."""
    text = normalise_whitespace(text or "")
    absolute = parse_absolute_time(text, tz)
    if absolute or fetched is None:
        return absolute
    match = _DAY_CLOCK.match(text)
    if match:
        day = fetched - timedelta(days=_DAYS_BACK[match[1]])
        try:
            moment = day.replace(hour=_hour_24(int(match[2]), match[4]), minute=int(match[3]), second=0)
        except ValueError:
            return None
        return moment.isoformat(timespec="seconds")
    for pattern, back in _RELATIVE_TIMES:
        match = pattern.match(text)
        if match:
            try:
                return (fetched - back(match)).isoformat(timespec="seconds")
            except OverflowError:
                return None
    return None


# --- URLs -----------------------------------------------------------------------------------
def _query(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    if not parts.query:  # a rewritten URL (thread-1-1-1.html): parse_qs would find nothing, slowly
        return parts.path, {}
    values = {key: vals[0] for key, vals in parse_qs(parts.query, keep_blank_values=True).items()}
    return parts.path, values


# Ids and page numbers Discuz writes fit in 18 digits (MySQL's BIGINT). A longer run of digits
# in a link a user wrote names nothing, and int() refuses one past 4,300 digits: the whole
# page's parse would fail on one post's link.
MAX_NUMBER_DIGITS = 18
_BEYOND_SQLITE_INTEGER = 2.0**63


def ascii_number(value: str | None) -> int | None:
    """The number a string of at most MAX_NUMBER_DIGITS ASCII digits writes, else None.
    str.isdigit() also admits '²' and other digits int() refuses."""
    if value and len(value) <= MAX_NUMBER_DIGITS and value.isascii() and value.isdigit():
        return int(value)
    return None


def _page_param(value: str | None) -> int:
    # Discuz reads page with intval() and clamps to 1.
    number = ascii_number(value)
    return max(1, number) if number is not None else 1


def _is_forum_php(path: str) -> bool:
    return path == "" or path.endswith("forum.php")


def thread_ref(url: str) -> tuple[int, int] | None:
    """(tid, page) of a thread page URL: thread-{tid}-{page}-{x}.html or
    forum.php?mod=viewthread&tid=&page= (page 1 by default; extra, ordertype, authorid
    ignored). None for anything else, including the printable view."""
    try:
        path, query = _query(url)
    except ValueError:
        return None
    match = _THREAD_FILE.search(path)
    if match and (tid := ascii_number(match[1]) or 0) > 0:
        return tid, _page_param(match[2])
    if _is_forum_php(path) and query.get("mod") == "viewthread" and "action" not in query:
        tid = query.get("tid", "")
        if (ascii_number(tid) or 0) > 0:
            return int(tid), _page_param(query.get("page"))
    return None


def board_ref(url: str) -> tuple[int, int] | None:
    """(fid, page) of a board URL: forum-{fid}-{page}.html or forum.php?mod=forumdisplay&fid=&page=."""
    try:
        path, query = _query(url)
    except ValueError:
        return None
    match = _BOARD_FILE.search(path)
    if match and (fid := ascii_number(match[1]) or 0) > 0:
        return fid, _page_param(match[2])
    if _is_forum_php(path) and query.get("mod") == "forumdisplay":
        fid = query.get("fid", "")
        if (ascii_number(fid) or 0) > 0:
            return int(fid), _page_param(query.get("page"))
    return None


def guide_ref(url: str) -> tuple[str, int] | None:
    """(view, page) of a guide URL: forum.php?mod=guide&view=&page= (Discuz's default view
    is 'hot')."""
    try:
        path, query = _query(url)
    except ValueError:
        return None
    if _is_forum_php(path) and query.get("mod") == "guide":
        return query.get("view") or "hot", _page_param(query.get("page"))
    return None


def _with_slash(base_url: str) -> str:
    return base_url if base_url.endswith("/") else base_url + "/"


def thread_url(base_url: str, tid: int, page: int = 1) -> str:
    """The rewritten URL of a thread page: {base}thread-{tid}-{page}-1.html."""
    return f"{_with_slash(base_url)}thread-{tid}-{page}-1.html"


def board_url(base_url: str, fid: int, page: int = 1) -> str:
    """The rewritten URL of a board page: {base}forum-{fid}-{page}.html."""
    return f"{_with_slash(base_url)}forum-{fid}-{page}.html"


def guide_url(base_url: str, page: int = 1) -> str:
    """Page `page` of the new-threads guide (it has no rewritten form)."""
    return f"{_with_slash(base_url)}forum.php?mod=guide&view={GUIDE_NEW_THREADS}&page={page}"


def url_kind(url: str) -> PageKind:
    """THREAD, BOARD or GUIDE from the shape of a URL, else UNKNOWN."""
    if thread_ref(url):
        return PageKind.THREAD
    if board_ref(url):
        return PageKind.BOARD
    if guide_ref(url):
        return PageKind.GUIDE
    return PageKind.UNKNOWN


def _tid_from_href(href: str) -> int | None:
    ref = thread_ref(href)
    if ref:
        return ref[0]
    try:
        ptid = _query(href)[1].get("ptid", "")
    except ValueError:
        return None
    return int(ptid) if (ascii_number(ptid) or 0) > 0 else None


# --- small readers --------------------------------------------------------------------------
def _text(node: LexborNode | None) -> str:
    return normalise_whitespace(node.text()) if node is not None else ""


def _classes(node: LexborNode) -> list[str]:
    return (node.attributes.get("class") or "").split()


def _count(node: LexborNode | None) -> int | None:
    """A printed count: '25031', '4万' with the exact number in @title, or nothing."""
    if node is None:
        return None
    title = ascii_number((node.attributes.get("title") or "").strip())
    if title is not None:
        return title
    return printed_count(_text(node))


def printed_count(text: str) -> int | None:
    """The number a count's text prints ('25031', '25,031', '4.5万'), or None. A count past
    what SQLite stores is no count a forum prints."""
    match = _PRINTED_COUNT.fullmatch(text.replace(",", ""))
    if not match:
        return None
    digits, unit = match[1], 10000 if match[2] else 1
    if "." in digits:
        value = float(digits) * unit  # inf past 308 digits
        return int(value) if value < _BEYOND_SQLITE_INTEGER else None
    if len(digits) > MAX_NUMBER_DIGITS:
        return None
    number = int(digits) * unit
    return number if number < _BEYOND_SQLITE_INTEGER else None


def _matching_ids(root: LexborNode, selector: str) -> frozenset[int]:
    """The nodes under `root` that match `selector`, by mem_id, for _inside."""
    return frozenset(match.mem_id for match in root.css(selector))


def _inside(node: LexborNode, root: LexborNode, ancestor_ids: Container[int]) -> bool:
    """True when an ancestor of `node` below `root` is one of `ancestor_ids` (_matching_ids).
    Not css_matches on each ancestor: it is true of a node when anything inside it matches,
    so a quote wrapped in <font> made the wrapper count as a quote too."""
    parent = node.parent
    while parent is not None and parent.mem_id != root.mem_id:
        if parent.mem_id in ancestor_ids:
            return True
        parent = parent.parent
    return False


def _remove_following_breaks(node: LexborNode, limit: int) -> None:
    """Remove up to `limit` <br> right after `node` (white space between them does not count)."""
    sibling = node.next
    while sibling is not None and limit:
        following = sibling.next
        if sibling.is_element_node and sibling.tag == "br":
            sibling.decompose()
            limit -= 1
        elif not (sibling.is_comment_node or (sibling.is_text_node and not (sibling.text_content or "").strip())):
            break
        sibling = following


# --- page kind ------------------------------------------------------------------------------
def _post_tables(container: LexborNode) -> list[LexborNode]:
    return [t for t in container.css(SELECTORS.post_table) if _PID_ID.fullmatch(t.id or "")]


def _visible_text_chars(tree: LexborHTMLParser) -> int:
    total = 0
    for node in tree.root.traverse(include_text=True):
        if node.is_text_node and (node.parent is None or node.parent.tag not in _NO_VISIBLE_TEXT_TAGS):
            total += len((node.text_content or "").strip())
            if total > NEAR_EMPTY_TEXT_CHARS:
                break
    return total


def page_kind(tree: LexborHTMLParser, status: int = 200) -> PageKind:
    """Classify a page: THREAD, BOARD, GUIDE, MISSING, NOTICE, LOGIN, ANTISCRAPE, CHALLENGE or UNKNOWN."""
    try:
        return _page_kind(tree, status)
    except Exception:  # classification must never stop a crawl; an odd tree is just unknown
        return PageKind.UNKNOWN


def _page_kind(tree: LexborHTMLParser, status: int) -> PageKind:
    s = SELECTORS
    postlist = tree.css_first(s.postlist)
    if postlist is not None and _post_tables(postlist):
        return PageKind.THREAD
    if tree.css_first(s.guide_page) is not None or _has_board_column(tree):
        return PageKind.GUIDE
    if (tree.css_first(s.thread_list) is not None or tree.css_first(s.thread_rows) is not None
            or tree.css_first(s.picture_rows) is not None):
        return PageKind.BOARD
    if tree.css_first(s.login_box) is not None:  # before NOTICE: a login wall shows both
        return PageKind.LOGIN
    notice = tree.css_first(s.notice)
    if notice is not None:
        message = notice.text()
        return PageKind.MISSING if any(mark in message for mark in MISSING_NOTICE_MARKS) else PageKind.NOTICE
    if postlist is None and tree.css_first(s.login_form) is not None:
        return PageKind.LOGIN
    scripts = [script.text() for script in tree.css("script")]
    only_scripts = bool(scripts) and _visible_text_chars(tree) <= NEAR_EMPTY_TEXT_CHARS
    if postlist is None and only_scripts and any(m in js for js in scripts for m in ANTISCRAPE_MARKERS):
        return PageKind.ANTISCRAPE
    page = tree.html or ""
    if any(marker in page for marker in CHALLENGE_MARKERS):
        return PageKind.CHALLENGE
    if status in CHALLENGE_STATUSES and (only_scripts or any(hint in page for hint in CHALLENGE_HINTS)):
        return PageKind.CHALLENGE
    return PageKind.UNKNOWN


def _has_board_column(tree: LexborHTMLParser) -> bool:
    """A thread list whose rows name their board: a guide, even where its body class differs."""
    if tree.css_first(SELECTORS.thread_list) is not None:
        return False
    row = tree.css_first(SELECTORS.thread_rows)
    first_by = row.css_first(SELECTORS.row_cells_by) if row is not None else None
    return first_by is not None and _board_link(first_by) is not None


def _board_link(cell: LexborNode) -> LexborNode | None:
    # The guide's board column: a direct link to forumdisplay (the author column has cite > a).
    for child in cell.iter():
        href = child.attributes.get("href") or "" if child.tag == SELECTORS.guide_board_link else ""
        if href and (board_ref(href) or _is_board_alias(href)):
            return child
    return None


# --- pager, header, breadcrumb ----------------------------------------------------------------
def _find_pager(tree: LexborHTMLParser) -> LexborNode | None:
    # The first div.pg that shows a current page or a total; comment pagers inside posts
    # have only a "下一页" link. The bar above the posts is looked in first: a query of the
    # whole page walks all of it, and that bar comes before nearly everything.
    bar = tree.css_first(SELECTORS.pager_bar)
    for scope in (bar, tree) if bar is not None else (tree,):
        for pager in scope.css(SELECTORS.pager):
            if pager.css_first(SELECTORS.pager_current) is not None or pager.css_first(SELECTORS.pager_total):
                return pager
    return None


def read_pages(tree: LexborHTMLParser, url_page: int | None) -> tuple[int, int]:
    """(current page, page count) from the pager; a page without a pager is page 1 of 1."""
    pager = _find_pager(tree)
    if pager is None:
        return 1, 1
    numbers: list[int] = []
    total = pager.css_first(SELECTORS.pager_total)
    if total is not None:
        match = _PAGES_TOTAL.search(total.attributes.get("title") or "")
        if match:
            numbers.append(int(match[1]))
    for link in pager.css(SELECTORS.pager_links):
        numbers.extend(int(n) for n in _DIGITS.findall(link.text()))
    current_node = pager.css_first(SELECTORS.pager_current)
    current_digits = _DIGITS.findall(current_node.text()) if current_node is not None else []
    current = int(current_digits[0]) if current_digits else (url_page or 1)
    current = max(1, current)
    return current, max([current, *numbers])


def _header_counts(postlist: LexborNode) -> tuple[int | None, int | None]:
    """(replies, views) from the page-1 header, read by their labels 回复 and 查看."""
    label = ""
    views = replies = None
    unlabelled: list[int | None] = []
    # The header is the first such box: css_first stops there, css() would walk every post.
    box = postlist.css_first(SELECTORS.header_box)
    for span in box.css(SELECTORS.header_counts) if box is not None else ():
        classes = _classes(span)
        if "xg1" in classes:
            label = _text(span)
        elif "xi1" in classes:
            value = _count(span)
            if "查看" in label:
                views = value
            elif "回复" in label:
                replies = value
            else:
                unlabelled.append(value)
            label = ""
    if views is None and replies is None and len(unlabelled) >= 2:
        views, replies = unlabelled[0], unlabelled[1]  # the template prints views first
    return replies, views


def _breadcrumb_board(tree: LexborHTMLParser) -> tuple[str | None, int | None]:
    """(name, fid) of the deepest board linked in the breadcrumb. A board linked by its alias
    takes its number from the page's post buttons, which name it by number."""
    found: tuple[str | None, int | None] = (None, None)
    breadcrumb = tree.css_first(SELECTORS.breadcrumb)  # near the top: found without a walk of the page
    for link in breadcrumb.css(SELECTORS.breadcrumb_links) if breadcrumb is not None else ():
        href = link.attributes.get("href") or ""
        ref = board_ref(href)
        if ref:
            found = (_text(link) or None, ref[0])
        elif _is_board_alias(href):
            found = (_text(link) or None, None)
    if found[0] is not None and found[1] is None:
        for button in tree.css(SELECTORS.fid_links):
            attributes = button.attributes
            match = _FID_PARAM.search(f'{attributes.get("href") or ""} {attributes.get("onclick") or ""}')
            if match and int(match[1]) > 0:
                return found[0], int(match[1])
    return found


def _is_board_alias(url: str) -> bool:
    try:
        path, query = _query(url)
    except ValueError:
        return False
    if _BOARD_ALIAS_FILE.search(path):
        return True
    fid = query.get("fid", "")
    return _is_forum_php(path) and query.get("mod") == "forumdisplay" and bool(fid) and ascii_number(fid) is None


def _thread_title(tree: LexborHTMLParser) -> str:
    title = _text(tree.css_first(SELECTORS.subject))
    if title:
        return title
    # "{subject} - {board} - {site} - Powered by Discuz!"
    head_title = _text(tree.css_first("title"))
    return head_title.split(" - ")[0].strip() if " - " in head_title else ""


def _thread_tid(ctx: ParseContext, canonical: str | None, tables: list[LexborNode]) -> int | None:
    for href in (canonical, ctx.url):
        if href:
            ref = thread_ref(href)
            if ref:
                return ref[0]
    for table in tables:
        link = table.css_first(SELECTORS.floor_link)
        tid = _tid_from_href(link.attributes.get("href") or "") if link is not None else None
        if tid:
            return tid
    return None


# --- floors -----------------------------------------------------------------------------------
def floor_number(label: str) -> int | None:
    """The floor a printed label names: 楼主/沙发/板凳/地板, '5#', '来自 5#'; None otherwise."""
    label = normalise_whitespace(label)
    if label in FLOOR_NAMES:
        return FLOOR_NAMES[label]
    digits = _DIGITS.findall(label)
    number = int(digits[-1]) if digits and len(digits[-1]) <= MAX_NUMBER_DIGITS else 0
    return number if number >= 1 else None  # floors count from 1


def _shown_again(label: str) -> bool:
    """A post repeated at the top of page 1 from its own place: a hot reply or a stuck one."""
    return label in HOT_REPLY_LABELS or _STUCK_REPLY_LABEL.match(normalise_whitespace(label)) is not None


def assign_floors(labels: list[str], page: int, page_count: int) -> list[int | None]:
    """Floors of the posts of one page, in page order.

    A floor is read from its label. Posts shown again at the top of page 1 (hot replies,
    推荐, and stuck ones, 来自 N#) have none there. A label that names no
    number (an admin renamed 沙发, say) takes its number from the nearest readable floor on
    the page, or, when none is readable, from its position: (page - 1) * posts per page,
    where posts per page is this page's count unless it is the last page.
    """
    floors = [None if _shown_again(label) else floor_number(label) for label in labels]
    regular = [i for i, label in enumerate(labels) if not _shown_again(label)]
    known = [(rank, floors[i]) for rank, i in enumerate(regular) if floors[i] is not None]
    per_page = len(regular) if page < page_count else DEFAULT_POSTS_PER_PAGE
    for rank, i in enumerate(regular):
        if floors[i] is not None:
            continue
        by_neighbour = None
        if known:
            near_rank, near_floor = min(known, key=lambda item: abs(item[0] - rank))
            by_neighbour = near_floor + (rank - near_rank)
        # A neighbour out of order (floor 1 printed after others) would count below 1.
        floors[i] = by_neighbour if by_neighbour and by_neighbour >= 1 else (page - 1) * per_page + rank + 1
    return floors


# --- one post ---------------------------------------------------------------------------------
@dataclass
class _PostParts:
    status: PostStatus
    content_text: str = ""
    content_html: str = ""
    quotes: list[Quote] | None = None
    edit_note: str | None = None
    attachments: list[Attachment] | None = None
    noise: dict[str, int] | None = None


def _uid(href: str | None) -> int | None:
    match = _UID_IN_HREF.search(href or "")
    return ascii_number(match[1]) if match else None


def _author(table: LexborNode, *, first_link_may_match: bool = True) -> tuple[str | None, int | None]:
    selectors = SELECTORS.author_links if first_link_may_match else SELECTORS.author_links[1:]
    for selector in selectors:
        # The first link nearly always names the author: css_first stops there, where css()
        # walks the whole post, its body included.
        first = table.css_first(selector)
        if first is None:
            continue
        name = _text(first)
        if name:
            return name, _uid(first.attrs.get("href"))
        for link in table.css(selector):  # the first is empty (an avatar link): a later one
            name = _text(link)
            if name:
                return name, _uid(link.attrs.get("href"))
    # Anonymous posts and guests: the name stands as bare text before the time.
    header = table.css_first(SELECTORS.author_header)
    if header is None:
        return None, None
    pieces = []
    for child in header.iter(include_text=True):
        if child.is_element_node and child.css_matches(SELECTORS.posted_at):
            break
        if child.is_text_node:
            pieces.append(child.text_content or "")
    words = [w for w in normalise_whitespace(" ".join(pieces)).split(" ") if w and w not in THREAD_STARTER_MARKS]
    return (" ".join(words) or None), None


def _posted_at(table: LexborNode, tz: timezone, fetched: datetime | None) -> tuple[str | None, str]:
    em = table.css_first(SELECTORS.posted_at)
    if em is None:
        return None, ""
    raw = _text(em)
    if raw.startswith(POSTED_PREFIX):
        raw = raw[len(POSTED_PREFIX) :].strip()
    # Most posts print the time as the em's only text: no child but text (iter() skips it)
    # to query for a title.
    titled = em.css_first(SELECTORS.posted_at_title) if next(em.iter(), None) is not None else None
    if titled is not None:
        exact = parse_absolute_time(titled.attributes.get("title") or "", tz)
        if exact:
            return exact, raw
    return parse_post_time(raw, tz, fetched), raw


def _image_names(table: LexborNode) -> dict[str, str]:
    """aid -> file name from the hidden tips next to inline images (read before layer 1
    removes them as hidden elements)."""
    names = {}
    for tip in table.css(SELECTORS.image_tip_names):
        aid = (tip.id or "")[len("aimg_") : -len("_menu")]
        name = _text(tip.css_first("strong"))
        if aid and name:
            names[aid] = name
    return names


def _is_web_url(url: str | None) -> bool:
    return bool(url) and url.lower().startswith(("http://", "https://"))


def _is_furniture_image(img: LexborNode, url: str) -> bool:
    attributes = img.attributes
    return "smilieid" in attributes or "smilie" in _classes(img) or any(p in url for p in FURNITURE_IMAGE_PATHS)


def _attachments(nodes: list[LexborNode], base_url: str, names: dict[str, str]) -> list[Attachment]:
    found: dict[tuple[str, str], Attachment] = {}
    for node in nodes:
        images = node.css("img")
        quotes = _matching_ids(node, SELECTORS.quote) if images else frozenset()
        for img in images:
            if _inside(img, node, quotes):  # the quoted post's image, not this post's
                continue
            attributes = img.attributes
            source = next((attributes[a] for a in clean.IMAGE_SOURCE_ATTRIBUTES if attributes.get(a)), None)
            url = absolute_url(source, base_url)
            if not _is_web_url(url) or _is_furniture_image(img, url):
                continue
            aid = (attributes.get("aid") or "").strip() or None
            name = names.get(aid or "") or attributes.get("alt") or attributes.get("title") or None
            found.setdefault(("aid", aid) if aid else ("url", url), Attachment(url=url, name=name, aid=aid))
        for link in node.css(SELECTORS.attachment_links):
            url = absolute_url(link.attributes.get("href"), base_url)
            if not _is_web_url(url):
                continue
            match = _AID_ID.fullmatch(link.id or "")
            aid = match[1] if match else None
            name = _text(link) or None
            key = ("aid", aid) if aid else ("url", url)
            if key in found:  # the link of an image already found: it only adds the file name
                if not found[key].name and name:
                    found[key] = replace(found[key], name=name)
            else:
                found[key] = Attachment(url=url, name=name, aid=aid, is_image=False)
    return list(found.values())


def _edit_note(body: LexborNode) -> str | None:
    quotes = _matching_ids(body, SELECTORS.quote)
    for note in body.css(SELECTORS.edit_note):
        if _inside(note, body, quotes):
            continue
        text = _text(note) or None
        _remove_following_breaks(note, 2)  # the template follows it with <br /><br />
        note.decompose()
        return text
    return None


def _split_attribution(text: str) -> tuple[str | None, str | None]:
    for pattern in _QUOTE_ATTRIBUTION:
        match = pattern.match(text)
        if match:
            return match["author"].strip() or None, match["time"].strip() or None
    return None, None


def _line_before(node: LexborNode) -> list[LexborNode]:
    """The siblings before `node` back to the line's start (a <br> or the parent's start)."""
    line = []
    sibling = node.prev
    while sibling is not None and sibling.tag != "br":
        line.insert(0, sibling)
        sibling = sibling.prev
    return line


def _take_quotes(body: LexborNode, noise: NoiseRules, counts: dict[str, int]) -> list[Quote]:
    """Read every outermost quote into a Quote and remove it from `body`."""
    every_quote = body.css(SELECTORS.quote)
    quote_ids = frozenset(quote.mem_id for quote in every_quote)
    outermost = [q for q in every_quote if not _inside(q, body, quote_ids)]
    quotes = []
    for quote in outermost:
        block = quote.css_first(SELECTORS.quote_block) or quote
        author = posted_raw = pid = attribution = None
        link = block.css_first(SELECTORS.quote_attribution)
        if link is not None:
            try:
                pid = ascii_number(_query(link.attributes.get("href") or "")[1].get("pid", ""))
            except ValueError:  # a link no URL parser reads (http://[x/...): the quote names no post
                pid = None
            # The attribution is <font size=2><a ...><font color=...>X 发表于 T</font></a></font><br />.
            wrapper = link
            while wrapper.parent is not None and wrapper.parent.mem_id != block.mem_id and wrapper.parent.tag == "font":
                wrapper = wrapper.parent
            # Quotes written before X3 link only a back-arrow image after the words: X2's
            # <font size=2><font color=..>X 发表于 T</font> <a><img></a></font>, Discuz 6/7's
            # 原帖由 <i>X</i> 于 T 发表 <a><img></a> straight in the blockquote.
            words = [] if _text(link) or wrapper is not link else _line_before(link)
            attribution = " ".join(filter(None, (_text(n) for n in (*words, wrapper))))
            author, posted_raw = _split_attribution(attribution)
            if author is None and posted_raw is None:
                words = []  # not an attribution this reads: the words stay in the quoted text, on their line
                attribution = None
            else:
                _remove_following_breaks(wrapper, 1)
            for node in (*words, wrapper):
                node.decompose()
        text, text_counts = clean.clean_node_text(block, noise)
        clean.merge_counts(counts, text_counts)
        quotes.append(Quote(text=text, author=author, posted_at_raw=posted_raw, pid=pid, attribution=attribution))
    for quote in outermost:
        quote.decompose()
    return quotes


def _js_unescape(literal: str) -> str:
    """A JavaScript string literal's text, its escapes read (none executed)."""
    if "\\" not in literal:
        return literal

    def character(match: re.Match) -> str:
        hex_code = match[1] or match[2]
        if hex_code:
            code = int(hex_code, 16)
            return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)  # a lone surrogate encodes nowhere
        return _JS_SIMPLE_ESCAPES.get(match[3], match[3])

    return _JS_ESCAPE.sub(character, literal)


def player_files_in_script(script: str) -> list[str]:
    """The files the players a script writes play, as written, in order, read without running
    it. Discuz writes each player as AC_FL_RunContent('name', 'value', ...) (X3's
    $('id').innerHTML=..., 7.2's document.write(...)): the file is the src ('src', 'URL' or
    'src', encodeURI('URL')), unless the flashvars name it (Discuz's own flv and mp3 players:
    'file=URL' or 'soundFile=URL', URL-encoded); parseflv's player for phones, when no
    call names a file, is an iframe in a string."""
    literals = [(match.start(), _js_unescape(match[1] if match[1] is not None else match[3]))
                for match in _JS_STRING.finditer(script) if match[2] or match[4]]  # closed ones only
    positions = [at for at, _ in literals]
    calls = [match.end() for match in _FLASH_PLAYER_CALL.finditer(script)] + [len(script) + 1]
    files = []
    for start, end in zip(calls, calls[1:]):
        # The call's arguments: the literals from it to the next call, found by bisection.
        arguments = [text for _, text in literals[bisect_left(positions, start):bisect_left(positions, end)]]
        named: dict[str, str] = {}
        for name, value in zip(arguments[0::2], arguments[1::2]):
            named.setdefault(name.lower(), value)
        flashvars = parse_qs(named.get("flashvars", ""))
        played = next((values[0] for name, values in flashvars.items() if name.lower() in _FLASHVARS_FILE_NAMES), None)
        if played or named.get("src"):
            files.append(played or named["src"])
    if not files:
        for _, text in literals:
            if "<iframe" in text.lower():
                files += [next(filter(None, match.groups()), "") for match in _IFRAME_SOURCE.finditer(text)]
    return files


def player_file_of_element(tag: str, attributes: Mapping[str, str | None]) -> str | None:
    """The file an element of a player names, as written: an object's data, a <param> naming
    the file, or the src of an embed, iframe, video, audio or source."""
    if tag == "param":
        return attributes.get("value") if (attributes.get("name") or "").lower() in _PLAYER_FILE_PARAMS else None
    return attributes.get("data" if tag == "object" else "src")


_ESCAPED_AMPERSANDS = re.compile(r"&(?:amp;)+")


def player_file_urls(found: Iterable[str | None], base_url: str) -> list[str]:
    """The players' files as linked: absolute http(s) (never javascript: or the like), no page
    furniture (Discuz's own players), each once, in order."""
    urls: dict[str, None] = {}  # ordered, each once
    for value in found:
        # The post's text is escaped before Discuz writes its players, and again by parsemedia:
        # a script keeps "&amp;" as written, an attribute once more than it decodes. One pass
        # undoes any depth of it, as replacing "&amp;" until none is left would.
        value = _ESCAPED_AMPERSANDS.sub("&", value) if value else value
        if not value or any(ord(c) < 0x20 or c == "\x7f" for c in value):
            continue
        url = absolute_url(value.strip().replace(" ", "%20"), base_url)
        if _is_web_url(url) and not any(p in url for p in FURNITURE_IMAGE_PATHS):
            urls.setdefault(url)
    return list(urls)


def player_link_html(url: str) -> str:
    """The link put where a player stood: its file, marked as a player's (clean.PLAYER_LINK_MARK)."""
    escaped = html.escape(url)
    return f'<a href="{escaped}"{clean.PLAYER_LINK_MARK}>{escaped}</a>'


def _link_players(body: LexborNode, base_url: str) -> bool:
    """Put a link to the file each player in `body` plays just before the player, in place;
    a file already linked so is not linked again (an object and its embed name one file).
    Returns whether any was put."""
    # A post written in HTML could mark a link of its own as a player's: only ours carry it.
    for forged in body.css(SELECTORS.player_links):
        del forged.attrs[clean.PLAYER_LINK_ATTRIBUTE]
    linked: set[str] = set()
    read: set[int] = set()  # the element players whose every source was read, by mem_id
    for player in body.css(SELECTORS.players):
        if player.tag == "script":
            found = player_files_in_script(player.text(deep=True) or "")
        elif _inside(player, body, read):
            continue  # its sources were read with the player around it (an embed in an object)
        else:
            read.add(player.mem_id)
            parts = (player, *player.css(SELECTORS.player_sources))
            found = [player_file_of_element(part.tag, part.attributes) for part in parts]
        for url in player_file_urls(found, base_url):
            if url not in linked:
                linked.add(url)
                player.insert_before(LexborHTMLParser(player_link_html(url)).css_first("a"))
    return bool(linked)


def _hides(notice: LexborNode) -> bool:
    """Whether a lock notice in a body stands for content the viewer cannot see (a credits
    notice over content the viewer may read stands for none)."""
    return not _text(notice).startswith(CREDITS_SHOWN_MARKS)


def _status_without_body(table: LexborNode) -> PostStatus:
    if "plhin" not in _classes(table):
        return PostStatus.DELETED  # 无效楼层，该帖已经被删除
    if table.css_first(SELECTORS.password_input) is not None:
        return PostStatus.HIDDEN
    notices = " ".join(_text(n) for n in table.css(SELECTORS.locked))
    return PostStatus.BLOCKED if BLOCKED_NOTICE_MARK in notices else PostStatus.HIDDEN


# Parts most posts lack, each read by its own query (a selector parse apiece). One combined
# query first tells whether a post holds any of them; cleaning only removes elements, so none
# can turn up later.
# Each selector once (lexbor walks the body once per selector of a list): the locked notice is
# furniture too.
_RARE_IN_BODY = ", ".join(dict.fromkeys(
    (SELECTORS.locked, *SELECTORS.body_furniture, SELECTORS.edit_note, SELECTORS.quote, *SELECTORS.text_furniture)
    + ("img", SELECTORS.attachment_links, SELECTORS.code_lines)
))
_RARE_IN_TABLE = ", ".join(
    (SELECTORS.image_tip_names, SELECTORS.unplaced_attachments, SELECTORS.password_input, SELECTORS.pay_button)
)
# What each takes a walk of the whole post to miss: the rare parts beside the body, the
# signature, and the authoronleft link (off in the default template). One walk of the post
# list first tells which posts hold any of them.
_OFTEN_ABSENT_IN_TABLE = ", ".join(
    (_RARE_IN_TABLE, SELECTORS.signature, SELECTORS.author_links[0], SELECTORS.reply_subject))


def _post_parts(table: LexborNode, ctx: ParseContext, *, rare_in_table_may_match: bool = True) -> _PostParts:
    body = table.css_first(SELECTORS.body)
    if body is None:
        return _PostParts(status=_status_without_body(table))
    # The query is asked first, though a plain body answers it too: clean_plain_body costs a
    # body with a rare part (a quote, an image, an edit note) about four times the query.
    rare_in_body = body.css_first(_RARE_IN_BODY) is not None
    rare_in_table = rare_in_table_may_match and table.css_first(_RARE_IN_TABLE) is not None
    box = (table.css_first(SELECTORS.post_body_box) or table) if rare_in_table else None
    hidden_part = (rare_in_body and any(_hides(notice) for notice in body.css(SELECTORS.locked))) or (
        box is not None and box.css_first(f"{SELECTORS.password_input}, {SELECTORS.pay_button}") is not None
    )
    names = _image_names(table) if rare_in_table else {}
    # Most bodies are text, <br> and jammer elements of text: cleaned from one serialisation,
    # with no copy. Others are cleaned on a copy; the page itself stays as it was.
    plain = None if rare_in_body else clean.clean_plain_body(body, MARKUP_NOISE, ctx.noise)
    counts: dict[str, int] = {}
    linked_players = False
    if plain is None:
        body = body.clone()
        # Before layer 1 takes the scripts: a player's file is linked where the player stood.
        # Asked here only: a body clean_plain_body takes holds none (a script, object or embed
        # is never plain but in a hidden element, noise), and the link then keeps the body off
        # the plain path below. Most bodies are plain: they pay nothing for players.
        linked_players = _link_players(body, ctx.url)
        counts = clean.strip_markup_noise(body, MARKUP_NOISE)
        # Without quotes or furniture, a body of text and <br> is cleaned from one serialisation.
        plain = None if rare_in_body else clean.clean_plain_node(body, ctx.noise)
    edit_note = None
    if plain is not None:
        content_html, content_text, text_counts = plain
    else:
        clean.add_counts(counts, clean.NOISE_JAMMER_TEXT, clean.strip_jammer_nodes(body))
        if rare_in_body:
            clean.remove_elements(body, SELECTORS.body_furniture)
            edit_note = _edit_note(body)
        clean.merge_counts(counts, clean.clean_tree_phrases(body, ctx.noise))
        content_html = clean.sanitize_node(body, ctx.url)  # quotes stay in the HTML
        if linked_players:  # a player showed no words: its file's link is in the HTML alone
            clean.remove_elements(body, (SELECTORS.player_links,))
    unplaced = table.css_first(SELECTORS.unplaced_attachments) if rare_in_table else None
    if unplaced is not None:
        unplaced = unplaced.clone()
        for image_list in unplaced.css(SELECTORS.hidden_image_list):
            if "style" in image_list.attrs:
                del image_list.attrs["style"]
        clean.strip_markup_noise(unplaced, MARKUP_NOISE)  # page furniture, not post noise: not counted
    attachments = []
    if rare_in_body or unplaced is not None:
        attachments = _attachments([body] + ([unplaced] if unplaced is not None else []), ctx.url, names)
    quotes = []
    if rare_in_body:
        quotes = _take_quotes(body, ctx.noise, counts)
        clean.remove_elements(body, SELECTORS.text_furniture)
    if plain is None:
        if rare_in_body:  # code lines are one of the rare parts
            clean.mark_preformatted(body.css(SELECTORS.code_lines))
        content_text, text_counts = clean.clean_node_text(body, ctx.noise)
    clean.merge_counts(counts, text_counts)
    return _PostParts(
        status=PostStatus.HIDDEN if hidden_part else PostStatus.NORMAL,
        content_text=content_text,
        content_html=content_html,
        quotes=quotes,
        edit_note=edit_note,
        attachments=attachments,
        noise=counts,
    )


# An image's source or a link's target in sanitised HTML (the sanitiser writes every attribute
# double-quoted, escaped, in the order written), and the player mark that follows the target
# of a link the engine wrote.
_MEDIA_IN_HTML = re.compile(rf'<(?:img|a)\s[^>]*?\b(?:src|href)="([^"]*)"({re.escape(clean.PLAYER_LINK_MARK)})?')
# A URL ends at markup or white space: a [url] that spans a line break takes in the jammer
# element Discuz writes there, which differs on every view.
_URL_PART = re.compile(r"[^<>\s]*")


def media_refs(content_html: str, page_url: str, attachments: Sequence[Attachment] = ()) -> tuple[str, ...]:
    """A post's images, links and attachments, in order, each as a stable identity: what makes
    an edit that changes no text (a swapped picture, a corrected link, another file attached)
    a new version (storage.dedup.content_hash). Nothing in them may change between two views
    of an unchanged post:
    - an attachment is its id and file name, however it is linked or shown (Discuz signs its
      links anew for every view, its images move with the attachment storage);
    - a URL on the page's own host is its path, query and fragment (a forum moved to https or
      to another host or port is the same forum), a link to a place in this thread its fragment;
    - page furniture (smilies, file-type icons) is left out; other URLs stay whole;
    - the file of a player (the link _link_players wrote) is marked PLAYER_REF_PREFIX: the
      archive tells it from the post's own links (it took up references at hash scheme 8)."""
    with_aid = [a for a in attachments if a.aid]
    attached = {a.url for a in with_aid} | {f"aid:{a.aid}" for a in with_aid}
    refs = []
    # No "<img"/"<a" search first: on CJK text with a <br> a line, each costs more than the
    # pattern's own pass (about 1-2 us against 0.8 us for a 2,000-character post).
    found = _MEDIA_IN_HTML.findall(content_html)
    page = urlsplit(page_url) if found else None
    for escaped, played in found:
        url = _URL_PART.match(html.unescape(escaped))[0]
        aid = _signed_attachment_aid(url)
        if url in attached or f"aid:{aid}" in attached or any(p in url for p in FURNITURE_IMAGE_PATHS):
            continue
        ref = f"attachment:{aid}" if aid else _on_this_site(url, page)
        refs.append(f"{PLAYER_REF_PREFIX}{ref}" if played else ref)
    refs += [f"attachment:{a.aid}:{a.name or ''}" for a in with_aid]
    return tuple(refs)


def _signed_attachment_aid(url: str) -> str | None:
    """The attachment id of a Discuz attachment link (aid=base64 of 'aid|hash|time|uid|tid')."""
    if "mod=attachment" not in url:
        return None
    token = _query(url)[1].get("aid", "")
    try:
        aid = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).split(b"|", 1)[0].decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    return aid if ascii_number(aid) is not None else None


def _on_this_site(url: str, page) -> str:
    parts = urlsplit(url)
    if (parts.hostname or "") != (page.hostname or ""):
        return url
    if parts.fragment:
        # A link to a place in this thread (#pid5), on whichever of its pages, under whichever
        # URL form: the post's page moves as replies come and go.
        here, there = thread_ref(urlunsplit(page)), thread_ref(url)
        if (there is not None and here is not None and here[0] == there[0]) or (
                (parts.path, parts.query) == (page.path, page.query)):
            return f"#{parts.fragment}"
    return parts.path + (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def _signature(table: LexborNode) -> str | None:
    sign = table.css_first(SELECTORS.signature)
    if sign is None:
        return None
    sign = sign.clone()
    clean.strip_markup_noise(sign, MARKUP_NOISE)
    return clean.html_to_text(sign) or None


def _subject(table: LexborNode, noise: NoiseRules) -> str | None:
    """A reply's own title, cleaned as its text is."""
    head = table.css_first(SELECTORS.reply_subject)
    if head is None:
        return None
    head = head.clone()
    clean.strip_markup_noise(head, MARKUP_NOISE)
    return clean.clean_node_text(head, noise)[0] or None


def _poll(first_post: LexborNode) -> Poll | None:
    """The poll of a poll thread (viewthread_poll.htm), from its opening post."""
    s = SELECTORS
    form = first_post.css_first(s.poll)
    if form is None:
        return None
    summary = _text(form.css_first(s.poll_summary))
    options: list[tuple[str, int | None]] = []
    cells = form.css(s.poll_image_options)
    for cell in cells:
        shown = cell.css_first(s.poll_image_votes)
        match = _POLL_IMAGE_VOTES.match(_text(shown))
        options.append((_text(cell.css_first(s.poll_image_text)), ascii_number(match[1]) if match else None))
    for row in form.css(s.poll_rows) if not cells else ():
        label = row.css_first(s.poll_option)
        if label is not None:
            options.append((_POLL_OPTION_NUMBER.sub("", _text(label), count=1), None))
        elif options and options[-1][1] is None:  # the option's results row, unless they are hidden
            match = _POLL_ROW_VOTES.match(_text(row.css_first(s.poll_votes)))
            if match:
                options[-1] = (options[-1][0], ascii_number(match[1]))
    return poll_record(summary, options, _text(form.css_first(s.poll_countdown)))


def poll_record(summary: str, options: Sequence[tuple[str, int | None]], countdown: str) -> Poll:
    """A Poll from what the poll prints as text: its summary line (div.pinf), its options and
    its countdown line (p.ptmr), each white space normalised."""
    voters = _POLL_VOTERS.search(summary)
    max_choices = _POLL_MAX_CHOICES.search(summary)
    ended = any(mark in countdown for mark in POLL_ENDED_MARKS)
    for prefix in POLL_COUNTDOWN_PREFIXES:
        if countdown.startswith(prefix):
            countdown = countdown[len(prefix):].lstrip(":： ")
    return Poll(
        options=tuple(options),
        voters=ascii_number(voters[1]) if voters else None,
        multiple=summary.startswith(POLL_MULTIPLE_MARKS),
        max_choices=ascii_number(max_choices[1]) if max_choices else None,
        # A guest who may not vote is not told why the counts are missing: none shown is hidden.
        results_hidden=any(mark in summary for mark in POLL_RESULTS_AFTER_VOTE_MARKS)
        or (bool(options) and all(votes is None for _, votes in options)),
        ended=ended,
        remaining_raw=(countdown or None) if not ended else None,
    )


def _classified(first_post: LexborNode) -> ClassifiedInfo | None:
    """The classified information (分类信息) above the opening post's body."""
    s = SELECTORS
    box = first_post.css_first(s.classified_box)
    if box is None:
        return None
    table = box.css_first(s.classified)
    if table is None:
        notice = _text(box)
        return ClassifiedInfo(sort_name=None, fields=(), expired_notice=notice) if notice else None
    fields = []
    for row in table.css(s.classified_rows):
        title = row.css_first(s.classified_title)
        if title is not None:
            value = _text(row.css_first(s.classified_value))
            fields.append((_text(title).rstrip(CLASSIFIED_TITLE_ENDS).rstrip(), value))
    return ClassifiedInfo(sort_name=_text(table.css_first(s.classified_caption)) or None, fields=tuple(fields))


_FIRST_NUMBER = re.compile(r"\d+")
_FINDPOST_PID = re.compile(r"[?&]pid=(\d+)")


def _filled(fields: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """A special thread's fields without the empty ones (a part this thread does not print)."""
    return tuple((name, value) for name, value in fields if value)


def _special(first_post: LexborNode) -> SpecialThread | None:
    """A reward, activity, debate or trade thread's own parts, from its opening post (page 1 only)."""
    s = SELECTORS
    box = first_post.css_first(s.special_box)
    if box is None:  # not a special thread (or one whose opening post is locked)
        return None
    reward = box.css_first(s.reward)
    if reward is not None:
        return _reward(box, reward)
    activity = box.css_first(s.activity)
    if activity is not None:
        return SpecialThread(kind="activity", fields=_defined_terms(activity))
    sides = box.css_first(s.debate_sides)
    if sides is not None:
        return _debate(box, sides)
    goods = box.css(s.trade_goods)
    if goods:
        return SpecialThread(kind="trade", fields=tuple(field for item in goods for field in _trade_item(item)))
    return None  # a poll (read by _poll)


def _trade_item(item: LexborNode) -> tuple[tuple[str, str], ...]:
    """One item on sale: its name, then its terms (交易类型, 剩余时间 ...) and prices. Its
    details load by script, so they are not on the page."""
    s = SELECTORS
    name = item.css_first(s.trade_name)
    if name is None:  # 该商品已被删除 (post_trade_removed)
        return _filled([("removed", _text(item))])
    fields = [("goods", _text(name)), *_defined_terms(item)]
    price = item.css_first(s.trade_price)
    if price is not None:
        cost = price.css_first(s.trade_cost_price)
        cost_text = _text(cost)
        fields += [("price", _text(price).removesuffix(cost_text).rstrip()), ("cost_price", cost_text)]
    return _filled(fields)


def _reward(box: LexborNode, reward: LexborNode) -> SpecialThread:
    s = SELECTORS
    price = reward.css_first(s.reward_price)
    following = price.next if price is not None else None  # the credit's name follows the price
    is_text = following is not None and following.is_text_node
    credit = normalise_whitespace(following.text_content or "") if is_text else ""
    fields = [("price", _text(price)), ("credit", credit), ("state", _text(reward.css_first(s.reward_state)))]
    best_pid = None
    best = box.css_first(s.reward_best)
    if best is not None:
        fields.append(("best_answer_author", _text(best.css_first(s.reward_best_author))))
        link = best.css_first(s.reward_best_link)
        match = _FINDPOST_PID.search(link.attributes.get("onclick") or "") if link is not None else None
        best_pid = ascii_number(match[1]) if match else None
    return SpecialThread(kind="reward", fields=_filled(fields), best_answer_pid=best_pid)


def _defined_terms(root: LexborNode) -> tuple[tuple[str, str], ...]:
    """(label, value) of each dt and the dd after it, in page order; a dd without a label
    (the join button's) is left out."""
    fields, label = [], None
    for node in root.css(SELECTORS.defined_terms):
        if node.tag == "dt":
            label = _text(node).rstrip(CLASSIFIED_TITLE_ENDS).rstrip()
        elif label:
            value = _text(node)
            if value:
                fields.append((label, value))
            label = None
    return tuple(fields)


def _after_label(node: LexborNode | None) -> str:
    """The text of a <p><strong>label</strong>: text</p> after its label."""
    if node is None:
        return ""
    label = _text(node.css_first("strong"))
    return _text(node).removeprefix(label).lstrip(CLASSIFIED_TITLE_ENDS + " ")


def _debate(box: LexborNode, sides: LexborNode) -> SpecialThread:
    s = SELECTORS
    fields = [("verdict", _text(box.css_first(s.debate_verdict))),
              ("umpire_point", _after_label(box.css_first(s.debate_umpire_point))),
              ("best_debater", _after_label(box.css_first(s.debate_best_debater))),
              ("schedule", _text(box.css_first(s.debate_schedule)))]
    for side, point_selector, debaters_selector in zip(("affirm", "negative"), s.debate_points, s.debate_debaters):
        point = sides.css_first(point_selector)
        votes = _FIRST_NUMBER.search(_text(point.css_first("strong"))) if point is not None else None
        debaters = _FIRST_NUMBER.search(_text(box.css_first(debaters_selector)))
        fields += [(f"{side}_point", _text(point.css_first("p")) if point is not None else ""),
                   (f"{side}_votes", votes[0] if votes else ""),
                   (f"{side}_debaters", debaters[0] if debaters else "")]
    return SpecialThread(kind="debate", fields=_filled(fields))


def _floor_label(table: LexborNode) -> str:
    link = table.css_first(SELECTORS.floor_link) or table.css_first(SELECTORS.floor_label_any)
    return _text(link)


def _post_tables_and_holders(postlist: LexborNode) -> tuple[list[LexborNode], frozenset[int]]:
    """_post_tables(postlist), and the nodes below it that hold a part of
    _OFTEN_ABSENT_IN_TABLE (are one or contain one), by mem_id: one query of the post list for
    both, where two cost about a third more (a selector's walk and parse cost more alone than
    added to a list), and one query answers for every post whether it holds any of those
    parts, where a query of each post costs more."""
    tables, parts = [], []
    for node in postlist.css(f"{SELECTORS.post_table}, {_OFTEN_ABSENT_IN_TABLE}"):
        if node.tag != "table":  # none of those parts is a table (test_discuz_engine holds them to it)
            parts.append(node)
        elif _PID_ID.fullmatch(node.id or ""):
            tables.append(node)
    return tables, _holders(postlist, parts)


def _holders(root: LexborNode, matches: Iterable[LexborNode]) -> frozenset[int]:
    """The nodes from `root` down that are one of `matches` (nodes below it) or contain one."""
    holders: set[int] = set()
    root_id = root.mem_id
    for match in matches:
        node = match
        # Stop at a node already listed: its ancestors are listed too.
        while node is not None and node.mem_id not in holders:
            holders.add(node.mem_id)
            node = node.parent if node.mem_id != root_id else None
    return frozenset(holders)


def _parse_post(
    table: LexborNode,
    floor: int | None,
    label: str,
    ctx: ParseContext,
    tz: timezone,
    fetched: datetime | None,
    *,
    any_often_absent: bool = True,
) -> Post:
    """One post; any_often_absent=False when the table holds nothing of _OFTEN_ABSENT_IN_TABLE."""
    author, author_uid = _author(table, first_link_may_match=any_often_absent)
    posted_at, posted_raw = _posted_at(table, tz, fetched)
    parts = _post_parts(table, ctx, rare_in_table_may_match=any_often_absent)
    return Post(
        pid=int(_PID_ID.fullmatch(table.id)[1]),
        floor=floor,
        floor_label=label,
        author=author,
        author_uid=author_uid,
        posted_at=posted_at,
        posted_at_raw=posted_raw,
        content_text=parts.content_text,
        content_html=parts.content_html,
        media_refs=media_refs(parts.content_html, ctx.url, parts.attachments or ()),
        quotes=parts.quotes or [],
        signature=_signature(table) if any_often_absent and parts.status is not PostStatus.DELETED else None,
        edit_note=parts.edit_note,
        attachments=parts.attachments or [],
        status=parts.status,
        noise_removed=parts.noise or {},
        # The opening post's title is the thread's: only a reply prints its own.
        subject=_subject(table, ctx.noise) if any_often_absent and floor != 1 else None,
    )


# --- pages ------------------------------------------------------------------------------------
def _guarded(what: str, ctx: ParseContext, parse, tree: LexborHTMLParser, *, copy: bool = True):
    try:
        # The caller's tree stays as it was: `parse` gets a clone, unless (copy=False) it
        # changes only copies of the parts it cleans, cheaper than a clone of the whole page.
        return parse(tree.clone() if copy else tree, ctx)
    except ParseError:
        raise
    except Exception as exc:  # anything else is malformed input we did not foresee
        raise ParseError(f"cannot read {what} page {ctx.url}: {type(exc).__name__}: {exc}") from exc


def parse_thread(tree: LexborHTMLParser, ctx: ParseContext) -> ThreadPage:
    """Parse a Discuz thread page (viewthread) into a ThreadPage. Raises only ParseError."""
    return _guarded("thread", ctx, _parse_thread, tree, copy=False)


def _parse_thread(tree: LexborHTMLParser, ctx: ParseContext) -> ThreadPage:
    tz = site_timezone(ctx.utc_offset)
    fetched = fetch_time(ctx.fetched_at, tz)
    postlist = tree.css_first(SELECTORS.postlist)
    tables, often_absent_holders = _post_tables_and_holders(postlist) if postlist is not None else ([], frozenset())
    title = _thread_title(tree)
    if not tables:
        raise ParseError(f"no posts (div#postlist > table#pid…) on thread page {ctx.url}")
    if not title:
        raise ParseError(f"no thread title (#thread_subject or <title>) on thread page {ctx.url}")
    url_ref = thread_ref(ctx.url)
    page, page_count = read_pages(tree, url_ref[1] if url_ref else None)
    canonical_node = tree.css_first(SELECTORS.canonical)
    canonical = absolute_url(canonical_node.attributes.get("href"), ctx.url) if canonical_node is not None else None
    replies, views = _header_counts(postlist)
    board, fid = _breadcrumb_board(tree)
    labels = [_floor_label(t) for t in tables]
    floors = assign_floors(labels, page, page_count)
    posts = [
        _parse_post(table, floor, label, ctx, tz, fetched, any_often_absent=table.mem_id in often_absent_holders)
        for table, floor, label in zip(tables, floors, labels)
    ]
    # The poll and the classified fields belong to the opening post: a query of it alone, on page 1.
    first_post = next((table for table, floor in zip(tables, floors) if floor == 1), None)
    return ThreadPage(
        tid=_thread_tid(ctx, canonical, tables),
        title=title,
        page=page,
        page_count=page_count,
        posts=posts,
        board=board,
        fid=fid,
        replies=replies,
        views=views,
        canonical_url=canonical,
        poll=_poll(first_post) if first_post is not None else None,
        classified=_classified(first_post) if first_post is not None else None,
        special=_special(first_post) if first_post is not None else None,
    )


def parse_board(tree: LexborHTMLParser, ctx: ParseContext) -> BoardPage:
    """Parse a Discuz board page (forumdisplay) into a BoardPage. Raises only ParseError."""
    return _guarded("board", ctx, _parse_board, tree)


def _board_row(row: LexborNode, ctx: ParseContext, tz: timezone, fetched: datetime | None, *,
               board_column: bool = False) -> BoardRow | None:
    row_id = row.id or ""
    link = row.css_first(SELECTORS.row_title)
    if link is None:
        return None
    url = absolute_url(link.attributes.get("href"), ctx.url)
    ref = thread_ref(url) if _is_web_url(url) else None
    # A moved thread keeps its old id on the row and links to where it lives now.
    tid = ref[0] if ref else next((int(d) for d in _DIGITS.findall(row_id) if int(d) > 0), None)
    if tid is None:
        return None
    if ref is None:  # no usable link: the URL form every Discuz site answers
        url = absolute_url(f"forum.php?mod=viewthread&tid={tid}", ctx.url)
    by_cells = row.css(SELECTORS.row_cells_by)
    board_link = _board_link(by_cells[0]) if board_column and by_cells else None
    if board_link is not None:
        by_cells = by_cells[1:]
    author = _text(by_cells[0].css_first(SELECTORS.row_cite)) if by_cells else ""
    last_raw = None
    last_at = None
    if len(by_cells) >= 2:
        last = by_cells[-1].css_first(SELECTORS.row_last_post)
        if last is not None:
            last_raw = _text(last) or None
            titled = last.css_first(SELECTORS.posted_at_title)
            if titled is not None:
                last_at = parse_absolute_time(titled.attributes.get("title") or "", tz)
            last_at = last_at or parse_post_time(last_raw or "", tz, fetched)
    row_board = board_ref(board_link.attributes.get("href") or "") if board_link is not None else None
    return BoardRow(
        tid=tid,
        title=_text(link),
        url=url,
        replies=_count(row.css_first(SELECTORS.row_replies)),
        views=_count(row.css_first(SELECTORS.row_views)),
        author=author or None,
        last_post_at=last_at,
        last_post_raw=last_raw,
        sticky=row_id.startswith("stickthread_"),
        fid=row_board[0] if row_board else None,
        board=(_text(board_link) or None) if board_link is not None else None,
    )


def _picture_row(tile: LexborNode, ctx: ParseContext) -> BoardRow | None:
    """A thread of a board in picture mode: its tile in ul#waterfall."""
    link = tile.css_first(SELECTORS.picture_title)
    url = absolute_url(link.attributes.get("href"), ctx.url) if link is not None else None
    ref = thread_ref(url) if _is_web_url(url) else None
    if ref is None:
        return None
    author = tile.css_first(SELECTORS.picture_author)
    return BoardRow(
        tid=ref[0],
        title=_text(link) or (link.attributes.get("title") or "").strip(),
        url=url,
        replies=_count(tile.css_first(SELECTORS.picture_replies)),
        views=None,
        author=_text(author) or None,
        last_post_at=None,
        last_post_raw=None,
        sticky=False,
    )


def _parse_board(tree: LexborHTMLParser, ctx: ParseContext) -> BoardPage:
    tz = site_timezone(ctx.utc_offset)
    fetched = fetch_time(ctx.fetched_at, tz)
    table = tree.css_first(SELECTORS.thread_list)
    row_nodes = tree.css(SELECTORS.thread_rows)
    tiles = tree.css(SELECTORS.picture_rows)
    if table is None and not row_nodes and not tiles:
        raise ParseError(f"no thread list (table#threadlisttableid or ul#waterfall) on board page {ctx.url}")
    rows = [row for row in (_board_row(node, ctx, tz, fetched) for node in row_nodes) if row is not None]
    rows += [row for row in (_picture_row(tile, ctx) for tile in tiles) if row is not None]
    url_ref = board_ref(ctx.url)
    page, page_count = read_pages(tree, url_ref[1] if url_ref else None)
    name, fid = _breadcrumb_board(tree)
    if fid is None and url_ref:
        fid = url_ref[0]
    if fid is None and table is not None:
        match = _BOARD_SUMMARY.fullmatch(table.attributes.get("summary") or "")
        fid = int(match[1]) if match else None
    name = name or _text(tree.css_first(SELECTORS.board_heading)) or None
    return BoardPage(fid=fid, name=name, page=page, page_count=page_count, rows=rows)


def parse_guide(tree: LexborHTMLParser, ctx: ParseContext) -> BoardPage:
    """Parse a Discuz guide page (forum.php?mod=guide) into a BoardPage with no board of its
    own; each row carries its board's fid and name. Raises only ParseError."""
    return _guarded("guide", ctx, _parse_guide, tree)


def _parse_guide(tree: LexborHTMLParser, ctx: ParseContext) -> BoardPage:
    tz = site_timezone(ctx.utc_offset)
    fetched = fetch_time(ctx.fetched_at, tz)
    row_nodes = tree.css(SELECTORS.thread_rows)
    if tree.css_first(SELECTORS.guide_list) is None and not row_nodes:
        raise ParseError(f"no thread list (div#threadlist) on guide page {ctx.url}")
    rows = [row for row in (_board_row(node, ctx, tz, fetched, board_column=True) for node in row_nodes)
            if row is not None]
    url_ref = guide_ref(ctx.url)
    page, page_count = read_pages(tree, url_ref[1] if url_ref else None)
    return BoardPage(fid=None, name=None, page=page, page_count=page_count, rows=rows)


class DiscuzEngine:
    """The Engine of Discuz! X3.x forums (engines.base.Engine); every method is pure."""

    name = "discuz"

    def page_kind(self, tree: LexborHTMLParser, status: int = 200) -> PageKind:
        """Classify a page before parsing it: thread, board, or a page never to be stored."""
        return page_kind(tree, status)

    def parse_thread(self, tree: LexborHTMLParser, ctx: ParseContext) -> ThreadPage:
        """Parse a thread page. Raises only ParseError."""
        return parse_thread(tree, ctx)

    def parse_board(self, tree: LexborHTMLParser, ctx: ParseContext) -> BoardPage:
        """Parse a board (thread list) page. Raises only ParseError."""
        return parse_board(tree, ctx)

    def parse_guide(self, tree: LexborHTMLParser, ctx: ParseContext) -> BoardPage:
        """Parse a guide page: rows of every board, each naming its own. Raises only ParseError."""
        return parse_guide(tree, ctx)

    def url_kind(self, url: str) -> PageKind:
        """What a URL points at, from its shape alone (THREAD, BOARD, GUIDE or UNKNOWN)."""
        return url_kind(url)

    def thread_ref(self, url: str) -> tuple[int, int] | None:
        """(tid, page) for a thread URL in any of Discuz's URL forms, else None."""
        return thread_ref(url)

    def board_ref(self, url: str) -> tuple[int, int] | None:
        """(fid, page) for a board URL in any of Discuz's URL forms, else None."""
        return board_ref(url)

    def thread_url(self, base_url: str, tid: int, page: int = 1) -> str:
        """The canonical URL of page `page` of thread `tid`."""
        return thread_url(base_url, tid, page)

    def board_url(self, base_url: str, fid: int, page: int = 1) -> str:
        """The canonical URL of page `page` of board `fid`."""
        return board_url(base_url, fid, page)

    def guide_url(self, base_url: str, page: int = 1) -> str:
        """Page `page` of the new-threads guide."""
        return guide_url(base_url, page)


__all__ = [
    "DEFAULT_POSTS_PER_PAGE",
    "DiscuzEngine",
    "DiscuzSelectors",
    "MARKUP_NOISE",
    "SELECTORS",
    "assign_floors",
    "board_ref",
    "board_url",
    "fetch_time",
    "floor_number",
    "guide_ref",
    "guide_url",
    "page_kind",
    "parse_absolute_time",
    "parse_board",
    "parse_guide",
    "parse_post_time",
    "parse_thread",
    "poll_record",
    "read_pages",
    "site_timezone",
    "thread_ref",
    "thread_url",
    "url_kind",
]
