"""The Discuz engine against an earlier version of itself, in one process: parse_thread of
the current scraper/engines/discuz.py and of the one at a git ref (--base), on the same
parsed pages, in alternating passes, so both meet the same spells of a shared machine.
The base module is loaded from `git show REF:scraper/engines/discuz.py` beside the current
rest of the package (clean.py and the others), so the figure is the engine file's change.

Also the cost of parse_html's nesting guard: parse_html + parse_thread against a bare
lexbor parse + parse_thread, alternating the same way.

Both versions must return equal ThreadPages on every page before a figure is printed.

    .venv/bin/python -m benchmarks.bench_engine_ab --base REF [--pages 40] [--rounds 40]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from selectolax.lexbor import LexborHTMLParser

from benchmarks.corpus import command, machine, thread_pages
from scraper.clean import parse_html
from scraper.engines import discuz
from scraper.engines.base import ParseContext

ENGINE_PATH = "scraper/engines/discuz.py"


def engine_at(ref: str, directory: Path) -> ModuleType:
    """scraper/engines/discuz.py as it was at git `ref`, imported as its own module."""
    source = subprocess.run(["git", "show", f"{ref}:{ENGINE_PATH}"], check=True, capture_output=True, text=True).stdout
    path = directory / "discuz_base.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("discuz_base", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def paired(first: Callable[[], None], second: Callable[[], None], rounds: int) -> tuple[list[float], list[float]]:
    """Seconds of each of `rounds` alternating calls of first and second; which goes first
    alternates too, so neither always follows the other."""
    times: tuple[list[float], list[float]] = ([], [])
    for round_no in range(rounds):
        order = ((first, times[0]), (second, times[1]))
        for run, into in order if round_no % 2 == 0 else reversed(order):
            start = time.perf_counter()
            run()
            into.append(time.perf_counter() - start)
    return times


def report(label: str, base: list[float], current: list[float], pages: int) -> None:
    ratio = statistics.median(c / b for b, c in zip(base, current))
    print(f"{label}: {min(base) * 1000 / pages:.3f} -> {min(current) * 1000 / pages:.3f} ms/page (best passes); "
          f"paired median ratio {ratio:.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git ref of the engine to compare with")
    parser.add_argument("--pages", type=int, default=40, help="distinct thread pages (default 40)")
    parser.add_argument("--rounds", type=int, default=40, help="alternating passes of each (default 40)")
    args = parser.parse_args()

    pages = thread_pages(args.pages)
    trees = [(url, parse_html(html)) for url, html in pages]
    with tempfile.TemporaryDirectory() as directory:
        base = engine_at(args.base, Path(directory))
    for url, tree in trees:
        if base.parse_thread(tree, ParseContext(url=url)) != discuz.parse_thread(tree, ParseContext(url=url)):
            raise SystemExit(f"the two engines read {url} differently")
    print(f"command: {command()}")
    print(f"machine: {machine()}")
    print(f"pages: {len(trees)}, equal ThreadPages from both engines; {args.rounds} alternating passes each")

    def engine_pass(module: ModuleType) -> Callable[[], None]:
        return lambda: [module.parse_thread(tree, ParseContext(url=url)) for url, tree in trees]

    report(f"parse_thread, {args.base} -> working tree", *paired(engine_pass(base), engine_pass(discuz), args.rounds),
           len(trees))

    def parse_and_extract(parse: Callable[[str], LexborHTMLParser]) -> Callable[[], None]:
        return lambda: [discuz.parse_thread(parse(html), ParseContext(url=url)) for url, html in pages]

    report("parse + parse_thread, bare lexbor parse -> parse_html (with its nesting guard)",
           *paired(parse_and_extract(LexborHTMLParser), parse_and_extract(parse_html), args.rounds), len(pages))


if __name__ == "__main__":
    main()
