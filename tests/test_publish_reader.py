"""The published archive in process: every stored query, the thread reader, hostile posts and
hostile parameters, and the read-only guarantees."""

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest
from datasette.app import Datasette
from selectolax.lexbor import LexborHTMLParser

from scraper.publish import PLUGINS_DIR, TEMPLATES_DIR, load_config, load_metadata, make_datasette
from scraper.textimport import import_text_file
from storage.archive import Archive

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "seeds" / "000_742c7f89ba496aaa.txt"
DEMO_CONFIG = REPO / "seeds" / "sites" / "demo.toml"
SEED_AUTHORS = ["仲伯间"] * 6 + ["xg0101", "绝世赢贼"]
MARK = "1337"  # every payload calls alert(1337): finding it live in a page means it got through
XSS_CORPUS = [
    f"<script>alert({MARK})</script>",
    f'<img src=x onerror="alert({MARK})">',
    f"<svg onload=alert({MARK})><circle r=1></circle></svg>",
    f'<a href="javascript:alert({MARK})">click</a>',
    f'<a href="data:text/html,&lt;script&gt;alert({MARK})&lt;/script&gt;">data</a>',
    f'<a href="JaVaScRiPt&#58;alert({MARK})">entity</a>',
    f"<noscript><p title=\"</noscript><img src=x onerror=alert({MARK})>\"></noscript>",
    f"<svg></p><style><a id=\"</style><img src=1 onerror=alert({MARK})>\">",
    f"<math><mtext><table><mglyph><style><!--</style><img title=\"--&gt;&lt;/mglyph&gt;&lt;img&Tab;src=1&Tab;onerror=alert({MARK})&gt;\">",
    f"<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert({MARK})>",
    f'<iframe srcdoc="<script>alert({MARK})</script>"></iframe>',
    f'<p style="background:url(javascript:alert({MARK}))">styled</p>',
]
# 60 000 characters: the longest query string the HTTP client will send.
HOSTILE_VALUES = ["'; DROP TABLE posts;--", '" OR 1=1 --', "NEAR(", '"', "党员 OR *", "-1", "0",
                  "99999999999999999999999", "1e309", "x" * 60_000, "%_\\", "\x00"]
def stored_queries(path):
    """Every stored query datasette.yaml publishes -> the parameters its SQL takes."""
    queries = load_config(path)["databases"]["forum"]["queries"]
    return {name: sorted(set(re.findall(r"(?<![:\w]):(\w+)", query["sql"]))) for name, query in queries.items()}


@pytest.fixture
def archive_path(tmp_path):
    path = tmp_path / "forum.db"
    with Archive(path) as archive:
        import_text_file(archive, SEED, site_name="demo", config_path=DEMO_CONFIG)
    return path


def add_post(path, floor, *, html, text=None, author="访客", **columns):
    """A post stored straight into the archive file, as a hostile forum could have served it."""
    values = {"site_id": 1, "thread_id": 1, "post_key": f"test:{floor}", "floor": floor,
              "floor_label": f"{floor}#", "page": 1, "author": author,
              "posted_at": "2020-01-02T03:04:05+08:00", "content_text": text if text is not None else html,
              "content_html": html, "content_hash": f"h{floor}", "first_seen_at": "2026-01-01T00:00:00+00:00",
              "last_seen_at": "2026-01-01T00:00:00+00:00", **columns}
    with sqlite3.connect(path) as conn:
        cursor = conn.execute(f"insert into posts ({', '.join(values)}) values ({', '.join('?' * len(values))})",
                              list(values.values()))
        conn.execute("insert into post_versions (post_id, content_hash, content_text, content_html, seen_at) "
                     "values (?, ?, ?, ?, ?)", [cursor.lastrowid, values["content_hash"], values["content_text"],
                                               html, values["first_seen_at"]])
        return cursor.lastrowid


