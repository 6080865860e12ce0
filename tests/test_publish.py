"""Datasette over the archive, in process: stored queries, search, read-only."""

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from scraper.cli import main
from scraper.publish import DATASETTE_YAML, make_datasette
from scraper.textimport import import_text_file
from storage.archive import Archive
from storage.db import WalNotFoldedError, fold_wal
from storage.search import SEARCH_SQL

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "seeds" / "000_742c7f89ba496aaa.txt"
DEMO_CONFIG = REPO / "seeds" / "sites" / "demo.toml"
SEED_AUTHORS = ["仲伯间"] * 6 + ["xg0101", "绝世赢贼"]


@pytest.fixture
def archive_path(tmp_path):
    path = tmp_path / "forum.db"  # not named "archive": the config block must follow the file
    with Archive(path) as archive:
        import_text_file(archive, SEED, site_name="demo", config_path=DEMO_CONFIG)
    return path


@pytest.fixture
def client(archive_path):
    return make_datasette(archive_path).client


async def test_thread_posts_lists_the_seed_thread_in_floor_order(client):
    resp = await client.get("/forum/thread_posts.json", params={"thread_id": "1", "_shape": "array"})
    assert resp.status_code == 200
    rows = resp.json()
    assert [r["floor"] for r in rows] == list(range(1, 9))
    assert [r["author"] for r in rows] == SEED_AUTHORS
    assert rows[0]["posted_at"] == "2012-03-12T14:40:59+08:00"


@pytest.mark.parametrize(
    ("q", "floors"),
    [
        ("党员", {1, 6}),          # two characters: the LIKE path
        ("忧患意识", {1}),         # four characters: the trigram index
        ("总结的都很精辟", {7}),
    ],
)
async def test_search_finds_chinese_words(client, archive_path, q, floors):
    resp = await client.get("/forum/search.json", params={"q": q, "_shape": "array"})
    assert resp.status_code == 200
    hits = {r["floor"] for r in resp.json()}
    with Archive(archive_path, readonly=True) as archive:
        expected = {row[0] for row in archive.db.execute(
            "select floor from posts where content_text like ?", [f"%{q}%"])}
    assert hits == expected
    assert floors <= hits
    assert all("«" in r["snippet"] for r in resp.json())


def test_configured_search_is_the_storage_search_sql():
    config = yaml.safe_load(DATASETTE_YAML.read_text(encoding="utf-8"))
    configured = config["databases"]["archive"]["queries"]["search"]["sql"]
    assert re.sub(r"\s+", " ", configured).strip() == re.sub(r"\s+", " ", SEARCH_SQL).strip()


async def test_internal_tables_are_hidden(client):
    resp = await client.get("/forum.json")
    tables = {t["name"]: t for t in resp.json()["tables"]}
    assert tables["bodies"]["hidden"] and tables["frontier"]["hidden"] and tables["robots"]["hidden"]
    assert not tables["posts"]["hidden"]


async def test_every_table_has_a_page_and_the_database_page_runs_no_failing_sql(client, capsys):
    # Datasette counts every table on the database page and logs a failing count as an
    # SQL error; a table it cannot scan (the first posts_bigram) did that on every view.
    database = await client.get("/forum.json")
    assert database.status_code == 200
    names = [t["name"] for t in database.json()["tables"]]
    assert {"posts", "posts_bigram", "posts_fts"} <= set(names)
    for name in names:
        assert (await client.get(f"/forum/{name}.json")).status_code == 200, name
    assert "ERROR" not in capsys.readouterr().err


async def test_nothing_can_be_written(client, archive_path):
    with Archive(archive_path, readonly=True) as archive:
        before = archive.db.execute("select count(*) from posts").fetchone()[0]
    sql = await client.get("/forum/-/query.json", params={"sql": "delete from posts"})
    insert = await client.post("/forum/posts/-/insert", json={"row": {"id": 999}})
    drop = await client.post("/forum/posts/-/drop", json={"confirm": True})
    assert sql.status_code == 400
    assert insert.status_code in (401, 403)
    assert drop.status_code in (401, 403)
    with Archive(archive_path, readonly=True) as archive:
        assert archive.db.execute("select count(*) from posts").fetchone()[0] == before


