"""Every default in one place, with units in the names.

A site config may only make politeness settings gentler (longer delays, fewer requests);
the operator can override that on the command line. Nothing else in the code base holds a
magic number for timing, size or retry behaviour.
"""

from __future__ import annotations

from scraper import __version__

# --- identity -------------------------------------------------------------------------
PRODUCT_TOKEN = "forum-archiver"  # robots.txt groups are matched on this token
DEFAULT_CONTACT_URL = "https://github.com/forum-archiver/forum-archiver"


def user_agent(contact_url: str | None = None) -> str:
    """The User-Agent sent with every request: names the project and a contact URL."""
    return f"{PRODUCT_TOKEN}/{__version__} (+{contact_url or DEFAULT_CONTACT_URL})"


# --- politeness -----------------------------------------------------------------------
DELAY_S = 3.0  # minimum gap between two requests to one host (one request in flight per host, always)
JITTER_MAX_FACTOR = 1.5  # jitter only lengthens a gap, up to this factor
# robots.txt's Crawl-delay / Request-rate is always honoured in full; a site asking more than
# this gap is not crawled at all (its URLs are skipped as crawl_delay_over_limit) unless its
# config raises [politeness] max_crawl_delay_s: a crawl that slow is the operator's call.
MAX_CRAWL_DELAY_S = 60.0
RETRY_AFTER_CAP_S = 3600.0  # Retry-After honoured up to one hour
MAX_TRIES_PER_RUN = 3  # tries of one URL within one run
BACKOFF_BASE_S = 2.0  # first retry waits about this long, doubling after
BACKOFF_CAP_S = 300.0
BLOCK_PAUSE_S = 60.0  # a block page (notice, login wall, challenge) holds the host this long
CIRCUIT_FAILURES = 5  # consecutive failures that open a host's circuit
CIRCUIT_COOLDOWN_S = 600.0  # an open circuit half-opens (lets one request through) after this
# A response whose server time was t earns a gap of up to SLOWDOWN_FACTOR * t (Heritrix's
# delayFactor), capped: a struggling server is given room, a fast one keeps the floor.
SLOWDOWN_FACTOR = 5.0
SLOWDOWN_CAP_S = 30.0

# --- robots.txt (RFC 9309) ------------------------------------------------------------
ROBOTS_CACHE_S = 24 * 3600  # a fetched robots.txt is trusted for 24 h
ROBOTS_UNREACHABLE_RETRY_S = 3600  # after 5xx/network error: disallow all, retry in 1 h
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks to parse at least 500 KiB
ROBOTS_MAX_REDIRECTS = 5

# --- fetch limits ---------------------------------------------------------------------
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 20.0
FETCH_DEADLINE_S = 60.0  # total per fetch: a server dripping bytes cannot hold a slot
MAX_BODY_BYTES = 8 * 1024 * 1024  # raw and decoded, each, per HTML page
MAX_REDIRECTS = 5
MAX_URL_LENGTH = 2048
ACCEPTED_CONTENT_TYPES = ("text/html", "application/xhtml+xml")

# --- encodings ------------------------------------------------------------------------
META_CHARSET_SCAN_BYTES = 4096  # look for <meta charset> in the first 4 KB
DEFAULT_ENCODING = "utf-8"

# --- crawl shape ----------------------------------------------------------------------
PAGE_COUNT_MARGIN = 2  # follow at most page_count + margin pages of a thread
# A hard ceiling on a thread's pages whatever a page claims; the pager's own cap (the count page 1
# prints, plus PAGE_COUNT_MARGIN) comes first. Check-in threads reach tens of thousands of pages.
MAX_PAGES_PER_THREAD = 100_000
LEASE_S = 300  # a leased frontier row returns to pending after this
# A crawl commits its saved pages together at most this often (storage's grouped_commits):
# one COMMIT per page cost about 7% of a busy crawl's CPU. A kill loses at most this much
# work, which is fetched again; Datasette sees new pages this much later. The daemon's
# scheduled jobs, one connection each, commit every page at once (scraper.schedule).
GROUP_COMMIT_S = 0.25

# --- the daemon -----------------------------------------------------------------------
REVISIT_MIN_S = 3600  # an active thread is looked at again after this
REVISIT_MAX_S = 30 * 24 * 3600  # a quiet thread's interval doubles per quiet visit, up to this
GUIDE_MAX_PAGES = 5  # discovery reads the new-threads guide no deeper than this (50 threads a page on Discuz)
REVISIT_BATCH_THREADS = 200  # due threads one refresh job takes at most
VERIFY_BUDGET_REQUESTS = 20  # requests per site per run the verify pass may spend at most, whatever its pace
# The verify pass re-reads only pages last fetched longer ago than this: a page read minutes ago
# seldom holds an edit yet, so right after a crawl the budget would buy almost nothing.
VERIFY_MIN_AGE_S = 24 * 3600
# The verify pass re-reads each archived thread page about once per this long, a share of the
# pages each run (pages x run interval / cycle, rounded up) instead of the whole budget every
# run. 30 days, like REVISIT_MAX_S: the quietest thread is looked at monthly, and so is every
# old page, at about 1 request per 720 pages a run for a site run hourly.
VERIFY_CYCLE_S = 30 * 24 * 3600
# Discovery stops paging a board where its rows show nothing new (boards list threads by last post),
# but reads it to its end at least this often: a thread moved in from another board, or moved down
# by a deleted reply, changes no row on the pages read before it.
BOARD_FULL_READ_S = 24 * 3600
SCHEDULE_EVERY_S = 3600  # how often a site's job runs
# `run --once` finding a host busy (another process crawls it) waits this long, then skips the
# site; a daemon job waits up to its own interval (scraper.schedule.RunOptions.lock_wait_s).
SITE_LOCK_WAIT_S = 300
REFRESH_LAG_S = 10  # on start, a site's refresh job follows its discover job by this much
# Jobs the daemon runs at once (sites on different hosts crawl in parallel), two per site: each
# holds a thread, an archive connection and a socket. Jobs beyond it wait for a free worker.
DAEMON_MAX_WORKERS = 64
# How late a job may start and still run: None, however late, once (missed runs coalesce). A
# job late after the machine slept, or queued behind long first crawls for a worker, runs when
# it can; a grace would drop it, and with every worker busy for hours, drop it every time.
MISFIRE_GRACE_S: float | None = None

# --- time -----------------------------------------------------------------------------
DEFAULT_UTC_OFFSET = "+08:00"  # Discuz prints site-local time; most Discuz sites are UTC+8

# --- noise ----------------------------------------------------------------------------
JAMMER_MIN_UNITS = 5  # Discuz's jammer() emits 5-15 units per line break
LEARNED_PHRASE_MIN_POSTS = 5  # a phrase must recur in this many posts to be proposed
LEARNED_PHRASE_MIN_CHARS = 6
LEARNED_PHRASE_MAX_CHARS = 40

# --- the demo forum -------------------------------------------------------------------
DEMO_PORT = 8765
DEMO_DATASETTE_PORT = 8001