def datasette_with(path, **plugin_settings):
    config = load_config(path)
    config["plugins"]["forum-archiver"].update(plugin_settings)
    return Datasette([str(path)], config=config, metadata=load_metadata(path),
                     plugins_dir=str(PLUGINS_DIR), template_dir=str(TEMPLATES_DIR))


def snapshot(path):
    """Everything a write could change: the schema and every table's rows."""
    with sqlite3.connect(path) as conn:
        # Virtual tables keep their rows in their shadow tables, which are compared.
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' "
                                             "and sql not like 'create virtual%' order by name")]
        return (list(conn.execute("select type, name, sql from sqlite_master order by name")),
                # sorted, not ordered by rowid: posts_bigram_config is a WITHOUT ROWID table
                {t: sorted(conn.execute(f"select * from [{t}]"), key=repr) for t in tables})


def live_payloads(html):
    """Places where a payload would run in a browser: script text, event handlers, script URLs."""
    tree = LexborHTMLParser(html)
    found = [f"script: {s.text()[:60]}" for s in tree.css("script") if MARK in s.text()]
    for node in tree.css("*"):
        for name, value in node.attributes.items():
            value = (value or "").strip().lower()
            if name.lower().startswith("on") and MARK in value:
                found.append(f"{node.tag} {name}")
            if name.lower() in ("href", "src", "action", "formaction", "xlink:href") and value.startswith(
                    ("javascript:", "data:", "vbscript:")) or name.lower() in ("srcdoc", "style") and MARK in value:
                found.append(f"{node.tag} {name}={value[:60]}")
        if node.tag in ("iframe", "object", "embed", "math", "svg", "style") and MARK in node.html:
            found.append(node.tag)
    return found


# --- stored queries ---------------------------------------------------------------------
async def test_metadata_describes_every_visible_table_and_column(archive_path):
    client = make_datasette(archive_path).client
    tables = (await client.get("/forum.json")).json()["tables"]
    described = load_metadata(archive_path)["databases"]["forum"]["tables"]
    with sqlite3.connect(archive_path) as conn:
        for table in (t["name"] for t in tables if not t["hidden"]):
            columns = [r[1] for r in conn.execute(f"pragma table_info([{table}])")]
            assert described[table]["description"], table
            assert set(columns) <= set(described[table]["columns"]), table


def test_metadata_names_every_status_the_code_writes(archive_path):
    # The code's own lists: the archive refuses to write a run or phrase status not in them.
    from scraper.engines.base import PostStatus
    from storage.archive import PHRASE_STATUSES, RUN_STATUSES

    described = load_metadata(archive_path)["databases"]["forum"]["tables"]
    for table, statuses in (("runs", RUN_STATUSES), ("posts", [s.value for s in PostStatus]),
                            ("noise_phrases", PHRASE_STATUSES)):
        missing = [s for s in statuses if not re.search(rf"\b{s}\b", described[table]["columns"]["status"])]
        assert not missing, (table, missing)


