"""End to end: crawl the demo forum over real HTTP into a real SQLite archive."""

import asyncio
import json
import re
from pathlib import Path

import pytest

from scraper.clean import JAMMER_UNIT, normalise_whitespace
from scraper.crawl import CrawlOptions, Crawler
from scraper.sites import load_site, site_from_dict
from scraper.textimport import import_text_file
from storage.archive import Archive
from storage.dedup import normalise_content

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "seeds" / "000_742c7f89ba496aaa.txt"
DEMO_CONFIG = REPO / "seeds" / "sites" / "demo.toml"
SEED_TITLE = "基层党委办公室应强化的十种意识"
JAMMER_RUN = re.compile(f"(?:{JAMMER_UNIT}){{5}}")
CONTENT_TABLES = ["sites", "threads", "posts", "post_versions", "pages", "bodies", "frontier", "parse_failures",
                  "robots"]


def demo_site(base_url):
    site = load_site(DEMO_CONFIG)
    return site_from_dict(dict(site.raw, base_url=base_url))


def crawl(archive, base_url, urls=None):
    site = demo_site(base_url)
    options = CrawlOptions(delay_s=0, allow_private_hosts=frozenset({"127.0.0.1"}))
    urls = urls or [f"{base_url}forum-{fid}-1.html" for fid in site.boards]
    return asyncio.run(Crawler(archive, site, options=options).run(urls))


def counts(archive):
    return {t: archive.db.execute(f"select count(*) from {t}").fetchone()[0] for t in CONTENT_TABLES + ["fetches"]}


def seed_posts(archive, thread_id):
    return archive.db.execute(
        "select floor, author, posted_at, content_text, content_html from posts where thread_id = ? order by floor",
        [thread_id]).fetchall()


@pytest.fixture
def crawled(demo_forum, tmp_path):
    archive = Archive(tmp_path / "archive.db")
    report = crawl(archive, demo_forum.base_url)
    yield archive, report
    archive.close()


def test_crawl_stores_the_seed_thread_in_both_encodings_like_the_text_import(crawled, tmp_path):
    archive, report = crawled
    assert not report.failures, report.failures
    threads = archive.db.execute("select id, tid, url from threads where title = ?", [SEED_TITLE]).fetchall()
    assert len(threads) == 2, "the UTF-8 board and the GBK board each list a copy of the seed thread"
    encodings = {row[0] for row in archive.db.execute(
        "select distinct encoding from pages where thread_id in (?, ?)", [threads[0][0], threads[1][0]])}
    assert encodings == {"utf-8", "gb18030"}

    with Archive(tmp_path / "text.db") as text_archive:
        imported = import_text_file(text_archive, SEED, site_name="demo", config_path=DEMO_CONFIG)
        expected = seed_posts(text_archive, imported.thread_id)
    assert [e[0] for e in expected] == list(range(1, 9))

    for thread_id, _, _ in threads:
        got = seed_posts(archive, thread_id)
        assert [g[:3] for g in got] == [e[:3] for e in expected]
        for g, e in zip(got, expected, strict=True):
            assert normalise_whitespace(g[3]) == normalise_whitespace(e[3]), f"floor {g[0]}"
            assert not JAMMER_RUN.search(g[3]) and not JAMMER_RUN.search(g[4])
            assert "本文由老秘网推荐" not in g[3]
        assert not any(ad in g[3] for g in got for ad in ("公文写作百法例讲", "老秘网虚拟稿费", "专业写文章"))


def test_no_jammer_run_anywhere_in_the_archive(crawled):
    archive, _ = crawled
    for text, html in archive.db.execute("select content_text, content_html from posts"):
        assert not JAMMER_RUN.search(text)
        assert not JAMMER_RUN.search(html)


