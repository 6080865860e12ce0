"""Layer 4 end to end: a stamp a forum scatters through posts is proposed, confirmed, removed."""

import json

from click.testing import CliRunner

from scraper.cli import main
from storage.archive import Archive
from tests.test_crawl_demo import crawl

STAMP = "【转自秘途文化公众号】"
REPLIES = [
    f"{STAMP}这个办法我们单位也在用，效果不错。",
    f"材料写完先放一放，{STAMP}第二天再改，往往能发现新问题。",
    f"标题要短，{STAMP}观点要鲜明，数据要准确。",
    f"多向老同志请教，他们的经验很宝贵。{STAMP}",
    f"每次写完都对照一下模板，{STAMP}格式就不会出错。",
    f"先写提纲再动笔，思路清楚了{STAMP}写起来就快。",
]


def test_a_recurring_stamp_is_proposed_confirmed_and_then_removed(demo_forum, tmp_path):
    for i, text in enumerate(REPLIES):
        demo_forum.forum.add_reply(3, "材料狗" if i % 2 else "小王", text)
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        crawl(archive, demo_forum.base_url)
        assert archive.db.execute("select count(*) from posts where content_text like ?",
                                  [f"%{STAMP}%"]).fetchone()[0] == len(REPLIES)

    runner = CliRunner()
    proposed = runner.invoke(main, ["phrases", "propose", "--db", str(db), "--site", "demo"])
    assert proposed.exit_code == 0, proposed.output
    assert STAMP in proposed.output
    # Ordinary sentences of the forum are not proposed.
    assert "区分的关键" not in proposed.output

    confirmed = runner.invoke(main, ["phrases", "confirm", "--db", str(db), "--site", "demo", STAMP])
    assert confirmed.exit_code == 0, confirmed.output
    listed = runner.invoke(main, ["phrases", "list", "--db", str(db), "--site", "demo"])
    assert "confirmed" in listed.output and STAMP in listed.output

    with Archive(db) as archive:
        report = crawl(archive, demo_forum.base_url)
        assert report.new_versions == len(REPLIES)  # each stamped post now reads without the stamp
        rows = archive.db.execute("select content_text, noise_json from posts where version_count = 2").fetchall()
    assert len(rows) == len(REPLIES)
    for text, noise in rows:
        assert STAMP not in text
        assert json.loads(noise).get("learned_phrases") == 1


def test_confirming_an_unknown_phrase_is_refused(tmp_path, demo_forum):
    db = tmp_path / "a.db"
    with Archive(db) as archive:
        crawl(archive, demo_forum.base_url)
    result = CliRunner().invoke(main, ["phrases", "confirm", "--db", str(db), "--site", "demo", "不存在的短语"])
    assert result.exit_code == 1
    assert "not a proposed phrase" in result.output
