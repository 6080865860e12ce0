"""Progress: an updating line on a terminal, one log line per page otherwise."""

import io
import logging

from scraper.crawl import CrawlReport
from scraper.progress import ProgressReporter


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_terminal_gets_one_updating_line():
    out = FakeTerminal()
    progress = ProgressReporter("demo", out)
    report = CrawlReport(run_id=1, requests=3, pages_saved=2, new_posts=10)
    progress(report, {"url": "http://h/forum-1-1.html"})
    report.requests = 4
    progress(report, {"url": "http://h/thread-1-1-1.html"})
    progress.close()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "demo: 4 requests, 2 pages saved, 10 new posts" in text


def test_non_terminal_gets_log_lines(caplog):
    out = io.StringIO()
    progress = ProgressReporter("demo", out)
    with caplog.at_level(logging.INFO, logger="forum_archiver.progress"):
        progress(CrawlReport(run_id=1, requests=1), {"url": "http://h/forum-1-1.html"})
        progress.close()
    assert out.getvalue() == ""
    assert "demo: 1 requests" in caplog.text and "forum-1-1.html" in caplog.text
