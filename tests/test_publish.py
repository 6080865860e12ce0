"""Datasette over the archive, in process: stored queries, search, read-only."""

import re
from pathlib import Path

import pytest
import yaml

from scraper.publish import DATASETTE_YAML, make_datasette
from scraper.textimport import import_text_file
from storage.archive import Archive
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
