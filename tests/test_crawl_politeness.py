"""Politeness and fault handling of whole crawls, read off the servers' own request logs."""

import asyncio
import gzip
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from scraper.crawl import CrawlOptions, Crawler
from scraper.demo import render
from scraper.demo.forum import DemoForum
from scraper.demo.server import start
from scraper.politeness import CircuitBreaker, HostPacer
from scraper.sites import site_for_url, site_from_dict
from storage.archive import Archive
from tests.misbehaving import MisbehavingServer
from tests.test_crawl_demo import CONTENT_TABLES, counts, demo_site
from tests.test_politeness import FakeClock

LOCAL = frozenset({"127.0.0.1"})


def run(archive, site, urls, *, crawler_args=None, **options):
    opts = CrawlOptions(**{"allow_private_hosts": LOCAL, "delay_s": 0, "backoff_base_s": 0.05, **options})
    return asyncio.run(Crawler(archive, site, options=opts, **(crawler_args or {})).run(urls))


def gets(server, path=None):
    return [r for r in server.requests if r.method == "GET" and (path is None or r.path == path)]


def test_no_two_requests_closer_than_the_delay(demo_forum, tmp_path):
    with Archive(tmp_path / "a.db") as archive:
        run(archive, demo_site(demo_forum.base_url), [f"{demo_forum.base_url}forum-1-1.html"], delay_s=0.3)
    times = [r.at for r in gets(demo_forum)]
    assert len(times) > 5
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= 0.3


def test_each_hop_of_a_redirect_waits_out_the_hosts_gap(demo_forum, tmp_path):
    # A redirect's hops are requests to the host like any other: followed back to back, a
    # chain of five was six requests within 10 ms under a 2 s delay.
    hops = ["/old-1.html", "/old-2.html", "/old-3.html"]
    for here, there in zip(hops, [*hops[1:], "/thread-1-1-1.html"]):
        demo_forum.inject(here, 302, headers={"Location": there})
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, demo_site(demo_forum.base_url), [f"{demo_forum.base_url}{hops[0][1:]}"], delay_s=0.3,
                     max_requests=1)
        saved = archive.db.execute("select count(*) from posts").fetchone()[0]
    times = [r.at for r in gets(demo_forum)]
    assert [r.path for r in gets(demo_forum)] == ["/robots.txt", *hops, "/thread-1-1-1.html"]
    assert min(b - a for a, b in zip(times, times[1:])) >= 0.3
    assert report.pages_saved == 1 and saved > 0


def test_the_waits_between_a_redirects_hops_are_not_counted_against_the_fetch_deadline(demo_forum, tmp_path):
    # The deadline is for the server's response: two hops' gaps of 0.6 s each outlast a
    # deadline of 1 s, which the whole fetch failed on (a Crawl-delay of 45 s failed every redirect).
    for here, there in (("/old-1.html", "/old-2.html"), ("/old-2.html", "/thread-1-1-1.html")):
        demo_forum.inject(here, 302, headers={"Location": there})
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, demo_site(demo_forum.base_url), [f"{demo_forum.base_url}old-1.html"], delay_s=0.6,
                     deadline_s=1.0, max_requests=1)
    assert [r.path for r in gets(demo_forum)] == ["/robots.txt", "/old-1.html", "/old-2.html", "/thread-1-1-1.html"]
    assert report.pages_saved == 1 and not report.failures


def test_retry_after_is_honoured_to_the_second(demo_forum, tmp_path):
    demo_forum.inject("/forum-1-1.html", 503, headers={"Retry-After": "2"})
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, demo_site(demo_forum.base_url), [f"{demo_forum.base_url}forum-1-1.html"])
        statuses = [r[0] for r in archive.db.execute("select status from fetches where url like '%forum-1-1%'")]
    board = gets(demo_forum, "/forum-1-1.html")
    assert len(board) == 2 and statuses == [503, 200]
    assert board[1].at - board[0].at >= 2.0
    # Nothing else was asked of the host while it had said to wait.
    during = [r for r in gets(demo_forum) if board[0].at < r.at < board[1].at]
    assert during == []
    assert report.pages_saved > 1


