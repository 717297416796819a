"""Hostile conditional headers over raw sockets, through gunicorn and uvicorn serving the example.

The test client cannot send what real clients can: bytes that are not UTF-8, a header field
repeated on two lines, control characters, 64 KB fields. Here they go byte for byte to a real
server (loopback, a free port, 2 workers, raised header limits so the app sees the huge fields):
gunicorn for the WSGI (sync) stack, uvicorn for the ASGI (async) one. Each answer's status line is
checked: the RFC's answer, or a 4xx from the server, never a 500.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from example_project.blog.testing import ROOT, demo_env, prepare_database
from example_project.serving import free_port, stop, wait_until

pytestmark = pytest.mark.server

BASIC = b"Basic " + base64.b64encode(b"demo:demo")
HUGE = 64 * 1024
STARTUP_SECONDS = 30.0
REDIS_SERVER = shutil.which("redis-server")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def build(
    method: str,
    path: str,
    fields: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in fields]
    if body:
        lines += [
            b"Content-Type: application/json",
            f"Content-Length: {len(body)}".encode(),
        ]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def answers(port: int) -> bool:
    """Whether the demo served on ``port`` answers its about page with a 200."""
    try:
        return exchange(port, build("GET", "/about/"), timeout=2).status == 200
    except (OSError, AssertionError):
        return False


def exchange(port: int, raw: bytes, timeout: float = 15.0) -> Reply:
    """Send ``raw`` as is and read the whole answer (the server closes: ``Connection: close``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ConnectionError("the connection closed without a reply")
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1."), data[:200]
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), headers, body)


@dataclass
class RedisServer:
    """A redis-server of the test's own (never the machine's shared one on 6379)."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        assert self.process is None or self.process.poll() is not None
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def command(self, *words: str) -> bytes:
        """One RESP command on a fresh connection; the raw reply line."""
        payload = f"*{len(words)}\r\n".encode() + b"".join(
            f"${len(w.encode())}\r\n{w}\r\n".encode() for w in words
        )
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(payload)
            return sock.recv(65536)

    def ping(self) -> bool:
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False


@contextmanager
def own_redis() -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("needs redis-server on the PATH")
    redis_server = RedisServer(free_port())
    redis_server.start()
    try:
        yield redis_server
    finally:
        redis_server.stop()


@pytest.fixture(scope="module", params=["gunicorn", "uvicorn"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The seeded demo with a Redis of its own (a local-memory cache is not shared by workers:
    system check W010), 2 workers of gunicorn (WSGI, the sync stack) or uvicorn (ASGI, the async
    stack); stopped (and waited for) afterwards."""
    with (
        own_redis() as redis_server,
        _serve(request.param, tmp_path_factory, redis_server) as running,
    ):
        yield running


def _command(kind: str, port: int) -> list[str]:
    if kind == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "example_project.wsgi",
            "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "30",
            # Let the 64 KB fields reach the application (gunicorn's default is 8190 bytes).
            "--limit-request-field_size", str(4 * HUGE),
            "--access-logfile", "-",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", "example_project.asgi:application",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
        "--h11-max-incomplete-event-size", str(8 * HUGE),
    ]  # fmt: skip


