"""The one place that chains fetch -> record -> parse -> clean -> save -> enqueue.

A Crawler works through one site's frontier: it leases a due URL, asks robots.txt, fetches
it through the host's pacing slot, and then, in ONE archive transaction block, records the
fetch, stores the raw body, saves what the page holds, finishes the frontier row and enqueues
what the page links to. The blocks of a run commit in groups (at most every GROUP_COMMIT_S,
each block a savepoint: Archive.grouped_commits), so a crash loses at most the open group,
whose frontier rows go back with it and are fetched again, and never part of a page.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from scraper import config
from scraper.clean import NoiseRules, parse_html
from scraper.decode import decode_html
from scraper.engines import get_engine
from scraper.engines.base import BLOCK_KINDS, Engine, PageKind, ParseContext
from scraper.errors import (
    ArchiverError,
    BadURL,
    BlockedAddress,
    CrawlDelayOverLimit,
    FetchError,
    OffsiteRedirect,
    ParseError,
    RobotsDisallowed,
    StopRequested,
    TrapDetected,
    UnsupportedScheme,
)
from scraper.frontier import entry_for, sibling_page_url
from scraper.net import AddressGuard, Fetcher, FetchResult, MemberCookies, effective_port, split_url
from scraper.politeness import (
    CircuitBreaker,
    HostPacer,
    RobotsRules,
    expiry,
    host_of,
    retry_after_s,
    robots_from_fetch,
    robots_url,
)
from scraper.politeness import utc_now_iso as _utc_now_iso
from scraper.sites import Site, check_site_in_archive
from storage.archive import Archive, replies_newest_first, thread_page_extract_hash

log = logging.getLogger(__name__)

# The reason a URL fails with when processing it raised an error no rule handles (a defect).
INTERNAL_ERROR = "internal_error"

# How long a one-shot run waits for a retry that is due soon before leaving it for the next run.
RETRY_WAIT_MAX_S = 120.0


def verify_pages_per_run(thread_pages: int, run_interval_s: float, cycle_s: float) -> int:
    """How many pages a verify pass re-reads so that each of the site's thread pages comes round
    about once a cycle, spread evenly over the runs: thread_pages x run_interval_s / cycle_s,
    rounded up. So a site with any page gets at least one a run: a smaller share could only be
    kept by remembering fractions from run to run, and one request a run costs a forum no more
    than the board page discovery reads every run. A site of fewer pages than runs in a cycle
    thus goes round faster than the cycle, each page at most once per verify minimum age."""
    if thread_pages <= 0:
        return 0
    # Rounded before ceil: 720 pages x 3600 s / 30 days is 1, not 1.0000000001.
    return math.ceil(round(thread_pages * run_interval_s / cycle_s, 9))


def describe_duration(seconds: float) -> str:
    """A duration as an operator reads it: hours below two days, days above, 'never' for inf."""
    if seconds == math.inf:
        return "never"
    return f"{seconds / 86400:.1f} days" if seconds >= 2 * 86400 else f"{seconds / 3600:.1f} hours"


def verify_cycle_achieved_s(thread_pages: int, run_interval_s: float, pages_per_run: int,
                            min_age_s: float = 0.0) -> float:
    """About how long the verify pass takes to go round a site's thread pages at `pages_per_run`
    (no page is re-read sooner than `min_age_s` after it was read)."""
    if pages_per_run <= 0:
        return math.inf
    return max(math.ceil(thread_pages / pages_per_run) * run_interval_s, min_age_s)


@dataclass(frozen=True)
class VerifyPace:
    """What a site's verify pass does each run: the pages its cycle asks, the pages the
    budget lets it read, and about how long it takes to go round the site's thread pages."""

    thread_pages: int
    asked_per_run: int
    pages_per_run: int
    round_s: float
    run_interval_s: float
    cycle_s: float
    budget: int

    @property
    def budget_short(self) -> bool:
        return self.asked_per_run > self.pages_per_run


def verify_pace(thread_pages: int, *, run_interval_s: float, cycle_s: float, budget: int,
                min_age_s: float) -> VerifyPace:
    asked = verify_pages_per_run(thread_pages, run_interval_s, cycle_s)
    per_run = min(asked, budget)
    return VerifyPace(thread_pages=thread_pages, asked_per_run=asked, pages_per_run=per_run,
                      round_s=verify_cycle_achieved_s(thread_pages, run_interval_s, per_run, min_age_s),
                      run_interval_s=run_interval_s, cycle_s=cycle_s, budget=budget)


@dataclass
class CrawlOptions:
    """What the operator chose for this run (the CLI's flags)."""

    delay_s: float | None = None  # overrides the site's delay (the operator's word)
    allow_private_hosts: frozenset[str] = frozenset()
    max_requests: int | None = None  # request budget for the run
    follow_boards: bool = True  # enqueue the threads a board lists
    max_board_pages: int = 50
    max_guide_pages: int = config.GUIDE_MAX_PAGES
    backoff_base_s: float = config.BACKOFF_BASE_S  # first retry after about this, doubling
    block_pause_s: float = config.BLOCK_PAUSE_S  # how long a block page holds the host
    deadline_s: float = config.FETCH_DEADLINE_S  # total time one fetch may take
    # Incremental (the daemon): board rows decide which threads are fetched, and from which
    # page; threads whose revisit time has come are looked at again. Off, every listed thread
    # is fetched whole (an explicit crawl).
    incremental: bool = False
    revisit_due_threads: bool = True  # incremental: also queue the threads whose revisit time has come
    revisit_min_s: float = config.REVISIT_MIN_S
    revisit_max_s: float = config.REVISIT_MAX_S
    # Set by a caller holding the site's lock: leases left by a killed worker are taken back now
    # instead of when they expire.
    reclaim_leases: bool = False
    # An incremental run re-reads the least recently verified thread pages, of those last fetched
    # at least verify_min_age_s ago: its share of the site's pages so that each comes round once
    # per verify_cycle_s over runs every run_interval_s, and never more than the budget.
    verify_budget_requests: int = 0
    verify_min_age_s: float = config.VERIFY_MIN_AGE_S
    verify_cycle_s: float = config.VERIFY_CYCLE_S
    run_interval_s: float = config.SCHEDULE_EVERY_S  # how often the site's runs come (its schedule every_s)
    # Incremental: a board is read past a page showing nothing new once this long after it was last.
    board_full_read_s: float = config.BOARD_FULL_READ_S
    group_commit_s: float = config.GROUP_COMMIT_S  # saved pages commit together this often (0: each alone)


