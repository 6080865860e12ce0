"""The frontier in storage.archive: enqueue, lease, finish, retry, expired-lease recovery."""

from __future__ import annotations

import threading

import pytest

from storage.archive import Archive
from tests.test_storage_support import T0, T1, T2, T3, archive, count, site_id  # noqa: F401

LEASE_S = 300


def add(archive, site_id, key, *, host="bbs.example.cn", **kwargs):
    url = f"http://{host}/{key}"
    return archive.enqueue(site_id, url=url, url_key=key, kind="thread", host=host, **kwargs)


def row(archive, key):
    return next(archive.db.query("SELECT * FROM frontier WHERE url_key = ?", [key]))


def test_enqueue_is_idempotent(archive, site_id):
    assert add(archive, site_id, "t88", priority=5, now=T0) is True
    assert add(archive, site_id, "t88", priority=9, depth=3, now=T1) is False
    assert count(archive, "frontier") == 1
    first = row(archive, "t88")
    assert (first["state"], first["priority"], first["depth"], first["attempts"]) == ("pending", 5, 0, 0)
    assert (first["next_due_at"], first["added_at"], first["updated_at"]) == (T0, T0, T0)


def test_lease_takes_highest_priority_then_longest_overdue(archive, site_id):
    add(archive, site_id, "old-low", next_due_at=T0, now=T0)
    add(archive, site_id, "new-high", priority=5, next_due_at=T1, now=T0)
    add(archive, site_id, "old-high", priority=5, next_due_at=T0, now=T0)
    add(archive, site_id, "future", priority=9, next_due_at=T3, now=T0)
    order = [archive.lease_next(site_id, now=T2, lease_s=LEASE_S)["url_key"] for _ in range(3)]
    assert order == ["old-high", "new-high", "old-low"]
    assert archive.lease_next(site_id, now=T2, lease_s=LEASE_S) is None  # "future" is not due
    leased = row(archive, "old-high")
    assert (leased["state"], leased["attempts"], leased["leased_until"]) == (
        "leased", 1, "2024-03-03T00:05:00+00:00")


def test_lease_skips_excluded_hosts_and_other_sites(archive, site_id):
    other_site = archive.upsert_site("other", engine="discuz")
    add(archive, site_id, "busy-host", host="127.0.0.2", priority=9, now=T0)
    add(archive, other_site, "other-site", host="127.0.0.3", priority=8, now=T0)
    add(archive, site_id, "free-host", host="127.0.0.4", now=T0)
    leased = archive.lease_next(site_id, now=T1, lease_s=LEASE_S, exclude_hosts={"127.0.0.2"})
    assert leased["url_key"] == "free-host"
    assert archive.lease_next(site_id, now=T1, lease_s=LEASE_S, exclude_hosts=["127.0.0.2"]) is None
    assert archive.lease_next(None, now=T1, lease_s=LEASE_S)["url_key"] == "busy-host"
    assert archive.lease_next(None, now=T1, lease_s=LEASE_S)["url_key"] == "other-site"
    with pytest.raises(TypeError, match="not a str"):
        archive.lease_next(site_id, now=T1, lease_s=LEASE_S, exclude_hosts="127.0.0.2")


def test_finish_done_failed_skipped_and_retry(archive, site_id):
    for key in ("a", "b", "c", "d"):
        add(archive, site_id, key, now=T0)
    ids = {}
    for _ in range(4):
        leased = archive.lease_next(site_id, now=T0, lease_s=LEASE_S)
        ids[leased["url_key"]] = leased["id"]
    archive.finish(ids["a"], "done", now=T1)
    archive.finish(ids["b"], "failed", reason="http_404", now=T1)
    archive.finish(ids["c"], "skipped", reason="robots_disallowed", now=T1)
    archive.finish(ids["d"], "pending", reason="timeout", next_due_at=T2, now=T1)
    counts = archive.frontier_counts(site_id)
    assert counts == {"pending": 1, "leased": 0, "done": 1, "failed": 1, "skipped": 1}
    assert (row(archive, "b")["reason"], row(archive, "b")["leased_until"]) == ("http_404", None)
    assert archive.lease_next(site_id, now=T1, lease_s=LEASE_S) is None  # the retry waits until T2
    retried = archive.lease_next(site_id, now=T2, lease_s=LEASE_S)
    assert (retried["url_key"], retried["attempts"]) == ("d", 2)


def test_finish_refuses_bad_states_and_unknown_rows(archive, site_id):
    add(archive, site_id, "a", now=T0)
    frontier_id = archive.lease_next(site_id, now=T0, lease_s=LEASE_S)["id"]
    with pytest.raises(ValueError):
        archive.finish(frontier_id, "leased")
    with pytest.raises(ValueError, match="next_due_at"):
        archive.finish(frontier_id, "pending")
    with pytest.raises(LookupError):
        archive.finish(frontier_id + 100, "done")
    assert row(archive, "a")["state"] == "leased"


def test_expired_leases_return_to_pending(archive, site_id):
    add(archive, site_id, "crashed", now=T0)
    add(archive, site_id, "working", now=T0)
    archive.lease_next(site_id, now=T0, lease_s=60)
    archive.lease_next(site_id, now="2024-03-01T00:00:30+00:00", lease_s=60)
    assert archive.release_expired_leases("2024-03-01T00:00:59+00:00") == 0
    assert archive.release_expired_leases("2024-03-01T00:01:00+00:00") == 1
    assert (row(archive, "crashed")["state"], row(archive, "working")["state"]) == ("pending", "leased")
    again = archive.lease_next(site_id, now="2024-03-01T00:01:00+00:00", lease_s=60)
    assert (again["url_key"], again["attempts"]) == ("crashed", 2)


