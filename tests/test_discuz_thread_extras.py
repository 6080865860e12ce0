"""The parts of a Discuz thread page outside the post bodies: a poll thread's poll, a thread's
classified information (分类信息), a reward, activity or debate thread's own parts and a reply's
own subject (fixtures thread_poll.html, thread_classified.html, thread_reward.html,
thread_activity.html and thread_debate.html, shaped as viewthread_poll.htm,
viewthread_reward.htm, viewthread_activity.htm, viewthread_debate.htm and
viewthread_node_body.htm render them)."""

from __future__ import annotations

import re

import pytest

from scraper import clean
from scraper.engines.base import ClassifiedInfo, ParseContext, Poll, SpecialThread
from scraper.engines.discuz import DiscuzEngine
from tests.test_discuz_engine import PAGE2_URL, fixture

ENGINE = DiscuzEngine()
POLL_URL = "http://bbs.example.cn/thread-120-1-1.html"
CLASSIFIED_URL = "http://bbs.example.cn/thread-130-1-1.html"


def thread(html: str, url: str = POLL_URL):
    return ENGINE.parse_thread(clean.parse_html(html), ParseContext(url=url, fetched_at="2024-03-05T10:00:00+08:00"))


def test_a_poll_is_read_with_its_counts_voters_and_choice():
    page = thread(fixture("thread_poll"))
    assert page.poll == Poll(
        options=(("按时间顺序写", 9), ("按工作板块写 范文", 8), ("不写", 1)),
        voters=12, multiple=True, max_choices=2, results_hidden=False, ended=False,
        remaining_raw="3 天 5 小时 12 分钟",
    )
    assert page.classified is None
    # The poll is not the opening post's text.
    assert page.posts[0].content_text == "年底了，总结该从哪里写起？\n请大家投票。"


def _hidden_single_choice_ended(html: str) -> str:
    # visiblepoll: the option rows carry class ptl and no results rows follow them.
    html = re.sub(r"<tr>\s*<td>\s*<div class=\"pbg\">.*?</tr>", "", html, flags=re.S)
    html = html.replace("<strong>多选投票</strong>: ( 最多可选 2 项 ), 共有 12 人参与投票",
                        "<strong>单选投票</strong> , 投票后结果可见, 共有 12 人参与投票")
    return re.sub(r'<p class="ptmr">.*?</p>', '<p class="ptmr"><strong>投票已经结束</strong></p>', html, flags=re.S)


def test_a_poll_whose_results_show_only_to_voters_has_no_counts():
    poll = thread(_hidden_single_choice_ended(fixture("thread_poll"))).poll
    assert poll == Poll(options=(("按时间顺序写", None), ("按工作板块写 范文", None), ("不写", None)),
                        voters=12, multiple=False, max_choices=None, results_hidden=True, ended=True,
                        remaining_raw=None)


IMAGE_POLL = """<div class="pcht"><table summary="poll panel" cellspacing="0" cellpadding="0" width="100%"><tr>
<td valign="bottom" id="polloption_31" width="25%"><div class="polltd cl">
 <a href="javascript:;" title="a.jpg"><img id="aimg_90" aid="90" src="data/attachment/forum/a.thumb.jpg" width="130px" /></a>
 <p class="mtn mbn xi2">红色封面</p>
 <div class="imgf imgf2"><span class="jdt" style="width: 70%; background-color:#E92725">&nbsp;</span>
 <p class="imgfc"><span class="z">7票</span><span class="y">70.00% </span></p></div></div></td>
<td valign="bottom" id="polloption_32" width="25%"><div class="polltd cl">
 <a href="javascript:;" title=""><img src="static/image/common/nophoto.gif" width="130px" /></a>
 <p class="mtn mbn xi2">蓝色封面</p>
 <div class="imgf imgf2"><span class="jdt" style="width: 30%; background-color:#F27B21">&nbsp;</span>
 <p class="imgfc"><span class="z">3票</span><span class="y">30.00% </span></p></div></div></td>
<td width="25%"></td><td width="25%"></td></tr></table></div>"""


def test_an_image_poll_is_read_from_its_cells():
    html = re.sub(r'<div class="pcht">.*?</table>\s*</div>', IMAGE_POLL, fixture("thread_poll"), flags=re.S)
    poll = thread(html).poll
    assert poll.options == (("红色封面", 7), ("蓝色封面", 3))
    assert not poll.results_hidden


