"""The one HTTP seam: every byte the archiver downloads passes through Fetcher.get().

What it guarantees, whatever the server does:
- only http and https; each host name resolved once per request and refused when the address is
  not a public one (loopback, private, link-local, reserved, multicast, shared, IPv4-mapped
  forms), unless the operator named that host; the connection goes to the address checked;
- redirects followed by hand, at most MAX_REDIRECTS, each hop checked again, loops refused;
- a total deadline per fetch on top of httpx's per-operation timeouts (a server dripping a
  byte every few seconds never trips a read timeout);
- raw and decoded bytes capped while streaming; gzip/deflate decoded here, with a bound on
  every decompression step, so a bomb is refused before it is inflated;
- a member's cookies (MemberCookies, from a browser's cookies.txt) go only to the hosts,
  paths and schemes each cookie names, and only while it is current.
Errors are the FetchError subclasses of scraper.errors, each with its reason code.
"""

from __future__ import annotations

import asyncio
import email.message
import functools
import http.cookiejar
import ipaddress
import socket
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit
from urllib.request import Request

import httpx

from scraper import config
from scraper.errors import (
    BadContentType,
    BadURL,
    BlockedAddress,
    ConfigError,
    ConnectError,
    DeadlineExceeded,
    DNSError,
    FetchError,
    FetchTimeout,
    ProtocolError,
    RedirectLoop,
    TooLarge,
    TooManyRedirects,
    UnsupportedScheme,
)

Resolver = Callable[[str, int], Awaitable[list[str]]]

# 100.64.0.0/10 (carrier-grade NAT) is neither private nor global in every Python version.
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_MAX_STACKED_ENCODINGS = 2
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the operating system (getaddrinfo), as a browser would."""
    try:
        # An address literal names itself: getaddrinfo would hand it back after a hop through
        # the executor's thread (~0.1 ms of CPU a request). Other forms (2130706433, 127.1) still
        # go to getaddrinfo, which knows what they mean.
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DNSError(f"cannot resolve {host}: {exc}") from None
    return [info[4][0] for info in infos]


def forbidden_reason(address: str) -> str | None:
    """Why an address must not be contacted, or None when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:  # fec0::/10: deprecated, yet routed inside some networks; Python calls it global
            return "site-local"
        # An IPv6 address that carries an IPv4 one reaches that IPv4 address: 6to4 and Teredo
        # tunnel to it, an IPv4-mapped address is it. Judged as the address it reaches.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    for label, hit in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        # Before private: Python counts 240.0.0.0/4 as private too, which names it wrongly.
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("shared", isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED),
    ):
        if hit:
            return label
    if not ip.is_global:
        return "not global"
    return None


