"""Crawling as a forum member: a browser's cookies.txt, sent only where a browser would send it,
never written to the archive. Against the demo forum closed to guests."""

import asyncio
import json
import logging

import pytest
from click.testing import CliRunner

from scraper import schedule
from scraper.cli import main
from scraper.crawl import CrawlOptions, Crawler
from scraper.errors import ConfigError
from scraper.net import MemberCookies
from scraper.sites import load_site, site_from_dict
from storage.archive import Archive
from tests.test_crawl_demo import DEMO_CONFIG, demo_site

TOKEN = "s3cret-member-token"
MEMBER = f"cdb_auth={TOKEN}"


def cookies_txt(path, *cookies):
    """A cookies.txt as browsers' export extensions write it: (domain, subdomains, path,
    secure, expiry, name, value) a line."""
    lines = ["# Netscape HTTP Cookie File", "# This is a generated file!  Do not edit.", ""]
    lines += ["\t".join(str(field) for field in cookie) for cookie in cookies]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def member_site(base_url, cookies_path):
    return site_from_dict(dict(demo_site(base_url).raw, cookies_file=str(cookies_path)))


def crawl(archive, site, **options):
    opts = CrawlOptions(**{"delay_s": 0, "allow_private_hosts": frozenset({"127.0.0.1"}), **options})
    return asyncio.run(Crawler(archive, site, options=opts).run([f"{site.base_url}forum-1-1.html"]))


def test_a_forum_closed_to_guests_is_archived_with_a_members_cookies(demo_forum, tmp_path):
    demo_forum.forum.member_cookie = MEMBER
    cookies = cookies_txt(tmp_path / "member.txt", ("127.0.0.1", "FALSE", "/", "FALSE", 0, "cdb_auth", TOKEN),
                          ("#HttpOnly_127.0.0.1", "FALSE", "/", "FALSE", 4102444800, "cdb_saltkey", "salt"))
    with Archive(tmp_path / "guest.db") as archive:
        guest = crawl(archive, demo_site(demo_forum.base_url))
        guest_posts = archive.db.execute("select count(*) from posts").fetchone()[0]
    assert guest_posts == 0 and guest.failures["blocked:login"] == 1
    assert demo_forum.forum.sessions_opened == 1  # a guest keeps the session cookie too
    demo_forum.requests.clear()
    demo_forum.forum.sessions_opened = 0
    with Archive(tmp_path / "member.db") as archive:
        member = crawl(archive, member_site(demo_forum.base_url, cookies))
        posts = archive.db.execute("select count(*) from posts").fetchone()[0]
        stored_config = archive.db.execute("select config_json from sites").fetchone()[0]
    assert posts > 20 and member.pages_saved > 3 and not member.failures
    # Every request carried the member's cookies: the session one (expiry 0) and the HttpOnly one;
    # and after the first, the session cookie the forum set on it, as a browser sends it back.
    # Dropped, each request opened a session of its own on the forum (a database row apiece).
    sent = [sorted(r.headers.get("Cookie").split("; ")) for r in demo_forum.requests]
    assert sent[0] == sorted([MEMBER, "cdb_saltkey=salt"])
    assert all(cookies == sorted([MEMBER, "cdb_saltkey=salt", "cdb_sid=1"]) for cookies in sent[1:])
    assert demo_forum.forum.sessions_opened == 1 and len(sent) > 5
    # Nothing of them is in the archive, which Datasette publishes: not the token, not the file.
    assert "cookies_file" not in json.loads(stored_config)
    for part in tmp_path.glob("member.db*"):
        assert TOKEN.encode() not in part.read_bytes() and b"member.txt" not in part.read_bytes()


