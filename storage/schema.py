"""The archive's schema: explicit CREATE statements, applied as numbered migrations.

The table and column names are a public contract: users' SQL and the Datasette
configuration rely on them. Columns may be added by later migrations; none is renamed or
dropped. Migration 1 creates everything; a change of schema appends Migration(2, ...) to
MIGRATIONS and bumps SCHEMA_VERSION, and ensure_schema() applies what a file lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlite_utils

from storage.bigram import BIGRAM_FUNCTION

SCHEMA_VERSION = 20


class SchemaVersionError(RuntimeError):
    """The archive was written by a newer version of this software than the one running, or,
    opened read-only, by an older one (only a writer upgrades it)."""


class NotAnArchiveError(RuntimeError):
    """The SQLite file holds tables but no archive schema: another program's database, which
    this software must not write its tables into."""


@dataclass(frozen=True)
class Migration:
    """One step of the schema: the statements that take a file from version-1 to version."""

    version: int
    description: str
    statements: tuple[str, ...]


SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL PRIMARY KEY,
    applied_at TEXT NOT NULL
)"""

_TABLES_V1 = (
    """
CREATE TABLE sites (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    engine TEXT NOT NULL,
    base_url TEXT,
    utc_offset TEXT NOT NULL DEFAULT '+08:00',
    config_json TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
)""",
    """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    site_id INTEGER REFERENCES sites(id),
    job TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    requests INTEGER NOT NULL DEFAULT 0,
    not_modified INTEGER NOT NULL DEFAULT 0,
    new_posts INTEGER NOT NULL DEFAULT 0,
    new_versions INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    failures_json TEXT NOT NULL DEFAULT '{}'
)""",
    """
CREATE TABLE threads (
    id INTEGER PRIMARY KEY,
    site_id INTEGER NOT NULL REFERENCES sites(id),
    tid INTEGER,
    thread_key TEXT NOT NULL,
    title TEXT,
    url TEXT,
    board TEXT,
    fid INTEGER,
    replies INTEGER,
    views INTEGER,
    page_count INTEGER,
    last_post_at TEXT,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    gone_at TEXT,
    UNIQUE (site_id, thread_key)
)""",
    """
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    site_id INTEGER NOT NULL REFERENCES sites(id),
    thread_id INTEGER NOT NULL REFERENCES threads(id),
    pid INTEGER,
    post_key TEXT NOT NULL,
    floor INTEGER,
    floor_label TEXT,
    page INTEGER,
    author TEXT,
    author_uid INTEGER,
    posted_at TEXT,
    posted_at_raw TEXT,
    content_text TEXT NOT NULL,
    content_html TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    quotes_json TEXT NOT NULL DEFAULT '[]',
    signature TEXT,
    edit_note TEXT,
    attachments_json TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'normal',
    noise_json TEXT NOT NULL DEFAULT '{}',
    version_count INTEGER NOT NULL DEFAULT 1,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    gone_at TEXT,
    UNIQUE (site_id, post_key)
)""",
    "CREATE INDEX idx_posts_thread_floor ON posts (thread_id, floor)",
    # Replaced by (thread_id, pid) in migration 9.
    "CREATE INDEX idx_posts_thread_page ON posts (thread_id, page)",
    "CREATE INDEX idx_posts_author ON posts (author)",
    "CREATE INDEX idx_posts_posted_at ON posts (posted_at)",
    """
CREATE TABLE post_versions (
    id INTEGER PRIMARY KEY,
    post_id INTEGER NOT NULL REFERENCES posts(id),
    content_hash TEXT NOT NULL,
    content_text TEXT NOT NULL,
    content_html TEXT NOT NULL,
    edit_note TEXT,
    seen_at TEXT NOT NULL,
    UNIQUE (post_id, content_hash)
)""",
    """
CREATE TABLE bodies (
    sha256 TEXT PRIMARY KEY,
    compression TEXT NOT NULL,
    size INTEGER NOT NULL,
    stored_size INTEGER NOT NULL,
    data BLOB NOT NULL,
    first_seen_at TEXT NOT NULL
)""",
    """
CREATE TABLE pages (
    id INTEGER PRIMARY KEY,
    site_id INTEGER NOT NULL REFERENCES sites(id),
    url TEXT NOT NULL,
    url_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    thread_id INTEGER REFERENCES threads(id),
    page_no INTEGER,
    body_sha256 TEXT REFERENCES bodies(sha256),
    encoding TEXT,
    replaced_chars INTEGER NOT NULL DEFAULT 0,
    etag TEXT,
    last_modified TEXT,
    extract_hash TEXT,
    post_count INTEGER,
    first_fetched_at TEXT NOT NULL,
    last_fetched_at TEXT NOT NULL,
    last_changed_at TEXT,
    UNIQUE (site_id, url_key)
)""",
    """
CREATE TABLE fetches (
    id INTEGER PRIMARY KEY,
    site_id INTEGER REFERENCES sites(id),
    run_id INTEGER REFERENCES runs(id),
    url TEXT NOT NULL,
    final_url TEXT,
    method TEXT NOT NULL DEFAULT 'GET',
    status INTEGER,
    reason TEXT,
    bytes INTEGER,
    elapsed_ms INTEGER,
    body_sha256 TEXT REFERENCES bodies(sha256),
    fetched_at TEXT NOT NULL
)""",
    "CREATE INDEX idx_fetches_fetched_at ON fetches (fetched_at)",
    """
CREATE TABLE frontier (
    id INTEGER PRIMARY KEY,
    site_id INTEGER NOT NULL REFERENCES sites(id),
    url TEXT NOT NULL,
    url_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    host TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'leased', 'done', 'failed', 'skipped')),
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0,
    depth INTEGER NOT NULL DEFAULT 0,
    discovered_from TEXT,
    next_due_at TEXT,
    leased_until TEXT,
    added_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (site_id, url_key)
)""",
    "CREATE INDEX idx_frontier_state_due ON frontier (state, next_due_at)",
    """
CREATE TABLE robots (
    host TEXT PRIMARY KEY,
    status INTEGER,
    body TEXT,
    reason TEXT,
    fetched_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
)""",
    """
CREATE TABLE parse_failures (
    id INTEGER PRIMARY KEY,
    site_id INTEGER REFERENCES sites(id),
    url TEXT NOT NULL,
    body_sha256 TEXT REFERENCES bodies(sha256),
    reason TEXT NOT NULL,
    detail TEXT,
    at TEXT NOT NULL
)""",
    """
CREATE TABLE noise_phrases (
    id INTEGER PRIMARY KEY,
    site_id INTEGER NOT NULL REFERENCES sites(id),
    phrase TEXT NOT NULL,
    post_count INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'proposed'
        CHECK (status IN ('proposed', 'confirmed', 'rejected')),
    proposed_at TEXT NOT NULL,
    UNIQUE (site_id, phrase)
)""",
)