def test_robots_txt_answering_500_means_nothing_else_is_fetched(demo_forum, tmp_path):
    demo_forum.inject("/robots.txt", 500)
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, demo_site(demo_forum.base_url), [f"{demo_forum.base_url}forum-1-1.html"])
        robots = archive.get_robots(f"{demo_forum.base_url}robots.txt")
    assert [r.path for r in gets(demo_forum)] == ["/robots.txt"]
    assert report.skipped["robots_disallowed"] == 1
    assert robots["reason"] == "unreachable"


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_robots_txt_past_the_fetch_limit_is_read_to_its_limit(demo_forum, tmp_path, gzipped):
    # RFC 9309 2.5: at least the first 500 KiB are parsed. Refused as too large, a 2.6 MB
    # robots.txt that allows everything kept the whole forum out as "unreachable"; gzipped, one
    # chunk of it inflated past the limit at once.
    body = b"User-agent: *\nDisallow: /nothing-here/\n" + b"# a comment line of the forum's robots.txt\n" * 60000
    headers = {"Content-Encoding": "gzip"} if gzipped else {}
    demo_forum.inject("/robots.txt", 200, body=gzip.compress(body) if gzipped else body, content_type="text/plain",
                      headers=headers)
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, demo_site(demo_forum.base_url), [f"{demo_forum.base_url}forum-1-1.html"], max_requests=3)
        robots = archive.get_robots(f"{demo_forum.base_url}robots.txt")
    assert len(body) > 2 * 1024 * 1024
    assert (robots["status"], robots["reason"]) == (200, None) and "Disallow: /nothing-here/" in robots["body"]
    assert report.pages_saved >= 1 and "robots_disallowed" not in report.skipped


@pytest.mark.parametrize("target", ["http://127.0.0.2/robots.txt", "ftp://127.0.0.1/robots.txt"])
def test_a_robots_txt_redirected_where_no_request_may_go_is_unreachable_once(demo_forum, tmp_path, target):
    # The pages' host itself is allowed: only the hop is refused. Before, every URL of the
    # site failed as blocked_address (or unsupported_scheme), robots.txt asked again for each.
    demo_forum.inject("/robots.txt", 301, headers={"Location": target}, times=5)
    urls = [f"{demo_forum.base_url}thread-{tid}-1-1.html" for tid in (1, 2, 3)]
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, demo_site(demo_forum.base_url), urls)
        robots = archive.get_robots(f"{demo_forum.base_url}robots.txt")
        states = archive.db.execute("select state, reason from frontier order by id").fetchall()
    assert [r.path for r in gets(demo_forum)] == ["/robots.txt"]
    assert robots["reason"] == "unreachable"
    assert states == [("skipped", "robots_disallowed")] * 3 and report.skipped["robots_disallowed"] == 3


@pytest.mark.parametrize("asks", ["Crawl-delay: 61", "Request-rate: 1/90"])
def test_a_site_whose_robots_txt_asks_a_gap_past_the_limit_is_not_crawled_faster_it_is_not_crawled(
        demo_forum, tmp_path, caplog, asks):
    # Capped at 60 s, a forum asking 90 s between requests was crawled at one every 60 s.
    demo_forum.inject("/robots.txt", 200, body=f"User-agent: *\n{asks}\n".encode(), content_type="text/plain")
    urls = [f"{demo_forum.base_url}thread-{tid}-1-1.html" for tid in (1, 2, 3)]
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, demo_site(demo_forum.base_url), urls)
        states = archive.db.execute("select state, reason from frontier order by id").fetchall()
    assert [r.path for r in gets(demo_forum)] == ["/robots.txt"]
    assert states == [("skipped", "crawl_delay_over_limit")] * 3 and report.skipped["crawl_delay_over_limit"] == 3
    # The operator is told once, with the setting that would let the crawl go on at that pace.
    warnings = [r.getMessage() for r in caplog.records if "max_crawl_delay_s" in r.getMessage()]
    assert len(warnings) == 1 and "asks " + asks.split(": ")[1].replace("1/", "") + " s" in warnings[0]