@dataclass
class CrawlReport:
    run_id: int
    requests: int = 0
    not_modified: int = 0
    pages_saved: int = 0
    new_posts: int = 0
    new_versions: int = 0
    gone_posts: int = 0  # stored posts a page showed had vanished from the forum
    unchanged_pages: int = 0  # fetched, but holding exactly what the archive has: nothing written
    failures: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)


class Crawler:
    """Crawls one site. Build it, then `await crawler.run(seed_urls)`."""

    def __init__(
        self,
        archive: Archive,
        site: Site,
        *,
        options: CrawlOptions | None = None,
        fetcher: Fetcher | None = None,
        pacer: HostPacer | None = None,
        circuit: CircuitBreaker | None = None,
        now: Callable[[], str] = _utc_now_iso,
        engine: Engine | None = None,
        stop: threading.Event | None = None,
        on_page: Callable[[CrawlReport, dict], None] | None = None,
    ):
        check_site_in_archive(archive, site)  # before anything is opened
        self.archive = archive
        self.site = site
        self.options = options or CrawlOptions()
        self.engine = engine or get_engine(site.engine)
        self.now = now
        self.stop = stop  # set from a signal handler: finish the page in hand, then return
        self.on_page = on_page  # progress: called with the run's report after every page
        self.pacer = pacer or HostPacer(delay_s=effective_delay_s(site, self.options), stop=stop)
        self.circuit = circuit or CircuitBreaker()
        self._own_fetcher = fetcher is None
        self.fetcher = fetcher or Fetcher(
            user_agent=config.user_agent(site.contact_url),
            guard=AddressGuard(allowed_hosts=self.options.allow_private_hosts),
            deadline_s=self.options.deadline_s,
            cookies=member_cookies(site),
        )
        self.site_id = archive.upsert_site(site.name, engine=site.engine, base_url=site.base_url,
                                           utc_offset=site.utc_offset, config=site.archived_config)
        self._robots: dict[str, RobotsRules] = {}
        self._visited: set[str] = set()  # frontier keys queued in this run: each is visited once
        # thread part of a page key -> page count printed on the first page of it read this run
        self._printed_pages: dict[str, int] = {}
        self._active_threads: set[int] = set()  # thread ids that gained posts or versions in this run
        self._replied_threads: set[int] = set()  # of those, the ones that gained posts
        # threads.visits of each thread as this run found it: a thread whose next visit is set
        # twice in a run (page 1 of one listed newest first, then its last page) is on one visit.
        self._visits_before_run: dict[int, int] = {}
        self._verify_keys: set[str] = set()  # frontier keys the verify pass queued: each is re-read alone
        self._unordered_boards: set[str] = set()  # boards (key prefixes) seen listed otherwise than by last post
        self._slow_hosts: set[str] = set()  # hosts whose robots.txt asks a longer gap than the site allows
        self._login_refused = False  # a login wall came back although the member's cookies were sent
        self.report: CrawlReport | None = None

    # --- the run ----------------------------------------------------------------------
    async def run(self, seeds: list[str], *, job: str = "crawl") -> CrawlReport:
        """Enqueue `seeds` (board or thread URLs) and crawl until nothing is due."""
        with self.archive.grouped_commits(self.options.group_commit_s):  # leaving it commits the rest
            committer = asyncio.create_task(self._commit_groups())
            try:
                return await self._run(seeds, job)
            finally:
                committer.cancel()

    async def _run(self, seeds: list[str], job: str) -> CrawlReport:
        started_at = self.now()
        run_id = self.archive.start_run(self.site_id, job, now=started_at)
        self.report = report = CrawlReport(run_id=run_id)
        status = "failed"
        try:
            self.archive.release_expired_leases(self.now())
            if self.options.reclaim_leases:
                self.archive.release_site_leases(self.site_id, self.now())
            for url in seeds:
                self.enqueue(url, discovered_from=None, depth=0, priority=10)
            if self.options.incremental and self.options.revisit_due_threads:
                self.enqueue_due_threads()
            await self._drain()
            if self.options.incremental and self.options.verify_budget_requests:
                await self._verify(started_at)
            status = "interrupted" if self._stopping() else "finished"
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        finally:
            self.archive.finish_run(run_id, status=status, requests=report.requests,
                                    not_modified=report.not_modified, new_posts=report.new_posts,
                                    new_versions=report.new_versions, failures=dict(report.failures),
                                    gone_posts=report.gone_posts, now=self.now())
            if self._own_fetcher:
                await self.fetcher.aclose()
        return report

    async def _commit_groups(self) -> None:
        """Commit the saved pages' open group when it is due, also while the run waits on
        the network or a politeness gap (a save commits a due group itself)."""
        if self.options.group_commit_s <= 0:
            return
        while True:
            await asyncio.sleep(self.options.group_commit_s)
            self.archive.commit_due_group()

    async def _verify(self, started_at: str) -> None:
        """Re-read the thread pages verified longest ago, of those last fetched at least
        verify_min_age_s ago (and not in this run), as many as the verify cycle's pace asks
        and the budget allows: edits and deletions change no board row, so only this catches them."""
        opts = self.options
        thread_pages = self.archive.thread_page_count(self.site_id)
        if not thread_pages:
            return
        pace = verify_pace(thread_pages, run_interval_s=opts.run_interval_s, cycle_s=opts.verify_cycle_s,
                           budget=opts.verify_budget_requests, min_age_s=opts.verify_min_age_s)
        pages_this_run = pace.pages_per_run
        achieved = describe_duration(pace.round_s)
        if pace.budget_short:
            # The budget is the hard cap: the site keeps a longer cycle, and the operator is told which.
            log.warning("%s: %d thread pages in a verify cycle of %s ask %d re-reads a run, but the verify budget "
                        "allows %d: each page comes round about every %s instead (raise "
                        "schedule.verify_budget_requests, or set schedule.verify_cycle_s to that)", self.site.name,
                        thread_pages, describe_duration(pace.cycle_s), pace.asked_per_run, pages_this_run, achieved)
        else:
            log.info("%s: verify pass of %d of %d thread pages, each coming round about every %s",
                     self.site.name, pages_this_run, thread_pages, achieved)
        before = min(started_at, _plus_seconds(self.now(), -opts.verify_min_age_s))
        for page in self.archive.least_recently_verified_pages(self.site_id, before, pages_this_run):
            url = self._on_site(page["url"])
            if self.enqueue(url, discovered_from=None, depth=1, priority=0):
                self._verify_keys.add(entry_for(url, self.engine).key)
        try:
            await self._drain(until_requests=self.report.requests + pages_this_run)
        finally:
            # Left pending, what the pass did not reach (or a retry set for later) would be
            # fetched by the next run's discovery, outside any budget; the next verify pass
            # chooses the oldest pages afresh.
            skipped = self.archive.skip_pending(self.site_id, self._verify_keys, reason="verify_budget",
                                                now=self.now())
            if skipped:
                self.report.skipped["verify_budget"] += skipped

    async def _drain(self, until_requests: int | None = None) -> None:
        while not self._stopping():
            if self.options.max_requests is not None and self.report.requests >= self.options.max_requests:
                log.info("request budget of %d reached", self.options.max_requests)
                return
            if until_requests is not None and self.report.requests >= until_requests:
                return
            row = self.archive.lease_next(self.site_id, now=self.now(), lease_s=config.LEASE_S)
            if row is None:
                wait = self._seconds_to_next_retry()
                if wait is None or wait > RETRY_WAIT_MAX_S:
                    return
                # In short steps, so a stop request is noticed within a second.
                await asyncio.sleep(min(max(wait, 0.05), 1.0))
                continue
            requests_before = self.fetcher.requests_made
            try:
                await self.process(row)
            except StopRequested:
                # The stop came while the request waited out its host's gap: none was made.
                self.archive.return_lease(row["id"], now=self.now())
                return
            except (sqlite3.Error, MemoryError):
                raise  # the archive itself is failing: nothing can be recorded, the run stops
            except Exception:  # a defect, or input no rule foresaw: this URL fails, the run goes on
                log.exception("%s: unexpected error; the URL is recorded as failed (internal_error)", row["url"])
                self._record_unexpected(row, requested=self.fetcher.requests_made > requests_before)
            if self.on_page is not None:
                self.on_page(self.report, row)

    def host_ready_in(self) -> float:
        """Seconds until the site's host may be asked again, for the crawl that comes next: the
        gap after the last request (or a server's pause), or, for a host that kept failing,
        until its circuit half-opens."""
        host = self.site.host
        return max(self.pacer.ready_in(host), self.circuit.retry_in(host))

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _seconds_to_next_retry(self) -> float | None:
        due = self.archive.db.execute(
            "select min(next_due_at) from frontier where site_id = ? and state = 'pending'", [self.site_id]
        ).fetchone()[0]
        if due is None:
            return None
        return (datetime.fromisoformat(due) - datetime.fromisoformat(self.now())).total_seconds()

    # --- one frontier row -------------------------------------------------------------
    async def process(self, row: dict) -> None:
        """Fetch one leased URL and carry it to a terminal (or retry) state."""
        url, host = row["url"], row["host"]
        wait = self.circuit.retry_in(host)
        if wait > 0:
            # The host keeps failing: leave the URL for when the circuit half-opens.
            self.archive.finish(row["id"], "pending", "circuit_open", next_due_at=_plus_seconds(self.now(), wait),
                                now=self.now())
            self.report.skipped["circuit_open"] += 1
            return
        rules = await self._robots_for(url)
        if isinstance(rules, FetchError):
            self._record_failure(row, url, rules, record=False)
            return
        if not rules.allows(url):
            self._finish(row, "skipped", "robots_disallowed")
            return
        asked_gap_s = rules.min_gap_s()
        if asked_gap_s > self.site.politeness.max_crawl_delay_s:
            self._refuse_slow_host(row, asked_gap_s)
            return
        state = self.archive.page_state(self.site_id, row["url_key"]) or {}
        headers = {}
        # A board or guide page is asked for whole: its rows decide what else this run reads
        # (the pager, the changed threads), and a 304 would answer none of that.
        if row["kind"] not in (PageKind.BOARD, PageKind.GUIDE):
            if state.get("etag"):
                headers["If-None-Match"] = state["etag"]
            if state.get("last_modified"):
                headers["If-Modified-Since"] = state["last_modified"]
        result = await self._fetch(url, host, headers=headers, check_redirect=_redirect_rule(url, rules))
        if isinstance(result, FetchError):
            self._record_failure(row, url, result)
            return
        if result.status == 304:
            with self.archive.transaction():
                self._record_fetch(result)
                self.archive.finish(row["id"], "done", now=self.now())
                self._schedule_revisit_if_last(state)
            self.report.not_modified += 1
            return
        if result.status != 200:
            blocked = self._block_kind(result) if result.body else None
            if blocked is not None:
                self._handle_block(row, result, blocked)
            else:
                self._handle_status(row, result)
            return
        self._handle_page(row, result)

    def _block_kind(self, result: FetchResult) -> PageKind | None:
        """The block an error response's body shows (a bot challenge is often sent as 403 or
        503), or None: its status then speaks for it."""
        decoded = decode_html(result.body, result.content_type, self.site.encoding)
        kind = self.engine.page_kind(parse_html(decoded.text), result.status)
        return kind if kind in BLOCK_KINDS else None

    def _handle_block(self, row: dict, result: FetchResult, kind: PageKind) -> None:
        """A block page is never content: its body is kept, the URL fails as blocked:<kind>,
        and a forum that shows one wants us gone for a while."""
        self._save_unparsed(row, result, f"blocked:{kind}", state="failed")
        self.pacer.pause(row["host"], self.options.block_pause_s)
        cookies = self.fetcher.cookies
        if kind == PageKind.LOGIN and cookies is not None and not self._login_refused:
            # The member's cookies went with the request and the forum asks for a login all the
            # same: the login has ended (expired, or logged out elsewhere). Said once a run.
            self._login_refused = True
            log.warning("%s: the forum answered %s with its login wall although the member's cookies from %s "
                        "were sent: the login has likely expired; export fresh cookies from a logged-in browser",
                        self.site.name, row["url"], cookies.path)

    async def _fetch(self, url: str, host: str, *, headers: dict, accept=config.ACCEPTED_CONTENT_TYPES,
                     max_bytes: int | None = None, max_redirects: int | None = None,
                     check_redirect: Callable[[str], None] | None = None,
                     truncate: bool = False) -> FetchResult | FetchError:
        async with self.pacer.slot(host) as slot:
            self.report.requests += 1
            try:
                result = await self.fetcher.get(url, headers=headers, accept_types=accept, max_bytes=max_bytes,
                                                max_redirects=max_redirects, check_redirect=check_redirect,
                                                before_hop=slot.next_request, truncate=truncate)
                slot.server_s = result.server_s  # only the server's time may slow us down
            except FetchError as exc:
                if exc.retryable:  # the host is struggling or unreachable, not the URL at fault
                    self.circuit.failure(host)
                return exc
        if result.status >= 500 or result.status == 429:
            self.circuit.failure(host)
        else:
            self.circuit.success(host)
        return result

    def _handle_status(self, row: dict, result: FetchResult) -> None:
        status = result.status
        reason = f"http_{status}"
        wait_s = None
        if status in (429, 503):
            wait_s = retry_after_s(result.headers.get("retry-after"))
            self.pacer.pause(row["host"], wait_s if wait_s is not None else self._backoff_s(row["attempts"]))
        retryable = status in (408, 429) or status >= 500
        with self.archive.transaction():
            self._record_fetch(result, reason=reason)
            self._retry_or_fail(row, reason, retryable, wait_s=wait_s)
            if status in (404, 410) and row["kind"] == PageKind.THREAD:
                self._mark_thread_gone(row["url_key"])
        self.report.failures[reason] += 1

    def _handle_missing(self, row: dict, result: FetchResult) -> None:
        """The forum says the thread does not exist (Discuz says so with status 200): a 404 in
        all but status. The thread is marked gone, its posts stay, and the host is not held:
        nothing was refused."""
        with self.archive.transaction():
            self._record_fetch(result, reason="missing")
            self._retry_or_fail(row, "missing", retryable=False)
            if row["kind"] == PageKind.THREAD:
                self._mark_thread_gone(row["url_key"])
        self.report.failures["missing"] += 1

    def _mark_thread_gone(self, url_key: str) -> None:
        """A thread the forum answers 404/410 (or its missing-thread notice) for is gone; its
        posts stay in the archive."""
        tid = url_key.split(":")[1]
        row = self.archive.db.execute("select id from threads where site_id = ? and thread_key = ?",
                                      [self.site_id, tid]).fetchone()
        if row:
            self.archive.mark_thread_gone(row[0], now=self.now())

    def _handle_page(self, row: dict, result: FetchResult) -> None:
        decoded = decode_html(result.body, result.content_type, self.site.encoding)
        tree = parse_html(decoded.text)  # nesting capped: lexbor slows badly on pathological depth
        kind = self.engine.page_kind(tree, result.status)
        ctx = ParseContext(url=result.final_url, utc_offset=self.site.utc_offset, fetched_at=self.now(),
                           noise=self._noise_rules())
        if kind in BLOCK_KINDS:
            self._handle_block(row, result, kind)
            return
        if kind == PageKind.MISSING:
            self._handle_missing(row, result)
            return
        parsers = {PageKind.THREAD: (self.engine.parse_thread, self._save_thread),
                   PageKind.BOARD: (self.engine.parse_board, self._save_board),
                   PageKind.GUIDE: (self.engine.parse_guide, self._save_guide)}
        if kind in parsers:
            parse, save = parsers[kind]
            try:
                parsed = parse(tree, ctx)
            except ParseError as exc:
                # The raw body is kept, so the page can be parsed again once the parser is fixed.
                self._save_unparsed(row, result, exc.reason, state="failed", detail=str(exc), parse_failure=True)
                return
            save(row, result, parsed, decoded)
        elif row["kind"] in (PageKind.THREAD, PageKind.BOARD):
            # The URL names a thread or board page and the page shows none: most likely a
            # template the engine does not know. Recorded as a parse failure (the body is kept,
            # to parse again once the engine knows it), never passed over as a page of no interest.
            self._save_unparsed(row, result, ParseError.reason, state="failed", parse_failure=True,
                                detail=f"the URL names a {row['kind']} page; the page reads as {kind}")
        else:
            self._save_unparsed(row, result, "unknown_page", state="skipped")

    def _save_thread(self, row, result, page, decoded) -> None:
        key = row["url_key"]
        requested_page = _page_from_key(key)
        if requested_page is not None and page.page < requested_page:
            if not self._thread_shrank(page, requested_page):
                # Discuz serves its last page for numbers past the end: nothing new here.
                self._save_unparsed(row, result, "trap:past_end", state="skipped")
                return
            # The thread's last known page is gone (posts deleted since): what came back is its
            # last page now, saved as that page, so its page count and next visit move on.
            key = _sibling_key(key, page.page)
        known = self.archive.page_state(self.site_id, key)
        # (A shrunk thread is saved even when the page is as archived: its page count changes.)
        if known and key == row["url_key"] and known.get("extract_hash") == thread_page_extract_hash(page):
            # Discuz seldom sends validators: this is our 304. Only the fetch is recorded
            # (its row says the page was seen then); the raw body, whose counters and ads
            # change on every view, is not kept again.
            with self.archive.transaction():
                self._record_fetch(result)
                self.archive.finish(row["id"], "done", now=self.now())
                self._schedule_revisit(known.get("thread_id"), page)
                if self._follows_pager(row, page, unchanged=True, new_posts=0):
                    self._enqueue_next_page(row, page, result.final_url)
            self.report.unchanged_pages += 1
            return
        with self.archive.transaction():
            sha = self.archive.store_body(result.body, now=self.now())
            self._record_fetch(result, body_sha256=sha)
            saved = self.archive.save_thread_page(
                self.site_id, page, url=result.final_url, url_key=key, body_sha256=sha,
                encoding=decoded.encoding, replaced_chars=decoded.replaced, etag=result.headers.get("etag"),
                last_modified=result.headers.get("last-modified"), now=self.now())
            self.archive.finish(row["id"], "done", now=self.now())
            if saved.new_posts or saved.new_versions:
                self._active_threads.add(saved.thread_id)
            if saved.new_posts:
                self._replied_threads.add(saved.thread_id)
            self._schedule_revisit(saved.thread_id, page)
            if self._follows_pager(row, page, unchanged=False, new_posts=saved.new_posts):
                self._enqueue_next_page(row, page, result.final_url)
        self.report.pages_saved += 1
        self.report.new_posts += saved.new_posts
        self.report.new_versions += saved.new_versions
        self.report.gone_posts += saved.gone_posts

    def _thread_shrank(self, page, requested_page: int) -> bool:
        """Whether a page served for a higher page number is the thread's last page after
        deletions: the page asked for was the archive's last known page, and the thread now
        prints fewer pages. (Asked for past the page count it printed, it is a pager's trap.)"""
        if page.tid is None or page.page != page.page_count:
            return False
        known = self.archive.thread_states(self.site_id, [str(page.tid)]).get(str(page.tid))
        return known is not None and known["page_count"] == requested_page > page.page_count

    def _follows_pager(self, row: dict, page, *, unchanged: bool, new_posts: int) -> bool:
        """Whether a thread page's next page is queued. A verify re-read reads its one page. In an
        incremental run, a page found as archived leads on only to a page never archived (the
        thread's last known page, now full, and the new one after it): a page archived already
        is fetched when its thread's board row or due time asks for it, not here. A page listed
        newest first leads on only while it held new posts: new replies come in at page 1 and
        push the rest down, so the pages after one with nothing new hold only archived posts."""
        if page.page >= page.page_count or row["url_key"] in self._verify_keys:
            return False
        if self.options.incremental and new_posts == 0 and lists_newest_first(page):
            return False
        next_key = _sibling_key(row["url_key"], page.page + 1)
        if unchanged and self.options.incremental and next_key is not None:
            return self.archive.page_state(self.site_id, next_key) is None
        return True

    def _schedule_revisit_if_last(self, state: dict) -> None:
        """A page the server answered 304 for (`state`: its pages row): when it is the page
        where its thread's new replies land (its last known page, or page 1 of a thread listed
        newest first), the thread's next visit is set as for a page whose posts hash the same. Else a quiet thread on a forum that sends validators would stay due, and be
        asked for again on every refresh."""
        thread = self.archive.thread(state["thread_id"]) if state.get("thread_id") is not None else None
        page_no = state.get("page_no")
        if thread is None or page_no is None:
            return
        # The page where its new replies land: its last, or page 1 of a thread listed newest first.
        if page_no >= (thread["page_count"] or 1) or (page_no == 1 and self.archive.lists_newest_first(thread["id"])):
            self._schedule_revisit(thread["id"], None, last_page=True)

    def _schedule_revisit(self, thread_id: int | None, page, *, last_page: bool = False) -> None:
        """After a thread's last page (page 1 of one listed newest first: its new replies' page):
        next due soon if the thread changed in this run, else later."""
        where_replies_land = page is not None and page.page == 1 and lists_newest_first(page)
        if thread_id is None or not (last_page or where_replies_land or page.page >= page.page_count):
            return
        if thread_id not in self._visits_before_run:
            self._visits_before_run[thread_id] = (self.archive.thread(thread_id) or {}).get("visits") or 0
        # Replies new since an earlier visit: one that ended before this run.
        replied_since_a_visit = thread_id in self._replied_threads and self._visits_before_run[thread_id] > 0
        self.archive.schedule_revisit(thread_id, active=thread_id in self._active_threads,
                                      new_replies=replied_since_a_visit,
                                      min_s=self.options.revisit_min_s, max_s=self.options.revisit_max_s,
                                      now=self.now())

    def enqueue_due_threads(self, limit: int = config.REVISIT_BATCH_THREADS) -> int:
        """Queue the last known page of each thread whose revisit time has come; returns how many."""
        queued = 0
        for thread in self.archive.due_threads(self.site_id, self.now(), limit):
            for url in self._revisit_urls(thread):
                queued += self.enqueue(url, discovered_from=None, depth=1, priority=2)
        return queued

    def _revisit_urls(self, thread: dict) -> list[str]:
        """Where a revisit of a stored thread starts: where new replies appear (its last known
        page, or page 1 of a thread listed newest first), and before it the first page of it
        never saved (a fetch that failed for good in an earlier run), whose posts nothing else
        would ask for again."""
        thread = dict(thread, url=self._on_site(thread["url"]))
        newest_first = thread.get("id") is not None and self.archive.lists_newest_first(thread["id"])
        start = 1 if newest_first else max(thread["page_count"] or 1, 1)
        urls = [sibling_page_url(thread["url"], self.engine, start)]
        gap = self._first_unsaved_page(thread["thread_key"], thread["page_count"])
        if gap is not None and gap != start:
            urls.insert(0, sibling_page_url(thread["url"], self.engine, gap))
        return urls

    def _first_unsaved_page(self, thread_key: str, page_count: int | None) -> int | None:
        """The lowest page of the thread, up to page_count, that no save holds under its page
        key (thread:T:P); None when every one is saved."""
        prefix = f"{PageKind.THREAD}:{thread_key}:"
        saved = self.archive.page_keys_with_prefix(self.site_id, prefix) if page_count else set()
        return next((n for n in range(1, (page_count or 0) + 1) if f"{prefix}{n}" not in saved), None)

    def _on_site(self, url: str) -> str:
        """A stored URL at the site's address now: a forum that moved to another port or host
        (the site stays the same, as check_same_forum allows) keeps its paths, and its threads
        must be asked for where it is, not where it was."""
        parts, base = urlsplit(url), urlsplit(self.site.base_url)
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return url
        return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))

    def _changed_threads(self, board, states: dict[str, dict]) -> list[str]:
        """URLs to fetch for a board's rows: new threads whole; threads whose replies or last post
        time moved (or whose revisit is due) from their last known page; nothing for the rest.
        `states` is what the archive knew of the rows' threads before this page."""
        return [url for board_row in board.rows
                for url in self._thread_urls(board_row, states.get(str(board_row.tid)))]

    def _thread_urls(self, board_row, known: dict | None) -> list[str]:
        """What to fetch of one board row's thread (`known`: the archive's threads row, read
        before the page was saved): nothing when it stands as archived."""
        if known is None or not known["page_count"]:
            return [board_row.url]  # never fetched: crawled whole
        moved = board_row.replies != known["replies"] or (
            board_row.last_post_at is not None and board_row.last_post_at != known["last_post_at"])
        due = known["next_due_at"] is not None and known["next_due_at"] <= self.now()
        if moved or due or known["gone_at"]:
            return self._revisit_urls(dict(known, url=known["url"] or board_row.url))
        return []

    def _enqueue_next_page(self, row: dict, page, final_url: str) -> None:
        """Follow the pager, but no further than a margin past the page count printed on the
        first page of the thread this run read (page 1 whenever it was read): a pager that
        keeps claiming one more page is a trap, not a thread. A run that starts past page 1 (a
        revisit starts at the last known page) is held to the count its first page printed,
        not to each later page's own claim."""
        key = row["url_key"]
        # The thread's own id when the page shows it: a URL that redirected here is keyed otherwise.
        thread = (f"thread:{page.tid}" if page.tid is not None
                  else key.rsplit(":", 1)[0] if _page_from_key(key) is not None else key)
        if page.page == 1:
            self._printed_pages[thread] = page.page_count
        printed = self._printed_pages.setdefault(thread, page.page_count)
        limit = min((printed or page.page_count) + config.PAGE_COUNT_MARGIN, config.MAX_PAGES_PER_THREAD)
        # From the page as the forum served it: a URL that redirected to the thread (a
        # "last post" link, an old URL form) names no page of it to step from.
        here = final_url if self.engine.thread_ref(final_url) else row["url"]
        next_url = sibling_page_url(here, self.engine, page.page + 1)
        if page.page + 1 > limit:
            self._record_trap(next_url, TrapDetected("page_count", f"page {page.page + 1} past {limit}"),
                              row["url"], row["depth"] + 1)
            return
        self.enqueue(next_url, discovered_from=row["url"], depth=row["depth"] + 1, priority=5)

    def _save_board(self, row, result, board, decoded) -> None:
        states = self._listed_states(board)
        last = min(board.page_count, self.options.max_board_pages)
        more = board.page < last and not (
            self.options.incremental and self._rest_of_board_known(row, board, states, last))
        self._save_listing(row, result, board, decoded, kind="board", states=states, follow_pager=more)

    def _rest_of_board_known(self, row: dict, board, states: dict[str, dict], last: int) -> bool:
        """Whether an incremental run may leave the board's pages after this one unread.

        A board lists threads by last post, newest first, and a new reply takes its thread to
        the top: once a page's rows all stand as archived, the later pages hold only older,
        unchanged threads. Sticky rows head every page in an order of their own, so they are
        left out (a changed one is queued all the same). That holds only for pages the archive
        has read, within board_full_read_s: a first crawl, a run stopped halfway or a raised
        max_board_pages reads on, and so does the periodic full read, which finds what no row
        above shows (a thread moved in from another board keeps its place by last post; one
        whose first fetch failed waits down there for its next try). A board whose rows are
        seen out of last-post order is read to its end.
        """
        if _sibling_key(row["url_key"], board.page) is None:
            return False
        board_key = row["url_key"].rsplit(":", 1)[0]
        if board_key in self._unordered_boards:
            return False
        normal = [r for r in board.rows if not r.sticky]
        try:
            times = [datetime.fromisoformat(r.last_post_at) for r in normal]
            in_order = all(earlier >= later for earlier, later in zip(times, times[1:]))
        except (TypeError, ValueError):
            in_order = False  # a row without a comparable last post time: the order cannot be checked
        if not in_order:
            # Listed otherwise (a board can be set to list threads by creation): a page says
            # nothing of the next, so the board is read to its end in this run.
            self._unordered_boards.add(board_key)
            return False
        if not normal or any(self._thread_urls(r, states.get(str(r.tid))) for r in normal):
            return False
        later = [_sibling_key(row["url_key"], page) for page in range(board.page + 1, last + 1)]
        since = _plus_seconds(self.now(), -self.options.board_full_read_s)
        return self.archive.pages_fetched_since(self.site_id, later, since) == len(later)

    def _save_guide(self, row, result, guide, decoded) -> None:
        # The guide lists the newest threads first. While a page holds only threads never
        # fetched, more may have been pushed onto the next page; a page showing one already
        # archived has reached what earlier runs saw, so reading on would cost requests for nothing.
        states = self._listed_states(guide)
        all_new = all(not (states.get(str(r.tid)) or {}).get("page_count") for r in guide.rows)
        more = all_new and guide.page < min(guide.page_count, self.options.max_guide_pages)
        self._save_listing(row, result, guide, decoded, kind="guide", states=states, follow_pager=more)

    def _listed_states(self, listing) -> dict[str, dict]:
        # Read before the save: saving overwrites the counts the comparison needs.
        return self.archive.thread_states(self.site_id, [str(r.tid) for r in listing.rows])

    def _save_listing(self, row, result, listing, decoded, *, kind: str, states: dict[str, dict],
                      follow_pager: bool) -> None:
        """Save a board or guide page, queue the threads it shows (in an incremental run only
        the new and changed ones) and, if `follow_pager`, its next page."""
        if self.options.incremental:
            thread_urls = self._changed_threads(listing, states)
        else:
            thread_urls = [listed.url for listed in listing.rows]
        with self.archive.transaction():
            sha = self.archive.store_body(result.body, now=self.now())
            self._record_fetch(result, body_sha256=sha)
            self.archive.save_board_page(
                self.site_id, listing, url=result.final_url, url_key=row["url_key"], body_sha256=sha,
                encoding=decoded.encoding, replaced_chars=decoded.replaced, etag=result.headers.get("etag"),
                last_modified=result.headers.get("last-modified"), now=self.now(), kind=kind)
            self.archive.finish(row["id"], "done", now=self.now())
            if self.options.follow_boards:
                for url in thread_urls:
                    self.enqueue(url, discovered_from=row["url"], depth=row["depth"] + 1, priority=1)
            if follow_pager:
                self.enqueue(sibling_page_url(row["url"], self.engine, listing.page + 1),
                             discovered_from=row["url"], depth=row["depth"] + 1, priority=3)
        self.report.pages_saved += 1

    def _save_unparsed(self, row, result, reason, *, state, detail=None, parse_failure=False) -> None:
        """Keep the raw body (it can be re-parsed later) and record why it holds no content."""
        with self.archive.transaction():
            sha = self.archive.store_body(result.body, now=self.now()) if result.body else None
            self._record_fetch(result, reason=reason, body_sha256=sha)
            if parse_failure:
                self.archive.record_parse_failure(url=result.final_url, reason=reason, detail=detail,
                                                  body_sha256=sha, site_id=self.site_id, now=self.now())
            if state == "failed":
                self._fail(row, reason)
            else:
                self.archive.finish(row["id"], state, reason, now=self.now())
        counter = self.report.skipped if state == "skipped" else self.report.failures
        counter[reason] += 1

    def _record_failure(self, row: dict, url: str, exc: FetchError, *, record: bool = True) -> None:
        """A URL that got no usable response; `record=False` when its attempt is already a fetch row."""
        with self.archive.transaction():
            if record:
                self.archive.record_fetch(url=url, final_url=getattr(exc, "final_url", None), reason=exc.reason,
                                          site_id=self.site_id, run_id=self.report.run_id, now=self.now())
            self._retry_or_fail(row, exc.reason, exc.retryable)
        self.report.failures[exc.reason] += 1

    def _record_unexpected(self, row: dict, *, requested: bool) -> None:
        """A URL whose processing raised what no rule handles: failed with reason
        internal_error (the log has the traceback), its request recorded if one was made
        (the transaction that would have recorded it was rolled back)."""
        with self.archive.transaction():
            if requested:
                self.archive.record_fetch(url=row["url"], reason=INTERNAL_ERROR, site_id=self.site_id,
                                          run_id=self.report.run_id, now=self.now())
            self._fail(row, INTERNAL_ERROR)
        self.report.failures[INTERNAL_ERROR] += 1

    def _retry_or_fail(self, row: dict, reason: str, retryable: bool, *, wait_s: float | None = None) -> None:
        """Retry later (after the server's Retry-After, or backoff) while tries remain; else fail."""
        max_tries = self.site.politeness.max_tries
        if retryable and row["attempts"] < max_tries:
            due = _plus_seconds(self.now(), max(wait_s or 0.0, self._backoff_s(row["attempts"])))
            self.archive.finish(row["id"], "pending", reason, next_due_at=due, now=self.now())
        else:
            self._fail(row, reason)

    def _fail(self, row: dict, reason: str) -> None:
        """End a URL as failed. A thread page that fails leaves its thread due at once, so the
        next run asks for it again: the board row that queued it has stored the thread's new
        reply count already, and would not show the change a second time (the replies would
        wait for the thread's revisit, weeks away for a quiet one)."""
        self.archive.finish(row["id"], "failed", reason, now=self.now())
        if row["kind"] == PageKind.THREAD and _page_from_key(row["url_key"]) is not None:
            self.archive.mark_thread_due(self.site_id, row["url_key"].split(":")[1], now=self.now())

    def _backoff_s(self, attempts: int) -> float:
        """Exponential backoff with jitter that only lengthens it."""
        base = self.options.backoff_base_s * (2 ** max(attempts - 1, 0))
        return min(base * (1 + random.random() * 0.5), config.BACKOFF_CAP_S)

    def _record_fetch(self, result: FetchResult, *, reason: str | None = None, body_sha256: str | None = None):
        return self.archive.record_fetch(
            url=result.url, final_url=result.final_url, status=result.status, reason=reason,
            nbytes=len(result.body), elapsed_ms=result.elapsed_ms, body_sha256=body_sha256,
            site_id=self.site_id, run_id=self.report.run_id, now=self.now())

    # --- frontier ---------------------------------------------------------------------
    def enqueue(self, url: str, *, discovered_from: str | None, depth: int, priority: int = 0) -> bool:
        """Queue a URL of this site once per run; a URL finished in an earlier run is queued again."""
        if host_of(url) != self.site.host:
            return False  # the archive keeps one site's pages; links elsewhere are not followed
        try:
            entry = entry_for(url, self.engine)
        except (TrapDetected, BadURL) as exc:
            self._record_trap(url, exc, discovered_from, depth)
            return False
        if entry.key in self._visited:
            return False
        self._visited.add(entry.key)
        kind = str(entry.kind)
        added = self.archive.enqueue(self.site_id, url=entry.url, url_key=entry.key, kind=kind,
                                     host=host_of(entry.url), priority=priority, depth=depth,
                                     discovered_from=discovered_from, now=self.now())
        if not added:
            self.archive.requeue(self.site_id, entry.key, next_due_at=self.now(), now=self.now(), url=entry.url)
        return True

    def _record_trap(self, url: str, exc: ArchiverError, discovered_from: str | None, depth: int) -> None:
        """A URL refused before any request (a trap, or one that cannot be requested): a
        skipped frontier row with the reason, so the archive says why it was not fetched."""
        key = f"trap:{url[:200]}"
        if key in self._visited:
            return
        self._visited.add(key)
        with self.archive.transaction():
            if self.archive.enqueue(self.site_id, url=url[: config.MAX_URL_LENGTH], url_key=key, kind="unknown",
                                    host=host_of(url), depth=depth, discovered_from=discovered_from,
                                    now=self.now()):
                row = self.archive.lease_by_key(self.site_id, key, now=self.now())
                self.archive.finish(row["id"], "skipped", exc.reason, now=self.now())
        self.report.skipped[exc.reason] += 1

    # --- robots.txt -------------------------------------------------------------------
    async def _robots_for(self, url: str) -> RobotsRules | FetchError:
        """The host's robots.txt rules, from memory, the archive's cache, or a fetch.

        An address the guard refuses is not "robots.txt unreachable": the URL itself can
        never be fetched, so that error is returned for the URL to fail with.
        """
        host = host_of(url)
        # One robots.txt per scheme, host and port (RFC 9309 2.3), cached under its own URL;
        # the pace it asks for holds for the host, which every port of it shares.
        target = robots_url(url)
        rules = self._robots.get(target)
        if rules is not None:
            return rules
        cached = self.archive.get_robots(target)
        if cached and cached["expires_at"] > self.now():
            rules = RobotsRules(cached["status"], cached["body"], cached["reason"])
        else:
            # One byte past the limit, cut there: a longer file is parsed to its last whole line
            # within the limit (robots_from_fetch), never refused as too large.
            result = await self._fetch(target, host, headers={}, accept=None, max_bytes=config.ROBOTS_MAX_BYTES + 1,
                                       max_redirects=config.ROBOTS_MAX_REDIRECTS, truncate=True)
            if isinstance(result, FetchError):
                self.archive.record_fetch(url=target, reason=result.reason, site_id=self.site_id,
                                          run_id=self.report.run_id, now=self.now())
                # The URL's own host refused: so is the URL. A hop the robots.txt redirects to
                # that is refused leaves the host's robots.txt unreachable, like any failure.
                if isinstance(result, (BlockedAddress, UnsupportedScheme)) and not result.after_redirect:
                    return result
                rules, ttl = robots_from_fetch(None, None)
            else:
                rules, ttl = robots_from_fetch(result.status, result.body)
                self._record_fetch(result, reason=rules.reason)
            self.archive.put_robots(target, status=rules.status, body=rules.body, reason=rules.reason,
                                    fetched_at=self.now(), expires_at=expiry(self.now(), ttl))
        self._robots[target] = rules
        self.pacer.set_min_gap(host, rules.min_gap_s())
        return rules

    def _refuse_slow_host(self, row: dict, asked_s: float) -> None:
        """robots.txt asks a longer gap than the site allows: its pace is never undercut, so
        the URL is not fetched; each run tries again, as robots.txt may change."""
        if row["host"] not in self._slow_hosts:
            self._slow_hosts.add(row["host"])
            log.warning("%s: robots.txt asks %s s between requests, more than this site's politeness.max_crawl_delay_s "
                        "of %s s: nothing of it is fetched (raise max_crawl_delay_s in its config to crawl it at that "
                        "pace)", row["host"], f"{asked_s:g}", f"{self.site.politeness.max_crawl_delay_s:g}")
        self._finish(row, "skipped", CrawlDelayOverLimit.reason)

    def _noise_rules(self) -> NoiseRules:
        confirmed = tuple(self.archive.confirmed_phrases(self.site_id))
        noise = self.site.noise
        return NoiseRules(phrases=noise.phrases, learned=noise.learned + confirmed, text_ads=noise.text_ads)

    def _finish(self, row: dict, state: str, reason: str) -> None:
        self.archive.finish(row["id"], state, reason, now=self.now())
        self.report.skipped[reason] += 1


