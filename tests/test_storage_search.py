"""storage.search: trigram FTS for 3+ characters, LIKE for 1-2, one SQL statement for both."""

from __future__ import annotations

import pytest
from datasette.app import Datasette
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.search import SEARCH_SQL, build_search_sql, search_posts
from tests.test_storage_support import T0, T1, archive, count, make_page, make_post, site_id  # noqa: F401

# Real sentences from the seed thread, one post each.
THREAD_88 = [
    (1001, "办公室是一个单位的综合办事机构,处在承上启下、联系左右、沟通内外的枢纽地位,担负着为领导服务、"
           "为机关服务、为群众服务的重要职责。", "2012-03-12T14:40:59+08:00"),
    (1002, "一是参谋意识。办公室是一级领导决策的参谋部,办公室的同志都是“参谋长”。", "2012-03-12T14:42:09+08:00"),
    (1003, "二是服务意识。为领导、为基层、为群众搞好服务是办公室重要工作职责。服务工作搞得好不好,"
           "能不能让领导满意、基层满意、群众满意,是衡量办公室工作的根本标准。", "2012-03-12T14:42:52+08:00"),
    (1004, "美国著名军事家巴顿将军有句名言:“不想当将军的士兵不是好士兵”。", "2012-03-16T14:55:32+08:00"),
]
THREAD_89 = [
    (2001, 'Discuz! X prints a jammer: use NEAR(a b) or "FTS5" queries with prefix* terms; '
           "50% of _hidden_ text is noise.", "2016-04-12T10:51:09+08:00"),
    (2002, "The archive keeps every edit of a post, 群众 included.", None),
]
HOSTILE = ["NEAR(", '"', "*", "'; DROP TABLE posts;--", "办公室\" OR \"的", "AND", "-", "^", "(", "a:b",
           "NEAR(a b)", '""', "content_text:办公", "\\", "%", "_", "％"]


@pytest.fixture(params=["pending", "indexed"])
def corpus(request, archive, site_id):
    """The two seed threads, either still waiting above the index's watermark (found by the
    tail scan) or indexed: every search test runs against both."""
    def page(tid, title, rows):
        posts = [make_post(pid, n + 1, text, posted_at=at) for n, (pid, text, at) in enumerate(rows)]
        return make_page(tid, posts, title=title)

    archive.save_thread_page(site_id, page(88, "基层党委办公室应强化的十种意识", THREAD_88),
                             url="t88", url_key="t88", now=T0)
    archive.save_thread_page(site_id, page(89, "Notes on Discuz jammer text", THREAD_89),
                             url="t89", url_key="t89", now=T0)
    if request.param == "indexed":
        assert archive.index_pending() == len(THREAD_88 + THREAD_89)
    assert archive.pending_index_count() == (0 if request.param == "indexed" else 6)
    return archive


def pids(archive, hits):
    found = []
    for hit in hits:
        found.append(archive.db.execute("SELECT pid FROM posts WHERE id = ?", [hit["post_id"]]).fetchone()[0])
    return found


def run_search_sql(archive, q, limit="", offset=""):
    """SEARCH_SQL as Datasette runs it: every parameter a string, '' when left empty."""
    cursor = archive.db.conn.execute(SEARCH_SQL, {"q": q, "limit": limit, "offset": offset})
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def test_an_indexed_post_is_found_through_the_trigram_index(corpus):
    # Taken out of the index behind the archive's back, an indexed post is found no more:
    # the index answered, not a scan of the posts (which would still find it). A post not
    # yet indexed is found by the scan.
    assert pids(corpus, search_posts(corpus.db, "群众满意")) == [1003]
    indexed = corpus.pending_index_count() == 0
    if indexed:
        row = corpus.db.execute("SELECT id, content_text FROM posts WHERE pid = 1003").fetchone()
        corpus.db.execute("INSERT INTO posts_fts (posts_fts, rowid, content_text) VALUES ('delete', ?, ?)", row)
    for order in ("rank", "newest"):
        assert pids(corpus, search_posts(corpus.db, "群众满意", order=order)) == ([] if indexed else [1003])