def test_a_site_allowed_a_long_crawl_delay_is_crawled_at_that_pace_and_no_faster(demo_forum, tmp_path):
    demo_forum.inject("/robots.txt", 200, body=b"User-agent: *\nCrawl-delay: 120\n", content_type="text/plain")
    clock = FakeClock()  # two gaps of 120 s, waited on a clock of the test's own
    pacer = HostPacer(delay_s=0.0, clock=clock, sleep=clock.sleep, rng=lambda: 0.0)
    site = site_from_dict(dict(demo_site(demo_forum.base_url).raw, politeness={"delay_s": 0, "max_crawl_delay_s": 300}))
    urls = [f"{demo_forum.base_url}thread-{tid}-1-1.html" for tid in (1, 2)]
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, site, urls, crawler_args={"pacer": pacer}, max_requests=3)
    assert [r.path for r in gets(demo_forum)] == ["/robots.txt", "/thread-1-1-1.html", "/thread-2-1-1.html"]
    assert report.pages_saved == 2 and not report.skipped
    assert clock.slept == pytest.approx([120.0, 120.0], abs=0.5)


def test_robots_txt_answering_404_means_the_crawl_proceeds(demo_forum, tmp_path):
    demo_forum.inject("/robots.txt", 404)
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, demo_site(demo_forum.base_url), [f"{demo_forum.base_url}forum-1-1.html"])
    assert report.pages_saved > 1 and not report.failures


def test_recrawl_with_validators_is_all_304_and_adds_only_fetches(tmp_path):
    with start("127.0.0.1", 0, DemoForum(validators=True)) as server, Archive(tmp_path / "a.db") as archive:
        site = demo_site(server.base_url)
        boards = [f"{server.base_url}forum-{fid}-1.html" for fid in site.boards]
        run(archive, site, boards)
        before, first_run_requests = counts(archive), len(server.requests)
        second = run(archive, site, boards)
        after = counts(archive)
        recrawl = server.requests[first_run_requests:]
    # Thread pages are asked conditionally; board pages whole, since their rows decide what
    # else the run reads (a 304 would end a board's read at its first page).
    threads = [r for r in recrawl if r.path.startswith("/thread-")]
    boards = [r for r in recrawl if r.path.startswith("/forum-")]
    assert threads and all("If-None-Match" in r.headers for r in threads)
    assert boards and not any("If-None-Match" in r.headers for r in boards)
    assert second.not_modified == len(threads) == second.requests - len(boards)
    assert {t: after[t] for t in CONTENT_TABLES} == {t: before[t] for t in CONTENT_TABLES}
    assert after["fetches"] == before["fetches"] + len(recrawl)


def test_a_304_for_a_threads_last_page_moves_its_next_visit_out(tmp_path):
    # A quiet thread that stayed due would be asked for on every refresh.
    with start("127.0.0.1", 0, DemoForum(validators=True)) as server, Archive(tmp_path / "a.db") as archive:
        site = demo_site(server.base_url)
        run(archive, site, [f"{server.base_url}forum-1-1.html"])
        due = dict(archive.db.execute("select id, next_due_at from threads where gone_at is null"))
        archive.db.execute("update threads set next_due_at = '2000-01-01T00:00:00+00:00'")
        report = run(archive, site, [], incremental=True, revisit_due_threads=True)
        after = archive.db.execute("select id, next_due_at, quiet_visits from threads where gone_at is null").fetchall()
    assert report.not_modified == len(due) == report.requests
    assert all(next_due > "2000-01-02" and quiet == 1 for _, next_due, quiet in after)


