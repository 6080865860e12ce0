"""The operator's view of an archive: sites, queue, last runs, failures, next due times.

`site_status` reads (it never writes, so it is safe beside a running daemon); `format_status`
turns what it read into the text `forum-archiver status` prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from scraper.crawl import VerifyPace, describe_duration, verify_pace
from scraper.errors import ConfigError
from scraper.sites import site_from_dict
from storage.archive import Archive

LAST_RUNS = 5
NEXT_DUE_THREADS = 5


@dataclass
class SiteStatus:
    name: str
    base_url: str | None
    threads: int
    posts: int
    queue: dict[str, int]  # frontier rows by state
    runs: list[dict]  # the latest runs, newest first
    failures: dict[str, int]  # reason -> count, over the frontier rows that ended failed
    # reason -> count, over the rows not fetched by rule (robots.txt, a trap, a Crawl-delay
    # past the site's limit): a site making no progress says why here
    skipped: dict[str, int] = field(default_factory=dict)
    next_due: list[dict] = field(default_factory=list)  # the soonest due threads
    verify: VerifyPace | None = None  # the verify pass's pace at the site's configured every_s


def _rows(archive: Archive, sql: str, params: list) -> list[dict]:
    cursor = archive.db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def stored_verify_pace(archive: Archive, site_id: int, config_json: str) -> VerifyPace | None:
    """The verify pass's pace at the site's stored config (None without a usable config). A
    `run --every` that overrides the config's every_s is not stored, so not seen here."""
    try:
        site = site_from_dict(json.loads(config_json or "{}"), source="stored site config")
    except (ConfigError, ValueError):
        return None
    return verify_pace(archive.thread_page_count(site_id), run_interval_s=site.every_s,
                       cycle_s=site.verify_cycle_s, budget=site.verify_budget_requests,
                       min_age_s=site.verify_min_age_s)


def site_status(archive: Archive) -> list[SiteStatus]:
    """What the archive holds and does, per site."""
    report = []
    for site in _rows(archive, "select id, name, base_url, config_json from sites order by name", []):
        sid = site["id"]
        count = lambda sql: archive.db.execute(sql, [sid]).fetchone()[0]  # noqa: E731
        runs = _rows(archive, """select id, job, status, started_at, finished_at, requests, not_modified,
                new_posts, new_versions, gone_posts, failures, failures_json from runs where site_id = ?
                order by id desc limit ?""", [sid, LAST_RUNS])
        for run in runs:
            run["failures_by_reason"] = json.loads(run.pop("failures_json") or "{}")
        ended = lambda state: {r["reason"] or "unknown": r["n"] for r in _rows(  # noqa: E731
            archive, """select reason, count(*) as n from frontier where site_id = ? and state = ?
                group by reason order by n desc, reason""", [sid, state])}
        report.append(SiteStatus(
            name=site["name"], base_url=site["base_url"],
            threads=count("select count(*) from threads where site_id = ?"),
            posts=count("select count(*) from posts where site_id = ?"),
            queue=archive.frontier_counts(sid), runs=runs, failures=ended("failed"), skipped=ended("skipped"),
            next_due=_rows(archive, """select tid, title, next_due_at, quiet_visits from threads
                where site_id = ? and next_due_at is not null and gone_at is null
                order by next_due_at limit ?""", [sid, NEXT_DUE_THREADS]),
            verify=stored_verify_pace(archive, sid, site["config_json"])))
    return report


def index_backlog_note(archive: Archive) -> str | None:
    """A line for `status` when posts wait for the search indexes, else None."""
    pending = archive.pending_index_count()
    if not pending:
        return None
    return (f"search indexes: {pending} posts not yet indexed (search still finds them, by scanning, "
            f"more slowly); `forum-archiver index --db FILE` indexes them now")


def format_status(sites: list[SiteStatus]) -> str:
    """Plain text for a terminal or a log: one block per site."""
    if not sites:
        return "the archive holds no sites yet"
    lines = []
    for site in sites:
        lines.append(f"site {site.name} ({site.base_url}): {site.threads} threads, {site.posts} posts")
        lines.append("  queue: " + ", ".join(f"{state} {n}" for state, n in site.queue.items()))
        for run in site.runs:
            failed = ", ".join(f"{k} {v}" for k, v in sorted(run["failures_by_reason"].items())) or "none"
            lines.append(f"  run {run['id']} {run['job']} {run['status']} {run['started_at']} -> "
                         f"{run['finished_at'] or '...'}: {run['requests']} requests, {run['not_modified']} "
                         f"not modified, {run['new_posts']} new posts, {run['new_versions']} new versions, "
                         f"{run['gone_posts']} posts gone; "
                         f"failures: {failed}")
        if not site.runs:
            lines.append("  no runs yet")
        lines.append("  failed URLs by reason: " + (
            ", ".join(f"{reason} {n}" for reason, n in site.failures.items()) or "none"))
        if site.skipped:
            lines.append("  skipped URLs by reason: " + ", ".join(f"{reason} {n}" for reason, n in site.skipped.items()))
        pace = site.verify
        if pace and pace.thread_pages:
            short = (f"; a cycle of {describe_duration(pace.cycle_s)} asks {pace.asked_per_run} a run, more than "
                     f"the budget of {pace.budget}") if pace.budget_short else ""
            lines.append(f"  verify: {pace.pages_per_run} of {pace.thread_pages} thread pages a run "
                         f"(every {pace.run_interval_s:g} s), each page about every {describe_duration(pace.round_s)}"
                         f"{short}")
        for thread in site.next_due:
            lines.append(f"  next due {thread['next_due_at']}: thread {thread['tid']} {thread['title'] or ''} "
                         f"(quiet visits {thread['quiet_visits']})")
    return "\n".join(lines)


__all__ = ["SiteStatus", "format_status", "index_backlog_note", "site_status", "stored_verify_pace"]