def test_two_character_chinese_query(corpus):
    hits = search_posts(corpus.db, "参谋")
    assert pids(corpus, hits) == [1002]
    assert "«参谋»" in hits[0]["snippet"]
    assert set(pids(corpus, search_posts(corpus.db, "群众"))) == {1001, 1003, 2002}


def test_four_character_chinese_query(corpus):
    hits = search_posts(corpus.db, "群众满意")
    assert pids(corpus, hits) == [1003]
    hit = hits[0]
    assert (hit["title"], hit["author"], hit["floor"], hit["posted_at"]) == (
        "基层党委办公室应强化的十种意识", "仲伯间", 3, "2012-03-12T14:42:52+08:00")
    assert "«群众满意»" in hit["snippet"]
    assert set(pids(corpus, search_posts(corpus.db, "办公室"))) == {1001, 1002, 1003}


def test_one_character_query(corpus):
    assert set(pids(corpus, search_posts(corpus.db, "兵"))) == {1004}


def test_english_query_is_case_insensitive(corpus):
    assert pids(corpus, search_posts(corpus.db, "jammer")) == [2001]
    assert pids(corpus, search_posts(corpus.db, "JAMMER")) == [2001]
    assert pids(corpus, search_posts(corpus.db, "every edit")) == [2002]


def test_hostile_queries_never_raise_and_change_nothing(corpus):
    before = {t: count(corpus, t) for t in ("posts", "threads", "post_versions")}
    for q in HOSTILE:
        for order in ("rank", "newest"):
            search_posts(corpus.db, q, order=order)
        run_search_sql(corpus, q)
    assert {t: count(corpus, t) for t in before} == before


def test_a_nul_in_a_query_is_dropped_and_an_overlong_query_is_refused_plainly(corpus):
    assert search_posts(corpus.db, "参谋\x00") == search_posts(corpus.db, "参谋") != []
    assert search_posts(corpus.db, "鲸鱼\x00zzzz") == []
    with pytest.raises(ValueError, match="100,000 characters"):
        search_posts(corpus.db, "办" * 100_000)


def test_operators_are_searched_as_literal_text(corpus):
    for q in ["NEAR(", "NEAR(a b)", '"FTS5"', "*", '"', "50%", "%", "_hidden_", "_"]:
        assert pids(corpus, search_posts(corpus.db, q)) == [2001], q
    for q in ["AND", "^", "'; DROP TABLE posts;--", "％", "\\"]:
        assert search_posts(corpus.db, q) == [], q


def test_blank_queries_find_nothing(corpus):
    for q in ["", " ", "\u3000", " \u00a0 "]:
        assert search_posts(corpus.db, q) == []
        assert run_search_sql(corpus, q) == []


def test_surrounding_white_space_is_ignored(corpus):
    assert pids(corpus, search_posts(corpus.db, "\u3000参谋 ")) == [1002]
    assert pids(corpus, search_posts(corpus.db, " 群众满意\u00a0")) == [1003]


def test_newest_order_limit_and_offset(corpus):
    newest = pids(corpus, search_posts(corpus.db, "意识", order="newest"))
    assert newest == [1003, 1002]
    all_office = pids(corpus, search_posts(corpus.db, "办公室", order="newest"))
    assert all_office == [1003, 1002, 1001]
    assert pids(corpus, search_posts(corpus.db, "办公室", order="newest", limit=1, offset=1)) == [1002]
    assert pids(corpus, search_posts(corpus.db, "群众", order="newest")) == [1003, 1001, 2002]  # no time: last


def test_site_filter(corpus, site_id):
    other = corpus.upsert_site("other", engine="discuz")
    corpus.save_thread_page(other, make_page(7, [make_post(9001, 1, "群众满意的另一个论坛")]), url="o7",
                            url_key="o7", now=T0)
    assert set(pids(corpus, search_posts(corpus.db, "群众满意"))) == {1003, 9001}
    assert pids(corpus, search_posts(corpus.db, "群众满意", site_id=site_id)) == [1003]
    assert pids(corpus, search_posts(corpus.db, "群众", site_id=other)) == [9001]


