"""Extraction benchmark: parse + clean + extract of ~100 KB Discuz thread pages (10 posts,
jammer on), against the floor (selectolax parsing the same text, nothing else), against the
same extraction written with BeautifulSoup 4 over lxml (forum-dl's choice), and against two
lighter extractors that read only four fields per post, with BeautifulSoup and with parsel (a
Scrapy spider's). All five run in one process, on the same pages, in the same run.

The same extraction (benchmarks.bs4_discuz) is a port of our engine's thread-page parse: it
returns the same ThreadPage, and the script checks it equal (==) to ours on every page, every
field of every post, before it prints a single figure. The 20x target is judged on it: it is
the issue's "same extraction written with BeautifulSoup". The light extractors return (pid,
author, time, text) per post with a few noise selectors, much less work than ours; they must
agree with ours on post count, pids and authors, and their ratios carry no target.

    .venv/bin/python -m benchmarks.bench_extract [--pages 40] [--rounds 10] [--profile]
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import fields

from bs4 import BeautifulSoup
from parsel import Selector
from selectolax.lexbor import LexborHTMLParser

from benchmarks import bs4_discuz
from benchmarks.corpus import command, machine, thread_pages
from scraper.clean import parse_html, strip_jammer_text
from scraper.engines.base import ParseContext, ThreadPage
from scraper.engines.discuz import DiscuzEngine

TARGET_OURS_OVER_FLOOR = 5.0  # at most
TARGET_BS4_OVER_OURS = 20.0  # at least, for the same extraction

# What a hand-written spider removes from a Discuz post body before taking its text:
# jammer runs (font.jammer, display:none spans), the ad slot, the edit note and quotes.
NOISE_CSS = ('font.jammer', 'span[style*="display:none"]', 'div.a_pr', 'i.pstatus', 'div.quote')
NOISE_XPATH = ('.//font[@class="jammer"]', './/span[contains(@style,"display:none")]',
               './/div[contains(@class,"a_pr")]', './/i[contains(@class,"pstatus")]',
               './/div[contains(@class,"quote")]')
PID_ID = re.compile(r"^pid(\d+)$")
TIME_PREFIX = "发表于"

Row = tuple[int, str, str, str]  # pid, author, time as printed, text


def _lines_text(pieces: list[str]) -> str:
    # Join text pieces, then drop jammer runs left at line edges, as our text layer does.
    text = "".join(pieces).replace("\r", "")
    text = "\n".join(line.strip() for line in text.split("\n"))
    text, _ = strip_jammer_text(text)
    return "\n".join(line for line in text.split("\n") if line)


# --- the five contestants --------------------------------------------------------------------
def floor_parse(html: str, url: str) -> bool:
    """The floor: selectolax (lexbor) parses the text and nothing else."""
    return LexborHTMLParser(html).root is not None


def ours(html: str, url: str) -> ThreadPage:
    """The archiver: parse, markup/jammer/phrase cleaning and full post extraction."""
    return ENGINE.parse_thread(parse_html(html), ParseContext(url=url))


def with_bs4_same(html: str, url: str) -> ThreadPage:
    """The same extraction with BeautifulSoup over lxml: our engine's parse, ported."""
    return bs4_discuz.parse_thread(html, ParseContext(url=url))


def four_fields(page: ThreadPage) -> list[Row]:
    """The four fields the light extractors read, from a ThreadPage."""
    return [(p.pid, p.author, p.posted_at_raw, p.content_text) for p in page.posts]


def with_bs4(html: str, url: str) -> list[Row]:
    """Four fields with BeautifulSoup over lxml, the way forum-dl's extractors work."""
    soup = BeautifulSoup(html, "lxml")
    rows = []
    for table in soup.select('div#postlist table[id^="pid"]'):
        match = PID_ID.match(table["id"])
        if not match:
            continue
        author = table.select_one('div.authi a.xi2[href*="space"]')
        posted = table.select_one('em[id^="authorposton"]')
        titled = posted.select_one("span[title]")
        body = table.select_one('[id^="postmessage_"]')
        for noise in body.select(", ".join(NOISE_CSS)):
            noise.decompose()
        for br in body.find_all("br"):
            br.replace_with("\n")
        time_text = titled.get_text() if titled else posted.get_text().replace(TIME_PREFIX, "").strip()
        rows.append((int(match[1]), author.get_text(strip=True), time_text, _lines_text([body.get_text()])))
    return rows