def _external_fts(table: str, column: str) -> tuple[str, ...]:
    """An FTS5 trigram index over one column of `table`, kept in sync by triggers.

    Trigram, because unicode61 treats a run of Chinese characters as one token. External
    content, so the text is stored once. content="<table>" in double quotes is also the
    form Datasette looks for to offer its search box on the table.
    """
    fts = f"{table}_fts"
    return (
        f'CREATE VIRTUAL TABLE {fts} USING fts5({column}, content="{table}", '
        f'content_rowid="id", tokenize="trigram")',
        f"""CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN
    INSERT INTO {fts} (rowid, {column}) VALUES (new.id, new.{column});
END""",
        f"""CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN
    INSERT INTO {fts} ({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});
END""",
        # Only a change of the indexed column touches the index: re-crawls that merely
        # move last_seen_at cost no FTS work.
        f"""CREATE TRIGGER {fts}_au AFTER UPDATE OF {column} ON {table} BEGIN
    INSERT INTO {fts} ({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});
    INSERT INTO {fts} (rowid, {column}) VALUES (new.id, new.{column});
END""",
    )


# Posts are indexed in batches (Archive.index_pending), not by a trigger per insert: the
# trigram index of a ~2,000-character post costs ~2,000 index entries, and FTS5 pays far
# less per post when many posts go in one statement. The watermark says which rowids the
# index holds: every post with id <= indexed_through, and none above.
SEARCH_INDEX_STATE = "search_index_state"
INDEXED_THROUGH = (
    f"(SELECT indexed_through FROM {SEARCH_INDEX_STATE} WHERE fts_table = 'posts_fts')"
)


