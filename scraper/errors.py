"""One exception tree. Every error carries a stable reason code that is stored with the
fetch or frontier row it ended, so the archive can say why a URL was not saved."""

from __future__ import annotations


class ArchiverError(Exception):
    """Base of every error this project raises on purpose."""

    reason = "error"

    def __init__(self, message: str = "", *, reason: str | None = None):
        super().__init__(message or self.reason)
        if reason is not None:
            self.reason = reason


# --- configuration and input ----------------------------------------------------------
class ConfigError(ArchiverError):
    reason = "config_error"


# --- fetching -------------------------------------------------------------------------
class FetchError(ArchiverError):
    """A request that did not produce a usable response. after_redirect: it failed on a
    redirect's hop, not on the URL asked for."""

    reason = "fetch_error"
    retryable = False
    after_redirect = False


class UnsupportedScheme(FetchError):
    reason = "unsupported_scheme"


class BadURL(FetchError):
    """A URL that cannot be requested at all: a port out of range, a broken IPv6 literal."""

    reason = "bad_url"


class OffsiteRedirect(FetchError):
    """A page redirected off its forum's host: what it leads to is not this site's to save.
    final_url names where it led (a forum that moved says so here)."""

    reason = "offsite_redirect"

    def __init__(self, message: str = "", *, final_url: str):
        super().__init__(message)
        self.final_url = final_url


class BlockedAddress(FetchError):
    """The host resolves to an address this crawler must not reach (SSRF guard)."""

    reason = "blocked_address"


class DNSError(FetchError):
    reason = "dns_error"
    retryable = True


class ConnectError(FetchError):
    reason = "connect_error"
    retryable = True


class FetchTimeout(FetchError):
    reason = "timeout"
    retryable = True


class DeadlineExceeded(FetchError):
    reason = "deadline"
    retryable = True


class TooLarge(FetchError):
    reason = "too_large"


class TooManyRedirects(FetchError):
    reason = "too_many_redirects"


class RedirectLoop(FetchError):
    reason = "redirect_loop"


class BadContentType(FetchError):
    reason = "bad_content_type"


class ProtocolError(FetchError):
    reason = "protocol_error"
    retryable = True


class HTTPStatusError(FetchError):
    """A final response whose status means no content (4xx, 5xx)."""

    RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})

    def __init__(self, status: int, message: str = ""):
        self.status = status
        self.retryable = status in self.RETRYABLE
        super().__init__(message or f"HTTP {status}", reason=f"http_{status}")


class RobotsDisallowed(FetchError):
    reason = "robots_disallowed"


class CrawlDelayOverLimit(FetchError):
    """robots.txt asks a longer gap between requests than the site's max_crawl_delay_s."""

    reason = "crawl_delay_over_limit"


class HostCircuitOpen(FetchError):
    reason = "circuit_open"


# --- crawl rules ----------------------------------------------------------------------
class TrapDetected(ArchiverError):
    """A URL refused by a crawler-trap rule; reason is 'trap:<rule>'."""

    def __init__(self, rule: str, message: str = ""):
        self.rule = rule
        super().__init__(message or rule, reason=f"trap:{rule}")


class StopRequested(ArchiverError):
    """A stop (SIGTERM, SIGINT) came while a request waited for its host's gap: the request is
    not made, and its URL goes back to the queue as it was."""

    reason = "stopped"


# --- content --------------------------------------------------------------------------
class ImportConflict(ArchiverError):
    """A text rendering whose posts would be filed over other posts of the archive."""

    reason = "import_conflict"


class ParseError(ArchiverError):
    """The only exception a parser may raise on bad input."""

    reason = "parse_error"


class BlockPage(ArchiverError):
    """A page that must never be stored as content: notice, login wall, anti-scraping script,
    or a generic challenge. reason is 'blocked:<kind>'."""

    def __init__(self, kind: str, message: str = ""):
        self.kind = kind
        super().__init__(message or kind, reason=f"blocked:{kind}")
