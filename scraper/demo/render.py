"""Pages of the demo forum, written the way Discuz! X3.4's default templates write them.

Pure functions: forum state in, HTML text out (the caller holds forum.lock). The markup
follows the facts in the project's Discuz notes (viewthread_node.htm, forumdisplay_list.htm,
helper_page.php multi(), discuzcode's jammer, showmessage), so any parser that reads real
Discuz pages reads these. All links are relative, under <base href>, in the rewrite form
(thread-T-P-1.html, forum-F-P.html) that Discuz prints when URL rewriting is on.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable
from datetime import datetime
from math import ceil

from scraper.demo.forum import GUIDE_THREADS_PER_PAGE, DemoBoard, DemoForum, DemoPost, DemoThread, Line

GENERATOR = "Discuz! X3.4"
POSTNO = ("楼主", "沙发", "板凳", "地板")  # Discuz's default floor names for floors 1-4
PAGER_WINDOW = 10  # multi(): how many page links it prints around the current page
NOTICE_NO_THREAD = "抱歉，指定的主题不存在或已被删除或正在被审核"
NOTICE_NO_BOARD = "抱歉，指定的版块不存在"
POST_DELETED = "无效楼层，该帖已经被删除"
POST_LOCKED = '提示: <em>作者被禁止或删除 内容自动屏蔽</em>'
BREAK = "<br />\r\n"  # nl2br() output between message lines

# Discuz's stock robots.txt: thread and board pages are allowed, scripts and actions are not.
ROBOTS_TXT = """#
# robots.txt for Discuz! X3
#

