"""Raw body compression: zlib and zstd levels on the demo forum's thread pages, as
Archive.store_body stores them (each body once, deduplicated by sha256). Per codec and level:
stored bytes over raw bytes, and milliseconds per page to compress and to decompress, best of
several rounds.

Two sets of pages, both rendered by the demo forum's renderer (jammer on): the end-to-end
benchmark's forum (benchmarks.forum_hosts: ~40 KB pages, posts of typical length) and the
~100 KB pages of benchmarks.corpus (long posts).

    .venv/bin/python -m benchmarks.bench_compression [--levels 1,3,6,9] [--zstd-levels 1,3,6] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
import zlib
from collections.abc import Callable

import zstandard

from benchmarks.corpus import FORUM_NOW, SITE_URL, command, machine, thread_pages
from benchmarks.forum_hosts import build_forum, thread_page_paths
from scraper.demo.render import render_thread_page
from storage.archive import BODY_COMPRESSION, BODY_COMPRESSION_LEVEL

E2E_THREADS = 34  # one host of the end-to-end benchmark: 100 thread pages


def e2e_pages() -> list[bytes]:
    """One host's thread pages of the end-to-end benchmark's forum, as the server sends them."""
    forum = build_forum(E2E_THREADS)
    pages = []
    for thread in forum.threads.values():
        for page in range(1, forum.thread_pages(thread) + 1):
            pages.append(render_thread_page(forum, thread, page, SITE_URL, "utf-8").encode("utf-8"))
    assert len(pages) == len(thread_page_paths(forum)), "the forum's pages and the paths disagree"
    return pages


def codecs(zlib_levels: list[int], zstd_levels: list[int]) -> dict[str, tuple[Callable, Callable]]:
    """name: (compress, decompress) of every codec and level to time."""
    out = {f"zlib {level}": (lambda page, level=level: zlib.compress(page, level), zlib.decompress)
           for level in zlib_levels}
    for level in zstd_levels:
        # One compressor and decompressor reused across pages, as the archive keeps them.
        compressor, decompressor = zstandard.ZstdCompressor(level=level), zstandard.ZstdDecompressor()
        out[f"zstd {level}"] = (compressor.compress, decompressor.decompress)
    return out


def measure(pages: list[bytes], compress: Callable, decompress: Callable, rounds: int) -> tuple[float, float, float]:
    """(stored / raw bytes, compress ms/page, decompress ms/page), best of `rounds`."""
    compress_s = decompress_s = float("inf")
    stored = []
    for _ in range(rounds):
        start = time.perf_counter()
        stored = [compress(page) for page in pages]
        compress_s = min(compress_s, time.perf_counter() - start)
        start = time.perf_counter()
        for data in stored:
            decompress(data)
        decompress_s = min(decompress_s, time.perf_counter() - start)
    ratio = sum(map(len, stored)) / sum(map(len, pages))
    return ratio, compress_s * 1000 / len(pages), decompress_s * 1000 / len(pages)


def main() -> None:
    """Render both page sets, time each level on each, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,3,6,9", help="zlib levels, comma-separated")
    parser.add_argument("--zstd-levels", default="1,3,6", help="zstd levels, comma-separated")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per level; the best is kept")
    parser.add_argument("--corpus-pages", type=int, default=40, help="~100 KB pages of benchmarks.corpus")
    args = parser.parse_args()
    timed = codecs([int(level) for level in args.levels.split(",")],
                   [int(level) for level in args.zstd_levels.split(",")])
    sets = {
        "e2e forum pages": e2e_pages(),
        "corpus ~100 KB pages": [html.encode("utf-8") for _, html in thread_pages(args.corpus_pages)],
    }
    print(f"command: {command()}")
    print(f"machine: {machine()}")
    print(f"zlib {zlib.ZLIB_RUNTIME_VERSION}, zstd {'.'.join(map(str, zstandard.ZSTD_VERSION))}; the archive's codec now: "
          f"{BODY_COMPRESSION} {BODY_COMPRESSION_LEVEL}; demo forum clock {FORUM_NOW:%Y-%m-%d}")
    for name, pages in sets.items():
        raw = sum(map(len, pages))
        print(f"{name}: {len(pages)} pages, mean {raw / len(pages) / 1000:.1f} KB")
        print("  codec    stored/raw  stored KB/page  compress ms/page  decompress ms/page")
        for codec, (compress, decompress) in timed.items():
            ratio, compress_ms, decompress_ms = measure(pages, compress, decompress, args.rounds)
            print(f"  {codec:7s}  {ratio:10.1%}  {ratio * raw / len(pages) / 1000:14.1f}  "
                  f"{compress_ms:16.3f}  {decompress_ms:18.3f}")


if __name__ == "__main__":
    main()
