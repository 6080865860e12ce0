"""One test per command, through click's runner or as the real process a user starts."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from scraper.cli import main
from scraper.sites import load_site, site_from_dict
from storage.archive import Archive
from storage.schema import NotAnArchiveError

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "seeds" / "000_742c7f89ba496aaa.txt"
DEMO_CONFIG = REPO / "seeds" / "sites" / "demo.toml"
CLI = [sys.executable, "-m", "scraper.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout_s: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            resp = httpx.get(url, timeout=2.0)
            if resp.status_code == 200:
                return resp
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {timeout_s} s")
        time.sleep(0.2)


def port_closes(port: int, timeout_s: float = 15.0) -> bool:
    """Whether nothing listens on 127.0.0.1:port within timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.2)
    return False


@pytest.fixture
def process():
    started = []

    def start(*args):
        proc = subprocess.Popen([*CLI, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_import_text(tmp_path):
    db = tmp_path / "a.db"
    result = CliRunner().invoke(main, ["import-text", str(SEED), "--db", str(db), "--config", str(DEMO_CONFIG)])
    assert result.exit_code == 0, result.output
    assert "8 posts (8 new" in result.output
    with Archive(db, readonly=True) as archive:
        assert archive.db.execute("select count(*) from posts").fetchone()[0] == 8
        # The import is a run of its own, as metadata.yaml and `status` say.
        assert archive.db.execute("select job, status, new_posts, requests from runs").fetchall() == [
            ("import-text", "finished", 8, 0)]


def test_import_text_refuses_a_file_that_is_not_a_thread(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("nothing to see here\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["import-text", str(junk), "--db", str(tmp_path / "a.db")])
    assert result.exit_code == 1
    assert "junk.txt" in result.output and "Error" in result.output


def test_crawl(demo_forum, tmp_path):
    db = tmp_path / "a.db"
    args = ["crawl", f"{demo_forum.base_url}forum-1-1.html", "--db", str(db), "--config", str(DEMO_CONFIG),
            "--delay", "0", "--allow-private"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "failures: none" in result.output
    with Archive(db, readonly=True) as archive:
        assert archive.db.execute("select count(*) from threads where title = '基层党委办公室应强化的十种意识'"
                                  ).fetchone()[0] == 1


def test_a_killed_crawls_run_is_closed_by_the_next_crawl_or_job_of_its_host(demo_forum, tmp_path):
    # A crawl killed mid-run leaves its runs row 'running'; whoever holds the host's lock next
    # knows no crawl of it is alive, and closes the row as 'abandoned' (status showed it running for ever).
    from scraper import schedule

    db = tmp_path / "a.db"
    args = ["crawl", f"{demo_forum.base_url}forum-1-1.html", "--db", str(db), "--config", str(DEMO_CONFIG),
            "--delay", "0", "--allow-private", "--max-requests", "2"]
    assert CliRunner().invoke(main, args).exit_code == 0

    def leave_a_running_crawl():
        with Archive(db) as archive:
            archive.db.execute("update runs set status = 'running', finished_at = null where id = "
                               "(select max(id) from runs)")

    leave_a_running_crawl()
    assert CliRunner().invoke(main, args).exit_code == 0
    leave_a_running_crawl()
    site = load_site(DEMO_CONFIG)
    site = site_from_dict(dict(site.raw, base_url=demo_forum.base_url))
    schedule.refresh_site(str(db), json.dumps(site.raw), schedule.RunOptions(delay_s=0, allow_private=True).to_json())
    with Archive(db, readonly=True) as archive:
        runs = archive.db.execute("select job, status from runs order by id").fetchall()
    assert runs == [("crawl", "abandoned"), ("crawl", "abandoned"), ("refresh", "finished")]


def test_a_crawl_takes_back_what_a_killed_crawl_of_its_host_held(demo_forum, tmp_path):
    # A crawl killed (or stopped with Ctrl-C) leaves the URL it had in hand leased for
    # LEASE_S; the next crawl holds the host's lock, so no live crawl can hold that lease.
    db = tmp_path / "a.db"
    board = f"{demo_forum.base_url}forum-1-1.html"
    args = ["crawl", board, "--db", str(db), "--config", str(DEMO_CONFIG), "--delay", "0", "--allow-private"]
    assert CliRunner().invoke(main, [*args, "--max-requests", "1"]).exit_code == 0
    with Archive(db) as archive:  # as the killed crawl left it: in hand, its lease an hour long
        archive.db.execute("update frontier set state = 'leased', leased_until = strftime('%Y-%m-%dT%H:%M:%S+00:00', "
                           "'now', '+1 hour') where url_key = 'board:1:1'")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    with Archive(db, readonly=True) as archive:
        assert archive.db.execute("select state from frontier where url_key = 'board:1:1'").fetchone()[0] == "done"
        assert archive.db.execute("select count(*) from frontier where state = 'leased'").fetchone()[0] == 0
        assert archive.db.execute("select count(*) from posts").fetchone()[0] > 0


def test_a_killed_demo_is_closed_and_its_lease_taken_back_by_the_next_demo(tmp_path):
    db = tmp_path / "demo.db"
    assert CliRunner().invoke(main, ["demo", "--db", str(db), "--no-serve"]).exit_code == 0
    with Archive(db) as archive:  # as a demo killed mid-crawl leaves it
        archive.db.execute("update runs set status = 'running', finished_at = null")
        archive.db.execute("update frontier set state = 'leased', leased_until = strftime('%Y-%m-%dT%H:%M:%S+00:00', "
                           "'now', '+1 hour') where url_key = 'board:1:1'")
    result = CliRunner().invoke(main, ["demo", "--db", str(db), "--no-serve"])
    assert result.exit_code == 0, result.output
    with Archive(db, readonly=True) as archive:
        assert archive.db.execute("select job, status from runs order by id").fetchall() == [
            ("crawl", "abandoned"), ("crawl", "finished")]
        assert archive.db.execute("select count(*) from frontier where state = 'leased'").fetchone()[0] == 0


def test_crawl_without_allow_private_refuses_loopback(demo_forum, tmp_path):
    result = CliRunner().invoke(main, ["crawl", f"{demo_forum.base_url}forum-1-1.html", "--db",
                                       str(tmp_path / "a.db"), "--delay", "0"])
    assert result.exit_code == 0
    assert "blocked_address" in result.output
    assert demo_forum.requests == []


def test_crawl_with_a_bad_config_names_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nbase_url = "http://127.0.0.1/"\nutc_offset = "8"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["crawl", "http://127.0.0.1/forum-1-1.html", "--db", str(tmp_path / "a.db"),
                                       "--config", str(bad)])
    assert result.exit_code == 1
    assert "utc_offset" in result.output


@pytest.mark.parametrize("command", [
    ["crawl", "http://[::1"],
    ["crawl", "http://127.0.0.1:99999/forum-1-1.html"],
    ["crawl", "http://127.0.0.1/forum-1-1.html", "http://[::1"],
    ["run", "--once", "--site", "http://127.0.0.1:99999/forum-1-1.html"],
    ["import-text", str(SEED), "--url", "http://[::1"],
])
def test_a_broken_url_is_named_in_one_line_and_nothing_is_created(tmp_path, command):
    db = tmp_path / "a.db"
    result = CliRunner().invoke(main, [*command, "--db", str(db)])
    assert result.exit_code == 2 and "is not an http(s) URL" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not db.exists()


def test_demo_forum_command(process):
    port = free_port()
    process("demo-forum", "--port", str(port))
    page = wait_for(f"http://127.0.0.1:{port}/forum-1-1.html")
    assert "normalthread_" in page.text


def test_serve(tmp_path, process):
    db = tmp_path / "mine.db"
    assert CliRunner().invoke(main, ["import-text", str(SEED), "--db", str(db), "--config",
                                     str(DEMO_CONFIG)]).exit_code == 0
    port = free_port()
    proc = process("serve", "--db", str(db), "--port", str(port))
    resp = wait_for(f"http://127.0.0.1:{port}/mine/thread_posts.json?thread_id=1&_shape=array")
    assert [row["floor"] for row in resp.json()] == list(range(1, 9))
    # Stopping the command stops Datasette too, which serves from a child process.
    proc.terminate()
    assert proc.wait(15) in (0, 128 + signal.SIGTERM)  # Datasette's own exit, or its signal's
    assert port_closes(port), "datasette outlived forum-archiver serve"


def test_demo_crawls_then_serves(tmp_path, process):
    port = free_port()
    proc = process("demo", "--db", str(tmp_path / "demo.db"), "--port", str(port))
    resp = wait_for(f"http://127.0.0.1:{port}/demo/search.json?q=忧患意识&_shape=array", timeout_s=60)
    assert {row["title"] for row in resp.json()} == {"基层党委办公室应强化的十种意识"}
    assert proc.poll() is None  # still serving
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    proc.wait(15)
    assert port_closes(port), "datasette outlived forum-archiver demo"


def test_a_second_daemon_on_one_archive_is_refused_and_leaves_the_first_ones_jobs(tmp_path):
    # Both would share the archive's job store, and each removes the jobs of sites it was not given.
    from scraper import schedule

    db = tmp_path / "a.db"
    site_a = "http://127.0.0.1:9/forum-1-1.html"  # never fetched: the refusal comes first
    with schedule.daemon_lock(db):
        result = CliRunner().invoke(main, ["run", "--db", str(db), "--site", site_a, "--allow-private"])
    assert result.exit_code != 0
    assert "a daemon is running on" in result.output and f"pid {os.getpid()}" in result.output
    assert not schedule.jobs_path_for(db).exists()
    with schedule.daemon_lock(db):  # released by the holder: the next daemon may start
        pass


def test_an_archive_a_daemon_keeps_is_not_served_immutable_even_between_jobs(demo_forum, tmp_path, process,
                                                                           monkeypatch):
    # Between jobs the daemon holds no transaction, so the -wal check cannot see it; its
    # daemon slot says it will write again.
    from scraper import schedule
    from tests.test_daemon_many_sites import run_once_args

    served = []
    monkeypatch.setattr("scraper.publish.run_datasette", lambda command: served.append(command) or 0)
    db = tmp_path / "a.db"
    args = [arg for arg in run_once_args(db, tmp_path, [("demo", demo_forum)]) if arg != "--once"]
    daemon = process(*args, "--every", "3600")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until its discover job has finished: it is between jobs
        try:
            with Archive(db, readonly=True) as archive:
                if archive.db.execute("select count(*) from runs where job = 'discover' and status = 'finished'"
                                      ).fetchone()[0]:
                    break
        except (FileNotFoundError, NotAnArchiveError):
            pass  # the daemon has not created it yet, or is creating its tables right now
        time.sleep(0.2)
    else:
        raise AssertionError("the daemon's discover job did not finish")
    assert schedule.archive_lock_holders(db) == [f"a daemon (pid {daemon.pid})"]
    result = CliRunner().invoke(main, ["serve", "--db", str(db), "--immutable"])
    assert result.exit_code == 1 and f"a daemon (pid {daemon.pid})" in result.output
    assert "serve it without --immutable" in result.output and "Traceback" not in result.output
    assert served == []
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(30)
    assert schedule.archive_lock_holders(db) == []  # stopped: now the file may be served as it is
    assert CliRunner().invoke(main, ["serve", "--db", str(db), "--immutable"]).exit_code == 0 and len(served) == 1


def test_an_archive_a_crawl_holds_is_not_served_immutable(tmp_path, monkeypatch):
    from scraper import schedule

    monkeypatch.setattr("scraper.publish.run_datasette", lambda command: pytest.fail(f"served: {command}"))
    db = tmp_path / "a.db"
    Archive(db).close()
    with schedule.host_lock(db, "bbs.example.cn") as held:
        assert held is not None
        result = CliRunner().invoke(main, ["serve", "--db", str(db), "--immutable"])
    assert result.exit_code == 1 and "a crawl of bbs.example.cn" in result.output
    assert schedule.archive_lock_holders(db) == []


def test_crawl_takes_the_hosts_lock_and_keeps_the_last_crawls_pause(demo_forum, tmp_path, monkeypatch):
    from scraper import config, schedule

    db, url = tmp_path / "a.db", f"{demo_forum.base_url}thread-4-1-1.html"
    args = ["crawl", url, "--db", str(db), "--delay", "0", "--allow-private"]
    monkeypatch.setattr(config, "SITE_LOCK_WAIT_S", 0.5)
    daemon_job = schedule.HostLock(db, "127.0.0.1")
    assert daemon_job.try_acquire()
    busy = CliRunner().invoke(main, args)
    # The job that held the lock leaves: the server asked it for a 1.5 s pause.
    daemon_job.set_not_before(time.time() + 1.5)
    daemon_job.release()
    started = time.monotonic()
    done = CliRunner().invoke(main, args)
    asked = [r for r in demo_forum.requests if r.method == "GET"]
    assert busy.exit_code == 1 and "stayed busy" in busy.output
    assert done.exit_code == 0 and asked and asked[0].at - started >= 1.4


def test_a_db_that_is_not_an_archive_gets_one_clear_line_and_is_left_as_it_was(tmp_path):
    import sqlite3

    text = tmp_path / "notes.txt"
    text.write_text("not a database at all\n" * 100, encoding="utf-8")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table customers (id integer primary key, name text)")
    for args, expected in [
        (["status", "--db", str(text)], "the archive cannot be used: file is not a database"),
        (["index", "--db", str(other)], "is not an archive: it holds other tables (customers)"),
        (["status", "--db", str(other)], "is not an archive: it holds other tables (customers)"),
        (["crawl", "http://127.0.0.1:9/forum-1-1.html", "--db", str(other)], "is not an archive"),
        (["crawl", "http://127.0.0.1:9/forum-1-1.html", "--db", str(tmp_path / "no" / "a.db")], "no directory"),
    ]:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and expected in result.output, (args, result.output)
        assert "Traceback" not in result.output
    with sqlite3.connect(other) as conn:  # nothing of the archive's was written into it
        assert [r[0] for r in conn.execute("select name from sqlite_master")] == ["customers"]


def test_an_archive_of_an_older_schema_is_named_to_a_reader_and_upgraded_by_a_writer(tmp_path):
    from storage.schema import MIGRATIONS, SCHEMA_VERSION, ensure_schema
    from storage.db import open_db
    import sqlite_utils

    db = tmp_path / "old.db"
    ensure_schema(sqlite_utils.Database(db), MIGRATIONS[:-1])  # as the version before this one left it
    for command in ("status", "serve"):
        old = CliRunner().invoke(main, [command, "--db", str(db)])
        assert old.exit_code == 1 and f"reads version {SCHEMA_VERSION}" in old.output and "index --db" in old.output
    assert CliRunner().invoke(main, ["index", "--db", str(db)]).exit_code == 0
    assert CliRunner().invoke(main, ["status", "--db", str(db)]).exit_code == 0
    open_db(db, readonly=True).close()


def test_a_config_is_moved_to_the_address_of_the_url_given_port_and_all(tmp_path):
    from scraper.cli import _resolve_site

    with Archive(tmp_path / "a.db") as archive:
        site = _resolve_site(archive, ["http://127.0.0.1:18765/forum-1-1.html"], str(DEMO_CONFIG), None)
    assert site.base_url == "http://127.0.0.1:18765/"  # the config says :8765