async def test_every_stored_query_answers_for_the_seed_thread(archive_path):
    with sqlite3.connect(archive_path) as conn:
        conn.execute("insert into runs (site_id, job, started_at, status, failures) "
                     "values (1, 'crawl', '2026-01-01T00:00:00+00:00', 'failed', 1)")
        conn.execute("insert into fetches (site_id, url, status, reason, fetched_at) values "
                     "(1, 'http://bbs.example.cn/x', 503, 'http_5xx', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'))")
    client = make_datasette(archive_path).client
    params = {"thread_id": "1", "author": "xg0101", "post_id": "3", "q": "党员"}

    asked = set()

    async def rows(name):
        asked.add(name)
        resp = await client.get(f"/forum/{name}.json", params={**params, "_shape": "array"})
        assert resp.status_code == 200, (name, resp.text[:300])
        return resp.json()

    assert [r["author"] for r in await rows("thread_posts")] == SEED_AUTHORS
    assert [r["floor"] for r in await rows("latest_posts")] == [8, 7, 6, 5, 4, 3, 2, 1]
    assert [(r["floor"], r["excerpt"]) for r in await rows("author_posts")] == [(7, "总结的都很精辟,很不错的")]
    assert [(r["thread_id"], r["posts"], r["authors"]) for r in await rows("active_threads")] == [(1, 8, 3)]
    history = await rows("post_history")
    assert [(r["post_id"], r["floor"]) for r in history] == [(3, 3)]
    assert history[0]["content_text"].startswith("要做好办公室工作")
    health = await rows("crawl_health")
    assert [(r["kind"], r["what"], r["failures"], r["gone_posts"]) for r in health][-2:] == [
        ("run", "crawl", 1, 0), ("fetch failures", "http_5xx", 1, None)]
    assert {r["floor"] for r in await rows("search")} == {1, 6}
    assert await rows("gone_posts") == []  # none gone yet ...
    with sqlite3.connect(archive_path) as conn:
        conn.execute("update posts set gone_at = '2026-01-01T00:00:00+00:00' where floor = 5")
    assert [r["floor"] for r in await rows("gone_posts")] == [5]  # ... and then floor 5
    assert asked == set(stored_queries(archive_path)), "a stored query this test does not check"


async def test_post_history_lists_every_version_oldest_first(archive_path):
    post_id = add_post(archive_path, 9, html="<p>第二版</p>", text="第二版", version_count=2)
    with sqlite3.connect(archive_path) as conn:
        conn.execute("insert into post_versions (post_id, content_hash, content_text, content_html, seen_at) "
                     "values (?, 'h0', '第一版', '<p>第一版</p>', '2025-01-01T00:00:00+00:00')", [post_id])
    client = make_datasette(archive_path).client
    resp = await client.get("/forum/post_history.json", params={"post_id": post_id, "_shape": "array"})
    assert [r["content_text"] for r in resp.json()] == ["第一版", "第二版"]


async def test_post_history_shows_an_edit_that_swapped_an_image_by_its_html(tmp_path):
    # Through the write path: the same text with another picture is a version of its own.
    from tests.test_storage_support import make_page, make_post

    path = tmp_path / "forum.db"
    with Archive(path) as archive:
        site = archive.upsert_site("demo", engine="discuz")
        for n, photo in enumerate(("http://bbs.example.cn/a.jpg", "http://bbs.example.cn/b.jpg")):
            post = make_post(1001, 1, "看图", content_html=f'<p>看图<img src="{photo}"></p>', media_refs=(photo,))
            archive.save_thread_page(site, make_page(88, [post]), url="t88", url_key="t88",
                                     now=f"2026-01-0{n + 1}T00:00:00+00:00")
        post_id = archive.db.execute("select id from posts").fetchone()[0]
    resp = await make_datasette(path).client.get("/forum/post_history.json",
                                                 params={"post_id": post_id, "_shape": "array"})
    rows = resp.json()
    assert [r["content_text"] for r in rows] == ["看图", "看图"]
    assert ["a.jpg" in r["content_html"] for r in rows] == [True, False]
    assert [r["is_current"] for r in rows] == [0, 1]


# --- the thread reader ------------------------------------------------------------------
async def test_thread_page_shows_the_seed_thread_as_the_forum_did(archive_path):
    client = make_datasette(archive_path).client
    resp = await client.get("/-/thread/1")
    assert resp.status_code == 200
    tree = LexborHTMLParser(resp.text)
    posts = tree.css("article.thread-post")
    assert [p.css_first(".author").text() for p in posts] == SEED_AUTHORS
    assert [p.css_first(".floor").text() for p in posts][:3] == ["楼主", "沙发", "板凳"]
    assert posts[0].css_first("time").text() == "2012-03-12 14:40:59 (UTC+08:00)"
    assert "总结的都很精辟,很不错的" in posts[6].css_first(".post-body").text()
    assert posts[2].css_first('a[href="/forum/post_history?post_id=3"]') is not None
    assert tree.css_first("h1").text() == "基层党委办公室应强化的十种意识"


