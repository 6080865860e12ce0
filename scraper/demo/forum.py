"""The demo forum's state: boards, threads and posts loaded from seeds/demo/, plus the
mutations tests and demos make (edit, reply, new thread, delete).

The server is threaded, so every read that renders a page and every mutation holds
`forum.lock`. Nothing here knows about HTML; render.py turns this state into pages.
"""

from __future__ import annotations


import json
import random
import re
import threading
import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from math import ceil
from pathlib import Path

from scraper.demo import DEMO_DATA_DIR
from scraper.demo.seeddata import pid_for

FORUM_FILE = "forum.toml"
_AGO_PART = re.compile(r"(\d+)([dhms])")
_AGO = re.compile(r"^(?:\d+[dhms])+$")
_DISCUZ_TIME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{2})(?::(\d{2}))?$")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
GUIDE_THREADS_PER_PAGE = 50  # forum_guide.php's fixed $perpage
# Discuz jammer(): 5-15 units of chr(32..59) + ' ' + chr(63..126) at each line break.
JAMMER_UNITS = (5, 15)


@dataclass
class Line:
    """One line of a message; lead/trail are jammer runs shown before/after its text."""

    text: str
    lead: str = ""
    trail: str = ""


@dataclass(frozen=True)
class Image:
    aid: int
    file: str  # path under data/attachment/, e.g. forum/202403/10/abc.jpg
    name: str
    size: str
    width: int = 600


@dataclass(frozen=True)
class FileAttachment:
    aid: int
    name: str
    size: str
    downloads: int = 0


@dataclass(frozen=True)
class QuoteRef:
    pid: int
    author: str
    posted_at: datetime
    text: str


@dataclass
class DemoPost:
    pid: int
    tid: int
    floor: int
    author: str
    uid: int
    posted_at: datetime  # site-local time, naive
    lines: list[Line]
    ad: str | None = None  # text of the a_pr ad slot at the top of the message
    op_mark: bool | None = None  # show "楼主|" before the author; None: when the thread's author replies
    edited_at: datetime | None = None
    quote: QuoteRef | None = None
    images: list[Image] = field(default_factory=list)
    attachments: list[FileAttachment] = field(default_factory=list)
    status: str = "normal"  # normal | deleted (无效楼层) | blocked (div.locked)


@dataclass
class DemoThread:
    tid: int
    fid: int
    title: str
    views: int
    posts: list[DemoPost]
    type_name: str | None = None
    typeid: int | None = None
    jammer: bool = True
    authoronleft: bool = False
    sticky: bool = False
    # Set to show its replies newest first (Discuz's 倒序看帖): page 1 is the opening post, then
    # the newest replies, so new replies land on page 1 and push the rest down.
    newest_first: bool = False
    changed_at: datetime = field(default_factory=lambda: datetime.now(UTC))  # for Last-Modified

    def posts_in_order(self) -> list[DemoPost]:
        """The posts in the order the thread's pages list them."""
        return self.posts[:1] + self.posts[:0:-1] if self.newest_first else self.posts

    @property
    def opening_post(self) -> DemoPost:
        return self.posts[0]

    @property
    def replies(self) -> int:
        # Discuz decrements the reply count when a post is deleted.
        return sum(p.status != "deleted" for p in self.posts) - 1

    @property
    def last_post(self) -> DemoPost:
        live = [p for p in self.posts if p.status != "deleted"]
        return (live or self.posts)[-1]


@dataclass(frozen=True)
class DemoBoard:
    fid: int
    name: str
    category: str
    description: str
    encoding: str  # utf-8 or gbk
    jammer: bool


@dataclass(frozen=True)
class DemoUser:
    name: str
    uid: int
    credits: int = 0
    signature: str | None = None


@dataclass(frozen=True)
class Chrome:
    """The site template's own lines (HTML fragments), as the seed page shows them."""

    lights: str
    promotions: tuple[str, ...]
    left_toggle: str
    footer: tuple[str, ...]


def parse_discuz_time(raw: str) -> datetime:
    """'2012-3-12 14:40:59' (or without seconds) -> a naive site-local datetime."""
    m = _DISCUZ_TIME.match(raw.strip())
    if not m:
        raise ValueError(f"time {raw!r} is not in Discuz's 'Y-n-j H:i[:s]' form")
    return datetime(*(int(g or 0) for g in m.groups()))


def parse_ago(spec: str) -> timedelta:
    """'6d5h' -> 6 days 5 hours; units d, h, m, s."""
    if not _AGO.match(spec):
        raise ValueError(f"ago {spec!r} must look like '6d5h' or '35m'")
    return timedelta(seconds=sum(int(n) * _SECONDS[unit] for n, unit in _AGO_PART.findall(spec)))


