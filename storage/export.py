"""Exports: the archive's posts as JSON lines, for researchers' tools; its fetched pages as a
WARC file, for the tools of web archives.

JSON lines (export_jsonl): one object a post, in thread order, with its thread, its current
content and every earlier version, under the archive's own column names. Where Datasette's JSON
pages through a table, this is the whole archive (or one site) in one file, .gz if so named.

A WARC (ISO 28500; WARC/1.1 here) is what the Internet Archive takes in and what replay tools
(pywb, ReplayWeb.page) and WARC readers (warcio) read. Every page body the archive kept, as
the forum sent it, becomes one record, at the time and URL it was fetched from:

- a `resource` record, not a `response` one: the archive keeps a fetch's status and body but
  not the response's headers, and a WARC holds no headers it did not see. Its Content-Type is
  text/html with the charset the page was decoded with (a Discuz page's <meta> may name GBK
  while its bytes are UTF-8: the record says what the bytes are);
- a `revisit` record (identical-payload-digest profile) for a later fetch of a body already
  written: each body is stored once, and is written once;
- not written: fetches without a body (errors, 304s, pages whose posts were unchanged, which
  keep no body), bodies of block pages (`blocked:*`: a notice or challenge is not the page),
  bodies of other statuses, robots.txt files, text imports (never fetched).

The file is gzip-compressed record by record (a .warc.gz, which readers can seek into).

Both are written under a temporary name beside the target, renamed only once whole: an
interrupted export leaves no partial file under the name asked for, and neither replaces a
file. Memory stays flat: rows are read in order by one query, one post's versions or one body
at a time.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from storage.archive import Archive

WARC_VERSION = "WARC/1.1"
REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
GZIP_LEVEL = 6  # gzip's own default: an export is written once and read rarely

# What the forum served as the page at that URL: a 200 that is no block page.
_EXPORTED_FETCHES_SQL = """
SELECT f.id, coalesce(f.final_url, f.url) AS uri, f.fetched_at, f.body_sha256, e.encoding,
       first_value(f.id) OVER same_body AS first_id,
       first_value(coalesce(f.final_url, f.url)) OVER same_body AS first_uri,
       first_value(f.fetched_at) OVER same_body AS first_at
FROM fetches f
LEFT JOIN (SELECT body_sha256, min(encoding) AS encoding FROM pages
           WHERE body_sha256 IS NOT NULL GROUP BY body_sha256) e ON e.body_sha256 = f.body_sha256
WHERE f.body_sha256 IS NOT NULL AND f.status = 200 AND (f.reason IS NULL OR f.reason NOT LIKE 'blocked:%')
  AND (:site_id IS NULL OR f.site_id = :site_id)
