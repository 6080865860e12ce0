"""The archiver's per-request overhead outside extraction and writing (docs/benchmarks.md 3).

fetch: every page of the end-to-end benchmark's forums (benchmarks.forum_hosts) fetched
through scraper.net.Fetcher inside a HostPacer slot (as Crawler._fetch does; delay 0), and
through one bare httpx.AsyncClient (the floor's), one coroutine per host, nothing parsed or
stored. CPU ms per request of this process (the server runs in its own).

lease: one frontier URL leased and finished (Archive.lease_next + finish, each committing),
with 20 sites holding N pending rows each: microseconds per URL.

    .venv/bin/python -m benchmarks.bench_fetch [--reps 2] [--only fetcher,bare,lease]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from benchmarks.corpus import command, machine
from benchmarks.forum_hosts import ForumHosts, ForumShape, build_forum, thread_page_paths
from scraper.net import AddressGuard, Fetcher
from scraper.politeness import HostPacer
from storage.archive import Archive

THREADS = 34  # per host, as bench_e2e
LEASE_SITES = 20
LEASE_PENDING_PER_SITE = (40, 1000, 5000)
LEASES = 2000
NOW = "2025-01-01T00:00:00+00:00"


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def host_urls(board_url: str, paths: list[str]) -> list[str]:
    parts = urlsplit(board_url)
    return [board_url] + [f"{parts.scheme}://{parts.netloc}{path}" for path in paths]


async def with_fetcher(boards: list[str], paths: list[str], reps: int) -> int:
    hosts = frozenset(urlsplit(board).hostname for board in boards)

    async def one_host(board: str) -> int:
        fetcher = Fetcher(user_agent="bench", guard=AddressGuard(allowed_hosts=hosts))
        pacer, host = HostPacer(delay_s=0.0), urlsplit(board).hostname
        try:
            for _ in range(reps):
                for url in host_urls(board, paths):
                    async with pacer.slot(host) as slot:
                        slot.server_s = (await fetcher.get(url)).server_s
        finally:
            await fetcher.aclose()
        return reps * (len(paths) + 1)

    return sum(await asyncio.gather(*(one_host(board) for board in boards)))


async def with_bare_client(boards: list[str], paths: list[str], reps: int) -> int:
    limits = httpx.Limits(max_connections=len(boards), max_keepalive_connections=len(boards))
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        async def one_host(board: str) -> int:
            for _ in range(reps):
                for url in host_urls(board, paths):
                    (await client.get(url)).read()
            return reps * (len(paths) + 1)

        return sum(await asyncio.gather(*(one_host(board) for board in boards)))


def fetch_rows(names: list[str], reps: int) -> None:
    paths = thread_page_paths(build_forum(THREADS))
    with ForumHosts(ForumShape(host_count=20, thread_count=THREADS)) as forums:
        boards = forums.board_urls()
        for name in names:
            run = with_fetcher if name == "fetcher" else with_bare_client
            asyncio.run(run(boards[:2], paths[:10], 1))  # connections and lazy imports out of the way
            cpu, wall = cpu_s(), time.perf_counter()
            requests = asyncio.run(run(boards, paths, reps))
            cpu, wall = cpu_s() - cpu, time.perf_counter() - wall
            print(f"| {name} | {requests} | {wall:.1f} | {1000 * cpu / requests:.3f} |", flush=True)


def lease_us(pending_per_site: int) -> float:
    with tempfile.TemporaryDirectory() as workdir, Archive(Path(workdir) / "lease.db") as archive:
        sites = [archive.upsert_site(f"s{n}", engine="discuz") for n in range(LEASE_SITES)]
        with archive.transaction():
            for site in sites:
                for n in range(pending_per_site):
                    archive.enqueue(site, url=f"http://h{site}/t{n}", url_key=f"thread:{n}:1", kind="thread",
                                    host=f"h{site}", priority=n % 3, now=NOW)
        started = time.perf_counter()
        for n in range(LEASES):
            row = archive.lease_next(sites[n % LEASE_SITES], now=NOW, lease_s=300)
            archive.finish(row["id"], "pending", "bench", next_due_at=NOW, now=NOW)
        return 1e6 * (time.perf_counter() - started) / LEASES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2, help="times each page is fetched")
    parser.add_argument("--only", default="fetcher,bare,lease", help="parts, comma-separated, in order")
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    print(f"machine: {machine()}")
    print(f"command: {command()}")
    fetchers = [name for name in names if name in ("fetcher", "bare")]
    if fetchers:
        print("\n| client | requests | wall s | CPU ms/request |\n|---|---|---|---|")
        fetch_rows(fetchers, args.reps)
    if "lease" in names:
        print(f"\n| pending rows a site ({LEASE_SITES} sites) | lease + finish us/URL |\n|---|---|")
        for pending in LEASE_PENDING_PER_SITE:
            print(f"| {pending} | {lease_us(pending):.0f} |", flush=True)


if __name__ == "__main__":
    main()
