"""A site's two jobs, discover and refresh: stable ids, and the lock of its host between them."""

import json
import logging
import threading
import time

from scraper import schedule
from scraper.demo.server import start
from scraper.schedule import HostLock, RunOptions
from scraper.sites import site_from_dict
from storage.archive import Archive
from tests.test_crawl_demo import demo_site


def test_each_site_has_a_discover_and_a_refresh_job_with_stable_ids(tmp_path):
    site = demo_site("http://127.0.0.1:8765/")
    specs = schedule.site_jobs(tmp_path / "a.db", site, RunOptions(verify_budget_requests=4, every_s=900))
    assert [s.job_id for s in specs] == ["discover:demo", "refresh:demo"]
    assert [s.func for s in specs] == ["scraper.schedule:discover_site", "scraper.schedule:refresh_site"]
    assert specs == schedule.site_jobs(tmp_path / "a.db", site, RunOptions(verify_budget_requests=4, every_s=900))
    # The interval goes with the jobs' options: the refresh job paces its verify pass to it.
    assert RunOptions.from_json(specs[0].args[2]) == RunOptions(verify_budget_requests=4, every_s=900)
    assert [s.every_s for s in specs] == [900, 900]
    assert schedule.crawl_options(site, RunOptions.from_json(specs[1].args[2]), "refresh").run_interval_s == 900
    assert schedule.crawl_options(site, RunOptions(), "refresh").run_interval_s == site.every_s
    # A job stored by an older version carries fewer options: the rest take their defaults.
    assert RunOptions.from_json('{"delay_s": 1, "allow_private": true}') == RunOptions(delay_s=1, allow_private=True)
    discover, refresh = (schedule.crawl_options(site, RunOptions(), job) for job in schedule.JOBS)
    assert (discover.revisit_due_threads, discover.verify_budget_requests) == (False, 0)
    assert (refresh.revisit_due_threads, refresh.verify_budget_requests) == (True, site.verify_budget_requests)


def run_job_in_thread(func, db, site, options):
    result = {}

    def target():
        started = time.monotonic()
        result["value"] = func(str(db), json.dumps(site.raw), options.to_json())
        result["took"] = time.monotonic() - started

    thread = threading.Thread(target=target)
    thread.start()
    return thread, result


def test_a_job_waits_for_its_sites_other_job_then_runs(demo_forum, tmp_path):
    db, site = tmp_path / "a.db", demo_site(demo_forum.base_url)
    other_job = HostLock(db, site.host)
    assert other_job.try_acquire()
    thread, result = run_job_in_thread(schedule.discover_site, db, site,
                                       RunOptions(delay_s=0, allow_private=True, lock_wait_s=30))
    time.sleep(0.5)
    assert demo_forum.requests == [], "nothing is fetched while the other job holds the site"
    other_job.release()
    thread.join(timeout=30)
    assert result["value"]["requests"] > 0 and result["took"] >= 0.5
    with Archive(db, readonly=True) as archive:
        assert archive.db.execute("select job, status from runs").fetchall() == [("discover", "finished")]


def test_a_job_that_waits_too_long_skips_this_run_and_says_so(demo_forum, tmp_path, caplog):
    db, site = tmp_path / "a.db", demo_site(demo_forum.base_url)
    other_process = HostLock(db, site.host)
    assert other_process.try_acquire()
    try:
        with caplog.at_level(logging.WARNING, logger="scraper.schedule"):
            thread, result = run_job_in_thread(schedule.refresh_site, db, site,
                                               RunOptions(delay_s=0, allow_private=True, lock_wait_s=0.4))
            thread.join(timeout=10)
    finally:
        other_process.release()
    assert result["value"]["skipped"] and 0.4 <= result["took"] < 5
    assert demo_forum.requests == []
    assert "refresh skipped" in caplog.text and site.name in caplog.text


def test_a_stop_request_ends_the_wait_for_the_lock(tmp_path):
    lock = HostLock(tmp_path / "a.db", "127.0.0.1")
    assert lock.try_acquire()
    schedule.STOP.set()
    try:
        started = time.monotonic()
        assert schedule.acquire_all([HostLock(tmp_path / "a.db", "127.0.0.1")], wait_s=30) == []
        assert time.monotonic() - started < 1
    finally:
        schedule.STOP.clear()
        lock.release()


def test_jobs_of_two_sites_on_one_host_take_turns(tmp_path):
    # Two ports of one address are one host: each job paces only its own requests, so
    # letting both run at once would put two requests in flight there.
    db = tmp_path / "a.db"
    with start("127.0.0.2", 0) as first, start("127.0.0.2", 0) as second:
        sites = [site_from_dict(dict(demo_site(server.base_url).raw, name=name))
                 for name, server in (("port-a", first), ("port-b", second))]
        options = RunOptions(delay_s=0.05, allow_private=True, lock_wait_s=60)
        jobs = [run_job_in_thread(schedule.discover_site, db, site, options) for site in sites]
        for thread, _ in jobs:
            thread.join(timeout=60)
        spans = sorted((min(r.at for r in s.requests), max(r.at for r in s.requests)) for s in (first, second))
    assert all(result["value"]["requests"] > 0 for _, result in jobs)
    assert spans[0][1] < spans[1][0], "the second site's job waited for the first's to end"