def member_cookies(site: Site) -> MemberCookies | None:
    """The site's member cookies, read afresh (a file refreshed between runs is picked up),
    with the operator told which ones go to the forum, or that none does."""
    if site.cookies_file is None:
        return None
    cookies = MemberCookies(site.cookies_file)
    names = cookies.names_for(site.base_url)
    expired = f" ({cookies.expired} expired)" if cookies.expired else ""
    if names:
        log.info("%s: crawling as a member: cookies %s from %s%s", site.name, ", ".join(names), site.cookies_file,
                 expired)
    else:
        log.warning("%s: %s holds no current cookie for %s%s: the crawl goes as a guest", site.name,
                    site.cookies_file, site.base_url, expired)
    return cookies


def effective_delay_s(site: Site, options: CrawlOptions) -> float:
    """The gap between two requests to the site's host: the operator's --delay as given; else
    the site config's, but never under config.DELAY_S for a forum on the network. Only a forum
    the operator allowed as private (the demo, a local copy) may be crawled faster by its
    config: a config copied onto a real forum's URL must not take its pace along."""
    if options.delay_s is not None:
        return options.delay_s
    delay_s = site.politeness.delay_s
    if delay_s < config.DELAY_S and site.host not in options.allow_private_hosts:
        log.warning("%s: the site config's delay_s %g s is under the %g s floor for a forum on the network; "
                    "using %g s (--delay overrides)", site.name, delay_s, config.DELAY_S, config.DELAY_S)
        return config.DELAY_S
    return delay_s


