"""The write fence across real processes: after ``bump`` returns (a write's response would leave
then), no other process answers the old version from its local copy.

Reader processes reach Redis through a proxy that delays what the server sends them by
``DELAY`` (a busy network, another host, a descheduled server): their invalidations arrive late,
which is what the lease and the write fence are for. The test process writes directly. With the
fence, no reader ever answers the old version; the control (``WRITE_FENCE = False``) reports how
often one did (printed; not asserted: it depends on timing).
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from django_conditional import versions
from tests.test_store_faults import REDIS, REDIS_SERVER, ROOT, Redis, caches_for

pytestmark = [
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server on the PATH"),
    pytest.mark.postgres,
]
KEY = "fence-test:1"
LEASE = 0.2
DELAY = 0.05  # less than the lease, so that delayed readers still answer from memory
ROUNDS = 40


class DelayProxy:
    """A TCP proxy to ``port`` that delays every byte the server sends by ``delay`` seconds."""

    def __init__(self, port: int, delay: float) -> None:
        self.target, self.delay = port, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            threading.Thread(
                target=self._pump, args=(client, upstream, 0.0), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, self.delay), daemon=True
            ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
        due: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def send() -> None:
            while True:
                when, data = due.get()
                time.sleep(max(0.0, when - time.monotonic()))
                try:
                    sink.sendall(data)
                except OSError:
                    return
                if not data:
                    sink.close()
                    return

        threading.Thread(target=send, daemon=True).start()
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            due.put((time.monotonic() + delay, data))
            if not data:
                return

    def close(self) -> None:
        for each in self.sockets:
            each.close()


READER = """
import sys
import django
django.setup()
from django_conditional import versions
from django_conditional.store import local
for line in sys.stdin:
    key = line.strip()
    hits = local.stats()["hits"]
    value = versions.read([key]).versions[key]
    print(value, local.stats()["hits"] - hits, flush=True)
"""


@pytest.fixture
def server(redis_process: Redis) -> Redis:
    return redis_process


# A reader that answers through a versioned view, so its 304s are remembered (``answers``): a
# line is the If-None-Match to send ("-": none); it prints the status, the ETag and whether the
# local copy answered.
VIEW_READER = """
import sys
import django
django.setup()
from django.http import HttpResponse
from django.test import RequestFactory
from django_conditional.resources import ObjectOf
from django_conditional.store import local
from django_conditional.versioned_views import versioned
from tests.testapp.models import Article

def page(request, pk):
    return HttpResponse(b"article")

view = versioned(ObjectOf(Article), vary=())(page)
factory = RequestFactory()
for line in sys.stdin:
    tag = line.strip()
    extra = {} if tag == "-" else {"HTTP_IF_NONE_MATCH": tag}
    hits = local.stats()["hits"]
    response = view(factory.get("/articles/1/", **extra), pk=1)
    print(response.status_code, response["ETag"], local.stats()["hits"] - hits, flush=True)
