"""The bigram index (posts_bigram): 2-character queries of bigram characters go through it,
and find exactly the posts a LIKE scan finds, before and after indexing, through edits,
an upgrade of an older archive and its backfill."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import storage.archive as archive_module
from storage.archive import Archive
import storage.bigram as bigram_module
from storage.bigram import BIGRAM_FUNCTION, BIGRAM_RANGES, bigram_document, is_bigram_char, python_bigram_document, sql_is_bigram_char
from storage.schema import MIGRATIONS, ensure_schema
from storage.search import build_search_sql, search_posts
from tests.test_storage_support import T0, T1, make_page, make_post

# Characters the texts are drawn from: Chinese, ASCII of both cases and digits, kana, hangul,
# compatibility and Extension A/B ideographs, and non-bigram characters (punctuation, space,
# full-width forms, symbols) that break pairs.
CHINESE = "鲸鱼办公室参谋长群众服务党委的是一"
ASCII = "aAbBzZ09"
OTHER_BIGRAM = "かカ한ᄀ豈㐀\U00020000・"
BREAKERS = " ,。!%_\\\"'*ａ«\n"
ALPHABET = CHINESE + ASCII + OTHER_BIGRAM + BREAKERS


def like_ids(archive, q):
    """Post ids LIKE finds, newest first: what every search route must return (search drops
    the query's surrounding white space)."""
    q = q.strip(" \t\n\r\u00a0\u3000")
    if not q:
        return []
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = archive.db.execute(
        "SELECT id FROM posts WHERE content_text LIKE ? ESCAPE '\\' ORDER BY posted_at DESC, id DESC", [pattern])
    return [row[0] for row in rows]


def searched_ids(archive, q, **kwargs):
    return [hit["post_id"] for hit in search_posts(archive.db, q, limit=10_000, **kwargs)]


# The same statement with each of the two plans for a bigram forced: matches from the index
# (the threshold is never passed) or the scan in posted_at order (any match passes it).
FORCED = {plan: build_search_sql("newest", bigram_scan_posts=n) for plan, n in (("index", 1), ("scan", 10**9))}


def forced_ids(archive, q, plan, limit=10_000, offset=0):
    rows = archive.db.execute(FORCED[plan], {"q": q, "limit": limit, "offset": offset})
    return [row[0] for row in rows]


def bigram_ids(archive, q):
    rows = archive.db.execute("SELECT rowid FROM posts_bigram WHERE posts_bigram MATCH ?", [f'"{q}"'])
    return sorted(row[0] for row in rows)


def save(archive, site, tid, texts, now=T0):
    posts = [make_post(tid * 1000 + n, n + 1, text, posted_at=f"2012-03-{1 + n % 28:02d}T10:00:00+08:00")
             for n, text in enumerate(texts)]
    archive.save_thread_page(site, make_page(tid, posts), url=f"t{tid}", url_key=f"t{tid}", now=now)


def test_a_text_becomes_its_overlapping_pairs_of_bigram_characters():
    assert bigram_document("ab鲸鱼!x") == "ab b鲸 鲸鱼"
    assert bigram_document("鲸") == "" and bigram_document("") == "" and bigram_document(None) == ""
    assert bigram_document("Ab,cD 鲸鱼。鱼\U00020000") == "Ab cD 鲸鱼 鱼\U00020000"
    assert bigram_document("一・一") == "一・ ・一"  # U+30FB is in the katakana block


# Lone surrogates excluded: SQLite stores UTF-8, which cannot encode them (post text never
# holds one: it is decoded from bytes, and lexbor hands back UTF-8).
@given(st.characters(exclude_categories=("Cs",)))
def test_python_and_sql_agree_on_which_characters_pair(char):
    conn = sqlite3.connect(":memory:")
    in_sql = conn.execute(f"SELECT {sql_is_bigram_char(':c')}", {"c": char}).fetchone()[0]
    assert bool(in_sql) == is_bigram_char(char) == (len(bigram_document(char * 2)) == 2)


def test_the_c_tokenizer_is_built_by_the_install():
    # Optional for an install without a compiler, but this one (and CI's) has gcc: a silently
    # failed build would cost a third of the index's time.
    assert bigram_module._pair_document_c is not None


# Runs of bigram characters of every width (Latin-1, BMP, astral), with separators between.
mixed_texts = st.text(alphabet=st.one_of(
    st.sampled_from("ab9Z 鲸鱼一・ア한\U00020000\U0002F800,。\n\xa0é\U0001F600"), st.characters()), max_size=60)


@given(mixed_texts)
def test_the_c_and_python_tokenizers_give_the_same_document(text):
    c_document = bigram_document(text)
    assert c_document == python_bigram_document(text)
    assert type(c_document) is str and hash(c_document) == hash(python_bigram_document(text))


def test_the_c_tokenizer_reads_its_ranges_from_the_caller():
    pair_document = bigram_module._pair_document_c
    assert pair_document("abc", [(0x61, 0x62)]) == "ab"  # a list: read on every call
    assert pair_document("abc", ((0x62, 0x63),)) == "bc"
    assert pair_document("鲸鱼", BIGRAM_RANGES) == "鲸鱼"
    with pytest.raises(ValueError):
        pair_document("ab", [(0x62, 0x61)])
    with pytest.raises(TypeError):
        pair_document("ab", [("a", "b")])
    with pytest.raises(TypeError):
        pair_document(b"ab", BIGRAM_RANGES)
    assert pair_document("ab", BIGRAM_RANGES) == "ab"  # a failed read left nothing behind


def test_the_set_is_ranges_of_code_points():
    assert all(first <= last for first, last in BIGRAM_RANGES)
    assert is_bigram_char("鲸") and is_bigram_char("Z") and is_bigram_char("7") and not is_bigram_char("ａ")


texts = st.lists(st.text(alphabet=ALPHABET, max_size=30), min_size=1, max_size=12)


@st.composite
def queries(draw, posts):
    """Two characters: often a pair out of a post (at its start or end too), its ASCII case
    changed at random; sometimes any two characters of the alphabet."""
    text = draw(st.sampled_from(posts))
    if len(text) >= 2 and draw(st.booleans()):
        start = draw(st.sampled_from([0, len(text) - 2, draw(st.integers(0, len(text) - 2))]))
        pair = text[start:start + 2]
    else:
        pair = draw(st.text(alphabet=ALPHABET, min_size=2, max_size=2))
    return "".join(c.swapcase() if c.isascii() and draw(st.booleans()) else c for c in pair)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), texts, texts, texts, st.integers(0, 3))
