"""The attributes storage reads from the records an engine returns.

storage imports nothing from scraper: it takes any object with these attributes
(scraper.engines.base's dataclasses have them), so the archive can be fed from other
sources too. These Protocols are the documentation of that duck typing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class QuoteRecord(Protocol):
    text: str
    author: str | None
    posted_at_raw: str | None
    pid: int | None


class AttachmentRecord(Protocol):
    url: str
    name: str | None
    aid: str | None
    is_image: bool


class PostRecord(Protocol):
    pid: int | None
    floor: int | None  # None for floors that carry no number (hot replies)
    floor_label: str | None
    author: str | None
    author_uid: int | None
    posted_at: str | None  # ISO 8601 with the site's UTC offset
    posted_at_raw: str | None
    content_text: str
    content_html: str
    # Optional (read with getattr; none when absent): the body's images and links as stable
    # identities, in order. A version is the text and these (storage.dedup.content_hash).
    media_refs: Sequence[str]
    quotes: Sequence[QuoteRecord]
    signature: str | None
    edit_note: str | None
    attachments: Sequence[AttachmentRecord]
    status: str  # 'normal', 'deleted', 'blocked', 'hidden' (a str enum is fine)
    noise_removed: Mapping[str, int]
    # Optional (read with getattr): a reply's own title. Not part of a version.
    subject: str | None


class PollRecord(Protocol):
    options: Sequence[tuple[str, int | None]]  # (text, votes) in page order; votes None when hidden
    voters: int | None
    multiple: bool
    max_choices: int | None
    results_hidden: bool
    ended: bool
    remaining_raw: str | None  # the countdown as printed when the page was read


class ClassifiedRecord(Protocol):
    sort_name: str | None
    fields: Sequence[tuple[str, str]]  # (title, value) in page order
    # Optional, read with getattr: an expired sort's notice, printed in place of its fields.


class ThreadPageRecord(Protocol):
    tid: int | None
    title: str | None
    page: int
    page_count: int | None
    posts: Sequence[PostRecord]
    board: str | None
    fid: int | None
    replies: int | None
    views: int | None
    canonical_url: str | None
    # Optional (read with getattr; None when absent): shown with the opening post, on page 1.
    poll: PollRecord | None
    classified: ClassifiedRecord | None


class BoardRowRecord(Protocol):
    tid: int
    title: str
    url: str | None
    replies: int | None
    views: int | None
    author: str | None
    last_post_at: str | None
    last_post_raw: str | None
    sticky: bool


class BoardPageRecord(Protocol):
    fid: int | None
    name: str | None
    page: int
    page_count: int | None
    rows: Sequence[BoardRowRecord]


__all__ = [
    "AttachmentRecord",
    "BoardPageRecord",
    "BoardRowRecord",
    "ClassifiedRecord",
    "PollRecord",
    "PostRecord",
    "QuoteRecord",
    "ThreadPageRecord",
]
