"""Read a browser's text rendering of a Discuz! X thread page (select all, copy, paste).

What such a text holds: page chrome, the title followed by "[复制链接]", then one header line
per post (`[楼主|] AUTHOR 发表于 Y-M-D H:M[:S] | 显示全部楼层 ...`) followed by the post's lines,
chrome between posts ("精彩评论7", "正序浏览"), and from the reply box on, more chrome.
It lacks pids, uids and floor numbers; floors are counted in page order.

The jammer survives in such texts as visible runs glued to line starts and ends, and ad
slots as whole lines; both are removed here with scraper.clean and the site's NoiseRules.
Pure functions only: text in, records out. The only exception raised is ParseError.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from scraper.clean import (
    NOISE_JAMMER_TEXT,
    NOISE_LEARNED_PHRASES,
    NOISE_SITE_PHRASES,
    add_counts,
    remove_phrases,
    strip_jammer_line,
)
from scraper.engines.base import ParseContext, Post, ThreadPage
from scraper.engines.discuz import ascii_number
from scraper.errors import ParseError

# --- what the text looks like (data, not logic) ----------------------------------------
_WS = r"[\s\xa0]"
POST_HEADER = re.compile(
    rf"^{_WS}*(?:(?P<op_mark>楼主){_WS}*\|{_WS}*)?"
    rf"(?P<author>\S(?:.*?\S)?){_WS}+发表于{_WS}+"
    rf"(?P<time>\d{{4}}-\d{{1,2}}-\d{{1,2}}{_WS}+\d{{1,2}}:\d{{2}}(?::\d{{2}})?"
    rf"|(?:昨天|前天){_WS}*\d{{1,2}}:\d{{2}}|\d+{_WS}*(?:秒|分钟|小时|天)前|半小时前|刚刚)"
    # The "| 显示全部楼层" / "| 只看该作者" tail tells a post header from a quote's attribution line.
    rf"{_WS}*\|{_WS}*(?:显示全部楼层|只看该作者)"
)
ABSOLUTE_TIME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})[\s\xa0]+(\d{1,2}):(\d{2})(?::(\d{2}))?$")
TITLE_MARKER = "[复制链接]"
# Lines the page shows between posts; they belong to no post.
CHROME_LINES = (
    re.compile(r"^精彩评论\d*$"),
    re.compile(r"^(?:正序浏览|倒序浏览|返回列表)$"),
    re.compile(r"^(?:(?:\d+|\.\.\.)[\s\xa0]+)*/[\s\xa0]*\d+[\s\xa0]*页(?:[\s\xa0]*下一页)?$"),  # the pager
)
# The reply box and what follows it: nothing from here on is a post.
PAGE_END_LINES = (
    re.compile(r"^您需要登录后才可以回帖"),
    re.compile(r"^本版积分规则$"),
    re.compile(r"^回帖后跳转到最后一页$"),
)
PAGE_COUNT = re.compile(r"/[\s\xa0]*(\d+)[\s\xa0]*页")  # the pager: "... / 3 页 下一页"
VIEW_COUNT = re.compile(r"查看[:：][\s\xa0]*(\d+)")
REPLY_COUNTS = (re.compile(r"回复[:：][\s\xa0]*(\d+)"), re.compile(r"^精彩评论(\d+)$"))
THREAD_URL_REWRITE = re.compile(r"thread-(?P<tid>\d+)-(?P<page>\d+)-\d+\.html$")

POSTS_PER_PAGE = 10  # Discuz's default `ppp`; a page-2 text starts at floor 11
FLOOR_LABELS = ("楼主", "沙发", "板凳", "地板")  # Discuz's default postno; then "N#"
NOISE_TEXT_ADS = "text_ads"
_BLANK = " \t\xa0\u3000"


@dataclass
class TextPost:
    """One post as the text shows it, before any cleaning."""

    author: str
    posted_at_raw: str
    op_mark: bool  # the header started with "楼主|"
    lines: list[str] = field(default_factory=list)  # raw body lines, chrome between posts removed


@dataclass
class TextRendering:
    """A thread page's text split into its parts."""

    title: str
    posts: list[TextPost]
    chrome: list[str]  # lines outside every post (before the first header, after the reply box)


def _matches(patterns: tuple[re.Pattern[str], ...], line: str) -> bool:
    return any(p.search(line) for p in patterns)


def _find_title(lines: list[str], first_header: int) -> str:
    for i in range(first_header):
        stripped = lines[i].strip(_BLANK)
        if TITLE_MARKER not in stripped:
            continue
        before = stripped.split(TITLE_MARKER, 1)[0].strip(_BLANK)
        if before:
            return before
        for j in range(i - 1, -1, -1):
            if lines[j].strip(_BLANK):
                return lines[j].strip(_BLANK)
    return ""


def split_text_page(text: str) -> TextRendering:
    """Split a thread page's text rendering into title, raw posts and chrome.

    Raises ParseError when the text holds no post header line.
    """
    if not isinstance(text, str):
        raise ParseError(f"expected the page text as str, got {type(text).__name__}")
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    headers = [(i, m) for i, line in enumerate(lines) if (m := POST_HEADER.match(line))]
    if not headers:
        raise ParseError("no post header line ('AUTHOR 发表于 TIME | 显示全部楼层') in the text")
    first = headers[0][0]
    chrome = lines[:first]
    end = len(lines)
    for i in range(headers[-1][0] + 1, len(lines)):
        if _matches(PAGE_END_LINES, lines[i].strip(_BLANK)):
            end = i
            break
    chrome += lines[end:]
    posts = []
    for n, (start, match) in enumerate(headers):
        stop = headers[n + 1][0] if n + 1 < len(headers) else end
        body = [line for line in lines[start + 1:stop] if not _matches(CHROME_LINES, line.strip(_BLANK))]
        chrome += [line for line in lines[start + 1:stop] if _matches(CHROME_LINES, line.strip(_BLANK))]
        posts.append(TextPost(author=match["author"], posted_at_raw=match["time"],
                              op_mark=bool(match["op_mark"]), lines=body))
    return TextRendering(title=_find_title(lines, first), posts=posts, chrome=chrome)