async def test_thread_rows_and_search_hits_link_to_the_reader(archive_path):
    client = make_datasette(archive_path).client
    threads = LexborHTMLParser((await client.get("/forum/threads")).text)
    assert threads.css_first('td.col-title a[href="/-/thread/1"]') is not None
    home = LexborHTMLParser((await client.get("/")).text)
    form = home.css_first("form.archive-search")
    assert form.attributes["action"] == "/forum/search" and form.css_first('input[name="q"]')
    hits = LexborHTMLParser((await client.get("/forum/search", params={"q": "党员"})).text)
    links = {a.attributes["href"] for a in hits.css("td.col-post_id a")}
    assert links == {"/-/thread/1?post=1#post-1", "/-/thread/1?post=6#post-6"}
    target = LexborHTMLParser((await client.get("/-/thread/1", params={"post": "6"})).text)
    assert target.css_first("#post-6 .author").text() == "仲伯间"


@pytest.mark.parametrize("sql", [
    "select thread_id, group_concat(id) as post_id from posts group by thread_id",
    "select 'a' as post_id, 1 as thread_id",
    "select 1 as post_id, 1.5 as thread_id",
])
async def test_any_sql_may_name_a_column_post_id_or_thread_id(archive_path, sql):
    # Ad-hoc SQL is open to readers: a post_id that is no id is shown as it is, not linked.
    page = await make_datasette(archive_path).client.get("/forum/-/query", params={"sql": sql})
    assert page.status_code == 200
    assert LexborHTMLParser(page.text).css('td.col-post_id a[href^="/-/thread/"]') == []


async def test_long_threads_are_paged_and_a_post_link_finds_its_page(archive_path):
    client = datasette_with(archive_path, posts_per_page=3).client
    pages = []
    for page in (1, 2, 3):
        tree = LexborHTMLParser((await client.get("/-/thread/1", params={"page": page})).text)
        pages.append([p.css_first(".floor").text() for p in tree.css("article.thread-post")])
        assert tree.css_first("nav.thread-pages") is not None
    assert pages == [["楼主", "沙发", "板凳"], ["地板", "5#", "6#"], ["7#", "8#"]]
    assert (await client.get("/-/thread/1", params={"page": 4})).status_code == 404
    found = LexborHTMLParser((await client.get("/-/thread/1", params={"post": "8"})).text)
    assert found.css_first("#post-8") is not None and found.css_first("#post-1") is None


async def test_quotes_edit_notes_signatures_and_images(archive_path):
    add_post(archive_path, 9, author="引用者", html='<p>正文<img src="http://bbs.example.cn/data/attachment/a.jpg"></p>',
             quotes_json=json.dumps([{"text": "被引用的话", "author": "仲伯间", "posted_at_raw": "2012-3-12 14:40"}]),
             signature="我的签名档", edit_note="本帖最后由 引用者 于 2020-1-2 03:05 编辑",
             attachments_json=json.dumps([{"url": "http://bbs.example.cn/b.png", "name": "b.png", "is_image": True},
                                          {"url": "javascript:alert(1)", "name": "bad", "is_image": False}]))
    page = LexborHTMLParser((await make_datasette(archive_path).client.get("/-/thread/1")).text)
    post = page.css("article.thread-post")[-1]
    assert "被引用的话" in post.css_first("blockquote").text()
    assert post.css_first(".edit-note").text().startswith("本帖最后由")
    assert post.css_first("details.signature").text().endswith("我的签名档")
    assert post.css_first("img") is None, "images are not hot-linked by default"
    assert post.css_first('a[href="http://bbs.example.cn/data/attachment/a.jpg"]') is not None
    assert [a.text() for a in post.css(".attachments a")] == ["b.png"]
    hotlinked = LexborHTMLParser((await datasette_with(archive_path, hotlink_images=True).client.get(
        "/-/thread/1")).text).css("article.thread-post")[-1]
    assert {i.attributes["src"] for i in hotlinked.css("img")} == {
        "http://bbs.example.cn/data/attachment/a.jpg", "http://bbs.example.cn/b.png"}


