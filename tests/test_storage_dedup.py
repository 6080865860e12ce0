"""storage.dedup: normalisation, hashes, identity keys and the new/same/changed verdict."""

from __future__ import annotations

import datetime
import hashlib
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.dedup import (
    classify,
    content_hash,
    extract_hash,
    normalise_content,
    post_key,
    thread_key,
)

WHITE_SPACE = [" ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "  \u00a0\n"]


def test_normalise_collapses_every_kind_of_white_space_and_strips():
    text = "\u3000 办公室是一个单位的综合办事机构,\u00a0\u00a0处在\n\n承上启下 \t的枢纽地位 \u00a0"
    assert normalise_content(text) == "办公室是一个单位的综合办事机构, 处在 承上启下 的枢纽地位"


def test_normalise_composes_to_nfc():
    decomposed = unicodedata.normalize("NFD", "Café Ångström")
    assert decomposed != "Café Ångström"
    assert normalise_content(decomposed) == "Café Ångström"


def test_normalise_rejects_non_text():
    with pytest.raises(TypeError):
        normalise_content(b"bytes")  # type: ignore[arg-type]


def test_content_hash_is_sha256_of_the_normalised_text():
    assert content_hash(" 一是参谋意识。\n") == hashlib.sha256("一是参谋意识。".encode()).hexdigest()


def test_content_hash_separates_different_text():
    assert content_hash("一是参谋意识。") != content_hash("二是服务意识。")
    # Collapsing white space must not glue words together.
    assert content_hash("a b") != content_hash("ab")


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.text(alphabet="党委办公室意识abcXYZ、。,1", min_size=1, max_size=6), min_size=1, max_size=8),
    gaps=st.lists(st.sampled_from(WHITE_SPACE), min_size=9, max_size=9),
)
def test_hash_ignores_how_words_are_spaced(words, gaps):
    spaced_plainly = " ".join(words)
    spaced_oddly = gaps[0] + "".join(w + gaps[i + 1] for i, w in enumerate(words))
    assert content_hash(spaced_oddly) == content_hash(spaced_plainly)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_normalise_is_idempotent(text):
    once = normalise_content(text)
    assert normalise_content(once) == once
    assert once == once.strip()
    assert "  " not in once


def test_thread_key_prefers_the_tid():
    assert thread_key(88, "标题") == "88"
    assert thread_key(88, None) == "88"


def test_thread_key_without_tid_hashes_the_normalised_title():
    key = thread_key(None, "基层党委办公室应强化的十种意识")
    digest = hashlib.sha256("基层党委办公室应强化的十种意识".encode()).hexdigest()
    assert key == "text:" + digest[:16]
    assert thread_key(None, "\u3000基层党委办公室应强化的十种意识 \n") == key
    assert thread_key(None, "另一个标题") != key


def test_thread_key_needs_a_tid_or_a_title():
    with pytest.raises(ValueError, match="tid or a non-empty title"):
        thread_key(None, " \u00a0 ")


def test_post_key_prefers_the_pid_else_thread_and_floor():
    assert post_key(1001, "88", 1) == "1001"
    assert post_key(None, "88", 3) == "88#3"
    assert post_key(None, "text:0123456789abcdef", 12) == "text:0123456789abcdef#12"


def test_post_key_needs_a_pid_or_a_floor():
    with pytest.raises(ValueError, match="neither a pid nor a floor"):
        post_key(None, "88", None)


@pytest.mark.parametrize(
    ("existing", "new", "verdict"),
    [(None, "aa", "new"), ("aa", "aa", "same"), ("aa", "bb", "changed")],
)
def test_classify(existing, new, verdict):
    assert classify(existing, new) == verdict


def test_extract_hash_depends_on_entries_and_their_order():
    a = [("1001", "h1"), ("1002", "h2")]
    assert extract_hash(a) == extract_hash(list(a))
    assert extract_hash(a) != extract_hash(reversed(a))
    assert extract_hash(a) != extract_hash([("1001", "h1"), ("1002", "h3")])
    # Entries are kept apart: moving a boundary changes the hash.
    assert extract_hash([("ab", "c")]) != extract_hash([("a", "bc")])
    assert extract_hash([(1, None)]) != extract_hash([(1, "None")])


def test_extract_hash_is_the_sha256_of_the_entries_as_json():
    # Stored in every pages row: a change of encoding would make every archived page look
    # changed at its next visit, so the exact text hashed is pinned here.
    entries = [("1001", "h1", 3), ("帖子#2", None, 0)]
    text = '[["1001", "h1", 3], ["帖子#2", null, 0]]'
    assert extract_hash(entries) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    # Anything else JSON cannot encode is written as its str().
    assert extract_hash([("1", datetime.date(2026, 1, 2))]) == hashlib.sha256(b'[["1", "2026-01-02"]]').hexdigest()