def split_url(url: str) -> SplitResult:
    """urlsplit with the port read too: raises BadURL where urlsplit or the port refuses
    the URL (a port past 65535, a broken IPv6 literal), a ValueError otherwise."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (reading it is the check)
    except ValueError as exc:
        raise BadURL(f"{url[:200]!r}: {exc}") from None
    return parts


def effective_port(parts: SplitResult) -> int:
    """The port a split http(s) URL connects to."""
    return parts.port or (443 if parts.scheme == "https" else 80)


@dataclass
class AddressGuard:
    """Resolves a host once and refuses non-public addresses, except for hosts the operator
    named (allowed_hosts: the demo forum and tests run on 127.0.0.1)."""

    allowed_hosts: frozenset[str] = frozenset()
    resolver: Resolver = system_resolver

    async def check(self, url: str) -> str:
        """Return the address to connect to for `url`, or raise."""
        parts = split_url(url)
        if parts.scheme not in ("http", "https"):
            raise UnsupportedScheme(f"refusing {parts.scheme or 'scheme-less'} URL {url!r}")
        host = parts.hostname
        if not host:
            raise UnsupportedScheme(f"no host in {url!r}")
        addresses = await self.resolver(host, effective_port(parts))
        if not addresses:
            raise DNSError(f"no address for {host}")
        address = addresses[0]
        if host.lower() not in self.allowed_hosts:
            reason = forbidden_reason(address)
            if reason:
                raise BlockedAddress(f"{host} resolves to {address} ({reason})")
        return address


@dataclass
class FetchResult:
    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int
    headers: httpx.Headers
    body: bytes  # decoded of Content-Encoding, capped
    elapsed_ms: int
    raw_bytes: int  # bytes on the wire (compressed)
    redirects: list[str] = field(default_factory=list)
    # The fetch's wall time less the CPU time this thread spent meanwhile, on this fetch or
    # on other tasks of its event loop: the time spent waiting on the server and the network.
    # The pacer's slowdown weighs this, so a busy crawler's loop lag is not blamed on the server.
    server_s: float | None = None  # None: not measured (the pacer then counts wall time)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class _BoundedInflater:
    """gzip/deflate decoding that never produces more than `limit` bytes in total.

    Every decompress call is bounded by what is left of the limit, so a bomb is refused
    after at most `limit` bytes were made, whatever its ratio. Concatenated gzip members
    (legal, RFC 1952) are decoded one after another under the same limit.
    """

    def __init__(self, encoding: str, limit: int, *, truncate: bool = False):
        self.limit = limit
        self.truncate = truncate  # at the limit, stop (full) instead of refusing the body
        self.full = False
        self.produced = 0
        self.gzip = encoding in ("gzip", "x-gzip")
        self.started = False
        self.decomp = self._new(zlib.MAX_WBITS | 16 if self.gzip else zlib.MAX_WBITS)

    @staticmethod
    def _new(wbits: int):
        return zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        pending = data
        while pending:
            try:
                chunk = self.decomp.decompress(pending, self.limit - self.produced + 1)
            except zlib.error:
                if not self.started and not self.gzip:
                    # Some servers send raw deflate without the zlib header.
                    self.decomp = self._new(-zlib.MAX_WBITS)
                    self.started = True
                    continue
                raise ProtocolError("corrupt compressed body") from None
            self.started = True
            self.produced += len(chunk)
            if self.produced > self.limit:
                if not self.truncate:
                    raise TooLarge(f"decoded body exceeds {self.limit} bytes")
                out.append(chunk[: len(chunk) - (self.produced - self.limit)])
                self.produced, self.full = self.limit, True
                break
            out.append(chunk)
            if self.decomp.unconsumed_tail:
                pending = self.decomp.unconsumed_tail
            elif self.decomp.eof and self.decomp.unused_data and self.gzip:
                pending = self.decomp.unused_data
                self.decomp = self._new(zlib.MAX_WBITS | 16)
            else:
                pending = b""
        return b"".join(out)


def _content_encodings(headers: httpx.Headers) -> list[str]:
    value = headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in value.split(",") if c.strip() and c.strip().lower() != "identity"]
    if len(codings) > _MAX_STACKED_ENCODINGS:
        raise ProtocolError(f"{len(codings)} stacked content encodings")
    for coding in codings:
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise ProtocolError(f"unsupported content encoding {coding!r}")
    return codings


class MemberCookies:
    """A forum member's cookies, from a cookies.txt file (the Netscape format browsers' export
    extensions, curl, wget and yt-dlp write), sent so that pages show what the member sees.

    Read once per crawl job, so a file refreshed between runs is picked up. The cookies stay
    in memory: nothing of them is written to the archive. Each request gets exactly the
    cookies a browser would send it (domain, path, secure flag, expiry), by the stdlib's
    cookie policy; the crawler's requests go to the forum's own host alone. Cookies the forum
    sets or renews while the crawl goes are kept and sent back, as a browser does: a forum
    that keeps a session in a cookie (Discuz's sid) would otherwise open a new session, a row
    in its database, for every request.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"cookies file {self.path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cookies file {self.path}: cannot be read: {exc}") from None
        self._jar = http.cookiejar.CookieJar()
        self.expired = 0  # cookies left out as past their expiry
        moment = time.time()
        for number, line in enumerate(text.splitlines(), 1):
            cookie = _cookie_from_line(line, f"cookies file {self.path}, line {number}")
            if cookie is None:
                continue
            if cookie.expires is not None and cookie.expires <= moment:
                self.expired += 1
                continue
            self._jar.set_cookie(cookie)

    def header_for(self, url: str) -> str | None:
        """The Cookie header a browser holding these cookies sends with a GET of `url`."""
        request = Request(url)
        self._jar.add_cookie_header(request)
        return request.get_header("Cookie")

    def update_from(self, url: str, set_cookie: list[str]) -> None:
        """Take in the Set-Cookie headers of the response to a GET of `url`, under the
        stdlib's policy (a cookie for another domain is refused, as a browser refuses it)."""
        if set_cookie:
            self._jar.extract_cookies(_SetCookies(set_cookie), Request(url))

    def names_for(self, url: str) -> list[str]:
        """The names of the cookies that go with `url` (what an operator may be told)."""
        header = self.header_for(url)
        return [pair.split("=", 1)[0] for pair in header.split("; ")] if header else []


class _SetCookies:
    """A response as http.cookiejar reads one: its Set-Cookie headers, through info()."""

    def __init__(self, values: list[str]):
        self._message = email.message.Message()
        for value in values:
            self._message["Set-Cookie"] = value

    def info(self) -> email.message.Message:
        return self._message