def test_cookies_go_only_where_a_browser_would_send_them(demo_forum, tmp_path, caplog):
    cookies = cookies_txt(
        tmp_path / "cookies.txt",
        ("127.0.0.1", "FALSE", "/", "FALSE", 0, "session", "1"),  # sent
        ("localhost", "FALSE", "/", "FALSE", 0, "other_host", "x"),  # another host's
        ("127.0.0.1", "FALSE", "/", "FALSE", 946684800, "expired", "x"),  # expired in 2000
        ("127.0.0.1", "FALSE", "/", "TRUE", 0, "https_only", "x"),  # secure: never over http
        ("127.0.0.1", "FALSE", "/bbs/", "FALSE", 0, "other_path", "x"),  # another folder's
    )
    with caplog.at_level(logging.INFO, logger="scraper.crawl"), Archive(tmp_path / "a.db") as archive:
        crawl(archive, member_site(demo_forum.base_url, cookies), max_requests=3)
    assert [r.headers.get("Cookie") for r in demo_forum.requests] == ["session=1"] * 3
    told = [r.getMessage() for r in caplog.records if "as a member" in r.getMessage()]
    assert told == [f"demo: crawling as a member: cookies session from {cookies} (1 expired)"]


def test_a_file_without_a_current_cookie_for_the_forum_crawls_as_a_guest_and_says_so(demo_forum, tmp_path, caplog):
    cookies = cookies_txt(tmp_path / "cookies.txt", ("127.0.0.1", "FALSE", "/", "FALSE", 946684800, "old", "x"),
                          (".example.cn", "TRUE", "/", "FALSE", 0, "elsewhere", "x"))
    with caplog.at_level(logging.WARNING, logger="scraper.crawl"), Archive(tmp_path / "a.db") as archive:
        report = crawl(archive, member_site(demo_forum.base_url, cookies), max_requests=2)
    assert report.requests == 2 and not any("Cookie" in r.headers for r in demo_forum.requests)
    assert any("holds no current cookie" in r.getMessage() and "the crawl goes as a guest" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("content, message", [
    ("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\tcdb_auth\tx\n", "line 2: 6 tab-separated fields"),
    ("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\tsoon\tcdb_auth\tx\n", "line 2: a cookie needs"),
    ("cdb_auth=x; cdb_saltkey=y\n", "line 1: 1 tab-separated fields"),  # a Cookie header pasted instead
])
def test_a_broken_cookies_file_is_a_clear_error_before_any_request(demo_forum, tmp_path, content, message):
    bad = tmp_path / "bad.txt"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        MemberCookies(bad)
    result = CliRunner().invoke(main, ["crawl", f"{demo_forum.base_url}forum-1-1.html", "--db", str(tmp_path / "a.db"),
                                       "--allow-private", "--cookies", str(bad)])
    assert result.exit_code == 1 and message in result.output and f"cookies file {bad}" in result.output
    assert demo_forum.requests == []


def test_a_login_that_has_ended_is_said_once(demo_forum, tmp_path, caplog):
    # The file holds a cookie for the forum, but not the one the forum takes any more.
    demo_forum.forum.member_cookie = MEMBER
    cookies = cookies_txt(tmp_path / "member.txt", ("127.0.0.1", "FALSE", "/", "FALSE", 0, "cdb_auth", "logged-out"))
    urls = [f"{demo_forum.base_url}thread-{tid}-1-1.html" for tid in sorted(demo_forum.forum.threads)[:3]]
    with caplog.at_level(logging.WARNING, logger="scraper.crawl"), Archive(tmp_path / "a.db") as archive:
        site = member_site(demo_forum.base_url, cookies)
        opts = CrawlOptions(delay_s=0, allow_private_hosts=frozenset({"127.0.0.1"}), block_pause_s=0)
        report = asyncio.run(Crawler(archive, site, options=opts).run(urls))
    assert report.failures["blocked:login"] == 3
    ended = [r.getMessage() for r in caplog.records if "login has likely expired" in r.getMessage()]
    assert len(ended) == 1 and str(cookies) in ended[0]


def test_the_crawl_command_takes_a_cookies_file(demo_forum, tmp_path):
    demo_forum.forum.member_cookie = MEMBER
    cookies = cookies_txt(tmp_path / "member.txt", ("127.0.0.1", "FALSE", "/", "FALSE", 0, "cdb_auth", TOKEN))
    db = tmp_path / "a.db"
    result = CliRunner().invoke(main, ["crawl", f"{demo_forum.base_url}forum-1-1.html", "--db", str(db),
                                       "--allow-private", "--max-requests", "4", "--cookies", str(cookies)])
    assert result.exit_code == 0, result.output
    with Archive(db, readonly=True) as archive:
        assert archive.db.execute("select count(*) from posts").fetchone()[0] > 0


def test_a_config_names_its_cookies_file_relative_to_itself(tmp_path, monkeypatch):
    folder = tmp_path / "sites"
    folder.mkdir()
    cookies_txt(folder / "member.txt", ("bbs.example.cn", "FALSE", "/", "FALSE", 0, "cdb_auth", TOKEN))
    config = folder / "forum.toml"
    config.write_text('name = "forum"\nbase_url = "https://bbs.example.cn/"\ncookies_file = "member.txt"\n',
                      encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the config's folder
    site = load_site(config)
    assert site.cookies_file == folder / "member.txt"
    assert MemberCookies(site.cookies_file).header_for("https://bbs.example.cn/forum-1-1.html") == MEMBER
    # A site rebuilt from its config elsewhere (a daemon job does) finds the same file.
    monkeypatch.chdir(folder.parent.parent)
    assert site_from_dict(site.raw).cookies_file == site.cookies_file
    assert "cookies_file" not in site.archived_config
    config.write_text('name = "forum"\nbase_url = "https://bbs.example.cn/"\ncookies_file = "gone.txt"\n',
                      encoding="utf-8")
    with pytest.raises(ConfigError, match="cookies_file .*gone.txt' is not a file"):
        load_site(config)


def test_the_daemon_crawls_as_the_member_its_config_names(demo_forum, tmp_path, monkeypatch):
    demo_forum.forum.member_cookie = MEMBER
    folder = tmp_path / "sites"
    folder.mkdir()
    cookies_txt(folder / "member.txt", ("127.0.0.1", "FALSE", "/", "FALSE", 0, "cdb_auth", TOKEN))
    config = folder / "demo.toml"
    # A top-level key: TOML puts a key after a [table] into that table.
    config.write_text('cookies_file = "member.txt"\n' + DEMO_CONFIG.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:8765/", demo_forum.base_url), encoding="utf-8")
    db = tmp_path / "a.db"
    result = CliRunner().invoke(main, ["run", "--db", str(db), "--config", str(config), "--delay", "0",
                                       "--allow-private", "--once"])
    assert result.exit_code == 0, result.output
    with Archive(db, readonly=True) as archive:
        posts = archive.db.execute("select count(*) from posts").fetchone()[0]
        failures = archive.db.execute("select count(*) from frontier where state = 'failed'").fetchone()[0]
    assert posts > 20 and failures == 0
    assert all(MEMBER in r.headers.get("Cookie", "") for r in demo_forum.requests)
    # A scheduled job gets its site's config as JSON through the job store and rebuilds the
    # site from it, in whatever folder the daemon runs: the cookies file survives that trip.
    demo_forum.forum.add_reply(min(demo_forum.forum.threads), "admin", "会员才看得到的新回复")
    demo_forum.requests.clear()
    monkeypatch.chdir(tmp_path)
    site_json = json.dumps(load_site(config).raw)
    report = schedule._run_site_job(str(db), site_json, schedule.RunOptions(delay_s=0, allow_private=True).to_json(),
                                    "discover")
    assert report["new_posts"] == 1 and demo_forum.requests
    assert all(MEMBER in r.headers.get("Cookie", "") for r in demo_forum.requests)
