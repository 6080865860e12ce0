"""The text importer against the seed page: a browser's text rendering of a Discuz thread."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scraper.clean import JAMMER_UNIT, NoiseRules
from scraper.engines.base import ParseContext
from scraper.engines.discuz_text import parse_text_page, thread_ref_from_url
from scraper.errors import ParseError
from scraper.sites import load_site
from scraper.textimport import import_text_file

REPO = Path(__file__).resolve().parent.parent
SEED_TEXT = (REPO / "seeds" / "000_742c7f89ba496aaa.txt").read_text(encoding="utf-8")
DEMO_SITE = load_site(REPO / "seeds" / "sites" / "demo.toml")
ADS = ("公文写作百法例讲", "老秘网虚拟稿费", "专业写文章")
WATERMARK = "本文由老秘网推荐,"
# As seeds/README.md lists them.
EXPECTED_POSTS = [
    ("仲伯间", "2012-3-12 14:40:59"), ("仲伯间", "2012-3-12 14:42:09"), ("仲伯间", "2012-3-12 14:42:52"),
    ("仲伯间", "2012-3-12 14:43:53"), ("仲伯间", "2012-3-12 14:45:44"), ("仲伯间", "2012-3-12 15:21:03"),
    ("xg0101", "2012-3-16 14:55:32"), ("绝世赢贼", "2016-4-12 10:51:09"),
]
CHROME = ("关灯", "开启左侧", "复制链接", "您需要登录", "本版积分规则", "微信", "Copyright", "精彩评论", "正序浏览",
          "显示全部楼层", "发表于", "作者专栏")
JAMMER_RUN = re.compile(f"(?:{JAMMER_UNIT}){{5}}")
CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
HEADER_LINE = re.compile(r"发表于 \d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2}:\d{2} \| 显示全部楼层")


def demo_ctx(url: str = "https://bbs.example.cn/thread-88-1-1.html") -> ParseContext:
    return ParseContext(url=url, utc_offset=DEMO_SITE.utc_offset, noise=DEMO_SITE.noise)


@pytest.fixture(scope="module")
def seed_page():
    return parse_text_page(SEED_TEXT, demo_ctx())


def expected_cjk_runs() -> list[str]:
    """The CJK runs of every post line of the raw seed, computed without the importer:
    the lines between the first header and the reply box, minus the header lines, the chrome
    between posts, the ad lines and the watermark."""
    lines = SEED_TEXT.split("\n")
    first = next(i for i, line in enumerate(lines) if HEADER_LINE.search(line))
    end = next(i for i, line in enumerate(lines) if line.startswith("您需要登录后才可以回帖"))
    runs = []
    for line in lines[first:end]:
        line = line.strip(" \xa0")
        if HEADER_LINE.search(line) or line in ADS or line in ("精彩评论7", "正序浏览"):
            continue
        runs += CJK_RUN.findall(line.replace(WATERMARK, ""))
    return runs


def test_eight_posts_with_the_seed_authors_times_and_floors(seed_page):
    assert seed_page.title == "基层党委办公室应强化的十种意识"
    assert seed_page.tid == 88 and seed_page.page == 1 and seed_page.page_count == 1
    assert [(p.author, p.posted_at_raw) for p in seed_page.posts] == EXPECTED_POSTS
    assert [p.floor for p in seed_page.posts] == list(range(1, 9))
    assert [p.floor_label for p in seed_page.posts][:5] == ["楼主", "沙发", "板凳", "地板", "5#"]
    assert seed_page.posts[0].posted_at == "2012-03-12T14:40:59+08:00"
    assert seed_page.posts[7].posted_at == "2016-04-12T10:51:09+08:00"
    assert all(p.pid is None and p.author_uid is None for p in seed_page.posts)
    assert seed_page.replies == 7  # "精彩评论7"


def test_every_sentence_is_kept_in_order(seed_page):
    got = [run for post in seed_page.posts for run in CJK_RUN.findall(post.content_text)]
    assert got == expected_cjk_runs()


def test_no_chrome_ads_watermark_or_jammer_in_any_post(seed_page):
    for post in seed_page.posts:
        for field in (post.content_text, post.content_html):
            for unwanted in CHROME + ADS + (WATERMARK,):
                assert unwanted not in field, (post.floor, unwanted)
            assert not JAMMER_RUN.search(field), post.floor


def test_numbering_is_kept(seed_page):
    text = "\n".join(p.content_text for p in seed_page.posts)
    for numbered in ("1、党员意识", "9、奉献意识", "一是参谋意识", "十是进取意识", "①思想求实", "一、强化政治意识",
                     "八、强化人文意识"):
        assert numbered in text


def test_removed_noise_is_counted_per_post(seed_page):
    totals: dict[str, int] = {}
    for post in seed_page.posts:
        for name, n in post.noise_removed.items():
            totals[name] = totals.get(name, 0) + n
    assert totals == {"jammer_text_runs": 119, "text_ads": 3, "site_phrases": 1}
    assert seed_page.posts[0].noise_removed["site_phrases"] == 1
    assert [p.noise_removed.get("text_ads", 0) for p in seed_page.posts] == [0, 1, 1, 1, 0, 0, 0, 0]


def test_without_the_site_rules_ads_and_watermark_stay(seed_page):
    bare = parse_text_page(SEED_TEXT, ParseContext(url="", noise=NoiseRules()))
    assert WATERMARK in bare.posts[0].content_text
    assert bare.posts[1].content_text.startswith(ADS[0])
    assert not any(JAMMER_RUN.search(p.content_text) for p in bare.posts)


def test_content_html_is_escaped_paragraphs(seed_page):
    assert seed_page.posts[6].content_html == "<p>总结的都很精辟,很不错的</p>"
    page = parse_text_page("标题\n[复制链接]\n某人 发表于 2020-1-2 03:04 | 只看该作者\n<script>alert(1)</script>\n"
                           "第二行\n\n新段落 & 结尾", demo_ctx())
    post = page.posts[0]
    assert post.content_html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;<br>第二行</p><p>新段落 &amp; 结尾</p>"
    assert post.posted_at == "2020-01-02T03:04:00+08:00"
    assert post.content_text == "<script>alert(1)</script>\n第二行\n新段落 & 结尾"


@pytest.mark.parametrize("url, tid, first_floor", [
    ("http://127.0.0.1:8765/thread-1-2-1.html", 1, 11),
    ("http://127.0.0.1:8765/forum.php?mod=viewthread&tid=7&page=3", 7, 21),
    ("http://127.0.0.1:8765/forum.php?mod=viewthread&tid=7", 7, 1),
    ("file:///tmp/saved.txt", None, 1),
])
def test_the_url_gives_tid_and_offsets_floors(url, tid, first_floor):
    page = parse_text_page(SEED_TEXT, demo_ctx(url))
    assert page.tid == tid
    assert [p.floor for p in page.posts] == list(range(first_floor, first_floor + 8))
    assert page.page_count == page.page


def test_posts_per_page_can_follow_the_site():
    page = parse_text_page(SEED_TEXT, demo_ctx("http://h/thread-1-2-1.html"), posts_per_page=5)
    assert [p.floor for p in page.posts] == list(range(6, 14))


def test_thread_ref_from_url():
    assert thread_ref_from_url("http://h/bbs/thread-12-4-2.html") == (12, 4)
    assert thread_ref_from_url("http://h/forum.php?mod=viewthread&tid=12&page=x") == (12, 1)
    assert thread_ref_from_url("http://h/forum.php?mod=forumdisplay&fid=2") == (None, 1)
    assert thread_ref_from_url(None) == (None, 1)
    # Past any id a forum gives (and past the 4,300 digits int() reads): no thread, no error.
    digits = "9" * 5000
    assert thread_ref_from_url(f"http://h/bbs/thread-{digits}-1-1.html") == (None, 1)
    assert thread_ref_from_url(f"http://h/forum.php?mod=viewthread&tid={digits}") == (None, 1)
    assert thread_ref_from_url(f"http://h/forum.php?mod=viewthread&tid=12&page={digits}") == (12, 1)
    assert thread_ref_from_url(f"http://h/bbs/thread-12-{digits}-1.html") == (12, 1)  # as the engine reads it


def test_relative_times_and_pager_are_read():
    text = ("旧帖\n[复制链接]\n查看: 1024 | 回复: 12\n"
            "张三 发表于 3 天前 | 只看该作者\n第一帖\n"
            "楼主| 张三 发表于 昨天 22:10 | 只看该作者\n第二帖\n"
            "李四 发表于 2024-3-1 09:00\n这是引用，不是帖子头\n"
            "1 2 3 / 3 页 下一页\n您需要登录后才可以回帖 登录 | 立即注册\n")
    page = parse_text_page(text, demo_ctx("http://h/thread-9-2-1.html"))
    assert [(p.author, p.posted_at_raw, p.posted_at) for p in page.posts] == [
        ("张三", "3 天前", None), ("张三", "昨天 22:10", None)]
    assert "李四 发表于 2024-3-1 09:00" in page.posts[1].content_text
    assert (page.page, page.page_count, page.views, page.replies) == (2, 3, 1024, 12)


@pytest.mark.parametrize("garbage", ["", "\n\n\xa0\n", "hello world", "仲伯间 发表于 昨天", "<html></html>",
                                     "某人 发表于 2020-1-2 03:04\n没有楼层标记"])
def test_text_without_a_post_header_is_a_parse_error(garbage):
    with pytest.raises(ParseError):
        parse_text_page(garbage, demo_ctx())


@pytest.mark.parametrize("not_text", [None, b"bytes", 42])
def test_input_that_is_not_text_is_a_parse_error(not_text):
    with pytest.raises(ParseError):
        parse_text_page(not_text, demo_ctx())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(SEED_TEXT.split("\n")) | st.text(max_size=40), max_size=30))
def test_any_text_parses_or_raises_parse_error(lines):
    try:
        page = parse_text_page("\n".join(lines), demo_ctx())
    except ParseError:
        return
    assert page.posts and all(not JAMMER_RUN.search(p.content_text) for p in page.posts)


def test_an_import_that_would_file_its_posts_over_others_is_refused_and_writes_nothing(tmp_path):
    # A text rendering has no post ids: its posts are keyed by floor (and its thread by title
    # without a URL). Another thread of the same title, or the same page after a post was
    # deleted (every later floor moves up one), would turn into "edits" of other posts.
    import re

    from scraper.errors import ImportConflict
    from storage.archive import Archive

    seed_file, config = REPO / "seeds" / "000_742c7f89ba496aaa.txt", REPO / "seeds" / "sites" / "demo.toml"
    seed = SEED_TEXT
    lines = seed.split("\n")
    heads = [i for i, line in enumerate(lines) if re.search(r"发表于 .*\| 显示全部楼层", line)]
    shifted = tmp_path / "shifted.txt"  # the third post deleted
    shifted.write_text("\n".join(lines[:heads[2]] + lines[heads[3]:]), encoding="utf-8")
    retimed = tmp_path / "retimed.txt"  # another thread of the same title, opened at another time
    retimed.write_text(re.sub(r"发表于 (\d{4})-", lambda m: f"发表于 {int(m[1]) + 1}-", seed, count=1),
                       encoding="utf-8")
    with Archive(tmp_path / "a.db") as archive:
        import_text_file(archive, seed_file, site_name="demo", config_path=config)
        before = archive.db.execute("select post_key, author, content_hash, version_count from posts "
                                    "order by post_key").fetchall()
        for text in (shifted, retimed):
            with pytest.raises(ImportConflict, match="--url"):
                import_text_file(archive, text, site_name="demo", config_path=config)
        after = archive.db.execute("select post_key, author, content_hash, version_count from posts "
                                   "order by post_key").fetchall()
        # The same text again is no conflict: nothing new.
        again = import_text_file(archive, seed_file, site_name="demo", config_path=config)
    assert after == before and (again.new_posts, again.new_versions) == (0, 0)