async def test_a_vanished_post_is_shown_with_when_it_went_and_listed_as_gone(archive_path):
    with sqlite3.connect(archive_path) as conn:
        conn.execute("update posts set gone_at = '2026-11-29T10:00:00+00:00' where floor = 5")
        plan = conn.execute("explain query plan " + load_config(archive_path)["databases"]["forum"]["queries"][
            "gone_posts"]["sql"], {"page": ""}).fetchall()
    assert any("idx_posts_gone" in row[-1] for row in plan), plan  # not a scan of every post
    client = make_datasette(archive_path).client
    gone = (await client.get("/forum/gone_posts.json", params={"_shape": "array"})).json()
    assert [(r["floor"], r["title"], r["gone_at"]) for r in gone] == [
        (5, "基层党委办公室应强化的十种意识", "2026-11-29T10:00:00+00:00")]
    page = LexborHTMLParser((await client.get("/-/thread/1")).text)
    notes = {p.css_first(".floor").text(): p.css_first(".gone") for p in page.css("article.thread-post")}
    assert notes["5#"].text() == "gone from the forum since 2026-11-29T10:00:00+00:00"
    assert [floor for floor, note in notes.items() if note is not None] == ["5#"]


# --- hostile content and parameters -----------------------------------------------------
async def test_stored_xss_never_reaches_a_page_unescaped(archive_path):
    post_ids = [add_post(archive_path, 10 + i, html=payload, author=payload, signature=payload, edit_note=payload,
                         quotes_json=json.dumps([{"text": payload, "author": payload}]))
                for i, payload in enumerate(XSS_CORPUS)]
    with sqlite3.connect(archive_path) as conn:
        conn.execute("update threads set title = ?, board = ? where id = 1", [XSS_CORPUS[0], XSS_CORPUS[1]])
    client = make_datasette(archive_path).client
    pages = ["/-/thread/1", "/forum/posts", "/forum/post_versions", "/forum/threads", "/forum/latest_posts",
             "/forum/thread_posts?thread_id=1", "/forum/search?q=alert", "/forum/search?q=al",
             f"/forum/author_posts?author={XSS_CORPUS[1]}", "/forum/active_threads",
             *[f"/forum/posts/{i}" for i in post_ids], *[f"/forum/post_history?post_id={i}" for i in post_ids]]
    for path in pages:
        resp = await client.get(path)
        assert resp.status_code == 200, path
        assert MARK in resp.text, f"{path} should show the payloads, as text"
        assert live_payloads(resp.text) == [], path


async def test_hostile_parameters_give_200_or_400_and_change_nothing(archive_path):
    client = make_datasette(archive_path).client
    before = snapshot(archive_path)
    for name, parameters in stored_queries(archive_path).items():
        for parameter in parameters:
            for value in HOSTILE_VALUES:
                resp = await client.get(f"/forum/{name}.json", params={"thread_id": "1", "q": "党员", parameter: value})
                assert resp.status_code in (200, 400), (name, parameter, value[:30], resp.text[:300])
    for parameter in ("page", "post"):
        for value in HOSTILE_VALUES:
            resp = await client.get("/-/thread/1", params={parameter: value})
            assert resp.status_code in (200, 400, 404), (parameter, value[:30])
    assert (await client.get("/-/thread/1'%20or%201=1")).status_code in (302, 404)
    assert snapshot(archive_path) == before


@pytest.mark.parametrize("sql", [
    "delete from posts",
    "update posts set author = 'x'",
    "insert into posts (id) values (999)",
    "drop table posts",
    "attach database '/tmp/elsewhere.db' as elsewhere",
    "pragma writable_schema = 1",
    "select 1; delete from posts",
    "with gone as (delete from posts returning id) select * from gone",
    "insert into posts_fts (posts_fts) values ('delete-all')",
    "insert into threads_fts (threads_fts) values ('delete-all')",
])
async def test_write_sql_is_refused(archive_path, sql):
    client = make_datasette(archive_path).client
    before = snapshot(archive_path)
    resp = await client.get("/forum/-/query.json", params={"sql": sql})
    assert resp.status_code in (400, 403), resp.text[:300]
    assert snapshot(archive_path) == before


