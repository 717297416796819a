"""Behind a real nginx (Debian's, started by the test on loopback) in front of gunicorn serving the
example project with its production settings.

- nginx compressing (``deploy/nginx/compress.conf``: ``gzip_proxied any``, ``Accept-Encoding`` not
  passed on) weakens the application's tags: a ``PATCH`` with that ``If-Match`` is refused with
  problem details that say why (and one warning in the log), or accepted with
  ``CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH``.
- nginx caching (``deploy/nginx/cache.conf``: ``proxy_cache_revalidate on``): an expired entry is
  revalidated and the application answers 304; after a write, the next revalidation gets the new
  content, never the old.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.proxies import (
    DEMO_AUTH,
    Reply,
    app_server,
    article_path,
    call,
    nginx,
    prepared_database,
)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_database(tmp_path_factory)


def _gzip_read(port: int, path: str) -> Reply:
    return call(port, "GET", path, {"Accept-Encoding": "gzip"})


def _patch(port: int, path: str, tag: str, title: str) -> Reply:
    headers = {"If-Match": tag, "Authorization": DEMO_AUTH}
    return call(port, "PATCH", path, headers, {"title": title})


def test_a_tag_weakened_by_nginx_is_refused_with_problem_details_that_say_why(
    tmp_path: Path, database: Path
) -> None:
    with (
        app_server(tmp_path, database) as app,
        nginx(tmp_path, "compress.conf", app) as port,
    ):
        path = article_path(port)
        read = _gzip_read(port, path)
        assert read.status == 200
        assert read.header("Content-Encoding") == "gzip"  # nginx compressed it
        weakened = read.header("ETag")
        assert weakened.startswith('W/"'), weakened  # and weakened the app's strong tag
        title = read.json()["title"]

        refused = _patch(port, path, weakened, "lost")
        assert refused.status == 412
        problem = refused.json()
        assert problem["precondition"] == "If-Match"
        assert problem["weakened-etag"] == weakened
        assert "GZipMiddleware" in problem["detail"]
        assert "CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH" in problem["detail"]
        assert _patch(port, path, weakened, "lost").status == 412
        assert _gzip_read(port, path).json()["title"] == title  # nothing written
    log = app.log()
    assert log.count("the weak form of the current entity-tag") == 1, log[-3000:]


def test_the_setting_accepts_a_tag_weakened_by_nginx(
    tmp_path: Path, database: Path
) -> None:
    with (
        app_server(tmp_path, database, CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH="1") as app,
        nginx(tmp_path, "compress.conf", app) as port,
    ):
        path = article_path(port)
        weakened = _gzip_read(port, path).header("ETag")
        assert weakened.startswith('W/"')
        written = _patch(port, path, weakened, "through nginx")
        assert written.status == 200, written.body[:500]
        assert written.json()["title"] == "through nginx"
        after = _gzip_read(port, path)
        assert after.json()["title"] == "through nginx"
        assert after.header("ETag") != weakened
        # The old tag, weakened, names a state that is gone: no lost update.
        assert _patch(port, path, weakened, "lost").status == 412
        assert _gzip_read(port, path).json()["title"] == "through nginx"


def _until(
    read: Callable[[], Reply], done: Callable[[Reply], bool], seconds: float = 20.0
) -> list[Reply]:
    """Read until ``done`` holds for a reply; every reply read (the last one satisfies it)."""
    replies: list[Reply] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        replies.append(read())
        if done(replies[-1]):
            return replies
        time.sleep(0.25)
    raise AssertionError(
        f"not within {seconds} s: {[r.header('X-Cache-Status') for r in replies]}"
    )


def test_nginx_revalidates_with_the_app_and_never_serves_the_old_content_after_a_write(
    tmp_path: Path, database: Path
) -> None:
    with (
        app_server(tmp_path, database) as app,
        nginx(tmp_path, "cache.conf", app, valid="1s") as port,
    ):
        path = article_path(port)

        def read() -> Reply:
            return call(port, "GET", path)

        first = read()
        assert first.status == 200
        assert first.header("X-Cache-Status") in {"MISS", "EXPIRED"}
        old_tag, old_title = first.header("ETag"), first.json()["title"]

        # The entry expires; nginx asks the app with If-None-Match and the app answers 304.
        replies = _until(read, lambda r: r.header("X-Cache-Status") == "REVALIDATED")
        assert all(r.status == 200 and r.json()["title"] == old_title for r in replies)
        # gunicorn logs the request after it answered it: wait for the line.
        _until(read, lambda r: f'"GET {path} HTTP/1.1" 304' in app.log())

        written = call(
            port,
            "PATCH",
            path,
            {"If-Match": old_tag, "Authorization": DEMO_AUTH},
            {"title": "fresh after the write"},
        )
        assert written.status == 200, written.body[:500]
        new_tag = written.header("ETag")
        assert new_tag and new_tag != old_tag

        # Until the entry expires nginx may serve it (a HIT); the first answer from the app
        # (the revalidation) carries the new content, and so does everything after it.
        replies = _until(read, lambda r: r.header("X-Cache-Status") != "HIT")
        last = replies[-1]
        assert last.header("X-Cache-Status") in {"EXPIRED", "MISS"}
        assert last.json()["title"] == "fresh after the write"
        assert last.header("ETag") == new_tag
        for reply in (read(), read()):
            assert reply.json()["title"] == "fresh after the write"
            assert reply.header("ETag") == new_tag