def test_recrawl_adds_only_fetches_and_an_edit_adds_one_version(demo_forum, crawled):
    archive, first = crawled
    before = counts(archive)
    second = crawl(archive, demo_forum.base_url)
    after = counts(archive)
    assert second.new_posts == 0 and second.new_versions == 0
    assert {t: after[t] for t in CONTENT_TABLES} == {t: before[t] for t in CONTENT_TABLES}
    assert after["fetches"] > before["fetches"]

    pid = archive.db.execute(
        "select pid from posts join threads on threads.id = posts.thread_id "
        "where threads.title = ? and posts.floor = 8 order by threads.id limit 1", [SEED_TITLE]).fetchone()[0]
    demo_forum.forum.edit_post(pid, "做好党办工作,还真得具备以上十种意识。")
    third = crawl(archive, demo_forum.base_url)
    final = counts(archive)
    assert third.new_versions == 1 and third.new_posts == 0
    changed = {t: final[t] - after[t] for t in CONTENT_TABLES if final[t] != after[t]}
    # The edited page is a new raw body; everything else stays as it was.
    assert changed == {"post_versions": 1, "bodies": 1}
    row = archive.db.execute("select content_text, version_count from posts where pid = ?", [pid]).fetchone()
    assert "十种意识" in row[0] and row[1] == 2


def test_a_quote_rewritten_and_nothing_else_is_a_new_version(demo_forum, crawled):
    # The engine reads a quote apart from the post's text: an author who rewrites only the
    # passage they quoted has edited the post, and the version before keeps the old quote.
    archive, _ = crawled
    forum = demo_forum.forum
    quoting = next(p for t in forum.threads.values() for p in t.posts if p.quote is not None)
    old_quote = quoting.quote.text
    forum.edit_quote(quoting.pid, "只引用这一句。")
    report = crawl(archive, demo_forum.base_url)
    post_id, quotes, html, versions = archive.db.execute(
        "select id, quotes_json, content_html, version_count from posts where pid = ?", [quoting.pid]).fetchone()
    assert report.new_versions == 1 and versions == 2
    assert json.loads(quotes)[0]["text"] == "只引用这一句。" and "只引用这一句。" in html
    history = [json.loads(v["quotes_json"])[0]["text"] for v in archive.post_versions(post_id)]
    assert normalise_content(history[0]) == normalise_content(old_quote) and history[1] == "只引用这一句。"


def test_every_request_is_one_fetch_row(demo_forum, crawled):
    archive, report = crawled
    fetch_rows = archive.db.execute("select count(*) from fetches").fetchone()[0]
    assert fetch_rows == report.requests
    assert fetch_rows == len([r for r in demo_forum.requests if r[0] == "GET"])


def test_robots_txt_is_obeyed(demo_forum, tmp_path):
    with Archive(tmp_path / "a.db") as archive:
        report = crawl(archive, demo_forum.base_url, [f"{demo_forum.base_url}forum.php?mod=redirect&goto=lastpost"])
        row = archive.db.execute("select state, reason from frontier where url like '%redirect%'").fetchone()
    assert row == ("skipped", "robots_disallowed")
    assert not any("mod=redirect" in r[1] for r in demo_forum.requests)
    assert report.skipped["robots_disallowed"] == 1


def test_loopback_is_refused_without_allow_private(demo_forum, tmp_path):
    site = demo_site(demo_forum.base_url)
    with Archive(tmp_path / "a.db") as archive:
        report = asyncio.run(Crawler(archive, site, options=CrawlOptions(delay_s=0)).run(
            [f"{demo_forum.base_url}forum-1-1.html"]))
        reasons = [r[0] for r in archive.db.execute("select reason from fetches")]
    assert demo_forum.requests == []
    assert reasons and set(reasons) == {"blocked_address"}
    assert report.failures["blocked_address"] >= 1


def test_a_text_import_of_a_crawled_thread_adds_no_post_twice(crawled):
    # The crawl keyed the seed thread's posts by pid; the text rendering shows no pids and keys
    # its posts by floor: the same posts (same floor, author and time) are the stored ones.
    archive, _ = crawled
    thread_id, url = archive.db.execute("select id, url from threads where title = ? order by id limit 1",
                                        [SEED_TITLE]).fetchone()
    before = archive.db.execute("select count(*) from posts").fetchone()[0]
    imported = import_text_file(archive, SEED, site_name="demo", config_path=DEMO_CONFIG, url=url)
    after = archive.db.execute("select count(*) from posts").fetchone()[0]
    assert imported.thread_id == thread_id
    assert (imported.new_posts, after) == (0, before)


