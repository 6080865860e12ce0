"""Many forums on many hosts, served from a process of their own, for the crawl benchmarks.

One generated Discuz forum (the demo forum's renderer and markup, board 1, jammer on) is
served on N distinct loopback addresses (127.0.0.2, 127.0.0.3, ...): crawlers key politeness
on the host name, so ports of one address would count as one host. Links on each page name
the host it was asked from, so every address is a forum of its own to a crawler.

The server process logs every request (host, path, status, body bytes, monotonic start and
end times: CLOCK_MONOTONIC is system-wide on Linux, so the parent can compare them) and takes
commands from the parent over a pipe: read the log, add replies to threads, stop.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import threading
import time
from dataclasses import dataclass
from math import ceil
from typing import NamedTuple

from benchmarks.corpus import AUTHORS, FORUM_NOW, JAMMER_BOARD
from scraper.demo.forum import DemoForum
from scraper.demo.server import DemoHandler, DemoHTTPServer, Response

POSTS_PER_PAGE = 10  # Discuz's default `ppp`
# Pages per thread, cycled over the threads: most threads are short, some run long.
PAGES_CYCLE = (1, 2, 3, 4, 5)
LINES_PER_POST = (1, 2, 3, 5, 8)  # a post's lines of seed prose: forum posts of typical length
SERVE_POLL_S = 0.5  # serve_forever's poll interval (50 servers polling often would cost CPU)
START_TIMEOUT_S = 120.0
LOG_SWITCH_INTERVAL_S = 0.0002


class Served(NamedTuple):
    """One request as the server saw it."""

    host: str
    path: str
    status: int
    nbytes: int  # body bytes sent
    started: float  # time.monotonic() when the request line and headers were read
    sending: float  # time.monotonic() just before the response was written: the client's end of
    # this request comes after it, whatever the delays of the log
    finished: float  # time.monotonic() once the response was written (may lag the client's end)


def thread_page_paths(forum: DemoForum) -> list[str]:
    """Every thread page of the forum, as paths."""
    return [f"/thread-{t.tid}-{page}-1.html" for t in forum.threads.values()
            for page in range(1, forum.thread_pages(t) + 1)]


def build_forum(thread_count: int, *, posts_per_page: int = POSTS_PER_PAGE,
                pages_cycle: tuple[int, ...] = PAGES_CYCLE) -> DemoForum:
    """A forum of `thread_count` threads on one board, thread i spanning
    pages_cycle[i % len] pages of `posts_per_page` posts; the demo's own threads are removed.
    Deterministic: the same arguments give the same pages."""
    forum = DemoForum(now=FORUM_NOW)
    forum.posts_per_page = posts_per_page
    lines = [line.text for thread in forum.threads.values() for post in thread.posts
             for line in post.lines if line.text.strip()]
    originals = set(forum.threads)
    cursor = 0

    def text() -> str:
        nonlocal cursor
        count = LINES_PER_POST[cursor % len(LINES_PER_POST)]
        chosen = [lines[(cursor * 7 + i) % len(lines)] for i in range(count)]
        cursor += 1
        return f"#{cursor} " + "\n".join(chosen)  # the prefix keeps every post distinct

    for n in range(thread_count):
        tid = forum.add_thread(JAMMER_BOARD, f"基准论坛主题 {n}", AUTHORS[n % len(AUTHORS)], text())
        posts = pages_cycle[n % len(pages_cycle)] * posts_per_page
        for floor in range(2, posts + 1):
            posted = f"2025-{1 + n % 12}-{1 + floor % 28} {8 + floor % 12}:{floor % 60:02d}:{n % 60:02d}"
            forum.add_reply(tid, AUTHORS[(n + floor) % len(AUTHORS)], text(), posted)
    for tid in originals:
        del forum.threads[tid]
    return forum


class LoggingHandler(DemoHandler):
    """The demo forum's handler, recording each request's timing, status and size."""

    def do_GET(self) -> None:
        started = time.monotonic()
        self._sent = (0, 0, started)
        super().do_GET()
        status, nbytes, sending = self._sent
        self.server.served.append(Served(self.headers.get("Host", "").split(":")[0], self.path, status, nbytes,
                                         started, sending, time.monotonic()))

    def _send(self, response: Response, *, send_body: bool) -> None:
        sending = time.monotonic()
        super()._send(response, send_body=send_body)
        self._sent = (response.status, len(response.body) if send_body and response.status != 304 else 0, sending)


class LoggingServer(DemoHTTPServer):
    def __init__(self, address: tuple[str, int], forum: DemoForum):
        super().__init__(address, forum)
        self.RequestHandlerClass = LoggingHandler
        self.served: list[Served] = []


@dataclass(frozen=True)
class ForumShape:
    """What the server process builds: `thread_count` threads served on `host_count` hosts."""

    host_count: int
    thread_count: int
    pages_cycle: tuple[int, ...] = PAGES_CYCLE
    posts_per_page: int = POSTS_PER_PAGE
    validators: bool = False  # send ETag/Last-Modified (most Discuz sites do not)


def _serve(conn, shape: ForumShape) -> None:
    # A thread that has written its response waits for the GIL before it can log the time;
    # a short switch interval keeps that wait, and so the error of the log, well under 1 ms.
    sys.setswitchinterval(LOG_SWITCH_INTERVAL_S)
    forum = build_forum(shape.thread_count, posts_per_page=shape.posts_per_page, pages_cycle=shape.pages_cycle)
    forum.validators = shape.validators
    servers = [LoggingServer((f"127.0.0.{2 + i}", 0), forum) for i in range(shape.host_count)]
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SERVE_POLL_S}, daemon=True).start()
    conn.send({"base_urls": [server.base_url for server in servers], "posts": _post_count(forum),
               "threads": len(forum.threads), "thread_pages": len(thread_page_paths(forum)),
               "board_pages": forum.board_pages(JAMMER_BOARD)})
    while True:
        command, *args = conn.recv()
        if command == "log":
            served = [record for server in servers for record in server.served]
            for server in servers:
                server.served.clear()
            conn.send(served)
        elif command == "cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(usage.ru_utime + usage.ru_stime)
        elif command == "reply":
            conn.send(_add_replies(forum, *args))
        elif command == "stop":
            # Closing the sockets is enough: the serving threads are daemons and die with the
            # process (shutdown() would wait a poll interval per server).
            for server in servers:
                server.server_close()
            conn.send("stopped")
            return


def _post_count(forum: DemoForum) -> int:
    return sum(len(thread.posts) for thread in forum.threads.values())


def _add_replies(forum: DemoForum, fraction: float) -> dict:
    """Give ceil(fraction * threads) threads, spread evenly over the forum, one new reply each."""
    tids = sorted(forum.threads)
    changed = tids[:: max(1, len(tids) // max(1, ceil(fraction * len(tids))))][: ceil(fraction * len(tids))]
    for tid in changed:
        forum.add_reply(tid, AUTHORS[tid % len(AUTHORS)], f"新回复 {tid}: 补充一点看法。")
    pages_touched = [forum.thread_pages(forum.threads[tid]) for tid in changed]
    return {"threads": changed, "posts": _post_count(forum), "last_pages": pages_touched}


class ForumHosts:
    """The forum served on `shape.host_count` loopback hosts by a child process.

    Use as a context manager; .base_urls, .posts (posts per host), .thread_pages (per host),
    .served() (the request log since the last call), .cpu_s() (the server's CPU seconds so
    far), .add_replies(fraction)."""

    def __init__(self, shape: ForumShape):
        self.shape = shape
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_conn, shape), name="forum-hosts", daemon=True)

    def __enter__(self) -> ForumHosts:
        self._process.start()
        if not self._conn.poll(START_TIMEOUT_S):
            self._process.kill()
            raise RuntimeError(f"the forum server did not start within {START_TIMEOUT_S:.0f} s")
        info = self._conn.recv()
        self.base_urls: list[str] = info["base_urls"]
        self.posts: int = info["posts"]
        self.threads: int = info["threads"]
        self.thread_pages: int = info["thread_pages"]
        self.board_pages: int = info["board_pages"]
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process.is_alive():
            self._conn.send(("stop",))
            self._conn.poll(10)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()

    def served(self) -> list[Served]:
        """Every request served since the last call, in no particular order."""
        self._conn.send(("log",))
        return self._conn.recv()

    def cpu_s(self) -> float:
        """CPU seconds the server process has used so far (all its threads)."""
        self._conn.send(("cpu",))
        return self._conn.recv()

    def add_replies(self, fraction: float) -> dict:
        """One new reply in `fraction` of the threads (at least one), on every host."""
        self._conn.send(("reply", fraction))
        return self._conn.recv()

    def board_urls(self) -> list[str]:
        """The first page of the board on each host: where every crawler starts."""
        return [f"{base}forum-{JAMMER_BOARD}-1.html" for base in self.base_urls]


def by_host(served: list[Served]) -> dict[str, list[Served]]:
    """The log split per host, each host's requests in the order they started."""
    hosts: dict[str, list[Served]] = {}
    for record in sorted(served, key=lambda r: r.started):
        hosts.setdefault(record.host, []).append(record)
    return hosts


def max_in_flight(served: list[Served]) -> int:
    """The most requests one host was ever answering at the same time."""
    most = 0
    for records in by_host(served).values():
        events = sorted([(r.started, 1) for r in records] + [(r.finished, -1) for r in records])
        level = 0
        for _, step in events:
            level += step
            most = max(most, level)
    return most


def is_page(record: Served) -> bool:
    """A board or thread page answered 200 (not robots.txt, not an error)."""
    return record.status == 200 and record.path != "/robots.txt"