def test_a_block_page_is_not_stored_and_holds_the_host(demo_forum, tmp_path):
    urls = [f"{demo_forum.base_url}thread-999-1-1.html", f"{demo_forum.base_url}thread-4-1-1.html"]
    no_permission = render.render_notice(demo_forum.forum, "抱歉，您所在的用户组无法访问该版块", demo_forum.base_url)
    demo_forum.inject("/thread-999-1-1.html", 200, body=no_permission.encode())
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, demo_site(demo_forum.base_url), urls, block_pause_s=1.0)
        reasons = dict(archive.db.execute("select url, reason from fetches where url like '%thread-%'").fetchall())
        tids = [r[0] for r in archive.db.execute("select tid from threads")]
    assert reasons[urls[0]] == "blocked:notice"
    assert tids == [4]
    assert report.failures["blocked:notice"] == 1
    notice, after = gets(demo_forum, "/thread-999-1-1.html")[0], gets(demo_forum, "/thread-4-1-1.html")[0]
    assert after.at - notice.at >= 1.0


@pytest.mark.parametrize("status", [403, 503])
def test_a_challenge_sent_with_an_error_status_is_a_block_and_holds_the_host(demo_forum, tmp_path, status):
    challenge = (Path(__file__).parent / "fixtures" / "discuz" / "challenge.html").read_bytes()
    urls = [f"{demo_forum.base_url}thread-999-1-1.html", f"{demo_forum.base_url}thread-4-1-1.html"]
    demo_forum.inject("/thread-999-1-1.html", status, body=challenge)
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, demo_site(demo_forum.base_url), urls, block_pause_s=1.0)
        reasons = dict(archive.db.execute("select url, reason from fetches where url like '%thread-%'").fetchall())
        state = archive.db.execute("select state, reason from frontier where url = ?", [urls[0]]).fetchone()
    assert reasons[urls[0]] == "blocked:challenge" and state == ("failed", "blocked:challenge")
    assert report.failures["blocked:challenge"] == 1
    challenged, after = gets(demo_forum, "/thread-999-1-1.html")[0], gets(demo_forum, "/thread-4-1-1.html")[0]
    assert len(gets(demo_forum, "/thread-999-1-1.html")) == 1  # not retried as a plain 503 would be
    assert after.at - challenged.at >= 1.0


def test_a_thread_url_whose_page_is_no_thread_is_a_parse_failure_with_its_body_kept(demo_forum, tmp_path):
    # A template the engine does not know: the page must be findable and parseable again later.
    url = f"{demo_forum.base_url}thread-4-1-1.html"
    demo_forum.inject("/thread-4-1-1.html", 200, body="<html><body><div id='ct'>新模板</div></body></html>".encode())
    with Archive(tmp_path / "a.db") as archive:
        report = run(archive, demo_site(demo_forum.base_url), [url])
        state = archive.db.execute("select state, reason from frontier where url = ?", [url]).fetchone()
        failure = archive.db.execute("select url, reason, detail, body_sha256 is not null from parse_failures").fetchall()
    assert state == ("failed", "parse_error") and report.failures["parse_error"] == 1
    assert failure == [(url, "parse_error", "the URL names a thread page; the page reads as unknown", 1)]