def _batched_posts_fts() -> tuple[str, ...]:
    """Migration 3's FTS statements: the watermark table, and triggers that keep the rows
    already indexed exact (an edit or delete below the watermark), leaving the rest to
    the next batch."""
    return (
        f"""CREATE TABLE {SEARCH_INDEX_STATE} (
    fts_table TEXT PRIMARY KEY,
    indexed_through INTEGER NOT NULL
)""",
        # Every post of an older archive is indexed already (by the per-insert trigger).
        f"""INSERT INTO {SEARCH_INDEX_STATE} (fts_table, indexed_through)
    VALUES ('posts_fts', (SELECT coalesce(max(id), 0) FROM posts))""",
        # Merge 8 segments of a level at a time instead of 4: with batches of 1,000 posts,
        # writing and indexing measured ~1.2x faster and search stayed within its noise.
        "INSERT INTO posts_fts (posts_fts, rank) VALUES ('automerge', 8)",
        "DROP TRIGGER posts_fts_ai",
        "DROP TRIGGER posts_fts_ad",
        "DROP TRIGGER posts_fts_au",
        f"""CREATE TRIGGER posts_fts_ad AFTER DELETE ON posts WHEN old.id <= {INDEXED_THROUGH} BEGIN
    INSERT INTO posts_fts (posts_fts, rowid, content_text) VALUES ('delete', old.id, old.content_text);
END""",
        f"""CREATE TRIGGER posts_fts_au AFTER UPDATE OF content_text ON posts
WHEN old.id <= {INDEXED_THROUGH} BEGIN
    INSERT INTO posts_fts (posts_fts, rowid, content_text) VALUES ('delete', old.id, old.content_text);
    INSERT INTO posts_fts (rowid, content_text) VALUES (new.id, new.content_text);
END""",
    )


BIGRAM_TABLE = "posts_bigram"
BIGRAM_INDEXED_THROUGH = (
    f"(SELECT indexed_through FROM {SEARCH_INDEX_STATE} WHERE fts_table = '{BIGRAM_TABLE}')"
)


