"""Datasette hooks for the archive: the thread reader route, the home page search box (in
place of Datasette's own on the posts and threads tables), and links from thread rows and
post rows (search hits included) to the reader.

Loaded from this directory with Datasette's plugins_dir (`--plugins-dir`); the rendering
itself lives in scraper.publish.reader.
"""

from __future__ import annotations

from urllib.parse import urlencode

from datasette import hookimpl
from datasette.resources import TableResource
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

from scraper.engines import get_engine
from scraper.errors import ConfigError
from scraper.frontier import sibling_page_url
from scraper.publish import reader

PLUGIN_NAME = "forum-archiver"
THREAD_ROUTE = r"^/-/thread/(?P<thread_id>[0-9]{1,18})$"


def _archive(datasette):
    return datasette.get_database()


def _cell_value(value):
    # Table views hand expanded foreign keys over as {"value": ..., "label": ...}.
    return value.get("value") if isinstance(value, dict) else value


def _row_id(value) -> int | None:
    """An id cell's value as an int, or None when it is none (any SQL may name a column
    post_id or thread_id: a group_concat of ids, a text)."""
    value = _cell_value(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _thread_path(datasette, thread_id: int, post_id: int | None = None) -> str:
    path = datasette.urls.path(f"/-/thread/{thread_id}")
    if post_id is None:
        return path
    return f"{path}?{urlencode({'post': post_id})}#post-{post_id}"


def _plugin_setting(datasette, name: str, default):
    return (datasette.plugin_config(PLUGIN_NAME) or {}).get(name, default)


async def _bad_request(datasette, request, message: str):
    html = await datasette.render_template("error.html", {"ok": False, "error": message, "status": 400,
                                                          "title": "Bad request"}, request=request)
    return Response.html(html, status=400)


async def thread_page(datasette, request):
    """GET /-/thread/{thread_id}[?page=N | ?post=ID]: one page of a thread, as the forum showed it."""
    db = _archive(datasette)
    # The reader shows rows of posts: it is open to whoever may see that table, no one else.
    await datasette.ensure_permission(action="view-table", resource=TableResource(db.name, "posts"),
                                      actor=request.actor)
    thread_id = int(request.url_vars["thread_id"])
    per_page = int(_plugin_setting(datasette, "posts_per_page", reader.POSTS_PER_PAGE))
    try:
        page = reader.parse_positive_int(request.args.get("page"), "page", default=1)
        post_id = reader.parse_positive_int(request.args.get("post"), "post")
    except reader.ReaderInputError as error:
        return await _bad_request(datasette, request, str(error))
    thread = (await db.execute(reader.THREAD_SQL, {"thread_id": thread_id})).first()
    if thread is None:
        return Response.html("thread not found", status=404)
    thread = dict(thread)
    post_count = (await db.execute(reader.POST_COUNT_SQL, {"thread_id": thread_id})).first()[0]
    if post_id is not None:
        found = (await db.execute(reader.POST_POSITION_SQL, {"thread_id": thread_id, "post_id": post_id})).first()
        if found is not None:
            page = reader.page_of_position(found[0], per_page)
    pages = reader.page_count(post_count, per_page)
    if page > pages:
        return Response.html("no such page", status=404)
    rows = await db.execute(reader.THREAD_POSTS_SQL,
                            {"thread_id": thread_id, "limit": per_page, "offset": (page - 1) * per_page})
    thread_url = reader.web_url(thread["url"])
    base_url = thread_url or reader.web_url(thread["base_url"]) or "https://invalid.example/"
    hotlink = bool(_plugin_setting(datasette, "hotlink_images", False))
    page_url = _forum_page_url(thread["engine"], thread_url)
    posts = [reader.post_view(dict(row), base_url, thread_url, hotlink_images=hotlink, page_url=page_url)
             for row in rows]
    special = reader.special_view(thread["special_json"])
    best_answer = None  # the archive's id of a reward thread's best answer, to link it
    if special is not None and special.best_answer_pid is not None:
        best_answer = (await db.execute(reader.POST_BY_PID_SQL,
                                        {"thread_id": thread_id, "pid": special.best_answer_pid})).first()
    html = await datasette.render_template("forum_thread.html", {
        "thread": thread,
        "thread_url": thread_url,
        "posts": posts,
        "poll": reader.poll_view(thread["poll_json"]),
        "classified": reader.classified_fields(thread["classified_json"]),
        "special": special,
        "best_answer_path": f"{_thread_path(datasette, thread_id)}?post={best_answer[0]}#post-{best_answer[0]}"
                            if best_answer is not None else None,
        "page": page,
        "pages": pages,
        "post_count": post_count,
        "hotlink_images": hotlink,
        "database": db.name,
        "page_path": lambda n: f"{_thread_path(datasette, thread_id)}?page={int(n)}",
        # Datasette's own URL builders: they encode a database name as Datasette routes it
        # (dots and spaces tilde-encoded: bbs.example.cn.db is /bbs~2Eexample~2Ecn).
        "history_path": lambda pid: f"{datasette.urls.query(db.name, 'post_history')}?"
                                    f"{urlencode({'post_id': int(pid)})}",
        "table_path": f"{datasette.urls.query(db.name, 'thread_posts')}?{urlencode({'thread_id': thread_id})}",
        "markup": Markup,
    }, request=request)
    return Response.html(html)


def _forum_page_url(engine_name: str | None, thread_url: str | None):
    """page n -> the forum's URL of that page of the thread, in the thread URL's own style;
    None when the engine is not known here (the link then goes to the thread's first page)."""
    if not thread_url:
        return None
    try:
        engine = get_engine(engine_name or "")
    except ConfigError:
        return None
    return lambda page: sibling_page_url(thread_url, engine, int(page))


@hookimpl
def register_routes(datasette):
    return [(THREAD_ROUTE, thread_page)]


# Tables whose FTS index Datasette would offer as a search box of its own. That box is plain
# FTS5 over trigrams: it finds no word of one or two characters (most Chinese words) and no
# post above the index's watermark. The archive's search query finds both; a title is found
# with the "contains" filter.
_TABLES_WITHOUT_NATIVE_SEARCH = frozenset({"posts", "threads"})


@hookimpl
def extra_template_vars(view_name, database, table, datasette):
    if view_name == "table" and table in _TABLES_WITHOUT_NATIVE_SEARCH and database == _archive(datasette).name:
        return {"supports_search": False}
    return None


@hookimpl
def top_homepage(datasette, request):
    action = datasette.urls.query(_archive(datasette).name, "search")
    return Markup(
        '<form class="archive-search" action="{}" method="get" role="search">'
        '<label for="archive-q">Search posts (中文 works: one character or more)</label> '
        '<input type="search" id="archive-q" name="q" required> '
        '<input type="submit" value="Search"></form>'
    ).format(action)


@hookimpl
def render_cell(row, value, column, table, database, datasette, request):
    if value is None or database != _archive(datasette).name:
        return None
    keys = row.keys() if hasattr(row, "keys") else ()
    # Titles and floors, not ids: an id cell keeps Datasette's own link to the row page.
    if table == "threads" and column == "title" and "id" in keys:
        thread_id = _row_id(row["id"])
        return None if thread_id is None else Markup('<a href="{}">{}</a>').format(
            _thread_path(datasette, thread_id), value)
    if table == "posts" and column == "floor" and {"id", "thread_id"} <= set(keys):
        thread_id, post_id = _row_id(row["thread_id"]), _row_id(row["id"])
        return None if thread_id is None or post_id is None else Markup('<a href="{}">{}</a>').format(
            _thread_path(datasette, thread_id, post_id), value)
    if table is None and column in ("post_id", "snippet") and {"post_id", "thread_id"} <= set(keys):
        thread_id, post_id = _row_id(row["thread_id"]), _row_id(row["post_id"])
        if thread_id is None or post_id is None:
            return None
        return Markup('<a href="{}">{}</a>').format(_thread_path(datasette, thread_id, post_id), escape(value))
    return None
