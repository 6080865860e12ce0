"""What the end-to-end contestants share: how each runs in a fresh process of its own and
reports, and the plain SQLite posts table the two competitors write.

A contestant module is run as `python -m benchmarks.<module> --db PATH --seeds URL...`; its
last stdout line is a JSON object: the crawl's own wall time and CPU seconds (measured around
the crawl only, so interpreter start-up and imports are not counted) and anything else it
wants to say. The parent reaps it with os.wait4, which gives the whole process's CPU time
and peak RSS (ru_maxrss) as well.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

RESULT_MARK = "contestant-result: "

PLAIN_SCHEMA = """CREATE TABLE IF NOT EXISTS posts (
    host TEXT NOT NULL, pid INTEGER NOT NULL, author TEXT, posted TEXT, text TEXT,
    PRIMARY KEY (host, pid))"""


def open_plain_db(path: str | Path) -> sqlite3.Connection:
    """A plain posts table with the archive's pragmas (WAL, synchronous=NORMAL): the
    competitors pay for durability what the archive pays, and no more."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(PLAIN_SCHEMA)
    return conn


def save_rows(conn: sqlite3.Connection, host: str, rows: Iterable[tuple[int, str, str, str]]) -> None:
    """One page's posts in one transaction, as the archive writes a page."""
    conn.execute("BEGIN")
    conn.executemany("INSERT OR REPLACE INTO posts (host, pid, author, posted, text) VALUES (?, ?, ?, ?, ?)",
                     [(host, *row) for row in rows])
    conn.execute("COMMIT")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def contestant_main(crawl: Callable[..., dict], description: str,
                    add_options: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """The child side: parse --db, --seeds and the options `add_options` adds, run
    `crawl(db, seeds, **options)` and print its result line with the crawl's wall and CPU seconds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--seeds", nargs="+", required=True, help="board URLs, one per forum host")
    if add_options:
        add_options(parser)
    options = vars(parser.parse_args())
    db, seeds = options.pop("db"), options.pop("seeds")
    wall, cpu = time.perf_counter(), cpu_s()
    extra = crawl(db, seeds, **options)
    result = {"crawl_wall_s": time.perf_counter() - wall, "crawl_cpu_s": cpu_s() - cpu, **extra}
    print(RESULT_MARK + json.dumps(result), flush=True)


@dataclass
class ChildRun:
    """A contestant's run as the parent saw it."""

    result: dict  # what the child printed
    wall_s: float  # the whole process, start-up included
    cpu_s: float  # user + sys of the whole process (os.wait4)
    peak_rss_mb: float  # ru_maxrss of the process


def run_contestant(module: str, db: Path, seeds: list[str], *, options: tuple[str, ...] = (),
                   timeout_s: float = 1800.0, profile_to: Path | None = None) -> ChildRun:
    """Run `python -m module --db db --seeds ... *options` in a fresh process and reap its
    usage; `profile_to`: run it under pyinstrument (text report of wall-clock shares in that file)."""
    out_path, err_path = db.with_suffix(".out"), db.with_suffix(".err")
    profiler = ["-m", "pyinstrument", "-r", "text", "-p", "time=percent_of_total", "-o", str(profile_to)] \
        if profile_to else []
    started = time.perf_counter()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        child = subprocess.Popen([sys.executable, *profiler, "-m", module, "--db", str(db), "--seeds", *seeds,
                                  *options],
                                 stdout=out, stderr=err, cwd=Path(__file__).resolve().parent.parent)
    # os.wait4 (not Popen.wait) reaps the child and hands back its own rusage.
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - started > timeout_s:
            child.kill()
            raise SystemExit(f"{module} ran past {timeout_s:.0f} s")
        time.sleep(0.05)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in out_path.read_text().splitlines() if line.startswith(RESULT_MARK)]
    if child.returncode != 0 or not lines:
        raise SystemExit(f"{module} failed (exit {child.returncode}):\n{err_path.read_text()[-3000:]}")
    return ChildRun(result=json.loads(lines[-1][len(RESULT_MARK):]), wall_s=wall,
                    cpu_s=usage.ru_utime + usage.ru_stime, peak_rss_mb=usage.ru_maxrss / 1024)