def jammer_run(rng: random.Random) -> str:
    """One jammer string the way Discuz's jammer() builds it."""
    return "".join(chr(rng.randint(32, 59)) + " " + chr(rng.randint(63, 126))
                   for _ in range(rng.randint(*JAMMER_UNITS)))


def lines_with_jammer(texts: list[str], seed: str) -> list[Line]:
    """Lines with a jammer run at every break between them: half the time a run at the end
    of the line before the break (font.jammer), else at the start of the line after it
    (a display:none span), as Discuz picks. Deterministic for a given seed."""
    rng = random.Random(seed)
    lines = [Line(text) for text in texts]
    for before, after in zip(lines, lines[1:]):
        run = jammer_run(rng)
        if rng.random() < 0.5:
            before.trail += run
        else:
            after.lead = run + after.lead
    return lines


def _timezone(utc_offset: str) -> timezone:
    sign = -1 if utc_offset.startswith("-") else 1
    hours, minutes = utc_offset[1:].split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def _message_lines(text: str) -> list[str]:
    return text.strip("\n").split("\n")


class DemoForum:
    """The demo forum, loaded from `data_dir` (forum.toml and seed_thread.json).

    now: the forum's clock (site-local, naive); relative times ("3 天前") are computed
    against it and it stays fixed, so pages do not change between requests unless the
    forum is mutated. validators: send ETag/Last-Modified and answer conditional requests
    with 304 (off by default, like most Discuz sites).
    """

    def __init__(self, data_dir: Path = DEMO_DATA_DIR, *, validators: bool = False, now: datetime | None = None):
        self.lock = threading.RLock()
        self.validators = validators
        self.data_dir = Path(data_dir)
        config = tomllib.loads((self.data_dir / FORUM_FILE).read_text(encoding="utf-8"))
        self.name: str = config["name"]
        self.utc_offset: str = config.get("utc_offset", "+08:00")
        self.tz = _timezone(self.utc_offset)
        self.posts_per_page: int = config["posts_per_page"]
        self.threads_per_page: int = config["threads_per_page"]
        self.now = (now or datetime.now(self.tz).replace(tzinfo=None)).replace(microsecond=0)
        self.board_order = "lastpost"  # Discuz's default; "dateline" lists threads by their opening post
        # "name=value": set, the forum is closed to guests, and shows its pages only to a
        # request carrying that cookie (a member's login); others get the login wall.
        self.member_cookie: str | None = None
        # While closed to guests, each request without a session cookie opens a session, as
        # Discuz does (a row of its common_session table) and answers with the cookie.
        self.sessions_opened = 0
        chrome = config["chrome"]
        self.chrome = Chrome(chrome["lights"], tuple(chrome["promotions"]), chrome["left_toggle"],
                             tuple(chrome["footer"]))
        self.boards = {b["fid"]: DemoBoard(b["fid"], b["name"], b["category"], b["description"], b["encoding"],
                                           b.get("jammer", False)) for b in config["boards"]}
        self.users = {name: DemoUser(name, u["uid"], u.get("credits", 0), u.get("signature"))
                      for name, u in config.get("users", {}).items()}
        self.threads: dict[int, DemoThread] = {}
        for spec in config["threads"]:
            thread = self._load_thread(spec)
            thread.changed_at = self._latest_change(thread)
            self.threads[thread.tid] = thread

    # --- loading ---------------------------------------------------------------------------
    def _load_thread(self, spec: dict) -> DemoThread:
        board = self.boards[spec["fid"]]
        thread = DemoThread(
            tid=spec["tid"], fid=spec["fid"], title=spec.get("title", ""), views=spec.get("views", 0), posts=[],
            type_name=spec.get("type"), typeid=spec.get("typeid"), jammer=spec.get("jammer", board.jammer),
            authoronleft=spec.get("authoronleft", False), sticky=spec.get("sticky", False),
        )
        if "source" in spec:
            self._load_seed_posts(thread, self.data_dir / spec["source"])
        for floor, post in enumerate(spec.get("posts", []), start=1):
            thread.posts.append(self._load_post(thread, floor, post))
        if not thread.posts:
            raise ValueError(f"{FORUM_FILE}: thread {thread.tid} has no posts")
        return thread

    def _load_seed_posts(self, thread: DemoThread, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        thread.title = thread.title or data["title"]
        for post in data["posts"]:
            self.users.setdefault(post["author"], DemoUser(post["author"], post["uid"]))
            thread.posts.append(DemoPost(
                pid=pid_for(thread.tid, post["floor"]), tid=thread.tid, floor=post["floor"], author=post["author"],
                uid=post["uid"], posted_at=parse_discuz_time(post["posted_at_raw"]),
                lines=[Line(line["text"], line["lead"], line["trail"]) for line in post["lines"]],
                ad=post["ad"], op_mark=post["op_mark"],
            ))

    def _post_time(self, spec: dict, key: str, ago_key: str) -> datetime | None:
        if key in spec:
            return parse_discuz_time(spec[key])
        if ago_key in spec:
            return self.now - parse_ago(spec[ago_key])
        return None

    def _load_post(self, thread: DemoThread, floor: int, spec: dict) -> DemoPost:
        user = self.users.get(spec["author"])
        if user is None:
            raise ValueError(f"{FORUM_FILE}: thread {thread.tid} floor {floor}: author {spec['author']!r} "
                             "is not in [users]")
        posted_at = self._post_time(spec, "posted_at", "ago")
        if posted_at is None:
            raise ValueError(f"{FORUM_FILE}: thread {thread.tid} floor {floor} needs posted_at or ago")
        pid = pid_for(thread.tid, floor)
        quote = None
        if "quote" in spec:
            quoted = thread.posts[spec["quote"]["floor"] - 1]
            quote = QuoteRef(quoted.pid, quoted.author, quoted.posted_at, spec["quote"]["text"])
        return DemoPost(
            pid=pid, tid=thread.tid, floor=floor, author=user.name, uid=user.uid, posted_at=posted_at,
            lines=self._lines(thread, pid, spec["text"]), edited_at=self._post_time(spec, "edited_at", "edited_ago"),
            quote=quote, images=[Image(**i) for i in spec.get("images", [])],
            attachments=[FileAttachment(**a) for a in spec.get("attachments", [])],
            status=spec.get("status", "normal"),
        )

    def _lines(self, thread: DemoThread, pid: int, text: str) -> list[Line]:
        texts = _message_lines(text)
        return lines_with_jammer(texts, f"{pid}:{text}") if thread.jammer else [Line(t) for t in texts]

    def _latest_change(self, thread: DemoThread) -> datetime:
        times = [t for p in thread.posts for t in (p.posted_at, p.edited_at) if t]
        return max(times).replace(tzinfo=self.tz).astimezone(UTC)

    # --- reading ---------------------------------------------------------------------------
    def thread(self, tid: int) -> DemoThread | None:
        return self.threads.get(tid)

    def board(self, fid: int) -> DemoBoard | None:
        return self.boards.get(fid)

    def post(self, pid: int) -> DemoPost:
        for thread in self.threads.values():
            for post in thread.posts:
                if post.pid == pid:
                    return post
        raise KeyError(f"the demo forum has no post {pid}")

    def user(self, name: str) -> DemoUser:
        return self.users.get(name) or DemoUser(name, 0)

    def board_threads(self, fid: int) -> list[DemoThread]:
        """A board's threads in Discuz's default order: sticky first, then by last post (with
        board_order 'dateline', by the opening post's time, as a board can be set to list them)."""
        threads = [t for t in self.threads.values() if t.fid == fid]
        shown = (lambda t: t.opening_post) if self.board_order == "dateline" else (lambda t: t.last_post)
        return sorted(threads, key=lambda t: (not t.sticky, -shown(t).posted_at.timestamp(), -t.tid))

    def guide_threads(self) -> list[DemoThread]:
        """The new-threads guide's order: every board's threads, newest opening post first."""
        return sorted(self.threads.values(), key=lambda t: (-t.opening_post.posted_at.timestamp(), -t.tid))

    def guide_pages(self) -> int:
        return max(1, ceil(len(self.threads) / GUIDE_THREADS_PER_PAGE))

    def user_stats(self, uid: int) -> tuple[int, int]:
        """(threads, posts) a user has in the forum, for the profile column."""
        threads = sum(t.opening_post.uid == uid for t in self.threads.values())
        posts = sum(p.uid == uid for t in self.threads.values() for p in t.posts if p.status != "deleted")
        return threads, posts

    def thread_pages(self, thread: DemoThread) -> int:
        return max(1, ceil(len(thread.posts) / self.posts_per_page))

    def board_pages(self, fid: int) -> int:
        normal = sum(1 for t in self.threads.values() if t.fid == fid and not t.sticky)
        return max(1, ceil(normal / self.threads_per_page))

    # --- mutations ---------------------------------------------------------------------------
    def _touch(self, thread: DemoThread) -> None:
        # Strictly later than before, so If-Modified-Since (whole seconds) sees every change.
        wall = datetime.now(UTC).replace(microsecond=0)
        thread.changed_at = max(wall, thread.changed_at + timedelta(seconds=1))

    def _user_for(self, name: str) -> DemoUser:
        if name not in self.users:
            self.users[name] = DemoUser(name, max(u.uid for u in self.users.values()) + 1)
        return self.users[name]

    def _next_pid(self) -> int:
        return max(p.pid for t in self.threads.values() for p in t.posts) + 1

    def edit_post(self, pid: int, text: str) -> None:
        """Replace a post's text; like Discuz, the post then carries an edit note."""
        with self.lock:
            post = self.post(pid)
            if post.status == "deleted":
                raise ValueError(f"post {pid} is deleted and cannot be edited")
            thread = self.threads[post.tid]
            post.lines = self._lines(thread, pid, text)
            post.edited_at = self.now
            self._touch(thread)

    def edit_quote(self, pid: int, text: str) -> None:
        """Rewrite the passage a post quotes, and nothing else of it (an author trimming the
        quote); like any Discuz edit, the post then carries an edit note."""
        with self.lock:
            post = self.post(pid)
            if post.quote is None:
                raise ValueError(f"post {pid} quotes nothing")
            post.quote = replace(post.quote, text=text)
            post.edited_at = self.now
            self._touch(self.threads[post.tid])

    def add_reply(self, tid: int, author: str, text: str, posted_at_raw: str | None = None) -> int:
        """Append a reply to a thread; returns its pid. Without a time it is posted 'now'."""
        with self.lock:
            thread = self.threads.get(tid)
            if thread is None:
                raise KeyError(f"the demo forum has no thread {tid}")
            user = self._user_for(author)
            pid = self._next_pid()
            posted_at = parse_discuz_time(posted_at_raw) if posted_at_raw else self.now
            thread.posts.append(DemoPost(pid=pid, tid=tid, floor=len(thread.posts) + 1, author=user.name,
                                         uid=user.uid, posted_at=posted_at, lines=self._lines(thread, pid, text)))
            self._touch(thread)
            return pid

    def add_thread(self, fid: int, title: str, author: str, text: str) -> int:
        """Open a new thread on a board; returns its tid."""
        with self.lock:
            board = self.boards.get(fid)
            if board is None:
                raise KeyError(f"the demo forum has no board {fid}")
            user = self._user_for(author)
            tid = max(self.threads) + 1
            pid = self._next_pid()
            thread = DemoThread(tid=tid, fid=fid, title=title, views=0, posts=[], jammer=board.jammer)
            thread.posts.append(DemoPost(pid=pid, tid=tid, floor=1, author=user.name, uid=user.uid,
                                         posted_at=self.now, lines=self._lines(thread, pid, text)))
            self.threads[tid] = thread
            self._touch(thread)
            return tid

    def move_thread(self, tid: int, fid: int) -> None:
        """Move a thread to another board, as a moderator does: it keeps its posts and last
        post time, so it takes its place by last post among the new board's threads."""
        with self.lock:
            thread = self.threads.get(tid)
            if thread is None:
                raise KeyError(f"the demo forum has no thread {tid}")
            if fid not in self.boards:
                raise KeyError(f"the demo forum has no board {fid}")
            thread.fid = fid
            self._touch(thread)  # its pages name the board in their breadcrumbs

    def delete_thread(self, tid: int) -> None:
        """Delete a whole thread, as a moderator does: its pages answer Discuz's "no such
        thread" notice (status 200) and it leaves its board's list."""
        with self.lock:
            if self.threads.pop(tid, None) is None:
                raise KeyError(f"the demo forum has no thread {tid}")

    def delete_post(self, pid: int) -> None:
        """Delete a post; its floor stays and shows as 无效楼层, as in Discuz."""
        with self.lock:
            post = self.post(pid)
            post.status = "deleted"
            self._touch(self.threads[post.tid])

    def remove_post(self, pid: int) -> None:
        """Take a post off its thread outright, as a Discuz thread without floor positions
        shows a deletion (and as a post moved to another thread leaves): the posts after it
        move up one place, onto earlier pages, and take their new places' floor numbers."""
        with self.lock:
            post = self.post(pid)
            if post.floor == 1:
                raise ValueError("the opening post is the thread: delete_thread removes it")
            thread = self.threads[post.tid]
            thread.posts.remove(post)
            for floor, later in enumerate(thread.posts, start=1):
                later.floor = floor
            self._touch(thread)