def test_requeue_puts_a_finished_row_back(archive, site_id):
    add(archive, site_id, "t88", now=T0)
    frontier_id = archive.lease_next(site_id, now=T0, lease_s=LEASE_S)["id"]
    assert archive.requeue(site_id, "t88", T2, now=T0) is False  # leased: left to its holder
    archive.finish(frontier_id, "failed", reason="http_503", now=T1)
    assert archive.requeue(site_id, "t88", T2, now=T1) is True
    requeued = row(archive, "t88")
    assert (requeued["state"], requeued["next_due_at"], requeued["attempts"], requeued["reason"]) == (
        "pending", T2, 0, None)
    assert archive.requeue(site_id, "unknown", T2) is False


def test_due_times_with_other_offsets_compare_correctly(archive, site_id):
    # 08:00+08:00 is midnight UTC: due at T0 exactly.
    add(archive, site_id, "t88", next_due_at="2024-03-01T08:00:00+08:00", now=T0)
    assert archive.lease_next(site_id, now="2024-02-29T23:59:59Z", lease_s=LEASE_S) is None
    assert archive.lease_next(site_id, now="2024-03-01T00:00:00Z", lease_s=LEASE_S)["url_key"] == "t88"


def test_two_connections_never_lease_one_row_twice(archive, site_id):
    for n in range(60):
        add(archive, site_id, f"t{n}", host=f"127.0.0.{n % 5 + 2}", now=T0)
    leased: list[list[str]] = [[], []]

    def worker(slot: int) -> None:
        with Archive(archive.path) as mine:
            while (item := mine.lease_next(site_id, now=T1, lease_s=LEASE_S)) is not None:
                leased[slot].append(item["url_key"])

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = leased[0] + leased[1]
    assert sorted(everything) == sorted(f"t{n}" for n in range(60))
    assert archive.frontier_counts() == {"pending": 0, "leased": 60, "done": 0, "failed": 0, "skipped": 0}


def test_a_lease_taken_while_another_connection_holds_one_open_gets_another_row(archive, site_id):
    # The overlap is forced, not left to timing: A's lease is leased but uncommitted while B asks.
    add(archive, site_id, "t1", now=T0)
    add(archive, site_id, "t2", now=T0)
    taken = {}
    with Archive(archive.path) as other:
        asker = threading.Thread(target=lambda: taken.update(row=other.lease_next(site_id, now=T1, lease_s=LEASE_S)))
        with archive.transaction():
            first = archive.lease_next(site_id, now=T1, lease_s=LEASE_S)
            asker.start()
            asker.join(timeout=0.5)
            assert asker.is_alive(), "B leased while A's lease was not yet committed"
        asker.join(timeout=30)
    assert not asker.is_alive()
    assert {first["url_key"], taken["row"]["url_key"]} == {"t1", "t2"}
    assert archive.frontier_counts()["leased"] == 2


def test_lease_by_key_takes_that_pending_row_due_or_not(archive, site_id):
    add(archive, site_id, "trap", next_due_at=T3, now=T0)
    add(archive, site_id, "other", now=T0)
    leased = archive.lease_by_key(site_id, "trap", now=T1)
    assert (leased["url_key"], leased["state"], leased["attempts"]) == ("trap", "leased", 1)
    assert leased["leased_until"] == "2024-03-02T00:05:00+00:00"  # the default lease: 300 s
    assert archive.lease_by_key(site_id, "trap", now=T1) is None  # no longer pending
    assert archive.lease_by_key(site_id, "unknown", now=T1) is None
    archive.finish(leased["id"], "skipped", "trap:calendar", now=T1)
    assert row(archive, "other")["state"] == "pending"


def test_lease_needs_a_positive_lease(archive, site_id):
    with pytest.raises(ValueError):
        archive.lease_next(site_id, now=T0, lease_s=0)
    with pytest.raises(ValueError):
        archive.lease_by_key(site_id, "t88", now=T0, lease_s=-5)


def test_a_site_lease_walks_its_index_not_every_pending_row(archive, site_id):
    # Many pending rows of other sites, and a site's rows due later ahead of its due ones in
    # the order: the lease reads its site's rows in index order and sorts nothing.
    other_site = archive.upsert_site("other", engine="discuz")
    with archive.transaction():
        for n in range(200):
            add(archive, other_site, f"other-{n}", priority=9, now=T0)
    add(archive, site_id, "later", priority=9, next_due_at=T3, now=T0)
    add(archive, site_id, "due-low", priority=1, next_due_at=T1, now=T0)
    add(archive, site_id, "due-high", priority=5, next_due_at=T2, now=T0)
    statements = []
    archive.db.conn.set_trace_callback(statements.append)
    try:
        leased = archive.lease_next(site_id, now=T2, lease_s=LEASE_S)
    finally:
        archive.db.conn.set_trace_callback(None)
    assert leased["url_key"] == "due-high"
    (lease_sql,) = [sql for sql in statements if sql.lstrip().startswith("UPDATE frontier")]
    plan = " | ".join(r[3] for r in archive.db.execute(f"EXPLAIN QUERY PLAN {lease_sql}").fetchall())
    assert "idx_frontier_site_lease (site_id=? AND state=?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    # Every site at once (no site given) still leases in the same order.
    assert archive.lease_next(now=T2, lease_s=LEASE_S)["url_key"] == "other-0"
