"""Precise purges of a real Varnish (Debian's varnishd with the xkey vmod of varnish-modules,
started by the test on loopback with ``deploy/varnish/default.vcl``) in front of gunicorn serving
the example project with ``xkey`` headers and the ``VarnishPurge`` backend.

Objects live an hour in Varnish; after a write through the application, Varnish serves the new
content at once (the purge evicted what showed the article), while pages the write did not touch
stay cached. Clients read with ``Accept-Encoding: gzip``: Varnish keeps the application's gzip
representation (strong tag ``"...-gzip"``) and would gunzip it for a client without gzip, weakening
the tag on the way (a write with that tag gets the explaining 412; see docs/deployment.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from example_project.serving import free_port
from tests.proxies import (
    DEMO_AUTH,
    Reply,
    app_server,
    call,
    prepared_database,
    varnish,
)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_database(tmp_path_factory)


GZIP = {"Accept-Encoding": "gzip"}


def _cached(port: int, path: str) -> Reply:
    """Read ``path`` through Varnish until it is a HIT (the second read at most)."""
    first = call(port, "GET", path, GZIP)
    assert first.status == 200, first.body[:300]
    again = call(port, "GET", path, GZIP)
    assert again.header("X-Cache") == "HIT", again.headers
    assert again.body == first.body
    return again


def test_varnish_serves_the_new_content_right_after_a_write(
    tmp_path: Path, database: Path
) -> None:
    varnish_port = free_port()
    with (
        app_server(
            tmp_path,
            database,
            CONDITIONAL_SURROGATE_KEY_HEADERS="xkey",
            VARNISH_PURGE_URLS=f"http://127.0.0.1:{varnish_port}/",
        ) as app,
        varnish(tmp_path, app, varnish_port, ttl="1h") as port,
    ):
        listing = _cached(port, "/api/articles/")
        first, second = listing.json()["results"][:2]
        path, other = f"/api/articles/{first['id']}/", f"/api/articles/{second['id']}/"
        cached = _cached(port, path)
        _cached(port, other)

        # The application's own answer carries the keys Varnish indexed (Varnish strips them).
        direct = call(app.port, "GET", path, GZIP)
        assert f"o:blog.article:{first['id']}" in direct.header("xkey").split(" ")
        assert "xkey" not in cached.headers

        written = call(
            app.port,  # straight to the application: only the purge can tell Varnish
            "PATCH",
            path,
            {"If-Match": cached.header("ETag"), "Authorization": DEMO_AUTH},
            {"title": "purged at once"},
        )
        assert written.status == 200, written.body[:300]

        fresh = call(port, "GET", path, GZIP)
        assert fresh.header("X-Cache") == "MISS"
        assert fresh.json()["title"] == "purged at once"
        assert fresh.header("ETag") == written.header("ETag")[:-1] + '-gzip"'
        fresh_listing = call(port, "GET", "/api/articles/", GZIP)
        titles = [a["title"] for a in fresh_listing.json()["results"]]
        assert "purged at once" in titles
        # Precise: the other article's page showed nothing the write changed.
        untouched = call(port, "GET", other, GZIP)
        assert untouched.header("X-Cache") == "HIT"
    assert "purge" not in app.log(), app.log()[-3000:]


def test_without_the_purge_backend_varnish_keeps_the_old_content(
    tmp_path: Path, database: Path
) -> None:
    """The control: the same layout without ``VarnishPurge`` serves the old object after the
    write (until its TTL), so the test above shows the purge at work."""
    varnish_port = free_port()
    with (
        app_server(tmp_path, database, CONDITIONAL_SURROGATE_KEY_HEADERS="xkey") as app,
        varnish(tmp_path, app, varnish_port, ttl="1h") as port,
    ):
        first = _cached(port, "/api/articles/").json()["results"][0]
        path = f"/api/articles/{first['id']}/"
        cached = _cached(port, path)
        written = call(
            app.port,
            "PATCH",
            path,
            {"If-Match": cached.header("ETag"), "Authorization": DEMO_AUTH},
            {"title": "not purged"},
        )
        assert written.status == 200, written.body[:300]
        stale = call(port, "GET", path, GZIP)
        assert stale.header("X-Cache") == "HIT"
        assert stale.json()["title"] == first["title"]
