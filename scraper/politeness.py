"""Being a good guest: robots.txt (RFC 9309) and per-host pacing.

Pacing rules (design.md, "Politeness defaults"): one request in flight per host; at least
delay_s between the end of one request and the start of the next; jitter only lengthens a
gap (up to JITTER_MAX_FACTOR), so neither the configured delay nor a robots Crawl-delay is
ever undercut; a slow server earns a longer gap; a 429/503 pauses the host.

Only the server's time earns a longer gap, not the crawler's own: on one event loop the wall
time around a request also holds the time the loop spent parsing and writing other hosts'
pages, and counting it would make every host wait longer the busier the crawler is.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from urllib.parse import urlsplit, urlunsplit

from protego import Protego

from scraper import config
from scraper.errors import StopRequested

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
STOP_POLL_S = 1.0  # how often a wait for a host's gap looks for a stop request

def host_of(url: str) -> str:
    """The politeness key of a URL: its host name (ports of one address are one host)."""
    return (urlsplit(url).hostname or "").lower()


@dataclass
class SlotUse:
    """What the holder of a slot reports about its request.

    server_s: the seconds the request spent waiting on the server and the network (the
    fetcher's FetchResult.server_s). Left None (a failed fetch, a caller that does not know),
    the slot's wall time is counted instead, which errs on the gentle side.
    """

    server_s: float | None = None
    _between: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)

    async def next_request(self) -> None:
        """Before another request in the same slot (a redirect's next hop): the request before
        it ends here, and the host's gap after it is waited out, as between two slots."""
        if self._between is not None:
            await self._between()


@dataclass
class _HostState:
    lock: asyncio.Lock
    next_start: float = 0.0  # monotonic time before which no request may start
    last_end: float | None = None  # when the host's last request ended


class HostPacer:
    """Per-host gaps and exclusivity. Clock, sleep and randomness are injectable for tests."""

    def __init__(self, *, delay_s: float = config.DELAY_S, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep, rng: Callable[[], float] = random.random,
                 slowdown_factor: float = config.SLOWDOWN_FACTOR, stop: threading.Event | None = None):
        self.delay_s = delay_s
        # Set by a signal handler: a wait for a host's slot ends in StopRequested within a
        # second, instead of sleeping out a long pause (a Retry-After may hold a host an hour).
        self.stop = stop
        self.slowdown_factor = slowdown_factor
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self._hosts: dict[str, _HostState] = {}
        self._min_gap: dict[str, float] = {}

    def _state(self, host: str) -> _HostState:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _HostState(lock=asyncio.Lock())
        return state

    def gap_for(self, host: str) -> float:
        return max(self.delay_s, self._min_gap.get(host, 0.0))

    def set_min_gap(self, host: str, seconds: float) -> None:
        """Raise a host's floor (robots Crawl-delay or Request-rate); never lowers it. The
        floor is never capped: a host asking more than a site allows is not crawled instead."""
        self._min_gap[host] = max(self._min_gap.get(host, 0.0), seconds)
        state = self._hosts.get(host)
        if state is not None and state.last_end is not None:
            # The rules come from a request (robots.txt) whose gap was set before they were
            # read: the next request waits the new floor from its end too.
            state.next_start = max(state.next_start, state.last_end + self.gap_for(host))

    def pause(self, host: str, seconds: float) -> None:
        """Hold every request to `host` for `seconds` (Retry-After, block pages)."""
        state = self._state(host)
        state.next_start = max(state.next_start, self.clock() + min(seconds, config.RETRY_AFTER_CAP_S))

    def busy(self, host: str) -> bool:
        state = self._hosts.get(host)
        return bool(state and state.lock.locked())

    def ready_in(self, host: str) -> float:
        """Seconds until `host` may be asked again (0 when it may be asked now)."""
        state = self._hosts.get(host)
        return max(0.0, state.next_start - self.clock()) if state else 0.0

    async def _wait_until(self, moment: float) -> None:
        wait = moment - self.clock()
        if self.stop is None:
            if wait > 0:
                await self.sleep(wait)
            return
        while wait > 0 and not self.stop.is_set():
            await self.sleep(min(wait, STOP_POLL_S))
            wait = moment - self.clock()
        if self.stop.is_set():
            raise StopRequested("stop requested while waiting for the host's gap")

    @asynccontextmanager
    async def slot(self, host: str):
        """Hold the host's one slot for a request; the gap after it starts when it ends.

        Yields a SlotUse: set its server_s to the request's server time so that only the
        server's slowness, not the event loop's, lengthens the gap.
        """
        state = self._state(host)
        async with state.lock:
            await self._wait_until(state.next_start)
            started = self.clock()

            def end_request(use: SlotUse) -> None:
                elapsed = self.clock() - started
                if use.server_s is not None:
                    elapsed = min(max(use.server_s, 0.0), elapsed)
                gap = max(self.gap_for(host), min(self.slowdown_factor * elapsed, config.SLOWDOWN_CAP_S))
                gap *= 1.0 + (config.JITTER_MAX_FACTOR - 1.0) * self.rng()
                state.last_end = self.clock()
                state.next_start = max(state.next_start, state.last_end + gap)

            async def between() -> None:
                nonlocal started
                end_request(use)
                use.server_s = None  # a hop's own server time is not known: its wall time counts
                await self._wait_until(state.next_start)
                started = self.clock()

            use = SlotUse(_between=between)
            try:
                yield use
            finally:
                end_request(use)


class CircuitBreaker:
    """Stops asking a host that keeps failing. After `threshold` consecutive failures the
    circuit opens for `cooldown_s`; then it half-opens: one request goes through, and its
    outcome closes the circuit or opens it again."""

    def __init__(self, *, threshold: int = config.CIRCUIT_FAILURES, cooldown_s: float = config.CIRCUIT_COOLDOWN_S,
                 clock: Clock = time.monotonic):
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}

    def retry_in(self, host: str) -> float:
        """0 when a request to `host` may go out now, else seconds until the circuit half-opens."""
        return max(0.0, self._open_until.get(host, 0.0) - self.clock())

    def success(self, host: str) -> None:
        self._failures.pop(host, None)
        self._open_until.pop(host, None)

    def failure(self, host: str) -> None:
        count = self._failures.get(host, 0) + 1
        self._failures[host] = count
        if count >= self.threshold:
            self._open_until[host] = self.clock() + self.cooldown_s


# --- robots.txt -----------------------------------------------------------------------
def robots_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))