def with_parsel(html: str, url: str) -> list[Row]:
    """Four fields with parsel (lxml + XPath), the way a Scrapy spider would write them."""
    return parsel_rows(Selector(text=html))


def parsel_rows(selector: Selector) -> list[Row]:
    """with_parsel's rows from a page already parsed (a Scrapy response's own selector)."""
    rows = []
    for table in selector.css('div#postlist table[id^="pid"]'):
        match = PID_ID.match(table.attrib["id"])
        if not match:
            continue
        author = table.css('div.authi a.xi2[href*="space"]::text').get()
        posted = table.css('em[id^="authorposton"]')
        time_text = posted.css("span[title]::text").get() or posted.xpath("string()").get().replace(
            TIME_PREFIX, "").strip()
        body = table.css('[id^="postmessage_"]')[0]
        for xpath in NOISE_XPATH:
            for noise in body.xpath(xpath):
                noise.drop()
        rows.append((int(match[1]), author.strip(), time_text, _lines_text(_texts_with_breaks(body))))
    return rows


def _texts_with_breaks(body: Selector) -> list[str]:
    pieces = []
    for node in body.xpath(".//text() | .//br"):
        root = node.root
        pieces.append("\n" if getattr(root, "tag", None) == "br" else str(root))
    return pieces


ENGINE = DiscuzEngine()
FLOOR = "floor (selectolax parse only)"
OURS = "ours (parse+clean+extract)"
BS4_SAME = "BeautifulSoup 4 + lxml, same extraction"
BS4_LIGHT = "BeautifulSoup 4 + lxml, four fields"
PARSEL_LIGHT = "parsel (Scrapy), four fields"
CONTESTANTS: dict[str, Callable[[str, str], object]] = {
    FLOOR: floor_parse,
    OURS: ours,
    BS4_SAME: with_bs4_same,
    BS4_LIGHT: with_bs4,
    PARSEL_LIGHT: with_parsel,
}


# --- checks and timing ----------------------------------------------------------------------
def check_same_extraction(pages: list[tuple[str, str]]) -> None:
    """Fail, naming the page, the post and the field, unless the BeautifulSoup port's
    ThreadPage equals ours on every page."""
    for url, html in pages:
        mine, theirs = ours(html, url), with_bs4_same(html, url)
        if theirs != mine:
            raise SystemExit(f"{BS4_SAME} differs from ours on {url}: {first_difference(mine, theirs)}")


def first_difference(mine: ThreadPage, theirs: ThreadPage) -> str:
    """Where two ThreadPages first differ: a page field, the post count, or a post's field."""
    for field in fields(ThreadPage):
        if field.name != "posts" and getattr(mine, field.name) != getattr(theirs, field.name):
            return f"page field {field.name}: {_both(mine, theirs, field.name)}"
    if len(mine.posts) != len(theirs.posts):
        return f"ours has {len(mine.posts)} posts, bs4 {len(theirs.posts)}"
    for index, (post, other) in enumerate(zip(mine.posts, theirs.posts)):
        for field in fields(post):
            if getattr(post, field.name) != getattr(other, field.name):
                return f"post {index + 1} (pid {post.pid}) field {field.name}: {_both(post, other, field.name)}"
    return "unequal, though every field compares equal"


def _both(mine: object, theirs: object, name: str, limit: int = 300) -> str:
    shown = []
    for value in (getattr(mine, name), getattr(theirs, name)):
        text = repr(value)
        shown.append(text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)")
    return f"ours {shown[0]}, bs4 {shown[1]}"


def check_agreement(pages: list[tuple[str, str]]) -> dict[str, int]:
    """Fail unless the light extractors agree with ours on post count, pids and authors on
    every page. Returns, per light extractor, how many posts' texts equal ours once white
    space is ignored."""
    same_text = {"bs4": 0, "parsel": 0}
    for url, html in pages:
        reference = four_fields(ours(html, url))
        for name, rows in (("bs4", with_bs4(html, url)), ("parsel", with_parsel(html, url))):
            if len(rows) != len(reference):
                raise SystemExit(f"{name}: {len(rows)} posts on {url}, ours found {len(reference)}")
            for theirs, mine in zip(rows, reference):
                if theirs[:2] != mine[:2]:
                    raise SystemExit(f"{name}: post {theirs[:2]} on {url}, ours read {mine[:2]}")
                same_text[name] += _squeezed(theirs[3]) == _squeezed(mine[3])
    return same_text


