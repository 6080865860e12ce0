"""Pacing and robots.txt rules, with an injected clock so no test waits for real."""

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from scraper import config
from scraper.politeness import CircuitBreaker, HostPacer, RobotsRules, retry_after_s, robots_from_fetch


class FakeClock:
    """A clock that only moves when the code under test sleeps or a request 'takes' time."""

    def __init__(self):
        self.now = 1000.0
        self.starts: list[tuple[str, float]] = []
        self.slept: list[float] = []  # each sleep that waited (of more than 0 s)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


async def _request(pacer, clock, host, duration_s=0.1):
    async with pacer.slot(host):
        clock.starts.append((host, clock.now))
        clock.now += duration_s
        await asyncio.sleep(0)


@pytest.mark.parametrize("rng_value", [0.0, 0.5, 0.999])
async def test_no_two_requests_to_a_host_closer_than_the_delay(rng_value):
    clock = FakeClock()
    pacer = HostPacer(delay_s=3.0, clock=clock, sleep=clock.sleep, rng=lambda: rng_value)
    await asyncio.gather(*(_request(pacer, clock, "bbs.example.cn") for _ in range(10)))
    starts = [t for _, t in clock.starts]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 10
    assert min(gaps) >= 3.0 + 0.1 - 1e-9  # the gap is counted from the end of the previous request
    assert max(gaps) <= 3.0 * config.JITTER_MAX_FACTOR + 0.1 + 1e-9


async def test_hosts_are_paced_independently():
    clock = FakeClock()
    pacer = HostPacer(delay_s=3.0, clock=clock, sleep=clock.sleep, rng=lambda: 0.0)
    await asyncio.gather(_request(pacer, clock, "a.example"), _request(pacer, clock, "b.example"))
    assert [t for _, t in clock.starts] == [1000.0, 1000.1]  # b waited only for the event loop turn


async def test_crawl_delay_raises_the_floor_in_full():
    clock = FakeClock()
    pacer = HostPacer(delay_s=1.0, clock=clock, sleep=clock.sleep, rng=lambda: 0.0)
    pacer.set_min_gap("h", 10.0)
    pacer.set_min_gap("h", 2.0)  # never lowers it
    assert pacer.gap_for("h") == 10.0
    # Capped at 60 s, an hour asked for was paced at a minute: 60 times faster than asked.
    pacer.set_min_gap("slow", 3600)
    assert pacer.gap_for("slow") == 3600


async def test_a_floor_raised_after_a_request_holds_the_next_one_from_its_end():
    # robots.txt is itself a request to the host: its Crawl-delay is read after its gap was
    # set, and the first page went 1 s after it where 30 s were asked.
    clock = FakeClock()
    pacer = HostPacer(delay_s=1.0, clock=clock, sleep=clock.sleep, rng=lambda: 0.0, slowdown_factor=0)
    await _request(pacer, clock, "h")
    pacer.set_min_gap("h", 30.0)
    await _request(pacer, clock, "h")
    assert clock.starts[1][1] - clock.starts[0][1] == pytest.approx(30.1)


async def test_slow_responses_lengthen_the_gap():  # 5 x the response time, as Heritrix does
    clock = FakeClock()
    pacer = HostPacer(delay_s=1.0, clock=clock, sleep=clock.sleep, rng=lambda: 0.0)
    await _request(pacer, clock, "h", duration_s=2.0)  # 5 x 2 s = 10 s gap
    await _request(pacer, clock, "h")
    assert clock.starts[1][1] - clock.starts[0][1] == pytest.approx(12.0)


async def test_pause_holds_the_host_for_retry_after():
    clock = FakeClock()
    pacer = HostPacer(delay_s=1.0, clock=clock, sleep=clock.sleep, rng=lambda: 0.0)
    await _request(pacer, clock, "h")
    pacer.pause("h", 120)
    await _request(pacer, clock, "h")
    assert clock.starts[1][1] - clock.starts[0][1] >= 120