def thread_ref_from_url(url: str | None) -> tuple[int | None, int]:
    """(tid, page) of a Discuz thread URL in either form; (None, 1) for anything else."""
    if not url:
        return None, 1
    parts = urlsplit(url)
    m = THREAD_URL_REWRITE.search(parts.path)
    if m and (tid := ascii_number(m["tid"])) is not None:  # as the engine reads it
        return tid, max(1, ascii_number(m["page"]) or 1)
    query = parse_qs(parts.query)
    tid = query.get("tid", [""])[0]
    if query.get("mod", [""])[0] == "viewthread" and ascii_number(tid) is not None:
        return int(tid), max(1, ascii_number(query.get("page", ["1"])[0]) or 1)
    return None, 1


def iso_time(raw: str, utc_offset: str) -> str | None:
    """'2012-3-12 14:40:59' -> '2012-03-12T14:40:59+08:00'; None for relative forms ('3 天前')."""
    m = ABSOLUTE_TIME.match(raw.strip(_BLANK))
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g or 0) for g in m.groups())
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{utc_offset}"


def floor_label(floor: int) -> str:
    """The label Discuz prints for a floor by default: 楼主, 沙发, 板凳, 地板, then 5#, 6#, ..."""
    return FLOOR_LABELS[floor - 1] if 1 <= floor <= len(FLOOR_LABELS) else f"{floor}#"


def clean_post_lines(lines: list[str], ctx: ParseContext) -> tuple[list[str | None], dict[str, int]]:
    """Remove the jammer, ad lines and watermark phrases from a post's raw lines.

    Returns the kept lines with None where a paragraph break stands (a blank line or a line
    that was only jammer), and the counts of what each filter removed.
    """
    removed: dict[str, int] = {}
    kept: list[str | None] = []
    for raw in lines:
        line, runs = strip_jammer_line(raw)
        add_counts(removed, NOISE_JAMMER_TEXT, runs)
        line = line.strip(_BLANK)
        if line and line in ctx.noise.text_ads:
            add_counts(removed, NOISE_TEXT_ADS, 1)
            continue
        line, n = remove_phrases(line, ctx.noise.phrases)
        add_counts(removed, NOISE_SITE_PHRASES, n)
        line, n = remove_phrases(line, ctx.noise.learned)
        add_counts(removed, NOISE_LEARNED_PHRASES, n)
        line = line.strip(_BLANK)
        kept.append(line or None)
    return kept, removed


def lines_to_html(lines: list[str | None]) -> str:
    """Escaped HTML: one <p> per paragraph, <br> between its lines."""
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line is None:
            paragraphs.append([])
        else:
            paragraphs[-1].append(html.escape(line))
    return "".join(f"<p>{'<br>'.join(p)}</p>" for p in paragraphs if p)


def _first_count(patterns: tuple[re.Pattern[str], ...], lines: list[str]) -> int | None:
    for line in lines:
        for pattern in patterns:
            if m := pattern.search(line.strip(_BLANK)):
                return int(m.group(1))
    return None


def parse_text_page(text: str, ctx: ParseContext, *, posts_per_page: int = POSTS_PER_PAGE) -> ThreadPage:
    """Parse the text rendering of one Discuz thread page into a ThreadPage.

    Floors count from 1 in page order, offset by (page - 1) * posts_per_page when ctx.url
    names a later page; pids and uids are None (the text does not show them). Raises only
    ParseError.
    """
    rendering = split_text_page(text)
    tid, page = thread_ref_from_url(ctx.url)
    first_floor = (page - 1) * posts_per_page + 1
    posts = []
    for n, raw in enumerate(rendering.posts):
        lines, removed = clean_post_lines(raw.lines, ctx)
        floor = first_floor + n
        posts.append(Post(
            pid=None, floor=floor, floor_label=floor_label(floor), author=raw.author, author_uid=None,
            posted_at=iso_time(raw.posted_at_raw, ctx.utc_offset),
            posted_at_raw=raw.posted_at_raw.replace("\xa0", " "),
            content_text="\n".join(line for line in lines if line is not None),
            content_html=lines_to_html(lines), noise_removed=removed,
        ))
    page_counts = [int(m.group(1)) for line in rendering.chrome for m in PAGE_COUNT.finditer(line)]
    return ThreadPage(
        tid=tid, title=rendering.title, page=page, page_count=max([page, *page_counts]), posts=posts,
        replies=_first_count(REPLY_COUNTS, rendering.chrome), views=_first_count((VIEW_COUNT,), rendering.chrome),
    )


__all__ = [
    "POST_HEADER",
    "TextPost",
    "TextRendering",
    "clean_post_lines",
    "floor_label",
    "iso_time",
    "lines_to_html",
    "parse_text_page",
    "split_text_page",
    "thread_ref_from_url",
]
