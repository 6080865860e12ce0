"""Import a text rendering of a thread page (what a browser copies) into the archive.

The text goes through the same records and the same archive writer as crawled pages, so
an imported thread is searched, versioned and published like any other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from scraper.engines.base import ParseContext, PostStatus
from scraper.engines.discuz_text import POSTS_PER_PAGE, parse_text_page, thread_ref_from_url
from scraper.errors import ConfigError, ImportConflict
from scraper.politeness import utc_now_iso
from scraper.sites import Site, check_site_in_archive, load_site, site_from_dict
from storage.archive import Archive
from storage.dedup import post_key, thread_key


@dataclass
class ImportResult:
    title: str
    posts: int
    new_posts: int
    new_versions: int
    thread_id: int


def _site_for_import(archive: Archive, site_name: str, config_path: str | Path | None) -> Site:
    if config_path:
        return load_site(config_path)
    row = archive.db.execute("select config_json, base_url from sites where name = ?", [site_name]).fetchone()
    if row and row[0] and json.loads(row[0]):
        return site_from_dict(json.loads(row[0]))
    return site_from_dict({"name": site_name, "base_url": "http://text-import.invalid/"})


DELETED_STATUS = PostStatus.DELETED.value
# The runs row of an import says so (runs.job), beside crawl, discover and refresh.
IMPORT_JOB = "import-text"


def _refuse_other_posts_at_its_floors(archive: Archive, site_name: str, page) -> None:
    """A text rendering shows no post ids: its posts are keyed by thread and floor, and its
    thread by title unless the URL gives the tid. Where the archive already holds a post at
    one of those keys written by another author or at another time, the text is another
    thread of the same title, or its floors have shifted (a post deleted in between): saving
    it would file its posts as edits of others. Raises ImportConflict, before anything is
    written."""
    key_of_thread = thread_key(page.tid, page.title)
    stored, at_floor, deleted_floors = {}, {}, set()
    for key, floor, author, posted_at_raw, gone, status in archive.db.execute(
            """SELECT p.post_key, p.floor, p.author, p.posted_at_raw, p.gone_at IS NOT NULL, p.status FROM posts p
            JOIN threads t ON t.id = p.thread_id JOIN sites s ON s.id = t.site_id
            WHERE s.name = ? AND t.thread_key = ?""", [site_name, key_of_thread]):
        stored[key] = (author, posted_at_raw)
        if floor is not None and not gone:  # a post gone from the forum left its floor to the next
            at_floor.setdefault(floor, (author, posted_at_raw))
            if status == DELETED_STATUS and author is None:  # crawled only as deleted: whose it was is not known
                deleted_floors.add(floor)
    # A text shows no deleted floor (无效楼层 has no header): copied after the deletion, its post
    # at that floor is the archive's next floor's, and so on.
    shifted = sorted(post.floor for post in page.posts if post.pid is None and post.floor in deleted_floors
                     and at_floor.get(post.floor + 1) == (post.author, post.posted_at_raw))
    if shifted:
        raise ImportConflict(
            f"floor {shifted[0]} of \"{page.title}\" is a deleted floor in the archive, which a text does not show: "
            "the text's floors from there on are shifted by one, and its posts would be filed as others'. "
            "Import the thread by crawling it")
    for post in page.posts:
        # The post at its floor key, or any post at its floor (a crawled one, keyed by its pid).
        held = (stored.get(post_key(post.pid, key_of_thread, post.floor)) or at_floor.get(post.floor)
                if post.pid is None else None)
        if held is None:
            continue
        author, posted_at_raw = held
        if (author and post.author and author != post.author) or (
                posted_at_raw and post.posted_at_raw and posted_at_raw != post.posted_at_raw):
            raise ImportConflict(
                f"floor {post.floor} of \"{page.title}\" is archived as {author}'s post of {posted_at_raw}, and this "
                f"text has {post.author}'s of {post.posted_at_raw} there: another thread of the same title, or "
                "floors shifted by a deleted post. Give the thread's URL (--url) to import it as its own thread")


def _posts_per_page(archive: Archive, site_name: str, url: str) -> int:
    """How many posts a page of the thread at `url` holds, as the archive knows it: a text shows
    no floor numbers, so a later page's floors count on from the page before it. Read from the
    first floor the archive holds on that page; the default when it holds none."""
    tid, page = thread_ref_from_url(url)
    if tid is None or page <= 1:
        return POSTS_PER_PAGE
    row = archive.db.execute(
        """SELECT min(p.floor) FROM posts p JOIN threads t ON t.id = p.thread_id JOIN sites s ON s.id = t.site_id
        WHERE s.name = ? AND t.thread_key = ? AND p.page = ? AND p.floor IS NOT NULL""",
        [site_name, thread_key(tid, None), page]).fetchone()
    first_floor = row[0] if row else None
    if not first_floor or (first_floor - 1) % (page - 1):
        return POSTS_PER_PAGE
    return (first_floor - 1) // (page - 1)


def import_text_file(archive: Archive, path: Path, *, site_name: str = "text", url: str | None = None,
                     config_path: str | Path | None = None, now: str | None = None) -> ImportResult:
    """Parse `path` as a text rendering of a Discuz thread page and save it in one transaction."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    site = _site_for_import(archive, site_name, config_path)
    check_site_in_archive(archive, site)
    now = now or utc_now_iso()
    source = url or f"file:{path.name}"
    ctx = ParseContext(url=source, utc_offset=site.utc_offset, fetched_at=now, noise=site.noise)
    page = parse_text_page(text, ctx, posts_per_page=_posts_per_page(archive, site.name, source))
    _refuse_other_posts_at_its_floors(archive, site.name, page)
    site_id = archive.upsert_site(site.name, engine=site.engine, base_url=site.base_url,
                                  utc_offset=site.utc_offset, config=site.archived_config)
    # A text rendering has no URL of its own unless the operator gives one: key it by content.
    url_key = f"text:{hashlib.sha256(raw).hexdigest()[:16]}" if url is None else f"text:{url}"
    with archive.transaction():  # the page and its runs row, together or not at all
        run_id = archive.start_run(site_id, IMPORT_JOB, now=now)
        sha = archive.store_body(raw, now=now)
        saved = archive.save_thread_page(site_id, page, url=source, url_key=url_key, body_sha256=sha,
                                         encoding="utf-8", now=now)
        archive.finish_run(run_id, status="finished", requests=0, not_modified=0, new_posts=saved.new_posts,
                           new_versions=saved.new_versions, failures={}, gone_posts=saved.gone_posts, now=now)
    return ImportResult(title=page.title, posts=len(page.posts), new_posts=saved.new_posts,
                        new_versions=saved.new_versions, thread_id=saved.thread_id)