def _squeezed(text: str) -> str:
    return "".join(text.split())


def time_per_page_ms(contestants: dict[str, Callable[[str, str], object]], pages: list[tuple[str, str]],
                     rounds: int) -> dict[str, list[float]]:
    """Each contestant's ms per page in each of `rounds` passes over all pages. The
    contestants take turns within a round, so a slow spell of a shared machine falls on all
    of them alike instead of on whichever ran through it."""
    passes: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(rounds):
        for name, extract in contestants.items():
            gc.collect()
            start = time.perf_counter()
            for url, html in pages:
                extract(html, url)
            passes[name].append((time.perf_counter() - start) * 1000 / len(pages))
    return passes


def paired_median(numerator: list[float], denominator: list[float]) -> float:
    """The median over rounds of numerator / denominator, each ratio within one round."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def main() -> None:
    """Build the pages, check agreement, time each contestant and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=40, help="distinct thread pages (default 40)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="rounds; in each, every contestant makes one timed pass over the pages")
    parser.add_argument("--profile", action="store_true", help="also profile ours over the pages (pyinstrument)")
    args = parser.parse_args()

    pages = thread_pages(args.pages)
    sizes = [len(html.encode("utf-8")) for _, html in pages]
    posts = sum(len(ours(html, url).posts) for url, html in pages)
    check_same_extraction(pages)
    same_text = check_agreement(pages)
    print(f"command: {command()}")
    print(f"machine: {machine()}")
    print(f"pages: {len(pages)}, {posts} posts, mean {statistics.mean(sizes) / 1000:.1f} KB "
          f"(min {min(sizes) / 1000:.1f}, max {max(sizes) / 1000:.1f}), jammer on")
    print(f"same extraction: the BeautifulSoup port's ThreadPage == ours on every page ({posts} posts, "
          "every field)")
    print("four fields: post count, pids and authors equal on every page; text equal (whitespace "
          f"ignored): bs4 {same_text['bs4']}/{posts}, parsel {same_text['parsel']}/{posts}")

    passes = time_per_page_ms(CONTESTANTS, pages, args.rounds)
    print(f"{args.rounds} rounds, the contestants taking turns in each; best pass and median pass:")
    for name, values in passes.items():
        print(f"  {name:40s} {min(values):8.2f} ms/page  (median {statistics.median(values):.2f})")
    floor, mine = passes[FLOOR], passes[OURS]
    ratios = (
        ("ours/floor", mine, floor, f"target <= {TARGET_OURS_OVER_FLOOR:g}x", lambda r: r <= TARGET_OURS_OVER_FLOOR),
        ("bs4 same extraction/ours", passes[BS4_SAME], mine, f"target >= {TARGET_BS4_OVER_OURS:g}x",
         lambda r: r >= TARGET_BS4_OVER_OURS),
        ("bs4 four fields/ours", passes[BS4_LIGHT], mine, "no target (fields only)", None),
        ("parsel four fields/ours", passes[PARSEL_LIGHT], mine, "no target (fields only)", None),
    )
    # Verdicts on the best passes; the median of the rounds' own ratios shows how firm they are.
    for label, numerator, denominator, target, met in ratios:
        best = min(numerator) / min(denominator)
        verdict = "" if met is None else (": met" if met(best) else ": MISSED")
        print(f"{label:24s} = {best:6.2f}x  ({target}{verdict}; median of the rounds' ratios "
              f"{paired_median(numerator, denominator):.2f}x)")
    if args.profile:
        print(profile_ours(pages, args.rounds))


def profile_ours(pages: list[tuple[str, str]], rounds: int) -> str:
    """pyinstrument's text report of `rounds` passes of ours over the pages."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(rounds):
        for url, html in pages:
            ours(html, url)
    profiler.stop()
    return profiler.output_text(unicode=False, color=False)


if __name__ == "__main__":
    main()
