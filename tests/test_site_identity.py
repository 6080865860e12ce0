"""A site name stands for one forum: another forum on the same host is refused, never merged."""

import pytest
from click.testing import CliRunner

from scraper.cli import main
from scraper.crawl import Crawler
from scraper.errors import ConfigError
from scraper.sites import check_same_forum, site_for_url
from scraper.textimport import import_text_file
from storage.archive import Archive

BBS = "https://example.cn/bbs/"
# The archive's tests use a loopback forum (nothing listens on port 9, and the address guard
# refuses loopback unless allowed): were the check to let a crawl through, it would reach nothing.
LOCAL_BBS = "http://127.0.0.1:9/bbs/"
LOCAL_CLUB_BOARD = "http://127.0.0.1:9/club/forum-2-1.html"
LOCAL_NAME = "127-0-0-1-9"  # the name `crawl URL` gives both


@pytest.mark.parametrize("url", [
    "https://example.cn/bbs/forum-2-1.html",  # the same folder
    "http://example.cn/bbs/thread-1-1-1.html",  # another scheme
    "https://example.cn:8443/bbs/forum-2-1.html",  # another port (the demo forum gets a free one each run)
    "https://example.cn/bbs/archiver/tid-1.html",  # a deeper URL form of the same forum
    "https://example.cn/forum-2-1.html",  # a shallower one
    "https://bbs.example.com/bbs/forum-2-1.html",  # another host: the forum moved, or was pointed elsewhere
])
def test_the_same_forum_at_another_address_is_accepted(url):
    check_same_forum(BBS, site_for_url(url, name="example-cn"))
    check_same_forum(None, site_for_url(url, name="example-cn"))  # a site the archive does not hold yet


def test_another_folder_of_the_host_is_another_forum():
    with pytest.raises(ConfigError, match=r"'example-cn' is the forum at https://example.cn/bbs/.*--site NAME"):
        check_same_forum(BBS, site_for_url("https://example.cn/club/forum-2-1.html"))


def stored_site(path):
    with Archive(path) as archive:
        archive.upsert_site(LOCAL_NAME, engine="discuz", base_url=LOCAL_BBS)


def site_rows(path):
    with Archive(path, readonly=True) as archive:
        return archive.db.execute("select name, base_url from sites").fetchall()


def test_a_crawl_of_another_forum_under_the_name_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "a.db"
    stored_site(path)
    with Archive(path) as archive, pytest.raises(ConfigError, match="another forum"):
        Crawler(archive, site_for_url(LOCAL_CLUB_BOARD))
    assert site_rows(path) == [(LOCAL_NAME, LOCAL_BBS)]


def test_the_cli_says_why_and_changes_nothing(tmp_path):
    path = tmp_path / "a.db"
    stored_site(path)
    runner = CliRunner()
    crawl = runner.invoke(main, ["crawl", LOCAL_CLUB_BOARD, "--db", str(path)])
    run = runner.invoke(main, ["run", "--once", "--site", LOCAL_CLUB_BOARD, "--db", str(path)])
    for result in (crawl, run):
        assert result.exit_code == 1 and "another forum" in result.output and "Traceback" not in result.output
    assert site_rows(path) == [(LOCAL_NAME, LOCAL_BBS)]
    with Archive(path, readonly=True) as archive:
        assert archive.db.execute("select count(*) from fetches").fetchone()[0] == 0


def test_a_text_import_under_another_forums_name_is_refused(tmp_path):
    path, config = tmp_path / "a.db", tmp_path / "club.toml"
    stored_site(path)
    config.write_text(f'name = "{LOCAL_NAME}"\nbase_url = "http://127.0.0.1:9/club/"\n', encoding="utf-8")
    page = tmp_path / "page.txt"
    page.write_text("any text: the site is checked before the page is read\n", encoding="utf-8")
    with Archive(path) as archive, pytest.raises(ConfigError, match="another forum"):
        import_text_file(archive, page, site_name=LOCAL_NAME, config_path=config)
    assert site_rows(path) == [(LOCAL_NAME, LOCAL_BBS)]