def _cookie_from_line(line: str, where: str) -> http.cookiejar.Cookie | None:
    """One cookie of a cookies.txt line (None for a comment or a blank line). Read leniently,
    as exporters differ: expiry 0 is a session cookie (the stdlib's reader drops those as
    expired, and a logged-in browser's login cookie is often one), and the subdomain flag need
    not agree with a leading dot."""
    if line.startswith("#HttpOnly_"):
        line = line[len("#HttpOnly_"):]
    elif not line.strip() or line.lstrip().startswith("#"):
        return None
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != 7:
        raise ConfigError(f"{where}: {len(fields)} tab-separated fields where cookies.txt has 7 "
                          "(domain, subdomains, path, secure, expiry, name, value)")
    domain, subdomains, path, secure, expires, name, value = fields
    if not domain or not expires.isdigit():
        raise ConfigError(f"{where}: a cookie needs a domain and an expiry in seconds (0: for the session)")
    expiry = int(expires) or None
    return http.cookiejar.Cookie(
        version=0, name=name, value=value, port=None, port_specified=False, domain=domain.lower(),
        domain_specified=subdomains.upper() == "TRUE" or domain.startswith("."),
        domain_initial_dot=domain.startswith("."), path=path or "/", path_specified=True,
        secure=secure.upper() == "TRUE", expires=expiry, discard=expiry is None, comment=None, comment_url=None,
        rest={})


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process: loading the CA bundle takes
    ~50 ms, which every Fetcher (one per crawl job) would otherwise pay again."""
    return httpx.create_ssl_context(trust_env=False)


class Fetcher:
    """GET with every guard on. One instance per crawl; close it with aclose()."""

    def __init__(
        self,
        *,
        user_agent: str,
        guard: AddressGuard | None = None,
        max_body_bytes: int = config.MAX_BODY_BYTES,
        deadline_s: float = config.FETCH_DEADLINE_S,
        connect_timeout_s: float = config.CONNECT_TIMEOUT_S,
        read_timeout_s: float = config.READ_TIMEOUT_S,
        max_redirects: int = config.MAX_REDIRECTS,
        transport: httpx.AsyncBaseTransport | None = None,
        cookies: MemberCookies | None = None,
    ):
        self.user_agent = user_agent
        self.cookies = cookies
        self.guard = guard or AddressGuard()
        self.max_body_bytes = max_body_bytes
        self.deadline_s = deadline_s
        self.max_redirects = max_redirects
        timeout = httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=read_timeout_s,
                                pool=read_timeout_s)
        self._client = httpx.AsyncClient(
            http2=transport is None,
            verify=_ssl_context(),
            timeout=timeout,
            follow_redirects=False,  # each hop is checked by the guard
            trust_env=False,  # no proxy from the environment can bypass the address guard
            transport=transport,
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        self.requests_made = 0  # HTTP requests sent, for "every attempt is recorded" checks

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        accept_types: Iterable[str] | None = config.ACCEPTED_CONTENT_TYPES,
        max_bytes: int | None = None,
        max_redirects: int | None = None,
        check_redirect: Callable[[str], None] | None = None,
        before_hop: Callable[[], Awaitable[None]] | None = None,
        truncate: bool = False,
    ) -> FetchResult:
        """Fetch `url`, following redirects by hand. Raises a FetchError subclass on failure.

        A non-2xx final status is returned, not raised: the caller records it.
        check_redirect(target) is called before each redirect is followed, and refuses it by
        raising a FetchError (the crawler keeps a page's redirects on its forum's host).
        before_hop() is awaited before each redirect's request is sent (the crawler waits out
        the host's gap there: a hop is a request like any other).
        truncate: a body longer than max_bytes is cut there instead of refused (robots.txt:
        RFC 9309 2.5 has a crawler read at least the first 500 KiB of a longer file).
        """
        started = time.monotonic()
        cpu_started = time.thread_time()
        try:
            async with asyncio.timeout(self.deadline_s) as deadline:
                paced_hop = None
                if before_hop is not None:
                    async def paced_hop() -> None:
                        # The wait for the host's gap is no time the server took: the deadline,
                        # for the response, moves on by it (a Crawl-delay of 45 s failed every redirect).
                        nonlocal started
                        waited_from = time.monotonic()
                        await before_hop()
                        waited = time.monotonic() - waited_from
                        deadline.reschedule(deadline.when() + waited)
                        started += waited
                result = await self._get(url, headers or {}, accept_types, max_bytes or self.max_body_bytes,
                                         self.max_redirects if max_redirects is None else max_redirects, started,
                                         check_redirect, paced_hop, truncate)
        except TimeoutError:
            raise DeadlineExceeded(f"no complete response within {self.deadline_s:g} s") from None
        result.elapsed_ms = int((time.monotonic() - started) * 1000)  # the hops' waits left out
        # While the loop runs other tasks, their CPU time passes on the wall clock too; what is
        # left is time no code of this thread ran, i.e. waiting. A lower bound of the server's
        # time: exact when the loop is otherwise idle, short when it was busy while the server
        # worked. (A blocking call elsewhere on the loop, sleep or disk wait, still counts.)
        result.server_s = max(0.0, (time.monotonic() - started) - (time.thread_time() - cpu_started))
        return result

    async def _get(self, url, headers, accept_types, max_bytes, max_redirects, started,
                   check_redirect: Callable[[str], None] | None,
                   before_hop: Callable[[], Awaitable[None]] | None, truncate: bool) -> FetchResult:
        seen = {url}
        redirects: list[str] = []
        current = url
        while True:
            try:
                address = await self.guard.check(current)
                result = await self._request_once(current, address, headers, accept_types, max_bytes, truncate)
            except FetchError as exc:
                exc.after_redirect = bool(redirects)
                raise
            if result.status not in _REDIRECT_STATUSES:
                result.url, result.redirects = url, redirects
                result.elapsed_ms = int((time.monotonic() - started) * 1000)
                return result
            location = result.headers.get("location")
            if not location:
                raise ProtocolError(f"HTTP {result.status} without Location")
            try:
                target = urljoin(current, location.strip())
            except ValueError as exc:
                raise BadURL(f"Location {location[:200]!r}: {exc}") from None
            if check_redirect is not None:
                check_redirect(target)
            if target in seen:
                raise RedirectLoop(f"redirect loop back to {target}")
            if len(redirects) >= max_redirects:
                raise TooManyRedirects(f"more than {max_redirects} redirects from {url}")
            seen.add(target)
            redirects.append(target)
            current = target
            if before_hop is not None:
                await before_hop()

    async def _request_once(self, url, address, headers, accept_types, max_bytes, truncate=False) -> FetchResult:
        parts = urlsplit(url)
        host_header = parts.netloc.rsplit("@", 1)[-1]
        ip_host = f"[{address}]" if ":" in address else address
        netloc = f"{ip_host}:{parts.port}" if parts.port else ip_host
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        request_headers = {"Host": host_header, **headers}
        # By the URL's own host name: the request itself goes to the address checked.
        cookie = self.cookies.header_for(url) if self.cookies is not None else None
        if cookie:
            # An explicit header leaves out httpx's own jar, which keys cookies by the address
            # the request goes to; the forum's own cookies are in MemberCookies (update_from).
            request_headers["Cookie"] = cookie
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        self.requests_made += 1
        try:
            request = self._client.build_request("GET", pinned, headers=request_headers, extensions=extensions)
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise FetchTimeout(f"{type(exc).__name__} on {url}") from None
        except httpx.ConnectError as exc:
            raise ConnectError(f"cannot connect to {parts.hostname}: {exc}") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise ProtocolError(f"{type(exc).__name__} on {url}: {exc}") from None
        if self.cookies is not None:
            self.cookies.update_from(url, response.headers.get_list("set-cookie"))
        try:
            return await self._read(url, response, accept_types, max_bytes, truncate)
        finally:
            await response.aclose()

    async def _read(self, url, response: httpx.Response, accept_types, max_bytes, truncate=False) -> FetchResult:
        status = response.status_code
        headers = response.headers
        declared = headers.get("content-length")
        if not truncate and declared and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"Content-Length {declared} exceeds {max_bytes}")
        if status == 200 and accept_types is not None:
            mime = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if mime and mime not in accept_types:
                raise BadContentType(f"{mime} is not a page type ({', '.join(accept_types)})")
        if status in _REDIRECT_STATUSES or status == 304:
            body = b""  # no content to keep; error bodies are read to recognise challenge pages
        else:
            body = await self._read_body(response, max_bytes, truncate=truncate)
        return FetchResult(url=url, final_url=url, status=status, headers=headers, body=body, elapsed_ms=0,
                           raw_bytes=response.num_bytes_downloaded)

    async def _read_body(self, response: httpx.Response, max_bytes: int, *, truncate: bool = False) -> bytes:
        inflaters = [_BoundedInflater(c, max_bytes, truncate=truncate)
                     for c in reversed(_content_encodings(response.headers))]
        chunks: list[bytes] = []
        total = 0
        try:
            async for raw in response.aiter_raw():
                if response.num_bytes_downloaded > max_bytes:
                    if truncate:
                        break
                    raise TooLarge(f"body exceeds {max_bytes} bytes on the wire")
                data = raw
                for inflater in inflaters:
                    data = inflater.feed(data)
                total += len(data)
                chunks.append(data)
                if total > max_bytes or any(inflater.full for inflater in inflaters):
                    if truncate:
                        break
                    raise TooLarge(f"body exceeds {max_bytes} bytes")
        except httpx.TimeoutException:
            raise FetchTimeout("timed out reading the body") from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise ProtocolError(f"body cut short: {exc}") from None
        body = b"".join(chunks)
        return body[:max_bytes] if truncate else body
