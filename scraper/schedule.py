"""The daemon's scheduler: APScheduler 3 wiring, and nothing else.

Jobs live in a SQLite job store beside the archive (`<archive>.jobs.db`), so they survive a
restart. Each site has two jobs with stable ids, `discover:<site>` and `refresh:<site>`; each
is re-registered with replace_existing on every start, coalesces missed runs into one, never
runs twice at once, and runs however late it starts (config.MISFIRE_GRACE_S). The two jobs of a
site share the site's frontier, so they take the lock of the site's host: one waits (up to its
interval) while the other runs. Job functions are module-level and
take str arguments only: the job store pickles references, not objects.
"""

from __future__ import annotations

import asyncio
import fcntl
import glob
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scraper import config
from scraper.errors import ConfigError
from scraper.sites import Site, site_from_dict

if TYPE_CHECKING:
    from scraper.crawl import CrawlOptions

log = logging.getLogger(__name__)

# Set by the daemon's SIGTERM/SIGINT handler; running crawls finish the page in hand and return.
STOP = threading.Event()
JOBS = ("discover", "refresh")  # each site's jobs, in the order `run --once` runs them
CRAWLING_JOBS = (*JOBS, "crawl")  # the runs that hold the lock of their site's host throughout
LOCK_POLL_S = 0.2  # how often a job waiting for its host's lock tries again


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: a stable id, a module-level function reference and its str args."""

    job_id: str
    func: str  # "module:function", as the job store records it
    args: tuple[str, ...]
    every_s: float


@dataclass(frozen=True)
class RunOptions:
    """The operator's flags for a site's jobs (`run`'s options); stored as JSON in the job store."""

    delay_s: float | None = None  # overrides the site's delay
    allow_private: bool = False  # the site's own host may be a loopback/private address
    verify_budget_requests: int | None = None  # overrides the site's budget when set
    # Overrides the site's schedule every_s (`--every`): the jobs' interval, which the verify pass paces its share to.
    every_s: float | None = None
    # How long a job waits for its host's lock. None: a scheduled job waits up to its own
    # interval (a site's other job may run long; skipping every time it did would starve this
    # one), a `--once` run SITE_LOCK_WAIT_S.
    lock_wait_s: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunOptions:
        # Jobs stored by an older version lack the newer keys: they take the defaults.
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})


def jobs_path_for(db_path: str | Path) -> Path:
    """Where the job store of the archive at `db_path` lives."""
    return Path(f"{db_path}.jobs.db")


# The archive's lock files, beside it: <archive>.<name>.lock, named "daemon" for the daemon's
# slot and after the host for a host's crawls.
DAEMON_LOCK_NAME = "daemon"


def lock_path(db_path: str | Path, name: str) -> Path:
    return Path(f"{db_path}.{name}.lock")


def _pid_in(path: Path) -> str:
    """The pid a daemon wrote in its lock file, as written."""
    return path.read_text(encoding="utf-8").strip() or "unknown"


@contextmanager
def daemon_lock(db_path: str | Path) -> Iterator[None]:
    """Hold the archive's one daemon slot for the block. A second daemon on the same archive
    would share its job store and remove the first one's jobs as sites it was not given (one
    APScheduler job store must never serve two schedulers): it is refused with a ConfigError
    naming the holder. The kernel drops the lock when the holder dies, even by kill -9."""
    lock = FileLock(lock_path(db_path, DAEMON_LOCK_NAME))
    if not lock.try_acquire():
        raise ConfigError(f"a daemon is running on {db_path} already (pid {_pid_in(lock.path)}); one daemon serves "
                          "every site of an archive: stop it and start one `run` naming all the sites "
                          "(--config and --site may repeat)")
    try:
        lock.write(str(os.getpid()))
        yield
    finally:
        lock.release()


def archive_lock_holders(db_path: str | Path) -> list[str]:
    """Who has the archive at `db_path` for writing now, whether or not they are writing this
    moment: a daemon holds its daemon slot for its whole life, idle between jobs too, and a
    crawl holds its host's lock for its whole run. One description each; empty when none does.
    Each lock is tried and at once let go, so the answer is for this moment only."""
    db = Path(db_path)
    holders = []
    for path in sorted(db.parent.glob(lock_path(glob.escape(db.name), "*").name)):
        lock = FileLock(path)
        try:
            free = lock.try_acquire()
        except OSError:  # a lock file that cannot be opened (a read-only copy): no one writes there
            continue
        if free:
            lock.release()
            continue
        name = path.name.removeprefix(f"{db.name}.").removesuffix(".lock")
        holders.append(f"a daemon (pid {_pid_in(path)})" if name == DAEMON_LOCK_NAME else f"a crawl of {name}")
    return holders


