"""Byte ranges behind gunicorn: curl ``--range``, a ``curl -C -`` resumed download of a 20 MB
``FileResponse`` (byte-identical, the workers' peak memory not growing by the file's size), and
raw-socket exchanges of every range status.

The tiny project in tests/middlewareproject serves /download/ with ``FileResponse`` from a file
(MIDDLEWAREPROJECT_DOWNLOAD) through Django's GZip, Session and Common middleware around ours.
"""

from __future__ import annotations

import email.parser
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from example_project.serving import child_pids, listening, stop, wait_until
from tests.test_middleware_server import curl, start_gunicorn
from tests.test_raw_sockets import build, exchange

pytestmark = pytest.mark.server

SIZE = 20 * 1024 * 1024 + 12345  # over 10 MB, and not a multiple of any block size


@dataclass
class Served:
    port: int
    data: Path
    master: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/download/"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if shutil.which("curl") is None:
        pytest.fail("curl is needed for the server tests")
    directory = tmp_path_factory.mktemp("ranges-server")
    content = directory / "article.txt"
    content.write_text("An article.\n")
    data = directory / "big.bin"
    with data.open("wb") as out:
        for _ in range(SIZE // (1024 * 1024)):
            out.write(os.urandom(1024 * 1024))
        out.write(os.urandom(SIZE % (1024 * 1024)))
    process, port = start_gunicorn(
        "tests.middlewareproject.wsgi:application",
        "tests.middlewareproject.settings",
        {
            "MIDDLEWAREPROJECT_CONTENT": str(content),
            "MIDDLEWAREPROJECT_DOWNLOAD": str(data),
        },
        directory / "gunicorn.log",
    )
    try:
        wait_until(lambda: listening(port), process, what="gunicorn")
        yield Served(port, data, process.pid)
    finally:
        stop(process)


def peak_memory_kb(pid: int) -> int:
    """VmHWM: the most resident memory the process ever had (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def test_curl_range(served):
    data = served.data.read_bytes()[:2048]
    single = curl(served.url, "--range", "100-1099")
    assert single.status == 206
    assert single.body == data[100:1100]
    assert single.headers["content-range"] == f"bytes 100-1099/{SIZE}"
    assert single.headers["accept-ranges"] == "bytes"
    assert single.headers["etag"].startswith('"')
    several = curl(served.url, "--range", "0-9,1000-1009")
    assert several.status == 206
    assert several.headers["content-type"].startswith("multipart/byteranges")


def test_curl_resumes_a_large_file_byte_identical_in_bounded_memory(served, tmp_path):
    workers = child_pids(served.master)
    assert workers
    # Warm both workers up (the first request imports and builds what every request uses).
    for _ in range(8):
        assert curl(served.url, "--range", "0-0", "--no-keepalive").status == 206
    before = {pid: peak_memory_kb(pid) for pid in workers}
    target = tmp_path / "download.bin"
    # A download cut short after 7 MB...
    subprocess.run(
        ["curl", "--silent", "--show-error", "--range", f"0-{7 * 1024 * 1024 - 1}",
         "--output", str(target), served.url],
        check=True, timeout=60,
    )  # fmt: skip
    assert target.stat().st_size == 7 * 1024 * 1024
    # ...resumed where it stopped: curl sends Range: bytes=<size>- and appends.
    resumed = subprocess.run(
        ["curl", "--silent", "--show-error", "--continue-at", "-", "--write-out",
         "%{http_code}", "--output", str(target), served.url],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    assert resumed.stdout == b"206"
    assert target.stat().st_size == SIZE
    assert digest(target) == digest(served.data)
    # The whole download once more, then: no worker's peak grew by anything like the file.
    whole = tmp_path / "whole.bin"
    subprocess.run(
        ["curl", "--silent", "--show-error", "--output", str(whole), served.url],
        check=True, timeout=120,
    )  # fmt: skip
    assert digest(whole) == digest(served.data)
    growth = max(peak_memory_kb(pid) - before[pid] for pid in workers)
    assert growth < SIZE // 1024 // 4, f"a worker's peak memory grew by {growth} KB"
    # And a completed download resumed again is told it has everything (416, */length).
    again = subprocess.run(
        ["curl", "--silent", "--continue-at", "-", "--write-out", "%{http_code}",
         "--output", str(target), served.url],
        timeout=60, capture_output=True,
    )  # fmt: skip
    assert again.stdout == b"416"
    assert digest(target) == digest(served.data)


def test_raw_single_range(served):
    reply = exchange(served.port, build("GET", "/download/", [(b"Range", b"bytes=-1")]))
    assert reply.status == 206
    assert reply.body == served.data.read_bytes()[-1:]
    assert reply.headers["content-range"] == f"bytes {SIZE - 1}-{SIZE - 1}/{SIZE}"
    assert reply.headers["content-length"] == "1"


def test_raw_first_byte(served):
    reply = exchange(
        served.port, build("GET", "/download/", [(b"Range", b"bytes=0-0")])
    )
    assert reply.status == 206
    with served.data.open("rb") as source:
        assert reply.body == source.read(1)


def test_raw_multipart(served):
    reply = exchange(
        served.port,
        build("GET", "/download/", [(b"Range", b"bytes=0-99, 5000000-5000099")]),
    )
    assert reply.status == 206
    assert len(reply.body) == int(reply.headers["content-length"])
    message: Any = email.parser.BytesParser().parsebytes(
        f"Content-Type: {reply.headers['content-type']}\r\n\r\n".encode() + reply.body
    )
    with served.data.open("rb") as source:
        head = source.read(100)
        source.seek(5000000)
        middle = source.read(100)
    assert [p.get_payload(decode=True) for p in message.get_payload()] == [head, middle]


@pytest.mark.parametrize("value", [b"bytes=-0", f"bytes={SIZE}-".encode()])
def test_raw_unsatisfiable(served, value):
    reply = exchange(served.port, build("GET", "/download/", [(b"Range", value)]))
    assert reply.status == 416
    assert reply.headers["content-range"] == f"bytes */{SIZE}"


def test_raw_if_range(served):
    tag = exchange(served.port, build("HEAD", "/download/")).headers["etag"].encode()
    current = exchange(
        served.port,
        build("GET", "/download/", [(b"Range", b"bytes=0-9"), (b"If-Range", tag)]),
    )
    assert current.status == 206
    stale = build(
        "GET", "/download/", [(b"Range", b"bytes=0-9"), (b"If-Range", b'"old"')]
    )
    reply = exchange(served.port, stale, timeout=60)
    assert reply.status == 200
    assert len(reply.body) == SIZE


def test_raw_abusive_range_is_ignored(served):
    many = b"bytes=" + b",".join(b"%d-%d" % (n, n) for n in range(60))
    reply = exchange(served.port, build("GET", "/download/", [(b"Range", many)]), 60)
    assert reply.status == 200
    assert len(reply.body) == SIZE
    overlapping = b"bytes=0-10,5-15,8-20"
    reply = exchange(
        served.port, build("GET", "/download/", [(b"Range", overlapping)]), 60
    )
    assert reply.status == 200
    assert len(reply.body) == SIZE
