"""Archive: the only writer of the archive file.

Every public writing method runs in its own transaction, or inside the caller's when one
is open (Archive.transaction), so the crawler can save a fetch row, the raw body, the
page's posts, the frontier change and the next URLs all or nothing.

Times: every writing method takes `now` (ISO 8601 with a UTC offset; default: the current
time). Times the archive compares (frontier due times and leases) and its own stamps are
stored in UTC (``2024-03-02T10:05:11+00:00``), so string order is time order. Times that
come from the forum (posted_at, last_post_at) are stored as given, in the site's offset.

Identity: a thread is (site, thread_key) and a post is (site, post_key); see
storage.dedup. A post's versions are its distinct normalised-content hashes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import zstandard

from storage.db import open_db
from storage.dedup import (
    classify,
    content_hash,
    extract_hash,
    normalise_content,
    normalised_quotes,
    post_key,
    thread_key,
)
from storage.records import BoardPageRecord, PostRecord, ThreadPageRecord
from storage.bigram import BIGRAM_FUNCTION
from storage.schema import BIGRAM_INDEXED_THROUGH, BIGRAM_TABLE, INDEXED_THROUGH, SEARCH_INDEX_STATE

log = logging.getLogger(__name__)

FRONTIER_STATES = ("pending", "leased", "done", "failed", "skipped")
FINISH_STATES = frozenset({"done", "failed", "skipped", "pending"})
PHRASE_STATUSES = frozenset({"proposed", "confirmed", "rejected"})
# A runs row is 'running' from start_run until finish_run closes it with one of
# RUN_END_STATUSES ('interrupted': stopped by a signal), or abandon_runs finds it left behind.
RUN_RUNNING = "running"
RUN_ABANDONED = "abandoned"
RUN_END_STATUSES = ("finished", "interrupted", "failed")
RUN_STATUSES = (RUN_RUNNING, *RUN_END_STATUSES, RUN_ABANDONED)
NORMAL_STATUS = "normal"
HIDDEN_STATUS = "hidden"  # part of the post locked away (reply to see, credits, password)
DEFAULT_LEASE_S = 300  # matches the crawler's default; storage cannot import its config
# What a post's content_hash covers (posts.hash_covers_media): 0 its text alone (a text
# rendering, which shows no media, or a post archived before versions covered them); 8 its
# text, the media references its engine gives (images, links, attachments, the files its
# [flash], [media] and [audio] players play) and the quotes it reads apart from the text (their
# text and quoted post). 1-3 were earlier forms of the references (3: before eMule, magnet and
# download-manager links were kept), 4 the references without the quotes, 6 without the
# players' files. 5 (a form of the references reverted soon after, cb6403d) and 7 (8 with the
# quotes' attribution lines, changed within the day, 08be46b) are read as 0-2 are: any change
# to what the hash holds takes the next number. A post hashed by an older scheme takes up the
# current one, without a version, when next seen as it was hashed then.
MEDIA_HASH_SCHEME = 8
# What scheme 4 added: download links, whose targets the sanitiser before it dropped from the
# HTML as well (the link stayed, without its href).
# (storage reads no engine: the schemes are scraper.clean.DOWNLOAD_LINK_SCHEMES, as kept then)
_SCHEME_4_DOWNLOAD_LINKS = ("ed2k", "magnet", "thunder", "qqdl", "flashget", "ftp")
_DOWNLOAD_LINK_TARGET = re.compile(rf' href="(?:{"|".join(_SCHEME_4_DOWNLOAD_LINKS)}):[^"]*"')
_DOWNLOAD_LINK_REF = tuple(f"{scheme}:" for scheme in _SCHEME_4_DOWNLOAD_LINKS)
# What scheme 8 added: the link the engine puts where a player stood, and its reference.
# (storage reads no engine: the forms are scraper.clean.PLAYER_LINK_MARK, on the link as the
# sanitiser writes it, and scraper.engines.discuz.PLAYER_REF_PREFIX)
_PLAYER_LINK_MARK = ' data-from="player"'
_PLAYER_LINK = re.compile(rf'<a href="[^"]*"{re.escape(_PLAYER_LINK_MARK)}[^>]*>[^<]*</a>')
_PLAYER_REF = "player:"
BODY_COMPRESSION = "zstd"
# Every fetched page pays the compression; each body is stored once. Measured on the demo
# forum's pages (benchmarks.bench_compression, 2026-11-29; stored/raw bytes, compress ms/page):
#   53 KB pages:  zstd 3 30.5% 0.13 ms, zlib 3 31.2% 0.47 ms, zlib 6 29.4% 0.85 ms
#   98 KB pages:  zstd 3 27.2% 0.23 ms, zlib 3 28.0% 1.09 ms, zlib 6 25.9% 1.91 ms
# zstd 3 stores a little less than zlib 3 for a quarter of its CPU, and reads 4x faster.
BODY_COMPRESSION_LEVEL = 3
# How each codec a version of the archive wrote reads back; the bodies row names its codec.
# Neither needs the level it was written at.
_BODY_DECOMPRESSORS: dict[str, Callable[[bytes, int], bytes]] = {
    "zlib": lambda data, size: zlib.decompress(data),
    # The size bounds the output: a damaged frame header cannot make it allocate more.
    "zstd": lambda data, size: zstandard.ZstdDecompressor().decompress(data, max_output_size=size + 1),
}
# New posts wait for the search index until this many are pending, then go in as one batch:
# FTS5 indexes a batch several times faster per post than one page at a time, and search
# finds the posts waiting meanwhile by scanning them (storage.search).
INDEX_BATCH_POSTS = 1_000
# An archive upgraded to the bigram index (schema 4) has every older post to add to it: each
# index_pending call adds this many of them besides the new ones, so no one transaction holds
# the write lock for long while the backlog goes in.
BIGRAM_BACKFILL_POSTS = 5_000
_UTC_OFFSET = re.compile(r"^[+-](?:0\d|1[0-4]):[0-5]\d$")

T = TypeVar("T")


class ReadOnlyArchiveError(PermissionError):
    """A write was attempted through an Archive opened read-only."""


@dataclass(frozen=True)
class SaveResult:
    """What saving one thread page did. Each post on the page counts in exactly one of
    new_posts, new_versions (its content changed) and unchanged_posts."""

    thread_id: int
    new_posts: int
    new_versions: int
    unchanged_posts: int
    page_changed: bool
    gone_posts: int = 0  # stored posts of the thread the page shows have vanished (vanished_pid_span)


def utc_now() -> str:
    """The current time as the archive stamps it: UTC ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def normalise_time(value: str) -> str:
    """`value` (ISO 8601 with a UTC offset) as UTC ISO 8601, so that string order is time
    order. Raises ValueError for anything else, naive times included: a time without an
    offset would silently compare wrong against every stored one."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {value!r}")
    return parsed.astimezone(timezone.utc).isoformat()


def _stamp(now: str | None) -> str:
    return utc_now() if now is None else normalise_time(now)


# ensure_ascii=False keeps Chinese readable when the JSON is browsed in Datasette. One
# encoder for the module: json.dumps with options builds a new one on every call.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def _json(value: Any) -> str:
    # Most posts have no quotes, attachments or noise: skip the encoder for those.
    if isinstance(value, (list, dict)) and not value:
        return "[]" if isinstance(value, list) else "{}"
    return _JSON_ENCODER.encode(value)


def _text(value: Any) -> str:
    """A str enum's value, or the str itself."""
    return str(getattr(value, "value", value))


def _writes(method: Callable[..., T]) -> Callable[..., T]:
    """Run a writing method in a transaction of its own, or inside the caller's."""

    @functools.wraps(method)
    def wrapper(self: Archive, *args: Any, **kwargs: Any) -> T:
        with self.transaction():
            return method(self, *args, **kwargs)

    return wrapper


def _pick(values: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: values[name] for name in names}


def _names(values: Iterable[str], what: str) -> str:
    """A JSON list of names for json_each(); a lone str would be iterated letter by letter."""
    if isinstance(values, str):
        raise TypeError(f"{what} must be a collection of str, not a str")
    return json.dumps(list(values), ensure_ascii=False)


def _quote_dict(quote: Any) -> dict[str, Any]:
    return {name: getattr(quote, name, None) for name in ("text", "author", "posted_at_raw", "pid", "attribution")}


def _attachment_dict(attachment: Any) -> dict[str, Any]:
    fields = {name: getattr(attachment, name, None) for name in ("url", "name", "aid")}
    fields["is_image"] = bool(getattr(attachment, "is_image", True))
    return fields


def _quote_identities(quotes: Iterable[Any] | None) -> list[tuple[str | None, int | None]]:
    """What of each quote a version covers: its text and quoted post (dedup.content_hash)."""
    return [(q.text, getattr(q, "pid", None)) for q in quotes or ()]


def _stored_quote_identities(quotes_json: str | None) -> list[tuple[str | None, int | None]]:
    """_quote_identities of the quotes a post was stored with (its quotes_json)."""
    return [(q.get("text"), q.get("pid")) for q in json.loads(quotes_json or "[]")]


def _post_values(post: PostRecord) -> dict[str, Any]:
    """The posts columns that come from the record, validated."""
    text, html = post.content_text, post.content_html
    if not isinstance(text, str) or not isinstance(html, str):
        raise TypeError("a post's content_text and content_html must be str")
    refs = getattr(post, "media_refs", None)  # None: a rendering that shows no media
    quotes = _quote_identities(post.quotes)
    return {
        "pid": post.pid,
        "floor": post.floor,
        "floor_label": post.floor_label,
        "author": post.author,
        "author_uid": post.author_uid,
        "posted_at": post.posted_at,
        "posted_at_raw": post.posted_at_raw,
        "content_text": text,
        "content_html": html,
        "content_hash": content_hash(text, refs or (), quotes),
        "hash_covers_media": 0 if refs is None else MEDIA_HASH_SCHEME,
        "media_refs": refs,
        "quotes": quotes,  # for _same_under_an_older_scheme, as media_refs
        "quotes_json": _json([_quote_dict(q) for q in post.quotes or ()]),
        "signature": post.signature,
        "edit_note": post.edit_note,
        "attachments_json": _json([_attachment_dict(a) for a in post.attachments or ()]),
        "status": _text(post.status or NORMAL_STATUS),
        "noise_json": _json(dict(post.noise_removed or {})),
        "subject": getattr(post, "subject", None),
    }


def _poll_dict(poll: Any) -> dict[str, Any]:
    """What of a PollRecord a page's extract hash covers: all but the countdown, which changes
    with every view."""
    return {
        "options": [{"text": text, "votes": votes} for text, votes in poll.options],
        "voters": poll.voters,
        "multiple": bool(poll.multiple),
        "max_choices": poll.max_choices,
        "results_hidden": bool(poll.results_hidden),
        "ended": bool(poll.ended),
    }


def _classified_dict(info: Any) -> dict[str, Any]:
    """threads.classified_json of a ClassifiedRecord; an expired sort's notice only when it
    has one (a table's hash is as it was before notices were read)."""
    value = {"sort_name": info.sort_name, "fields": [{"title": title, "value": value} for title, value in info.fields]}
    notice = getattr(info, "expired_notice", None)
    if notice:
        value["expired_notice"] = notice
    return value