def _bigram_posts() -> tuple[str, ...]:
    """Migration 4: posts_bigram, an index of each post's overlapping 2-character pairs
    (storage.bigram), so a 2-character word is found without scanning every post.

    Contentless (content=''): the pairs are computed outside SQLite (the bigram_document SQL
    function open_db registers), stored nowhere else, and a 'delete' must be given the old
    pairs again. detail=none: a query is one token, so positions are never needed. Filled by
    the same batches as posts_fts behind its own watermark, which starts at 0 so that an
    upgraded archive indexes its existing posts batch by batch (Archive.index_pending).

    Edits of indexed posts are kept exact by triggers that recompute the old pairs with the
    same deterministic function: any writer that changes or deletes a post goes through them,
    and a connection without the function (not opened by open_db) fails loudly ("no such
    function") instead of leaving stale pairs. Datasette only reads, so never needs it.
    """
    old_pairs = f"{BIGRAM_FUNCTION}(old.content_text)"
    return (
        *_bigram_table("columnsize=0"),
        f"INSERT INTO {SEARCH_INDEX_STATE} (fts_table, indexed_through) VALUES ('{BIGRAM_TABLE}', 0)",
        f"""CREATE TRIGGER {BIGRAM_TABLE}_ad AFTER DELETE ON posts WHEN old.id <= {BIGRAM_INDEXED_THROUGH} BEGIN
    INSERT INTO {BIGRAM_TABLE} ({BIGRAM_TABLE}, rowid, pairs) VALUES ('delete', old.id, {old_pairs});
END""",
        f"""CREATE TRIGGER {BIGRAM_TABLE}_au AFTER UPDATE OF content_text ON posts
WHEN old.id <= {BIGRAM_INDEXED_THROUGH} BEGIN
    INSERT INTO {BIGRAM_TABLE} ({BIGRAM_TABLE}, rowid, pairs) VALUES ('delete', old.id, {old_pairs});
    INSERT INTO {BIGRAM_TABLE} (rowid, pairs) VALUES (new.id, {BIGRAM_FUNCTION}(new.content_text));
END""",
    )


def _bigram_table(extra_options: str = "") -> tuple[str, ...]:
    options = f", {extra_options}" if extra_options else ""
    return (
        f"""CREATE VIRTUAL TABLE {BIGRAM_TABLE} USING fts5(pairs, content='', tokenize='ascii',
    detail='none'{options})""",
        f"INSERT INTO {BIGRAM_TABLE} ({BIGRAM_TABLE}, rank) VALUES ('automerge', 8)",
    )


# Migration 5: a contentless FTS5 table built with columnsize=0 refuses a full scan ("table
# does not support scanning"), and Datasette counts every table on the database page and
# offers a page per table: every view of /archive logged an SQL error, and the table's page
# answered 400. The table is rebuilt with its per-row size record (the docsize table) and
# refilled by the batches from a watermark of 0, as an upgraded archive first filled it;
# search stays complete meanwhile, since it scans the posts above the watermark. The edit
# triggers of migration 4 name the table, not its options, and carry over.
_BIGRAM_SCANNABLE = (
    f"DROP TABLE {BIGRAM_TABLE}",
    *_bigram_table(),
    f"UPDATE {SEARCH_INDEX_STATE} SET indexed_through = 0 WHERE fts_table = '{BIGRAM_TABLE}'",
)


# Migration 6: which rendering a post's stored text came from. A deleted, blocked or hidden
# rendering must never replace text archived from a normal one, and once the post's status
# had moved off normal the archive could no longer tell archived text from a notice: a post
# seen deleted twice lost its text on the second visit. Rows already off normal are left NULL,
# unknown, which is read as archived text (keeping a notice beats losing a post).
_CONTENT_STATUS = (
    "ALTER TABLE posts ADD COLUMN content_status TEXT",
    "UPDATE posts SET content_status = status WHERE status = 'normal'",
)


# The current version's text lives in posts alone: post_versions keeps a row per version
# but fills its text and HTML only once the version is superseded. SQLite cannot drop a
# NOT NULL constraint in place, so the table is rebuilt with its ids, emptying the
# copies of current versions on the way.
_VERSIONS_TEXT_ONCE = (
    """CREATE TABLE post_versions_v3 (
    id INTEGER PRIMARY KEY,
    post_id INTEGER NOT NULL REFERENCES posts(id),
    content_hash TEXT NOT NULL,
    content_text TEXT,
    content_html TEXT,
    edit_note TEXT,
    seen_at TEXT NOT NULL,
    UNIQUE (post_id, content_hash)
)""",
    """INSERT INTO post_versions_v3 (id, post_id, content_hash, content_text, content_html,
    edit_note, seen_at)
SELECT v.id, v.post_id, v.content_hash,
    CASE WHEN v.content_hash = p.content_hash THEN NULL ELSE v.content_text END,
    CASE WHEN v.content_hash = p.content_hash THEN NULL ELSE v.content_html END,
    v.edit_note, v.seen_at
FROM post_versions AS v LEFT JOIN posts AS p ON p.id = v.post_id
ORDER BY v.id""",
    "DROP TABLE post_versions",
    "ALTER TABLE post_versions_v3 RENAME TO post_versions",
)


