"""The middleware behind a real server: gunicorn (2 gthread workers, keep-alive) on loopback, driven by curl.

The tiny project in tests/middlewareproject serves /article/ from a file, so a change is seen by
every worker; GZip, Session and Common middleware sit around ours in Django's documented order.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from example_project.serving import free_port, listening, stop, wait_until

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
BODY = "First version of the article.\n" * 40


@dataclass
class Server:
    port: int
    content: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_gunicorn(
    module: str, settings: str, env_extra: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    if not GUNICORN.exists():
        pytest.fail(f"gunicorn is not installed in the venv ({GUNICORN})")
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONPATH": str(ROOT),
        **env_extra,
    }
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                str(GUNICORN),
                module,
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--worker-class",
                "gthread",
                "--threads",
                "2",
                "--keep-alive",
                "10",
                "--timeout",
                "30",
                "--graceful-timeout",
                "5",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return process, port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if shutil.which("curl") is None:
        pytest.fail("curl is needed for the server tests")
    directory = tmp_path_factory.mktemp("middleware-server")
    content = directory / "article.txt"
    content.write_text(BODY)
    process, port = start_gunicorn(
        "tests.middlewareproject.wsgi:application",
        "tests.middlewareproject.settings",
        {"MIDDLEWAREPROJECT_CONTENT": str(content)},
        directory / "gunicorn.log",
    )
    try:
        wait_until(lambda: listening(port), process, what="gunicorn")
        yield Server(port, content)
    finally:
        stop(process)


@dataclass
class CurlResult:
    status: int
    headers: dict[str, str]
    body: bytes


def curl(url: str, *args: str) -> CurlResult:
    """``curl`` with ``args``; the status line, headers (lower-cased names) and body it got."""
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--include",
            *args,
            url,
        ],
        capture_output=True,
        timeout=20,
        check=True,
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return CurlResult(int(lines[0].split()[1]), headers, body)


def test_etag_on_get_and_head(server):
    get = curl(f"{server.url}/article/")
    head = curl(f"{server.url}/article/", "--head")
    assert get.status == 200
    assert get.body.decode() == server.content.read_text()
    assert get.headers["etag"].startswith('"')
    assert head.status == 200
    assert head.body == b""
    assert head.headers["etag"] == get.headers["etag"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_matching_if_none_match_gets_a_bodiless_304_with_the_15_4_5_headers(
    server, method
):
    tag = curl(f"{server.url}/article/").headers["etag"]
    method_args = ["--head"] if method == "HEAD" else []
    response = curl(
        f"{server.url}/article/", *method_args, "-H", f"If-None-Match: {tag}"
    )
    assert response.status == 304
    assert response.body == b""
    for name in ("cache-control", "date", "etag", "expires", "vary"):
        assert name in response.headers, name
    assert response.headers["etag"] == tag
    assert response.headers["cache-control"] == "max-age=60"
    assert "Accept-Language" in response.headers["vary"]
    assert "content-length" not in response.headers


def test_changed_content_gets_the_full_200(server):
    tag = curl(f"{server.url}/article/").headers["etag"]
    new_body = "Second version, edited.\n" * 30
    server.content.write_text(new_body)
    # Both workers answer with the new representation.
    for _ in range(4):
        response = curl(f"{server.url}/article/", "-H", f"If-None-Match: {tag}")
        assert response.status == 200
        assert response.body.decode() == new_body
        assert response.headers["etag"] != tag


def test_gzip_weak_tag_revalidates(server):
    first = curl(f"{server.url}/article/", "--compressed")
    assert first.headers["content-encoding"] == "gzip"
    assert first.headers["etag"].startswith('W/"')
    again = curl(
        f"{server.url}/article/",
        "--compressed",
        "-H",
        f"If-None-Match: {first.headers['etag']}",
    )
    assert again.status == 304
    assert again.headers["etag"] == first.headers["etag"]


def test_unguarded_write_gets_428_and_a_guarded_one_goes_through(server):
    before = server.content.read_text()
    refused = curl(
        f"{server.url}/article/", "-X", "PUT", "--data-binary", "overwrite\n"
    )
    assert refused.status == 428
    assert b"If-Match" in refused.body
    assert server.content.read_text() == before
    tag = curl(f"{server.url}/article/").headers["etag"]
    accepted = curl(
        f"{server.url}/article/",
        "-X",
        "PUT",
        "-H",
        f"If-Match: {tag}",
        "--data-binary",
        "Third version.\n",
    )
    assert accepted.status == 200
    assert server.content.read_text() == "Third version.\n"


def test_304_then_a_second_request_on_the_same_keep_alive_connection(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", "/article/")
        first = connection.getresponse()
        body = first.read()
        tag = first.getheader("ETag")
        assert tag is not None
        assert first.status == 200
        sock = connection.sock
        connection.request("GET", "/article/", headers={"If-None-Match": tag})
        not_modified = connection.getresponse()
        assert not_modified.status == 304
        assert not_modified.read() == b""
        assert not_modified.getheader("Connection", "").lower() != "close"
        connection.request("GET", "/article/")
        second = connection.getresponse()
        assert second.status == 200
        assert second.read() == body
        assert connection.sock is sock  # the same connection served all three
    finally:
        connection.close()


def test_304_sends_no_body_bytes_on_the_wire(server):
    tag = curl(f"{server.url}/article/").headers["etag"]
    request = (
        f"GET /article/ HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: {tag}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the 304's headers ended"
            received += chunk
        head, _, extra = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 304")
        sock.settimeout(0.5)
        with contextlib.suppress(TimeoutError):
            extra += sock.recv(65536)
        assert extra == b""  # nothing after the header section
        sock.settimeout(10)
        sock.sendall(b"GET /article/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, "connection closed after the 304"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")


def test_example_project_under_gunicorn(tmp_path):
    """The example project (its settings list this middleware) answers GET, HEAD and their 304s.

    ``/`` is tagged by a decorator; ``/about/`` is a plain view the middleware tags.
    """
    process, port = start_gunicorn(
        "example_project.wsgi:application",
        "example_project.settings",
        {"DJANGO_DEBUG": "0"},
        tmp_path / "gunicorn.log",
    )
    try:
        wait_until(lambda: listening(port), process, what="gunicorn")
        for path in ("/", "/about/"):
            url = f"http://127.0.0.1:{port}{path}"
            get = curl(url)
            head = curl(url, "--head")
            assert get.status == 200, path
            assert head.status == 200, path
            assert get.headers["etag"] == head.headers["etag"], path
            for args in ([], ["--head"]):
                response = curl(
                    url, *args, "-H", f"If-None-Match: {get.headers['etag']}"
                )
                assert response.status == 304, path
                assert response.body == b""
                assert response.headers["etag"] == get.headers["etag"]
    finally:
        stop(process)
