"""The pacer's slowdown weighs the server's time, not the event loop's: against a real local
server, with the loop kept busy by another task (as parsing and writing other hosts' pages
keeps it busy in a crawl)."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scraper.net import AddressGuard, Fetcher
from scraper.politeness import HostPacer

DELAY_S = 1.0  # above 5 x the server time a loaded machine adds (preempted time counts as waiting)
BUSY_S = 0.5  # how long another task holds the loop while our request is in flight


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer_after_s: float | None):
        self.answer_after_s = answer_after_s
        self.arrived = threading.Event()
        self.go = threading.Event()  # with answer_after_s None: answer once this is set
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else ~40 ms per keep-alive response (design.md)

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (stdlib naming)
        self.server.arrived.set()
        if self.server.answer_after_s is None:
            self.server.go.wait(5)
        else:
            time.sleep(self.server.answer_after_s)
        body = b"<html><body>ok</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def serve():
    servers = []

    def start(answer_after_s: float | None = None) -> _Server:
        server = _Server(answer_after_s)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


async def _hold_the_loop_once_the_request_is_in(server: _Server) -> None:
    while not server.arrived.is_set():
        await asyncio.sleep(0.001)
    until = time.monotonic() + BUSY_S
    server.go.set()  # the server answers at once, while the loop is held
    while time.monotonic() < until:  # CPU work that never yields, like parsing a page
        pass


async def _request(pacer: HostPacer, fetcher: Fetcher, url: str, *, report: bool) -> tuple[float, float]:
    """One paced request; returns (the slot's wall time, the server time the fetcher measured)."""
    async with pacer.slot("127.0.0.1") as slot:
        started = time.monotonic()
        result = await fetcher.get(url)
        if report:
            slot.server_s = result.server_s
        return time.monotonic() - started, result.server_s


def _fetcher() -> Fetcher:
    return Fetcher(user_agent="forum-archiver-tests", guard=AddressGuard(allowed_hosts=frozenset({"127.0.0.1"})))


@pytest.mark.parametrize("report", [True, False], ids=["server-time", "wall-time"])
async def test_loop_lag_does_not_lengthen_the_gap(serve, report):
    server = serve()
    url = f"http://127.0.0.1:{server.server_address[1]}/t"
    pacer = HostPacer(delay_s=DELAY_S, rng=lambda: 0.0)
    fetcher = _fetcher()
    try:
        (wall_s, server_s), _ = await asyncio.gather(_request(pacer, fetcher, url, report=report),
                                                     _hold_the_loop_once_the_request_is_in(server))
        gap_s = pacer.ready_in("127.0.0.1")
    finally:
        await fetcher.aclose()
    assert wall_s >= BUSY_S  # the request did wait for the busy loop
    if report:
        assert server_s < BUSY_S / 2  # the server answered at once; the loop's lag is left out
        assert gap_s <= DELAY_S + 0.01  # the next request may go after delay_s, not 5 x the lag
    else:  # control: counting wall time, the same lag is blamed on the server
        assert gap_s >= 5 * BUSY_S - 0.1


async def test_a_slow_server_still_slows_us_down(serve):
    server = serve(answer_after_s=0.2)
    url = f"http://127.0.0.1:{server.server_address[1]}/t"
    pacer = HostPacer(delay_s=0.05, rng=lambda: 0.0)
    fetcher = _fetcher()
    try:
        _, server_s = await _request(pacer, fetcher, url, report=True)
        gap_s = pacer.ready_in("127.0.0.1")
    finally:
        await fetcher.aclose()
    assert server_s >= 0.2
    assert gap_s >= 5 * 0.2 - 0.01  # 5 x the server's time, above the floor