# Migration 8: FTS5 keeps the terms of the rows inserted since its last flush in a hash, and
# writes the hash out as a new segment of the index once it holds 'hashsize' bytes (FTS5's
# default: 1 MiB) or the transaction commits. A batch of 1,000 long posts overflowed 1 MiB
# several times, and merging those small segments was most of a batch's cost: at
# FTS_HASH_BYTES, index catch-up of 2,000-character posts ran ~1.6x faster (bench_writes,
# docs/benchmarks.md section 8). The memory is the hash's while a batch is pending, at most
# this much per index; FTS5 keeps the setting in the file.
FTS_HASH_BYTES = 16 * 1024 * 1024
_ONE_SEGMENT_PER_BATCH = tuple(
    f"INSERT INTO {fts} ({fts}, rank) VALUES ('hashsize', {FTS_HASH_BYTES})" for fts in ("posts_fts", BIGRAM_TABLE)
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial schema",
        _TABLES_V1 + _external_fts("posts", "content_text") + _external_fts("threads", "title"),
    ),
    Migration(
        2,
        "adaptive revisits: when each thread is next due, and how many visits found it quiet",
        (
            "ALTER TABLE threads ADD COLUMN next_due_at TEXT",
            "ALTER TABLE threads ADD COLUMN quiet_visits INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX idx_threads_site_due ON threads (site_id, next_due_at)",
        ),
    ),
    Migration(
        3,
        "fast writes: posts indexed for search in batches behind a watermark; each "
        "version's text stored once (post_versions holds it only once superseded)",
        _batched_posts_fts() + _VERSIONS_TEXT_ONCE,
    ),
    Migration(4, "2-character search: posts_bigram, an index of each post's character pairs", _bigram_posts()),
    Migration(5, "posts_bigram rebuilt so that it can be scanned (Datasette counts every table)", _BIGRAM_SCANNABLE),
    Migration(6, "posts.content_status: the status of the rendering a post's text was archived from",
              _CONTENT_STATUS),
    Migration(
        7,
        "frontier leases by site: an index in the lease's order, so taking a site's next URL reads one "
        "index entry instead of sorting every pending row",
        ("CREATE INDEX idx_frontier_site_lease ON frontier (site_id, state, priority DESC, next_due_at)",),
    ),
    Migration(
        8,
        "search index batches written as one segment each: FTS5's pending-terms hash raised to "
        "16 MiB for posts_fts and posts_bigram",
        _ONE_SEGMENT_PER_BATCH,
    ),
    Migration(
        9,
        "vanished posts: a thread's posts indexed by pid, the order a page's posts are a run of "
        "(storage.archive.vanished_pid_span), instead of by page; runs count the posts found gone",
        (
            "DROP INDEX idx_posts_thread_page",
            "CREATE INDEX idx_posts_thread_pid ON posts (thread_id, pid)",
            "ALTER TABLE runs ADD COLUMN gone_posts INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        10,
        "the posts gone from the forum, indexed by when they went (a partial index: only they are in it), "
        "for the gone_posts query",
        ("CREATE INDEX idx_posts_gone ON posts (gone_at) WHERE gone_at IS NOT NULL",),
    ),
    Migration(
        11,
        "a version covers a post's images and links too: posts.hash_covers_media says whether its "
        "content_hash does (0: written before, hashed on its text alone; taken up when next seen)",
        ("ALTER TABLE posts ADD COLUMN hash_covers_media INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        12,
        "threads.newest_first: whether the thread's pages list its replies newest first (its new "
        "replies land on page 1), as its last page read with replies in order showed (NULL: not known)",
        ("ALTER TABLE threads ADD COLUMN newest_first INTEGER",),
    ),
    Migration(
        13,
        "threads.last_archived_post_at: the latest posted_at among the thread's archived posts, kept "
        "by every save of one of its pages, for the active_threads query (which grouped every post "
        "of the archive and outgrew the 3 s limit past a million posts)",
        ("ALTER TABLE threads ADD COLUMN last_archived_post_at TEXT",
         "UPDATE threads SET last_archived_post_at = (SELECT max(posted_at) FROM posts WHERE posts.thread_id = threads.id)"),
    ),
    Migration(
        14,
        "the author index also orders each author's posts by time, so author_posts reads one page of "
        "them instead of sorting every post of the author (294 ms at 1M posts, growing with the archive)",
        ("DROP INDEX idx_posts_author", "CREATE INDEX idx_posts_author ON posts (author, posted_at)"),
    ),
    Migration(
        15,
        "a superseded version keeps the attachments and quotes it was seen with, as it keeps its "
        "text (attachments listed below a post are not in its HTML: a swapped file was named nowhere); "
        "NULL in the current version, which posts holds, and in versions superseded before",
        ("ALTER TABLE post_versions ADD COLUMN attachments_json TEXT",
         "ALTER TABLE post_versions ADD COLUMN quotes_json TEXT"),
    ),
    Migration(
        16,
        "post_reverts: each time a post is seen again with the content of one of its earlier "
        "versions (post_versions keeps one row per distinct content, so an edit back to an "
        "earlier text left no trace of when the post went back)",
        ("""CREATE TABLE post_reverts (
    id INTEGER PRIMARY KEY,
    post_id INTEGER NOT NULL REFERENCES posts(id),
    version_id INTEGER NOT NULL REFERENCES post_versions(id),
    seen_at TEXT NOT NULL
)""", "CREATE INDEX idx_post_reverts_version ON post_reverts (version_id)"),
    ),
    Migration(
        17,
        "what a thread page shows outside the post bodies: posts.subject (a reply's own title), "
        "threads.poll_json (a poll thread's options, counts and voters) and threads.classified_json "
        "(the thread's 分类信息 fields), the latest seen on page 1; NULL where there is none",
        ("ALTER TABLE posts ADD COLUMN subject TEXT",
         "ALTER TABLE threads ADD COLUMN poll_json TEXT",
         "ALTER TABLE threads ADD COLUMN classified_json TEXT"),
    ),
    Migration(
        18,
        "threads.visits: the visits that ended at the thread's last page, each of which set its next "
        "due time; 0 until its first ends (a thread given a due time before, by a board row or a "
        "failed page, is still before its first)",
        ("ALTER TABLE threads ADD COLUMN visits INTEGER NOT NULL DEFAULT 0",
         # An archive from before: a thread with a due time was most likely visited to its end.
         "UPDATE threads SET visits = 1 WHERE next_due_at IS NOT NULL"),
    ),
    Migration(
        19,
        "threads.special_json: what a reward, activity, debate or trade thread shows beside its "
        "opening post (the bounty and best answer, the event's details, the two sides' points and "
        "votes, the items on sale), "
        "the latest seen on page 1; NULL where there is none. A thread archived before it is read "
        "when its page 1 is next fetched whole",
        ("ALTER TABLE threads ADD COLUMN special_json TEXT",),
    ),
    Migration(
        20,
        "thread_part_versions: each value a thread's poll, classified or special part took, with when "
        "it was first seen (NULL: gone from page 1); a poll's countdown is no change. An archive from "
        "before starts it with each part's value as last seen",
        ("""CREATE TABLE thread_part_versions (
    id INTEGER PRIMARY KEY,
    thread_id INTEGER NOT NULL REFERENCES threads(id),
    part TEXT NOT NULL CHECK (part IN ('poll', 'classified', 'special')),
    value_json TEXT,
    seen_at TEXT NOT NULL
)""",
         "CREATE INDEX idx_thread_part_versions_thread ON thread_part_versions (thread_id, part, id)",
         # What an archive from before knows: each part as last seen, as of the thread's last sighting.
         """INSERT INTO thread_part_versions (thread_id, part, value_json, seen_at)
    SELECT id, 'poll', poll_json, last_seen_at FROM threads WHERE poll_json IS NOT NULL ORDER BY id""",
         """INSERT INTO thread_part_versions (thread_id, part, value_json, seen_at)
    SELECT id, 'classified', classified_json, last_seen_at FROM threads WHERE classified_json IS NOT NULL ORDER BY id""",
         """INSERT INTO thread_part_versions (thread_id, part, value_json, seen_at)
    SELECT id, 'special', special_json, last_seen_at FROM threads WHERE special_json IS NOT NULL ORDER BY id"""),
    ),
)


def current_version(db: sqlite_utils.Database) -> int:
    """The highest schema version applied to `db`; 0 for a file without a schema."""
    if not db["schema_version"].exists():
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return row[0] or 0


def _refuse_foreign_tables(db: sqlite_utils.Database) -> None:
    """Raise NotAnArchiveError if `db`, which has no archive schema, holds tables of its own."""
    tables = db.table_names()
    if tables:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise NotAnArchiveError(f"{db.conn.execute('PRAGMA database_list').fetchone()[2]} is not an archive: "
                                f"it holds other tables ({shown}) and no schema_version")


def check_readable(db: sqlite_utils.Database) -> int:
    """For a read-only open: the archive's schema version, if this software can read it.
    Raises NotAnArchiveError for another program's database, SchemaVersionError for a file
    newer than this software or older than it (a writer upgrades it; a reader cannot)."""
    version = current_version(db)
    if version == 0:
        _refuse_foreign_tables(db)
        raise NotAnArchiveError(f"{db.conn.execute('PRAGMA database_list').fetchone()[2]} is not an archive: "
                                "it has no schema")
    _refuse_newer(version, SCHEMA_VERSION)
    if version < SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the archive has schema version {version} and this software reads version {SCHEMA_VERSION}: "
            "open it for writing once to upgrade it (forum-archiver index --db FILE does)")
    return version


