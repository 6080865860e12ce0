"""Bytes to text, the way Chinese forums need it.

httpx's response.text guesses; forums mislabel. The rules, from discuz.md section 3:
charset from the Content-Type header, else a <meta> in the first 4 KB, else the site's
default; gbk and gb2312 labels decode as gb18030 (a superset: GBK sites hold characters
strict GBK rejects); where the declaration and the bytes disagree, UTF-8 wins when it decodes
cleanly, or with no more than one bad sequence per thousand non-ASCII bytes (pages re-saved as
UTF-8 keep charset=gbk in their meta, and a truncation may cut a character). The encoding used
and the number of replaced characters are returned so they can be stored with the page.

Python's gb18030 codec follows GB 18030-2005, which maps 18 two-byte codes to private-use
code points that GB 18030-2022 (and browsers, per the WHATWG Encoding Standard) map to the
characters they always showed: ten vertical punctuation forms and eight CJK components. The
text is corrected after decoding, so the archive holds the characters, not blank boxes.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from scraper import config

# Labels whose content is better decoded by a superset codec.
_SUPERSETS = {
    "gbk": "gb18030", "gb2312": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "cp936": "gb18030",
    "euc-cn": "gb18030", "big5": "big5hkscs", "x-big5": "big5hkscs", "cp950": "big5hkscs",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252",
}
# Codecs Python knows under a label that name no charset a page can be written in: 'undefined'
# fails on every byte, idna and punycode encode host names, the escape codecs read backslash
# text, and UTF-7 (which browsers refuse) can smuggle markup past a filter. Such a label is
# ignored, as an unknown one is; so are Python's bytes-to-bytes codecs (base64, hex, zlib...).
_NOT_PAGE_CHARSETS = frozenset({"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "utf-7"})
# A <meta> found by reading the bytes as ASCII cannot be in UTF-16 or UTF-32: the page is
# read as UTF-8 instead, as browsers do (WHATWG's meta prescan).
_WIDE_CHARSETS = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"})
# GB 18030-2005's private-use code point -> GB 18030-2022's character, for the same two bytes
# (A6D9-A6DF, A6EC, A6ED, A6F3: U+FE10-FE19; FE59, FE61, FE66, FE67, FE6D, FE7E, FE90, FEA0:
# U+9FB4-9FBB). The six other two-byte codes that 2005 maps to private use stay so in 2022 too.
GB18030_2022_REMAP = {
    0xE78D: 0xFE10, 0xE78E: 0xFE12, 0xE78F: 0xFE11, 0xE790: 0xFE13, 0xE791: 0xFE14,
    0xE792: 0xFE15, 0xE793: 0xFE16, 0xE794: 0xFE17, 0xE795: 0xFE18, 0xE796: 0xFE19,
    0xE81E: 0x9FB4, 0xE826: 0x9FB5, 0xE82B: 0x9FB6, 0xE82C: 0x9FB7, 0xE832: 0x9FB8,
    0xE843: 0x9FB9, 0xE854: 0x9FBA, 0xE864: 0x9FBB,
}
_GB18030_2005_PUA = tuple(map(chr, GB18030_2022_REMAP))
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)
# A comment to its end (or to the end of the scanned bytes): a <meta> in it declares nothing,
# as in WHATWG's prescan (templates keep old declarations commented out).
_COMMENT = re.compile(rb"<!--.*?(?:-->|\Z)", re.S)


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the codec actually used
    replaced: int  # characters that could not be decoded (U+FFFD written instead)


def normalise_label(label: str | None) -> str | None:
    """A codec name Python knows for an HTML charset label, or None if unknown."""
    if not label:
        return None
    label = label.strip().lower()
    label = _SUPERSETS.get(label, label)
    try:
        codec = codecs.lookup(label)
    except LookupError:
        return None
    if not codec._is_text_encoding or codec.name in _NOT_PAGE_CHARSETS:
        return None
    return codec.name


def declared_charsets(body: bytes, content_type: str | None) -> tuple[str | None, str | None]:
    """(charset from the header, charset from a <meta> in the first 4 KB), normalised."""
    header = None
    if content_type:
        m = _HEADER_CHARSET.search(content_type)
        header = normalise_label(m.group(1)) if m else None
    m = _META_CHARSET.search(_COMMENT.sub(b"", body[: config.META_CHARSET_SCAN_BYTES]))
    meta = normalise_label(m.group(1).decode("ascii", "replace")) if m else None
    return header, "utf-8" if meta in _WIDE_CHARSETS else meta


def _is_strict_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_ASCII_BYTES = bytes(range(128))
# Fewer bad sequences than this per non-ASCII byte: UTF-8 with a few corruptions (a character cut
# by a truncation, a stray byte). GBK, Big5 or Latin-1 text read as UTF-8 fails about every
# second non-ASCII byte.
UTF8_ERRORS_PER_NON_ASCII_BYTE = 0.001


def _is_utf8_with_a_few_errors(body: bytes) -> bool:
    """Whether `body` is UTF-8 that a few bad bytes keep from decoding strictly: read under its
    label it would turn every character to mojibake, not just those few."""
    # Every GBK page comes here: its first few KB, where GBK fails on every second character,
    # answer for it at a tenth of the cost of the whole page.
    # (A sample may end inside a character: one error more is allowed there.)
    return _few_utf8_errors(body[:UTF8_SAMPLE_BYTES], allowed=1) and _few_utf8_errors(body, allowed=0)


UTF8_SAMPLE_BYTES = 8192


def _few_utf8_errors(data: bytes, *, allowed: int) -> bool:
    non_ascii = len(data.translate(None, _ASCII_BYTES))
    return data.decode("utf-8", "replace").count("\ufffd") < UTF8_ERRORS_PER_NON_ASCII_BYTE * non_ascii + allowed


def decode_html(body: bytes, content_type: str | None = None, default: str = config.DEFAULT_ENCODING) -> Decoded:
    """Decode an HTML body following the rules in the module docstring."""
    if body.startswith(codecs.BOM_UTF8):
        return Decoded(body[3:].decode("utf-8", "replace"), "utf-8", 0)
    header, meta = declared_charsets(body, content_type)
    declared = header or meta or normalise_label(default) or "utf-8"
    if header and meta and header != meta:
        # A proxy or CDN may rewrite the header; the page's own meta is closer to the bytes.
        declared = meta
    if declared != "utf-8" and not body.isascii() and (_is_strict_utf8(body) or _is_utf8_with_a_few_errors(body)):
        declared = "utf-8"
    text = body.decode(declared, "replace")
    replaced = text.count("\ufffd")
    if declared == "utf-8" and replaced:
        # Declared UTF-8, and the bytes are not (a GBK page whose template or server says UTF-8):
        # the other declaration, the site's default or GB18030, whichever reads them best.
        declared, text, replaced = _read_otherwise(body, text, replaced, (header, meta, normalise_label(default)))
    if declared == "gb18030":
        text = gb18030_2022_text(text)
    return Decoded(text, declared, replaced)


def _read_otherwise(body: bytes, as_utf8: str, replaced: int, labels) -> tuple[str, str, int]:
    """(codec, text, replaced): `body` read by the first of `labels` (then GB18030) that reads
    it with next to no errors, when its bytes are clearly not UTF-8; else UTF-8's reading.

    Clearly not UTF-8: more undecodable sequences than characters UTF-8 reads beyond ASCII.
    GBK read as UTF-8 fails about four times for each character it reads, Big5 about twice;
    a UTF-8 page with some posts in another encoding reads mostly right, and stays UTF-8 (GB18030
    reads almost any bytes without an error, so it would turn every UTF-8 character into another
    one). A U+FFFD the page itself holds (as UTF-8) is no error."""
    errors = replaced - body.count("\ufffd".encode())
    non_ascii = len(body.translate(None, _ASCII_BYTES))
    read_beyond_ascii = len(as_utf8) - (len(body) - non_ascii) - replaced
    if errors <= read_beyond_ascii:
        return "utf-8", as_utf8, replaced
    for codec in dict.fromkeys((*labels, "gb18030")):  # in order, each once
        if codec is None or codec == "utf-8":
            continue
        text = body.decode(codec, "replace")
        count = text.count("\ufffd")
        if count < UTF8_ERRORS_PER_NON_ASCII_BYTE * non_ascii + 1:
            return codec, text, count
    return "utf-8", as_utf8, replaced


def gb18030_2022_text(text: str) -> str:
    """`text` as decoded by Python's gb18030 codec, with GB 18030-2022's characters where
    the codec gave GB 18030-2005's private-use code points."""
    # Eighteen substring checks cost less than one translate of a page that holds none.
    if any(pua in text for pua in _GB18030_2005_PUA):
        return text.translate(GB18030_2022_REMAP)
    return text
