"""Headless Chromium (Debian's, driven by Playwright; never downloaded) against the demo served
by a real server: a reload revalidates and gets a 304 while the page still shows its content; a
change through the API shows up on the next reload with a new ETag."""

from __future__ import annotations

import base64
import http.client
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from example_project.blog.testing import ROOT, demo_server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.server,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None,
        reason=f"{CHROMIUM} is absent: install Debian's chromium (scripts/ensure-chromium)",
    ),
]


def _patch_title(base: str, pk: int, etag: str, title: str) -> tuple[int, str]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    auth = base64.b64encode(b"demo:demo").decode()
    try:
        connection.request(
            "PATCH",
            f"/api/articles/{pk}/",
            body=json.dumps({"title": title}).encode(),
            headers={
                "Authorization": f"Basic {auth}",
                "Content-Type": "application/json",
                "If-Match": etag,
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("ETag") or ""
    finally:
        connection.close()


def _api_etag(base: str, pk: int) -> str:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        connection.request("GET", f"/api/articles/{pk}/")
        response = connection.getresponse()
        response.read()
        return response.getheader("ETag") or ""
    finally:
        connection.close()


def _log_statuses(
    server: Any, path: str, count: int, timeout: float = 10.0
) -> list[int]:
    """Statuses of the first ``count`` GETs of ``path`` in runserver's log (waits for them)."""
    pattern = re.compile(rf'"GET {re.escape(path)} HTTP/1\.1" (\d{{3}}) ')
    deadline = time.monotonic() + timeout
    while True:
        statuses = [int(m) for m in pattern.findall(server.log())]
        if len(statuses) >= count or time.monotonic() > deadline:
            return statuses
        time.sleep(0.1)


def test_reload_revalidates_with_a_304_and_a_change_shows_up(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with demo_server(tmp_path, "runserver") as server:
        path = "/articles/1/"
        url = f"{server.url}{path}"
        with sync_api.sync_playwright() as playwright:
            # A persistent context on a temporary profile: the browser's HTTP cache is real.
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
            )
            try:
                page = browser.new_page()
                responses: list[Any] = []
                page.on(
                    "response", lambda r: responses.append(r) if r.url == url else None
                )

                first = page.goto(url)
                assert first is not None and first.status == 200
                etag = first.headers["etag"]
                title = page.locator("#title").inner_text()
                assert title and "max-age=60" in first.headers["cache-control"]

                # Chromium's reload revalidates (Cache-Control: max-age=0, If-None-Match) ...
                reloaded = page.reload()
                assert reloaded is not None
                sent = reloaded.request.all_headers()
                assert sent.get("if-none-match") == etag, sent
                assert sent.get("cache-control") == "max-age=0"
                # ... the server answers 304 (its log), and the page still shows its content
                # (the browser reports the cached 200 to the page, with the same ETag).
                assert _log_statuses(server, path, 2) == [200, 304]
                assert reloaded.headers["etag"] == etag
                assert page.locator("#title").inner_text() == title
                page.screenshot(path=str(ARTIFACTS / "browser-after-304.png"))

                new_title = "Changed through the API"
                status, _ = _patch_title(
                    server.url, 1, _api_etag(server.url, 1), new_title
                )
                assert status == 200

                changed = page.reload()
                assert changed is not None
                assert changed.request.all_headers().get("if-none-match") == etag
                assert _log_statuses(server, path, 3) == [200, 304, 200]
                assert changed.status == 200
                assert changed.headers["etag"] != etag
                assert page.locator("#title").inner_text() == new_title
                assert len(responses) == 3
                page.screenshot(
                    path=str(ARTIFACTS / "browser-after-change.png"), full_page=True
                )
            finally:
                browser.close()
