"""The bigram index's tokens: which characters pair up, and the document a post's text becomes.

Most Chinese words are two characters, which the trigram index cannot find; a LIKE scan finds
them but reads every post when the word is rare. posts_bigram indexes every overlapping pair
of "bigram characters" (ASCII letters and digits, CJK ideographs, kana, hangul): a post's text
becomes its pairs, space-separated, and a 2-character query of bigram characters is one token.

BIGRAM_RANGES is the one definition of the set: the Python tokenizer (python_bigram_document)
and the SQL test that routes a query to the index (sql_is_bigram_char) are both built from
it, and the C tokenizer (storage/_bigram.c), which bigram_document prefers, is handed it on
every call.
Changing it changes the tokens of posts already indexed: the index is contentless, so its
'delete' needs the exact tokens it was given, and a change needs a migration that empties
posts_bigram ('delete-all') and sets its watermark back to 0 for a rebuild.

The index uses FTS5's `ascii` tokenizer, not unicode61: ascii takes every non-ASCII character
as part of a token and splits only on ASCII non-alphanumerics (here the spaces), so a pair
stays one token whatever SQLite's Unicode tables say (unicode61 splits at U+30FB and U+3099,
for instance). It folds ASCII case only, exactly as LIKE does.
"""

from __future__ import annotations

import re

try:  # built from storage/_bigram.c by the install; optional, see setup.py
    from storage._bigram import pair_document as _pair_document_c
except ImportError:  # no compiler at install time: the Python version gives the same documents
    _pair_document_c = None

# (first, last) code points, inclusive.
BIGRAM_RANGES: tuple[tuple[int, int], ...] = (
    (0x0030, 0x0039),  # ASCII digits
    (0x0041, 0x005A),  # ASCII upper case
    (0x0061, 0x007A),  # ASCII lower case
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x3040, 0x309F),  # Hiragana
    (0x30A0, 0x30FF),  # Katakana
    (0x3130, 0x318F),  # Hangul Compatibility Jamo
    (0x31F0, 0x31FF),  # Katakana Phonetic Extensions
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul Syllables
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x323AF),  # CJK Unified Ideographs Extensions B-H
    (0x2F800, 0x2FA1F),  # CJK Compatibility Ideographs Supplement
)

BIGRAM_FUNCTION = "bigram_document"  # the SQL name of bigram_document on the archive's connections

_CLASS = "".join(f"{re.escape(chr(first))}-{re.escape(chr(last))}" for first, last in BIGRAM_RANGES)
# A lookahead matches at every position, so overlapping pairs all come out, at C speed.
_PAIRS = re.compile(f"(?=([{_CLASS}]{{2}}))")


def is_bigram_char(char: str) -> bool:
    """Whether `char` (one character) pairs up in the bigram index."""
    code = ord(char)
    return any(first <= code <= last for first, last in BIGRAM_RANGES)


def bigram_document(text: str | None) -> str:
    """`text` as the bigram index stores it: each overlapping pair of bigram characters,
    space-separated, in order ('ab鲸鱼!x' -> 'ab b鲸 鲸鱼'). Deterministic: the index's
    'delete' recomputes a post's old tokens with it."""
    if not text:
        return ""
    if _pair_document_c is not None:
        return _pair_document_c(text, BIGRAM_RANGES)
    return python_bigram_document(text)


def python_bigram_document(text: str) -> str:
    """bigram_document in Python: where the C extension is not built, and its reference."""
    return " ".join(_PAIRS.findall(text))


def sql_is_bigram_char(expr: str) -> str:
    """SQL that is true when the first character of `expr` is a bigram character."""
    merged: list[list[int]] = []
    for first, last in sorted(BIGRAM_RANGES):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return "(" + " OR ".join(f"unicode({expr}) BETWEEN {first} AND {last}" for first, last in merged) + ")"


__all__ = ["BIGRAM_FUNCTION", "BIGRAM_RANGES", "bigram_document", "is_bigram_char", "python_bigram_document",
           "sql_is_bigram_char"]
