"""Noise filters, in the four layers of the design, each counting what it removed.

1. markup: jammer elements, hidden elements, ad slots, scripts and styles (on a parsed tree);
2. jammer text: Discuz's jammer alphabet at line starts and ends, and whole lines of it;
3. site phrases: watermark phrases named in a site's config;
4. learned phrases: recurring phrases proposed from frequency, applied once confirmed.

Everything here is pure: text or a tree in, text or a tree and counts out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scraper import config


@dataclass(frozen=True)
class NoiseRules:
    """A site's own noise, from its config (layers 3 and 4).

    phrases: watermark phrases removed wherever they appear in a post.
    learned: phrases proposed by learn_phrases() and confirmed by the operator.
    text_ads: whole lines that a *text rendering* of the site shows where its ad slots
        were; the HTML path removes ad slots by their markup and needs no list.
    """

    phrases: tuple[str, ...] = ()
    learned: tuple[str, ...] = ()
    text_ads: tuple[str, ...] = ()

# Discuz jammer(): chr(32..59) . ' ' . chr(63..126), 5-15 times per line break. Text
# renderings turn some spaces into U+00A0, including the chr(32) a unit may start with.
JAMMER_UNIT = r"[\x20-\x3b\xa0][\x20\xa0][\x3f-\x7e]"
_RUN = rf"(?:{JAMMER_UNIT}){{{config.JAMMER_MIN_UNITS},}}"
_LEADING_RUN = re.compile(rf"^[\x20\xa0]*{_RUN}")
_TRAILING_RUN = re.compile(rf"{_RUN}[\x20\xa0]*$")

NOISE_JAMMER_TEXT = "jammer_text_runs"
NOISE_SITE_PHRASES = "site_phrases"
NOISE_LEARNED_PHRASES = "learned_phrases"


def strip_jammer_line(line: str) -> tuple[str, int]:
    """Remove jammer runs at the start and the end of one line.

    Returns the line and the number of runs removed. A line that was nothing but jammer
    comes back empty.
    """
    removed = 0
    stripped = _LEADING_RUN.sub("", line, count=1)
    if stripped != line:
        removed += 1
        line = stripped
    # Two runs can touch (one per neighbouring line break), so a trailing match may remain
    # after a leading one; a whole-line run is already gone.
    stripped = _TRAILING_RUN.sub("", line, count=1)
    if stripped != line:
        removed += 1
        line = stripped
    return line, removed


def strip_jammer_text(text: str) -> tuple[str, int]:
    """Apply strip_jammer_line to every line of `text`; drop lines that were only jammer."""
    out: list[str] = []
    removed = 0
    for line in text.split("\n"):
        cleaned, n = strip_jammer_line(line)
        removed += n
        if n and not cleaned.strip(" \xa0\t"):
            continue
        out.append(cleaned)
    return "\n".join(out), removed


def remove_phrases(text: str, phrases: list[str] | tuple[str, ...]) -> tuple[str, int]:
    """Remove every occurrence of each phrase (site watermarks, confirmed learned phrases)."""
    removed = 0
    for phrase in phrases:
        if phrase:
            n = text.count(phrase)
            if n:
                text = text.replace(phrase, "")
                removed += n
    return text, removed


_WS = re.compile(r"[\s\u00a0\u3000]+")


def normalise_whitespace(text: str) -> str:
    """Collapse every run of white space (U+00A0 and U+3000 included) into one space."""
    return _WS.sub(" ", text).strip()


def add_counts(total: dict[str, int], name: str, n: int) -> None:
    """Record `n` removals under `name`, keeping the dict free of zero entries."""
    if n:
        total[name] = total.get(name, 0) + n


__all__ = [
    "JAMMER_UNIT",
    "NoiseRules",
    "add_counts",
    "normalise_whitespace",
    "remove_phrases",
    "strip_jammer_line",
    "strip_jammer_text",
]