def _redirect_rule(url: str, rules: RobotsRules) -> Callable[[str], None]:
    """The redirects a page fetch follows: on the page's own host (another port only if it is
    80 or 443), where robots.txt allows. Another host is another forum, whose robots.txt and
    pace this crawl does not keep; what it serves is not this site's to save."""
    def check(target: str) -> None:  # parses nothing until a redirect comes (most pages have none)
        origin, parts = split_url(url), split_url(target)
        ports = {effective_port(origin), 80, 443}
        if (parts.hostname or "").lower() != (origin.hostname or "").lower() or effective_port(parts) not in ports:
            raise OffsiteRedirect(f"{url} redirects off {origin.hostname}, to {target}", final_url=target)
        if not rules.allows(target):
            raise RobotsDisallowed(f"{url} redirects to {target}, which robots.txt disallows")

    return check


def _page_from_key(key: str) -> int | None:
    parts = key.split(":")
    if len(parts) == 3 and parts[0] in ("thread", "board") and parts[2].isdigit():
        return int(parts[2])
    return None


def _sibling_key(key: str, page: int) -> str | None:
    """The frontier key of another page of the thread or board keyed `key` (None for a URL
    keyed otherwise)."""
    return f"{key.rsplit(':', 1)[0]}:{page}" if _page_from_key(key) is not None else None