def test_malformed_poll_counts_leave_the_page_readable():
    html = fixture("thread_poll")
    huge = "9" * 5000
    html = html.replace("共有 12 人", f"共有 {huge} 人").replace("最多可选 2 项", f"最多可选 {'8' * 40} 项")
    html = html.replace("<em style=\"color:#E92725\">(9)</em>", f"<em>({'7' * 30})</em>")
    html = html.replace("<em style=\"color:#F27B21\">(8)</em>", "")  # a results row without its count
    html = html.replace("<em style=\"color:#F2A61F\">(1)</em>", "<em>(１)</em>")  # a full-width digit
    page = thread(html)
    assert page.poll.options == (("按时间顺序写", None), ("按工作板块写 范文", None), ("不写", None))
    assert page.poll.voters is None and page.poll.max_choices is None
    assert [post.pid for post in page.posts] == [2001, 2002, 2003]


def test_a_poll_form_without_options_or_summary_is_an_empty_poll():
    html = re.sub(r'<div class="pinf">.*?</div>|<div class="pcht">.*?</table>\s*</div>', "",
                  fixture("thread_poll"), flags=re.S)
    assert thread(html).poll.options == ()


def test_classified_information_is_read_with_its_sort_name():
    page = thread(fixture("thread_classified"), CLASSIFIED_URL)
    assert page.classified == ClassifiedInfo(sort_name="房屋出租", fields=(
        ("租金", "2500 元/月"), ("户型", "两室一厅"), ("地址", "城东区 光明路 12 号"), ("联系电话", "-")))
    assert page.poll is None
    assert page.posts[0].content_text == "南北通透，拎包入住。"


def test_a_classified_table_without_caption_or_values_is_still_read():
    html = re.sub(r"<caption>.*?</caption>|<td>2500 元/月</td>", "", fixture("thread_classified"))
    assert thread(html, CLASSIFIED_URL).classified.fields[:2] == (("租金", ""), ("户型", "两室一厅"))
    assert thread(html, CLASSIFIED_URL).classified.sort_name is None


def test_poll_and_classified_belong_to_the_opening_post_only():
    # A page without floor 1 (page 2 on): a reply that quoted the markup holds no poll.
    page = thread(fixture("thread_page2"), PAGE2_URL)
    assert page.poll is None and page.classified is None
    html = fixture("thread_poll").replace('id="postnum2001">楼主', 'id="postnum2001">11#')
    html = html.replace('id="postnum2002">沙发', 'id="postnum2002">12#').replace('id="postnum2003">板凳', 'id="postnum2003">13#')
    assert thread(html, "http://bbs.example.cn/thread-120-2-1.html").poll is None


def test_a_replys_own_subject_is_kept_apart_from_its_text():
    posts = thread(fixture("thread_poll")).posts
    assert [post.subject for post in posts] == [None, "回复：按时间顺序 & 分板块", None]
    assert posts[1].content_text == "我两样都用。"
    # An h2 the author wrote in the body is the body's.
    assert posts[2].content_text == "小标题\n选第三项的是认真的吗"


def test_a_subject_is_cleaned_as_other_text():
    html = fixture("thread_poll").replace(
        "<h2>回复：按时间顺序 &amp; 分板块</h2>",
        '<h2>回复：<font class="jammer">x2 K9 q</font>按时间顺序<span style="display:none">藏</span> &amp; 分板块</h2>')
    assert thread(html).posts[1].subject == "回复：按时间顺序 & 分板块"
    assert thread(fixture("thread_poll").replace("<h2>回复：按时间顺序 &amp; 分板块</h2>", "<h2> </h2>")).posts[1].subject is None


PORT_CASES = [
    ("thread_poll", POLL_URL, lambda html: html),
    ("thread_poll", POLL_URL, _hidden_single_choice_ended),
    ("thread_poll", POLL_URL, lambda html: re.sub(r'<div class="pcht">.*?</table>\s*</div>', IMAGE_POLL, html, flags=re.S)),
    ("thread_classified", CLASSIFIED_URL, lambda html: html),
    ("thread_classified", CLASSIFIED_URL, lambda html: _expired(html)),
    ("thread_reward", POLL_URL, lambda html: html),
    ("thread_activity", POLL_URL, lambda html: html),
    ("thread_debate", POLL_URL, lambda html: html),
    ("thread_trade", POLL_URL, lambda html: html),
]


@pytest.mark.parametrize(("name", "url", "change"), PORT_CASES)
def test_the_beautifulsoup_port_reads_the_same(name, url, change):
    from benchmarks import bs4_discuz

    html = change(fixture(name))
    ours = thread(html, url)
    theirs = bs4_discuz.parse_thread(html, ParseContext(url=url, fetched_at="2024-03-05T10:00:00+08:00"))
    assert theirs == ours
    assert ours.poll is not None or ours.classified is not None or ours.special is not None


