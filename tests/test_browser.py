"""A real headless Chromium reads the seed thread in the published archive."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from scraper.publish import datasette_command
from scraper.textimport import import_text_file
from storage.archive import Archive

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "seeds" / "000_742c7f89ba496aaa.txt"
DEMO_CONFIG = REPO / "seeds" / "sites" / "demo.toml"
# The README's screenshot is refreshed only on request (`make screenshot`), so a test run
# leaves the work tree as it found it.
DOCS_SCREENSHOT = REPO / "docs" / "thread-page.png"
UPDATE_DOCS = os.environ.get("FORUM_ARCHIVER_UPDATE_SCREENSHOT") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# floor -> (author, a sentence of the post as the reader shows it)
SEED_POSTS = [
    ("仲伯间", "办公室是一个单位的综合办事机构"),
    ("仲伯间", "强化十种意识做好办公室工作"),
    ("仲伯间", "要做好办公室工作,必须真正把“三个代表”的要求融入自己的思想"),
    ("仲伯间", "娄山关镇党政办紧紧围绕镇党委政府提出的"),
    ("仲伯间", "办公室人员在现代管理中起着参与政务、管理事务的重要作用"),
    ("仲伯间", "随着经济社会的发展,水利正以其基础性、全局性和战略性的地位日益引起全社会的高度重视"),
    ("xg0101", "总结的都很精辟,很不错的"),
    ("绝世赢贼", "做好党办工作,还真得具备以上意识。"),
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served_archive(tmp_path):
    """`datasette serve` as forum-archiver runs it, over an archive holding the seed thread."""
    path = tmp_path / "forum.db"
    with Archive(path) as archive:
        import_text_file(archive, SEED, site_name="demo", config_path=DEMO_CONFIG)
    port = free_port()
    process = subprocess.Popen(datasette_command(path, host="127.0.0.1", port=port, immutable=True),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/-/versions.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"datasette did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_chromium_shows_the_seed_threads_eight_posts(served_archive, tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1400})
            page.goto(f"{served_archive}/-/thread/1")
            posts = page.locator("article.thread-post")
            assert posts.count() == len(SEED_POSTS)
            for index, (author, sentence) in enumerate(SEED_POSTS):
                post = posts.nth(index)
                assert post.locator(".author").inner_text() == author
                assert post.locator(".post-body").get_by_text(sentence, exact=False).first.is_visible(), sentence
            assert page.locator("details.signature[open]").count() == 0
            shot = DOCS_SCREENSHOT if UPDATE_DOCS else tmp_path / "thread-page.png"
            page.screenshot(path=str(shot), full_page=False)
            assert shot.stat().st_size > 10_000  # a rendered page, not a blank
        finally:
            browser.close()


def test_home_page_search_box_reaches_the_thread(served_archive):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(served_archive + "/")
            page.fill("form.archive-search input[name=q]", "精辟")
            page.click("form.archive-search input[type=submit]")
            page.locator("td.col-post_id a").first.click()
            page.wait_for_url("**/-/thread/1?post=7*")
            assert page.locator("#post-7 .author").inner_text() == "xg0101"
        finally:
            browser.close()
