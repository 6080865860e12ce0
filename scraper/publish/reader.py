"""The thread reader: one archived thread shown as the forum showed it, page by page.

Everything a post carries came from a stranger. Stored HTML is sanitised again here, at
render time (never trusted from the database), and every other field reaches the page
through the template's autoescaping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from scraper.clean import sanitize_html

POSTS_PER_PAGE = 50  # a Discuz thread page shows 10-20 floors; 50 keeps long threads short to page
HTTP_SCHEMES = ("http://", "https://")
IMAGE_LINK_TEXT = "[图片]"  # what replaces an image that may not be hot-linked


class ReaderInputError(ValueError):
    """A thread page request that names no page or post the reader can show."""


@dataclass(frozen=True)
class Quote:
    text: str
    author: str | None
    posted_at_raw: str | None
    attribution: str | None = None  # as the forum printed it, where the engine kept it


@dataclass(frozen=True)
class FileLink:
    url: str
    name: str
    is_image: bool


@dataclass(frozen=True)
class PollView:
    options: list[tuple[str, int | None]]  # (text, votes); votes None when the forum hid them
    voters: int | None
    multiple: bool
    ended: bool


@dataclass(frozen=True)
class SpecialView:
    kind: str  # as the forum names it: 悬赏, 活动, 辩论
    rows: list[tuple[str, str, str]]  # (label, value, the engine's name for it); the label may be empty
    best_answer_pid: int | None


# Display labels of the names the engine gives a special thread's fields where the forum prints
# none (an activity's fields keep the forum's own labels). Discuz's words (lang_template.php).
SPECIAL_KINDS = {"reward": "悬赏", "activity": "活动", "debate": "辩论", "trade": "商品"}
SPECIAL_LABELS = {
    "state": "状态", "best_answer_author": "最佳答案",
    "verdict": "结果", "umpire_point": "裁判观点", "best_debater": "最佳辩手", "schedule": "",
    "affirm_point": "正方观点", "affirm_votes": "正方票数", "affirm_debaters": "正方辩手",
    "negative_point": "反方观点", "negative_votes": "反方票数", "negative_debaters": "反方辩手",
    "goods": "商品", "price": "价格", "cost_price": "原价", "removed": "",
}


@dataclass
class PostView:
    """One post, ready for the template: `body_html` is sanitised, everything else is text."""

    post_id: int
    floor: int | None
    floor_label: str | None
    author: str | None
    posted_at: str
    body_html: str
    subject: str | None = None  # a reply's own title
    quotes: list[Quote] = field(default_factory=list)
    signature: str | None = None
    edit_note: str | None = None
    attachments: list[FileLink] = field(default_factory=list)
    status: str = "normal"
    version_count: int = 1
    gone_at: str | None = None
    original_url: str | None = None


def parse_positive_int(raw: str | None, name: str, *, default: int | None = None) -> int | None:
    """`raw` as an integer of at least 1; `default` when absent; ReaderInputError otherwise."""
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or int(raw) < 1:
        raise ReaderInputError(f"{name} must be a whole number of at least 1")
    return int(raw)


def web_url(url: str | None) -> str | None:
    """`url` when it is an absolute http(s) URL, else None (file: and text-import keys are not links)."""
    if url and url.strip().lower().startswith(HTTP_SCHEMES):
        return url.strip()
    return None


def local_time(posted_at: str | None, posted_at_raw: str | None) -> str:
    """The site-local time as the forum printed it, with its UTC offset:
    '2012-03-12T14:40:59+08:00' -> '2012-03-12 14:40:59 (UTC+08:00)'."""
    if posted_at and len(posted_at) >= 19 and posted_at[10] == "T":
        offset = posted_at[19:]
        return f"{posted_at[:10]} {posted_at[11:19]}" + (f" (UTC{offset})" if offset else "")
    return posted_at_raw or posted_at or ""


def _images_to_links(safe_html: str) -> str:
    # An <img> would make every reader's browser fetch from the forum (hot-linking); a
    # link leaves that choice to the reader.
    tree = LexborHTMLParser(safe_html)
    body = tree.body
    if body is None or not body.css_first("img"):
        return safe_html
    for img in body.css("img"):
        src = web_url(img.attributes.get("src"))
        replacement = f'<a href="{escape(src)}">{IMAGE_LINK_TEXT}</a>' if src else IMAGE_LINK_TEXT
        img.replace_with(LexborHTMLParser(replacement).body.child or IMAGE_LINK_TEXT)
    return body.inner_html


def render_body(stored_html: str, base_url: str, *, hotlink_images: bool) -> str:
    """A post's stored HTML made safe to put in a page: sanitised with nh3 (allowlisted tags
    and attributes, http(s) URLs only, nofollow links), images turned into links unless
    `hotlink_images`. The result is always the output of sanitize_html."""
    safe = sanitize_html(stored_html or "", base_url)
    if hotlink_images:
        return safe
    return sanitize_html(_images_to_links(safe), base_url)


def _json_value(raw: str | None) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of `value` when it is a list; none otherwise."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _json_list(raw: str | None) -> list[dict[str, Any]]:
    return _objects(_json_value(raw))


def _quotes(raw: str | None) -> list[Quote]:
    return [Quote(str(q.get("text") or ""), q.get("author"), q.get("posted_at_raw"), q.get("attribution"))
            for q in _json_list(raw)]


def _quotes_not_in_body(quotes: list[Quote], body_html: str) -> list[Quote]:
    """The quotes the post's HTML does not show already: a crawled Discuz post keeps its quote
    block in its HTML, while a text rendering's quotes live in quotes_json alone."""
    if not quotes:
        return []
    shown = " ".join(LexborHTMLParser(body_html).text().split())
    return [quote for quote in quotes if " ".join(quote.text.split()) not in shown]


