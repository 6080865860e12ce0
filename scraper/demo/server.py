"""Serve the demo forum over HTTP/1.1 with the stdlib, the way a Discuz! X3.4 site answers.

Routes: /robots.txt (Discuz's stock file), / and /forum.php (index), board pages
(forum-F-P.html, forum.php?mod=forumdisplay&fid=F&page=P), thread pages
(thread-T-P-1.html, forum.php?mod=viewthread&tid=T&page=P), the new-threads guide
(forum.php?mod=guide&view=newthread&page=P, every board's threads, newest first), attachments, and Discuz's
notice page (status 200) for a thread or board that does not exist. A page number past the
end serves the last page. GBK boards are sent GBK-encoded (GB18030 where a page holds
characters GBK lacks) with no charset in the Content-Type header, only in the <meta>.

Every request is logged as (method, path, headers) in `server.requests` for tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from scraper import config
from scraper.demo import render
from scraper.demo.forum import DemoForum, DemoPost, DemoThread
from scraper.politeness import parse_http_date

THREAD_PATH = re.compile(r"^/thread-(\d+)-(\d+)-\d+\.html$")
BOARD_PATH = re.compile(r"^/forum-(\d+)-(\d+)\.html$")
ATTACHMENT_PATH = re.compile(r"^/data/attachment/(forum/.+)$")
INDEX_PATHS = frozenset({"/", "/forum.php", "/index.php"})
KEEP_ALIVE_IDLE_S = 10.0  # an idle keep-alive connection frees its thread after this
NOTICE_NO_ATTACHMENT = "抱歉，附件不存在"
SHUTDOWN_POLL_S = 0.05  # serve_forever's poll interval: how long shutdown() may wait
# A 1x1 GIF stands in for every attached image.
PIXEL_GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
             b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


class RequestRecord(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    at: float = 0.0  # time.monotonic() when the request arrived, for pacing checks


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    last_modified: datetime | None = None  # set on thread and board pages: they may carry validators


def _page_number(raw: str | None) -> int:
    # Discuz: $page = max(1, intval($_GET['page'])).
    return max(1, int(raw)) if raw and raw.isdigit() else 1


def _encode(html: str, encoding: str) -> tuple[bytes, str]:
    if encoding == "gbk":
        try:
            body = html.encode("gbk")
        except UnicodeEncodeError:
            # The old GBK board holds characters only GB18030 has; the meta still says gbk.
            body = html.encode("gb18030")
        return body, "text/html"
    return html.encode("utf-8"), "text/html; charset=utf-8"


def _html(html: str, encoding: str = "utf-8", status: int = 200, last_modified: datetime | None = None) -> Response:
    body, content_type = _encode(html, encoding)
    return Response(status, body, content_type, last_modified=last_modified)


def _notice(forum: DemoForum, message: str, site_url: str) -> Response:
    return _html(render.render_notice(forum, message, site_url))


def _thread(forum: DemoForum, tid: int, page: int, site_url: str) -> Response:
    thread = forum.thread(tid)
    if thread is None:
        return _notice(forum, render.NOTICE_NO_THREAD, site_url)
    board = forum.boards[thread.fid]
    page = min(page, forum.thread_pages(thread))
    html = render.render_thread_page(forum, thread, page, site_url, board.encoding)
    return _html(html, board.encoding, last_modified=thread.changed_at)


def _board(forum: DemoForum, fid: int, page: int, site_url: str) -> Response:
    board = forum.board(fid)
    if board is None:
        return _notice(forum, render.NOTICE_NO_BOARD, site_url)
    page = min(page, forum.board_pages(fid))
    threads = forum.board_threads(fid)
    changed = max((t.changed_at for t in threads), default=None)
    return _html(render.render_board_page(forum, board, page, site_url, board.encoding), board.encoding,
                 last_modified=changed)


def _guide(forum: DemoForum, page: int, site_url: str) -> Response:
    changed = max((t.changed_at for t in forum.threads.values()), default=None)
    return _html(render.render_guide_page(forum, min(page, forum.guide_pages()), site_url), last_modified=changed)


def _attached(forum: DemoForum) -> list[tuple[DemoThread, DemoPost]]:
    return [(t, p) for t in forum.threads.values() for p in t.posts if p.images or p.attachments]


def _attachment_by_aid(forum: DemoForum, encoded: str, site_url: str) -> Response:
    try:
        aid = int(base64.b64decode(encoded, validate=True).split(b"|")[0])
    except (ValueError, binascii.Error):
        return _notice(forum, NOTICE_NO_ATTACHMENT, site_url)
    for _, post in _attached(forum):
        for image in post.images:
            if image.aid == aid:
                return Response(200, PIXEL_GIF, "image/gif")
        for attachment in post.attachments:
            if attachment.aid == aid:
                return Response(200, f"{attachment.name}\n".encode(), "application/octet-stream",
                                {"Content-Disposition": f"attachment; filename=\"{attachment.aid}.doc\""})
    return _notice(forum, NOTICE_NO_ATTACHMENT, site_url)


def _image_file(forum: DemoForum, path: str) -> Response:
    if any(image.file == path for _, post in _attached(forum) for image in post.images):
        return Response(200, PIXEL_GIF, "image/gif")
    return Response(404, b"404 Not Found\n", "text/plain; charset=utf-8")


SESSION_COOKIE = "cdb_sid="  # Discuz's session cookie, under the demo's cookie prefix


def route(forum: DemoForum, target: str, site_url: str, cookie: str | None = None) -> Response:
    """The response to a GET of `target` (path and query), for a request with the Cookie
    header `cookie`. Call with forum.lock held."""
    parts = urlsplit(target)
    path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
    if path == "/robots.txt":
        return Response(200, render.ROBOTS_TXT.encode(), "text/plain; charset=utf-8")
    if forum.member_cookie is not None and forum.member_cookie not in (cookie or "").split("; "):
        return _html(render.render_login_wall(forum, site_url))
    if m := THREAD_PATH.match(path):
        return _thread(forum, int(m[1]), _page_number(m[2]), site_url)
    if m := BOARD_PATH.match(path):
        return _board(forum, int(m[1]), _page_number(m[2]), site_url)
    if m := ATTACHMENT_PATH.match(path):
        return _image_file(forum, m[1])
    if path not in INDEX_PATHS:
        return Response(404, b"404 Not Found\n", "text/plain; charset=utf-8")
    mod = query.get("mod")
    if mod == "viewthread":
        tid = query.get("tid", "")
        if not tid.isdigit():
            return _notice(forum, render.NOTICE_NO_THREAD, site_url)
        return _thread(forum, int(tid), _page_number(query.get("page")), site_url)
    if mod == "forumdisplay":
        fid = query.get("fid", "")
        if not fid.isdigit():
            return _notice(forum, render.NOTICE_NO_BOARD, site_url)
        return _board(forum, int(fid), _page_number(query.get("page")), site_url)
    if mod == "attachment":
        return _attachment_by_aid(forum, query.get("aid", ""), site_url)
    if mod == "guide" and query.get("view") == "newthread":
        return _guide(forum, _page_number(query.get("page")), site_url)
    # Discuz falls back to the index for any other module.
    return _html(render.render_index(forum, site_url))


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def not_modified(response: Response, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """RFC 9110: If-None-Match decides when present; otherwise If-Modified-Since."""
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or _etag(response.body) in tags
    if if_modified_since and response.last_modified:
        since = parse_http_date(if_modified_since)
        return since is not None and response.last_modified <= since
    return False


class DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this, every keep-alive response waits ~40 ms (Nagle against delayed ACKs).
    disable_nagle_algorithm = True
    timeout = KEEP_ALIVE_IDLE_S
    server_version = "nginx"
    sys_version = ""
    server: DemoHTTPServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's signature
        pass  # the request log is the record; stderr stays quiet

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        self.server.requests.append(RequestRecord(self.command, self.path, dict(self.headers.items()),
                                                  time.monotonic()))
        forum = self.server.forum
        injected = self.server.take_fault(self.path)
        if injected is not None:
            self._send(injected, send_body=send_body)
            return
        host = self.headers.get("Host")
        site_url = f"http://{host}/" if host else self.server.base_url
        try:
            with forum.lock:
                response = route(forum, self.path, site_url, self.headers.get("Cookie"))
                if forum.member_cookie is not None and SESSION_COOKIE not in self.headers.get("Cookie", ""):
                    forum.sessions_opened += 1
                    response.headers["Set-Cookie"] = f"{SESSION_COOKIE}{forum.sessions_opened}; path=/; httponly"
        except Exception as exc:  # a bug in the demo must not take the server down
            response = Response(500, f"demo forum error: {exc!r}\n".encode(), "text/plain; charset=utf-8")
        if forum.validators and response.last_modified and response.status == 200:
            response.headers["ETag"] = _etag(response.body)
            response.headers["Last-Modified"] = formatdate(response.last_modified.timestamp(), usegmt=True)
            if not_modified(response, self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")):
                response = Response(304, b"", response.content_type, response.headers)
        self._send(response, send_body=send_body)

    def _send(self, response: Response, *, send_body: bool) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 304:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if send_body and response.status != 304:
            self.wfile.write(response.body)


class DemoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], forum: DemoForum):
        super().__init__(address, DemoHandler)
        self.forum = forum
        self.requests: list[RequestRecord] = []
        self._faults: dict[str, list[Response]] = {}
        self._faults_lock = threading.Lock()
        host, port = self.server_address[:2]
        self.base_url = f"http://{host}:{port}/"

    def inject(self, path: str, status: int, *, headers: dict[str, str] | None = None, body: bytes = b"",
               content_type: str = "text/html; charset=utf-8", times: int = 1) -> None:
        """Answer the next `times` requests for `path` (path and query, exact) with `status`:
        a misbehaving forum for politeness tests (503 with Retry-After, robots.txt 500, 404)."""
        with self._faults_lock:
            self._faults.setdefault(path, []).extend(
                Response(status, body, content_type, dict(headers or {})) for _ in range(times))

    def take_fault(self, path: str) -> Response | None:
        with self._faults_lock:
            queue = self._faults.get(path)
            return queue.pop(0) if queue else None


class DemoServer:
    """A demo forum running in a background thread: .base_url, .forum, .requests, .shutdown()."""

    def __init__(self, httpd: DemoHTTPServer):
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S},
                                        name="demo-forum", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return self._httpd.base_url

    @property
    def forum(self) -> DemoForum:
        return self._httpd.forum

    @property
    def requests(self) -> list[RequestRecord]:
        return self._httpd.requests

    def inject(self, path: str, status: int, **kwargs) -> None:
        """See DemoHTTPServer.inject: misbehave on purpose for the next requests of `path`."""
        self._httpd.inject(path, status, **kwargs)

    def shutdown(self) -> None:
        """Stop serving and close the listening socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown()


def start(host: str = "127.0.0.1", port: int = 0, forum: DemoForum | None = None) -> DemoServer:
    """Start the demo forum in a background thread (port 0: any free port) and return it."""
    return DemoServer(DemoHTTPServer((host, port), forum or DemoForum()))


def serve_forever(host: str = "127.0.0.1", port: int = config.DEMO_PORT, forum: DemoForum | None = None) -> None:
    """Serve the demo forum in this thread until interrupted (the `demo-forum` command)."""
    with DemoHTTPServer((host, port), forum or DemoForum()) as httpd:
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