def seed_text_without_posts(path, drop):
    """The seed page's text with the posts at the indexes of `drop` (0-based, in page order) left out."""
    import re

    lines = SEED.read_text(encoding="utf-8").split("\n")
    heads = [i for i, line in enumerate(lines) if re.search(r"发表于 .*\| 显示全部楼层", line)]
    spans = list(zip(heads, heads[1:] + [len(lines)]))
    kept = lines[:heads[0]] + [line for n, (start, end) in enumerate(spans) if n not in drop
                                for line in lines[start:end]]
    path.write_text("\n".join(kept), encoding="utf-8")
    return path


def first_seed_thread_url(archive):
    return archive.db.execute("select url from threads where title = ? order by id limit 1", [SEED_TITLE]).fetchone()[0]


def test_a_text_import_whose_floors_shifted_from_the_crawled_thread_is_refused(crawled, tmp_path):
    # The text of the page after its third post was deleted: every later floor holds the next
    # post. Against the crawled posts (keyed by pid) it would store them a second time.
    from scraper.errors import ImportConflict

    archive, _ = crawled
    shifted = seed_text_without_posts(tmp_path / "shifted.txt", drop={2})
    before = archive.db.execute("select count(*) from posts").fetchone()[0]
    with pytest.raises(ImportConflict):
        import_text_file(archive, shifted, site_name="demo", config_path=DEMO_CONFIG, url=first_seed_thread_url(archive))
    assert archive.db.execute("select count(*) from posts").fetchone()[0] == before


def test_a_text_import_of_a_later_page_counts_its_floors_as_the_forum_pages_them(crawled, tmp_path):
    # The demo forum shows 5 posts a page, Discuz's default 10: page 2's text starts at floor 6.
    archive, _ = crawled
    page_2 = seed_text_without_posts(tmp_path / "page2.txt", drop=set(range(5)))
    before = archive.db.execute("select count(*) from posts").fetchone()[0]
    imported = import_text_file(archive, page_2, site_name="demo", config_path=DEMO_CONFIG,
                                url=first_seed_thread_url(archive).replace("-1-1.html", "-2-1.html"))
    assert (imported.posts, imported.new_posts) == (3, 0)
    assert archive.db.execute("select count(*) from posts").fetchone()[0] == before


def test_a_text_copied_after_a_floor_was_deleted_is_refused_against_the_crawl(demo_forum, tmp_path):
    # The crawl saw floor 3 only as 无效楼层 (no author); a text copied after the deletion does
    # not show it, so its floor 3 is the crawl's floor 4, and so on: refused, nothing stored.
    # A text copied before the deletion is no such shift.
    from scraper.errors import ImportConflict

    forum = demo_forum.forum
    seed = next(t for t in forum.threads.values() if t.title == SEED_TITLE)
    forum.delete_post(seed.posts[2].pid)
    with Archive(tmp_path / "a.db") as archive:
        crawl(archive, demo_forum.base_url)
        url = archive.db.execute("select url from threads where tid = ?", [seed.tid]).fetchone()[0]
        before = archive.db.execute("select count(*) from posts").fetchone()[0]
        after_deletion = seed_text_without_posts(tmp_path / "after.txt", drop={2})
        with pytest.raises(ImportConflict, match="deleted floor"):
            import_text_file(archive, after_deletion, site_name="demo", config_path=DEMO_CONFIG, url=url)
        assert archive.db.execute("select count(*) from posts").fetchone()[0] == before
        before_deletion = import_text_file(archive, SEED, site_name="demo", config_path=DEMO_CONFIG, url=url)
    assert before_deletion.new_posts == 1  # the deleted post's text, which only the older copy shows


def test_the_demo_forum_restarted_later_gives_no_new_version(tmp_path):
    # The demo forum times its seed posts from its own clock: restarted (`make demo` run again),
    # it prints every time anew, a quote's attribution line included. Nothing of that is an edit.
    from datetime import datetime, timedelta

    from scraper.demo.forum import DemoForum
    from scraper.demo.server import start

    started = datetime(2026, 3, 1, 9, 0)
    with Archive(tmp_path / "archive.db") as archive:
        reports = []
        for now in (started, started + timedelta(hours=5, minutes=7)):
            server = start("127.0.0.1", 0, DemoForum(now=now))
            try:
                reports.append(crawl(archive, server.base_url))
            finally:
                server.shutdown()
    assert reports[0].new_posts > 0
    assert (reports[1].new_posts, reports[1].new_versions) == (0, 0)