def test_retry_after_forms():
    assert retry_after_s("120") == 120
    assert retry_after_s("999999") == config.RETRY_AFTER_CAP_S
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_s(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after_s("soon") is None
    # A digit of another script (a Latin-1 byte 0xB2 is '²') is no number: not a crash.
    assert retry_after_s("\xb2") is None and retry_after_s("١٢٠") is None


ROBOTS = b"""
User-agent: *
Disallow: /api/
Disallow: /forum.php?mod=redirect
Allow: /api/public/
Crawl-delay: 7

User-agent: forum-archiver
Disallow: /private/
Allow: /private/open
Request-rate: 1/20
"""


def test_robots_2xx_rules_longest_match_and_own_group():
    rules, ttl = robots_from_fetch(200, ROBOTS)
    assert ttl == config.ROBOTS_CACHE_S
    # Our product token has its own group: the * group does not apply to us.
    assert rules.allows("http://h/api/x")
    assert not rules.allows("http://h/private/x")
    assert rules.allows("http://h/private/open")  # longest match wins
    assert rules.min_gap_s() == 20.0
    assert not rules.allows("http://h/api/x", token="otherbot")
    assert rules.allows("http://h/api/public/x", token="otherbot")
    assert rules.min_gap_s(token="otherbot") == 7.0


def test_robots_4xx_allows_all_5xx_disallows_all():
    unavailable, _ = robots_from_fetch(404, None)
    unreachable, ttl = robots_from_fetch(500, None)
    network_error, _ = robots_from_fetch(None, None)
    assert unavailable.allows("http://h/anything")
    assert not unreachable.allows("http://h/anything")
    assert not network_error.allows("http://h/anything")
    assert ttl == config.ROBOTS_UNREACHABLE_RETRY_S
    assert unreachable.allows("http://h/robots.txt")  # robots.txt itself is always allowed


def test_robots_429_disallows_until_asked_again():
    # A rate limit on robots.txt asks us to wait, not to crawl freely for a day.
    rules, ttl = robots_from_fetch(429, None)
    assert not rules.allows("http://h/anything") and ttl == config.ROBOTS_UNREACHABLE_RETRY_S


def test_robots_past_the_cap_is_parsed_to_its_last_whole_line():
    head = b"User-agent: *\nDisallow: /forum.php?mod=post\n"
    filler = b"#" * (config.ROBOTS_MAX_BYTES - len(head) - len(b"\nDisallow: /"))
    body = head + filler + b"\nDisallow: /forum.php?mod=spacecp\n"  # the cap falls inside this rule
    rules, _ = robots_from_fetch(200, body)
    assert rules.allows("http://h/forum.php?mod=viewthread&tid=1")
    assert not rules.allows("http://h/forum.php?mod=post&action=reply")


def test_robots_parses_at_least_500_kib():
    filler = b"# padding\n" * (500 * 1024 // 10)
    rules, _ = robots_from_fetch(200, filler + b"User-agent: *\nDisallow: /late/\n")
    assert not rules.allows("http://h/late/x")


def test_robots_rules_round_trip_as_stored():
    rules, _ = robots_from_fetch(200, ROBOTS)
    again = RobotsRules(rules.status, rules.body, rules.reason)
    assert again.allows("http://h/private/open") and not again.allows("http://h/private/x")


def test_robots_body_is_parsed_once_per_rules(monkeypatch):
    from scraper import politeness

    urls = ["http://h/api/x", "http://h/private/x", "http://h/private/open", "http://h/"] * 5
    fresh, _ = robots_from_fetch(200, ROBOTS)
    expected = [RobotsRules(fresh.status, fresh.body).allows(u) for u in urls]  # a new parse per answer
    calls = []
    real_parse = politeness.Protego.parse
    monkeypatch.setattr(politeness.Protego, "parse", lambda body: calls.append(body) or real_parse(body))
    rules, _ = robots_from_fetch(200, ROBOTS)
    assert [rules.allows(u) for u in urls] == expected
    assert rules.min_gap_s() == 20.0
    assert len(calls) == 1


def test_circuit_opens_then_half_opens():
    clock = FakeClock()
    circuit = CircuitBreaker(threshold=3, cooldown_s=600, clock=clock)
    for _ in range(2):
        circuit.failure("h")
    assert circuit.retry_in("h") == 0
    circuit.failure("h")
    assert circuit.retry_in("h") == 600
    clock.now += 600
    assert circuit.retry_in("h") == 0  # half-open: one request may go
    circuit.failure("h")  # it failed: open again at once
    assert circuit.retry_in("h") == 600
    clock.now += 600
    circuit.success("h")
    circuit.failure("h")
    assert circuit.retry_in("h") == 0  # closed: counting starts over