def _expired(html: str) -> str:
    # viewthread_node_body.htm: an expired sort prints {lang has_expired} in place of its table.
    return re.sub(r'<table summary="分类信息".*?</table>', "该信息已经过期", html, flags=re.S)


def test_an_expired_classified_sort_gives_its_notice_and_no_fields():
    page = thread(_expired(fixture("thread_classified")), CLASSIFIED_URL)
    assert page.classified == ClassifiedInfo(sort_name=None, fields=(), expired_notice="该信息已经过期")
    assert page.posts[0].content_text == "南北通透，拎包入住。"


def test_a_reward_thread_gives_its_bounty_state_and_best_answer():
    page = thread(fixture("thread_reward"))
    assert page.special == SpecialThread(
        kind="reward",
        fields=(("price", "20"), ("credit", "金钱"), ("state", "已解决"), ("best_answer_author", "李四")),
        best_answer_pid=2002,
    )
    # The best answer's excerpt is the reply's, archived as the reply: not the question's text.
    assert page.posts[0].content_text == "年度总结的开头怎么写比较好？\n求一个范例。"
    assert page.posts[0].author == "张三" and page.poll is None


def test_an_unsolved_reward_has_no_best_answer():
    html = re.sub(r'<div class="rwdbst">.*?</div>\s*</div>\s*</div>', "", fixture("thread_reward"), flags=re.S)
    html = html.replace('<div class="rsld z">', '<div class="rusld z">').replace("<em>已解决</em>", "<em>未解决</em>")
    assert thread(html).special == SpecialThread(
        kind="reward", fields=(("price", "20"), ("credit", "金钱"), ("state", "未解决")))


def test_an_activity_thread_gives_its_details_under_their_own_labels():
    page = thread(fixture("thread_activity"))
    assert page.special == SpecialThread(kind="activity", fields=(
        ("活动类型", "交流会"), ("开始时间", "2024-03-20 14:00"), ("活动地点", "市图书馆三楼报告厅"), ("性别", "不限"),
        ("每人花销", "30 元"), ("已报名人数", "12 人"), ("剩余名额", "8 人"), ("报名截止", "2024-03-18 23:59"),
    ))
    assert page.posts[0].content_text == "三月的写作交流会，欢迎报名。\n请带上去年的总结稿。"


def test_a_debate_thread_gives_both_sides_and_the_verdict():
    page = thread(fixture("thread_debate"))
    assert page.special == SpecialThread(kind="debate", fields=(
        ("verdict", "正方获胜"), ("umpire_point", "正方论据更充分。"), ("best_debater", "李四"),
        ("schedule", "结束时间: 2024-3-9 12:00 裁判: 老秘"),
        ("affirm_point", "要写不足，才显得实事求是。"), ("affirm_votes", "15"), ("affirm_debaters", "3"),
        ("negative_point", "不写不足，篇幅留给成绩。"), ("negative_votes", "5"), ("negative_debaters", "1"),
    ))
    assert page.posts[0].content_text == "总结要不要写不足？欢迎双方辩论。"


def test_a_trade_thread_gives_each_item_with_its_terms_and_prices():
    page = thread(fixture("thread_trade"))
    assert page.special == SpecialThread(kind="trade", fields=(
        ("goods", "公文写作百法例讲"), ("交易类型", "二手 一口价"), ("剩余时间", "12天5小时"),
        ("price", "25 元"), ("cost_price", "48 元"), ("removed", "该商品已被删除"),
    ))
    # The second element with the body's id (the item counter's) is not the body.
    assert page.posts[0].content_text == "自用的两本写作书，九成新，同城可面交。"


def test_a_debate_still_running_has_no_verdict():
    html = re.sub(r'<div id="umpirepoint">.*?</div>', "", fixture("thread_debate"), flags=re.S)
    fields = dict(thread(html).special.fields)
    assert "verdict" not in fields and "umpire_point" not in fields and fields["affirm_votes"] == "15"


@pytest.mark.parametrize("name", ["thread_poll", "thread_classified", "thread_page1", "thread_page2"])
def test_other_threads_have_no_special_parts(name):
    assert thread(fixture(name), PAGE2_URL if name == "thread_page2" else POLL_URL).special is None


def test_special_parts_are_read_only_from_the_box_of_a_special_thread():
    # Outside div.pcbs (a template that lays the parts out elsewhere) they are not read.
    html = fixture("thread_debate").replace('<div class="pcbs">', '<div class="t_fsz">', 1)
    assert thread(html).special is None