def test_the_next_job_on_a_host_waits_out_the_last_jobs_pause(demo_forum, tmp_path):
    # A server's Retry-After, given to the discover job's last request, holds for the refresh
    # job that takes the host's lock next, as it would within one job.
    db, site = tmp_path / "a.db", demo_site(demo_forum.base_url)
    site = site_from_dict(dict(site.raw, boards=[1], politeness={"delay_s": 0, "max_tries": 1}))
    options = RunOptions(delay_s=0, allow_private=True)
    schedule.discover_site(str(db), json.dumps(site.raw), options.to_json())
    guide = "/forum.php?mod=guide&view=newthread&page=1"  # the discover job's last request
    demo_forum.inject(guide, 503, headers={"Retry-After": "2"})
    mark = len(demo_forum.requests)
    schedule.discover_site(str(db), json.dumps(site.raw), options.to_json())
    with Archive(db) as archive:  # a thread falls due: the refresh job asks for it
        thread_id, url = archive.db.execute("select id, url from threads order by id limit 1").fetchone()
        archive.db.execute("update threads set next_due_at = '2000-01-01T00:00:00+00:00' where id = ?", [thread_id])
    schedule.refresh_site(str(db), json.dumps(site.raw), options.to_json())
    asked = [r for r in demo_forum.requests[mark:] if r.method == "GET"]
    assert [r.path for r in asked] == ["/forum-1-1.html", guide, url[len(demo_forum.base_url) - 1:]]
    assert asked[2].at - asked[1].at >= 2.0


def test_a_host_whose_circuit_opened_is_left_alone_by_the_next_job_too(tmp_path):
    from scraper.crawl import Crawler
    from scraper.politeness import CircuitBreaker

    db, site = tmp_path / "a.db", demo_site("http://127.0.0.1:9/")
    with Archive(db) as archive:
        crawler = Crawler(archive, site, circuit=CircuitBreaker(threshold=1, cooldown_s=30))
        lock = HostLock(db, site.host)
        assert lock.try_acquire()
        with schedule.paced_by_host_lock(lock, crawler):
            crawler.circuit.failure(site.host)  # the job's requests kept failing: the circuit opened
        assert 29 < lock.not_before() - time.time() <= 30.01  # stored to the millisecond
        lock.release()


def test_run_once_leaves_the_hosts_pause_for_the_next_crawl_of_it(demo_forum, tmp_path):
    # A cron run that ends on a server's Retry-After hands it on through the host's lock file.
    db, site = tmp_path / "a.db", demo_site(demo_forum.base_url)
    site = site_from_dict(dict(site.raw, boards=[1], politeness={"delay_s": 0, "max_tries": 1}))
    options = RunOptions(delay_s=0, allow_private=True, verify_budget_requests=0)
    schedule.run_once(db, [site], options)
    guide = "/forum.php?mod=guide&view=newthread&page=1"
    demo_forum.inject(guide, 503, headers={"Retry-After": "30"})
    mark = len(demo_forum.requests)
    schedule.run_once(db, [site], options)
    assert [r.path for r in demo_forum.requests[mark:]][-1] == guide  # the run's last request
    lock = HostLock(db, site.host)
    assert lock.try_acquire()
    try:
        assert 25 < lock.not_before() - time.time() <= 30.01
    finally:
        lock.release()


def test_a_stop_request_ends_a_jobs_wait_for_its_hosts_pause(demo_forum, tmp_path):
    # A Retry-After handed on through the lock file can hold the host for up to an hour: a
    # stop that comes meanwhile ends the job within about a second, with no request made
    # after it and the job's URL back in the queue as it was, its attempt not counted.
    db, site = tmp_path / "a.db", demo_site(demo_forum.base_url)
    lock = HostLock(db, site.host)
    assert lock.try_acquire()
    lock.set_not_before(time.time() + 40)
    lock.release()
    thread, result = run_job_in_thread(schedule.discover_site, db, site, RunOptions(delay_s=0, allow_private=True))
    time.sleep(1.0)
    schedule.STOP.set()
    try:
        stopped = time.monotonic()
        thread.join(timeout=10)
        assert not thread.is_alive() and time.monotonic() - stopped < 2.5
    finally:
        schedule.STOP.clear()
    assert demo_forum.requests == [] and result["value"]["requests"] == 0
    with Archive(db, readonly=True) as archive:
        assert archive.db.execute("select job, status from runs").fetchall() == [("discover", "interrupted")]
        queued = archive.db.execute("select state, attempts from frontier").fetchall()
    assert queued and set(queued) == {("pending", 0)}


def test_a_job_waits_for_its_host_up_to_its_own_interval(demo_forum, tmp_path, caplog):
    # A site's discovery may run longer than any fixed wait; its refresh job, which would
    # then give up at the same point every interval, waits up to its interval instead.
    db, site = tmp_path / "a.db", demo_site(demo_forum.base_url)
    other_job = HostLock(db, site.host)
    assert other_job.try_acquire()
    options = RunOptions(delay_s=0, allow_private=True, every_s=4)  # lock_wait_s left to the interval
    thread, result = run_job_in_thread(schedule.discover_site, db, site, options)
    time.sleep(2.5)
    assert thread.is_alive() and demo_forum.requests == []
    other_job.release()
    thread.join(timeout=30)
    assert result["value"]["requests"] > 0
    assert other_job.try_acquire()  # now held for longer than the interval: this run is skipped
    try:
        with caplog.at_level(logging.WARNING, logger="scraper.schedule"):
            thread, result = run_job_in_thread(schedule.refresh_site, db, site, options)
            thread.join(timeout=30)
    finally:
        other_job.release()
    assert result["value"]["skipped"] and 4 <= result["took"] < 10
    assert "stayed taken for 4 s" in caplog.text
