"""The daemon's scheduler: APScheduler 3 wiring, and nothing else.

Jobs live in a SQLite job store beside the archive (`<archive>.jobs.db`), so they survive a
restart. Each site has one job with a stable id; it is re-registered with replace_existing on
every start, coalesces missed runs into one, never runs twice at once, and skips a run that is
later than the misfire grace time (the next one comes soon enough). Job functions are
module-level and take str arguments only: the job store pickles references, not objects.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scraper import config
from scraper.sites import Site, site_from_dict

log = logging.getLogger(__name__)

# Set by the daemon's SIGTERM/SIGINT handler; running crawls finish the page in hand and return.
STOP = threading.Event()


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: a stable id, a module-level function reference and its str args."""

    job_id: str
    func: str  # "module:function", as the job store records it
    args: tuple[str, ...]
    every_s: float


def jobs_path_for(db_path: str | Path) -> Path:
    """Where the job store of the archive at `db_path` lives."""
    return Path(f"{db_path}.jobs.db")


def build_scheduler(jobs_path: str | Path, *, max_workers: int = 1) -> BackgroundScheduler:
    """A scheduler (not started) whose jobs persist in the SQLite file `jobs_path`."""
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{Path(jobs_path).resolve()}")},
        executors={"default": ThreadPoolExecutor(max_workers=max_workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(config.MISFIRE_GRACE_S)},
        timezone="UTC",
    )


def add_job(scheduler, spec: JobSpec, *, misfire_grace_s: float = config.MISFIRE_GRACE_S,
            next_run_time: datetime | None = None) -> None:
    """Register (or replace) `spec`: coalesced, one instance at a time, explicit misfire grace."""
    kwargs = {"next_run_time": next_run_time} if next_run_time is not None else {}
    scheduler.add_job(spec.func, IntervalTrigger(seconds=spec.every_s), args=list(spec.args), id=spec.job_id,
                      name=spec.job_id, replace_existing=True, coalesce=True, max_instances=1,
                      misfire_grace_time=int(misfire_grace_s), **kwargs)


def site_job(db_path: str | Path, site: Site, *, delay_s: float | None = None, allow_private: bool = False,
             every_s: float | None = None) -> JobSpec:
    """The refresh job of one site: its boards, then its due threads, incrementally."""
    options = {"delay_s": delay_s, "allow_private": allow_private}
    return JobSpec(job_id=f"refresh:{site.name}", func=f"{__name__}:refresh_site",
                   args=(str(db_path), json.dumps(site.raw, ensure_ascii=False), json.dumps(options)),
                   every_s=every_s or site.every_s)


def refresh_site(db_path: str, site_json: str, options_json: str) -> dict:
    """Run one incremental crawl of a site (the job function); returns the run's counts."""
    from scraper.crawl import CrawlOptions, Crawler
    from scraper.progress import ProgressReporter
    from storage.archive import Archive

    site = site_from_dict(json.loads(site_json))
    options = json.loads(options_json)
    crawl_options = CrawlOptions(
        delay_s=options.get("delay_s"),
        allow_private_hosts=frozenset({site.host}) if options.get("allow_private") else frozenset(),
        incremental=True,
        reclaim_leases=True,
        verify_budget_requests=config.VERIFY_BUDGET_REQUESTS,
    )
    boards = board_urls(site)
    with site_lock(db_path, site.name) as held:
        if not held:
            log.warning("%s: another process is refreshing this site; skipped", site.name)
            return {"run_id": None, "requests": 0, "new_posts": 0}
        with Archive(db_path) as archive:
            known = archive.get_site(site.name)
            if known is not None:
                # We hold the site's lock: a 'running' refresh left behind was killed mid-run.
                archive.abandon_runs(known["id"], "refresh")
            crawler = Crawler(archive, site, options=crawl_options, stop=STOP, on_page=ProgressReporter(site.name))
            report = asyncio.run(crawler.run(boards, job="refresh"))
    log.info("%s: %d requests, %d new posts, %d new versions, failures %s", site.name, report.requests,
             report.new_posts, report.new_versions, dict(report.failures) or "none")
    return {"run_id": report.run_id, "requests": report.requests, "new_posts": report.new_posts}


@contextmanager
def site_lock(db_path: str | Path, site_name: str) -> Iterator[bool]:
    """An exclusive, non-blocking lock on one site of one archive, across processes; yields
    whether it was taken. The kernel drops it when the holder dies, even by kill -9."""
    path = Path(f"{db_path}.{site_name}.lock")
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def board_urls(site: Site) -> list[str]:
    """The first page of each of the site's boards."""
    from scraper.engines import get_engine

    engine = get_engine(site.engine)
    return [engine.board_url(site.base_url, fid, 1) for fid in site.boards]


def run_once(specs: list[JobSpec]) -> None:
    """Run every job once, one after another, in this thread (`run --once`)."""
    for spec in specs:
        if STOP.is_set():
            return
        _resolve(spec.func)(*spec.args)


def _resolve(ref: str):
    from apscheduler.util import ref_to_obj

    return ref_to_obj(ref)


__all__ = ["STOP", "JobSpec", "add_job", "board_urls", "build_scheduler", "jobs_path_for", "refresh_site",
           "run_once", "site_job", "site_lock"]
