"""The exports, read back from archives crawled off the demo forum: the WARC by warcio (the
WARC reader of pywb and the Internet Archive's tools), the JSON lines by json."""

import gzip
import io
import json
from collections import Counter
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from warcio.archiveiterator import ArchiveIterator

from scraper.cli import main
from scraper.demo import render
from storage.archive import Archive
from storage.export import REVISIT_PROFILE, ExportError, _charset_label, export_jsonl, export_warc
from tests.test_crawl_demo import crawl

SOFTWARE = "forum-archiver/test"


def read_warc(path):
    """Each record as (headers as a dict, block bytes), digests checked as they are read."""
    records = []
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream, check_digests="raise"):
            block = record.content_stream().read()
            records.append((dict(record.rec_headers.headers), block, record.digest_checker.passed))
    return records


def warc_date(stamp):
    return datetime.fromisoformat(stamp).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def crawled(demo_forum, tmp_path):
    """An archive of the whole demo forum, with one thread answered by a block page."""
    notice = render.render_notice(demo_forum.forum, "抱歉，您所在的用户组无法访问该版块", demo_forum.base_url)
    demo_forum.inject("/thread-999-1-1.html", 200, body=notice.encode())
    path = tmp_path / "a.db"
    with Archive(path) as archive:
        crawl(archive, demo_forum.base_url)
        crawl(archive, demo_forum.base_url, [f"{demo_forum.base_url}thread-999-1-1.html"])
    return path


@pytest.fixture
def blocked_url(demo_forum):
    return f"{demo_forum.base_url}thread-999-1-1.html"


def test_every_page_body_kept_is_one_resource_record_at_the_url_and_time_it_was_fetched(crawled, blocked_url,
                                                                                        tmp_path):
    target = tmp_path / "forum.warc.gz"
    with Archive(crawled, readonly=True) as archive:
        summary = export_warc(archive, target, software=SOFTWARE)
        fetches = archive.db.execute(
            "select coalesce(final_url, url), fetched_at, status, reason, body_sha256 from fetches order by id").fetchall()
        expected = [(url, warc_date(at), archive.read_body(sha)) for url, at, status, reason, sha in fetches
                    if sha is not None and status == 200 and not (reason or "").startswith("blocked:")]
        blocked = [url for url, _, _, reason, sha in fetches if sha and (reason or "").startswith("blocked:")]
    records = read_warc(target)
    info, *rest = records
    assert info[0]["WARC-Type"] == "warcinfo" and b"software: forum-archiver/test" in info[1]
    assert all(headers["WARC-Warcinfo-ID"] == info[0]["WARC-Record-ID"] for headers, _, _ in rest)
    resources = [(h["WARC-Target-URI"], h["WARC-Date"], block) for h, block, _ in rest if h["WARC-Type"] == "resource"]
    # The demo's bodies all differ: each fetch with a body is one record, in fetch order.
    assert resources == expected and len(expected) > 10
    assert summary.resources == len(expected) and summary.revisits == 0
    assert summary.body_bytes == sum(len(block) for _, _, block in expected)
    assert all(passed is True for _, _, passed in rest)  # the block digests, checked by warcio
    # The block page's body is kept in the archive, and is no page of the forum's.
    assert blocked == [blocked_url] and blocked_url not in {uri for uri, _, _ in resources}
    assert len({h["WARC-Record-ID"] for h, _, _ in records}) == len(records)


def test_a_record_names_the_charset_its_bytes_are_in(crawled, tmp_path):
    # Board 2 of the demo is GBK with the charset only in its <meta>: a reader given the
    # record's Content-Type decodes its Chinese without guessing.
    target = tmp_path / "forum.warc.gz"
    with Archive(crawled, readonly=True) as archive:
        export_warc(archive, target, software=SOFTWARE)
        titles = dict(archive.db.execute("select url, title from threads where url is not null"))
    titles_read = Counter()
    for headers, block, _ in read_warc(target)[1:]:
        content_type = headers["Content-Type"]
        assert content_type.startswith("text/html; charset=")
        charset = content_type.split("charset=")[1]
        title = titles.get(headers["WARC-Target-URI"])
        if title:
            assert title in block.decode(charset)
            titles_read[charset] += 1
    assert set(titles_read) == {"utf-8", "gb18030"} and min(titles_read.values()) >= 2


