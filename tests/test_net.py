"""The network seam against a real misbehaving server on 127.0.0.1."""

import asyncio
import socket
import time
import tracemalloc

import pytest

from scraper.errors import (
    BadContentType,
    BlockedAddress,
    DeadlineExceeded,
    ProtocolError,
    RedirectLoop,
    TooLarge,
    TooManyRedirects,
    UnsupportedScheme,
)
from scraper.net import AddressGuard, Fetcher, forbidden_reason
from tests.misbehaving import MisbehavingServer

UA = "forum-archiver-tests"


@pytest.fixture
def server():
    with MisbehavingServer() as srv:
        yield srv


def fetcher(allowed=("127.0.0.1",), **kwargs):
    return Fetcher(user_agent=UA, guard=AddressGuard(allowed_hosts=frozenset(allowed)), **kwargs)


async def test_plain_fetch(server):
    f = fetcher()
    try:
        result = await f.get(server.url("/ok"))
    finally:
        await f.aclose()
    assert result.status == 200
    assert b"ok" in result.body


async def test_loopback_is_refused_unless_named(server):
    f = fetcher(allowed=())
    try:
        with pytest.raises(BlockedAddress):
            await f.get(server.url("/ok"))
    finally:
        await f.aclose()
    assert server.hits == []  # not one connection was made


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/ok",
        "http://[::ffff:127.0.0.1]:{port}/ok",
        "http://2130706433:{port}/ok",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
async def test_redirects_to_forbidden_addresses_make_no_connection(target):
    # The crawl's host is allowed; the redirect target is another address: refused.
    with MisbehavingServer("127.0.0.1") as origin, MisbehavingServer("127.0.0.2") as forbidden:
        f = fetcher(allowed=("127.0.0.1",))
        try:
            with pytest.raises(BlockedAddress):
                await f.get(origin.url("/redirect?to=" + target.format(port=forbidden.port)))
        finally:
            await f.aclose()
        assert forbidden.hits == []


async def test_file_scheme_redirect_is_refused(server):
    f = fetcher()
    try:
        with pytest.raises(UnsupportedScheme):
            await f.get(server.url("/redirect?to=file:///etc/passwd"))
    finally:
        await f.aclose()


async def test_each_request_connects_to_the_address_its_check_resolved(server):
    # forum.test is known to this resolver alone (.test never resolves in DNS): a client that
    # resolved the name again by itself, instead of connecting to the checked address, fails.
    calls = []

    async def resolver(host, port):
        calls.append(host)
        return ["127.0.0.1"]

    f = Fetcher(user_agent=UA, guard=AddressGuard(allowed_hosts=frozenset({"forum.test"}), resolver=resolver),
                deadline_s=2)
    try:
        first = await f.get("http://forum.test:%d/ok" % server.port)
        second = await f.get("http://forum.test:%d/ok" % server.port)
    finally:
        await f.aclose()
    assert (first.status, second.status) == (200, 200)
    assert calls == ["forum.test", "forum.test"]  # resolved and checked for each request
    assert server.hits == ["/ok", "/ok"]


async def test_a_rebinding_resolver_is_checked_on_every_request(server):
    answers = iter(["10.1.2.3", "127.0.0.1"])

    async def rebinding(host, port):
        return [next(answers)]

    f = Fetcher(user_agent=UA, guard=AddressGuard(resolver=rebinding), deadline_s=2)
    try:
        with pytest.raises(BlockedAddress, match="10.1.2.3"):
            await f.get("http://forum.test:%d/ok" % server.port)
        with pytest.raises(BlockedAddress, match="127.0.0.1"):
            await f.get("http://forum.test:%d/ok" % server.port)
    finally:
        await f.aclose()
    assert server.hits == []


@pytest.mark.parametrize(
    ("path", "error"),
    [("/loop-a", RedirectLoop), ("/chain/0", TooManyRedirects)],
)
async def test_redirect_traps(server, path, error):
    f = fetcher()
    try:
        with pytest.raises(error):
            await f.get(server.url(path))
    finally:
        await f.aclose()
    assert len(server.hits) <= 6


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/drip", DeadlineExceeded),
        ("/hang-after-headers", DeadlineExceeded),
        ("/huge-chunked", TooLarge),
        ("/wrong-content-length", ProtocolError),
    ],
)
async def test_slow_and_broken_bodies_end_within_the_deadline(server, path, error):
    deadline_s = 1.0
    f = fetcher(deadline_s=deadline_s, read_timeout_s=5.0, max_body_bytes=1024 * 1024)
    started = time.monotonic()
    try:
        with pytest.raises(error):
            await f.get(server.url(path))
    finally:
        await f.aclose()
    assert time.monotonic() - started < deadline_s + 1


