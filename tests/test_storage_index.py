"""Batched search indexing: posts are indexed behind a watermark, and search stays complete
and exact before, during and after each batch, through edits and a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from storage.archive import Archive
from storage.search import build_search_sql, search_posts
from tests.test_storage_support import T0, T1, archive, make_page, make_post, site_id  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
PATTON = "美国著名军事家巴顿将军有句名言:“不想当将军的士兵不是好士兵”。"
RED_FLAG = "十是进取意识。不想扛红旗的工作人员不可能把工作干得很出色。"
OFFICE = "办公室是一级领导决策的参谋部,办公室的同志都是“参谋长”。"


def save(archive, site_id, tid, texts, now=T0):
    posts = [make_post(tid * 100 + n, n + 1, text) for n, text in enumerate(texts)]
    return archive.save_thread_page(site_id, make_page(tid, posts), url=f"t{tid}", url_key=f"t{tid}", now=now)


def indexed_ids(archive, phrase):
    """Post ids the FTS index itself matches (no tail scan)."""
    rows = archive.db.execute("SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?", [f'"{phrase}"'])
    return sorted(row[0] for row in rows)


def found(archive, q, **kwargs):
    return sorted(hit["post_id"] for hit in search_posts(archive.db, q, **kwargs))


def check_index_matches_posts(archive):
    # rank=1 also compares the index with the external content table, row by row.
    archive.db.execute("INSERT INTO posts_fts (posts_fts, rank) VALUES ('integrity-check', 1)")


def test_a_post_is_findable_before_and_after_it_is_indexed(tmp_path):
    with Archive(tmp_path / "a.db", index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, [PATTON, OFFICE])
        assert archive.pending_index_count() == 2 and archive.indexed_through() == 0
        assert indexed_ids(archive, "巴顿将军") == []
        before = {q: found(archive, q) for q in ("巴顿将军", "参谋部", "士兵", "将军有句名言")}
        assert before["巴顿将军"] and before["参谋部"] and before["士兵"]
        assert archive.index_pending() == 2
        assert archive.pending_index_count() == 0 and archive.indexed_through() == max(before["参谋部"])
        assert indexed_ids(archive, "巴顿将军") == before["巴顿将军"]
        assert {q: found(archive, q) for q in before} == before
        check_index_matches_posts(archive)
        assert archive.index_pending() == 0


def test_index_pending_takes_the_oldest_first_up_to_its_limit(tmp_path):
    with Archive(tmp_path / "a.db", index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, [f"第{n}条:{OFFICE}" for n in range(5)])
        ids = found(archive, "参谋部")
        assert archive.index_pending(limit=2) == 2 and archive.indexed_through() == ids[1]
        # Half indexed, half not: search still finds each post once.
        assert found(archive, "参谋部") == ids and found(archive, "参谋部", order="newest") == ids
        assert indexed_ids(archive, "参谋部") == ids[:2]
        with pytest.raises(ValueError):
            archive.index_pending(limit=0)
    with pytest.raises(ValueError):
        Archive(tmp_path / "b.db", index_batch_posts=0)


def test_saving_indexes_once_a_batch_is_pending(tmp_path):
    with Archive(tmp_path / "a.db", index_batch_posts=3) as archive:
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, [PATTON, OFFICE])
        assert archive.pending_index_count() == 2
        save(archive, site, 2, [RED_FLAG])
        assert archive.pending_index_count() == 0 and len(indexed_ids(archive, "巴顿将军")) == 1


def test_finish_run_and_close_index_what_is_pending(tmp_path):
    path = tmp_path / "a.db"
    with Archive(path, index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        run = archive.start_run(site, "crawl")
        save(archive, site, 1, [PATTON])
        archive.finish_run(run, status="finished", requests=1, not_modified=0, new_posts=1, new_versions=0, failures={})
        assert archive.pending_index_count() == 0
        save(archive, site, 2, [OFFICE])
        assert archive.pending_index_count() == 1
    with Archive(path, readonly=True) as reader:
        assert reader.pending_index_count() == 0 and len(indexed_ids(reader, "参谋部")) == 1


def test_an_edit_of_an_indexed_post_replaces_its_text_in_the_index(tmp_path):
    with Archive(tmp_path / "a.db", index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, [OFFICE, PATTON])
        archive.index_pending()
        (edited_id,) = indexed_ids(archive, "巴顿将军")
        save(archive, site, 1, [OFFICE, RED_FLAG], now=T1)
        assert archive.pending_index_count() == 0
        assert indexed_ids(archive, "巴顿将军") == [] and indexed_ids(archive, "扛红旗") == [edited_id]
        assert found(archive, "巴顿将军") == [] and found(archive, "扛红旗") == [edited_id]
        check_index_matches_posts(archive)


def test_an_edit_of_a_pending_post_is_indexed_with_its_new_text(tmp_path):
    with Archive(tmp_path / "a.db", index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, [PATTON])
        save(archive, site, 1, [RED_FLAG], now=T1)
        archive.index_pending()
        assert indexed_ids(archive, "巴顿将军") == [] and len(indexed_ids(archive, "扛红旗")) == 1
        check_index_matches_posts(archive)


WRITER = textwrap.dedent("""
    import os, signal, sys
    from storage.archive import Archive
    from tests.test_storage_support import make_page, make_post
    archive = Archive(sys.argv[1], index_batch_posts=None)
    site = archive.upsert_site("s", engine="discuz")
    for tid in range(1, 6):
        posts = [make_post(tid * 100 + n, n + 1, f"第{tid}帖第{n}楼 巴顿将军有句名言") for n in range(3)]
        archive.save_thread_page(site, make_page(tid, posts), url=f"t{tid}", url_key=f"t{tid}")
    print("saved", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # dies before close() could index
""")


def test_a_kill_between_write_and_index_loses_nothing(tmp_path):
    path = tmp_path / "a.db"
    done = subprocess.run([sys.executable, "-c", WRITER, str(path)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == -signal.SIGKILL and done.stdout == "saved\n", done.stderr
    with Archive(path, index_batch_posts=None) as archive:
        assert archive.pending_index_count() == 15 and indexed_ids(archive, "巴顿将军") == []
        everything = found(archive, "巴顿将军", limit=100)
        assert len(everything) == 15 and found(archive, "第3帖第2楼") == [everything[3 * 3 - 1]]
        assert archive.index_pending() == 15
        assert found(archive, "巴顿将军", limit=100) == everything == indexed_ids(archive, "巴顿将军")
        check_index_matches_posts(archive)


def test_ranking_is_bounded_but_paging_reaches_every_match(tmp_path):
    with Archive(tmp_path / "a.db", index_batch_posts=None) as archive:
        site = archive.upsert_site("s", engine="discuz")
        # Post k holds the phrase 1 + 3k mod 7 times: more is a better bm25 score, and the
        # counts do not follow the posts' age (the ranked six hold it 7, 3, 6, 2, 5, 1 times).
        for tid in range(1, 5):
            save(archive, site, tid, ["办公室。" * (1 + ((tid - 1) * 5 + n) * 3 % 7) + "其他内容" * 9
                                      for n in range(5)])
        archive.index_pending(limit=15)  # 15 indexed, 5 waiting above the watermark
        ids = found(archive, "办公室", limit=100)
        assert len(ids) == 20
        statement = build_search_sql("rank", rank_window=6)
        pages = []
        for offset in range(0, 20, 7):
            rows = archive.db.execute(statement, {"q": "办公室", "limit": 7, "offset": offset}).fetchall()
            pages.extend(row[0] for row in rows)
        assert sorted(pages) == ids  # each match exactly once, across pages
        waiting, ranked, older = pages[:5], pages[5:11], pages[11:]
        assert waiting == sorted(ids[15:], reverse=True)  # not yet indexed: newest first
        assert sorted(ranked) == ids[9:15]  # the newest six indexed matches...
        scores = dict(archive.db.execute(
            "SELECT rowid, rank FROM posts_fts WHERE posts_fts MATCH '\"办公室\"'").fetchall())
        assert [scores[i] for i in ranked] == sorted(scores[i] for i in ranked)  # ...by relevance
        assert ranked != sorted(ranked, reverse=True)  # which is not their age
        assert older == sorted(ids[:9], reverse=True)  # then the rest, newest first
        with pytest.raises(ValueError):
            build_search_sql("rank", rank_window=0)


def test_close_leaves_posts_pending_when_another_writer_holds_the_lock(tmp_path):
    path = tmp_path / "a.db"
    other = None
    try:
        archive = Archive(path, index_batch_posts=None)
        site = archive.upsert_site("s", engine="discuz")
        save(archive, site, 1, [PATTON])
        other = Archive(path, index_batch_posts=None)
        other.db.execute("BEGIN IMMEDIATE")
        archive.db.execute("PRAGMA busy_timeout = 50")
        archive.close()  # cannot index now, and says nothing: the post is safe and searchable
        other.db.execute("ROLLBACK")
        assert other.pending_index_count() == 1 and len(found(other, "巴顿将军")) == 1
        # With nothing pending, closing needs no lock at all.
        idle = Archive(path, index_batch_posts=None)
        idle.index_pending()
        other.db.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        idle.close()  # would wait out the 5 s busy_timeout if it asked for the lock
        assert time.monotonic() - started < 1
        other.db.execute("ROLLBACK")
        assert other.pending_index_count() == 0
    finally:
        if other is not None:
            other.db.close()
