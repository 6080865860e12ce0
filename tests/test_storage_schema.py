"""storage.db and storage.schema: how the file is opened and what it holds."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from storage.archive import Archive, ReadOnlyArchiveError
from storage.db import open_db
from storage.schema import FTS_HASH_BYTES, MIGRATIONS, SCHEMA_VERSION, Migration, SchemaVersionError, ensure_schema

# The public contract: users' SQL and the Datasette configuration rely on these names.
CONTRACT = {
    "schema_version": ["version", "applied_at"],
    "sites": ["id", "name", "engine", "base_url", "utc_offset", "config_json", "created_at"],
    "threads": [
        "id", "site_id", "tid", "thread_key", "title", "url", "board", "fid", "replies", "views",
        "page_count", "last_post_at", "first_seen_at", "last_seen_at", "gone_at",
    ],
    "posts": [
        "id", "site_id", "thread_id", "pid", "post_key", "floor", "floor_label", "page", "author",
        "author_uid", "posted_at", "posted_at_raw", "content_text", "content_html", "content_hash",
        "quotes_json", "signature", "edit_note", "attachments_json", "status", "noise_json",
        "version_count", "first_seen_at", "last_seen_at", "gone_at", "content_status",
    ],
    "post_versions": [
        "id", "post_id", "content_hash", "content_text", "content_html", "edit_note", "seen_at",
    ],
    "bodies": ["sha256", "compression", "size", "stored_size", "data", "first_seen_at"],
    "pages": [
        "id", "site_id", "url", "url_key", "kind", "thread_id", "page_no", "body_sha256",
        "encoding", "replaced_chars", "etag", "last_modified", "extract_hash", "post_count",
        "first_fetched_at", "last_fetched_at", "last_changed_at",
    ],
    "fetches": [
        "id", "site_id", "run_id", "url", "final_url", "method", "status", "reason", "bytes",
        "elapsed_ms", "body_sha256", "fetched_at",
    ],
    "frontier": [
        "id", "site_id", "url", "url_key", "kind", "host", "state", "reason", "attempts",
        "priority", "depth", "discovered_from", "next_due_at", "leased_until", "added_at",
        "updated_at",
    ],
    "robots": ["host", "status", "body", "reason", "fetched_at", "expires_at"],
    "runs": [
        "id", "site_id", "job", "started_at", "finished_at", "status", "requests", "not_modified",
        "new_posts", "new_versions", "failures", "failures_json",
    ],
    "parse_failures": ["id", "site_id", "url", "body_sha256", "reason", "detail", "at"],
    "noise_phrases": ["id", "site_id", "phrase", "post_count", "status", "proposed_at"],
}


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "archive.db"


def pragma(db, name):
    return db.execute(f"PRAGMA {name}").fetchone()[0]


def test_every_contract_table_has_its_columns(db_path):
    db = open_db(db_path)
    for table, columns in CONTRACT.items():
        assert db[table].exists(), table
        assert [c.name for c in db[table].columns][: len(columns)] == columns, table


def test_indexes_and_fts_tables_exist(db_path):
    db = open_db(db_path)
    index_columns = {
        tuple(index.columns) for table in ("posts", "frontier") for index in db[table].indexes
    }
    for columns in [("thread_id", "floor"), ("author", "posted_at"), ("posted_at",), ("state", "next_due_at")]:
        assert columns in index_columns
    fts_sql = {
        row[0]: row[1]
        for row in db.execute("SELECT name, sql FROM sqlite_master WHERE name LIKE '%\\_fts' ESCAPE '\\'")
    }
    assert 'content="posts"' in fts_sql["posts_fts"] and "trigram" in fts_sql["posts_fts"]
    assert 'content="threads"' in fts_sql["threads_fts"] and "trigram" in fts_sql["threads_fts"]


def test_opening_twice_is_idempotent_with_one_version_row(db_path):
    open_db(db_path).close()
    db = open_db(db_path)
    rows = db.execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    assert ensure_schema(db) == SCHEMA_VERSION
    assert db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_migrations_are_numbered_one_to_schema_version():
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


def test_connection_settings(db_path):
    db = open_db(db_path)
    assert pragma(db, "journal_mode") == "wal"
    assert pragma(db, "foreign_keys") == 1
    assert pragma(db, "busy_timeout") == 5000
    assert pragma(db, "synchronous") == 1  # NORMAL
    # The savepoints' sub-journals in memory (a crawl saves each page in one); read-only
    # connections keep SQLite's default.
    assert pragma(db, "temp_store") == 2  # MEMORY
    assert pragma(open_db(db_path, readonly=True), "temp_store") == 0


def test_foreign_keys_are_enforced(db_path):
    db = open_db(db_path)
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        db.execute(
            "INSERT INTO threads (site_id, thread_key, first_seen_at, last_seen_at) "
            "VALUES (42, '1', 'x', 'x')"
        )


def test_frontier_state_is_checked(db_path):
    db = open_db(db_path)
    db.execute("INSERT INTO sites (name, engine, created_at) VALUES ('s', 'discuz', 'x')")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute(
            "INSERT INTO frontier (site_id, url, url_key, kind, host, state, added_at, updated_at)"
            " VALUES (1, 'u', 'u', 'thread', 'h', 'lost', 'x', 'x')"
        )


def test_a_later_migration_is_applied_once(db_path):
    open_db(db_path).close()
    db = open_db(db_path)
    later = (*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "reading lists", (
        "CREATE TABLE reading_lists (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    )))
    assert ensure_schema(db, later) == SCHEMA_VERSION + 1
    assert ensure_schema(db, later) == SCHEMA_VERSION + 1
    assert db["reading_lists"].exists()
    versions = [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 2))


def test_a_failing_migration_leaves_the_file_at_its_version(db_path):
    db = open_db(db_path)
    broken = (*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "broken", (
        "CREATE TABLE half_done (id INTEGER PRIMARY KEY)",
        "CREATE TABLE posts (id INTEGER PRIMARY KEY)",  # already exists
    )))
    with pytest.raises(sqlite3.OperationalError):
        ensure_schema(db, broken)
    assert not db["half_done"].exists()
    assert db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_a_newer_archive_is_refused(db_path):
    db = open_db(db_path)
    db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, 'x')", [SCHEMA_VERSION + 1])
    db.close()
    with pytest.raises(SchemaVersionError, match="knows versions up to"):
        open_db(db_path)


def test_readonly_refuses_writes_at_both_levels(db_path):
    with Archive(db_path) as writer:
        writer.upsert_site("laomi", engine="discuz")
    reader = Archive(db_path, readonly=True)
    assert reader.get_site("laomi")["engine"] == "discuz"
    with pytest.raises(ReadOnlyArchiveError):
        reader.upsert_site("other", engine="discuz")
    with pytest.raises(ReadOnlyArchiveError):
        reader.store_body(b"<html></html>")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.db.execute("INSERT INTO sites (name, engine, created_at) VALUES ('x', 'y', 'z')")
    assert reader.db["sites"].count == 1
    reader.close()


def test_readonly_reader_sees_a_live_writers_commits(db_path):
    with Archive(db_path) as writer:
        reader = Archive(db_path, readonly=True)
        writer.upsert_site("laomi", engine="discuz")
        assert reader.get_site("laomi") is not None
        reader.close()


def test_readonly_needs_an_existing_file(db_path):
    with pytest.raises(FileNotFoundError):
        open_db(db_path, readonly=True)
    assert not db_path.exists()


def test_a_missing_directory_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no directory"):
        open_db(tmp_path / "nowhere" / "archive.db")


def test_migration_3_upgrades_a_version_2_archive_in_place(db_path):
    conn = sqlite3.connect(db_path, isolation_level=None)
    v2 = sqlite_utils.Database(conn)
    assert ensure_schema(v2, MIGRATIONS[:2]) == 2
    conn.executescript("""
        INSERT INTO sites (id, name, engine, created_at) VALUES (1, 's', 'discuz', 'x');
        INSERT INTO threads (id, site_id, thread_key, first_seen_at, last_seen_at) VALUES (1, 1, '88', 'x', 'x');
        INSERT INTO posts (id, site_id, thread_id, post_key, content_text, content_html, content_hash,
            version_count, first_seen_at, last_seen_at)
        VALUES (1, 1, 1, '1', '不想扛红旗的工作人员', '<p>不想扛红旗的工作人员</p>', 'h-new', 2, 'x', 'x'),
               (2, 1, 1, '2', '办公室的同志都是参谋长', '<p>办公室的同志都是参谋长</p>', 'h-office', 1, 'x', 'x');
        -- version 2 stored every version's text, the current one twice
        INSERT INTO post_versions (id, post_id, content_hash, content_text, content_html, seen_at) VALUES
            (1, 1, 'h-old', '巴顿将军有句名言', '<p>巴顿将军有句名言</p>', 't0'),
            (2, 2, 'h-office', '办公室的同志都是参谋长', '<p>办公室的同志都是参谋长</p>', 't0'),
            (3, 1, 'h-new', '不想扛红旗的工作人员', '<p>不想扛红旗的工作人员</p>', 't1');
    """)
    conn.close()

    with Archive(db_path, index_batch_posts=None) as archive:
        assert current_version_of(archive.db) == SCHEMA_VERSION == 20
        copies = archive.db.execute(
            "SELECT id, content_text, content_html FROM post_versions ORDER BY id").fetchall()
        assert copies == [(1, "巴顿将军有句名言", "<p>巴顿将军有句名言</p>"), (2, None, None), (3, None, None)]
        history = [(v["content_text"], v["is_current"]) for v in archive.post_versions(1)]
        assert history == [("巴顿将军有句名言", 0), ("不想扛红旗的工作人员", 1)]
        # The posts version 2 indexed stay indexed: the watermark starts above them (they
        # wait for the bigram index alone, migration 4's backfill).
        assert archive.indexed_through() == 2 and archive.pending_index_count() == 2
        hits = archive.db.execute("SELECT rowid FROM posts_fts WHERE posts_fts MATCH '\"参谋长\"'").fetchall()
        assert hits == [(2,)]
        archive.db.execute("INSERT INTO posts_fts (posts_fts, rank) VALUES ('integrity-check', 1)")
        assert archive.db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert archive.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def current_version_of(db):
    return db.execute("SELECT max(version) FROM schema_version").fetchone()[0]


def test_new_archives_merge_search_segments_eight_at_a_time(db_path):
    db = open_db(db_path)
    assert db.execute("SELECT v FROM posts_fts_config WHERE k = 'automerge'").fetchone() == (8,)


@pytest.mark.parametrize("upgraded_from", [None, 7], ids=["new archive", "version 7 archive"])
def test_each_search_batch_is_written_as_one_segment(db_path, upgraded_from):
    if upgraded_from is not None:
        conn = sqlite3.connect(db_path, isolation_level=None)
        ensure_schema(sqlite_utils.Database(conn), MIGRATIONS[:upgraded_from])
        conn.close()
    with Archive(db_path) as archive:
        for fts in ("posts_fts", "posts_bigram"):
            assert archive.db.execute(f"SELECT v FROM {fts}_config WHERE k = 'hashsize'").fetchone() == (FTS_HASH_BYTES,)
        archive.db.conn.executescript("""
            INSERT INTO sites (id, name, engine, created_at) VALUES (1, 's', 'discuz', 'x');
            INSERT INTO threads (id, site_id, thread_key, first_seen_at, last_seen_at) VALUES (1, 1, '88', 'x', 'x');""")
        long_text = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(2000))
        archive.db.conn.executemany(
            "INSERT INTO posts (site_id, thread_id, post_key, content_text, content_html, content_hash, version_count, "
            "first_seen_at, last_seen_at) VALUES (1, 1, ?, ?, '', ?, 1, 'x', 'x')",
            [(str(n), f"{n} {long_text}", str(n)) for n in range(1000)])
        assert archive.index_pending() == 1000
        # FTS5's default of 1 MiB cut the batch's two million trigrams into several segments.
        assert archive.db.execute("SELECT count(DISTINCT segid) FROM posts_fts_idx").fetchone()[0] == 1


def test_migration_13_gives_each_thread_its_latest_archived_post_time(db_path):
    conn = sqlite3.connect(db_path, isolation_level=None)
    assert ensure_schema(sqlite_utils.Database(conn), MIGRATIONS[:12]) == 12
    conn.executescript("""
        INSERT INTO sites (id, name, engine, created_at) VALUES (1, 's', 'discuz', 'x');
        INSERT INTO threads (id, site_id, thread_key, first_seen_at, last_seen_at) VALUES
            (1, 1, '88', 'x', 'x'), (2, 1, '89', 'x', 'x');
        INSERT INTO posts (id, site_id, thread_id, post_key, posted_at, content_text, content_html, content_hash,
            version_count, first_seen_at, last_seen_at)
        VALUES (1, 1, 1, '1', '2024-03-01T08:00:00+08:00', 'a', 'a', 'h1', 1, 'x', 'x'),
               (2, 1, 1, '2', '2024-03-05T08:00:00+08:00', 'b', 'b', 'h2', 1, 'x', 'x'),
               (3, 1, 1, '3', NULL, 'c', 'c', 'h3', 1, 'x', 'x');
    """)
    conn.close()
    with Archive(db_path, index_batch_posts=None) as archive:
        rows = archive.db.execute("SELECT id, last_archived_post_at FROM threads ORDER BY id").fetchall()
        assert rows == [(1, "2024-03-05T08:00:00+08:00"), (2, None)]
