"""What a run shows while it works: one updating status line on a terminal, plain log
lines otherwise (systemd's journal, cron mail, a redirected file)."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

log = logging.getLogger("forum_archiver.progress")


class ProgressReporter:
    """Called by the Crawler after every page (Crawler(on_page=...))."""

    def __init__(self, site_name: str, stream: TextIO | None = None):
        self.site_name = site_name
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def __call__(self, report, row: dict) -> None:
        failures = sum(report.failures.values())
        summary = (f"{self.site_name}: {report.requests} requests, {report.pages_saved} pages saved, "
                   f"{report.new_posts} new posts, {report.new_versions} new versions, "
                   f"{report.not_modified + report.unchanged_pages} unchanged, {failures} failures")
        if self.tty:
            self.stream.write("\r\x1b[2K" + summary[:200])
            self.stream.flush()
        else:
            log.info("%s | %s", summary, row.get("url"))

    def close(self) -> None:
        """End the status line so the next output starts on a line of its own."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
