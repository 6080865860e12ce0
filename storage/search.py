"""Searching post text, Chinese included.

FTS5's unicode61 tokenizer treats a run of Chinese characters as one token, so the archive
indexes posts with the trigram tokenizer: any substring of 3+ characters is found through
the index. Shorter queries (a 1-2 character Chinese word) cannot match a trigram, so they
fall back to LIKE over the posts table.

The user's query is always one literal string: it becomes a single FTS5 phrase with its
double quotes doubled (so NEAR(, *, AND, a lone " are plain text), or a LIKE pattern with
%, _ and the escape character escaped. Both routes live in ONE SQL statement, SEARCH_SQL,
which Datasette publishes as the `search` stored query; search_posts() runs the same
statement (or its variant with a site filter or newest-first order).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

import sqlite_utils

Order = Literal["rank", "newest"]
ORDERS: tuple[Order, ...] = ("rank", "newest")

MIN_TRIGRAM_CHARS = 3  # shorter queries cannot use the trigram index
DEFAULT_LIMIT = 20
SNIPPET_OPEN = "«"  # marks a hit in a snippet; rare in forum text, unlike [ ] or 【 】
SNIPPET_CLOSE = "»"
SNIPPET_ELLIPSIS = "…"
SNIPPET_TOKENS = 24  # FTS5 snippet() length; with trigrams one token is about one character
LIKE_WINDOW_CHARS = 24  # characters of context either side of a short query's hit

# The query as searched: surrounding white space (ASCII, U+00A0, U+3000) removed.
_QUERY = "trim(:q, char(32, 9, 10, 13, 160, 12288))"
# Datasette passes '' for a parameter its form left empty.
_LIMIT = (
    f"LIMIT CAST(coalesce(nullif(:limit, ''), {DEFAULT_LIMIT}) AS INTEGER) "
    "OFFSET CAST(coalesce(nullif(:offset, ''), 0) AS INTEGER)"
)
_FTS_PHRASE = f"""'"' || replace({_QUERY}, '"', '""') || '"'"""
_LIKE_PATTERN = (
    f"""'%' || replace(replace(replace({_QUERY}, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'"""
)
_NEWEST = "p.posted_at DESC, p.id DESC"  # DESC puts posts without a time last


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def build_search_sql(order: Order = "rank", *, by_site: bool = False) -> str:
    """The search statement: parameters :q, :limit, :offset (and :site_id when by_site).

    order 'rank': queries of 3+ characters by bm25 relevance; 'newest': by posted_at,
    newest first. Queries of 1-2 characters have no relevance score and always come
    newest first (the posted_at index then ends the scan after `limit` hits).
    Columns: post_id, thread_id, title, author, floor, posted_at, snippet.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    site_filter = "AND p.site_id = :site_id" if by_site else ""
    open_mark, close_mark, ellipsis = map(
        _sql_literal, (SNIPPET_OPEN, SNIPPET_CLOSE, SNIPPET_ELLIPSIS)
    )
    window = LIKE_WINDOW_CHARS
    if order == "rank":
        # FTS5 hands rows over in rank order, so only the rows kept get a snippet.
        fts_rows = f"posts_fts MATCH {_FTS_PHRASE} {site_filter} ORDER BY posts_fts.rank {_LIMIT}"
    else:
        # Sorting by time would compute a snippet for every match before the LIMIT:
        # pick the page's ids first, then make snippets for those alone.
        fts_rows = f"""posts_fts MATCH {_FTS_PHRASE}
        AND posts_fts.rowid IN (
            SELECT p.id FROM posts_fts JOIN posts AS p ON p.id = posts_fts.rowid
            WHERE posts_fts MATCH {_FTS_PHRASE} {site_filter}
            ORDER BY {_NEWEST}
            {_LIMIT})
    ORDER BY {_NEWEST}"""
    # Each branch is guarded by a constant test of the query's length, which SQLite
    # evaluates once before the loop: the branch that does not apply costs nothing.
    return f"""SELECT * FROM (
    SELECT p.id AS post_id, p.thread_id, t.title, p.author, p.floor, p.posted_at,
        snippet(posts_fts, 0, {open_mark}, {close_mark}, {ellipsis}, {SNIPPET_TOKENS}) AS snippet
    FROM posts_fts
    JOIN posts AS p ON p.id = posts_fts.rowid
    JOIN threads AS t ON t.id = p.thread_id
    WHERE length({_QUERY}) >= {MIN_TRIGRAM_CHARS}
        AND {fts_rows}
)
UNION ALL
SELECT post_id, thread_id, title, author, floor, posted_at,
    CASE WHEN hit > {window} + 1 THEN {ellipsis} ELSE '' END
    || substr(content_text, max(1, hit - {window}), hit - max(1, hit - {window}))
    || {open_mark} || substr(content_text, hit, length({_QUERY})) || {close_mark}
    || substr(content_text, hit + length({_QUERY}), {window})
    || CASE WHEN hit + length({_QUERY}) + {window} <= length(content_text)
            THEN {ellipsis} ELSE '' END AS snippet
FROM (
    SELECT p.id AS post_id, p.thread_id, t.title, p.author, p.floor, p.posted_at,
        p.content_text,
        -- lower() folds ASCII only, exactly as LIKE does, so the hit is always found
        instr(lower(p.content_text), lower({_QUERY})) AS hit
    FROM posts AS p
    JOIN threads AS t ON t.id = p.thread_id
    WHERE length({_QUERY}) BETWEEN 1 AND {MIN_TRIGRAM_CHARS - 1}
        AND p.content_text LIKE {_LIKE_PATTERN} ESCAPE '\\'
        {site_filter}
    ORDER BY {_NEWEST}
    {_LIMIT}
)"""


SEARCH_SQL = build_search_sql("rank")
_STATEMENTS = {
    (order, by_site): build_search_sql(order, by_site=by_site)
    for order in ORDERS
    for by_site in (False, True)
}


def search_posts(
    db: sqlite_utils.Database | sqlite3.Connection,
    q: str,
    *,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    site_id: int | None = None,
    order: Order = "rank",
) -> list[dict[str, Any]]:
    """Posts whose text contains `q` as a literal substring, best or newest first.

    Returns dicts with post_id, thread_id, title, author, floor, posted_at and snippet
    (the hit marked « »). A blank query finds nothing; no query raises or changes the
    archive, whatever characters it holds.
    """
    if not isinstance(q, str):
        raise TypeError(f"q must be str, got {type(q).__name__}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
    params: dict[str, Any] = {"q": q, "limit": int(limit), "offset": int(offset)}
    if site_id is not None:
        params["site_id"] = site_id
    cursor = conn.execute(_STATEMENTS[(order, site_id is not None)], params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


__all__ = ["SEARCH_SQL", "build_search_sql", "search_posts"]