def test_a_deleted_thread_notice_marks_the_thread_gone_without_holding_the_host(demo_forum, tmp_path):
    # Discuz answers a deleted thread with status 200 and its "no such thread" notice: the
    # archive must read it as a deletion, not as a block page that stops the crawl a minute.
    site = demo_site(demo_forum.base_url)
    urls = [f"{demo_forum.base_url}thread-4-1-1.html", f"{demo_forum.base_url}thread-22-1-1.html"]
    with Archive(tmp_path / "a.db") as archive:
        run(archive, site, urls)
        posts_before = archive.db.execute("select count(*) from posts").fetchone()[0]
        demo_forum.forum.delete_thread(4)
        already = len(gets(demo_forum))
        report = run(archive, site, urls, block_pause_s=30.0)
        reasons = dict(archive.db.execute("select url, reason from fetches where url like '%thread-4-%'").fetchall())
        gone = dict(archive.db.execute("select tid, gone_at from threads").fetchall())
        posts_after = archive.db.execute("select count(*) from posts").fetchone()[0]
    assert reasons[urls[0]] == "missing" and report.failures == {"missing": 1}
    assert gone[4] is not None and gone[22] is None
    assert posts_after == posts_before  # nothing is ever deleted from the archive
    deleted, after = gets(demo_forum)[already:][:2]
    assert deleted.path == "/thread-4-1-1.html" and after.path == "/thread-22-1-1.html"
    assert after.at - deleted.at < 5.0


def test_a_thread_answering_404_is_marked_gone_and_kept(demo_forum, tmp_path):
    url = f"{demo_forum.base_url}thread-4-1-1.html"
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        run(archive, site, [url])
        demo_forum.inject("/thread-4-1-1.html", 404)
        run(archive, site, [url])
        gone, posts = archive.db.execute(
            "select gone_at, (select count(*) from posts where thread_id = threads.id) from threads where tid = 4"
        ).fetchone()
    assert gone is not None and posts == 1


def test_faults_end_with_their_own_reason_and_the_crawl_carries_on(tmp_path):
    with MisbehavingServer("127.0.0.1") as srv, MisbehavingServer("127.0.0.2") as forbidden:
        paths = {
            "/drip": "deadline",
            "/hang-after-headers": "deadline",
            "/huge-chunked": "too_large",
            "/wrong-content-length": "protocol_error",
            "/bomb/gzip": "too_large",
            "/loop-a": "redirect_loop",
            "/chain/0": "too_many_redirects",
            # A page's redirects stay on its host: the crawler refuses these before the address
            # guard (test_net) would; either way nothing connects.
            f"/redirect?to=http://127.0.0.2:{forbidden.port}/ok": "offsite_redirect",
            f"/redirect?to=http://[::ffff:127.0.0.1]:{forbidden.port}/ok": "offsite_redirect",
            f"/redirect?to=http://2130706433:{forbidden.port}/ok": "offsite_redirect",
            "/redirect?to=http://169.254.169.254/latest/meta-data/": "offsite_redirect",
            f"/redirect?to=http://127.0.0.1:{forbidden.port}/ok": "offsite_redirect",  # another port
            "/redirect?to=file:///etc/passwd": "offsite_redirect",
            "/redirect?to=http://127.0.0.1:99999/ok": "bad_url",
        }
        site = site_for_url(srv.url("/"))
        site = site_from_dict(dict(site.raw, politeness={"max_tries": 2}))
        started = time.monotonic()
        with Archive(tmp_path / "a.db") as archive:
            # Slow faults would (rightly) lengthen the host's gap and could open its circuit;
            # both are tested elsewhere, and here only stretch the test.
            crawler_args = {"pacer": HostPacer(delay_s=0, slowdown_factor=0),
                            "circuit": CircuitBreaker(threshold=1000)}
            report = run(archive, site, [srv.url(p) for p in paths] + [srv.url("/thread-9-1-1.html")],
                         deadline_s=1.0, crawler_args=crawler_args)
            states = {unquote(r[0]): r[1:] for r in archive.db.execute("select url, state, reason from frontier")}
            fetch_rows = archive.db.execute("select count(*) from fetches").fetchone()[0]
        elapsed = time.monotonic() - started
    for path, reason in paths.items():
        assert states[srv.url(path)] == ("failed", reason), path
    assert forbidden.hits == []
    # The good thread was crawled despite everything around it.
    assert states[srv.url("/thread-9-1-1.html")] == ("done", None)
    assert fetch_rows == report.requests
    # Three faults are retryable and slow: each of their two tries ends within the deadline + 1 s.
    assert elapsed < 3 * 2 * (1.0 + 1.0) + 5