def test_search_finds_what_like_finds(data, indexed, edits, tail, indexed_edits):
    """Posts indexed, then some of them edited (the triggers swap their pairs), then posts left
    above the watermark: every 2-character query finds the LIKE scan's posts, in its order,
    page by page."""
    with tempfile.TemporaryDirectory() as tmp, Archive(Path(tmp) / "a.db", index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, indexed)
        archive.index_pending()
        edited = (edits + indexed)[: len(indexed)]  # same floors, new texts where edits has them
        save(archive, site, 1, edited[:indexed_edits] + indexed[indexed_edits:], now=T1)
        save(archive, site, 2, tail)
        posts = indexed + edited + tail
        for _ in range(5):
            q = data.draw(queries(posts))
            expected = like_ids(archive, q)
            assert searched_ids(archive, q) == expected, q
            assert searched_ids(archive, q, order="newest") == expected, q
            assert searched_ids(archive, q, site_id=site) == expected, q
            assert forced_ids(archive, q, "index") == expected == forced_ids(archive, q, "scan"), q
            assert forced_ids(archive, q, "index", 2, 1) == expected[1:3] == forced_ids(archive, q, "scan", 2, 1), q
            pages = [searched_ids_page(archive, q, offset) for offset in range(0, len(expected) + 3, 3)]
            assert [i for page in pages for i in page] == expected, q
        archive.db.execute("INSERT INTO posts_bigram (posts_bigram, rank) VALUES ('integrity-check', 0)")


def searched_ids_page(archive, q, offset):
    return [hit["post_id"] for hit in search_posts(archive.db, q, limit=3, offset=offset)]


def test_an_edit_of_an_indexed_post_swaps_its_pairs(tmp_path):
    with Archive(tmp_path / "a.db", index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, ["鲸鱼在海里", "办公室"])
        archive.index_pending()
        whale, office = like_ids(archive, "鲸鱼")[0], like_ids(archive, "办公")[0]
        assert bigram_ids(archive, "鲸鱼") == [whale]
        save(archive, site, 1, ["海豚在海里", "办公室"], now=T1)  # the crawler's edit path
        assert bigram_ids(archive, "鲸鱼") == [] and bigram_ids(archive, "海豚") == [whale]
        archive.db.execute("UPDATE posts SET content_text = 'Whale 鲸鱼' WHERE id = ?", [office])  # raw SQL
        assert bigram_ids(archive, "鲸鱼") == [office] and bigram_ids(archive, "办公") == []
        assert bigram_ids(archive, "WH") == [office]  # ASCII case folds, as in LIKE
        assert searched_ids(archive, "鲸鱼") == [office] and searched_ids(archive, "hA") == [office]
        archive.db.execute("INSERT INTO posts_bigram (posts_bigram, rank) VALUES ('integrity-check', 0)")