def _special_dict(special: Any) -> dict[str, Any]:
    """threads.special_json of a SpecialThread."""
    return {"kind": special.kind, "fields": [{"name": name, "value": value} for name, value in special.fields],
            "best_answer_pid": special.best_answer_pid}


ThreadExtras = tuple[dict | None, dict | None, dict | None]  # poll, classified, special
NO_THREAD_EXTRAS: ThreadExtras = (None, None, None)


def _thread_extras(page: Any) -> ThreadExtras:
    """The page's poll, classified and special-thread information as hashed, None where it
    shows none."""
    poll, classified = getattr(page, "poll", None), getattr(page, "classified", None)
    special = getattr(page, "special", None)
    return (_poll_dict(poll) if poll is not None else None,
            _classified_dict(classified) if classified is not None else None,
            _special_dict(special) if special is not None else None)


THREAD_PARTS = ("poll", "classified", "special")  # threads.<part>_json, in this order
# What threads.poll_json adds to the poll as hashed: read anew on every view.
_POLL_VOLATILE_KEYS = ("remaining_raw", "seen_at")


def _part_identity(value_json: str | None) -> Any:
    """A stored part's value without what changes on every view (a poll's countdown)."""
    if value_json is None:
        return None
    value = json.loads(value_json)
    if isinstance(value, dict):
        for key in _POLL_VOLATILE_KEYS:
            value.pop(key, None)
    return value


def _poll_json(page: Any, hashed: dict | None, now: str) -> str | None:
    """threads.poll_json: the poll as hashed, and its countdown with the time it was read."""
    if hashed is None:
        return None
    return _json({**hashed, "remaining_raw": page.poll.remaining_raw, "seen_at": now})


def _shows_subject(post_values: Mapping[str, Any]) -> bool:
    """Whether this rendering of a post would print its reply subject if it had one: a forum
    page (not a text rendering, which shows no media and no subjects) showing the post normal
    at its own numbered floor. A reply repeated on page 1 (hot or stuck, no floor number) and
    the opening post (whose title is the thread's) do not tell."""
    return (post_values["media_refs"] is not None and post_values["status"] == NORMAL_STATUS
            and post_values["floor"] not in (None, 1))


def _shows_opening_post(page: Any) -> bool:
    """Whether the page shows the opening post as the forum renders it whole: then a poll or
    classified table it lacks is gone from the thread. A text rendering (no media_refs) or a
    locked opening post shows neither, whatever the thread has."""
    return any(post.floor == 1 and _text(post.status or NORMAL_STATUS) == NORMAL_STATUS
               and getattr(post, "media_refs", None) is not None for post in page.posts)


# The posts columns _post_values fills, in the order the batched insert binds them.
_RECORD_COLUMNS = (
    "pid", "floor", "floor_label", "author", "author_uid", "posted_at", "posted_at_raw", "content_text",
    "content_html", "content_hash", "quotes_json", "signature", "edit_note", "attachments_json", "status",
    "noise_json", "hash_covers_media", "subject",
)
# A page's new posts go in with one executemany of one constant statement (sqlite3 prepares
# it once): per-post INSERTs built from dicts cost more in Python than SQLite spent on them.
_INSERT_NEW_POST_SQL = (
    f"INSERT INTO posts (id, site_id, thread_id, post_key, page, first_seen_at, last_seen_at, "
    f"{', '.join(_RECORD_COLUMNS)}, content_status) VALUES ({', '.join('?' * (7 + len(_RECORD_COLUMNS)))}, ?)"
)
# A new post's one version: its text stays in posts (see _add_current_version).
_INSERT_FIRST_VERSION_SQL = "INSERT INTO post_versions (post_id, content_hash, edit_note, seen_at) VALUES (?, ?, ?, ?)"


def _new_post_row(post_id: int, site_id: int, thread_id: int, key: str, page_no: int | None,
                  values: Mapping[str, Any], now: str) -> tuple:
    """A new post's parameters for _INSERT_NEW_POST_SQL (values: from _post_values)."""
    return (post_id, site_id, thread_id, key, page_no, now, now, *map(values.__getitem__, _RECORD_COLUMNS),
            values["status"])


def _first_version_row(post_id: int, values: Mapping[str, Any], now: str) -> tuple:
    """A new post's first version's parameters for _INSERT_FIRST_VERSION_SQL."""
    return (post_id, values["content_hash"], values["edit_note"], now)
# A post seen again: where it is now, when it was seen, and the fields that are not versioned
# with its text, in one row write. :keeps_archived (a deleted or blocked rendering of a post
# archived while normal) leaves those fields as they were archived.
_TOUCH_POST_SQL = """UPDATE posts SET
    thread_id = :thread_id,
    pid = coalesce(:pid, pid),
    -- a numberless floor (a hot reply repeated on page 1) never moves a post
    -- away from its numbered position
    floor = CASE WHEN :floor IS NOT NULL OR floor IS NULL THEN :floor ELSE floor END,
    floor_label = CASE WHEN :floor IS NOT NULL OR floor IS NULL THEN :floor_label ELSE floor_label END,
    page = CASE WHEN :floor IS NOT NULL OR floor IS NULL THEN :page ELSE page END,
    author = coalesce(:author, author),
    author_uid = coalesce(:author_uid, author_uid),
    posted_at = coalesce(:posted_at, posted_at),
    posted_at_raw = coalesce(:posted_at_raw, posted_at_raw),
    status = :status,
    last_seen_at = :now,
    gone_at = NULL,
    signature = CASE WHEN :keeps_archived THEN signature ELSE coalesce(:signature, signature) END,
    -- a reply's title is no part of its version: refreshed in place; gone when a rendering
    -- that prints it (:shows_subject) shows none, kept by one that cannot tell
    subject = CASE WHEN :keeps_archived THEN subject WHEN :shows_subject THEN :subject
                   ELSE coalesce(:subject, subject) END,
    edit_note = CASE WHEN :keeps_archived THEN edit_note ELSE coalesce(:edit_note, edit_note) END,
    -- refreshed (Discuz signs attachment links anew every view), but an edit's come with its
    -- new content (_replace_content), after the version before it kept the old ones; quotes
    -- are part of the HTML and change only with it
    attachments_json = CASE WHEN :keeps_archived OR :versioned THEN attachments_json ELSE :attachments_json END,
    noise_json = CASE WHEN :keeps_archived THEN noise_json ELSE :noise_json END,
    -- the same hash as this rendering's: it covers what this rendering's covers (migration 11)
    hash_covers_media = CASE WHEN NOT :keeps_archived AND content_hash = :content_hash
        THEN max(hash_covers_media, :hash_covers_media) ELSE hash_covers_media END
WHERE id = :id"""


def _other_scheme_columns(attachments: str = "attachments_json") -> str:
    """The columns a stored post brings to _same_under_an_older_scheme: its hash scheme and,
    when that differs from the page's (the :scheme parameter), its text, `attachments` (an
    SQL expression; NULL for a text rendering's post, which shows none), HTML and quotes,
    else NULL: the lookup reads no text it does not need."""
    return (f"hash_covers_media, CASE WHEN hash_covers_media <> :scheme THEN content_text END, "
            f"CASE WHEN hash_covers_media <> :scheme THEN {attachments} END, "
            f"CASE WHEN hash_covers_media <> :scheme THEN content_html END, "
            f"CASE WHEN hash_covers_media <> :scheme THEN quotes_json END")


def _same_under_an_older_scheme(other: Sequence[Any], stored_hash: str, values: Mapping[str, Any]) -> bool:
    """Whether a stored post hashed by an older scheme (other: as _other_scheme_columns reads
    it; stored_hash its hash) is the rendering `values` holds, though the hashes differ. The
    post then takes up the new hash, with no version.

    Under schemes 3, 4 and 6, which hashed images and links already, the references must be
    the same but for what the later schemes added (4 the download links, 6 the quotes, 8 the
    players' files): the hash without those is the stored one, so a picture swapped since is
    an edit; and under 3 and 4 the quotes must be the ones stored with the post, so a quote
    rewritten since is one too. Schemes 0-2, 5 and 7 hashed other forms of the references or
    quotes, or none: there the same text and, unless the post came from a text rendering
    (attachments NULL), the same attachments decide. What else of its media changed before it
    was first seen under a newer scheme is not known."""
    scheme, text, attachments_json, _html, quotes_json = other
    if scheme >= values["hash_covers_media"] or text is None:
        return False
    if scheme in (3, 4, 6):
        # None hashed the players' files; 3 and 4 neither the quotes, 3 neither the download links.
        kept = [ref for ref in values.get("media_refs") or () if not ref.startswith(_PLAYER_REF)]
        if scheme == 3:
            kept = [ref for ref in kept if not ref.lower().startswith(_DOWNLOAD_LINK_REF)]
        if scheme == 6:
            return content_hash(values["content_text"], kept, values["quotes"]) == stored_hash
        # The quotes stored with the post's version stand for the ones it was hashed without.
        return (content_hash(values["content_text"], kept) == stored_hash
                and normalised_quotes(_stored_quote_identities(quotes_json)) == normalised_quotes(values["quotes"]))
    stored = normalise_content(text)
    if attachments_json is None:
        # A text rendering shows inline what the crawled one keeps apart from the text.
        for piece in _shown_apart(values):
            stored = normalise_content(stored.replace(piece, " ", 1))
    return stored == normalise_content(values["content_text"]) and (
        attachments_json is None or _attachment_keys(attachments_json) == _attachment_keys(values["attachments_json"]))


def _seconds_since(moment: str | None, now: str) -> float | None:
    """Seconds from `moment` (ISO 8601 with its offset, as posts' times are) to `now`; None
    for no time or one that reads as none (a post's time without an offset cannot be placed)."""
    if not moment:
        return None
    try:
        then = datetime.fromisoformat(moment)
    except ValueError:
        return None
    if then.tzinfo is None:
        return None
    return (datetime.fromisoformat(now) - then).total_seconds()


def _differs_only_by_links_kept_since(stored_html: str | None, values: Mapping[str, Any]) -> bool:
    """Whether a post's stored HTML is the rendering `values` holds but for the links kept
    since it was stored: the players' files (from scheme 8 on) and the download links'
    targets (which the sanitiser kept from scheme 4 on). The new HTML, which holds them, is
    then the same post's, nothing else changed. White space at the edges aside: a player that
    led the body took the white space after it with it (the parser drops leading white space)."""
    new_html = values["content_html"]
    if stored_html is None or stored_html == new_html:
        return False
    stored_html = stored_html.strip()
    without_players = _PLAYER_LINK.sub("", new_html).strip() if _PLAYER_LINK_MARK in new_html else new_html.strip()
    return without_players == stored_html or _DOWNLOAD_LINK_TARGET.sub("", without_players) == stored_html


def _shown_apart(values: Mapping[str, Any]) -> list[str]:
    """What a post's crawled rendering (values) keeps apart from its text and a text copy of
    the page shows inline, normalised: the edit note, and each quote's attribution line (as
    the engine read it) and text."""
    pieces = [values.get("edit_note") or ""]
    for quote in json.loads(values.get("quotes_json") or "[]"):
        pieces.append(quote.get("attribution") or "")
        pieces.append(quote.get("text") or "")
    return [normalised for normalised in map(normalise_content, pieces) if normalised]


def _attachment_keys(attachments_json: str | None) -> list[tuple[Any, Any]]:
    return [(a.get("aid"), a.get("name")) for a in json.loads(attachments_json or "[]") if a.get("aid")]