def test_a_page_redirected_to_another_host_is_not_saved_and_says_where_it_led(tmp_path):
    # Another forum's page saved under this site would merge its posts into this one's.
    with MisbehavingServer("127.0.0.1") as srv, MisbehavingServer("127.0.0.2") as elsewhere:
        moved_to = elsewhere.url("/thread-9-1-1.html")
        with Archive(tmp_path / "a.db") as archive:
            # The other host is one the guard would let through (a public forum, in life).
            report = run(archive, site_for_url(srv.url("/")),
                         [srv.url(f"/redirect?to={moved_to}"), srv.url("/redirect?to=/thread-9-1-1.html")],
                         allow_private_hosts=LOCAL | {"127.0.0.2"})
            fetches = archive.db.execute("select reason, final_url from fetches where reason is not null "
                                         "and url not like '%/robots.txt'").fetchall()
            threads = archive.db.execute("select tid, url from threads").fetchall()
    assert elsewhere.hits == []
    assert fetches == [("offsite_redirect", moved_to)]
    # The redirect within the host is followed, and its page saved.
    assert threads == [(9, srv.url("/thread-9-1-1.html"))]
    assert report.failures == {"offsite_redirect": 1}


def test_a_bad_link_on_a_page_is_skipped_and_the_crawl_carries_on(tmp_path, monkeypatch):
    # One error no rule foresaw must cost its URL, not the site's run: the URL fails with
    # internal_error and the rest of the frontier is crawled.
    import scraper.crawl as crawl_module

    real = crawl_module.Crawler._handle_page

    def broken_once(self, row, result):
        if "thread-9-1-" in row["url"]:
            raise RuntimeError("a defect")
        return real(self, row, result)

    monkeypatch.setattr(crawl_module.Crawler, "_handle_page", broken_once)
    with MisbehavingServer() as srv, Archive(tmp_path / "a.db") as archive:
        report = run(archive, site_for_url(srv.url("/")),
                     [srv.url("/thread-9-1-1.html"), srv.url("/thread-9-3-1.html")])
        states = {url: (state, reason) for url, state, reason in archive.db.execute(
            "select url, state, reason from frontier")}
        fetches = archive.db.execute("select count(*) from fetches").fetchone()[0]
        run_status = archive.db.execute("select status from runs").fetchone()[0]
    assert states[srv.url("/thread-9-1-1.html")] == ("failed", "internal_error")
    # The rest was crawled: page 3 printed 4 pages, the margin allows 2 more.
    assert [states[srv.url(f"/thread-9-{n}-1.html")] for n in (3, 4, 5, 6)] == [("done", None)] * 4
    assert report.pages_saved == 4 and report.failures == {"internal_error": 1}
    assert fetches == report.requests  # the failed URL's request has its fetches row
    assert run_status == "finished"


def test_endless_pagination_is_cut_at_the_printed_count_plus_margin(tmp_path):
    with MisbehavingServer() as srv, Archive(tmp_path / "a.db") as archive:
        report = run(archive, site_for_url(srv.url("/")), [srv.url("/thread-9-1-1.html")])
        pages = [r[0] for r in archive.db.execute("select page from posts order by page")]
        trapped = archive.db.execute("select url, state, reason from frontier where state = 'skipped'").fetchall()
    assert pages == [1, 2, 3, 4]  # page 1 printed 2 pages; the margin allows 2 more
    assert trapped == [(srv.url("/thread-9-5-1.html"), "skipped", "trap:page_count")]
    assert report.skipped["trap:page_count"] == 1


