"""Searching post text, Chinese included.

FTS5's unicode61 tokenizer treats a run of Chinese characters as one token, so the archive
indexes posts with the trigram tokenizer: any substring of 3+ characters is found through
the index. Shorter queries cannot match a trigram. Most Chinese words are two characters, so
a second index, posts_bigram, holds every overlapping pair of "bigram characters" (ASCII
letters and digits, CJK ideographs, kana, hangul: storage.bigram): a 2-character query of
such characters is one token of it. The rest (one character, or two with punctuation or
symbols in them) fall back to LIKE over the posts table, newest first, which stops early
for a common one and reads every post for a rare one. A 2-character word in many posts
takes that scan too, since it stops within a few pages of posts; the index serves the words
in few posts (the threshold: build_search_sql's bigram_scan_posts).

Each index is filled in batches (Archive.index_pending) and holds exactly the posts up to
its own watermark; the posts above it, the few written since the last batch (or, on an
upgraded archive, those the bigram backfill has not reached), are found by a LIKE scan of
that tail, so search is complete at every moment. Both routes find exactly the posts LIKE
finds: the bigram index folds ASCII case and nothing else, as LIKE does.

Order 'rank' ranks a bounded window: the newest RANK_WINDOW matches by bm25 relevance, so
a frequent phrase costs the same at 10k posts as at 1M. Not-yet-indexed hits (no score yet)
come first, newest first; matches older than the window follow the ranked ones, newest
first, so paging still reaches every match.

The user's query is always one literal string: it becomes a single FTS5 phrase with its
double quotes doubled (so NEAR(, *, AND, a lone " are plain text), or a LIKE pattern with
%, _ and the escape character escaped. Every route lives in ONE SQL statement, SEARCH_SQL,
which Datasette publishes as the `search` stored query; search_posts() runs the same
statement (or its variant with a site filter or newest-first order).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

import sqlite_utils

from storage.bigram import sql_is_bigram_char
from storage.schema import BIGRAM_INDEXED_THROUGH, BIGRAM_TABLE, INDEXED_THROUGH

Order = Literal["rank", "newest"]
ORDERS: tuple[Order, ...] = ("rank", "newest")

MIN_TRIGRAM_CHARS = 3  # shorter queries cannot use the trigram index
DEFAULT_LIMIT = 20
# Matches ranked by relevance, newest first: bm25 needs every ranked row's phrase
# positions, so ranking all matches of a frequent phrase grows with the archive.
RANK_WINDOW = 500
# A 2-character word in more posts than wanted * posts / BIGRAM_SCAN_POSTS is found by the
# scan in posted_at order instead of its index entries (build_search_sql).
BIGRAM_SCAN_POSTS = 2_000
SNIPPET_OPEN = "«"  # marks a hit in a snippet; rare in forum text, unlike [ ] or 【 】
SNIPPET_CLOSE = "»"
SNIPPET_ELLIPSIS = "…"
SNIPPET_WINDOW_CHARS = 24  # characters of context either side of the hit

# The query as searched: surrounding white space (ASCII, U+00A0, U+3000) removed.
_QUERY = "trim(:q, char(32, 9, 10, 13, 160, 12288))"
# Datasette passes '' for a parameter its form left empty.
_LIMIT_N = f"CAST(coalesce(nullif(:limit, ''), {DEFAULT_LIMIT}) AS INTEGER)"
_OFFSET_N = "CAST(coalesce(nullif(:offset, ''), 0) AS INTEGER)"
_FTS_PHRASE = f"""'"' || replace({_QUERY}, '"', '""') || '"'"""
_LIKE_PATTERN = (
    f"""'%' || replace(replace(replace({_QUERY}, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'"""
)
_LONG_QUERY = f"length({_QUERY}) >= {MIN_TRIGRAM_CHARS}"
# Two bigram characters (storage.bigram): one token of the bigram index.
_BIGRAM_QUERY = (
    f"length({_QUERY}) = 2 AND {sql_is_bigram_char(_QUERY)} AND {sql_is_bigram_char(f'substr({_QUERY}, 2)')}"
)
_SHORT_QUERY = f"length({_QUERY}) BETWEEN 1 AND {MIN_TRIGRAM_CHARS - 1}"
_NEWEST = "posted_at DESC, id DESC"  # DESC puts posts without a time last
_NEWEST_POSTS = "p.posted_at DESC, p.id DESC"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _snippet() -> str:
    """The hit in its context, marked « »; `hit` is where the query starts (0: not found by
    instr, when the index folded a non-ASCII case that lower() does not)."""
    open_mark, close_mark, ellipsis = map(_sql_literal, (SNIPPET_OPEN, SNIPPET_CLOSE, SNIPPET_ELLIPSIS))
    window = SNIPPET_WINDOW_CHARS
    return f"""CASE WHEN hit = 0 THEN substr(content_text, 1, {2 * window})
        || CASE WHEN length(content_text) > {2 * window} THEN {ellipsis} ELSE '' END
    ELSE CASE WHEN hit > {window} + 1 THEN {ellipsis} ELSE '' END
        || substr(content_text, max(1, hit - {window}), hit - max(1, hit - {window}))
        || {open_mark} || substr(content_text, hit, length({_QUERY})) || {close_mark}
        || substr(content_text, hit + length({_QUERY}), {window})
        || CASE WHEN hit + length({_QUERY}) + {window} <= length(content_text)
                THEN {ellipsis} ELSE '' END
    END"""


def build_search_sql(
    order: Order = "rank", *, by_site: bool = False, rank_window: int = RANK_WINDOW,
    bigram_scan_posts: int = BIGRAM_SCAN_POSTS,
) -> str:
    """The search statement: parameters :q, :limit, :offset (and :site_id when by_site).

    order 'rank': queries of 3+ characters by bm25 relevance within the newest `rank_window`
    matches (see the module's docstring); 'newest': by posted_at, newest first. Queries of
    1-2 characters have no relevance score and always come newest first (through the bigram
    index, or a scan that the posted_at index ends after `limit` hits).
    Columns: post_id, thread_id, title, author, floor, posted_at, snippet.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if rank_window < 1:
        raise ValueError(f"rank_window must be positive, got {rank_window!r}")
    if bigram_scan_posts < 1:
        raise ValueError(f"bigram_scan_posts must be positive, got {bigram_scan_posts!r}")
    site = "AND p.site_id = :site_id" if by_site else ""
    fts_posts = "posts_fts JOIN posts AS p ON p.id = posts_fts.rowid" if by_site else "posts_fts"
    wanted = f"{_OFFSET_N} + {_LIMIT_N}"  # no arm needs more rows than the page's end
    # A bigram's posts come newest first by one of two plans, chosen once per query. A rare
    # word's matches are fetched from the index and sorted (cost ~ matches); a common word is
    # found by the scan in posted_at order, which stops at the page's end, after about
    # wanted * posts / matches posts (ids are dense, so max(id) counts the posts). Counting
    # stops past the threshold, so a common word never reads its whole match list, and
    # the scan reads at most ~bigram_scan_posts posts (for matches spread evenly in time).
    threshold = f"(({wanted}) * (SELECT coalesce(max(id), 0) FROM posts) / {bigram_scan_posts:d})"
    few_bigram_hits = f"""(SELECT count(*) FROM (SELECT rowid FROM {BIGRAM_TABLE}
        WHERE {_BIGRAM_QUERY} AND {BIGRAM_TABLE} MATCH '"' || {_QUERY} || '"' LIMIT {threshold} + 1))
        <= {threshold}"""
    # The plan is chosen in LIMIT, which SQLite computes once before an arm's loop and which
    # skips the arm altogether when 0; a test of a subquery in WHERE would run per row.
    use_index = f"{_BIGRAM_QUERY} AND {few_bigram_hits}"
    scan_limit = f"CASE WHEN {use_index} THEN 0 ELSE {wanted} END"
    index_limit = f"CASE WHEN {use_index} THEN {wanted} ELSE 0 END"
    # Each arm is guarded by a constant test of the query's length, which SQLite evaluates
    # once before the loop: an arm that does not apply costs nothing. Every arm yields
    # (part, id, score, posted_at): the page is sorted by part, then score, then time.
    # MATERIALIZED keeps the tail a range scan of the rowids above the watermark.
    ctes = [
        f"""unindexed AS MATERIALIZED (
    SELECT p.id, p.posted_at FROM posts AS p
    WHERE {_LONG_QUERY} AND p.id > {INDEXED_THROUGH}
        AND p.content_text LIKE {_LIKE_PATTERN} ESCAPE '\\' {site})""",
        # A bigram query is one token (no double quote can be in it); the index holds the
        # posts up to its own watermark, the tail above it is scanned.
        f"""bigram_hits AS MATERIALIZED (
    SELECT rowid AS id FROM {BIGRAM_TABLE}
    WHERE {_BIGRAM_QUERY} AND {BIGRAM_TABLE} MATCH '"' || {_QUERY} || '"')""",
        f"""bigram_tail AS MATERIALIZED (
    SELECT p.id, p.posted_at FROM posts AS p
    WHERE {_BIGRAM_QUERY} AND p.id > {BIGRAM_INDEXED_THROUGH}
        AND p.content_text LIKE {_LIKE_PATTERN} ESCAPE '\\' {site})""",
    ]
    if order == "rank":
        ctes.append(f"""ranked AS MATERIALIZED (
    SELECT posts_fts.rowid AS id, posts_fts.rank AS score FROM {fts_posts}
    WHERE {_LONG_QUERY} AND posts_fts MATCH {_FTS_PHRASE} {site}
    ORDER BY posts_fts.rowid DESC LIMIT {rank_window:d})""")
        long_arms = f"""SELECT * FROM (SELECT 0, id, NULL, NULL FROM unindexed ORDER BY id DESC LIMIT {wanted})
    UNION ALL
    SELECT 1, id, score, NULL FROM ranked
    UNION ALL
    SELECT * FROM (
        SELECT 2, posts_fts.rowid, NULL, NULL FROM {fts_posts}
        WHERE {_LONG_QUERY} AND (SELECT count(*) FROM ranked) = {rank_window:d}
            AND posts_fts MATCH {_FTS_PHRASE} {site}
            AND posts_fts.rowid < (SELECT min(id) FROM ranked)
        ORDER BY posts_fts.rowid DESC LIMIT {wanted})"""
    else:
        long_arms = f"""SELECT * FROM (SELECT 0, id, NULL, posted_at FROM unindexed ORDER BY {_NEWEST} LIMIT {wanted})
    UNION ALL
    SELECT * FROM (
        SELECT 0, p.id, NULL, p.posted_at FROM posts_fts JOIN posts AS p ON p.id = posts_fts.rowid
        WHERE {_LONG_QUERY} AND posts_fts MATCH {_FTS_PHRASE} {site}
        ORDER BY {_NEWEST_POSTS} LIMIT {wanted})"""
    ctes.append(f"""hits (part, id, score, posted_at) AS (
    {long_arms}
    UNION ALL
    SELECT * FROM (
        SELECT 0, p.id, NULL, p.posted_at FROM posts AS p
        WHERE {_SHORT_QUERY} AND p.content_text LIKE {_LIKE_PATTERN} ESCAPE '\\' {site}
        ORDER BY {_NEWEST_POSTS} LIMIT {scan_limit})
    UNION ALL
    SELECT * FROM (
        SELECT 0, p.id, NULL, p.posted_at FROM posts AS p
        WHERE p.id IN bigram_hits {site}
        ORDER BY {_NEWEST_POSTS} LIMIT {index_limit})
    UNION ALL
    SELECT * FROM (SELECT 0, id, NULL, posted_at FROM bigram_tail ORDER BY {_NEWEST} LIMIT {index_limit}))""")
    ctes.append(f"""page AS (
    SELECT * FROM hits ORDER BY part, score, {_NEWEST} LIMIT {_LIMIT_N} OFFSET {_OFFSET_N})""")
    return f"""WITH {", ".join(ctes)}
SELECT post_id, thread_id, title, author, floor, posted_at, {_snippet()} AS snippet
FROM (
    SELECT p.id AS post_id, p.thread_id, t.title, p.author, p.floor, p.posted_at, p.content_text,
        page.part, page.score, page.posted_at AS sort_time,
        -- lower() folds ASCII only, exactly as LIKE does
        instr(lower(p.content_text), lower({_QUERY})) AS hit
    FROM page
    JOIN posts AS p ON p.id = page.id
    JOIN threads AS t ON t.id = p.thread_id
)
ORDER BY part, score, sort_time DESC, post_id DESC"""


# Longer than any phrase a reader searches for, and far below SQLite's 50,000-byte limit on
# a LIKE pattern (the scan of posts not yet indexed is a LIKE).
MAX_QUERY_CHARS = 1_000

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
    (the hit marked « »). A blank query finds nothing; no query changes the archive,
    whatever characters it holds. NUL characters are dropped (no search box can send one,
    and SQLite ends a string at it); a query over MAX_QUERY_CHARS raises ValueError.
    """
    if not isinstance(q, str):
        raise TypeError(f"q must be str, got {type(q).__name__}")
    q = q.replace("\x00", "")
    if len(q) > MAX_QUERY_CHARS:
        raise ValueError(f"a search of {len(q):,} characters is longer than the {MAX_QUERY_CHARS:,} a search may be")
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


__all__ = ["MAX_QUERY_CHARS", "SEARCH_SQL", "build_search_sql", "search_posts"]