@pytest.fixture
def tied_archive_path(tmp_path):
    """An archive where every table the config sorts holds rows tied on its sort column: one
    crawl second gives many rows the same time."""
    from tests.test_storage_support import make_page, make_post

    path = tmp_path / "tied.db"
    now = "2024-03-01T00:00:00+00:00"
    with Archive(path) as archive:
        site_id = archive.upsert_site("tied", engine="discuz", base_url="http://bbs.example.cn/", now=now)
        for tid in range(1, 8):
            posts = [make_post(tid * 100 + n, n, f"帖子 {tid}-{n}", posted_at="2024-03-01T08:00:00+08:00")
                     for n in range(1, 4)]
            archive.save_thread_page(site_id, make_page(tid, posts), url=f"http://bbs.example.cn/t{tid}",
                                     url_key=f"t{tid}", now=now)
            archive.record_fetch(url=f"http://bbs.example.cn/t{tid}", status=200, site_id=site_id, now=now)
            archive.record_parse_failure(url=f"http://bbs.example.cn/x{tid}", reason="parse_error",
                                         site_id=site_id, now=now)
            archive.finish_run(archive.start_run(site_id, "crawl", now=now), status="finished", requests=1,
                               not_modified=0, new_posts=3, new_versions=0, failures={}, now=now)
        archive.propose_phrases(site_id, [(f"本帖广告 {n}", 5) for n in range(7)], now=now)
    return path


async def test_paging_a_sorted_table_shows_every_row_once_when_sort_values_tie(tied_archive_path):
    # Datasette orders a table's first page by its sort column alone and later pages by that
    # column and the primary key: where the first page's plan returns ties in another order
    # (an index read backwards gives them highest id first), rows are skipped and repeated.
    client = make_datasette(tied_archive_path).client
    tables = yaml.safe_load(DATASETTE_YAML.read_text(encoding="utf-8"))["databases"]["archive"]["tables"]
    sorted_tables = [name for name, options in tables.items() if "sort" in options or "sort_desc" in options]
    assert {"posts", "fetches", "threads"} <= set(sorted_tables)
    conn = sqlite3.connect(tied_archive_path)
    for table in sorted_tables:
        stored = sorted(row[0] for row in conn.execute(f"SELECT rowid FROM {table}"))
        assert len(stored) >= 7, table
        seen, url = [], f"/tied/{table}.json?_size=3&_shape=objects"
        while url:
            page = (await client.get(url)).json()
            seen += [row.get("id", row.get("rowid")) for row in page["rows"]]
            url = page.get("next_url")
            url = url and url[url.index("/tied/"):]
        assert sorted(seen) == stored, table
    conn.close()