def lists_newest_first(page) -> bool:
    """Whether a thread page lists its replies newest first (storage.archive.replies_newest_first)."""
    return replies_newest_first(page) is True


def _plus_seconds(now_iso: str, seconds: float) -> str:
    return (datetime.fromisoformat(now_iso) + timedelta(seconds=seconds)).isoformat(timespec="seconds")


@dataclass(frozen=True)
class SiteTarget:
    """One site of a many-site crawl: its seeds and, where it differs from the shared one, its options."""

    site: Site
    seeds: tuple[str, ...]
    options: CrawlOptions | None = None
    job: str | None = None  # the runs row's job name, when it differs from the shared one


async def crawl_sites(archive: Archive, targets: Iterable[SiteTarget | tuple[Site, Sequence[str]]],
                      options: CrawlOptions | None = None, *, job: str = "crawl",
                      stop: threading.Event | None = None,
                      progress_for: Callable[[Site], Callable[[CrawlReport, dict], None]] | None = None,
                      host_waits: dict[str, float] | None = None,
                      ) -> list[CrawlReport | None]:
    """Crawl several sites at once into one archive; returns the targets' reports in their order
    (None for a target a stop request kept from starting).

    Sites on different hosts run concurrently in this event loop, so twenty forums take about
    as long as the slowest one. Sites that share a host run one after another: each Crawler
    paces only its own requests, and a host must never see two in flight; each starts once
    the previous one's gap (or a server's Retry-After pause) has passed. host_waits, by host:
    seconds before its first request (a crawl of it elsewhere asked for them), updated with
    what the last crawl of it leaves, for the caller to hand on. Sharing the one
    Archive connection is safe because no archive transaction block spans an await: each one
    begins and ends between two awaits (committed alone or as a savepoint of the open group),
    so blocks of different sites never interleave, and a failing one undoes only itself.
    Targets of one host run in the order given (a site's discovery before its refresh, say). A site whose crawl raises does not stop the others; once all have finished,
    the errors are raised together as an ExceptionGroup.
    """
    targets = [t if isinstance(t, SiteTarget) else SiteTarget(t[0], tuple(t[1])) for t in targets]
    reports: list[CrawlReport | None] = [None] * len(targets)
    errors: list[Exception] = []
    by_host: dict[str, list[int]] = {}
    for index, target in enumerate(targets):
        by_host.setdefault(target.site.host, []).append(index)

    waits = host_waits if host_waits is not None else {}

    async def crawl_host(indexes: list[int]) -> None:
        for index in indexes:
            if stop is not None and stop.is_set():
                return
            target = targets[index]
            try:
                crawler = Crawler(archive, target.site, options=target.options or options, stop=stop,
                                  on_page=progress_for(target.site) if progress_for else None)
                # What the host's previous crawl left of its gap (or of a pause, an open circuit).
                crawler.pacer.pause(target.site.host, waits.get(target.site.host, 0.0))
                try:
                    reports[index] = await crawler.run(list(target.seeds), job=target.job or job)
                finally:
                    waits[target.site.host] = crawler.host_ready_in()
            except Exception as exc:  # noqa: BLE001 - one forum's failure must not cost the others their run
                log.exception("%s: the crawl failed", target.site.name)
                exc.add_note(f"{target.site.name} {target.job or job}")  # whose crawl it ended
                errors.append(exc)

    await asyncio.gather(*(crawl_host(indexes) for indexes in by_host.values()))
    if errors:
        raise ExceptionGroup(f"{len(errors)} of {len(targets)} site crawls failed", errors)
    return reports


async def crawl_urls(archive: Archive, site: Site, urls: list[str], options: CrawlOptions | None = None,
                     **kwargs) -> CrawlReport:
    """Crawl `urls` of one site into `archive` (the library form of `forum-archiver crawl`)."""
    crawler = Crawler(archive, site, options=options, **kwargs)
    return await crawler.run(urls)


__all__ = ["CrawlOptions", "CrawlReport", "Crawler", "SiteTarget", "VerifyPace", "crawl_sites", "crawl_urls",
           "describe_duration", "verify_cycle_achieved_s", "verify_pace", "verify_pages_per_run"]
