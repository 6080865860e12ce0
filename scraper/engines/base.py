"""The engine interface and the plain records every engine returns.

An engine turns a parsed page into these dataclasses. It never fetches and never writes:
crawl.py feeds it trees and hands its records to storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from selectolax.lexbor import LexborHTMLParser

from scraper.clean import NoiseRules


class PageKind(StrEnum):
    THREAD = "thread"
    BOARD = "board"
    GUIDE = "guide"  # a site-wide list of threads across boards (Discuz: the new-threads guide)
    NOTICE = "notice"  # a forum message page (#messagetext): no permission, flood control...
    # A message page saying the thread (or board) does not exist or was deleted. Discuz sends
    # it with status 200; to an archive it is a 404: the thread is gone, the forum not hostile.
    MISSING = "missing"
    LOGIN = "login"  # a login wall
    ANTISCRAPE = "antiscrape"  # Discuz 防采集: a lone script that reloads with &_dsign=
    CHALLENGE = "challenge"  # a generic bot challenge (Cloudflare-style script page)
    UNKNOWN = "unknown"


# Kinds that must never be stored as content: they are recorded as blocked.
BLOCK_KINDS = frozenset({PageKind.NOTICE, PageKind.LOGIN, PageKind.ANTISCRAPE, PageKind.CHALLENGE})


class PostStatus(StrEnum):
    NORMAL = "normal"
    DELETED = "deleted"  # 无效楼层，该帖已经被删除
    BLOCKED = "blocked"  # body replaced by a div.locked notice (banned author, moderator)
    HIDDEN = "hidden"  # hidden/password/pay content the archiver could not see


@dataclass(frozen=True)
class Attachment:
    url: str  # absolute URL of the full-size file
    name: str | None = None
    aid: str | None = None
    is_image: bool = True


@dataclass(frozen=True)
class Quote:
    text: str  # cleaned text of the quoted passage (without the attribution line)
    author: str | None = None
    posted_at_raw: str | None = None  # as printed in the attribution line
    pid: int | None = None  # the quoted post, when the attribution links to it
    # The attribution line as the forum printed it ("X 发表于 T", Discuz 6/7's "原帖由 X 于 T 发表"):
    # a text copy of the page shows it inline, and the archive compares such a copy with this.
    attribution: str | None = None


@dataclass
class Post:
    pid: int | None  # forum-wide post id; None for text renderings that lack it
    floor: int | None  # 1 = opening post; None for floors that carry no number (hot replies)
    floor_label: str  # as printed: 楼主, 沙发, 5#, 推荐 ...
    author: str | None
    author_uid: int | None
    posted_at: str | None  # ISO 8601 with the site's UTC offset, e.g. 2012-03-12T14:40:59+08:00
    posted_at_raw: str  # the time as printed, for audit
    content_text: str  # cleaned text: no jammer, ads, watermarks, quotes, edit note, signature
    content_html: str  # cleaned and sanitised HTML of the body (safe to render)
    # The post's images, links and attachments as stable identities, in order (a version covers
    # them too); None for a rendering that shows none (a text rendering)
    media_refs: tuple[str, ...] | None = None
    quotes: list[Quote] = field(default_factory=list)
    signature: str | None = None
    edit_note: str | None = None  # 本帖最后由 X 于 T 编辑
    attachments: list[Attachment] = field(default_factory=list)
    status: PostStatus = PostStatus.NORMAL
    noise_removed: dict[str, int] = field(default_factory=dict)  # filter name -> count removed
    # A reply's own title, printed above its body when its author gave one (the opening post's
    # is the thread's title). Not part of a version: a changed subject is refreshed in place.
    subject: str | None = None


@dataclass(frozen=True)
class Poll:
    """A poll thread's poll as its page 1 shows it to a guest."""

    options: tuple[tuple[str, int | None], ...]  # (text, votes) in page order; votes None when hidden
    voters: int | None = None  # 共有 N 人参与投票
    multiple: bool = False  # 多选投票 rather than 单选投票
    max_choices: int | None = None  # 最多可选 N 项, for a multiple-choice poll that limits them
    results_hidden: bool = False  # 投票后结果可见: counts are shown only to those who voted
    ended: bool = False  # 投票已经结束
    # The countdown as printed (距结束还有 "3 天 5 小时 12 分钟"): the page shows no end date.
    remaining_raw: str | None = None