def test_a_body_fetched_again_is_a_revisit_of_its_first_record(crawled, tmp_path):
    target = tmp_path / "forum.warc.gz"
    with Archive(crawled) as archive:
        url, sha = archive.db.execute(
            "select coalesce(final_url, url), body_sha256 from fetches where body_sha256 is not null and status = 200 "
            "order by id limit 1").fetchone()
        archive.record_fetch(url=url + "?again", status=200, body_sha256=sha, now="2030-01-02T03:04:05+08:00")
    with Archive(crawled, readonly=True) as archive:
        summary = export_warc(archive, target, software=SOFTWARE)
    records = read_warc(target)
    first = next(h for h, _, _ in records if h.get("WARC-Target-URI") == url)
    (revisit, block, _), = [r for r in records if r[0]["WARC-Type"] == "revisit"]
    assert summary.revisits == 1 and block == b""
    assert revisit["WARC-Profile"] == REVISIT_PROFILE
    assert (revisit["WARC-Target-URI"], revisit["WARC-Date"]) == (url + "?again", "2030-01-01T19:04:05Z")
    assert revisit["WARC-Refers-To"] == first["WARC-Record-ID"]
    assert (revisit["WARC-Refers-To-Target-URI"], revisit["WARC-Refers-To-Date"]) == (url, first["WARC-Date"])
    assert revisit["WARC-Payload-Digest"] == first["WARC-Payload-Digest"]


def test_a_url_with_a_line_break_cannot_forge_a_header(crawled, tmp_path):
    forged = "http://127.0.0.1/thread-1-1-1.html\r\nWARC-Type: metadata"
    with Archive(crawled) as archive:
        sha = archive.db.execute("select body_sha256 from fetches where body_sha256 is not null").fetchone()[0]
        archive.record_fetch(url=forged, status=200, body_sha256=sha)
    with Archive(crawled, readonly=True) as archive:
        export_warc(archive, tmp_path / "forum.warc.gz", software=SOFTWARE)
    records = read_warc(tmp_path / "forum.warc.gz")
    last, _, _ = records[-1]
    assert last["WARC-Type"] == "revisit"
    assert last["WARC-Target-URI"].startswith("http://127.0.0.1/thread-1-1-1.html%0D%0AWARC-Type:")
    assert all(h["WARC-Type"] != "metadata" for h, _, _ in records)


def test_one_sites_export_holds_only_its_pages(crawled, tmp_path):
    with Archive(crawled) as archive:
        other = archive.upsert_site("elsewhere", engine="discuz", base_url="https://bbs.example.cn/")
        url, sha = archive.db.execute("select url, body_sha256 from fetches where body_sha256 is not null").fetchone()
        archive.record_fetch(url="https://bbs.example.cn/thread-1-1-1.html", status=200, body_sha256=sha,
                             site_id=other)
    with Archive(crawled, readonly=True) as archive:
        export_warc(archive, tmp_path / "one.warc.gz", software=SOFTWARE, site="elsewhere")
        export_warc(archive, tmp_path / "all.warc.gz", software=SOFTWARE)
        with pytest.raises(ExportError, match="no site 'nowhere'"):
            export_warc(archive, tmp_path / "none.warc.gz", software=SOFTWARE, site="nowhere")
    one = [h for h, _, _ in read_warc(tmp_path / "one.warc.gz")[1:]]
    assert [(h["WARC-Type"], h["WARC-Target-URI"]) for h in one] == [("resource", "https://bbs.example.cn/thread-1-1-1.html")]
    everything = [h for h, _, _ in read_warc(tmp_path / "all.warc.gz")[1:]]
    assert ("revisit", "https://bbs.example.cn/thread-1-1-1.html") in [(h["WARC-Type"], h["WARC-Target-URI"]) for h in everything]
    assert not (tmp_path / "none.warc.gz").exists()


def test_an_export_never_replaces_a_file_and_an_interrupted_one_leaves_none(crawled, tmp_path, monkeypatch):
    existing = tmp_path / "kept.warc.gz"
    existing.write_bytes(b"someone's file")
    with Archive(crawled, readonly=True) as archive:
        with pytest.raises(ExportError, match="exists"):
            export_warc(archive, existing, software=SOFTWARE)
        with pytest.raises(ExportError, match="not a directory"):
            export_warc(archive, tmp_path / "no-such-dir" / "x.warc.gz", software=SOFTWARE)
        calls = []

        def failing_read(sha):  # the disk fills, the archive is pulled away: the export stops mid-way
            calls.append(sha)
            if len(calls) == 3:
                raise OSError("no space left on device")
            return Archive.read_body(archive, sha)

        monkeypatch.setattr(archive, "read_body", failing_read)
        with pytest.raises(OSError):
            export_warc(archive, tmp_path / "cut.warc.gz", software=SOFTWARE)
    assert existing.read_bytes() == b"someone's file"
    assert len(calls) == 3  # it failed where it was made to
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("a.db")) == ["kept.warc.gz"]


def test_each_record_is_a_gzip_member_of_its_own(crawled, tmp_path):
    # Readers seek to a record's offset (a CDX index holds it) and inflate from there.
    target = tmp_path / "forum.warc.gz"
    with Archive(crawled, readonly=True) as archive:
        export_warc(archive, target, software=SOFTWARE)
    with open(target, "rb") as stream:
        offsets = [(record.rec_headers.get_header("WARC-Record-ID"), iterator.get_record_offset())
                   for iterator in [ArchiveIterator(stream)] for record in iterator]
    data = target.read_bytes()
    for record_id, offset in offsets:
        member = gzip.GzipFile(fileobj=io.BytesIO(data[offset:])).read1(1 << 16)
        assert member.startswith(b"WARC/1.1\r\n") and record_id.encode() in member[:600]