def test_endless_pagination_is_cut_when_the_run_starts_past_page_1(tmp_path):
    # A revisit starts at the thread's last known page. Each page of the trap claims one page
    # more than itself (and is saved, page count and all, before the pager is followed), so a
    # cap taken from the latest claim would never stop.
    with MisbehavingServer() as srv, Archive(tmp_path / "a.db") as archive:
        site = site_for_url(srv.url("/"))
        first = run(archive, site, [srv.url("/thread-9-3-1.html")])
        second = run(archive, site, [srv.url("/thread-9-6-1.html")])
        pages = [r[0] for r in archive.db.execute("select page from posts order by page")]
    assert pages == [3, 4, 5, 6, 7, 8, 9]  # each run: its first page's count (page + 1) plus 2
    fetched = [int(h.split("-")[2]) for h in srv.hits if h.startswith("/thread-9-")]
    assert fetched == [3, 4, 5, 6] + [6, 7, 8, 9]
    assert first.skipped["trap:page_count"] == 1 and second.skipped["trap:page_count"] == 1


def test_the_circuit_opens_after_repeated_failures(tmp_path):
    with MisbehavingServer() as srv, Archive(tmp_path / "a.db") as archive:
        site = site_from_dict(dict(site_for_url(srv.url("/")).raw, politeness={"max_tries": 1}))
        report = run(archive, site, [srv.url(f"/status/500?i={i}") for i in range(12)])
        pending = archive.db.execute("select count(*) from frontier where state = 'pending' and reason = "
                                     "'circuit_open'").fetchone()[0]
    assert [h for h in srv.hits if h.startswith("/status/")] == [f"/status/500?i={i}" for i in range(5)]
    assert pending == 7 and report.skipped["circuit_open"] == 7


def test_an_unchanged_page_without_validators_writes_nothing_but_its_fetch(demo_forum, tmp_path):
    def snapshot(archive):
        return {t: archive.db.execute(f"select * from {t} order by 1").fetchall()
                for t in ("threads", "posts", "post_versions", "pages", "bodies")}

    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(demo_forum.base_url)
        boards = [f"{demo_forum.base_url}forum-{fid}-1.html" for fid in site.boards]
        first = run(archive, site, boards)
        before = snapshot(archive)
        second = run(archive, site, boards)
        after = snapshot(archive)
        thread_pages = archive.db.execute("select count(*) from pages where kind = 'thread'").fetchone()[0]
    # Board pages carry view counters that change, so only thread pages are compared here.
    assert second.unchanged_pages == thread_pages
    for table in ("posts", "post_versions", "bodies"):
        assert after[table] == before[table], table
    thread_rows = [r for r in after["pages"] if r[4] == "thread"]
    assert thread_rows == [r for r in before["pages"] if r[4] == "thread"]
    assert first.pages_saved > second.pages_saved


def test_every_request_names_the_project_and_a_contact(demo_forum, tmp_path):
    site = demo_site(demo_forum.base_url)
    site = site_from_dict(dict(site.raw, contact_url="https://archive.example.org/contact"))
    with Archive(tmp_path / "a.db") as archive:
        run(archive, site, [f"{demo_forum.base_url}forum-1-1.html"])
    agents = {r.headers.get("User-Agent") for r in demo_forum.requests}
    assert len(agents) == 1
    agent = agents.pop()
    assert agent.startswith("forum-archiver/") and "+https://archive.example.org/contact" in agent


@pytest.mark.parametrize(("url", "options", "expected_s"), [
    # The README's `crawl URL --config seeds/sites/demo.toml` on a real forum: the demo's 0.2 s
    # must not come along.
    ("https://bbs.example.cn/forum-2-1.html", {}, 3.0),
    ("http://127.0.0.1:8765/forum-1-1.html", {"allow_private_hosts": frozenset({"127.0.0.1"})}, 0.2),
    ("https://bbs.example.cn/forum-2-1.html", {"delay_s": 1.0}, 1.0),  # the operator's --delay
])
def test_a_site_config_cannot_crawl_a_forum_on_the_network_faster_than_the_floor(tmp_path, url, options, expected_s):
    from scraper.cli import _resolve_site

    with Archive(tmp_path / "a.db") as archive:
        site = _resolve_site(archive, [url], "seeds/sites/demo.toml", None)
        crawler = Crawler(archive, site, options=CrawlOptions(**options))
    assert site.politeness.delay_s == 0.2
    assert crawler.pacer.delay_s == expected_s