def _attachments(raw: str | None) -> list[FileLink]:
    links = []
    for item in _json_list(raw):
        url = web_url(item.get("url"))
        if url:
            links.append(FileLink(url, str(item.get("name") or url.rsplit("/", 1)[-1]), bool(item.get("is_image"))))
    return links


def _json_object(raw: str | None) -> dict[str, Any]:
    value = _json_value(raw)
    return value if isinstance(value, dict) else {}


def _count_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def poll_view(poll_json: str | None) -> PollView | None:
    """threads.poll_json as the template shows it above the opening post; None without a poll."""
    poll = _json_object(poll_json)
    if not poll:
        return None
    options = [(str(o.get("text") or ""), _count_or_none(o.get("votes"))) for o in _objects(poll.get("options"))]
    return PollView(options, _count_or_none(poll.get("voters")), bool(poll.get("multiple")), bool(poll.get("ended")))


def classified_fields(classified_json: str | None) -> tuple[str | None, list[tuple[str, str]]]:
    """threads.classified_json as (sort name, [(title, value)]) for the template; an expired
    sort's notice is its one row."""
    info = _json_object(classified_json)
    fields = [(str(f.get("title") or ""), str(f.get("value") or "")) for f in _objects(info.get("fields"))]
    if not fields and info.get("expired_notice"):
        fields = [("", str(info["expired_notice"]))]
    sort_name = info.get("sort_name")
    return (str(sort_name) if sort_name else None), fields


def special_view(special_json: str | None) -> SpecialView | None:
    """threads.special_json as the template shows it beside the opening post; None without one."""
    info = _json_object(special_json)
    kind = str(info.get("kind") or "")
    if not kind:
        return None
    values = [(str(f.get("name") or ""), str(f.get("value") or "")) for f in _objects(info.get("fields"))]
    credit = next((value for name, value in values if name == "credit"), "")
    rows = []
    for name, value in values:
        if kind == "reward" and name == "credit":
            continue  # shown with the price
        if kind == "reward" and name == "price":
            rows.append(("悬赏", f"{value} {credit}".rstrip(), name))  # 20 金钱
        else:  # an activity's details and an item's terms keep the forum's own labels
            rows.append((SPECIAL_LABELS.get(name, name), value, name))
    pid = info.get("best_answer_pid")
    return SpecialView(SPECIAL_KINDS.get(kind, kind), rows, pid if isinstance(pid, int) else None)


def post_view(row: dict[str, Any], base_url: str, thread_url: str | None, *, hotlink_images: bool,
              page_url: Callable[[int], str] | None = None) -> PostView:
    """A posts row (as THREAD_POSTS_SQL selects it) turned into what the template shows.
    page_url(n): the forum's URL of page n of the thread, for the post's "on the forum" link
    (without it, the thread's first page)."""
    on_page = thread_url
    if thread_url and page_url is not None and (row.get("page") or 1) > 1:
        on_page = page_url(row["page"])
    original = f"{on_page}#pid{row['pid']}" if on_page and row.get("pid") else on_page
    body_html = render_body(row["content_html"], base_url, hotlink_images=hotlink_images)
    return PostView(
        post_id=row["id"],
        floor=row["floor"],
        floor_label=row["floor_label"],
        author=row["author"],
        posted_at=local_time(row["posted_at"], row["posted_at_raw"]),
        body_html=body_html,
        subject=row.get("subject"),
        quotes=_quotes_not_in_body(_quotes(row["quotes_json"]), body_html),
        signature=row["signature"],
        edit_note=row["edit_note"],
        attachments=_attachments(row["attachments_json"]),
        status=row["status"],
        version_count=row["version_count"],
        gone_at=row["gone_at"],
        original_url=original,
    )


THREAD_SQL = """
select threads.id, threads.title, threads.url, threads.board, threads.replies, threads.views,
    threads.gone_at, threads.poll_json, threads.classified_json, threads.special_json,
    sites.name as site_name, sites.base_url,
    sites.utc_offset, sites.engine
from threads join sites on sites.id = threads.site_id
where threads.id = :thread_id
"""
# The same order as the thread_posts stored query: floors first, unnumbered posts last.
_POST_ORDER = "floor is null, floor, posted_at, id"
THREAD_POSTS_SQL = f"""
select id, pid, floor, floor_label, page, author, posted_at, posted_at_raw, content_html, quotes_json,
    subject, signature, edit_note, attachments_json, status, version_count, gone_at
from posts where thread_id = :thread_id
order by {_POST_ORDER}
limit :limit offset :offset
"""
POST_COUNT_SQL = "select count(*) from posts where thread_id = :thread_id"
POST_POSITION_SQL = f"""
select position from (
    select id, row_number() over (order by {_POST_ORDER}) as position
    from posts where thread_id = :thread_id
) where id = :post_id
"""

# A reply named by its forum id (a reward thread's best answer), for a link to it in the reader.
POST_BY_PID_SQL = "select id from posts where thread_id = :thread_id and pid = :pid order by id limit 1"


def page_count(post_count: int, per_page: int = POSTS_PER_PAGE) -> int:
    """Pages needed for `post_count` posts; an empty thread still has its one page."""
    return max(1, -(-post_count // per_page))


def page_of_position(position: int, per_page: int = POSTS_PER_PAGE) -> int:
    """The page (from 1) holding the post at `position` (from 1) in thread order."""
    return (position - 1) // per_page + 1
