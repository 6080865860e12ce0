"""A local HTTP server that misbehaves on purpose, for the network seam's tests.

Routes (all on 127.0.0.x):
  /ok                        a small HTML page
  /plain                     text/plain
  /redirect?to=URL           302 to URL
  /loop-a, /loop-b           redirect to each other
  /chain/N                   redirects to /chain/N+1 forever
  /drip                      headers, then one byte every `drip_interval_s`
  /hang-after-headers        headers, then nothing
  /huge-chunked              chunked body without end, 64 KiB a chunk
  /wrong-content-length      claims 10000 bytes, sends 10 and closes
  /bomb/gzip /bomb/deflate   1 GiB of zeros compressed to about 1 MB
  /bomb/gzip-in-gzip         two stacked gzip layers
  /bomb/gzip-members         1 GiB as a thousand concatenated gzip members
  /status/N                  answers status N (Retry-After from ?retry_after=)
  /thread-9-N-1.html         a Discuz thread page whose pager always claims one more page
"""

from __future__ import annotations

import gzip
import re
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

BOMB_BYTES = 1024 * 1024 * 1024  # what a bomb inflates to


def _zeros_deflate(total: int) -> bytes:
    """A raw deflate stream of `total` zero bytes, built in milliseconds: after a full flush
    the compressor forgets its window, so every further megabyte compresses to the same bytes."""
    block = bytes(1024 * 1024)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    repeat = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    assert repeat == comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    return first + repeat * (total // len(block) - 1) + comp.flush()


def _checksums(total: int) -> tuple[int, int]:
    block = bytes(1024 * 1024)
    adler, crc = 1, 0
    for _ in range(total // len(block)):
        adler = zlib.adler32(block, adler)
        crc = zlib.crc32(block, crc)
    return adler, crc


def _bomb(kind: str) -> bytes:
    raw = _zeros_deflate(BOMB_BYTES)
    adler, crc = _checksums(BOMB_BYTES)
    if kind == "deflate":  # zlib wrapper
        return b"\x78\xda" + raw + adler.to_bytes(4, "big")
    gz = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + crc.to_bytes(4, "little") + \
        (BOMB_BYTES % 2**32).to_bytes(4, "little")
    if kind == "gzip":
        return gz
    if kind == "gzip-in-gzip":
        return gzip.compress(gz)
    if kind == "gzip-members":  # many small gzip members: legal, and each alone is harmless
        return gzip.compress(bytes(1024 * 1024)) * (BOMB_BYTES // (1024 * 1024))
    raise KeyError(kind)


class _Bombs:
    _lock = threading.Lock()
    _cache: dict[str, bytes] = {}

    @classmethod
    def get(cls, kind: str) -> bytes:
        with cls._lock:
            if kind not in cls._cache:
                cls._cache[kind] = _bomb(kind)
            return cls._cache[kind]


ENDLESS_THREAD = re.compile(r"^/thread-9-(\d+)-1\.html$")


def endless_thread_page(page: int) -> bytes:
    """Page `page` of a thread whose pager always says there is one page more."""
    pid = 9000 + page
    return f"""<html><head><meta charset="utf-8"><title>无尽的帖子</title></head><body>
<div id="pgt" class="pgs"><div class="pg"><strong>{page}</strong><a href="thread-9-{page + 1}-1.html">{page + 1}</a>
<label><span title="共 {page + 1} 页"> / {page + 1} 页</span></label>
<a href="thread-9-{page + 1}-1.html" class="nxt">下一页</a></div></div>
<div id="postlist" class="pl bm"><table><tr><td class="plc ptm pbn vwthd"><h1 class="ts">
<span id="thread_subject">无尽的帖子</span></h1></td></tr></table>
<div id="post_{pid}"><table id="pid{pid}" class="plhin" summary="pid{pid}"><tr><td class="pls" rowspan="2"></td>
<td class="plc"><div class="pi"><strong><a href="thread-9-1-1.html" id="postnum{pid}"><em>{page}</em><sup>#</sup></a></strong>
<div class="pti"><div class="authi"><a href="home.php?mod=space&amp;uid=7" class="xi2">陷阱</a>
<em id="authorposton{pid}">发表于 2024-3-2 10:05:11</em></div></div></div>
<div class="pct"><div class="pcb"><div class="t_fsz"><table><tr><td class="t_f" id="postmessage_{pid}">第{page}页</td></tr>
</table></div></div></div></td></tr></table></div></div></body></html>""".encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else ~40 ms per keep-alive response
    drip_interval_s = 0.5

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802 (stdlib naming)
        self.server.hits.append(self.path)
        self.server.hit_times.append(time.monotonic())
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = parts.path
        if path == "/ok":
            return self._send(200, b"<html><body><p>ok</p></body></html>")
        if path == "/plain":
            return self._send(200, b"just text", "text/plain")
        if path == "/redirect":
            return self._redirect(query["to"][0])
        if path == "/loop-a":
            return self._redirect("/loop-b")
        if path == "/loop-b":
            return self._redirect("/loop-a")
        if path.startswith("/chain/"):
            return self._redirect(f"/chain/{int(path.rsplit('/', 1)[1]) + 1}")
        if path == "/drip":
            return self._drip()
        if path == "/hang-after-headers":
            self._headers(200, length=1000)
            time.sleep(30)
            return None
        if path == "/huge-chunked":
            return self._huge_chunked()
        if path == "/declared-huge":  # says 10 GB is coming, then sends nothing
            self._headers(200, length=10 * 1024**3)
            time.sleep(5)
            self.close_connection = True
            return None
        if path == "/wrong-content-length":
            self._headers(200, length=10000)
            self.wfile.write(b"<html>tiny")
            self.close_connection = True
            return None
        if path.startswith("/bomb/"):
            kind = path.split("/", 2)[2]
            body = _Bombs.get(kind)
            encoding = {"gzip": "gzip", "deflate": "deflate", "gzip-in-gzip": "gzip, gzip",
                        "gzip-members": "gzip"}[kind]
            self._headers(200, length=len(body), extra={"Content-Encoding": encoding})
            self.wfile.write(body)
            return None
        if m := ENDLESS_THREAD.match(path):
            return self._send(200, endless_thread_page(int(m[1])))
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            extra = {"Retry-After": query["retry_after"][0]} if "retry_after" in query else {}
            return self._send(status, b"<html><body>status</body></html>", extra=extra)
        return self._send(404, b"not found", "text/plain")

    def _headers(self, status, *, ctype="text/html; charset=utf-8", length=None, extra=None, chunked=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _send(self, status, body, ctype="text/html; charset=utf-8", extra=None):
        self._headers(status, ctype=ctype, length=len(body), extra=extra)
        self.wfile.write(body)

    def _redirect(self, location):
        self._headers(302, length=0, extra={"Location": location})

    def _drip(self):
        self._headers(200, length=100000)
        try:
            for _ in range(100000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(self.drip_interval_s)
        except OSError:
            pass

    def _huge_chunked(self):
        self._headers(200, chunked=True)
        chunk = b"y" * 65536
        try:
            while True:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients hanging up mid-body is the point of most routes


class MisbehavingServer:
    """Runs Handler on (host, free port) in a thread; `.url(path)` builds URLs; `.hits` logs paths."""

    def __init__(self, host: str = "127.0.0.1"):
        self.httpd = _QuietServer((host, 0), Handler)
        self.httpd.hits = []
        self.httpd.hit_times = []
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def hits(self) -> list[str]:
        return self.httpd.hits

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"
