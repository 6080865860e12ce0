"""Layer 4 of the noise filters: watermark phrases learned from a site's own posts.

Forums that stamp "本文由XX网推荐" at random places in posts leave the same phrase in many
posts at different offsets. propose() finds such phrases in the archive and records them
as proposals; an operator confirms or rejects each (`forum-archiver phrases`), and the
crawler removes confirmed phrases from every page it parses after that.
"""

from __future__ import annotations

from scraper import config
from scraper.clean import learn_phrases
from storage.archive import Archive

SAMPLE_POSTS = 5000  # the newest posts of a site are enough to see a recurring stamp


def propose(archive: Archive, site_id: int, *, min_posts: int = config.LEARNED_PHRASE_MIN_POSTS,
            sample_posts: int = SAMPLE_POSTS) -> list[tuple[str, int]]:
    """Learn recurring phrases from a site's newest posts and record them as proposals."""
    texts = [row[0] for row in archive.db.execute(
        "select content_text from posts where site_id = ? and content_text != '' order by id desc limit ?",
        [site_id, sample_posts])]
    found = learn_phrases(texts, min_posts=min_posts)
    with archive.transaction():
        archive.propose_phrases(site_id, found)
    return found


def listing(archive: Archive, site_id: int) -> list[tuple[str, int, str]]:
    """(phrase, posts it was seen in, status) for every phrase known for the site."""
    return [tuple(row) for row in archive.db.execute(
        "select phrase, post_count, status from noise_phrases where site_id = ? order by status, post_count desc",
        [site_id])]