KILLED_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("UPDATE threads SET title = '改过的标题' WHERE id = 1")
os._exit(0)  # killed: no checkpoint, the commit stays in the -wal file
"""


async def test_an_immutable_archive_shows_the_last_commits_of_a_killed_writer(archive_path):
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(archive_path)], check=True)
    assert Path(f"{archive_path}-wal").stat().st_size > 0
    client = make_datasette(archive_path, immutable=True).client
    rows = (await client.get("/forum/threads.json", params={"_shape": "array"})).json()
    assert [row["title"] for row in rows] == ["改过的标题"]
    assert not Path(f"{archive_path}-wal").exists()  # folded in, then removed by the last close


def test_an_archive_a_writer_holds_is_not_served_immutable(archive_path, monkeypatch):
    def served(command):
        raise AssertionError(f"served while a writer holds it: {command}")

    monkeypatch.setattr("scraper.publish.run_datasette", served)
    writer = sqlite3.connect(archive_path, isolation_level=None)
    writer.execute("UPDATE threads SET title = '写好了' WHERE id = 1")  # committed, in the -wal
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE threads SET title = '写到一半' WHERE id = 1")
    try:
        with pytest.raises(WalNotFoldedError, match="in use"):
            fold_wal(archive_path, busy_timeout_ms=50)
        # The command names it in one line (after waiting out the busy timeout for the writer).
        result = CliRunner().invoke(main, ["serve", "--db", str(archive_path), "--immutable"])
        assert result.exit_code == 1 and "is in use" in result.output and "Traceback" not in result.output
    finally:
        writer.execute("ROLLBACK")
        writer.close()


async def test_active_threads_orders_threads_by_their_latest_archived_post(tmp_path):
    from scraper.engines.base import BoardPage, BoardRow
    from tests.test_storage_support import make_page, make_post

    path = tmp_path / "active.db"
    now = "2024-03-09T00:00:00+00:00"

    def post(pid, floor, author, day):
        return make_post(pid, floor, f"帖 {pid}", author=author, posted_at=f"2024-03-{day:02d}T08:00:00+08:00")

    with Archive(path) as archive:
        site_id = archive.upsert_site("s", engine="discuz", base_url="http://bbs.example.cn/", now=now)
        # Thread 1's later page is saved first, then its first page: the latest post stays page 2's.
        for page_no, posts in ((2, [post(13, 3, "乙", 7), post(14, 4, "丙", 8)]),
                               (1, [post(11, 1, "甲", 1), post(12, 2, "乙", 2)])):
            archive.save_thread_page(site_id, make_page(1, posts, page=page_no, page_count=2),
                                     url=f"http://bbs.example.cn/t1-{page_no}", url_key=f"t1-{page_no}", now=now)
        archive.save_thread_page(site_id, make_page(2, [post(21, 1, "甲", 5)], title="第二帖"),
                                 url="http://bbs.example.cn/t2", url_key="t2", now=now)
        archive.save_board_page(site_id, BoardPage(fid=1, name="版", page=1, page_count=1, rows=[
            BoardRow(tid=3, title="只在版面上", url="http://bbs.example.cn/t3")]),
            url="http://bbs.example.cn/b1", url_key="b1", now=now)
    client = make_datasette(path).client
    rows = (await client.get("/active/active_threads.json", params={"_shape": "array"})).json()
    assert [(r["title"], r["posts"], r["authors"], r["last_post_at"]) for r in rows] == [
        ("基层党委办公室应强化的十种意识", 4, 3, "2024-03-08T08:00:00+08:00"),
        ("第二帖", 1, 1, "2024-03-05T08:00:00+08:00"),
        ("只在版面上", 0, 0, None)]


def test_author_posts_reads_one_page_of_the_authors_posts_in_time_order(archive_path):
    # Sorting every post of a prolific author took 294 ms at 1M posts (bench_scale) and grows
    # with the archive: the author index holds each author's posts in time order instead.
    sql = yaml.safe_load(DATASETTE_YAML.read_text(encoding="utf-8"))["databases"]["archive"]["queries"][
        "author_posts"]["sql"]
    conn = sqlite3.connect(archive_path)
    plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, {"author": "仲伯间", "page": "2"})]
    conn.close()
    assert any("idx_posts_author" in step for step in plan) and not any("TEMP B-TREE" in step for step in plan), plan


async def test_post_history_says_when_a_post_went_back_to_an_earlier_version(tmp_path):
    from tests.test_storage_support import make_page, make_post

    path = tmp_path / "history.db"
    with Archive(path) as archive:
        site_id = archive.upsert_site("s", engine="discuz", base_url="http://bbs.example.cn/")
        for text, at in (("初稿。", "2024-03-01T00:00:00+00:00"), ("改稿。", "2024-03-02T00:00:00+00:00"),
                         ("初稿。", "2024-03-03T00:00:00+00:00")):
            archive.save_thread_page(site_id, make_page(88, [make_post(1001, 1, text)]), url="t", url_key="t", now=at)
        post_id = archive.db.execute("select id from posts").fetchone()[0]
    rows = (await make_datasette(path).client.get(
        "/history/post_history.json", params={"post_id": str(post_id), "_shape": "array"})).json()
    assert [(r["content_text"], r["seen_at"], r["seen_again_at"], r["is_current"]) for r in rows] == [
        ("初稿。", "2024-03-01T00:00:00+00:00", '["2024-03-03T00:00:00+00:00"]', 1),
        ("改稿。", "2024-03-02T00:00:00+00:00", "[]", 0)]
