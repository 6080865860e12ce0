"""Benchmark inputs built from the demo forum: Discuz thread pages of ~100 KB with 10 posts
each and jammer on, rendered by the same renderer the demo server uses.

Post texts are lines of the demo forum's own threads (real Chinese forum prose), so the
pages carry realistic text, jammer runs at every line break, ads, signatures and chrome.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import replace
from datetime import datetime

from scraper.clean import parse_html
from scraper.demo.forum import DemoForum
from scraper.demo.render import render_thread_page
from scraper.engines.base import ParseContext, ThreadPage
from scraper.engines.discuz import DiscuzEngine

SITE_URL = "http://127.0.0.1:8765/"
POSTS_PER_PAGE = 10
# The demo forum's clock, fixed so every run renders the same bytes.
FORUM_NOW = datetime(2026, 1, 15, 12, 0, 0)
AUTHORS = ("风清扬", "令狐冲", "任盈盈", "岳不群", "林平之", "田伯光", "仪琳", "向问天")
JAMMER_BOARD = 1
POST_TEXT_BYTES = 5_200  # with chrome, profile columns and jammer runs: ~100 KB pages  # a utf-8 board with jammer on


def _seed_lines(forum: DemoForum) -> list[str]:
    return [line.text for thread in forum.threads.values() for post in thread.posts
            for line in post.lines if line.text.strip()]


def _post_text(lines: list[str], start: int, text_bytes: int) -> str:
    # Whole lines until the text reaches text_bytes of UTF-8: page sizes then stay close.
    chosen: list[str] = []
    size = 0
    while size < text_bytes:
        line = lines[(start + len(chosen)) % len(lines)]
        chosen.append(line)
        size += len(line.encode("utf-8")) + 1
    return "\n".join(chosen)


def thread_pages(thread_count: int, *, text_bytes: int = POST_TEXT_BYTES) -> list[tuple[str, str]]:
    """(url, html) for `thread_count` threads of one page each: 10 posts, jammer on.

    The default text_bytes makes pages of about 100 KB (the scripts print the sizes)."""
    forum = DemoForum(now=FORUM_NOW)
    forum.posts_per_page = POSTS_PER_PAGE
    lines = _seed_lines(forum)
    pages = []
    cursor = 0
    for n in range(thread_count):
        text = _post_text(lines, cursor, text_bytes)
        cursor += 7  # overlapping but distinct windows: no two posts alike
        tid = forum.add_thread(JAMMER_BOARD, f"基准测试主题 {n}", AUTHORS[n % len(AUTHORS)], text)
        for floor in range(2, POSTS_PER_PAGE + 1):
            text = _post_text(lines, cursor, text_bytes)
            cursor += 7
            # Replies print absolute times; the opening post, posted "now", a relative one.
            posted = f"2025-{1 + n % 12}-{1 + floor} {8 + floor}:{floor * 5:02d}:{n % 60:02d}"
            forum.add_reply(tid, AUTHORS[(n + floor) % len(AUTHORS)], text, posted)
        thread = forum.thread(tid)
        url = f"{SITE_URL}thread-{tid}-1-1.html"
        pages.append((url, render_thread_page(forum, thread, 1, SITE_URL, "utf-8")))
    return pages


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """One line naming the machine: cores, CPU model, Python, OS."""
    return (f"nproc={os.cpu_count()} cpu={_cpu_model()!r} python={platform.python_version()} "
            f"({sys.implementation.name}) os={platform.system()} {platform.release()}")


def command() -> str:
    """The command line that ran this script, to print beside its figures."""
    return " ".join(sys.orig_argv)


def parsed_pages(page_count: int, *, text_bytes: int = POST_TEXT_BYTES) -> list[ThreadPage]:
    """`page_count` thread pages as the engine returns them (parsed once, from real renders)."""
    engine = DiscuzEngine()
    return [engine.parse_thread(parse_html(html), ParseContext(url=url))
            for url, html in thread_pages(page_count, text_bytes=text_bytes)]


def page_variant(template: ThreadPage, n: int) -> ThreadPage:
    """Page `n` of a synthetic archive: a distinct thread (tid n) whose 10 posts have distinct
    pids and distinct texts, so every row is new to dedup, versions and FTS."""
    posts = [replace(post, pid=n * POSTS_PER_PAGE + i, content_text=f"{n}-{i} {post.content_text}")
             for i, post in enumerate(template.posts)]
    # The template's canonical URL names the template's thread: page 1's canonical URL becomes
    # the thread's, so every variant would point at the same few threads.
    return replace(template, tid=n, title=f"{template.title} #{n}", posts=posts, canonical_url=None)