async def test_a_runaway_query_is_cut_at_the_time_limit(archive_path):
    limit_ms = load_config(archive_path)["settings"]["sql_time_limit_ms"]
    client = make_datasette(archive_path).client
    started = time.monotonic()
    resp = await client.get("/forum/-/query.json", params={
        "sql": "with recursive n(i) as (select 1 union all select i + 1 from n) select count(*) from n"})
    elapsed_ms = (time.monotonic() - started) * 1000
    assert resp.status_code == 400 and "took too long" in resp.text
    assert limit_ms <= elapsed_ms < limit_ms + 2000


async def test_one_setting_turns_arbitrary_sql_off(archive_path):
    open_client = make_datasette(archive_path).client
    assert (await open_client.get("/forum/-/query.json", params={"sql": "select count(*) from posts"})).status_code == 200
    closed = make_datasette(archive_path, settings={"default_allow_sql": False}).client
    assert (await closed.get("/forum/-/query.json", params={"sql": "select count(*) from posts"})).status_code == 403
    assert (await closed.get("/forum/search.json", params={"q": "党员"})).status_code == 200
    assert (await closed.get("/-/thread/1")).status_code == 200


async def test_the_reader_is_closed_to_whoever_may_not_see_posts(archive_path):
    config = load_config(archive_path)
    config["databases"]["forum"]["tables"]["posts"]["allow"] = {"id": "root"}
    closed = Datasette([str(archive_path)], config=config, metadata=load_metadata(archive_path),
                       plugins_dir=str(PLUGINS_DIR), template_dir=str(TEMPLATES_DIR)).client
    assert (await closed.get("/forum/posts")).status_code == 403
    assert (await closed.get("/-/thread/1")).status_code == 403


@pytest.mark.parametrize("name", ["bbs.example.cn.db", "my archive.db"])
async def test_every_link_the_reader_and_the_search_box_give_answers_whatever_the_files_name(archive_path, name):
    # Datasette tilde-encodes such database names in its paths (/bbs~2Eexample~2Ecn): links
    # built by hand from the file name led to 404s.
    named = archive_path.with_name(name)
    archive_path.rename(named)
    datasette = datasette_with(named)
    pages = [await datasette.client.get("/"), await datasette.client.get("/-/thread/1")]
    assert [page.status_code for page in pages] == [200, 200]
    links = set()
    for page in pages:
        tree = LexborHTMLParser(page.text)
        links |= {node.attributes.get("href") for node in tree.css("a[href^='/']")}
        links |= {f"{node.attributes.get('action')}?q=办公室" for node in tree.css("form.archive-search")}
    links = {link for link in links if link and not link.startswith("/-/static")}
    assert any("post_history" in link for link in links) and any("search" in link for link in links)
    for link in sorted(links):
        response = await datasette.client.get(link, follow_redirects=True)
        assert response.status_code == 200, link


async def test_a_quote_the_posts_html_keeps_is_shown_once(archive_path):
    # A crawled Discuz post keeps its quote block in its HTML, and lists it in quotes_json too.
    add_post(archive_path, 9, author="引用者", html="<blockquote>仲伯间 发表于 2012-3-12 14:40<br>被引用的话</blockquote><p>回复正文</p>",
             text="仲伯间 发表于 2012-3-12 14:40\n被引用的话\n回复正文",
             quotes_json=json.dumps([{"text": "被引用的话", "author": "仲伯间", "posted_at_raw": "2012-3-12 14:40"}]))
    page = LexborHTMLParser((await make_datasette(archive_path).client.get("/-/thread/1")).text)
    post = page.css("article.thread-post")[-1]
    assert post.text().count("被引用的话") == 1
    assert "回复正文" in post.css_first(".post-body").text()