@pytest.mark.parametrize("kind", ["gzip", "deflate", "gzip-in-gzip", "gzip-members"])
async def test_decompression_bombs_are_refused_in_bounded_memory(server, kind):
    cap = 8 * 1024 * 1024
    f = fetcher(max_body_bytes=cap, deadline_s=30)
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            await f.get(server.url(f"/bomb/{kind}"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await f.aclose()
    assert peak < cap + 64 * 1024 * 1024


async def test_non_html_pages_are_refused(server):
    f = fetcher()
    try:
        with pytest.raises(BadContentType):
            await f.get(server.url("/plain"))
        robots_style = await f.get(server.url("/plain"), accept_types=None)
    finally:
        await f.aclose()
    assert robots_style.body == b"just text"


async def test_error_statuses_are_returned_not_raised(server):
    f = fetcher()
    try:
        result = await f.get(server.url("/status/503?retry_after=7"))
    finally:
        await f.aclose()
    assert result.status == 503
    assert result.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("fd00::1", "private"),
        ("fe80::1", "link-local"),
        # Tunnels to an IPv4 address are judged as that address (Python calls these global).
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254, the metadata address
        ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
        ("fec0::1", "site-local"),
    ],
)
def test_forbidden_addresses(address, reason):
    assert forbidden_reason(address) == reason


def test_public_addresses_pass():
    assert forbidden_reason("93.184.216.34") is None
    assert forbidden_reason("2606:2800:220:1:248:1893:25c8:1946") is None
    assert forbidden_reason("2002:5db8:d822::1") is None  # 6to4 of the public 93.184.216.34


def test_integer_host_resolves_to_loopback():
    # 2130706433 is 127.0.0.1 to getaddrinfo: the guard checks what it resolves to.
    assert socket.gethostbyname("2130706433") == "127.0.0.1"
    assert asyncio.run(AddressGuard().resolver("2130706433", 80)) == ["127.0.0.1"]


class _ImportRecorder:
    """A meta path finder that only records what the import system was asked to find."""

    def __init__(self):
        self.names = []

    def find_spec(self, name, path=None, target=None):
        self.names.append(name)
        return None  # let the real finders answer


async def test_requests_import_nothing(server):
    # httpcore imports sniffio on every lock and cancellation shield; were it missing, each
    # request would search sys.path for it several times (~0.6 ms of CPU per page).
    import sys

    f = fetcher()
    recorder = _ImportRecorder()
    try:
        await f.get(server.url("/ok"))  # connection set up, lazy imports done
        sys.meta_path.insert(0, recorder)
        try:
            for _ in range(5):
                await f.get(server.url("/ok"))
        finally:
            sys.meta_path.remove(recorder)
    finally:
        await f.aclose()
    assert recorder.names == []


def test_address_literals_skip_getaddrinfo_names_do_not():
    from concurrent.futures import ThreadPoolExecutor

    from scraper.net import system_resolver

    class CountingExecutor(ThreadPoolExecutor):
        submitted = 0

        def submit(self, *args, **kwargs):
            self.submitted += 1
            return super().submit(*args, **kwargs)

    async def resolve(host):
        executor = CountingExecutor(max_workers=1)
        asyncio.get_running_loop().set_default_executor(executor)
        return await system_resolver(host, 80), executor.submitted

    assert asyncio.run(resolve("127.0.0.2")) == (["127.0.0.2"], 0)
    assert asyncio.run(resolve("0:0:0:0:0:0:0:1")) == (["::1"], 0)
    # Not literals in the strict form: what they mean is getaddrinfo's to say (and the guard's to check).
    assert asyncio.run(resolve("2130706433")) == (["127.0.0.1"], 1)
    assert asyncio.run(resolve("localhost"))[1] == 1


async def test_a_declared_length_past_the_cap_is_refused_before_any_body_is_read(server):
    f = fetcher()
    started = time.monotonic()
    try:
        with pytest.raises(TooLarge, match="Content-Length"):
            await f.get(server.url("/declared-huge"))
    finally:
        await f.aclose()
    assert time.monotonic() - started < 2  # the server sends nothing: only the header could tell