@dataclass(frozen=True)
class RobotsRules:
    """One host's robots.txt verdict, as cached in the archive's robots table."""

    status: int | None  # HTTP status of the robots.txt fetch; None on a network error
    body: str | None
    reason: str | None = None  # why it is what it is ('unreachable', 'unavailable', ...)

    @cached_property  # parsed once per rules, not once per URL asked about
    def _parser(self) -> Protego | None:
        if self.status is not None and 200 <= self.status < 300 and self.body is not None:
            return Protego.parse(self.body)
        return None

    def allows(self, url: str, token: str = config.PRODUCT_TOKEN) -> bool:
        if url.endswith("/robots.txt"):
            return True  # RFC 9309 2.2.2: robots.txt itself is always allowed
        if self.status is None or self.status >= 500 or self.status == 429:
            # unreachable: assume complete disallow (RFC 9309 2.3.1.4); a 429 asks us to wait,
            # not to crawl freely
            return False
        if self.status >= 400:
            return True  # unavailable: crawl freely (2.3.1.3)
        parser = self._parser
        return True if parser is None else parser.can_fetch(url, token)

    def min_gap_s(self, token: str = config.PRODUCT_TOKEN) -> float:
        """The gap robots.txt asks for (Crawl-delay or Request-rate), in full; 0 if none."""
        parser = self._parser
        if parser is None:
            return 0.0
        gap = parser.crawl_delay(token) or 0.0
        rate = parser.request_rate(token)
        if rate and rate.requests:
            gap = max(gap, rate.seconds / rate.requests)
        return float(gap)  # protego reads a Crawl-delay of inf or nan as none


def robots_from_fetch(status: int | None, body: bytes | None) -> tuple[RobotsRules, float]:
    """Turn a robots.txt fetch outcome into rules and how long to trust them (seconds)."""
    if status is None or status >= 500 or status == 429:
        return RobotsRules(status, None, "unreachable"), config.ROBOTS_UNREACHABLE_RETRY_S
    if status >= 400:
        return RobotsRules(status, None, "unavailable"), config.ROBOTS_CACHE_S
    kept = (body or b"")[: config.ROBOTS_MAX_BYTES]
    if len(body or b"") > config.ROBOTS_MAX_BYTES:
        # Parse whole lines only: a rule cut short ("Disallow: /forum.php?mod=post" cut to
        # "Disallow: /") would block far more than it says.
        kept = kept[: kept.rfind(b"\n") + 1]
    return RobotsRules(status, kept.decode("utf-8", "replace")), config.ROBOTS_CACHE_S


def expiry(now_iso: str, seconds: float) -> str:
    return (datetime.fromisoformat(now_iso) + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def parse_http_date(value: str) -> datetime | None:
    """An HTTP date (RFC 9110) as an aware datetime, or None when it is not one."""
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped at 1 h."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() admits '²', which float() refuses
        return min(float(value), config.RETRY_AFTER_CAP_S)
    when = parse_http_date(value)
    if when is None:
        return None
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), config.RETRY_AFTER_CAP_S)


__all__ = ["CircuitBreaker", "HostPacer", "RobotsRules", "SlotUse", "host_of", "parse_http_date", "retry_after_s", "robots_from_fetch", "robots_url"]