User-agent: *
Disallow: /api/
Disallow: /data/
Disallow: /source/
Disallow: /install/
Disallow: /template/
Disallow: /config/
Disallow: /uc_client/
Disallow: /uc_server/
Disallow: /static/
Disallow: /admin.php
Disallow: /search.php
Disallow: /member.php
Disallow: /api.php
Disallow: /misc.php
Disallow: /connect.php
Disallow: /forum.php?mod=redirect*
Disallow: /forum.php?mod=post*
Disallow: /home.php?mod=spacecp*
Disallow: /userapp.php?mod=app&*
Disallow: /*?mod=misc*
Disallow: /*?mod=attachment*
Disallow: /*mobile=yes*
"""


def esc(value: object) -> str:
    """Escape text for HTML; U+00A0 becomes &nbsp; as Discuz writes it."""
    return html.escape(str(value)).replace("\xa0", "&nbsp;")


# --- times (dgmdate) ---------------------------------------------------------------------
def _ymd(t: datetime) -> str:
    return f"{t.year}-{t.month}-{t.day}"


def discuz_datetime(t: datetime, seconds: bool = True) -> str:
    """Discuz's 'Y-n-j H:i:s' (or 'Y-n-j H:i'): month and day without leading zeros."""
    return f"{_ymd(t)} {t:%H:%M:%S}" if seconds else f"{_ymd(t)} {t:%H:%M}"


def dgmdate_u(t: datetime, now: datetime, *, seconds: bool = True) -> str:
    """dgmdate($t, 'u'): '5&nbsp;小时前', '昨天&nbsp;22:10', '3&nbsp;天前' in a span whose title
    holds the full time, or the plain time once it is a week old."""
    full = discuz_datetime(t, seconds)
    today = now.replace(hour=0, minute=0, second=0)
    elapsed = int((now - t).total_seconds())
    if t >= today:
        if elapsed > 3600:
            label = f"{elapsed // 3600}&nbsp;小时前"
        elif elapsed > 1800:
            label = "半小时前"
        elif elapsed > 60:
            label = f"{elapsed // 60}&nbsp;分钟前"
        elif elapsed > 0:
            label = f"{elapsed}&nbsp;秒前"
        elif elapsed == 0:
            label = "刚刚"
        else:
            return full
        return f'<span title="{full}">{label}</span>'
    days = int((today - t).total_seconds() // 86400)
    if days >= 7:
        return full
    label = {0: f"昨天&nbsp;{t:%H:%M}", 1: f"前天&nbsp;{t:%H:%M}"}.get(days, f"{days + 1}&nbsp;天前")
    return f'<span title="{full}">{label}</span>'


def dnumber(n: int) -> str:
    """Discuz's dnumber(): numbers over 10000 as '4万' with the exact value in a title."""
    return f'<span title="{n}">{n // 10000}万</span>' if n > 10000 else str(n)


# --- URLs ----------------------------------------------------------------------------------
def thread_href(tid: int, page: int = 1) -> str:
    return f"thread-{tid}-{page}-1.html"


def board_href(fid: int, page: int = 1) -> str:
    return f"forum-{fid}-{page}.html"


def space_href(uid: int) -> str:
    return f"home.php?mod=space&amp;uid={uid}"


def attachment_aid(aid: int, tid: int) -> str:
    """The opaque aid Discuz puts in attachment links (aidencode: aid|hash|time|uid|tid)."""
    digest = hashlib.md5(f"{aid}|demo".encode()).hexdigest()[:8]
    return base64.b64encode(f"{aid}|{digest}|1710000000|0|{tid}".encode()).decode()


# --- pager (helper_page.php multi()) --------------------------------------------------------
def pager(items: int, per_page: int, current: int, href: Callable[[int], str], jump: str) -> str:
    """Discuz's div.pg pager, or '' when everything fits on one page (as multi() does)."""
    pages = ceil(items / per_page)
    if pages <= 1:
        return ""
    offset = PAGER_WINDOW // 2
    if PAGER_WINDOW > pages:
        first, last = 1, pages
    else:
        first, last = current - offset, current - offset + PAGER_WINDOW - 1
        if first < 1:
            first, last = 1, max(current + 1 - first, PAGER_WINDOW)
        elif last > pages:
            first, last = pages - PAGER_WINDOW + 1, pages
    out = []
    if current - offset > 1 and pages > PAGER_WINDOW:
        out.append(f'<a href="{href(1)}" class="first">1 ...</a>')
    if current > 1:
        out.append(f'<a href="{href(current - 1)}" class="prev">&nbsp;&nbsp;</a>')
    out += [f"<strong>{i}</strong>" if i == current else f'<a href="{href(i)}">{i}</a>'
            for i in range(first, last + 1)]
    if last < pages:
        out.append(f'<a href="{href(pages)}" class="last">... {pages}</a>')
    out.append(f'<label><input type="text" name="custompage" class="px" size="2" title="输入页码，按回车快速跳转" '
               f'value="{current}" onkeydown="if(event.keyCode==13) {{window.location=\'{jump}\'+this.value;; '
               f'doane(event);}}" /><span title="共 {pages} 页"> / {pages} 页</span></label>')
    if current < pages:
        out.append(f'<a href="{href(current + 1)}" class="nxt">下一页</a>')
    return f'<div class="pg">{"".join(out)}</div>'


# --- page shell ----------------------------------------------------------------------------
def _head(forum: DemoForum, *, title: str, charset: str, site_url: str, canonical: str | None,
          description: str) -> str:
    seohead = f'<link href="{esc(site_url + canonical)}" rel="canonical" />\n' if canonical else ""
    return (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml">\n<head>\n'
        f'<meta http-equiv="Content-Type" content="text/html; charset={charset}" />\n'
        f"<title>{esc(title)} - Powered by Discuz!</title>\n"
        f"{seohead}"
        f'<meta name="keywords" content="{esc(forum.name)}" />\n'
        f'<meta name="description" content="{esc(description)}" />\n'
        f'<meta name="generator" content="{GENERATOR}" />\n'
        '<meta name="author" content="Discuz! Team and Comsenz UI Team" />\n'
        '<meta name="copyright" content="2001-2017 Comsenz Inc." />\n'
        '<meta name="MSSmartTagsPreventParsing" content="True" />\n'
        '<meta http-equiv="MSThemeCompatible" content="Yes" />\n'
        f'<base href="{esc(site_url)}" />'
        '<link rel="stylesheet" type="text/css" href="data/cache/style_1_common.css?Zq8" />'
        "<script type=\"text/javascript\">var STYLEID = '1', STATICURL = 'static/', "
        f"IMGDIR = 'static/image/common', VERHASH = 'Zq8', charset = '{charset}', discuz_uid = '0', "
        f"cookiepre = 'dz_2132_', cookiedomain = '', cookiepath = '/', SITEURL = '{esc(site_url)}', "
        "JSPATH = 'static/js/', CSSPATH = 'data/cache/style_', DYNAMICURL = '';</script>\n"
        '<script src="static/js/common.js?Zq8" type="text/javascript"></script>\n'
        "</head>\n"
    )


def _header(forum: DemoForum) -> str:
    chrome = forum.chrome
    promotions = "".join(f"<p>{line}</p>" for line in chrome.promotions)
    return (
        '<div id="append_parent"></div><div id="ajaxwaitid"></div>\n'
        '<div id="toptb" class="cl"><div class="wp">'
        f'<div class="z"><a href="javascript:;" id="lightsoff" onclick="toggleLights(this)">{chrome.lights}</a></div>'
        '<div class="y"><a id="switchblind" href="javascript:;" onclick="toggleBlind(this)" title="开启辅助访问" '
        'class="switchblind">开启辅助访问</a></div></div></div>\n'
        '<div id="hd"><div class="wp"><div class="hdc cl">'
        f'<h2><a href="./" title="{esc(forum.name)}"><img src="static/image/common/logo.png" alt="{esc(forum.name)}" '
        'border="0" /></a></h2>'
        '<form method="post" autocomplete="off" id="lsform" action="member.php?mod=logging&amp;action=login&amp;'
        'loginsubmit=yes&amp;infloat=yes&amp;lssubmit=yes" onsubmit="return lsSubmit();">'
        '<div class="fastlg cl"><div class="y pns"><table cellspacing="0" cellpadding="0"><tr>'
        '<td><label for="ls_username">帐号</label></td><td><input type="text" name="username" id="ls_username" '
        'class="px vm xg1" /></td><td class="fastlg_l"><a href="member.php?mod=register" class="xi2 xw1">立即注册</a>'
        '</td></tr><tr><td><label for="ls_password">密码</label></td><td><input type="password" name="password" '
        'id="ls_password" class="px vm" autocomplete="off" /></td><td class="fastlg_l"><button type="submit" '
        'class="pn vm" style="width: 75px;"><em>登录</em></button></td></tr></table></div></div></form>'
        "</div>\n"
        '<div id="nv"><ul><li class="a" id="mn_forum"><a href="forum.php" hidefocus="true" title="BBS">论坛'
        '<span>BBS</span></a></li><li id="mn_N0a2c"><a href="misc.php?mod=ranklist" hidefocus="true" '
        'title="Ranklist">排行榜<span>Ranklist</span></a></li></ul></div>\n'
        f'<div class="a_t">{promotions}</div>\n'
        "</div></div>\n"
    )


def _footer(forum: DemoForum) -> str:
    lines = "".join(f"<p>{line}</p>" for line in forum.chrome.footer)
    return (
        '<div id="ft" class="wp cl">\n'
        f'<div id="flk" class="y">{lines}</div>\n'
        '<div id="frt"><p>Powered by <strong><a href="http://www.discuz.net" target="_blank">Discuz!</a></strong> '
        '<em>X3.4</em></p><p class="xs0">&copy; 2001-2017 <a href="http://www.comsenz.com" target="_blank">'
        f'Comsenz Inc.</a></p><p class="xs0">GMT+8, {discuz_datetime(forum.now, seconds=False)}'
        '<span id="debuginfo">, Processed in 0.041203 second(s), 26 queries.</span></p></div>\n'
        "</div>\n"
    )


def _page(forum: DemoForum, *, body_class: str, title: str, charset: str, site_url: str, main: str,
          canonical: str | None = None, description: str = "") -> str:
    return (
        _head(forum, title=title, charset=charset, site_url=site_url, canonical=canonical,
              description=description or title)
        + f'<body id="nv_forum" class="{body_class}" onkeydown="if(event.keyCode==27) return false;">\n'
        + _header(forum)
        + f'<div id="wp" class="wp">\n{main}</div>\n'
        + _footer(forum)
        + "</body>\n</html>\n"
    )


def _breadcrumb(forum: DemoForum, board: DemoBoard | None = None, thread: DemoThread | None = None) -> str:
    parts = [f'<a href="./" class="nvhm" title="首页">{esc(forum.name)}</a> <em>&raquo;</em>'
             '<a href="forum.php">论坛</a>']
    if board:
        parts.append(f' <em>&rsaquo;</em> <a href="{board_href(board.fid)}">{esc(board.name)}</a>')
    if thread:
        parts.append(f' <em>&rsaquo;</em> <a href="{thread_href(thread.tid)}">{esc(thread.title)}</a>')
    return f'<div id="pt" class="bm cl"><div class="z">{"".join(parts)}</div></div>\n'


# --- one post (viewthread_node.htm) ------------------------------------------------------
def message_html(lines: list[Line]) -> str:
    """A message's lines as discuzcode leaves them: a run at a line's end as font.jammer right
    before the break, a run at a line's start as a display:none span right after it."""
    out = []
    for line in lines:
        lead = f'<span style="display:none">{esc(line.lead)}</span>' if line.lead else ""
        trail = f'<font class="jammer">{esc(line.trail)}</font>' if line.trail else ""
        out.append(f"{lead}{esc(line.text)}{trail}")
    # A run at a line's end stands before a break, so a message whose last line has one
    # ended with a line break.
    return BREAK.join(out) + (BREAK if lines and lines[-1].trail else "")


def _floor_label(floor: int) -> str:
    return POSTNO[floor - 1] if floor <= len(POSTNO) else f"<em>{floor}</em><sup>#</sup>"


def _images_html(post: DemoPost) -> str:
    out = []
    for image in post.images:
        path = f"data/attachment/{image.file}"
        out.append(
            f'{BREAK}<ignore_js_op>\r\n<img id="aimg_{image.aid}" aid="{image.aid}" src="static/image/common/none.gif" '
            f'zoomfile="{esc(path)}" file="{esc(path)}" class="zoom" onclick="zoom(this, this.src, 0, 0, 0)" '
            f'width="{image.width}" inpost="1" alt="{esc(image.name)}" title="{esc(image.name)}" />\r\n'
            f'<div class="tip tip_4 aimg_tip" id="aimg_{image.aid}_menu" style="position: absolute; display: none" '
            f'disautofocus="true"><div class="xs0"><p><strong>{esc(image.name)}</strong> <em class="xg1">'
            f'({esc(image.size)}, 下载次数: 0)</em></p><p><a href="forum.php?mod=attachment&amp;'
            f'aid={attachment_aid(image.aid, post.tid)}&amp;nothumb=yes" target="_blank">下载附件</a></p></div>'
            '<div class="tip_horn"></div></div>\r\n</ignore_js_op>'
        )
    return "".join(out)


def _attachments_html(post: DemoPost) -> str:
    if not post.attachments:
        return ""
    items = "".join(
        '<ignore_js_op><dl class="tattl"><dt><img src="static/image/filetype/msword.gif" border="0" class="vm" '
        f'alt="" /></dt><dd><p class="attnm"><a href="forum.php?mod=attachment&amp;'
        f'aid={attachment_aid(a.aid, post.tid)}" id="aid{a.aid}" target="_blank">{esc(a.name)}</a></p>'
        f"<p>{esc(a.size)}, 下载次数: {a.downloads}</p><p>&nbsp;</p></dd></dl></ignore_js_op>"
        for a in post.attachments)
    return f'<div class="pattl">{items}</div>\n'


def _post_body(forum: DemoForum, post: DemoPost) -> str:
    if post.status == "blocked":
        return f'<div class="locked">{POST_LOCKED}</div>'
    parts = []
    if post.ad:
        parts.append(f'<div class="a_pr" style="width:220px"><a href="misc.php?mod=ad&amp;slot=a_pr&amp;'
                     f'pid={post.pid}" target="_blank">{esc(post.ad)}</a></div>')
    if post.edited_at:
        parts.append(f'<i class="pstatus"> 本帖最后由 {esc(post.author)} 于 '
                     f"{discuz_datetime(post.edited_at, seconds=False)} 编辑 </i>{BREAK}{BREAK}")
    if post.quote:
        q = post.quote
        parts.append(
            f'<div class="quote"><blockquote><font size="2"><a href="forum.php?mod=redirect&amp;goto=findpost&amp;'
            f'pid={q.pid}&amp;ptid={post.tid}" target="_blank"><font color="#999999">{esc(q.author)} 发表于 '
            f"{discuz_datetime(q.posted_at, seconds=False)}</font></a></font>{BREAK}{esc(q.text)}</blockquote>"
            f"</div>{BREAK}")
    parts.append(message_html(post.lines))
    parts.append(_images_html(post))
    return (
        '<div class="t_fsz">\n<table cellspacing="0" cellpadding="0"><tr><td class="t_f" '
        f'id="postmessage_{post.pid}">\n{"".join(parts)}\n</td></tr></table>\n'
        f"{_attachments_html(post)}</div>\n"
        f'<div id="comment_{post.pid}" class="cm"></div>\n<div id="post_rate_div_{post.pid}"></div>'
    )


def _profile_column(forum: DemoForum, thread: DemoThread, post: DemoPost) -> str:
    user = forum.user(post.author)
    threads, posts = forum.user_stats(post.uid)
    on_left = (f'<div class="pi"><div class="authi"><a href="{space_href(post.uid)}" target="_blank" class="xw1">'
               f"{esc(post.author)}</a></div></div>\n") if thread.authoronleft else ""
    return (
        f'<td class="pls" rowspan="2">\n<div id="favatar{post.pid}" class="pls favatar">\n{on_left}'
        f'<div class="p_pop blk bui card_gender_0" id="userinfo{post.pid}" style="display: none;"></div>\n'
        f'<div><div class="avatar" onmouseover="showauthor(this, \'userinfo{post.pid}\')"><a href="'
        f'{space_href(post.uid)}" class="avtm" target="_blank"><img src="uc_server/avatar.php?uid={post.uid}'
        '&amp;size=middle" /></a></div></div>\n'
        '<div class="tns xg2"><table cellspacing="0" cellpadding="0"><th><p><a href="'
        f'{space_href(post.uid)}&amp;do=thread&amp;type=thread&amp;view=me&amp;from=space" class="xi2">{threads}</a>'
        f'</p>主题</th><th><p><a href="{space_href(post.uid)}&amp;do=thread&amp;type=reply&amp;view=me&amp;'
        f'from=space" class="xi2">{posts}</a></p>帖子</th><td><p><a href="{space_href(post.uid)}&amp;do=profile" '
        f'class="xi2">{dnumber(user.credits)}</a></p>积分</td></table></div>\n'
        "</div>\n</td>\n"
    )


def _post_header(forum: DemoForum, thread: DemoThread, post: DemoPost, page: int) -> str:
    first = post.floor == 1
    op_mark = post.op_mark if post.op_mark is not None else (
        not first and post.author == thread.opening_post.author)
    postnum_href = thread_href(thread.tid) if first else (
        f"forum.php?mod=redirect&amp;goto=findpost&amp;ptid={thread.tid}&amp;pid={post.pid}")
    jump = ('<div id="fj" class="y"><label class="z">电梯直达</label><input type="text" class="px p_fre z" size="2" '
            f"onkeyup=\"$('fj_btn').href='forum.php?mod=redirect&amp;ptid={thread.tid}&amp;authorid=0&amp;postno='"
            '+this.value" title="跳转到指定楼层" /><a href="javascript:;" id="fj_btn" class="z" title="跳转到指定楼层">'
            '<img src="static/image/common/fj_btn.png" alt="跳转到指定楼层" class="vm" /></a></div>\n'
            ) if first and page == 1 else ""
    mark = '&nbsp;楼主<span class="pipe">|</span>' if op_mark else ""
    name = ("" if thread.authoronleft else
            f'<a href="{space_href(post.uid)}" target="_blank" class="xi2">{esc(post.author)}</a>')
    readmode = (f'<span class="pipe show">|</span><a href="javascript:;" onclick="readmode($(\'thread_subject\')'
                f'.innerHTML, {post.pid});" class="show">阅读模式</a>') if first else ""
    return (
        f'<div class="pi">\n{jump}<strong>\n<a href="{postnum_href}" id="postnum{post.pid}" '
        "onclick=\"setCopy(this.href, '帖子地址复制成功');return false;\">\n"
        f"{_floor_label(post.floor)}</a>\n</strong>\n"
        '<div class="pti">\n<div class="pdbt"></div>\n<div class="authi">\n'
        f'<img class="authicn vm" id="authicon{post.pid}" src="static/image/common/online_member.gif" />\n'
        f"{mark}{name}\n"
        f'<em id="authorposton{post.pid}">发表于 {dgmdate_u(post.posted_at, forum.now)}</em>\n'
        '<span class="pipe">|</span>'
        f'<a href="forum.php?mod=viewthread&amp;tid={thread.tid}&amp;page={page}&amp;authorid={post.uid}" '
        f'rel="nofollow">只看该作者</a>\n{readmode}\n</div>\n</div>\n</div>\n'
    )


def _deleted_post(post: DemoPost) -> str:
    return (
        f'<div id="post_{post.pid}">\n<table id="pid{post.pid}" summary="pid{post.pid}" cellspacing="0" '
        'cellpadding="0">\n<tbody>\n<tr>\n<td class="pls"></td>\n<td class="plc">\n'
        f'<div class="pi">\n<strong><a>{_floor_label(post.floor)}</a></strong>\n</div>\n'
        f'<div class="pct">{POST_DELETED}</div>\n</td>\n</tr>\n'
        '<tr class="ad">\n<td class="pls"></td>\n<td class="plc"></td>\n</tr>\n</tbody>\n</table>\n</div>\n'
    )


def post_html(forum: DemoForum, thread: DemoThread, post: DemoPost, page: int) -> str:
    """One floor of a thread page: div#post_PID > table#pidPID (class plhin unless deleted)."""
    if post.status == "deleted":
        return _deleted_post(post)
    signature = forum.user(post.author).signature
    sign = (f'<div class="sign" style="max-height:100px;maxHeightIE:100px;">{esc(signature)}</div>'
            if signature and post.status == "normal" else "")
    return (
        f'<div id="post_{post.pid}">\n'
        f'<table id="pid{post.pid}" class="plhin" summary="pid{post.pid}" cellspacing="0" cellpadding="0">\n<tr>\n'
        + _profile_column(forum, thread, post)
        + '<td class="plc">\n'
        + _post_header(forum, thread, post, page)
        + '<div class="pct"><style type="text/css">.pcb{margin-right:0}</style><div class="pcb">\n'
        + _post_body(forum, post)
        + "\n</div></div>\n</td></tr>\n"
        + f'<tr><td class="plc plm">{sign}</td></tr>\n<tr id="_postposition{post.pid}"></tr>\n'
        + '<tr><td class="pls"></td><td class="plc" style="overflow:visible;"><div class="po hin"><div class="pob cl">'
        + f'<em><a class="fastre" href="forum.php?mod=post&amp;action=reply&amp;fid={thread.fid}&amp;tid={thread.tid}'
        + f'&amp;repquote={post.pid}&amp;extra=&amp;page={page}" onclick="showWindow(\'reply\', this.href)">回复</a>'
        + "</em></div></div></td></tr>\n</table>\n</div>\n"
    )


# --- pages -----------------------------------------------------------------------------------
def _thread_heading(forum: DemoForum, thread: DemoThread, page: int) -> str:
    if page == 1:
        counts = ('<div class="hm ptn"><span class="xg1">查看:</span> '
                  f'<span class="xi1">{thread.views}</span><span class="pipe">|</span><span class="xg1">回复:</span> '
                  f'<span class="xi1">{thread.replies}</span></div>')
    else:
        op = thread.opening_post
        counts = (f'<div id="tath" class="cl"><a href="{space_href(op.uid)}" title="{esc(op.author)}">'
                  f'<img src="uc_server/avatar.php?uid={op.uid}&amp;size=small" /></a> 楼主: '
                  f'<a href="{space_href(op.uid)}" title="{esc(op.author)}">{esc(op.author)}</a></div>')
    type_link = (f'<a href="forum.php?mod=forumdisplay&amp;fid={thread.fid}&amp;filter=typeid&amp;'
                 f'typeid={thread.typeid}">[{esc(thread.type_name)}]</a>\n') if thread.type_name else ""
    return (
        '<table cellspacing="0" cellpadding="0"><tr>\n'
        f'<td class="pls ptn pbn">{counts}</td>\n'
        '<td class="plc ptm pbn vwthd">\n'
        f'<span class="xg1 side_btn"><a href="javascript:;" class="btn_s_open">{forum.chrome.left_toggle}</a></span>\n'
        '<div class="y"><a href="forum.php?mod=viewthread&amp;action=printable&amp;tid='
        f'{thread.tid}" title="打印" target="_blank"><img src="static/image/common/print.png" alt="打印" class="vm" />'
        '</a></div>\n'
        f'<h1 class="ts">\n{type_link}<span id="thread_subject">{esc(thread.title)}</span>\n</h1>\n'
        f'<span class="xg1"><a href="{thread_href(thread.tid)}" onclick="return copyThreadUrl(this, '
        f"'{esc(forum.name)}')\">[复制链接]</a></span>\n"
        "</td></tr></table>\n"
    )


def _reply_box(thread: DemoThread) -> str:
    return (
        '<div id="f_pst" class="pl bm bmw"><form method="post" autocomplete="off" id="fastpostform" '
        f'action="forum.php?mod=post&amp;action=reply&amp;fid={thread.fid}&amp;tid={thread.tid}&amp;extra=&amp;'
        'replysubmit=yes&amp;infloat=yes&amp;handlekey=fastpost"><table cellspacing="0" cellpadding="0"><tr>'
        '<td class="pls"></td><td class="plc"><div class="cl"><div id="fastposteditor"><div class="tedt mtn">'
        '<div class="area"><div class="pt hm">您需要登录后才可以回帖 <a href="member.php?mod=logging&amp;'
        'action=login" onclick="showWindow(\'login\', this.href)" class="xi2">登录</a> | <a href="member.php?'
        'mod=register" class="xi2">立即注册</a></div></div></div></div></div>'
        f'<p class="ptm pnpost"><a href="home.php?mod=spacecp&amp;ac=credit&amp;op=rule&amp;fid={thread.fid}" '
        'class="y" target="_blank">本版积分规则</a><button type="button" name="replysubmit" id="fastpostsubmit" '
        'class="pn pnc vm" value="replysubmit"><strong>发表回复</strong></button></p></td></tr></table>'
        "</form></div>\n"
    )


def render_thread_page(forum: DemoForum, thread: DemoThread, page: int, site_url: str, charset: str) -> str:
    """Page `page` (already within range) of a thread: viewthread.htm with its posts."""
    board = forum.boards[thread.fid]
    per_page = forum.posts_per_page
    posts = thread.posts_in_order()[(page - 1) * per_page: page * per_page]
    jump = f"forum.php?mod=viewthread&amp;tid={thread.tid}&amp;extra=&amp;page="
    multipage = pager(len(thread.posts), per_page, page, lambda p: thread_href(thread.tid, p), jump)
    next_button = (f'<div class="pgbtn"><a href="{thread_href(thread.tid, page + 1)}" hidefocus="true" '
                   'class="bm_h">下一页 &raquo;</a></div>\n') if page < forum.thread_pages(thread) else ""
    main = (
        _breadcrumb(forum, board, thread)
        + '<div id="ct" class="wp cl">\n'
        + f'<div id="pgt" class="pgs mbm cl "><div class="pgt">{multipage}</div>'
        + f'<span class="y pgb"><a href="{board_href(board.fid)}">返回列表</a></span></div>\n'
        + '<div id="postlist" class="pl bm">\n'
        + _thread_heading(forum, thread, page)
        + "".join(post_html(forum, thread, post, page) for post in posts)
        + '<div id="postlistreply" class="pl"><div id="post_new" class="viewthread_table" style="display: none">'
        + "</div></div>\n</div>\n"
        + next_button
        + f'<div class="pgs mtm mbm cl">{multipage}<span class="pgb y"><a href="{board_href(board.fid)}">返回列表'
        + "</a></span></div>\n"
        + _reply_box(thread)
        + "</div>\n"
    )
    return _page(forum, body_class="pg_viewthread", title=f"{thread.title} - {board.name} - {forum.name}",
                 charset=charset, site_url=site_url, main=main, canonical=thread_href(thread.tid),
                 description=f"{thread.title} ,{forum.name}")


def _icon_cell(thread: DemoThread) -> str:
    return (f'<td class="icn"><a href="{thread_href(thread.tid)}" title="新窗口打开" target="_blank">'
            '<img src="static/image/common/folder_common.gif" /></a></td>\n')


def _counts_and_last_post_cells(forum: DemoForum, thread: DemoThread) -> str:
    """A thread row's replies/views cell and last-post cell, and the row's end (board and guide alike)."""
    last = thread.last_post
    return (
        f'<td class="num"><a href="{thread_href(thread.tid)}" class="xi2">{thread.replies}</a><em>{thread.views}</em>'
        "</td>\n"
        f'<td class="by">\n<cite><a href="{space_href(last.uid)}" c="1">{esc(last.author)}</a></cite>\n'
        f'<em><a href="forum.php?mod=redirect&amp;tid={thread.tid}&amp;goto=lastpost#lastpost">'
        f"{dgmdate_u(last.posted_at, forum.now, seconds=False)}</a></em>\n</td>\n"
        "</tr>\n</tbody>\n"
    )


def _board_row(forum: DemoForum, thread: DemoThread) -> str:
    op = thread.opening_post
    kind = "stickthread" if thread.sticky else "normalthread"
    type_link = (f'<em>[<a href="forum.php?mod=forumdisplay&amp;fid={thread.fid}&amp;filter=typeid&amp;'
                 f'typeid={thread.typeid}">{esc(thread.type_name)}</a>]</em> ') if thread.type_name else ""
    pages = forum.thread_pages(thread)
    links = "".join(f'<a href="{thread_href(thread.tid, p)}">{p}</a>' for p in range(2, pages + 1))
    page_links = f'<span class="tps">&nbsp;...{links}</span>' if pages > 1 else ""
    date_class = ' class="xi1"' if op.posted_at.date() == forum.now.date() else ""
    return (
        f'<tbody id="{kind}_{thread.tid}">\n<tr>\n'
        + _icon_cell(thread)
        + f'<th class="common">\n{type_link}<a href="{thread_href(thread.tid)}" onclick="atarget(this)" '
        f'class="s xst">{esc(thread.title)}</a>\n{page_links}</th>\n'
        f'<td class="by">\n<cite><a href="{space_href(op.uid)}" c="1">{esc(op.author)}</a></cite>\n'
        f'<em><span{date_class}>{_ymd(op.posted_at)}</span></em>\n</td>\n'
        + _counts_and_last_post_cells(forum, thread)
    )


def render_board_page(forum: DemoForum, board: DemoBoard, page: int, site_url: str, charset: str) -> str:
    """Page `page` (already within range) of a board: forumdisplay with table#threadlisttableid.
    Sticky threads head every page, as Discuz shows them."""
    threads = forum.board_threads(board.fid)
    sticky = [t for t in threads if t.sticky]
    normal = [t for t in threads if not t.sticky]
    per_page = forum.threads_per_page
    rows = sticky + normal[(page - 1) * per_page: page * per_page]
    separator = ('<tbody id="separatorline" class="emptb"><tr class="ts"><td>&nbsp;</td><th><em>版块主题</em></th>'
                 '<td>&nbsp;</td><td>&nbsp;</td><td>&nbsp;</td></tr></tbody>\n') if sticky else ""
    body = "".join(_board_row(forum, t) for t in rows if t.sticky) + separator + "".join(
        _board_row(forum, t) for t in rows if not t.sticky)
    jump = f"forum.php?mod=forumdisplay&amp;fid={board.fid}&amp;page="
    multipage = pager(len(normal), per_page, page, lambda p: board_href(board.fid, p), jump)
    main = (
        _breadcrumb(forum, board)
        + '<div id="ct" class="wp cl">\n<div class="mn">\n'
        + f'<div class="bm bml pbn"><div class="bm_h cl"><h1 class="xs2"><a href="{board_href(board.fid)}">'
        + f'{esc(board.name)}</a> <span class="xs1 xw0 i">主题: <strong class="xi1">{len(threads)}</strong></span>'
        + f'</h1></div><div class="bm_c cl pbn"><div>{esc(board.description)}</div></div></div>\n'
        + f'<div id="pgt" class="bm bw0 pgs cl"><span id="fd_page_top">{multipage}</span></div>\n'
        + '<div id="threadlist" class="tl bm bmw"><div class="bm_c">\n'
        + f'<table summary="forum_{board.fid}" cellspacing="0" cellpadding="0" id="threadlisttableid">\n'
        + body
        + "</table>\n</div></div>\n"
        + f'<div class="bm bw0 pgs cl"><span id="fd_page_bottom">{multipage}</span></div>\n'
        + "</div>\n</div>\n"
    )
    return _page(forum, body_class="pg_forumdisplay", title=f"{board.name} - {forum.name}", charset=charset,
                 site_url=site_url, main=main, canonical=board_href(board.fid), description=board.description)


GUIDE_PAGE_PREFIX = "forum.php?mod=guide&amp;view=newthread&amp;page="


def guide_href(page: int = 1) -> str:
    return f"{GUIDE_PAGE_PREFIX}{page}"


def _guide_row(forum: DemoForum, thread: DemoThread) -> str:
    """One row of guide_list_row.htm: the board column comes before the author's."""
    op, board = thread.opening_post, forum.boards[thread.fid]
    return (
        f'<tbody id="normalthread_{thread.tid}">\n<tr>\n'
        + _icon_cell(thread)
        + f'<th class="common"><a href="{thread_href(thread.tid)}" target="_blank" class="xst">{esc(thread.title)}</a>'
        "</th>\n"
        f'<td class="by"><a href="{board_href(board.fid)}" target="_blank">{esc(board.name)}</a></td>\n'
        f'<td class="by">\n<cite><a href="{space_href(op.uid)}" c="1">{esc(op.author)}</a></cite>\n'
        f"<em><span>{_ymd(op.posted_at)}</span></em>\n</td>\n"
        + _counts_and_last_post_cells(forum, thread)
    )


def render_guide_page(forum: DemoForum, page: int, site_url: str) -> str:
    """Page `page` (already within range) of the new-threads guide (guide.htm, view=newthread):
    every board's threads, newest first, GUIDE_THREADS_PER_PAGE to a page."""
    threads = forum.guide_threads()
    rows = threads[(page - 1) * GUIDE_THREADS_PER_PAGE: page * GUIDE_THREADS_PER_PAGE]
    multipage = pager(len(threads), GUIDE_THREADS_PER_PAGE, page, guide_href, GUIDE_PAGE_PREFIX)
    main = (
        f'<div id="pt" class="bm cl"><div class="z"><a href="./" class="nvhm" title="首页">{esc(forum.name)}</a>'
        f' <em>&raquo;</em><a href="forum.php?mod=guide">导读</a> <em>&rsaquo;</em> 最新发表</div></div>\n'
        '<div id="ct" class="ct2 wp cl">\n<div class="mn">\n'
        '<div class="bm bw0"><ul class="tb cl"><li><a href="forum.php?mod=guide&amp;view=hot">最新热门</a></li>'
        f'<li class="a"><a href="{guide_href(1)}">最新发表</a></li></ul></div>\n'
        '<div id="threadlist" class="tl bm">\n<div class="th"><table cellspacing="0" cellpadding="0"><tr>'
        '<th colspan="2"><div class="tf">标题</div></th><td class="by">版块</td><td class="by">作者</td>'
        '<td class="num">回复/查看</td><td class="by">最后发表</td></tr></table></div>\n'
        '<div class="bm_c">\n<table cellspacing="0" cellpadding="0">\n'
        + "".join(_guide_row(forum, t) for t in rows)
        + "</table>\n</div>\n</div>\n"
        + f'<div class="bm bw0 pgs cl">{multipage}</div>\n'
        + "</div>\n</div>\n"
    )
    return _page(forum, body_class="pg_guide", title=f"最新发表 - 导读 - {forum.name}", charset="utf-8",
                 site_url=site_url, main=main)


def render_index(forum: DemoForum, site_url: str) -> str:
    """forum.php: the categories and their boards (td.fl_g dt > a)."""
    categories: dict[str, list[DemoBoard]] = {}
    for board in forum.boards.values():
        categories.setdefault(board.category, []).append(board)
    blocks = []
    for gid, (category, boards) in enumerate(categories.items(), start=1):
        cells = []
        for board in boards:
            threads = forum.board_threads(board.fid)
            posts = sum(len(t.posts) for t in threads)
            cells.append(
                '<td class="fl_g" width="49.9%">\n'
                f'<div class="fl_icn_g"><a href="{board_href(board.fid)}"><img src="static/image/common/forum.gif" '
                f'alt="{esc(board.name)}" /></a></div>\n'
                f'<dl>\n<dt><a href="{board_href(board.fid)}">{esc(board.name)}</a></dt>\n'
                f"<dd><em>主题: {len(threads)}</em>, <em>帖子: {posts}</em></dd>\n"
                f"<dd>{esc(board.description)}</dd>\n</dl>\n</td>\n")
        blocks.append(
            f'<div class="bm bmw flg cl">\n<div class="bm_h cl"><h2><a href="forum.php?gid={gid}">{esc(category)}'
            f'</a></h2></div>\n<div id="category_{gid}" class="bm_c">\n'
            f'<table cellspacing="0" cellpadding="0" class="fl_tb">\n<tr class="fl_row">\n{"".join(cells)}'
            "</tr>\n</table>\n</div>\n</div>\n")
    main = (_breadcrumb(forum) + '<div id="ct" class="wp cl">\n<div class="mn">\n' + "".join(blocks)
            + "</div>\n</div>\n")
    return _page(forum, body_class="pg_index", title=f"{forum.name} - 论坛", charset="utf-8",
                 site_url=site_url, main=main, canonical="forum.php")


def render_login_wall(forum: DemoForum, site_url: str) -> str:
    """showmessage('to_login'): what a forum closed to guests shows them instead of any page."""
    main = (
        '<div id="ct" class="wp cl w">\n<div class="nfl">\n<div class="f_c altw">\n'
        '<div id="messagetext" class="alert_info">\n<p>您需要先登录才能继续本操作</p>\n</div>\n'
        '<div id="messagelogin"></div>\n<script type="text/javascript">ajaxget('
        "'member.php?mod=logging&action=login&infloat=yes&frommessage', 'messagelogin');</script>\n"
        "</div>\n</div>\n</div>\n"
    )
    return _page(forum, body_class="pg_viewthread", title=f"提示信息 - {forum.name}", charset="utf-8",
                 site_url=site_url, main=main)


def render_notice(forum: DemoForum, message: str, site_url: str, charset: str = "utf-8") -> str:
    """showmessage(): a notice page with #messagetext, sent with status 200 as Discuz does."""
    main = (
        '<div id="ct" class="wp cl w">\n<div class="nfl">\n<div class="f_c altw">\n'
        f'<div id="messagetext" class="alert_error">\n<p>{esc(message)}</p>\n'
        '<script type="text/javascript">\nif(history.length > (BROWSER.ie ? 0 : 1)) {\n'
        "document.write('<p class=\"alert_btnleft\"><a href=\"javascript:history.back()\">[点击这里返回上一页]</a>"
        "</p>');\n} else {\n"
        f"document.write('<p class=\"alert_btnleft\"><a href=\"./\">[ {esc(forum.name)} 首页 ]</a></p>');\n"
        "}\n</script>\n</div>\n</div>\n</div>\n</div>\n"
    )
    return _page(forum, body_class="pg_viewthread", title=f"提示信息 - {forum.name}", charset=charset,
                 site_url=site_url, main=main)