def _refuse_newer(version: int, target: int) -> None:
    if version > target:
        raise SchemaVersionError(
            f"the archive has schema version {version}; this software knows versions up to {target}"
        )


def ensure_schema(db: sqlite_utils.Database, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring `db` up to the last of `migrations`, each in its own transaction; idempotent.

    Returns the resulting version. Raises SchemaVersionError when the file is newer than
    the migrations known here: writing to it could corrupt what a newer version built.
    """
    target = migrations[-1].version if migrations else 0
    version = current_version(db)
    _refuse_newer(version, target)
    if version == 0:
        _refuse_foreign_tables(db)
    conn = db.conn
    for migration in migrations:
        if migration.version <= version:
            continue
        # IMMEDIATE takes the write lock before the version is read again, so two
        # processes opening a fresh archive at once cannot both apply one migration.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(SCHEMA_VERSION_TABLE)
            version = current_version(db)
            _refuse_newer(version, target)
            if migration.version > version:
                if migration.version != version + 1:
                    raise SchemaVersionError(
                        f"migration {migration.version} cannot follow schema version {version}"
                    )
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (migration.version, datetime.now(timezone.utc).isoformat(timespec="seconds")),
                )
                version = migration.version
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return current_version(db)


__all__ = [
    "BIGRAM_INDEXED_THROUGH",
    "BIGRAM_TABLE",
    "INDEXED_THROUGH",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SEARCH_INDEX_STATE",
    "Migration",
    "NotAnArchiveError",
    "SchemaVersionError",
    "check_readable",
    "current_version",
    "ensure_schema",
]