def _holds_new_line(text: str, archived: str) -> bool:
    """Whether a line of `text` (white space aside) is missing from `archived`."""
    archived = normalise_content(archived)
    return any(line and line not in archived for line in map(normalise_content, text.splitlines()))


def _distinct_posts(key_of_thread: str, posts: Sequence[PostRecord]) -> dict[str, PostRecord]:
    """The page's posts by post key, in page order, each key once.

    Discuz repeats a popular reply as a numberless '推荐' floor on page 1; where a key occurs
    twice, the occurrence with a floor number is the post's real position.
    """
    chosen: dict[str, PostRecord] = {}
    for post in posts:
        key = post_key(post.pid, key_of_thread, post.floor)
        held = chosen.get(key)
        if held is None or (held.floor is None and post.floor is not None):
            chosen[key] = post
    return chosen


# A pid beyond any a forum gives (SQLite's largest integer): an open end of a span.
_PID_UNBOUNDED = 2**63 - 1


@dataclass(frozen=True)
class VanishedSpan:
    """The stored posts of a thread that one of its pages shows have vanished: those not on
    the page with a pid strictly between `above` and `below`, and, outside the page's own
    run (`run_low` to `run_high`), only those last seen on this page or an earlier one."""

    above: int
    below: int
    run_low: int
    run_high: int


def vanished_pid_span(page: ThreadPageRecord) -> VanishedSpan | None:
    """Which stored posts `page` proves gone, or None when it proves nothing.

    A forum lists a thread's posts in the order of their ids (Discuz: oldest first, or
    newest first in a thread set to show them so), so the numbered posts on one page are a
    run of that order with nothing left out: a stored post whose pid falls inside the run
    and that is not on the page has vanished (deleted outright, moved to another thread,
    or taken back for moderation). Nothing precedes the first page's run, and nothing
    follows the last page's. A post Discuz shows as deleted (无效楼层) is on the page, with
    its status. Numberless floors (hot replies repeated on page 1) stand outside the order
    and are left out; a page whose numbered pids are not in one direction proves nothing.

    Beyond its run a page vouches only for posts last seen on it or before it: a page
    count read short must not condemn posts on later pages. A page of one numbered post
    shows no direction, so it proves something only when it is the whole thread. Not
    caught, then: a post that was first on a page after page 1 (it falls between two
    pages' runs), and the end of a thread whose last page is left with one post. The opening
    post is never proved gone (_MARK_VANISHED_SQL): Discuz deletes it only with its thread.
    """
    numbered = [post for post in page.posts if post.pid is not None and post.floor is not None]
    run = [post.pid for post in numbered]
    # A thread listed newest first keeps its opening post on top of page 1, above its newest
    # replies: the run is the replies, read downwards.
    if len(run) > 2 and numbered[0].floor == 1 and all(a > b for a, b in zip(run[1:], run[2:])):
        run = run[1:]
    if not run:
        return None
    oldest_first = all(a < b for a, b in zip(run, run[1:]))
    newest_first = len(run) > 1 and all(a > b for a, b in zip(run, run[1:]))
    if not (oldest_first or newest_first):
        return None
    low, high = min(run), max(run)
    first = page.page == 1
    last = page.page_count is not None and page.page >= page.page_count
    if len(run) == 1 and not (first and last):
        return None
    before_low = (first and oldest_first) or (last and newest_first) or (first and last)
    after_high = (last and oldest_first) or (first and newest_first) or (first and last)
    return VanishedSpan(above=-_PID_UNBOUNDED if before_low else low, below=_PID_UNBOUNDED if after_high else high,
                        run_low=low, run_high=high)


_COUNT_IN_SPAN_SQL = "SELECT count(*) FROM posts WHERE thread_id = ? AND pid > ? AND pid < ?"
_MARK_VANISHED_SQL = """UPDATE posts SET gone_at = :now
WHERE thread_id = :thread_id AND pid > :above AND pid < :below AND gone_at IS NULL AND coalesce(floor, 0) <> 1
  AND (pid BETWEEN :run_low AND :run_high OR page <= :page)
  AND pid NOT IN (SELECT value FROM json_each(:present))"""


def replies_newest_first(page: Any) -> bool | None:
    """Whether a thread page lists its replies newest first (a thread set so; Discuz keeps the
    opening post on top): its numbered replies run downwards. None when fewer than two show."""
    floors = [post.floor for post in page.posts if post.floor is not None and post.floor > 1]
    if len(floors) < 2:
        return None
    if all(a > b for a, b in zip(floors, floors[1:])):
        return True
    return False if all(a < b for a, b in zip(floors, floors[1:])) else None


def thread_page_extract_hash(page: Any) -> str:
    """The extract hash save_thread_page stores for `page`: equal hashes mean the page
    holds the same posts with the same content, so saving it again would change nothing."""
    posts = _distinct_posts(thread_key(page.tid, page.title), page.posts)
    return _extract_of({key: _post_values(post) for key, post in posts.items()}, _thread_extras(page))


def _extract_of(values: Mapping[str, dict], extras: ThreadExtras = NO_THREAD_EXTRAS) -> str:
    # With each post's hash scheme: a page saved before a scheme came is saved again when next
    # fetched, not skipped as unchanged, so its posts take up the scheme while they are as
    # archived (a post first seen changed under it could be taken for an older version).
    entries: list[Iterable[object]] = [(key, v["content_hash"], v["hash_covers_media"]) for key, v in values.items()]
    # Subjects, a poll's counts and classified fields are not versioned, but a page that changes
    # them is saved again. Only pages that show them hash them: other pages' hashes are as
    # before, and a page archived before they were read is saved again once, which reads them.
    entries += [("subject", key, v["subject"]) for key, v in values.items() if v["subject"] is not None]
    entries += [(name, extra) for name, extra in zip(THREAD_PARTS, extras) if extra is not None]
    return extract_hash(entries)