def test_a_copied_only_this_author_link_archives_the_whole_thread(demo_forum, tmp_path):
    base = demo_forum.base_url
    with Archive(tmp_path / "a.db") as archive:
        site = demo_site(base)
        run(archive, site, [f"{base}forum.php?mod=viewthread&tid=2&page=1&authorid=2001"])
        # The row of thread 2's page 1 exists now; a later board crawl must not keep its filter.
        run(archive, site, [f"{base}forum-1-1.html"])
        stored = [r[0] for r in archive.db.execute(
            "select p.pid from posts p join threads t on t.id = p.thread_id where t.tid = 2 order by p.pid")]
    assert not [r.path for r in gets(demo_forum) if "authorid" in r.path]
    assert stored == sorted(p.pid for p in demo_forum.forum.threads[2].posts)


def test_crawls_of_one_host_in_turn_keep_the_gap_between_them(demo_forum, tmp_path):
    # run --once crawls a site's discovery, then its refresh: the second must wait out the
    # Retry-After the server gave the first's last request.
    from scraper.crawl import SiteTarget, crawl_sites

    base = demo_forum.base_url
    site = site_from_dict(dict(demo_site(base).raw, politeness={"delay_s": 0, "max_tries": 1}))
    demo_forum.inject("/thread-4-1-1.html", 503, headers={"Retry-After": "2"})
    options = CrawlOptions(delay_s=0, allow_private_hosts=LOCAL)
    with Archive(tmp_path / "a.db") as archive:
        asyncio.run(crawl_sites(archive, [SiteTarget(site, (f"{base}thread-4-1-1.html",), options),
                                          SiteTarget(site, (f"{base}thread-5-1-1.html",), options)]))
    asked = [r for r in gets(demo_forum) if r.path.startswith("/thread-")]
    assert [r.path for r in asked] == ["/thread-4-1-1.html", "/thread-5-1-1.html"]
    assert asked[1].at - asked[0].at >= 2.0


def test_a_thread_reached_through_a_redirect_follows_its_pager_from_where_it_landed(tmp_path):
    with MisbehavingServer() as srv, Archive(tmp_path / "a.db") as archive:
        run(archive, site_for_url(srv.url("/")), [srv.url("/redirect?to=/thread-9-3-1.html")])
        pages = [r[0] for r in archive.db.execute("select page from posts order by page")]
    # Page 3 printed 4 pages; the margin allows 2 more, asked for by their own URLs.
    assert pages == [3, 4, 5, 6]
    assert [h for h in srv.hits if h.startswith("/thread-9-")] == [f"/thread-9-{n}-1.html" for n in (3, 4, 5, 6)]


def test_each_port_of_a_host_has_its_own_robots_txt(tmp_path):
    # RFC 9309 2.3: robots.txt covers one scheme, host and port. One port that disallows all
    # must not keep a crawl of the other away.
    from scraper.demo.server import start

    with start("127.0.0.1", 0) as closed, start("127.0.0.1", 0) as open_:
        closed.inject("/robots.txt", 200, body=b"User-agent: *\nDisallow: /\n", times=10)
        with Archive(tmp_path / "a.db") as archive:
            run(archive, demo_site(closed.base_url), [f"{closed.base_url}forum-1-1.html"])
            report = run(archive, demo_site(open_.base_url), [f"{open_.base_url}forum-1-1.html"])
            cached = {row[0] for row in archive.db.execute("select host from robots")}
    assert report.pages_saved > 0 and not report.skipped.get("robots_disallowed")
    assert cached == {f"{closed.base_url}robots.txt", f"{open_.base_url}robots.txt"}