def test_bad_arguments_are_refused(corpus):
    with pytest.raises(ValueError):
        search_posts(corpus.db, "办公室", order="oldest")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        search_posts(corpus.db, "办公室", limit=-1)
    with pytest.raises(TypeError):
        search_posts(corpus.db, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        build_search_sql("oldest")  # type: ignore[arg-type]


def test_search_sql_agrees_with_search_posts(corpus):
    for q in ["参谋", "群众满意", "办公室", "兵", "jammer", "every edit", *HOSTILE]:
        assert run_search_sql(corpus, q) == search_posts(corpus.db, q), q
    paged = search_posts(corpus.db, "办公室", limit=2, offset=1)
    assert run_search_sql(corpus, "办公室", limit="2", offset="1") == paged and len(paged) == 2


ALL_TEXT = "".join(text for _, text, _ in THREAD_88 + THREAD_89)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_search_sql_agrees_on_any_substring(corpus, data):
    start = data.draw(st.integers(0, len(ALL_TEXT) - 1))
    q = ALL_TEXT[start : start + data.draw(st.integers(1, 8))]
    expected = search_posts(corpus.db, q)
    assert run_search_sql(corpus, q) == expected
    # A literal substring of a post is always found, by whichever route.
    needle = q.strip(" \t\n\r\u00a0\u3000").lower()
    if needle and any(needle in text.lower() for _, text, _ in THREAD_88 + THREAD_89):
        assert expected


def test_fts_follows_edits(corpus, site_id):
    assert pids(corpus, search_posts(corpus.db, "巴顿将军")) == [1004]
    edited = [make_post(pid, n + 1, text, posted_at=at) for n, (pid, text, at) in enumerate(THREAD_88)]
    edited[3] = make_post(1004, 4, "十是进取意识。不想扛红旗的工作人员不可能把工作干得很出色。")
    retitled = make_page(88, edited, title="办公室的十种意识")
    corpus.save_thread_page(site_id, retitled, url="t88", url_key="t88", now=T1)
    assert search_posts(corpus.db, "巴顿将军") == []
    assert pids(corpus, search_posts(corpus.db, "扛红旗")) == [1004]
    assert pids(corpus, search_posts(corpus.db, "红旗")) == [1004]
    # The old text stays in post_versions; the FTS index holds exactly the current text.
    old_versions = "SELECT count(*) FROM post_versions WHERE content_text LIKE '%巴顿%'"
    assert corpus.db.execute(old_versions).fetchone()[0] == 1
    # rank=1 compares the index with posts row by row, so the pending rows go in first.
    corpus.index_pending()
    corpus.db.execute("INSERT INTO posts_fts (posts_fts, rank) VALUES ('integrity-check', 1)")
    assert pids(corpus, search_posts(corpus.db, "扛红旗")) == [1004] and not search_posts(corpus.db, "巴顿将军")
    titles = corpus.db.execute(
        "SELECT rowid FROM threads_fts WHERE threads_fts MATCH ?", ['"的十种意识"']
    ).fetchall()
    assert len(titles) == 1
    assert corpus.db.execute(
        "SELECT count(*) FROM threads_fts WHERE threads_fts MATCH ?", ['"基层党委"']
    ).fetchone()[0] == 0


async def test_datasette_runs_search_sql_as_a_stored_query(corpus):
    datasette = Datasette(
        [str(corpus.path)],
        config={"databases": {"archive": {"queries": {"search": {"sql": SEARCH_SQL}}}}},
    )
    response = await datasette.client.get("/archive/search.json?q=群众满意&_shape=array")
    assert response.status_code == 200
    expected = [hit["post_id"] for hit in search_posts(corpus.db, "群众满意")]
    assert [row["post_id"] for row in response.json()] == expected and expected
    for q in ["NEAR(", "参谋", "'; DROP TABLE posts;--"]:
        response = await datasette.client.get("/archive/search.json", params={"q": q, "_shape": "array"})
        assert response.status_code == 200
        assert response.json() == search_posts(corpus.db, q)