def executor_workers(job_count: int) -> int:
    """Threads for the daemon's jobs: one per job, so a slow forum never holds up the others,
    up to a cap (each running job holds an archive connection and a socket)."""
    return max(1, min(job_count, config.DAEMON_MAX_WORKERS))


def build_scheduler(jobs_path: str | Path, *, max_workers: int = 1) -> BackgroundScheduler:
    """A scheduler (not started) whose jobs persist in the SQLite file `jobs_path`."""
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{Path(jobs_path).resolve()}")},
        executors={"default": ThreadPoolExecutor(max_workers=max_workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": _grace(config.MISFIRE_GRACE_S)},
        timezone="UTC",
    )


def _grace(seconds: float | None) -> int | None:
    # APScheduler's own default (1 s) would drop any run a busy pool starts late: always explicit.
    return None if seconds is None else int(seconds)


def add_job(scheduler, spec: JobSpec, *, misfire_grace_s: float | None = config.MISFIRE_GRACE_S,
            next_run_time: datetime | None = None) -> None:
    """Register (or replace) `spec`: coalesced, one instance at a time, an explicit misfire
    grace (None: a late run still runs, once)."""
    kwargs = {"next_run_time": next_run_time} if next_run_time is not None else {}
    scheduler.add_job(spec.func, IntervalTrigger(seconds=spec.every_s), args=list(spec.args), id=spec.job_id,
                      name=spec.job_id, replace_existing=True, coalesce=True, max_instances=1,
                      misfire_grace_time=_grace(misfire_grace_s), **kwargs)


def site_jobs(db_path: str | Path, site: Site, options: RunOptions = RunOptions()) -> list[JobSpec]:
    """A site's two jobs: `discover:<site>` reads its boards (and guide) and fetches the threads
    they show changed; `refresh:<site>` revisits its due threads and runs the verify pass. They
    run every options.every_s (`--every`), else the site's every_s, and the options travel with
    the jobs, so the refresh job paces its verify pass to that interval."""
    args = (str(db_path), json.dumps(site.raw, ensure_ascii=False), options.to_json())
    return [JobSpec(job_id=f"{job}:{site.name}", func=f"{__name__}:{job}_site", args=args,
                    every_s=run_interval_s(site, options)) for job in JOBS]


def run_interval_s(site: Site, options: RunOptions) -> float:
    """How often a site's jobs run: `--every`, else the site's schedule every_s (also what a
    `--once` run paces to: the cron user runs it that often)."""
    return options.every_s or site.every_s


def first_run_lag(spec: JobSpec) -> timedelta:
    """How long after the daemon starts a job first runs: discovery at once, a refresh a little
    later, so that on a fresh archive the boards are read before the due list is."""
    return timedelta(seconds=config.REFRESH_LAG_S if spec.job_id.startswith("refresh:") else 0)


def crawl_options(site: Site, options: RunOptions, job: str, *,
                  group_commit_s: float = config.GROUP_COMMIT_S) -> CrawlOptions:
    """What one job of a site asks of the Crawler. Both are incremental and may reclaim
    leases: they run only while holding the lock of the site's host. group_commit_s: how
    long its saved pages may wait to commit together (0: each block commits at once)."""
    from scraper.crawl import CrawlOptions

    verify_budget = options.verify_budget_requests
    if verify_budget is None:
        verify_budget = site.verify_budget_requests
    return CrawlOptions(
        delay_s=options.delay_s,
        allow_private_hosts=frozenset({site.host}) if options.allow_private else frozenset(),
        incremental=True,
        reclaim_leases=True,
        revisit_due_threads=job == "refresh",
        verify_budget_requests=verify_budget if job == "refresh" else 0,
        verify_min_age_s=site.verify_min_age_s,
        verify_cycle_s=site.verify_cycle_s,
        run_interval_s=run_interval_s(site, options),
        group_commit_s=group_commit_s,
    )


def job_seeds(site: Site, job: str) -> list[str]:
    """Where a job starts: discovery at the site's boards (and its guide, which shows new threads
    on boards the config does not list), a refresh at the archive's own due list."""
    if job != "discover":
        return []
    from scraper.engines import get_engine

    guide = [get_engine(site.engine).guide_url(site.base_url, 1)] if site.guide else []
    return board_urls(site) + guide


def discover_site(db_path: str, site_json: str, options_json: str) -> dict:
    """The discover job: the site's boards, and the threads they show new or changed."""
    return _run_site_job(db_path, site_json, options_json, "discover")


def refresh_site(db_path: str, site_json: str, options_json: str) -> dict:
    """The refresh job: the site's due threads, then the verify pass within its budget."""
    return _run_site_job(db_path, site_json, options_json, "refresh")


def _run_site_job(db_path: str, site_json: str, options_json: str, job: str) -> dict:
    from scraper.crawl import Crawler
    from scraper.progress import ProgressReporter
    from storage.archive import Archive

    site = site_from_dict(json.loads(site_json))
    options = RunOptions.from_json(options_json)
    lock_wait_s = options.lock_wait_s if options.lock_wait_s is not None else run_interval_s(site, options)
    with host_lock(db_path, site.host, wait_s=lock_wait_s) as held:
        if not held:
            if STOP.is_set():
                log.warning("%s: stopping; %s not started", site.name, job)
            else:
                log.warning("%s: the lock of %s stayed taken for %.0f s (another job or process is crawling "
                            "that host); %s skipped until its next time", site.name, site.host, lock_wait_s, job)
            return {"run_id": None, "requests": 0, "new_posts": 0, "skipped": True}
        with Archive(db_path) as archive:
            # Each scheduled job writes through a connection of its own, beside the other
            # jobs' (one thread each). A group of commits holds the write lock across the
            # job's fetches and politeness gaps, and shuts the other jobs out: sixteen sites
            # at the default gap left five failing with "database is locked". Committed at
            # once, a page's writes hold the lock for milliseconds; at a polite gap there was
            # nothing to group anyway.
            crawler = Crawler(archive, site, options=crawl_options(site, options, job, group_commit_s=0),
                              stop=STOP, on_page=ProgressReporter(site.name))
            report = crawl_holding_lock(held, crawler, job_seeds(site, job), job=job)
    _log_report(site, job, report)
    return {"run_id": report.run_id, "requests": report.requests, "new_posts": report.new_posts}


def crawl_holding_lock(lock: HostLock, crawler, seeds: list[str], *, job: str = "crawl"):
    """Run `crawler` over `seeds` while holding the lock of its site's host, as every crawling
    job and command does: the runs a dead process left 'running' are closed first (none of
    them can be alive), and the crawl is paced by the host's last one. Give the crawler
    reclaim_leases: what a dead crawl held leased is taken back at its start."""
    abandon_dead_runs(crawler.archive, crawler.site)
    with paced_by_host_lock(lock, crawler):
        return asyncio.run(crawler.run(seeds, job=job))


def abandon_dead_runs(archive, site: Site) -> None:
    """Close the site's runs left 'running' by a process that died: call it only while holding
    the lock of the site's host. Every job that crawls (the daemon's, `crawl`) holds that lock
    for its whole run, so while we hold it none of them can be alive."""
    known = archive.get_site(site.name)
    if known is not None:
        _abandon_crawling_runs(archive, known["id"])


def _abandon_crawling_runs(archive, site_id: int) -> int:
    return sum(archive.abandon_runs(site_id, job) for job in CRAWLING_JOBS)


def close_dead_runs(db_path: str | Path, archive) -> int:
    """Close the runs of every site of the archive left 'running' by a process that died,
    configured or not (a site dropped from the config has no job that would): a host whose
    lock is free has no crawl alive. A host being crawled now is left alone. Returns how many
    runs were closed."""
    closed = 0
    for site_id, base_url in archive.db.execute(
            "SELECT id, base_url FROM sites WHERE id IN (SELECT site_id FROM runs WHERE status = 'running')").fetchall():
        host = urlsplit(base_url or "").hostname
        lock = HostLock(db_path, host) if host else None
        if lock is not None and lock.try_acquire():
            try:
                closed += _abandon_crawling_runs(archive, site_id)
            finally:
                lock.release()
    return closed


def _log_report(site: Site, job: str, report) -> None:
    log.info("%s %s: %d requests, %d new posts, %d new versions, %d posts gone, failures %s", site.name, job,
             report.requests, report.new_posts, report.new_versions, report.gone_posts, dict(report.failures) or "none")


class FileLock:
    """An exclusive lock on a file, across threads and processes, with a line of text in the
    file for whoever takes it next. The kernel drops the lock when the holder dies, even by
    kill -9."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._handle = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never blocks."""
        if self._handle is not None:
            return True
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for as long as the lock is
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def read(self) -> str:
        """The file's text (only while the lock is held)."""
        self._handle.seek(0)
        return self._handle.read().strip()

    def write(self, text: str) -> None:
        """Replace the file's text (only while the lock is held)."""
        self._handle.truncate(0)
        self._handle.write(f"{text}\n")
        self._handle.flush()


class HostLock(FileLock):
    """An exclusive lock on one host's crawling into one archive, across threads and processes.
    A job holds its site's host lock for its whole run, which keeps a site's discover and
    refresh jobs apart (they share the site's queue) and keeps two sites on one host from
    pacing their requests separately, two in flight at once.

    The file holds when the host may next be asked (Unix time), written by the crawl that ends:
    the next one waits out the last one's gap, the Retry-After pause a server gave it, or its
    open circuit, instead of asking at once."""

    def __init__(self, db_path: str | Path, host: str):
        super().__init__(lock_path(db_path, host))

    def not_before(self) -> float:
        """The Unix time before which the host must not be asked (0 when none is known).
        Only while the lock is held."""
        try:
            return float(self.read() or 0)
        except ValueError:
            return 0.0  # a file from an older version, or torn by a crash: no wait known

    def set_not_before(self, unix_s: float) -> None:
        """Record when the host may next be asked. Only while the lock is held."""
        self.write(f"{unix_s:.3f}")


def acquire_all(locks: list[HostLock], wait_s: float) -> list[HostLock]:
    """Take as many of `locks` as free up within `wait_s` seconds (a stop request ends the wait
    early); returns those taken."""
    deadline = time.monotonic() + wait_s
    pending = list(locks)
    while True:
        pending = [lock for lock in pending if not lock.try_acquire()]
        if not pending or time.monotonic() >= deadline or STOP.is_set():
            return [lock for lock in locks if lock not in pending]
        time.sleep(LOCK_POLL_S)


@contextmanager
def host_lock(db_path: str | Path, host: str, *, wait_s: float = 0.0) -> Iterator[HostLock | None]:
    """Hold the host's lock for the block, waiting up to `wait_s` for it; yields the lock, or
    None when it was not taken."""
    lock = HostLock(db_path, host)
    held = bool(acquire_all([lock], wait_s))
    try:
        yield lock if held else None
    finally:
        lock.release()


@contextmanager
def paced_by_host_lock(lock: HostLock, crawler) -> Iterator[None]:
    """Around a crawl of the held lock's host: the crawler asks no sooner than the host's last
    crawl allowed, and records when the next crawl may start: after its own last gap, or once
    its circuit half-opens if the host kept failing."""
    host = crawler.site.host
    crawler.pacer.pause(host, lock.not_before() - time.time())
    try:
        yield
    finally:
        lock.set_not_before(time.time() + crawler.host_ready_in())


def board_urls(site: Site) -> list[str]:
    """The first page of each of the site's boards."""
    from scraper.engines import get_engine

    engine = get_engine(site.engine)
    return [engine.board_url(site.base_url, fid, 1) for fid in site.boards]


def run_once(db_path: str | Path, sites: list[Site], options: RunOptions = RunOptions()) -> list:
    """Run every site's jobs once and return their reports (`run --once`): sites on different
    hosts at the same time, each site's discovery before its refresh. A site whose host's lock
    stays taken (another process is crawling that host) is left out, with a warning."""
    from scraper.crawl import SiteTarget, crawl_sites
    from scraper.progress import ProgressReporter
    from storage.archive import Archive

    locks = {host: HostLock(db_path, host) for host in {site.host for site in sites}}
    lock_wait_s = options.lock_wait_s if options.lock_wait_s is not None else config.SITE_LOCK_WAIT_S
    held = acquire_all(list(locks.values()), lock_wait_s)
    try:
        runnable = [site for site in sites if locks[site.host] in held]
        for site in sites:
            if site not in runnable and STOP.is_set():
                log.warning("%s: stopping; not started", site.name)
            elif site not in runnable:
                log.warning("%s: the lock of %s stayed taken for %.0f s (another process is crawling that "
                            "host); skipped", site.name, site.host, lock_wait_s)
        reporters = {site.name: ProgressReporter(site.name) for site in runnable}
        targets = [SiteTarget(site, tuple(job_seeds(site, job)), crawl_options(site, options, job), job)
                   for site in runnable for job in JOBS]
        with Archive(db_path) as archive:
            for site in runnable:
                abandon_dead_runs(archive, site)
            try:
                # Each host's wait goes in from its lock file and comes back out to it.
                waits = {host: lock.not_before() - time.time() for host, lock in locks.items() if lock in held}
                try:
                    reports = asyncio.run(crawl_sites(archive, targets, stop=STOP, host_waits=waits,
                                                      progress_for=lambda site: reporters[site.name]))
                finally:
                    for host, wait_s in waits.items():
                        locks[host].set_not_before(time.time() + wait_s)
            finally:
                # The reporters share one stream, and so one status line: end it once.
                for reporter in list(reporters.values())[:1]:
                    reporter.close()
    finally:
        for lock in held:
            lock.release()
    for target, report in zip(targets, reports):
        if report is not None:
            _log_report(target.site, target.job, report)
    return reports


def _resolve(ref: str):
    from apscheduler.util import ref_to_obj

    return ref_to_obj(ref)


__all__ = ["CRAWLING_JOBS", "JOBS", "STOP", "HostLock", "JobSpec", "RunOptions", "abandon_dead_runs", "acquire_all",
           "crawl_holding_lock",
           "close_dead_runs", "add_job", "board_urls",
           "build_scheduler", "crawl_options", "discover_site", "executor_workers", "first_run_lag", "job_seeds", "jobs_path_for",
           "host_lock", "refresh_site", "run_interval_s", "run_once", "site_jobs"]
