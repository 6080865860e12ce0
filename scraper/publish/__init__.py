"""Publishing the archive with Datasette, read-only.

datasette.yaml describes the archive under the database name `archive`; the archive file
may be called anything, so serve() maps that block onto the file's own database name.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from storage.db import WalNotFoldedError, fold_wal

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASETTE_YAML = REPO_ROOT / "datasette.yaml"
METADATA_YAML = REPO_ROOT / "metadata.yaml"
TEMPLATE_DB_NAME = "archive"
PLUGINS_DIR = Path(__file__).resolve().parent / "plugins"  # the thread reader, search box, links
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def _database_name(db_path: str | Path) -> str:
    return Path(db_path).stem


def _retarget(document: dict[str, Any], db_name: str) -> dict[str, Any]:
    databases = document.get("databases") or {}
    if TEMPLATE_DB_NAME in databases and db_name != TEMPLATE_DB_NAME:
        databases = dict(databases)
        databases[db_name] = databases.pop(TEMPLATE_DB_NAME)
        document = dict(document, databases=databases)
    return document


def load_config(db_path: str | Path) -> dict[str, Any]:
    """datasette.yaml with its `archive` block aimed at `db_path`'s database."""
    return _retarget(yaml.safe_load(DATASETTE_YAML.read_text(encoding="utf-8")), _database_name(db_path))


def load_metadata(db_path: str | Path) -> dict[str, Any]:
    """metadata.yaml with its `archive` block aimed at `db_path`'s database."""
    return _retarget(yaml.safe_load(METADATA_YAML.read_text(encoding="utf-8")), _database_name(db_path))


class ArchiveKeptError(WalNotFoldedError):
    """A daemon or a crawl keeps the archive (holds its lock), and will write to it again: it
    is not a snapshot to serve immutable."""


def prepare_immutable(db_path: str | Path) -> None:
    """Make the archive's file alone the archive, to be read immutable: refuse one a daemon or
    a crawl keeps (ArchiveKeptError), then fold its write-ahead log in (storage.db.fold_wal).
    A daemon waiting for its next job holds no transaction, so only its lock tells."""
    from scraper.schedule import archive_lock_holders  # the scheduler's imports: only when asked

    holders = archive_lock_holders(db_path)
    if holders:
        raise ArchiveKeptError(f"{db_path} is kept current by {' and '.join(holders)}, which will write to it "
                               "again: serve it without --immutable, or serve a backup copy "
                               "(sqlite3 archive.db \".backup snapshot.db\")")
    fold_wal(db_path)  # an immutable file is read alone, without its -wal


def make_datasette(db_path: str | Path, *, immutable: bool = False, settings: dict[str, Any] | None = None):
    """An in-process Datasette over the archive, configured as `forum-archiver serve` runs it;
    `settings` override datasette.yaml's (e.g. {"default_allow_sql": False})."""
    from datasette.app import Datasette

    if immutable:
        prepare_immutable(db_path)
    files = [] if immutable else [str(db_path)]
    immutables = [str(db_path)] if immutable else []
    config = load_config(db_path)
    if settings:
        config = dict(config, settings={**config.get("settings", {}), **settings})
    return Datasette(files, immutables=immutables, config=config, metadata=load_metadata(db_path),
                     plugins_dir=str(PLUGINS_DIR), template_dir=str(TEMPLATES_DIR))


def run_datasette(command: list[str]) -> int:
    """Run `datasette serve` (datasette_command) in a child until it exits; returns its exit code.

    SIGTERM and SIGINT sent to this process are passed on to the child, so stopping
    `forum-archiver serve` or `demo` (kill, a service manager, Ctrl-C) stops Datasette
    instead of leaving it serving the archive with no parent."""
    child = subprocess.Popen(command)

    def pass_on(signum: int, _frame: Any) -> None:
        child.send_signal(signum)

    previous = {signum: signal.signal(signum, pass_on) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = child.wait()
        return 128 - code if code < 0 else code  # killed by signal N: the shell's 128 + N
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def datasette_command(db_path: str | Path, *, host: str, port: int, immutable: bool = False) -> list[str]:
    """The `datasette serve` command line for the archive (config files retargeted in a temp dir).
    immutable: the archive is made ready to be read so first (prepare_immutable)."""
    if immutable:
        prepare_immutable(db_path)
    workdir = Path(tempfile.mkdtemp(prefix="forum-archiver-datasette-"))
    config_file = workdir / "datasette.yaml"
    metadata_file = workdir / "metadata.yaml"
    config_file.write_text(yaml.safe_dump(load_config(db_path), allow_unicode=True), encoding="utf-8")
    metadata_file.write_text(yaml.safe_dump(load_metadata(db_path), allow_unicode=True), encoding="utf-8")
    db_args = ["-i", str(db_path)] if immutable else [str(db_path)]
    return [sys.executable, "-m", "datasette", "serve", *db_args, "-c", str(config_file), "-m", str(metadata_file),
            "--plugins-dir", str(PLUGINS_DIR), "--template-dir", str(TEMPLATES_DIR), "--host", host, "--port", str(port)]