@pytest.mark.parametrize("codec, label", [("utf-8", "utf-8"), ("gb18030", "gb18030"), ("big5hkscs", "big5-hkscs"),
                                          ("cp1252", "windows-1252"), ("euc_jp", "euc-jp"), ("iso8859-2", "iso-8859-2"),
                                          ("shift_jis", "shift-jis")])
def test_a_codec_name_becomes_the_label_browsers_know(codec, label):
    assert _charset_label(codec) == label


def test_the_command_writes_the_file_and_says_what_it_holds(crawled, tmp_path):
    target = tmp_path / "out.warc.gz"
    result = CliRunner().invoke(main, ["export-warc", "--db", str(crawled), str(target)])
    assert result.exit_code == 0, result.output
    resources = sum(h["WARC-Type"] == "resource" for h, _, _ in read_warc(target))
    assert result.output.startswith(f"{target}: {resources} pages (") and "0 revisits" in result.output
    again = CliRunner().invoke(main, ["export-warc", "--db", str(crawled), str(target)])
    assert again.exit_code == 1 and "exists: the export does not replace a file" in again.output
    unknown = CliRunner().invoke(main, ["export-warc", "--db", str(crawled), "--site", "nowhere", str(tmp_path / "b")])
    assert unknown.exit_code == 1 and "no site 'nowhere'" in unknown.output


def test_every_post_is_one_json_line_in_thread_order_with_its_earlier_versions(demo_forum, tmp_path):
    path = tmp_path / "a.db"
    with Archive(path) as archive:
        crawl(archive, demo_forum.base_url)
        pid, thread_url = archive.db.execute(
            "select p.pid, t.url from posts p join threads t on t.id = p.thread_id where p.floor = 2 limit 1").fetchone()
        demo_forum.forum.edit_post(pid, "改过的第一稿")
        crawl(archive, demo_forum.base_url, [thread_url])
        demo_forum.forum.edit_post(pid, "改过的第二稿")
        crawl(archive, demo_forum.base_url, [thread_url])
        expected = archive.db.execute(
            "select p.id, s.name, t.title, p.floor, p.author, p.content_text, p.posted_at, p.attachments_json "
            "from posts p join threads t on t.id = p.thread_id join sites s on s.id = p.site_id "
            "order by p.thread_id, p.floor is null, p.floor, p.pid").fetchall()
    with Archive(path, readonly=True) as archive:
        summary = export_jsonl(archive, tmp_path / "posts.jsonl")
        export_jsonl(archive, tmp_path / "posts.jsonl.gz")
    lines = (tmp_path / "posts.jsonl").read_bytes().splitlines()
    assert gzip.decompress((tmp_path / "posts.jsonl.gz").read_bytes()).splitlines() == lines
    posts = [json.loads(line) for line in lines]
    assert [(p["id"], p["site"], p["thread"]["title"], p["floor"], p["author"], p["content_text"], p["posted_at"],
             p["attachments"]) for p in posts] == [(*row[:7], json.loads(row[7])) for row in expected]
    assert summary.posts == len(posts) > 30 and summary.earlier_versions == 2
    edited = next(p for p in posts if p["pid"] == pid)
    assert "改过的第二稿" in edited["content_text"]
    first, second = edited["earlier_versions"]
    assert "改过的第一稿" not in first["content_text"] and "改过的第一稿" in second["content_text"]
    assert first["seen_at"] <= second["seen_at"] <= edited["last_seen_at"]
    assert all(p["earlier_versions"] == [] for p in posts if p["pid"] != pid)
    assert "改过的第二稿" in lines[posts.index(edited)].decode("utf-8")  # Chinese as itself, not \u escapes


def test_one_sites_posts_and_the_command(crawled, tmp_path):
    target = tmp_path / "posts.jsonl"
    result = CliRunner().invoke(main, ["export-jsonl", "--db", str(crawled), "--site", "demo", str(target)])
    assert result.exit_code == 0, result.output
    posts = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert result.output == f"{target}: {len(posts)} posts, 0 earlier versions\n" and posts
    assert {p["site"] for p in posts} == {"demo"}
    again = CliRunner().invoke(main, ["export-jsonl", "--db", str(crawled), str(target)])
    assert again.exit_code == 1 and "exists" in again.output
    unknown = CliRunner().invoke(main, ["export-jsonl", "--db", str(crawled), "--site", "x", str(tmp_path / "y")])
    assert unknown.exit_code == 1 and "no site 'x'" in unknown.output and not (tmp_path / "y").exists()