@contextmanager
def _serve(
    kind: str, tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp(f"raw-sockets-{kind}")
    env = demo_env(tmp_path / "demo.sqlite3")
    env["REDIS_URL"] = redis_server.url
    prepare_database(env)
    port = free_port()
    log_path = tmp_path / f"{kind}.log"
    command = _command(kind, port)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    running = Server(port, log_path, process)
    try:
        try:
            wait_until(
                lambda: answers(port), process, timeout=STARTUP_SECONDS, what=kind
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{running.log()}") from None
        yield running
    finally:
        stop(process, timeout=10)
    assert " 500 " not in running.log(), running.log()[-3000:]
    assert "Traceback" not in running.log(), running.log()[-3000:]


def article_path(server: Server) -> str:
    listing = exchange(server.port, build("GET", "/api/articles/"))
    assert listing.status == 200
    pk = json.loads(listing.body)["results"][0]["id"]
    return f"/api/articles/{pk}/"


PAGES = {
    "versioned-api": "",  # filled with an article path by the test
    "versioned-html": "",
    "middleware": "/about/",
    "drop-in": "/",
}


def page_path(server: Server, page: str) -> str:
    if page == "versioned-api":
        return article_path(server)
    if page == "versioned-html":
        return article_path(server).removeprefix("/api")
    return PAGES[page]


def current_tag(server: Server, path: str) -> bytes:
    reply = exchange(server.port, build("GET", path))
    assert reply.status == 200, reply
    tag = reply.headers["etag"]
    return tag.removeprefix("W/").encode("latin-1")  # '"..."'


# (name, header fields with b"{tag}" for the page's current quoted tag, allowed statuses)
READ_CASES: list[tuple[str, list[tuple[bytes, bytes]], set[int]]] = [
    ("invalid-utf8-alone", [(b"If-None-Match", b'"\xff\xfe"')], {200}),
    ("invalid-utf8-then-tag", [(b"If-None-Match", b'"\xc3\x28", {tag}')], {304}),
    ("latin1-glued-to-tag", [(b"If-None-Match", b"{tag}\xe9")], {200}),
    ("overlong-utf8", [(b"If-None-Match", b'"\xc0\xaf"')], {200}),
    (
        "two-fields-second-matches",
        [(b"If-None-Match", b'"other"'), (b"If-None-Match", b"{tag}")],
        {304},
    ),
    (
        "two-fields-none-match",
        [(b"If-None-Match", b'"a"'), (b"If-None-Match", b'"b"')],
        {200},
    ),
    (
        "two-fields-star-and-tag",
        [(b"If-None-Match", b"*"), (b"If-None-Match", b'"b"')],
        {200},
    ),
    (
        "two-dates",  # one field with two members: not a valid HTTP-date, ignored
        [
            (b"If-Modified-Since", b"Tue, 02 Jan 2035 00:00:00 GMT"),
            (b"If-Modified-Since", b"Wed, 03 Jan 2035 00:00:00 GMT"),
        ],
        {200},
    ),
    (
        "date-invalid-utf8",
        [(b"If-Modified-Since", b"Tue, 02 Jan 2035 00:00:00 G\xffT")],
        {200},
    ),
    (
        "date-year-10000",
        [(b"If-Modified-Since", b"Sat, 01 Jan 10000 00:00:00 GMT")],
        {200},
    ),
    ("date-negative-epoch", [(b"If-Modified-Since", b"-1")], {200}),
    (
        "date-other-zone",
        [(b"If-Modified-Since", b"Tue, 02 Jan 2035 00:00:00 CET")],
        {200},
    ),
    ("empty-value", [(b"If-None-Match", b"")], {200}),
    ("control-char", [(b"If-None-Match", b'"\x01"')], {200, 400}),
    ("nul", [(b"If-None-Match", b'"\x00", {tag}')], {304, 400}),
    ("bare-cr", [(b"If-None-Match", b'"a"\rX: y')], {200, 400}),
    ("if-match-invalid-utf8", [(b"If-Match", b'"\xff"')], {412}),
    ("if-match-lowercase-w", [(b"If-Match", b"w/{tag}")], {412}),
    ("if-range-garbage", [(b"Range", b"bytes=0-9"), (b"If-Range", b"\xff\xfe")], {200}),
    (
        "accept-encoding-garbage",
        [(b"If-None-Match", b"{tag}"), (b"Accept-Encoding", b"\xff;q=\xfe")],
        {304},
    ),
    (
        "huge-tag-first",
        [(b"If-None-Match", b"{tag}, " + b'"filler", ' * (HUGE // 10))],
        {304},
    ),
    (
        "huge-tag-past-the-cap",
        [
            (
                b"If-None-Match",
                b", ".join(b'"m%d"' % n for n in range(10_000)) + b", {tag}",
            )
        ],
        {200},
    ),
    ("huge-garbage", [(b"If-None-Match", b"\xff" * HUGE)], {200}),
    (
        "huge-date",
        [(b"If-Modified-Since", b"Tue, 02 Jan 2035 00:00:00 GMT " * 2000)],
        {200},
    ),
]


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize(
    ("fields", "allowed"),
    [pytest.param(fields, allowed, id=name) for name, fields, allowed in READ_CASES],
)
def test_hostile_read(
    server: Server, page: str, fields: list[tuple[bytes, bytes]], allowed: set[int]
) -> None:
    path = page_path(server, page)
    tag = current_tag(server, path)
    rendered = [(name, value.replace(b"{tag}", tag)) for name, value in fields]
    started = time.perf_counter()
    reply = exchange(server.port, build("GET", path, rendered))
    elapsed = time.perf_counter() - started
    assert reply.status in allowed, (reply.status, reply.body[:300])
    assert elapsed < 5.0
    if reply.status == 304:
        assert reply.body == b""
        assert reply.headers["etag"].encode("latin-1").endswith(tag)


def write(server: Server, path: str, fields: list[tuple[bytes, bytes]]) -> Reply:
    body = json.dumps({"title": "written over a raw socket"}).encode()
    return exchange(
        server.port, build("PATCH", path, [(b"Authorization", BASIC), *fields], body)
    )


WRITE_CASES: list[tuple[str, list[tuple[bytes, bytes]], int]] = [
    ("if-match-invalid-utf8", [(b"If-Match", b'"\xff\xfe"')], 412),
    ("if-match-invalid-utf8-glued", [(b"If-Match", b"{tag}\xff")], 412),
    (
        "if-match-two-stale-fields",
        [(b"If-Match", b'"old-1"'), (b"If-Match", b'"old-2"')],
        412,
    ),
    ("if-match-weak", [(b"If-Match", b"W/{tag}")], 412),
    ("if-match-star-and-stale", [(b"If-Match", b"*"), (b"If-Match", b'"old"')], 412),
    (
        "if-match-huge-past-the-cap",
        [(b"If-Match", b", ".join(b'"m%d"' % n for n in range(10_000)) + b", {tag}")],
        412,
    ),
    ("if-unmodified-since-invalid-bytes", [(b"If-Unmodified-Since", b"\xff\xfe")], 428),
    (
        "if-unmodified-since-two-dates",
        [
            (b"If-Unmodified-Since", b"Tue, 02 Jan 2035 00:00:00 GMT"),
            (b"If-Unmodified-Since", b"Tue, 02 Jan 2035 00:00:00 GMT"),
        ],
        428,
    ),
    ("if-none-match-only", [(b"If-None-Match", b'"\xff"')], 428),
    (
        "if-match-second-field-current",
        [(b"If-Match", b'"old"'), (b"If-Match", b"{tag}")],
        200,
    ),
]


@pytest.mark.parametrize(
    ("fields", "status"),
    [pytest.param(fields, status, id=name) for name, fields, status in WRITE_CASES],
)
def test_hostile_write(
    server: Server, fields: list[tuple[bytes, bytes]], status: int
) -> None:
    path = article_path(server)
    tag = current_tag(server, path)
    reply = write(server, path, [(n, v.replace(b"{tag}", tag)) for n, v in fields])
    assert reply.status == status, (reply.status, reply.body[:300])
    after = current_tag(server, path)
    if status == 200:
        assert after != tag and reply.headers["etag"].encode() == after
    else:
        assert after == tag  # nothing was written


def test_no_worker_crashed(server: Server) -> None:
    """Every request above got an answer from the application; the server logged no error."""
    assert exchange(server.port, build("GET", "/about/")).status == 200
    log = server.log()
    assert "WORKER TIMEOUT" not in log
    assert "Traceback" not in log, log[-3000:]
