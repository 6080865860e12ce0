"""Fixtures other test modules share."""

from __future__ import annotations

import pytest

from scraper.demo.server import start


@pytest.fixture
def demo_forum():
    """The demo forum served on 127.0.0.1 (a free port) for one test, then shut down.

    Yields the running server: .base_url, .forum (the mutable DemoForum: edit_post,
    add_reply, add_thread, delete_post, .validators) and .requests (the request log of
    (method, path, headers)).
    """
    server = start("127.0.0.1", 0)
    try:
        yield server
    finally:
        server.shutdown()