async def test_an_author_with_more_posts_than_a_page_is_read_page_by_page(archive_path):
    with sqlite3.connect(archive_path) as conn:
        before = conn.execute("select max(id) from posts").fetchone()[0]
    for n in range(1005):
        add_post(archive_path, 100 + n, html=f"<p>第 {n} 帖</p>", author="多产作者")
    client = make_datasette(archive_path).client
    pages = [(await client.get(f"/forum/author_posts.json?author=多产作者&page={p}&_shape=array")).json()
             for p in ("", 2, 3)]
    assert [len(rows) for rows in pages] == [1000, 5, 0]
    assert {r["post_id"] for rows in pages for r in rows} == set(range(before + 1, before + 1006))


async def test_a_posts_link_to_the_forum_goes_to_the_page_it_was_on(archive_path):
    with sqlite3.connect(archive_path) as conn:
        conn.execute("update threads set url = 'https://bbs.example.cn/thread-88-1-1.html'")
    add_post(archive_path, 11, html="<p>第二页的帖子</p>", pid=206, page=2)
    add_post(archive_path, 9, html="<p>第一页的帖子</p>", pid=105, page=1)
    page = LexborHTMLParser((await make_datasette(archive_path).client.get("/-/thread/1")).text)
    links = {a.attributes["href"] for a in page.css("article.thread-post header a") if "bbs.example.cn" in
             (a.attributes.get("href") or "")}
    assert "https://bbs.example.cn/thread-88-2-1.html#pid206" in links
    assert "https://bbs.example.cn/thread-88-1-1.html#pid105" in links


async def test_posts_and_threads_offer_no_search_box_that_misses_short_words(archive_path):
    # Datasette's own box on an FTS table is trigram FTS5: '党员' (two characters) finds
    # nothing there, while the archive's search query finds it.
    client = make_datasette(archive_path).client
    for table in ("posts", "threads"):
        page = LexborHTMLParser((await client.get(f"/forum/{table}")).text)
        assert page.css_first("table.rows-and-columns") is not None
        assert page.css_first("input#_search") is None, table
    assert (await client.get("/forum/posts.json", params={"_search": "党员"})).json()["rows"] == []
    assert len((await client.get("/forum/search.json", params={"q": "党员"})).json()["rows"]) == 2
    titled = (await client.get("/forum/threads.json", params={"title__contains": "党委", "_shape": "array"})).json()
    assert [row["title"] for row in titled] == ["基层党委办公室应强化的十种意识"]


async def test_thread_page_shows_the_poll_classified_fields_and_reply_subjects_escaped(tmp_path):
    from dataclasses import replace

    from tests.test_discuz_engine import fixture
    from tests.test_discuz_thread_extras import CLASSIFIED_URL, POLL_URL, thread

    page = thread(fixture("thread_poll"))
    classified = thread(fixture("thread_classified"), CLASSIFIED_URL).classified
    hostile = f"<script>alert({MARK})</script>"
    posts = [page.posts[0], replace(page.posts[1], subject=f"回复 {hostile}"), page.posts[2]]
    page = replace(page, posts=posts, classified=replace(classified, fields=(*classified.fields, ("备注", hostile))))
    path = tmp_path / "forum.db"
    with Archive(path) as archive:
        site_id = archive.upsert_site("laomi", engine="discuz", base_url="http://bbs.example.cn/")
        archive.save_thread_page(site_id, page, url=POLL_URL, url_key=POLL_URL)
    resp = await make_datasette(path).client.get("/-/thread/1")
    assert resp.status_code == 200 and f"alert({MARK})</script>" not in resp.text
    tree = LexborHTMLParser(resp.text)
    first, second, third = tree.css("article.thread-post")
    assert [li.text() for li in first.css(".poll li")] == ["按时间顺序写 (9)", "按工作板块写 范文 (8)", "不写 (1)"]
    assert "共有 12 人参与投票" in first.css_first(".poll p").text()
    rows = [(tr.css_first("th").text(), tr.css_first("td").text()) for tr in first.css("table.classified tr")]
    assert rows[0] == ("租金", "2500 元/月") and rows[-1] == ("备注", hostile)
    assert first.css_first("table.classified caption").text() == "房屋出租"
    assert second.css_first("h2.subject").text() == f"回复 {hostile}"
    assert third.css_first("h2.subject") is None and second.css_first(".poll") is None