@dataclass(frozen=True)
class ClassifiedInfo:
    """A thread's classified information (分类信息): the typed fields of its sort, shown above the
    opening post; on property, job and trade boards they are the main content."""

    sort_name: str | None  # the sort, as the table's caption names it
    fields: tuple[tuple[str, str], ...]  # (title, value as printed, unit included) in page order
    # A sort whose information expired prints this notice (该信息已经过期) in place of its
    # table: no sort name and no fields then.
    expired_notice: str | None = None


@dataclass(frozen=True)
class SpecialThread:
    """What a reward, activity, debate or trade thread shows with its opening post, outside its
    body: the bounty, the event's details, the two sides' points, the items on sale.

    kind: "reward", "activity", "debate" or "trade" (its items one after another, each from a
        "goods" field, or a "removed" one).
    fields: (name, value as printed) in page order. Where the engine's template prints a label
        (an activity's 活动类型, 开始时间 ...) the name is that label; where it prints none the
        name is the engine's own (price, state, affirm_point ...). Empty values are left out.
    best_answer_pid: a reward thread's reply chosen as the best answer, when one is.
    """

    kind: str
    fields: tuple[tuple[str, str], ...]
    best_answer_pid: int | None = None


@dataclass
class ThreadPage:
    tid: int | None
    title: str
    page: int  # 1-based page number of this page
    page_count: int  # pages the thread has, as printed by the pager (1 when there is no pager)
    posts: list[Post]
    board: str | None = None  # board name as linked in the breadcrumb
    fid: int | None = None
    replies: int | None = None  # printed on page 1 only
    views: int | None = None
    canonical_url: str | None = None
    # Shown with the opening post only, so on page 1 only; None elsewhere and when absent.
    poll: Poll | None = None
    classified: ClassifiedInfo | None = None
    special: SpecialThread | None = None


@dataclass
class BoardRow:
    tid: int
    title: str
    url: str  # absolute URL of the thread's first page
    replies: int | None = None
    views: int | None = None
    author: str | None = None
    last_post_at: str | None = None  # ISO 8601 with offset where it could be read
    last_post_raw: str | None = None
    sticky: bool = False
    # A guide lists threads of every board, so each row names its own (a board page's rows
    # leave these None: the page names the board).
    fid: int | None = None
    board: str | None = None


@dataclass
class BoardPage:
    fid: int | None
    name: str | None
    page: int
    page_count: int
    rows: list[BoardRow]


@dataclass(frozen=True)
class ParseContext:
    """What a parser needs besides the tree: where the page came from and when."""

    url: str
    utc_offset: str = "+08:00"
    fetched_at: str | None = None  # ISO 8601; resolves relative times without a title
    noise: NoiseRules = field(default_factory=NoiseRules)  # the site's phrases (layers 3-4)


class Engine(Protocol):
    """What every forum engine provides. All methods are pure."""

    name: str

    def page_kind(self, tree: LexborHTMLParser, status: int = 200) -> PageKind:
        """Classify a page before parsing it: thread, board, or a page never to be stored."""
        ...

    def parse_thread(self, tree: LexborHTMLParser, ctx: ParseContext) -> ThreadPage:
        """Parse a thread page. Raises only ParseError."""
        ...

    def parse_board(self, tree: LexborHTMLParser, ctx: ParseContext) -> BoardPage:
        """Parse a board (thread list) page. Raises only ParseError."""
        ...

    def parse_guide(self, tree: LexborHTMLParser, ctx: ParseContext) -> BoardPage:
        """Parse a guide page (threads of every board, newest first): a BoardPage without a
        board of its own, whose rows name theirs. Raises only ParseError."""
        ...

    def url_kind(self, url: str) -> PageKind:
        """What a URL points at, from its shape alone (THREAD, BOARD, GUIDE or UNKNOWN)."""
        ...

    def thread_ref(self, url: str) -> tuple[int, int] | None:
        """(tid, page) for a thread URL in any of the engine's URL forms, else None."""
        ...

    def board_ref(self, url: str) -> tuple[int, int] | None:
        """(fid, page) for a board URL in any of the engine's URL forms, else None."""
        ...

    def thread_url(self, base_url: str, tid: int, page: int = 1) -> str:
        """The canonical URL of page `page` of thread `tid`."""
        ...

    def board_url(self, base_url: str, fid: int, page: int = 1) -> str:
        """The canonical URL of page `page` of board `fid`."""
        ...

    def guide_url(self, base_url: str, page: int = 1) -> str:
        """The URL of page `page` of the site's new-threads guide."""
        ...
