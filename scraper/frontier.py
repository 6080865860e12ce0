"""URL canonicalisation and crawler-trap rules for the frontier.

Two URLs that show the same content must share one frontier key, or the crawl re-fetches
pages and a forum's endless variants (session ids, highlight=, ordertype=) grow the queue
forever. Discuz prints each thread page in two forms (thread-T-P-1.html and
forum.php?mod=viewthread&tid=T&page=P): both map to the key 'thread:T:P'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from scraper import config
from scraper.engines.base import Engine, PageKind
from scraper.errors import BadURL, TrapDetected

# Parameters that never change what a page shows: session ids, search highlights, sort order,
# Discuz's anti-scraping signature and its "where you came from" trail.
IGNORED_PARAMS = frozenset({
    "sid", "s", "phpsessid", "jsessionid", "formhash", "extra", "highlight", "ordertype", "_dsign",
    "fromuid", "from", "frommodblock", "mobile", "utm_source", "utm_medium", "utm_campaign",
})
_REPEATED_SEGMENT = re.compile(r"(/[^/]+)\1{2,}")  # /a/a/a: a path that keeps repeating


def canonicalize(url: str, *, sort_params: bool = True) -> str:
    """Normal form of a URL: lower-case scheme and host, no default port, no fragment, no
    ignored parameters, parameters sorted (for keys; the URL fetched keeps the site's order,
    which robots.txt rules such as /forum.php?mod=redirect are written against)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError as exc:  # a port past 65535, or not a number: refused like any bad URL
        raise BadURL(f"{url[:200]!r}: {exc}") from None
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in IGNORED_PARAMS]
    if sort_params:
        query.sort()
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


# Parameters that narrow what a thread or board page lists: one author's posts (Discuz's
# "只看该作者"), one category's threads, another order or time window. Such a page's key names
# the whole page, so the URL fetched for the key drops them: else a copied "only this author"
# link would archive that author's posts as the whole thread, on every later visit too.
VIEW_FILTER_PARAMS = frozenset({"authorid", "filter", "typeid", "sortid", "orderby", "dateline", "specialtype"})


@dataclass(frozen=True)
class FrontierEntry:
    url: str  # the URL to fetch: cleaned, in the site's own URL style and parameter order
    key: str  # the identity of the content: thread:T:P, board:F:P or url:<canonical>
    kind: PageKind


def entry_for(url: str, engine: Engine) -> FrontierEntry:
    """Classify and key a URL, refusing the shapes that trap crawlers."""
    canonical = canonicalize(url)
    fetch_url = canonicalize(url, sort_params=False)
    if len(canonical) > config.MAX_URL_LENGTH:
        raise TrapDetected("url_length", f"URL longer than {config.MAX_URL_LENGTH} characters")
    if _REPEATED_SEGMENT.search(urlsplit(canonical).path):
        raise TrapDetected("repeated_path", f"path repeats a segment: {canonical}")
    for kind, ref in ((PageKind.THREAD, engine.thread_ref), (PageKind.BOARD, engine.board_ref)):
        found = ref(canonical)
        if found:
            ident, page = found
            if page > config.MAX_PAGES_PER_THREAD:
                raise TrapDetected("page_ceiling", f"page {page} of {kind} {ident}")
            return FrontierEntry(_without_params(fetch_url, VIEW_FILTER_PARAMS), f"{kind}:{ident}:{page}", kind)
    return FrontierEntry(fetch_url, f"url:{canonical}", engine.url_kind(canonical))


def _without_params(url: str, names: frozenset[str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in names]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def sibling_page_url(url: str, engine: Engine, page: int) -> str:
    """The URL of another page of the same thread or board, in the URL style `url` uses
    (a site without rewrite rules has no thread-T-P-1.html pages)."""
    parts = urlsplit(url)
    thread = engine.thread_ref(url)
    board = None if thread else engine.board_ref(url)
    folder = parts.path[: parts.path.rfind("/") + 1]
    if re.search(r"/(?:thread|forum)-\d+-\d+(?:-\d+)?\.html$", parts.path):
        name = f"thread-{thread[0]}-{page}-1.html" if thread else f"forum-{board[0]}-{page}.html"
        return urlunsplit((parts.scheme, parts.netloc, folder + name, "", ""))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "page"]
    query.append(("page", str(page)))
    return canonicalize(urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), "")), sort_params=False)
