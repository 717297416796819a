"""SQLite, the demo's database: concurrent guarded writes serialise; the loser gets 412, never
a 500 ("database is locked"). The write path takes SQLite's write lock with its first statement
(``store.database.lock``), so a second writer waits for the first instead of failing."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from example_project.blog.testing import demo_server

pytestmark = pytest.mark.server
AUTH = "Basic " + base64.b64encode(b"demo:demo").decode()


def _request(
    url: str, method: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_concurrent_guarded_writes_on_sqlite_give_one_200_and_412s(
    tmp_path: Path,
) -> None:
    with demo_server(tmp_path, "gunicorn") as server:
        status, _, body = _request(f"{server.url}/api/articles/", "GET", {})
        assert status == 200
        first = json.loads(body)["results"][0]["id"]
        url = f"{server.url}/api/articles/{first}/"
        status, headers, _ = _request(url, "GET", {})
        tag = headers["ETag"]
        results: list[int] = []
        lock = threading.Lock()

        def write(n: int) -> None:
            status, _, _ = _request(
                url,
                "PATCH",
                {
                    "Authorization": AUTH,
                    "If-Match": tag,
                    "Content-Type": "application/json",
                },
                json.dumps({"title": f"writer {n}"}).encode(),
            )
            with lock:
                results.append(status)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sorted(results) == [200] + [412] * 7, (results, server.log()[-3000:])
        assert "database is locked" not in server.log()