class Archive:
    """The archive file, opened for writing (the default) or read-only.

    One Archive is one SQLite connection: use it from one thread at a time. Several
    processes may each open their own; WAL and busy_timeout let them take turns.
    """

    def __init__(
        self, path: str | Path, *, readonly: bool = False, index_batch_posts: int | None = INDEX_BATCH_POSTS
    ):
        """Open the archive at `path`. index_batch_posts: new posts the search index may lag
        behind before a save indexes them (None: only index_pending, finish_run and close do)."""
        if index_batch_posts is not None and index_batch_posts < 1:
            raise ValueError(f"index_batch_posts must be positive or None, got {index_batch_posts!r}")
        self.path = Path(path)
        self.readonly = readonly
        self.index_batch_posts = index_batch_posts
        self._posts_since_index = 0
        self._block_depth = 0  # transaction blocks open in this call stack
        self._group_max_age_s: float | None = None  # inside grouped_commits: how long a group may stay open
        self._group_users = 0  # grouped_commits blocks open (crawlers sharing this archive)
        self._group_started: float | None = None  # monotonic time the open group's first block ended
        # Kept for the archive's life: a compressor's context is costly to set up per body.
        self._body_compressor = zstandard.ZstdCompressor(level=BODY_COMPRESSION_LEVEL)
        self.db = open_db(self.path, readonly=readonly)

    def close(self) -> None:
        """Index the posts still waiting for the search index, then close the connection."""
        if not self.readonly:
            self._group_max_age_s = None  # closing ends any group: the indexing below commits alone
            self.commit_group()
        try:
            # Counting first spares taking the write lock when nothing waits.
            if not self.readonly and not self.db.conn.in_transaction and self.pending_index_count():
                self.index_pending()
        except sqlite3.OperationalError:
            # Another writer holds the lock past busy_timeout: the posts stay pending, and
            # search still finds them by scanning; the next writer indexes them.
            pass
        finally:
            self.db.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- transactions -----------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Archive]:
        """All writes inside the block commit together or not at all.

        The outermost block is ``BEGIN IMMEDIATE`` (the write lock is taken up front, so a
        busy archive makes the caller wait at the start rather than fail half-way). Inner
        blocks are savepoints within it: an exception caught inside the outer block undoes
        only the inner block's writes. Inside grouped_commits the outermost block may leave
        its transaction open for the next blocks to join (each of them then a savepoint):
        still all or nothing per block, committed together later.
        """
        if self.readonly:
            raise ReadOnlyArchiveError(f"{self.path} was opened read-only")
        conn = self.db.conn
        nested = conn.in_transaction
        conn.execute("SAVEPOINT archive_nested" if nested else "BEGIN IMMEDIATE")
        self._block_depth += 1
        try:
            yield self
        except BaseException:
            # An error such as SQLITE_FULL may already have ended the transaction.
            if conn.in_transaction:
                if nested:
                    conn.execute("ROLLBACK TO archive_nested")
                    conn.execute("RELEASE archive_nested")
                else:
                    conn.execute("ROLLBACK")
            if not conn.in_transaction and self._group_started is not None:
                # SQLite rolled the whole group back: its frontier rows went back with their
                # pages, so those pages are leased again and fetched once the leases expire.
                log.warning("%s: SQLite rolled back a group of uncommitted pages; they will be fetched again",
                            self.path)
                self._group_started = None
            raise
        finally:
            self._block_depth -= 1
        if nested:
            conn.execute("RELEASE archive_nested")
            if self._block_depth == 0:  # an outermost block that joined the open group
                self.commit_due_group()
            return
        if self._group_max_age_s is not None and self._group_max_age_s > 0:
            self._group_started = time.monotonic()
            return
        self._commit()

    def _commit(self) -> None:
        conn = self.db.conn
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def grouped_commits(self, max_age_s: float) -> Iterator[Archive]:
        """Inside the block, transaction blocks commit in groups: one COMMIT for every
        `max_age_s` seconds of them instead of one each (a COMMIT costs a crawled page about as
        much as its posts' inserts). Each block stays all or nothing; a crash or kill loses the
        open group whole, frontier rows included, so its pages are fetched again, never half
        saved. The caller calls commit_due_group() at least every `max_age_s` while idle (the
        crawler does from a timer); leaving the outermost such block commits what is open.
        Blocks may nest (crawlers sharing one archive): the first one's age limit holds.
        """
        if max_age_s < 0:
            raise ValueError(f"max_age_s must not be negative, got {max_age_s!r}")
        if self._group_users == 0:
            self._group_max_age_s = max_age_s
        self._group_users += 1
        try:
            yield self
        finally:
            self._group_users -= 1
            if self._group_users == 0:
                self._group_max_age_s = None
                self.commit_group()

    def commit_due_group(self) -> None:
        """Commit the open group once it is as old as grouped_commits allows."""
        started = self._group_started
        if started is not None and (self._group_max_age_s is None
                                    or time.monotonic() - started >= self._group_max_age_s):
            self.commit_group()

    def commit_group(self) -> None:
        """Commit the open group of transaction blocks now, if there is one (never from
        inside a block: its writes are not done)."""
        if self._group_started is None or self._block_depth:
            return
        self._group_started = None
        if self.db.conn.in_transaction:
            self._commit()

    # --- small SQL helpers ------------------------------------------------------------
    def _all(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict]:
        cursor = self.db.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _one(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> dict | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _insert(self, table: str, values: Mapping[str, Any]) -> int:
        # Table and column names come from this module, never from input; values are bound.
        columns = ", ".join(values)
        placeholders = ", ".join(f":{name}" for name in values)
        cursor = self.db.execute(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", values)
        return cursor.lastrowid

    def _require_row(self, table: str, column: str, value: Any, what: str) -> None:
        # A clear LookupError instead of a bare "FOREIGN KEY constraint failed".
        if value is None:
            return
        if self.db.conn.execute(f"SELECT 1 FROM {table} WHERE {column} = ?", [value]).fetchone() is None:
            raise LookupError(f"no {what} {value!r} in the archive")

    # --- search index -----------------------------------------------------------------
    def indexed_through(self) -> int:
        """The highest post id the search index holds: every post up to it is indexed,
        none above it."""
        return self.db.execute(f"SELECT {INDEXED_THROUGH}").fetchone()[0]

    def pending_index_count(self) -> int:
        """How many posts wait for a search index (the trigram or the bigram one)."""
        return self.db.execute(
            f"SELECT count(*) FROM posts WHERE id > min({INDEXED_THROUGH}, {BIGRAM_INDEXED_THROUGH})"
        ).fetchone()[0]

    @_writes
    def index_pending(self, limit: int | None = None) -> int:
        """Add the posts above the watermark to the search indexes (at most `limit`, oldest
        first; None: all), one statement per index, and move each index's watermark past
        them. Returns how many posts the busier index took.

        posts_fts and posts_bigram take the same posts, except on an archive upgraded to the
        bigram index: its older posts go into posts_bigram BIGRAM_BACKFILL_POSTS a call on top.

        Saving calls this once index_batch_posts posts are pending, finish_run and close call
        it too; a crash before it runs loses nothing: the posts are committed, search finds
        them by scanning, and the next call indexes them.
        """
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be positive or None, got {limit!r}")
        start = self.indexed_through()
        count = self._index_range("posts_fts", "content_text", "content_text", start, -1 if limit is None else limit)
        bigram_start = self.db.execute(f"SELECT {BIGRAM_INDEXED_THROUGH}").fetchone()[0]
        bigram_count = self._index_range(
            BIGRAM_TABLE, "pairs", f"{BIGRAM_FUNCTION}(content_text)", bigram_start,
            count + (BIGRAM_BACKFILL_POSTS if bigram_start < start else 0),
        )
        self._posts_since_index = 0
        return max(count, bigram_count)

    def index_all(self, on_batch: Callable[[int, int], None] | None = None) -> int:
        """Index every pending post now, INDEX_BATCH_POSTS new posts (plus the bigram backfill)
        a transaction, so a long catch-up never holds the write lock for long and an
        interruption keeps what was done. `on_batch(indexed so far, still pending)` is called
        after each. Returns how many posts were indexed (the busier index's count).

        For an archive upgraded to an index it lacked: left to the crawler's batches, its
        backlog drains BIGRAM_BACKFILL_POSTS a batch, while its searches scan the posts above
        the watermark (`forum-archiver index` calls this)."""
        done = 0
        pending = self.pending_index_count()
        while pending:
            indexed = self.index_pending(limit=INDEX_BATCH_POSTS)
            if not indexed:  # cannot happen while posts are pending; never spin if it does
                break
            done += indexed
            pending = self.pending_index_count()
            if on_batch is not None:
                on_batch(done, pending)
        return done

    def _index_range(self, fts: str, column: str, document: str, start: int, limit: int) -> int:
        """Index up to `limit` posts above `start` (-1: all) into `fts`'s `column` as
        `document` (an SQL expression over posts), and move its watermark."""
        if limit == 0:
            return 0
        count, last_id = self.db.execute(
            "SELECT count(*), max(id) FROM (SELECT id FROM posts WHERE id > ? ORDER BY id LIMIT ?)",
            [start, limit],
        ).fetchone()
        if count:
            # Names and SQL come from this module, never from input.
            self.db.execute(
                f"""INSERT INTO {fts} (rowid, {column})
                SELECT id, {document} FROM posts WHERE id > ? AND id <= ? ORDER BY id""",
                [start, last_id],
            )
            self.db.execute(
                f"UPDATE {SEARCH_INDEX_STATE} SET indexed_through = ? WHERE fts_table = ?", [last_id, fts]
            )
        return count

    def _index_when_due(self, new_posts: int) -> None:
        self._posts_since_index += new_posts
        if self.index_batch_posts is not None and self._posts_since_index >= self.index_batch_posts:
            self.index_pending()

    # --- sites ------------------------------------------------------------------------
    @_writes
    def upsert_site(
        self,
        name: str,
        *,
        engine: str,
        base_url: str | None = None,
        utc_offset: str = "+08:00",
        config: Mapping[str, Any] | None = None,
        now: str | None = None,
    ) -> int:
        """Create the site `name` or update it; returns its id.

        base_url and config left as None keep what an existing site has.
        """
        if not name or not engine:
            raise ValueError("a site needs a name and an engine")
        if not _UTC_OFFSET.match(utc_offset):
            raise ValueError(f"utc_offset must look like +08:00, got {utc_offset!r}")
        row = self._one(
            """INSERT INTO sites (name, engine, base_url, utc_offset, config_json, created_at)
            VALUES (:name, :engine, :base_url, :utc_offset, coalesce(:config_json, '{}'), :now)
            ON CONFLICT (name) DO UPDATE SET
                engine = excluded.engine,
                base_url = coalesce(:base_url, sites.base_url),
                utc_offset = excluded.utc_offset,
                config_json = coalesce(:config_json, sites.config_json)
            RETURNING id""",
            {
                "name": name,
                "engine": engine,
                "base_url": base_url,
                "utc_offset": utc_offset,
                "config_json": None if config is None else _json(dict(config)),
                "now": _stamp(now),
            },
        )
        return row["id"]

    def get_site(self, name: str) -> dict | None:
        """The sites row named `name`, or None."""
        return self._one("SELECT * FROM sites WHERE name = ?", [name])

    # --- fetches and bodies -----------------------------------------------------------
    @_writes
    def record_fetch(
        self,
        *,
        url: str,
        status: int | None = None,
        reason: str | None = None,
        final_url: str | None = None,
        nbytes: int | None = None,
        elapsed_ms: int | None = None,
        body_sha256: str | None = None,
        site_id: int | None = None,
        run_id: int | None = None,
        method: str = "GET",
        now: str | None = None,
    ) -> int:
        """Record one HTTP attempt (call it exactly once per attempt); returns the row id."""
        self._require_row("bodies", "sha256", body_sha256, "body")
        return self._insert(
            "fetches",
            {
                "site_id": site_id,
                "run_id": run_id,
                "url": url,
                "final_url": final_url,
                "method": method,
                "status": status,
                "reason": reason,
                "bytes": nbytes,
                "elapsed_ms": elapsed_ms,
                "body_sha256": body_sha256,
                "fetched_at": _stamp(now),
            },
        )

    @_writes
    def store_body(self, body: bytes, now: str | None = None) -> str:
        """Store a raw response body once, compressed (BODY_COMPRESSION); returns its sha256 hex."""
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"a body is bytes, got {type(body).__name__}")
        body = bytes(body)
        digest = hashlib.sha256(body).hexdigest()
        # Checking first spares compressing a body the archive already holds.
        if self.db.execute("SELECT 1 FROM bodies WHERE sha256 = ?", [digest]).fetchone():
            return digest
        data = self._body_compressor.compress(body)
        self.db.execute(
            """INSERT INTO bodies (sha256, compression, size, stored_size, data, first_seen_at)
            VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING""",
            [digest, BODY_COMPRESSION, len(body), len(data), data, _stamp(now)],
        )
        return digest

    def read_body(self, sha256: str) -> bytes:
        """The raw body stored under `sha256`. Raises LookupError when there is none and
        ValueError when the stored bytes do not match their hash."""
        row = self._one("SELECT compression, size, data FROM bodies WHERE sha256 = ?", [sha256])
        if row is None:
            raise LookupError(f"no body {sha256!r} in the archive")
        decompress = _BODY_DECOMPRESSORS.get(row["compression"])
        if decompress is None:
            raise ValueError(f"body {sha256} uses unknown compression {row['compression']!r}")
        try:
            body = decompress(row["data"], row["size"])
        except (zlib.error, zstandard.ZstdError) as exc:
            raise ValueError(f"body {sha256} is corrupt: {exc}") from exc
        if len(body) != row["size"] or hashlib.sha256(body).hexdigest() != sha256:
            raise ValueError(f"body {sha256} is corrupt: its bytes do not match its hash")
        return body

    @_writes
    def record_parse_failure(
        self,
        *,
        url: str,
        reason: str,
        detail: str | None = None,
        body_sha256: str | None = None,
        site_id: int | None = None,
        now: str | None = None,
    ) -> int:
        """Record a page that could not be parsed (its body stays in bodies); returns the id."""
        self._require_row("bodies", "sha256", body_sha256, "body")
        return self._insert(
            "parse_failures",
            {
                "site_id": site_id,
                "url": url,
                "body_sha256": body_sha256,
                "reason": reason,
                "detail": detail,
                "at": _stamp(now),
            },
        )

    # --- pages, threads, posts --------------------------------------------------------
    @_writes
    def save_thread_page(
        self,
        site_id: int,
        page: ThreadPageRecord,
        *,
        url: str,
        url_key: str,
        body_sha256: str | None = None,
        encoding: str | None = None,
        replaced_chars: int = 0,
        etag: str | None = None,
        last_modified: str | None = None,
        now: str | None = None,
    ) -> SaveResult:
        """Save one parsed thread page: its thread, its posts (new ones, new versions of
        changed ones, last_seen_at for the rest) and its pages row.

        A post whose status is no longer normal (deleted, blocked, hidden) keeps the
        content archived while it was normal: only its status and last sighting change.
        """
        stamp = _stamp(now)
        fetch_meta = self._fetch_meta(site_id, body_sha256, encoding, replaced_chars, etag, last_modified)
        key_of_thread = thread_key(page.tid, page.title)
        posts = _distinct_posts(key_of_thread, page.posts)
        values = {key: _post_values(post) for key, post in posts.items()}
        extras = _thread_extras(page)
        thread_id, thread_is_new = self._upsert_thread_from_page(site_id, key_of_thread, page, url, stamp, extras)
        new, same, changed = self._save_posts(site_id, thread_id, page.page, values, stamp,
                                              thread_is_new=thread_is_new)
        # A thread this save created holds only this page's posts: none can have vanished.
        gone = 0 if thread_is_new else self._mark_vanished(thread_id, page, stamp)
        page_changed = self._upsert_page(
            site_id,
            kind="thread",
            url=url,
            url_key=url_key,
            thread_id=thread_id,
            page_no=page.page,
            extract=_extract_of(values, extras),
            item_count=len(values),
            fetch_meta=fetch_meta,
            now=stamp,
        )
        self._index_when_due(new)
        return SaveResult(
            thread_id=thread_id,
            new_posts=new,
            new_versions=changed,
            unchanged_posts=same,
            page_changed=page_changed,
            gone_posts=gone,
        )

    def _fetch_meta(
        self,
        site_id: int,
        body_sha256: str | None,
        encoding: str | None,
        replaced_chars: int,
        etag: str | None,
        last_modified: str | None,
    ) -> dict[str, Any]:
        """Check that the page's site and body exist; return the pages columns that
        describe the response it came from."""
        self._require_row("sites", "id", site_id, "site")
        self._require_row("bodies", "sha256", body_sha256, "body")
        return {
            "body_sha256": body_sha256,
            "encoding": encoding,
            "replaced_chars": replaced_chars,
            "etag": etag,
            "last_modified": last_modified,
        }

    def _upsert_thread_from_page(
        self, site_id: int, key: str, page: ThreadPageRecord, url: str, now: str,
        extras: ThreadExtras = NO_THREAD_EXTRAS,
    ) -> tuple[int, bool]:
        """The thread's id, and whether this save created it (its first sighting is now)."""
        title = (page.title or "").strip() or None
        # The title is left out of the update: naming it there, even unchanged, fires the
        # threads_fts update trigger, which re-indexes the title on every page of a thread.
        # Asked, not inferred from first_seen_at == now: two saves in one second would pass for
        # the thread's first, and a text import of a thread crawled that second stored twice.
        before = self.db.conn.execute(
            "SELECT poll_json, classified_json, special_json FROM threads WHERE site_id = ? AND thread_key = ?",
            [site_id, key]).fetchone()
        thread_id, stored_title, *parts_after = self.db.conn.execute(
            """INSERT INTO threads (site_id, tid, thread_key, title, url, board, fid, replies,
                views, page_count, newest_first, last_archived_post_at, poll_json, classified_json,
                special_json, first_seen_at, last_seen_at)
            VALUES (:site_id, :tid, :key, :title, :url, :board, :fid, :replies, :views,
                :page_count, :newest_first, :last_post_at, :poll_json, :classified_json, :special_json,
                :now, :now)
            ON CONFLICT (site_id, thread_key) DO UPDATE SET
                tid = coalesce(excluded.tid, threads.tid),
                -- page 1's canonical URL is the thread's URL; later pages only fill a gap
                url = CASE WHEN :is_first_page THEN excluded.url
                           ELSE coalesce(threads.url, excluded.url) END,
                board = coalesce(excluded.board, threads.board),
                fid = coalesce(excluded.fid, threads.fid),
                replies = coalesce(excluded.replies, threads.replies),
                views = coalesce(excluded.views, threads.views),
                page_count = coalesce(excluded.page_count, threads.page_count),
                newest_first = coalesce(excluded.newest_first, threads.newest_first),
                -- max() of SQLite is NULL when either is: the later of the two that are known
                last_archived_post_at = coalesce(max(threads.last_archived_post_at, excluded.last_archived_post_at),
                                                 threads.last_archived_post_at, excluded.last_archived_post_at),
                -- the latest poll and classified fields seen; only a page that shows the
                -- opening post whole may find them gone (a later page or a text copy shows neither)
                poll_json = CASE WHEN excluded.poll_json IS NOT NULL OR :shows_opening_post
                                 THEN excluded.poll_json ELSE threads.poll_json END,
                classified_json = CASE WHEN excluded.classified_json IS NOT NULL OR :shows_opening_post
                                       THEN excluded.classified_json ELSE threads.classified_json END,
                special_json = CASE WHEN excluded.special_json IS NOT NULL OR :shows_opening_post
                                    THEN excluded.special_json ELSE threads.special_json END,
                last_seen_at = excluded.last_seen_at,
                gone_at = NULL
            RETURNING id, title, poll_json, classified_json, special_json""",
            {
                "site_id": site_id,
                "tid": page.tid,
                "key": key,
                "title": title,
                "url": page.canonical_url or url,
                "board": page.board,
                "fid": page.fid,
                "replies": page.replies,
                "views": page.views,
                "page_count": page.page_count,
                "newest_first": replies_newest_first(page),
                "last_post_at": max((post.posted_at for post in page.posts if post.posted_at), default=None),
                "is_first_page": page.page == 1,
                "poll_json": _poll_json(page, extras[0], now),
                "classified_json": _json(extras[1]) if extras[1] is not None else None,
                "special_json": _json(extras[2]) if extras[2] is not None else None,
                "shows_opening_post": _shows_opening_post(page),
                "now": now,
            },
        ).fetchone()
        if title is not None and title != stored_title:
            self._set_thread_title(thread_id, title)
        self._record_thread_part_changes(thread_id, before or (None, None, None), parts_after, now)
        return thread_id, before is None

    def _record_thread_part_changes(self, thread_id: int, before: Sequence[str | None],
                                    after: Sequence[str | None], now: str) -> None:
        """A row in thread_part_versions for each of the poll, classified and special parts
        whose stored value this save changed (NULL: gone from page 1); a poll's countdown and
        the time it was read are no change."""
        changed = [(part, new) for part, old, new in zip(THREAD_PARTS, before, after)
                   if old != new and _part_identity(old) != _part_identity(new)]
        if changed:
            self.db.conn.executemany(
                "INSERT INTO thread_part_versions (thread_id, part, value_json, seen_at) VALUES (?, ?, ?, ?)",
                [(thread_id, part, value, now) for part, value in changed])

    def _set_thread_title(self, thread_id: int, title: str) -> None:
        # Apart from the upserts, so threads_fts re-indexes a title only when it changes.
        self.db.conn.execute("UPDATE threads SET title = ? WHERE id = ?", [title, thread_id])

    def _save_posts(
        self, site_id: int, thread_id: int, page_no: int, values: Mapping[str, dict], now: str,
        *, thread_is_new: bool = False,
    ) -> tuple[int, int, int]:
        """Insert, touch or version a page's posts (values: by post key); returns how many
        were new, the same, and changed. New posts and their first versions go in with one
        executemany each, every post seen again is touched with one more; only an edited
        post takes statements of its own."""
        conn = self.db.conn
        scheme = next(iter(values.values()))["hash_covers_media"] if values else MEDIA_HASH_SCHEME
        # One lookup for the whole page: the dedup check.
        stored = {
            key: (post_id, stored_hash, archived_from_normal, other)
            for key, post_id, stored_hash, archived_from_normal, *other in conn.execute(
                # content_status NULL: a post already off normal when the column came (migration 6),
                # read as archived text. A post hashed by another scheme brings what the
                # comparison of the two takes.
                f"""SELECT post_key, id, content_hash, coalesce(content_status, 'normal') = 'normal',
                    {_other_scheme_columns()} FROM posts
                WHERE site_id = :site_id AND post_key IN (SELECT value FROM json_each(:keys))""",
                {"site_id": site_id, "keys": _names(values, "post keys"), "scheme": scheme},
            )
        }
        new_keys = [key for key in values if key not in stored]
        # Posts of a text rendering (no pid) found as crawled posts (with one): see below.
        text_of_crawled: set[str] = set()
        if new_keys and not thread_is_new:  # a thread this save created holds nothing to adopt
            adopted = self._adopt_floor_keyed_posts(thread_id, {key: values[key] for key in new_keys}, scheme)
            stored.update(adopted)
            new_keys = [key for key in new_keys if key not in adopted]
            text_of_crawled = {key for key in adopted if values[key]["pid"] is None}
        if new_keys:
            # Ids are given, not left to SQLite, so the versions can be bound to them in one
            # executemany. max(id) + 1 is the id SQLite itself would pick: this transaction
            # holds the write lock, and ids keep growing past the search index's watermark.
            next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM posts").fetchone()[0]
            new_ids = range(next_id, next_id + len(new_keys))
            conn.executemany(
                _INSERT_NEW_POST_SQL,
                [_new_post_row(post_id, site_id, thread_id, key, page_no, values[key], now)
                 for post_id, key in zip(new_ids, new_keys)],
            )
            conn.executemany(
                _INSERT_FIRST_VERSION_SQL,
                [_first_version_row(post_id, values[key], now) for post_id, key in zip(new_ids, new_keys)],
            )
        touches = []
        edited = []
        shows_new_text = self._hidden_renderings_with_new_text(stored, values)
        for key, (post_id, stored_hash, archived_from_normal, other) in stored.items():
            post_values = values[key]
            if other[0] > post_values["hash_covers_media"] or key in text_of_crawled:
                # A rendering that shows less of a post than the one it was archived from (a
                # text rendering of a crawled post: no media, no attachments, its edit note,
                # quotes and notices inline) changes nothing of it, not even when it was seen.
                # A post crawled before the media scheme is at scheme 0, as a text's posts are:
                # its pid tells it.
                continue
            # A deleted, blocked or hidden rendering must not overwrite text archived from a
            # normal one, on this visit or any later one (the status alone moves off normal at
            # the first); it may replace another such rendering (a hidden post's visible part).
            # A hidden rendering whose visible part says what the archived text does not is an
            # edit (the author added a [hide] block and rewrote the rest): it is versioned,
            # and the archived text stays as the version before it.
            keeps_archived = (post_values["status"] != NORMAL_STATUS and archived_from_normal
                              and post_id not in shows_new_text)
            versioned = False
            if not keeps_archived and classify(stored_hash, post_values["content_hash"]) == "changed":
                if _same_under_an_older_scheme(other, stored_hash, post_values):
                    # A text rendering's HTML is its text: the crawled rendering's is the post's.
                    # So is one that only adds what the older scheme's engine dropped.
                    with_html = other[2] is None or _differs_only_by_links_kept_since(other[3], post_values)
                    self._take_up_media_hash(post_id, stored_hash, post_values, with_html=with_html)
                else:
                    versioned = True
                    edited.append((post_id, post_values))
            touches.append(
                {**post_values, "id": post_id, "thread_id": thread_id, "page": page_no, "now": now,
                 "keeps_archived": keeps_archived, "versioned": versioned,
                 "shows_subject": _shows_subject(post_values)}
            )
        if touches:
            conn.executemany(_TOUCH_POST_SQL, touches)
        for post_id, post_values in edited:
            self._replace_content(post_id, post_values, now)
        return len(new_keys), len(stored) - len(edited), len(edited)

    def _take_up_media_hash(self, post_id: int, old_hash: str, values: Mapping[str, Any], *, with_html: bool) -> None:
        """The stored post is the rendering `values` holds, hashed by an older scheme: it takes
        the current hash (and, with_html, the rendering's HTML), and stays one version."""
        conn = self.db.conn
        # with_html: the stored post is a text rendering, which shows its edit note and quotes
        # inline: the crawled rendering's text, kept apart from them, is the post's.
        conn.execute("UPDATE posts SET content_hash = ?, hash_covers_media = ?, "
                     "content_html = CASE WHEN ? THEN ? ELSE content_html END, "
                     "content_text = CASE WHEN ? THEN ? ELSE content_text END, "
                     "quotes_json = CASE WHEN ? THEN ? ELSE quotes_json END WHERE id = ?",
                     [values["content_hash"], values["hash_covers_media"], with_html, values["content_html"],
                      with_html, values["content_text"], with_html, values["quotes_json"], post_id])
        conn.execute("UPDATE OR IGNORE post_versions SET content_hash = ? WHERE post_id = ? AND content_hash = ?",
                     [values["content_hash"], post_id, old_hash])

    def _adopt_floor_keyed_posts(self, thread_id: int, new: Mapping[str, dict], scheme: int) -> dict[str, tuple]:
        """The posts of this page new by their key that the thread holds already under another
        one, returned as the dedup lookup gives stored ones, so they are saved as seen again,
        not stored twice. A text rendering shows no pids, so its posts are keyed by floor:
        - a post new by its pid that the thread holds without one (a text import) is the stored
          post at the same floor, by the same author at the same time; it takes the pid and its key;
        - a post of a text rendering (no pid) is the live stored post at the same floor, by the
          same author at the same time, whatever its key (a crawled post keeps its pid and key)."""
        floor_keyed = {(v["floor"], v["author"], v["posted_at_raw"]): key for key, v in new.items()
                       if v["pid"] is None and v["floor"] is not None}
        adopted = self._stored_at_the_same_floors(thread_id, floor_keyed, scheme) if floor_keyed else {}
        by_floor = {(v["floor"], v["author"], v["posted_at_raw"]): key for key, v in new.items()
                    if v["pid"] is not None and v["floor"] is not None}
        if not by_floor:
            return adopted
        # A post keyed by floor comes from a text rendering, which shows no attachments: its
        # take-up compares its text alone (attachments NULL).
        for post_id, floor, author, posted_at_raw, stored_hash, from_normal, *older in self.db.conn.execute(
                f"""SELECT id, floor, author, posted_at_raw, content_hash,
                    coalesce(content_status, 'normal') = 'normal', {_other_scheme_columns("NULL")}
                FROM posts WHERE thread_id = :thread_id AND pid IS NULL AND floor IS NOT NULL""",
                {"thread_id": thread_id, "scheme": scheme}):
            key = by_floor.get((floor, author, posted_at_raw))
            if key is not None and key not in adopted:
                self.db.conn.execute("UPDATE posts SET pid = ?, post_key = ? WHERE id = ?",
                                     [new[key]["pid"], key, post_id])
                adopted[key] = (post_id, stored_hash, from_normal, older)
        return adopted

    def _stored_at_the_same_floors(self, thread_id: int, floor_keyed: Mapping[tuple, str], scheme: int) -> dict[str, tuple]:
        found = {}
        for post_id, floor, author, posted_at_raw, stored_hash, from_normal, *other in self.db.conn.execute(
                f"""SELECT id, floor, author, posted_at_raw, content_hash,
                    coalesce(content_status, 'normal') = 'normal', {_other_scheme_columns()}
                FROM posts WHERE thread_id = :thread_id AND pid IS NOT NULL AND gone_at IS NULL
                    AND floor IN (SELECT value FROM json_each(:floors))""",
                {"thread_id": thread_id, "floors": json.dumps(sorted({f for f, _, _ in floor_keyed})), "scheme": scheme}):
            key = floor_keyed.get((floor, author, posted_at_raw))
            if key is not None and key not in found:
                found[key] = (post_id, stored_hash, from_normal, other)
        return found

    def _hidden_renderings_with_new_text(self, stored: Mapping[str, tuple], values: Mapping[str, dict]) -> set[int]:
        """Ids of stored posts whose rendering on this page is hidden (part of it locked away)
        and whose visible text holds a line the archived text does not: an edit, not a part
        of the archived text hidden. Reads the archived text of hidden renderings only."""
        hidden = {post_id: values[key] for key, (post_id, stored_hash, *_) in stored.items()
                  if values[key]["status"] == HIDDEN_STATUS and values[key]["content_hash"] != stored_hash}
        if not hidden:
            return set()
        archived = dict(self.db.conn.execute(
            "SELECT id, content_text FROM posts WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(list(hidden))]))
        return {post_id for post_id, post_values in hidden.items()
                if _holds_new_line(post_values["content_text"], archived.get(post_id) or "")}

    def _replace_content(self, post_id: int, values: dict, now: str) -> None:
        # The version being superseded gets its text from posts before posts changes.
        self.db.execute(
            """UPDATE post_versions SET content_text = p.content_text, content_html = p.content_html,
                attachments_json = p.attachments_json, quotes_json = p.quotes_json
            FROM posts AS p
            WHERE p.id = :id AND post_versions.post_id = p.id
                AND post_versions.content_hash = p.content_hash AND post_versions.content_text IS NULL""",
            {"id": post_id},
        )
        added = self._add_current_version(post_id, values, now)
        self.db.execute(
            """UPDATE posts SET
                content_text = :content_text,
                content_html = :content_html,
                content_hash = :content_hash,
                hash_covers_media = :hash_covers_media,
                content_status = :status,
                attachments_json = :attachments_json,
                quotes_json = :quotes_json,
                version_count = version_count + :added
            WHERE id = :id""",
            {
                "id": post_id,
                "added": added,
                **_pick(values, "content_text", "content_html", "content_hash", "hash_covers_media", "status",
                        "attachments_json", "quotes_json"),
            },
        )

    def _add_current_version(self, post_id: int, values: dict, now: str) -> int:
        """Record `values` as the post's current version: a post_versions row without text
        (posts holds it) unless this content was seen before (A -> B -> A keeps two rows, A's
        row gives its text back to posts, and post_reverts says when the post went back to
        A). Returns how many post_versions rows were added."""
        cursor = self.db.execute(
            """INSERT INTO post_versions (post_id, content_hash, edit_note, seen_at)
            VALUES (?, ?, ?, ?)
            ON CONFLICT (post_id, content_hash) DO NOTHING""",
            [post_id, values["content_hash"], values["edit_note"], now],
        )
        if cursor.rowcount:
            return 1
        self.db.execute(
            """UPDATE post_versions SET content_text = NULL, content_html = NULL, attachments_json = NULL,
                quotes_json = NULL
            WHERE post_id = ? AND content_hash = ?""",
            [post_id, values["content_hash"]],
        )
        self.db.execute(
            """INSERT INTO post_reverts (post_id, version_id, seen_at)
            SELECT post_id, id, ? FROM post_versions WHERE post_id = ? AND content_hash = ?""",
            [now, post_id, values["content_hash"]],
        )
        return 0

    def _upsert_page(
        self,
        site_id: int,
        *,
        kind: str,
        url: str,
        url_key: str,
        thread_id: int | None,
        page_no: int | None,
        extract: str,
        item_count: int,
        fetch_meta: Mapping[str, Any],
        now: str,
    ) -> bool:
        """Upsert a pages row; returns whether its extract hash changed (True when new)."""
        prior = self.db.conn.execute(
            "SELECT extract_hash FROM pages WHERE site_id = ? AND url_key = ?", [site_id, url_key]
        ).fetchone()
        changed = prior is None or prior[0] != extract
        self.db.conn.execute(
            """INSERT INTO pages (site_id, url, url_key, kind, thread_id, page_no, body_sha256,
                encoding, replaced_chars, etag, last_modified, extract_hash, post_count,
                first_fetched_at, last_fetched_at, last_changed_at)
            VALUES (:site_id, :url, :url_key, :kind, :thread_id, :page_no, :body_sha256,
                :encoding, :replaced_chars, :etag, :last_modified, :extract_hash, :item_count,
                :now, :now, :now)
            ON CONFLICT (site_id, url_key) DO UPDATE SET
                url = excluded.url,
                kind = excluded.kind,
                thread_id = coalesce(excluded.thread_id, pages.thread_id),
                page_no = coalesce(excluded.page_no, pages.page_no),
                body_sha256 = coalesce(excluded.body_sha256, pages.body_sha256),
                encoding = coalesce(excluded.encoding, pages.encoding),
                replaced_chars = excluded.replaced_chars,
                etag = excluded.etag,
                last_modified = excluded.last_modified,
                extract_hash = excluded.extract_hash,
                post_count = excluded.post_count,
                last_fetched_at = excluded.last_fetched_at,
                last_changed_at = CASE WHEN :changed THEN excluded.last_fetched_at
                                       ELSE pages.last_changed_at END""",
            {
                "site_id": site_id,
                "url": url,
                "url_key": url_key,
                "kind": kind,
                "thread_id": thread_id,
                "page_no": page_no,
                "extract_hash": extract,
                "item_count": item_count,
                "changed": changed,
                "now": now,
                **fetch_meta,
            },
        )
        return changed

    @_writes
    def save_board_page(
        self,
        site_id: int,
        board: BoardPageRecord,
        *,
        url: str,
        url_key: str,
        body_sha256: str | None = None,
        encoding: str | None = None,
        replaced_chars: int = 0,
        etag: str | None = None,
        last_modified: str | None = None,
        now: str | None = None,
        kind: str = "board",
    ) -> int:
        """Save one parsed board page: a threads row per listed thread and the pages row.

        What a board says (replies, views, last post time, board) updates a thread; a
        title or URL the thread's own pages gave is kept. Returns the number of rows seen.
        A site-wide list (kind 'guide') names each row's board on the row itself.
        """
        stamp = _stamp(now)
        fetch_meta = self._fetch_meta(site_id, body_sha256, encoding, replaced_chars, etag, last_modified)
        for row in board.rows:
            self._upsert_thread_from_board(site_id, board, row, stamp)
        self._upsert_page(
            site_id,
            kind=kind,
            url=url,
            url_key=url_key,
            thread_id=None,
            page_no=board.page,
            # views are left out: they move on every visit and say nothing about new posts
            extract=extract_hash(
                (row.tid, row.replies, row.last_post_at or row.last_post_raw) for row in board.rows
            ),
            item_count=len(board.rows),
            fetch_meta=fetch_meta,
            now=stamp,
        )
        return len(board.rows)

    def _upsert_thread_from_board(self, site_id: int, board: Any, row: Any, now: str) -> None:
        title = (row.title or "").strip() or None
        # As in _upsert_thread_from_page, the title stays out of the update (the FTS trigger).
        thread_id, stored_title = self.db.conn.execute(
            """INSERT INTO threads (site_id, tid, thread_key, title, url, board, fid, replies,
                views, last_post_at, first_seen_at, last_seen_at)
            VALUES (:site_id, :tid, :key, :title, :url, :board, :fid, :replies, :views,
                :last_post_at, :now, :now)
            ON CONFLICT (site_id, thread_key) DO UPDATE SET
                tid = coalesce(threads.tid, excluded.tid),
                url = coalesce(threads.url, excluded.url),
                board = coalesce(excluded.board, threads.board),
                fid = coalesce(excluded.fid, threads.fid),
                replies = coalesce(excluded.replies, threads.replies),
                views = coalesce(excluded.views, threads.views),
                last_post_at = coalesce(excluded.last_post_at, threads.last_post_at),
                last_seen_at = excluded.last_seen_at,
                gone_at = NULL
            RETURNING id, title""",
            {
                "site_id": site_id,
                "tid": row.tid,
                "key": thread_key(row.tid, row.title),
                "title": title,
                "url": row.url,
                "board": getattr(row, "board", None) or board.name,
                "fid": getattr(row, "fid", None) or board.fid,
                "replies": row.replies,
                "views": row.views,
                "last_post_at": row.last_post_at,
                "now": now,
            },
        ).fetchone()
        # A board fills a missing title only: the thread's own pages give the real one.
        if title is not None and stored_title is None:
            self._set_thread_title(thread_id, title)

    def _mark_vanished(self, thread_id: int, page: ThreadPageRecord, now: str) -> int:
        """Stamp gone_at on the stored posts `page` shows have vanished (vanished_pid_span);
        returns how many. Saving a post clears its gone_at, so one seen again is back."""
        span = vanished_pid_span(page)
        if span is None:
            return 0
        present = {post.pid for post in page.posts if post.pid is not None}
        # Mostly the span holds the page's own posts and nothing else. Counting its posts reads
        # the (thread_id, pid) index alone; the UPDATE reads each row, long texts and all.
        stored = self.db.conn.execute(_COUNT_IN_SPAN_SQL, [thread_id, span.above, span.below]).fetchone()[0]
        if stored == sum(span.above < pid < span.below for pid in present):
            return 0
        cursor = self.db.conn.execute(
            _MARK_VANISHED_SQL,
            {"now": now, "thread_id": thread_id, "above": span.above, "below": span.below,
             "run_low": span.run_low, "run_high": span.run_high, "page": page.page,
             "present": json.dumps(sorted(present))},
        )
        return cursor.rowcount

    @_writes
    def mark_thread_gone(self, thread_id: int, now: str | None = None) -> bool:
        """Stamp gone_at on a thread the forum no longer serves; a later save clears it."""
        cursor = self.db.execute(
            "UPDATE threads SET gone_at = ? WHERE id = ? AND gone_at IS NULL",
            [_stamp(now), thread_id],
        )
        return cursor.rowcount == 1

    def post_versions(self, post_id: int) -> list[dict]:
        """Every version of a post, oldest first, each with its full text, HTML, attachments and
        quotes (the current one's come from posts, where alone they are stored; a version
        superseded before schema 15 has them NULL: not known), seen_again_at (a JSON list of
        the times the post went back to it after another version) and is_current."""
        return self._all(
            """SELECT v.id AS version_id, v.content_hash,
                coalesce(v.content_text, p.content_text) AS content_text,
                coalesce(v.content_html, p.content_html) AS content_html,
                CASE WHEN v.content_text IS NULL THEN p.attachments_json ELSE v.attachments_json END AS attachments_json,
                CASE WHEN v.content_text IS NULL THEN p.quotes_json ELSE v.quotes_json END AS quotes_json,
                v.edit_note, v.seen_at,
                (SELECT json_group_array(r.seen_at) FROM (SELECT seen_at FROM post_reverts
                    WHERE version_id = v.id ORDER BY seen_at, id) AS r) AS seen_again_at,
                v.content_hash = p.content_hash AS is_current
            FROM post_versions AS v JOIN posts AS p ON p.id = v.post_id
            WHERE v.post_id = ? ORDER BY v.seen_at, v.id""",
            [post_id],
        )

    def page_state(self, site_id: int, url_key: str) -> dict | None:
        """The pages row of a URL (etag, last_modified, extract_hash, body_sha256, ...)."""
        return self._one("SELECT * FROM pages WHERE site_id = ? AND url_key = ?", [site_id, url_key])

    # --- frontier ---------------------------------------------------------------------
    @_writes
    def enqueue(
        self,
        site_id: int,
        *,
        url: str,
        url_key: str,
        kind: str,
        host: str,
        priority: int = 0,
        depth: int = 0,
        discovered_from: str | None = None,
        next_due_at: str | None = None,
        now: str | None = None,
    ) -> bool:
        """Add a URL to the frontier, due at next_due_at (default: now).

        Returns True when the URL is new; enqueueing a known url_key changes nothing.
        """
        stamp = _stamp(now)
        cursor = self.db.execute(
            """INSERT INTO frontier (site_id, url, url_key, kind, host, priority, depth,
                discovered_from, next_due_at, added_at, updated_at)
            VALUES (:site_id, :url, :url_key, :kind, :host, :priority, :depth,
                :discovered_from, :next_due_at, :now, :now)
            ON CONFLICT (site_id, url_key) DO NOTHING""",
            {
                "site_id": site_id,
                "url": url,
                "url_key": url_key,
                "kind": kind,
                "host": host,
                "priority": priority,
                "depth": depth,
                "discovered_from": discovered_from,
                "next_due_at": stamp if next_due_at is None else normalise_time(next_due_at),
                "now": stamp,
            },
        )
        return cursor.rowcount == 1

    @_writes
    def requeue(
        self, site_id: int, url_key: str, next_due_at: str | None = None, now: str | None = None,
        url: str | None = None,
    ) -> bool:
        """Put a finished URL back to pending, due at next_due_at (default: now), with its
        attempts reset; `url`, when given, is the URL it is fetched by from now on (the key's
        form as the crawler builds it today). A leased row is left to its holder. Returns
        whether a row changed."""
        stamp = _stamp(now)
        cursor = self.db.execute(
            """UPDATE frontier SET state = 'pending', reason = NULL, attempts = 0,
                next_due_at = :due, leased_until = NULL, updated_at = :now, url = coalesce(:url, url)
            WHERE site_id = :site_id AND url_key = :url_key AND state != 'leased'""",
            {
                "due": stamp if next_due_at is None else normalise_time(next_due_at),
                "now": stamp,
                "site_id": site_id,
                "url_key": url_key,
                "url": url,
            },
        )
        return cursor.rowcount == 1

    @_writes
    def lease_next(
        self,
        site_id: int | None = None,
        *,
        now: str,
        lease_s: float,
        exclude_hosts: Iterable[str] = (),
    ) -> dict | None:
        """Lease the next due URL: pending, next_due_at <= now, host not excluded; highest
        priority first, then the longest overdue. Marks it leased until now + lease_s and
        counts the attempt. Returns the frontier row, or None when nothing is due."""
        exclude = _names(exclude_hosts, "exclude_hosts")
        # A site's lease walks idx_frontier_site_lease in the ORDER BY's order and stops at the
        # first due row; written as "(:site_id IS NULL OR site_id = :site_id)" it could use no
        # index on site_id and sorted every site's pending rows for each lease.
        condition = " AND ".join(filter(None, (
            "site_id = :site_id" if site_id is not None else "",
            "state = 'pending'",
            "(next_due_at IS NULL OR next_due_at <= :now)",
            "host NOT IN (SELECT value FROM json_each(:exclude_hosts))" if exclude != "[]" else "",
        )))
        return self._lease(
            f"{condition} ORDER BY priority DESC, next_due_at, id",
            {"site_id": site_id, "exclude_hosts": exclude},
            now=now,
            lease_s=lease_s,
        )

    @_writes
    def lease_by_key(
        self, site_id: int, url_key: str, *, now: str, lease_s: float = DEFAULT_LEASE_S
    ) -> dict | None:
        """Lease one pending URL by its key, due or not (to settle a URL known to need no
        fetch). Returns the row, or None when that URL is not pending."""
        return self._lease(
            "state = 'pending' AND site_id = :site_id AND url_key = :url_key",
            {"site_id": site_id, "url_key": url_key},
            now=now,
            lease_s=lease_s,
        )

    def _lease(self, condition: str, params: dict, *, now: str, lease_s: float) -> dict | None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s!r}")
        stamp = normalise_time(now)
        until = (datetime.fromisoformat(stamp) + timedelta(seconds=lease_s)).isoformat()
        # One statement picks and marks the row, so two connections cannot take the same.
        # `condition` is SQL written in this module; every value in it is bound.
        return self._one(
            f"""UPDATE frontier SET state = 'leased', leased_until = :until,
                attempts = attempts + 1, updated_at = :now
            WHERE id = (SELECT id FROM frontier WHERE {condition} LIMIT 1)
            RETURNING *""",
            {**params, "until": until, "now": stamp},
        )

    @_writes
    def finish(
        self,
        frontier_id: int,
        state: str,
        reason: str | None = None,
        next_due_at: str | None = None,
        now: str | None = None,
    ) -> None:
        """End a lease: state 'done', 'failed' or 'skipped' (with a reason code), or
        'pending' with a next_due_at to retry later."""
        if state not in FINISH_STATES:
            raise ValueError(f"cannot finish in state {state!r}; use one of {sorted(FINISH_STATES)}")
        if state == "pending" and next_due_at is None:
            raise ValueError("a retry (state 'pending') needs a next_due_at")
        cursor = self.db.execute(
            """UPDATE frontier SET state = :state, reason = :reason, next_due_at = :due,
                leased_until = NULL, updated_at = :now
            WHERE id = :id""",
            {
                "id": frontier_id,
                "state": state,
                "reason": reason,
                "due": None if next_due_at is None else normalise_time(next_due_at),
                "now": _stamp(now),
            },
        )
        if cursor.rowcount != 1:
            raise LookupError(f"no frontier row {frontier_id}")

    @_writes
    def skip_pending(self, site_id: int, url_keys: Iterable[str], *, reason: str, now: str | None = None) -> int:
        """Finish these URLs as 'skipped' with `reason` where they are still pending (due or
        set to retry later); returns how many."""
        cursor = self.db.execute(
            """UPDATE frontier SET state = 'skipped', reason = :reason, next_due_at = NULL,
                leased_until = NULL, updated_at = :now
            WHERE site_id = :site_id AND state = 'pending'
                AND url_key IN (SELECT value FROM json_each(:keys))""",
            {"reason": reason, "now": _stamp(now), "site_id": site_id, "keys": _names(url_keys, "url_keys")},
        )
        return cursor.rowcount

    @_writes
    def release_expired_leases(self, now: str) -> int:
        """Return leased rows whose lease ran out (a crashed worker's) to pending; returns
        how many. Their attempt stays counted."""
        stamp = normalise_time(now)
        cursor = self.db.execute(
            """UPDATE frontier SET state = 'pending', leased_until = NULL, updated_at = :now
            WHERE state = 'leased' AND leased_until <= :now""",
            {"now": stamp},
        )
        return cursor.rowcount

    @_writes
    def return_lease(self, frontier_id: int, now: str) -> bool:
        """Give a leased row back as it was before its lease: pending, due when it was, its
        attempt not counted (a stop came before its request was made). Returns whether the
        row was still leased."""
        cursor = self.db.execute(
            """UPDATE frontier SET state = 'pending', leased_until = NULL, attempts = max(attempts - 1, 0),
                updated_at = :now
            WHERE id = :id AND state = 'leased'""",
            {"now": normalise_time(now), "id": frontier_id},
        )
        return cursor.rowcount == 1

    @_writes
    def release_site_leases(self, site_id: int, now: str) -> int:
        """Return every leased row of a site to pending, expired or not: for a worker that
        holds the site's lock, any lease is a dead worker's. Returns how many."""
        cursor = self.db.execute(
            """UPDATE frontier SET state = 'pending', leased_until = NULL, updated_at = :now
            WHERE site_id = :site_id AND state = 'leased'""",
            {"now": normalise_time(now), "site_id": site_id},
        )
        return cursor.rowcount

    def frontier_counts(self, site_id: int | None = None) -> dict[str, int]:
        """Rows per frontier state (every state present, zeros included)."""
        counts = dict.fromkeys(FRONTIER_STATES, 0)
        for row in self._all(
            """SELECT state, count(*) AS n FROM frontier
            WHERE (:site_id IS NULL OR site_id = :site_id) GROUP BY state""",
            {"site_id": site_id},
        ):
            counts[row["state"]] = row["n"]
        return counts

    # --- adaptive revisits ------------------------------------------------------------
    def page_keys_with_prefix(self, site_id: int, prefix: str) -> set[str]:
        """The url_keys of the site's saved pages that start with `prefix` (one range of the
        (site_id, url_key) index)."""
        # Every key that starts with the prefix sorts before the prefix with its last character raised.
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return {key for (key,) in self.db.execute(
            "SELECT url_key FROM pages WHERE site_id = ? AND url_key >= ? AND url_key < ?",
            [site_id, prefix, upper])}

    def thread(self, thread_id: int) -> dict | None:
        """A threads row, by id."""
        return self._one("SELECT * FROM threads WHERE id = ?", [thread_id])

    def thread_states(self, site_id: int, thread_keys: Iterable[str]) -> dict[str, dict]:
        """What the archive knows of these threads, by thread_key: counts, pages, next due time."""
        keys = list(thread_keys)
        if not keys:
            return {}
        rows = self._all(
            """SELECT id, thread_key, url, replies, last_post_at, page_count, next_due_at, quiet_visits, gone_at
            FROM threads WHERE site_id = ? AND thread_key IN (SELECT value FROM json_each(?))""",
            [site_id, _json(keys)],
        )
        return {row["thread_key"]: row for row in rows}

    @_writes
    def schedule_revisit(
        self, thread_id: int, *, active: bool, min_s: float, max_s: float, now: str | None = None,
        new_replies: bool = False,
    ) -> str:
        """Set when a thread is next due, as its visit ends: soon after activity (`active`: new
        posts or versions); after a quiet visit, twice the previous interval up to `max_s`; and
        never sooner than the thread has been quiet on the forum (since its latest archived
        post), up to `max_s`, unless the visit found replies new since an earlier visit ended
        (`new_replies`). Returns the new next_due_at.

        The floor is what keeps a first crawl cheap for the forum afterwards: every thread
        gains posts in it, but a thread last posted to a year ago is not looked at again in an
        hour (and then at 2, 4, 8 ... hours), only in `max_s`; one posted to an hour ago, in an
        hour. Replies new since an earlier visit are activity whatever time they print: a time
        that cannot be read, or a site offset set wrong, must not put the thread off. Which
        visit is the first is threads.visits' to say, not the due time: a board row or a
        failed page gives a thread one before its first visit ends."""
        stamp = _stamp(now)
        row = self._one("SELECT quiet_visits, last_archived_post_at, visits FROM threads WHERE id = ?", [thread_id])
        if row is None:
            raise LookupError(f"no thread {thread_id}")
        quiet = 0 if active else row["quiet_visits"] + 1
        interval_s = min(min_s * (2**quiet), max_s)
        replied_since_a_visit = new_replies and row["visits"] > 0
        quiet_on_forum_s = None if replied_since_a_visit else _seconds_since(row["last_archived_post_at"], stamp)
        if quiet_on_forum_s is not None:
            interval_s = max(interval_s, min(quiet_on_forum_s, max_s))
        due = (datetime.fromisoformat(stamp) + timedelta(seconds=interval_s)).isoformat(timespec="seconds")
        self.db.execute("UPDATE threads SET next_due_at = ?, quiet_visits = ?, visits = visits + 1 WHERE id = ?",
                        [due, quiet, thread_id])
        return due

    @_writes
    def mark_thread_due(self, site_id: int, thread_key: str, now: str | None = None) -> bool:
        """Make a stored thread due for a visit now, unless it is due sooner already. Returns
        whether a row changed."""
        stamp = _stamp(now)
        cursor = self.db.execute(
            """UPDATE threads SET next_due_at = :now WHERE site_id = :site_id AND thread_key = :key
                AND (next_due_at IS NULL OR next_due_at > :now)""",
            {"now": stamp, "site_id": site_id, "key": thread_key},
        )
        return cursor.rowcount == 1

    def lists_newest_first(self, thread_id: int) -> bool:
        """Whether the thread's pages list its replies newest first, as the last page saved
        that showed an order said (threads.newest_first): its new replies appear on page 1, not
        on its last page."""
        row = self.db.conn.execute("SELECT newest_first FROM threads WHERE id = ?", [thread_id]).fetchone()
        return bool(row and row[0])

    def due_threads(self, site_id: int, now: str, limit: int) -> list[dict]:
        """Threads still on the forum whose next due time has passed, most overdue first."""
        return self._all(
            """SELECT id, thread_key, url, page_count, next_due_at FROM threads
            WHERE site_id = ? AND gone_at IS NULL AND url IS NOT NULL
                AND next_due_at IS NOT NULL AND next_due_at <= ?
            ORDER BY next_due_at LIMIT ?""",
            [site_id, now, limit],
        )

    def least_recently_verified_pages(self, site_id: int, before: str, limit: int) -> list[dict]:
        """Thread pages whose last request is oldest and earlier than `before`: what a verify
        pass re-reads to catch edits and deletions the boards do not show. A page already
        waiting in the frontier (a retry, say) is left to whoever queued it."""
        return self._all(
            """SELECT p.url, p.url_key, coalesce(max(f.fetched_at), p.last_fetched_at) AS verified_at
            FROM pages p LEFT JOIN fetches f ON f.site_id = p.site_id AND f.url = p.url
                -- only a read verifies: a request that failed leaves the page as old as it was
                AND f.status IN (200, 304)
            WHERE p.site_id = ? AND p.kind = 'thread'
                AND NOT EXISTS (SELECT 1 FROM frontier q WHERE q.site_id = p.site_id
                    AND q.url_key = p.url_key AND q.state IN ('pending', 'leased'))
            GROUP BY p.id HAVING verified_at < ? ORDER BY verified_at, p.id LIMIT ?""",
            [site_id, normalise_time(before), limit],
        )

    def thread_page_count(self, site_id: int) -> int:
        """How many thread pages the archive holds for the site: what a verify cycle goes round."""
        return self._one("SELECT count(*) AS n FROM pages WHERE site_id = ? AND kind = 'thread'", [site_id])["n"]

    def pages_fetched_since(self, site_id: int, url_keys: Iterable[str], since: str) -> int:
        """How many of these pages were last fetched at or after `since`."""
        row = self._one(
            """SELECT count(*) AS n FROM pages WHERE site_id = ? AND last_fetched_at >= ?
                AND url_key IN (SELECT value FROM json_each(?))""",
            [site_id, normalise_time(since), _names(url_keys, "url_keys")],
        )
        return row["n"]

    # --- runs -------------------------------------------------------------------------
    @_writes
    def start_run(self, site_id: int | None, job: str, now: str | None = None) -> int:
        """Open a runs row (status 'running'); returns its id."""
        return self._insert("runs", {"site_id": site_id, "job": job, "started_at": _stamp(now), "status": RUN_RUNNING})

    @_writes
    def abandon_runs(self, site_id: int, job: str, now: str | None = None) -> int:
        """Close the site's runs of `job` still marked 'running' as 'abandoned': call it only
        while holding the site's lock, when no such run can be alive (a killed process never
        got to finish its row)."""
        cursor = self.db.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE site_id = ? AND job = ? AND status = ?",
            [RUN_ABANDONED, _stamp(now), site_id, job, RUN_RUNNING],
        )
        return cursor.rowcount

    @_writes
    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        requests: int,
        not_modified: int,
        new_posts: int,
        new_versions: int,
        failures: Mapping[str, int],
        gone_posts: int = 0,
        now: str | None = None,
    ) -> None:
        """Close a run with its totals (failures maps reason code -> count) and index the
        posts still waiting for the search index. `status` is one of RUN_END_STATUSES."""
        if status not in RUN_END_STATUSES:
            # The published metadata names every status; one made up here would be unexplained.
            raise ValueError(f"cannot close a run as {status!r}; use one of {RUN_END_STATUSES}")
        cursor = self.db.execute(
            """UPDATE runs SET finished_at = :now, status = :status, requests = :requests,
                not_modified = :not_modified, new_posts = :new_posts,
                new_versions = :new_versions, gone_posts = :gone_posts, failures = :failures,
                failures_json = :failures_json
            WHERE id = :id""",
            {
                "id": run_id,
                "now": _stamp(now),
                "status": status,
                "requests": requests,
                "not_modified": not_modified,
                "new_posts": new_posts,
                "new_versions": new_versions,
                "gone_posts": gone_posts,
                "failures": sum(failures.values()),
                "failures_json": _json(dict(failures)),
            },
        )
        if cursor.rowcount != 1:
            raise LookupError(f"no run {run_id}")
        # A run's posts become searchable through the index as the run ends.
        self.index_pending()

    # --- robots.txt cache -------------------------------------------------------------
    @_writes
    def put_robots(
        self,
        host: str,
        *,
        status: int | None,
        body: str | None,
        expires_at: str,
        reason: str | None = None,
        fetched_at: str | None = None,
    ) -> None:
        """Cache the robots.txt outcome for `host` (fetched at fetched_at, default now)
        until expires_at, replacing what was cached before."""
        self.db.execute(
            """INSERT INTO robots (host, status, body, reason, fetched_at, expires_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (host) DO UPDATE SET status = excluded.status, body = excluded.body,
                reason = excluded.reason, fetched_at = excluded.fetched_at,
                expires_at = excluded.expires_at""",
            [host, status, body, reason, _stamp(fetched_at), normalise_time(expires_at)],
        )

    def get_robots(self, host: str) -> dict | None:
        """The cached robots row for `host` (the caller checks expires_at), or None. The crawler
        keys it by the robots.txt URL (one per scheme, host and port)."""
        return self._one("SELECT * FROM robots WHERE host = ?", [host])

    # --- learned noise phrases --------------------------------------------------------
    @_writes
    def propose_phrases(
        self, site_id: int, phrases: Iterable[tuple[str, int]], now: str | None = None
    ) -> int:
        """Record phrases seen in `count` posts as proposed watermarks. A phrase already
        known gets its count updated and keeps its status (a rejection stays rejected).
        Returns how many phrases were new."""
        stamp = _stamp(now)
        added = 0
        for phrase, count in phrases:
            if not isinstance(phrase, str) or not phrase.strip():
                raise ValueError(f"a phrase must be a non-empty str, got {phrase!r}")
            cursor = self.db.execute(
                """INSERT INTO noise_phrases (site_id, phrase, post_count, proposed_at)
                VALUES (?, ?, ?, ?) ON CONFLICT (site_id, phrase) DO NOTHING""",
                [site_id, phrase, int(count), stamp],
            )
            if cursor.rowcount:
                added += 1
            else:
                self.db.execute(
                    "UPDATE noise_phrases SET post_count = ? WHERE site_id = ? AND phrase = ?",
                    [int(count), site_id, phrase],
                )
        return added

    @_writes
    def set_phrase_status(self, site_id: int, phrase: str, status: str) -> bool:
        """Confirm or reject a proposed phrase; returns whether the phrase exists."""
        if status not in PHRASE_STATUSES:
            raise ValueError(f"phrase status must be one of {sorted(PHRASE_STATUSES)}")
        cursor = self.db.execute(
            "UPDATE noise_phrases SET status = ? WHERE site_id = ? AND phrase = ?",
            [status, site_id, phrase],
        )
        return cursor.rowcount == 1

    def confirmed_phrases(self, site_id: int) -> list[str]:
        """The site's confirmed phrases, longest first (so a phrase goes before any phrase
        it contains)."""
        rows = self.db.execute(
            """SELECT phrase FROM noise_phrases WHERE site_id = ? AND status = 'confirmed'
            ORDER BY length(phrase) DESC, phrase""",
            [site_id],
        ).fetchall()
        return [row[0] for row in rows]


__all__ = [
    "INDEX_BATCH_POSTS",
    "MEDIA_HASH_SCHEME",
    "RUN_END_STATUSES",
    "RUN_STATUSES",
    "Archive",
    "ReadOnlyArchiveError",
    "SaveResult",
    "normalise_time",
    "utc_now",
]