"""
VIEW_KEY = "o:testapp.article:1"


def _readers(
    tmp_path: Path, url: str, count: int, script: str = READER
) -> list[subprocess.Popen[str]]:
    (tmp_path / "fence_reader_settings.py").write_text(
        "from tests.settings import *  # noqa: F403\n"
        f"CACHES = {{'default': {{'BACKEND': {REDIS!r}, 'LOCATION': {url!r},"
        " 'OPTIONS': {'socket_timeout': 5}}}\n"
        f"CONDITIONAL_LEASE_SECONDS = {LEASE!r}\n"
        "CONDITIONAL_LOCAL_CACHE = True\n"
    )
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "fence_reader_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    return [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for _ in range(count)
    ]


def _ask(reader: subprocess.Popen[str]) -> tuple[int, int]:
    assert reader.stdin is not None and reader.stdout is not None
    reader.stdin.write(KEY + "\n")
    reader.stdin.flush()
    value, hit = reader.stdout.readline().split()
    return int(value), int(hit)


@contextmanager
def _behind_a_slow_network(
    fence: bool, tmp_path: Path, server: Redis, script: str
) -> Iterator[list[subprocess.Popen[str]]]:
    """Two readers running ``script`` behind the delaying proxy; this process writes directly,
    with the write fence on or off."""
    proxy = DelayProxy(server.port, DELAY)
    readers = _readers(tmp_path, f"redis://127.0.0.1:{proxy.port}/0", 2, script)
    try:
        with override_settings(
            CACHES=caches_for(server.url),
            CONDITIONAL_LOCAL_CACHE=True,
            CONDITIONAL_LEASE_SECONDS=LEASE,
            CONDITIONAL_WRITE_FENCE=fence,
        ):
            versions.clear_local_state()
            yield readers
    finally:
        for reader in readers:
            reader.kill()
            reader.wait(10)
        proxy.close()


def _rounds(fence: bool, tmp_path: Path, server: Redis) -> dict[str, int]:
    counts = {"reads": 0, "local": 0, "stale": 0, "stale_local": 0}
    with _behind_a_slow_network(fence, tmp_path, server, READER) as readers:
        versions.bump(KEY)
        for _ in range(ROUNDS):
            for reader in readers:
                _ask(reader)  # each holds a copy, with a lease
            written = versions.bump(KEY)[KEY]  # its response would leave now
            for reader in readers:
                value, hit = _ask(reader)
                assert 0 < value <= written
                counts["reads"] += 1
                counts["local"] += hit
                if value != written:
                    counts["stale"] += 1
                    counts["stale_local"] += hit
    print(f"write fence {'on' if fence else 'off'}: {counts}")
    return counts


@pytest.mark.django_db(transaction=True)
def test_no_process_answers_the_old_version_after_a_fenced_write(
    tmp_path: Path, server: Redis
) -> None:
    counts = _rounds(True, tmp_path, server)
    assert counts["stale"] == 0


@pytest.mark.django_db(transaction=True)
def test_control_without_the_write_fence(tmp_path: Path, server: Redis) -> None:
    """The control: what the fence prevents (printed with ``-s``; it depends on timing)."""
    counts = _rounds(False, tmp_path, server)
    assert counts["stale"] == counts["stale_local"]  # only ever from memory


def _revalidate(reader: subprocess.Popen[str], tag: str) -> tuple[int, str, int]:
    assert reader.stdin is not None and reader.stdout is not None
    reader.stdin.write(tag + "\n")
    reader.stdin.flush()
    status, etag, hit = reader.stdout.readline().split()
    return int(status), etag, int(hit)


def _view_rounds(fence: bool, tmp_path: Path, server: Redis) -> dict[str, int]:
    """Readers revalidate through a versioned view (twice: the second 304 is a remembered one),
    then the test process bumps; a 304 for the old tag after the bump returned is stale."""
    counts = {"revalidations": 0, "remembered": 0, "stale": 0}
    with _behind_a_slow_network(fence, tmp_path, server, VIEW_READER) as readers:
        versions.bump(VIEW_KEY)
        for _ in range(ROUNDS):
            tags = [_revalidate(reader, "-")[1] for reader in readers]
            for reader, tag in zip(readers, tags, strict=True):
                computed = _revalidate(reader, tag)[0]
                # (Without the fence the tag itself may have been a stale answer.)
                assert computed == 304 or not fence
                status, _, hit = _revalidate(reader, tag)  # remembered, from memory
                counts["remembered"] += status == 304 and hit
            versions.bump(VIEW_KEY)  # its response would leave now
            for reader, tag in zip(readers, tags, strict=True):
                counts["revalidations"] += 1
                counts["stale"] += _revalidate(reader, tag)[0] == 304
    print(f"remembered 304s, write fence {'on' if fence else 'off'}: {counts}")
    return counts


@pytest.mark.django_db(transaction=True)
def test_no_remembered_304_for_the_old_tag_after_a_fenced_write(
    tmp_path: Path, server: Redis
) -> None:
    counts = _view_rounds(True, tmp_path, server)
    assert counts["remembered"] > 0  # the path under test was taken
    assert counts["stale"] == 0


@pytest.mark.django_db(transaction=True)
def test_control_remembered_304s_without_the_write_fence(
    tmp_path: Path, server: Redis
) -> None:
    """The control: stale remembered 304s the fence prevents (printed with ``-s``)."""
    counts = _view_rounds(False, tmp_path, server)
    assert counts["revalidations"] == 2 * ROUNDS
