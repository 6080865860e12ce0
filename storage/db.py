"""Opening the archive file: one place that sets the connection up the same way every time."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from storage.bigram import BIGRAM_FUNCTION, bigram_document
from storage.schema import check_readable, ensure_schema

# A writer waits this long for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 5000


def open_db(path: str | Path, *, readonly: bool = False) -> sqlite_utils.Database:
    """Open the archive at `path` and return a sqlite_utils.Database.

    Writable: creates the file if needed, switches it to WAL (readers never block the
    writer), creates or migrates the schema, then keeps SQLite's temporary files (the
    savepoints' sub-journals) in memory. Read-only: opens with a ``mode=ro`` URI,
    so nothing can be written through the connection; the file must exist and hold this
    software's current schema. A file with another program's tables is refused either way
    (NotAnArchiveError).

    Either way: the bigram_document SQL function registered (the triggers that keep the
    bigram index exact call it), foreign keys on, busy_timeout 5000 ms, synchronous=NORMAL (safe with WAL:
    a power cut can lose the last transactions, never corrupt the file). The connection is
    in autocommit mode: transactions are explicit (see Archive.transaction), and
    sqlite-utils joins a transaction that is open.
    """
    path = Path(path)
    if readonly:
        if not path.is_file():
            raise FileNotFoundError(f"no archive at {path}")
        target, uri = path.resolve().as_uri() + "?mode=ro", True
    else:
        if not path.parent.is_dir():
            raise FileNotFoundError(f"no directory {path.parent} to hold the archive")
        target, uri = str(path), False
    # check_same_thread=False lets a crawler hand the archive to a worker thread; one
    # Archive must still be used by one thread at a time.
    conn = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # The bigram index's triggers call it (storage.schema, migration 4).
        conn.create_function(BIGRAM_FUNCTION, 1, bigram_document, deterministic=True)
        db = sqlite_utils.Database(conn)
        if readonly:
            check_readable(db)  # a reader cannot upgrade: an old or foreign file is named, not misread
        else:
            ensure_schema(db)  # refuses a file that holds another program's tables
            # A crawl saves each page in a savepoint of a grouped commit: SQLite copies every
            # page the savepoint changes to a sub-journal, spilled to a temporary file past
            # 64 KiB. Kept in memory, the write path is faster (bench_writes: 0.51-0.54 s
            # against 0.59-0.70 s for 10,000 short posts) for about 4 MB more peak RSS in a
            # crawl (bench_e2e). Set after the migrations, whose whole-table statements would
            # hold their statement journals in memory.
            conn.execute("PRAGMA temp_store = MEMORY")
    except BaseException:
        conn.close()
        raise
    return db


class WalNotFoldedError(RuntimeError):
    """An archive's write-ahead log could not be folded into its file (a writer holds it, or
    the file cannot be written), so the file alone is not the archive."""


def fold_wal(path: str | Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """Fold what the archive's write-ahead log holds into the file itself, before the file is
    read as immutable: SQLite then reads the file alone, and the last commits of a writer
    that was killed (they are in `<path>-wal` until a checkpoint) would be missing. A log
    that is absent or empty needs nothing. Raises WalNotFoldedError while a writer or reader
    is in a transaction, or when the file cannot be written. A process that holds the archive
    open between transactions (a daemon waiting for its next job) is not seen here: `serve
    --immutable` asks the daemon's and crawls' locks first (scraper.publish.prepare_immutable)."""
    wal = Path(f"{path}-wal")
    if not wal.exists() or wal.stat().st_size == 0:
        return
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:  # a read-only file or directory
        raise WalNotFoldedError(f"{path}: its write-ahead log {wal.name} cannot be folded into it ({exc}); "
                                "serve it without --immutable") from None
    finally:
        conn.close()
    if busy:
        raise WalNotFoldedError(f"{path} is in use ({wal.name} is held by a writer or reader): "
                                "serve it without --immutable, or once nothing else has it open")


__all__ = ["BUSY_TIMEOUT_MS", "WalNotFoldedError", "fold_wal", "open_db"]