def test_a_connection_without_the_function_cannot_edit_silently(tmp_path):
    with Archive(tmp_path / "a.db", index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, ["鲸鱼在海里"])
        archive.index_pending()
    conn = sqlite3.connect(tmp_path / "a.db")
    with pytest.raises(sqlite3.OperationalError, match="no such function"):
        conn.execute("UPDATE posts SET content_text = '海豚'")
    conn.close()


def test_a_common_and_a_rare_bigram_page_alike(tmp_path):
    """Either plan (a rare word's matches from the index, a common word's scan in posted_at
    order) gives LIKE's posts in LIKE's order, page by page."""
    with Archive(tmp_path / "a.db", index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, [f"第{n}条鲸鱼" if n % 10 else "海豚" for n in range(40)])
        archive.index_pending()
        save(archive, site, 2, ["鲸鱼和海豚"])  # above the watermark
        for q in ("鲸鱼", "海豚"):
            expected = like_ids(archive, q)
            for limit in (1, 2, 7, 50):
                for plan in FORCED:
                    pages = [forced_ids(archive, q, plan, limit, offset)
                             for offset in range(0, len(expected) + limit, limit)]
                    assert [i for page in pages for i in page] == expected, (q, limit, plan)


def test_short_queries_of_other_characters_keep_the_scan(tmp_path):
    with Archive(tmp_path / "a.db", index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, ["鲸鱼!在海里", "a_b 100%", "鲸"])
        archive.index_pending()
        for q in ("鲸", "鱼!", "_b", "0%", " 鲸鱼 ", "ａ"):
            assert searched_ids(archive, q) == like_ids(archive, q.strip()), q
        assert searched_ids(archive, "鱼!") and searched_ids(archive, "鲸")


def test_an_upgraded_archive_backfills_the_bigram_index_in_batches(tmp_path, monkeypatch):
    path = tmp_path / "a.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert ensure_schema(sqlite_utils.Database(conn), MIGRATIONS[:3]) == 3
    conn.close()
    with Archive(path, index_batch_posts=None) as archive:
        pass  # a version 3 archive is upgraded on open: write its posts as version 3 would
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("""
        DELETE FROM schema_version WHERE version >= 4;
        DROP INDEX idx_frontier_site_lease;  -- migration 7's
        DROP INDEX idx_posts_gone;  -- migration 10's
        DROP INDEX idx_posts_thread_pid; ALTER TABLE runs DROP COLUMN gone_posts;  -- migration 9's
        ALTER TABLE posts DROP COLUMN hash_covers_media;  -- migration 11's
        ALTER TABLE threads DROP COLUMN newest_first;  -- migration 12's
        ALTER TABLE threads DROP COLUMN last_archived_post_at;  -- migration 13's
        ALTER TABLE post_versions DROP COLUMN attachments_json; ALTER TABLE post_versions DROP COLUMN quotes_json;  -- 15's
        DROP TABLE post_reverts;  -- 16's
        ALTER TABLE posts DROP COLUMN subject; ALTER TABLE threads DROP COLUMN poll_json;  -- 17's
        ALTER TABLE threads DROP COLUMN classified_json; ALTER TABLE threads DROP COLUMN visits;  -- 17-18
        ALTER TABLE threads DROP COLUMN special_json;  -- 19's
        DROP TABLE thread_part_versions;  -- 20's
        CREATE INDEX idx_posts_thread_page ON posts (thread_id, page);
        DROP TRIGGER posts_bigram_au; DROP TRIGGER posts_bigram_ad; DROP TABLE posts_bigram;
        ALTER TABLE posts DROP COLUMN content_status;
        DELETE FROM search_index_state WHERE fts_table = 'posts_bigram';
        INSERT INTO sites (id, name, engine, created_at) VALUES (1, 's', 'discuz', 'x');
        INSERT INTO threads (id, site_id, thread_key, first_seen_at, last_seen_at) VALUES (1, 1, '1', 'x', 'x');
    """)
    for n in range(1, 8):
        conn.execute(
            """INSERT INTO posts (id, site_id, thread_id, post_key, content_text, content_html, content_hash,
            posted_at, first_seen_at, last_seen_at) VALUES (?, 1, 1, ?, ?, '', ?, ?, 'x', 'x')""",
            [n, str(n), f"第{n}条鲸鱼" if n % 2 else "海豚", str(n), f"2012-03-0{n}"])
    conn.execute("INSERT INTO posts_fts (rowid, content_text) SELECT id, content_text FROM posts")
    conn.execute("UPDATE search_index_state SET indexed_through = 7 WHERE fts_table = 'posts_fts'")
    conn.close()

    monkeypatch.setattr(archive_module, "BIGRAM_BACKFILL_POSTS", 3)
    with Archive(path, index_batch_posts=None) as archive:
        assert archive.pending_index_count() == 7 and archive.indexed_through() == 7
        whales = like_ids(archive, "鲸鱼")
        assert searched_ids(archive, "鲸鱼") == whales == [7, 5, 3, 1]
        assert archive.index_pending() == 3  # one batch of the backlog, and nothing new
        assert bigram_ids(archive, "鲸鱼") == [1, 3] and archive.pending_index_count() == 4
        assert searched_ids(archive, "鲸鱼") == whales
        archive.db.execute("UPDATE posts SET content_text = '鲸鱼' WHERE id = 2")  # below: re-indexed
        archive.db.execute("UPDATE posts SET content_text = '海豚' WHERE id = 5")  # above: left to the batch
        whales = like_ids(archive, "鲸鱼")
        assert searched_ids(archive, "鲸鱼") == whales == [7, 3, 2, 1]
        while archive.pending_index_count():
            archive.index_pending()
        assert bigram_ids(archive, "鲸鱼") == [1, 2, 3, 7] and searched_ids(archive, "鲸鱼") == whales
        archive.db.execute("INSERT INTO posts_bigram (posts_bigram, rank) VALUES ('integrity-check', 0)")