async def test_thread_page_shows_a_special_threads_parts_and_links_the_best_answer(tmp_path):
    from dataclasses import replace

    from tests.test_discuz_engine import fixture
    from tests.test_discuz_thread_extras import POLL_URL, thread

    page = thread(fixture("thread_reward"))
    hostile = f"<script>alert({MARK})</script>"
    page = replace(page, special=replace(page.special, fields=(*page.special.fields[:3], ("best_answer_author", hostile))))
    debate = thread(fixture("thread_debate"))
    path = tmp_path / "forum.db"
    with Archive(path) as archive:
        site_id = archive.upsert_site("laomi", engine="discuz", base_url="http://bbs.example.cn/")
        archive.save_thread_page(site_id, page, url=POLL_URL, url_key=POLL_URL)
        other = "http://bbs.example.cn/thread-121-1-1.html"
        archive.save_thread_page(site_id, replace(debate, tid=121, posts=[replace(p, pid=p.pid + 100) for p in debate.posts]),
                                 url=other, url_key=other)
        best_answer_id = archive.db.execute("SELECT id FROM posts WHERE pid = 2002").fetchone()[0]
    client = make_datasette(path).client
    resp = await client.get("/-/thread/1")
    assert resp.status_code == 200 and f"alert({MARK})</script>" not in resp.text
    first, second, _ = LexborHTMLParser(resp.text).css("article.thread-post")
    assert first.css_first("table.special caption").text() == "悬赏"
    rows = [(tr.css_first("th").text(), tr.css_first("td").text()) for tr in first.css("table.special tr")]
    assert rows == [("悬赏", "20 金钱"), ("状态", "已解决"), ("最佳答案", hostile)]
    link = first.css_first("table.special td a").attributes["href"]
    assert link.endswith(f"?post={best_answer_id}#post-{best_answer_id}")
    assert second.css_first("table.special") is None
    debate_rows = dict((tr.css_first("th").text(), tr.css_first("td").text())
                       for tr in LexborHTMLParser((await client.get("/-/thread/2")).text).css("table.special tr"))
    assert debate_rows["正方观点"] == "要写不足，才显得实事求是。" and debate_rows["反方票数"] == "5"
    assert debate_rows["结果"] == "正方获胜"


def test_a_trade_threads_items_are_shown_under_the_forums_labels():
    from scraper.publish import reader
    from storage.archive import _json, _special_dict
    from tests.test_discuz_engine import fixture
    from tests.test_discuz_thread_extras import thread

    view = reader.special_view(_json(_special_dict(thread(fixture("thread_trade")).special)))
    assert view.kind == "商品" and view.best_answer_pid is None
    assert [(label, value) for label, value, _ in view.rows] == [
        ("商品", "公文写作百法例讲"), ("交易类型", "二手 一口价"), ("剩余时间", "12天5小时"),
        ("价格", "25 元"), ("原价", "48 元"), ("", "该商品已被删除")]
    assert reader.special_view(None) is None and reader.special_view('{"fields": []}') is None


def test_an_expired_classified_sort_shows_its_notice():
    from scraper.publish import reader

    expired = '{"sort_name": null, "fields": [], "expired_notice": "该信息已经过期"}'
    assert reader.classified_fields(expired) == (None, [("", "该信息已经过期")])
    assert reader.classified_fields(None) == (None, [])