WINDOW same_body AS (PARTITION BY f.body_sha256 ORDER BY f.id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
ORDER BY f.id
"""


# Posts in thread order: a thread's opening post first, posts without a floor after the others.
_POSTS_SQL = """
SELECT s.name AS site, t.id AS thread_id, t.tid, t.thread_key, t.title, t.url AS thread_url, t.board, t.fid,
       t.gone_at AS thread_gone_at, p.*
FROM posts p JOIN threads t ON t.id = p.thread_id JOIN sites s ON s.id = p.site_id
WHERE (:site_id IS NULL OR p.site_id = :site_id)
ORDER BY p.site_id, p.thread_id, p.floor IS NULL, p.floor, p.pid, p.id
"""
# A post's versions but its current one, oldest first; a version's text is kept on its row
# once the post has moved on from it (the current one's is the post's own).
_EARLIER_VERSIONS_SQL = """
SELECT v.seen_at, v.content_text, v.content_html, v.edit_note, v.quotes_json, v.attachments_json
FROM post_versions v WHERE v.post_id = ? AND v.content_hash != ? ORDER BY v.seen_at, v.id
"""
_POST_FIELDS = ("id", "pid", "floor", "floor_label", "page", "author", "author_uid", "posted_at", "posted_at_raw",
                "subject", "content_text", "content_html", "signature", "edit_note", "status", "content_status",
                "first_seen_at", "last_seen_at", "gone_at")
_T = TypeVar("_T")


class ExportError(Exception):
    """An export that cannot be written as asked (the target exists, no such site)."""


@dataclass
class JsonlSummary:
    posts: int = 0
    earlier_versions: int = 0


@dataclass
class WarcSummary:
    resources: int = 0  # bodies written
    revisits: int = 0  # later fetches of a body written before
    body_bytes: int = 0  # bytes of the bodies, uncompressed


def export_jsonl(archive: Archive, target: str | Path, *, site: str | None = None) -> JsonlSummary:
    """Write the archive's posts (one site's with `site`) to `target` as JSON lines, gzipped
    when its name ends in .gz."""
    target = Path(target)
    site_id = _site_id(archive, site)

    def write(out: BinaryIO) -> JsonlSummary:
        if target.suffix == ".gz":
            with gzip.GzipFile(filename=target.stem, mode="wb", fileobj=out, mtime=0) as zipped:
                return write_jsonl(archive, zipped, site_id=site_id)
        return write_jsonl(archive, out, site_id=site_id)

    return _write_whole(target, write)


def write_jsonl(archive: Archive, out: BinaryIO, *, site_id: int | None = None) -> JsonlSummary:
    """One JSON object a post, a line each, to `out`."""
    summary = JsonlSummary()
    versions = archive.db.conn.cursor()
    for row in _rows(archive, _POSTS_SQL, {"site_id": site_id}):
        record: dict[str, Any] = {
            "site": row["site"],
            "thread": {"id": row["thread_id"], "tid": row["tid"], "thread_key": row["thread_key"],
                       "title": row["title"], "url": row["thread_url"], "board": row["board"], "fid": row["fid"],
                       "gone_at": row["thread_gone_at"]},
            **{name: row[name] for name in _POST_FIELDS},
            "quotes": json.loads(row["quotes_json"]), "attachments": json.loads(row["attachments_json"]),
            "earlier_versions": [],
        }
        if row["version_count"] > 1:
            for seen_at, text, html, edit_note, quotes, attachments in versions.execute(
                    _EARLIER_VERSIONS_SQL, [row["id"], row["content_hash"]]):
                # Versions from before the archive kept a version's quotes and attachments have none.
                record["earlier_versions"].append({
                    "seen_at": seen_at, "content_text": text, "content_html": html, "edit_note": edit_note,
                    "quotes": None if quotes is None else json.loads(quotes),
                    "attachments": None if attachments is None else json.loads(attachments)})
            summary.earlier_versions += len(record["earlier_versions"])
        out.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        summary.posts += 1
    return summary


def export_warc(archive: Archive, target: str | Path, *, software: str, site: str | None = None) -> WarcSummary:
    """Write the archive's fetched pages (one site's with `site`) to `target` as a .warc.gz."""
    target = Path(target)
    site_id = _site_id(archive, site)
    return _write_whole(target, lambda out: write_warc(archive, out, software=software, site_id=site_id,
                                                       filename=target.name))


def _write_whole(target: Path, write: Callable[[BinaryIO], _T]) -> _T:
    """Run `write` on a temporary file beside `target`, and give it `target`'s name once it is
    whole and on disk. Refuses to replace an existing file."""
    if target.exists():
        raise ExportError(f"{target} exists: the export does not replace a file")
    if not target.parent.is_dir():
        raise ExportError(f"{target.parent} is not a directory")
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "wb") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return result


def write_warc(archive: Archive, out: BinaryIO, *, software: str, site_id: int | None = None,
               filename: str | None = None) -> WarcSummary:
    """Write the WARC records to `out`: a warcinfo record, then one record per exported fetch."""
    info_id = _record_id()
    fields = [("software", software), ("format", "WARC File Format 1.1"),
              ("conformsTo", "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"),
              ("description", "Forum pages as fetched by the archiver: resource records of the bodies kept "
                              "(the response headers are not kept), revisits for bodies fetched again")]
    info_block = "".join(f"{name}: {value}\r\n" for name, value in fields).encode("utf-8")
    headers = [("WARC-Type", "warcinfo"), ("WARC-Record-ID", info_id), ("WARC-Date", _warc_date(None))]
    if filename:
        headers.append(("WARC-Filename", filename))
    out.write(_gzip_record(headers + [("Content-Type", "application/warc-fields")], info_block))

    summary = WarcSummary()
    for row in _rows(archive, _EXPORTED_FETCHES_SQL, {"site_id": site_id}):
        common = [("WARC-Record-ID", _fetch_record_id(info_id, row["id"])), ("WARC-Date", _warc_date(row["fetched_at"])),
                  ("WARC-Target-URI", row["uri"]), ("WARC-Warcinfo-ID", info_id)]
        if row["first_id"] != row["id"]:
            # The same bytes were written for an earlier fetch: point at that record.
            digest = _digest(archive.read_body(row["body_sha256"]))
            headers = [("WARC-Type", "revisit"), *common, ("WARC-Profile", REVISIT_PROFILE),
                       ("WARC-Refers-To", _fetch_record_id(info_id, row["first_id"])),
                       ("WARC-Refers-To-Target-URI", row["first_uri"]),
                       ("WARC-Refers-To-Date", _warc_date(row["first_at"])), ("WARC-Payload-Digest", digest)]
            out.write(_gzip_record(headers, b""))
            summary.revisits += 1
            continue
        body = archive.read_body(row["body_sha256"])
        digest = _digest(body)
        content_type = "text/html" + (f"; charset={_charset_label(row['encoding'])}" if row["encoding"] else "")
        headers = [("WARC-Type", "resource"), *common, ("WARC-Block-Digest", digest),
                   ("WARC-Payload-Digest", digest), ("Content-Type", content_type)]
        out.write(_gzip_record(headers, body))
        summary.resources += 1
        summary.body_bytes += len(body)
    return summary


def _rows(archive: Archive, sql: str, params: dict) -> Iterator[dict]:
    cursor = archive.db.conn.execute(sql, params)
    names = [column[0] for column in cursor.description]
    for values in cursor:
        yield dict(zip(names, values))


def _site_id(archive: Archive, site: str | None) -> int | None:
    if site is None:
        return None
    row = archive.db.conn.execute("SELECT id FROM sites WHERE name = ?", [site]).fetchone()
    if row is None:
        raise ExportError(f"no site {site!r} in the archive")
    return row[0]


def _gzip_record(headers: list[tuple[str, str]], block: bytes) -> bytes:
    """One record as a gzip member of its own, as .warc.gz readers expect."""
    head = "".join(f"{name}: {_field_value(value)}\r\n" for name, value in headers)
    record = f"{WARC_VERSION}\r\n{head}Content-Length: {len(block)}\r\n\r\n".encode("utf-8") + block + b"\r\n\r\n"
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    return compressor.compress(record) + compressor.flush()


def _field_value(value: str) -> str:
    # A line break in a value (a URL as some link wrote it) would end the field early and
    # start another: it is percent-encoded, as it would be in a URI.
    return value.replace("\r", "%0D").replace("\n", "%0A")


def _digest(data: bytes) -> str:
    # SHA-1 in base32 is the digest every WARC tool reads (and the one the Internet Archive uses).
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def _record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def _fetch_record_id(info_id: str, fetch_id: int) -> str:
    """A fetch's record id, derived so that a revisit can name its original without a lookup
    table of every body written: unique to this export (through its warcinfo id) and fetch."""
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{info_id}/fetch/{fetch_id}')}>"


def _warc_date(stamp: str | None) -> str:
    """The archive's UTC ISO 8601 time (None: now) in WARC's form, UTC with a Z."""
    moment = datetime.now(timezone.utc) if stamp is None else datetime.fromisoformat(stamp).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _charset_label(codec_name: str) -> str:
    """The charset label browsers know for a Python codec name (the archive stores the codec
    a page was decoded with): euc_jp -> euc-jp, cp1252 -> windows-1252, big5hkscs -> big5-hkscs."""
    label = codec_name.lower().replace("_", "-")
    if label.startswith("cp125"):
        return "windows-" + label[2:]
    if label.startswith("iso8859-"):
        return "iso-8859-" + label[len("iso8859-"):]
    return {"big5hkscs": "big5-hkscs"}.get(label, label)