def test_the_index_command_fills_an_upgraded_archives_backlog_now(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from scraper.cli import main

    path = tmp_path / "a.db"
    with Archive(path, index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        for tid in range(1, 8):
            save(archive, site, tid, [f"第{tid}帖鲸鱼", "海豚", "群众服务"])
    # What migration 5 leaves: the bigram index empty, its watermark back at 0 (done after
    # close, which indexes what is pending).
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO posts_bigram (posts_bigram) VALUES ('delete-all')")
    conn.execute("UPDATE search_index_state SET indexed_through = 0 WHERE fts_table = 'posts_bigram'")
    conn.close()
    monkeypatch.setattr(archive_module, "BIGRAM_BACKFILL_POSTS", 4)  # several batches

    runner = CliRunner()
    assert "21 posts not yet indexed" in runner.invoke(main, ["status", "--db", str(path)]).output
    result = runner.invoke(main, ["index", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "21 posts to index"
    assert "indexed 4, 17 left" in result.output and result.output.endswith("indexed 21 posts; nothing pending\n")
    assert "not yet indexed" not in runner.invoke(main, ["status", "--db", str(path)]).output
    assert runner.invoke(main, ["index", "--db", str(path)]).output.startswith("nothing to index")
    with Archive(path, readonly=True) as archive:
        assert archive.pending_index_count() == 0
        assert bigram_ids(archive, "鲸鱼") == sorted(like_ids(archive, "鲸鱼")) != []
        assert searched_ids(archive, "鲸鱼") == like_ids(archive, "鲸鱼")


def test_the_index_plan_reads_the_bigram_index_and_the_scan_plan_reads_posts(tmp_path):
    # A post's pairs taken out of the index behind the archive's back: the index plan no
    # longer finds it, the scan still does, so each plan is the route it is named for. (The
    # other post keeps the word in the index: with no hit there, either plan reads the index.)
    with Archive(tmp_path / "a.db", index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, ["鲸鱼在海里", "海豚在海里", "又见鲸鱼"])
        archive.index_pending()
        whale, again = [row[0] for row in archive.db.execute(
            "SELECT id FROM posts WHERE content_text LIKE '%鲸鱼%' ORDER BY id")]
        both = [again, whale]  # newest first
        assert forced_ids(archive, "鲸鱼", "index") == forced_ids(archive, "鲸鱼", "scan") == both
        archive.db.execute(
            f"INSERT INTO posts_bigram (posts_bigram, rowid, pairs) "
            f"SELECT 'delete', id, {BIGRAM_FUNCTION}(content_text) FROM posts WHERE id = ?", [whale])
        assert forced_ids(archive, "鲸鱼", "index") == [again]
        assert forced_ids(archive, "鲸鱼", "scan") == both
