"""Content normalisation, hashing and identity keys: what makes a post new, the same, or changed.

Pure functions only. Two renderings of one post that differ only in white space (a forum
swapping spaces for U+00A0, re-wrapping lines) or in Unicode composition hash the same, so
they never count as an edit.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from typing import Literal

Classification = Literal["new", "same", "changed"]

# How many hex digits of a title hash make a thread key when the forum's tid is unknown:
# 64 bits, so collisions within one site are not a practical concern.
TITLE_KEY_HEX_DIGITS = 16
TITLE_KEY_PREFIX = "text:"


def normalise_content(text: str) -> str:
    """Return `text` in NFC with every run of white space collapsed to one space, stripped.

    "White space" is Python's Unicode definition, so U+00A0 (no-break space) and U+3000
    (ideographic space) collapse like ordinary spaces, tabs and line breaks.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalise_content expects str, got {type(text).__name__}")
    return " ".join(unicodedata.normalize("NFC", text).split())


QuoteIdentity = tuple[str | None, int | None]  # the quoted text, the quoted post's pid


def content_hash(text: str, media_refs: Iterable[str] = (), quotes: Iterable[QuoteIdentity] = ()) -> str:
    """SHA-256 hex digest of the normalised text and, when there are any, the post's images and
    links (stable identities, in order, from its engine) and the quotes its engine reads apart
    from the text (the quoted text and post, in order): the identity of one version of a post.
    A quote's attribution line is left out: it restates the quoted post's author and time, and
    a rendering that prints that time anew (the demo forum does, at every restart) would make
    a version of an unchanged post. A post without images, links or quotes hashes as its text
    alone, as in archives written before; one without quotes, as before quotes were hashed."""
    normalised = normalise_content(text)
    refs = "\n".join(media_refs)
    if refs:
        normalised = f"{normalised}\x00{refs}"  # NUL: the HTML parser never leaves one in text
    quoted = normalised_quotes(quotes)
    if quoted:
        # Two NULs: no reference starts with one, so these never read as references.
        normalised = f"{normalised}\x00\x00{_EXTRACT_ENCODER.encode(quoted)}"
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def normalised_quotes(quotes: Iterable[QuoteIdentity]) -> list[list]:
    """Quotes as a version covers them (content_hash): each quoted text normalised, with the
    quoted post; equal lists are the same quotes."""
    return [[normalise_content(quote_text or ""), pid] for quote_text, pid in quotes]


def thread_key(tid: int | None, title: str | None) -> str:
    """A thread's identity within its site.

    The forum's thread id when known (``'123'``); otherwise ``'text:'`` plus the first 16
    hex digits of the SHA-256 of the normalised title, for renderings that show no tid.
    Raises ValueError when there is neither a tid nor a title to key on.
    """
    if tid is not None:
        return str(int(tid))
    normalised = normalise_content(title or "")
    if not normalised:
        raise ValueError("a thread needs a tid or a non-empty title to be identified")
    digest = hashlib.sha256(normalised.encode("utf-8")).hexdigest()
    return TITLE_KEY_PREFIX + digest[:TITLE_KEY_HEX_DIGITS]


def post_key(pid: int | None, thread_key: str, floor: int | None) -> str:
    """A post's identity within its site.

    The forum's post id when known (``'4567'``); otherwise ``'{thread_key}#{floor}'``.
    Raises ValueError when there is neither a pid nor a floor to key on.
    """
    if pid is not None:
        return str(int(pid))
    if floor is None:
        raise ValueError(f"a post of thread {thread_key!r} has neither a pid nor a floor")
    return f"{thread_key}#{int(floor)}"


def classify(existing_hash: str | None, new_hash: str) -> Classification:
    """'new' when nothing was stored, 'same' when the hashes match, else 'changed'."""
    if existing_hash is None:
        return "new"
    return "same" if existing_hash == new_hash else "changed"


# json.dumps with options builds an encoder per call; this one writes the same JSON.
_EXTRACT_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def extract_hash(entries: Iterable[Iterable[object]]) -> str:
    """SHA-256 hex digest of what a page yielded, entry by entry and in order.

    For a thread page each entry is (post_key, content_hash); for a board page, the
    fields that tell a thread changed. A page whose extract hash is unchanged yielded
    nothing new, whatever changed around it in the markup.
    """
    # JSON keeps the encoding unambiguous whatever the entries contain.
    encoded = _EXTRACT_ENCODER.encode([list(entry) for entry in entries])
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


__all__ = [
    "Classification",
    "QuoteIdentity",
    "classify",
    "content_hash",
    "extract_hash",
    "normalise_content",
    "normalised_quotes",
    "post_key",
    "thread_key",
]
