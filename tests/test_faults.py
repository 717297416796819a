"""Faults (issue 8, item 2): Redis down, slow, partitioned or evicting; the database failing on
the version lookup; rolled-back bumps; a gunicorn worker killed mid-request.

Every case: answers come right from the database (the source of truth), no stale 304, no 500
where the database still answers, a warning is logged, and the cache heals once Redis is back.
Each test runs its own ``redis-server`` on a free port (never the machine's shared one), and
in-process requests go through the versioned views of tests/urls_hostile.py, sync and async.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import caches
from django.db import DatabaseError, OperationalError, connection, transaction
from django.test import AsyncClient, Client, override_settings
from django.test.utils import CaptureQueriesContext

from django_conditional import versions
from django_conditional.conf import conf
from django_conditional.store import database as store_database
from example_project.blog.testing import ROOT, demo_env, prepare_database
from example_project.serving import child_pids, free_port, stop, wait_until
from tests import urls_hostile
from tests.test_raw_sockets import (
    RedisServer,
    answers,
    build,
    exchange,
    own_redis,
)
from tests.testapp.models import Article, Author

pytestmark = [
    pytest.mark.urls("tests.urls_hostile"),
    # Bumps reach the cache in transaction.on_commit: run in real transactions.
    pytest.mark.django_db(transaction=True),
]

REDIS = "django.core.cache.backends.redis.RedisCache"
TIMEOUT = 0.25  # the cache client's socket timeouts (seconds)


def redis_caches(url: str) -> dict[str, Any]:
    options = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}
    return {"default": {"BACKEND": REDIS, "LOCATION": url, "OPTIONS": options}}


class Proxy:
    """A TCP proxy to Redis that can delay every chunk or cut every connection (a partition)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay = 0.0
        self.cut = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            if self.cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(
                    ("127.0.0.1", self.target_port), timeout=2
                )
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(
                target=self._pipe, args=(client, upstream), daemon=True
            ).start()

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set() and not self.cut:
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self.delay:
                        time.sleep(self.delay)
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def partition(self) -> None:
        """Drop every open connection and refuse new ones."""
        self.cut = True
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def heal(self) -> None:
        self.cut = False

    def close(self) -> None:
        self._stop.set()
        self.partition()
        self.listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with own_redis() as server:
        yield server


@pytest.fixture
def article() -> Iterator[Article]:
    urls_hostile.WRITES.clear()
    versions.clear_local_state()
    author = Author.objects.create(name="faults")
    yield Article.objects.create(author=author, title="original", body="")
    versions.clear_local_state()


@dataclass
class Site:
    """Requests to one versioned page, sync or async, and what the oracle needs."""

    path: str
    is_async: bool
    history: list[str] = field(default_factory=list)  # every tag the page had, in order

    def request(self, method: str, **headers: str) -> Any:
        if self.is_async:
            client = AsyncClient()

            async def go() -> Any:
                return await client.generic(method, self.path, headers=headers)

            return async_to_sync(go)()
        return Client().generic(method, self.path, headers=headers)

    def get(self, **headers: str) -> Any:
        started = time.perf_counter()
        response = self.request("GET", **headers)
        assert time.perf_counter() - started < 5 * TIMEOUT + 2.0
        assert response.status_code in {200, 304}, response.status_code
        return response

    def current(self) -> str:
        """GET without validators: must be 200 and carry the latest tag the writer saw."""
        response = self.get()
        assert response.status_code == 200
        tag: str = response["ETag"]
        if self.history:
            assert tag == self.history[-1], "a stale ETag"
        else:
            self.history.append(tag)
        return tag

    def write(self) -> str:
        """A conditional write with the current tag: 2xx with the new tag (from the database)."""
        response = self.request("PUT", if_match=self.history[-1])
        assert response.status_code == 204, response.status_code
        tag: str = response["ETag"]
        assert tag not in self.history
        self.history.append(tag)
        return tag

    def check(self) -> None:
        """Revalidate with every tag the page had: 304 only for the current one."""
        current = self.history[-1]
        for tag in self.history:
            response = self.get(if_none_match=tag)
            if tag == current:
                assert response.status_code == 304, "no 304 for the current tag"
            else:
                assert response.status_code == 200, f"a stale 304 for {tag}"
                assert response["ETag"] == current
        stale = self.history[:-1]
        if stale:
            assert self.request("PUT", if_match=stale[-1]).status_code == 412


SITES = [
    pytest.param("/versioned/{pk}/", False, id="sync"),
    pytest.param("/versioned-async/{pk}/", True, id="async"),
]


def make_site(article: Article, template: str, is_async: bool) -> Site:
    return Site(template.format(pk=article.pk), is_async)


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("django_conditional") and r.levelno >= logging.WARNING
    ]


def key_count(server: RedisServer) -> int:
    reply = server.command("DBSIZE")
    return int(reply.strip()[1:])


# Redis stopped ------------------------------------------------------------------------------


@pytest.mark.parametrize(("template", "is_async"), SITES)
def test_redis_down_from_the_start(
    article: Article, template: str, is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    site = make_site(article, template, is_async)
    with (
        override_settings(CACHES=redis_caches(closed)),
        caplog.at_level(logging.WARNING),
    ):
        site.current()
        site.check()
        site.write()
        site.check()
        site.write()
        site.check()
    assert warnings_logged(caplog)


@pytest.mark.parametrize(("template", "is_async"), SITES)
def test_redis_stops_mid_run_and_the_cache_heals_when_it_returns(
    article: Article,
    template: str,
    is_async: bool,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = make_site(article, template, is_async)
    with override_settings(CACHES=redis_caches(redis_server.url)):
        site.current()
        site.check()
        assert key_count(redis_server) > 0  # the versions are cached
        redis_server.stop()
        with caplog.at_level(logging.WARNING):
            site.write()  # bumped in the database; the cache cannot hear of it
            site.check()
        assert warnings_logged(caplog)
        redis_server.start()  # empty: --save ""
        site.check()
        assert key_count(redis_server) > 0  # reads refilled it
        site.write()
        site.check()
        if not is_async:
            # Healed: a 304 costs no database query again.
            with CaptureQueriesContext(connection) as queries:
                assert site.get(if_none_match=site.history[-1]).status_code == 304
            assert len(queries) == 0, [q["sql"] for q in queries]


@pytest.mark.parametrize(("template", "is_async"), SITES)
def test_a_partition_during_a_bump_never_leaves_a_stale_version(
    article: Article,
    template: str,
    is_async: bool,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis keeps the old version while it is unreachable for the bump's cache write; once it
    answers again, this process must not trust (and must repair) what it holds."""
    proxy = Proxy(redis_server.port)
    try:
        site = make_site(article, template, is_async)
        with override_settings(CACHES=redis_caches(proxy.url)):
            site.current()
            site.check()
            proxy.partition()
            with caplog.at_level(logging.WARNING):
                site.write()
            assert warnings_logged(caplog)
            proxy.heal()
            site.check()  # the old version still sits in Redis: never a 304 for it
            site.write()
            site.check()
    finally:
        proxy.close()


@pytest.mark.parametrize(("template", "is_async"), SITES)
def test_slow_redis_times_out_and_the_database_answers(
    article: Article,
    template: str,
    is_async: bool,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = Proxy(redis_server.port)
    try:
        site = make_site(article, template, is_async)
        with override_settings(CACHES=redis_caches(proxy.url)):
            site.current()
            proxy.delay = 4 * TIMEOUT  # every reply arrives after the client gave up
            with caplog.at_level(logging.WARNING):
                site.check()
                site.write()
                site.check()
            assert warnings_logged(caplog)
            proxy.delay = 0.0
            site.write()
            site.check()
    finally:
        proxy.close()


@pytest.mark.parametrize(("template", "is_async"), SITES)
def test_keys_evicted_mid_run(
    article: Article, template: str, is_async: bool, redis_server: RedisServer
) -> None:
    site = make_site(article, template, is_async)
    with override_settings(CACHES=redis_caches(redis_server.url)):
        site.current()
        for round_ in range(4):
            redis_server.command("FLUSHDB")
            site.check()
            if round_ % 2:
                redis_server.command("FLUSHDB")
            site.write()
            redis_server.command("FLUSHDB")
            site.check()


# The database -------------------------------------------------------------------------------


@pytest.mark.parametrize(("template", "is_async"), SITES)
def test_database_failing_on_the_version_lookup(
    article: Article, template: str, is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A warm cache answers without the database; a cold one cannot validate, so the view answers
    (200, no validator) and never a 304; no 500 while the database still serves the page."""
    site = make_site(article, template, is_async)
    caches[conf.CACHE_ALIAS].clear()
    tag = site.current()
    broken = mock.patch.object(
        store_database,
        "read_stamps",
        side_effect=OperationalError("version table down"),
    )
    with broken as read_db, caplog.at_level(logging.WARNING):
        assert site.get(if_none_match=tag).status_code == 304
        assert read_db.call_count == 0
        caches[conf.CACHE_ALIAS].clear()
        response = site.request("GET", if_none_match=tag)
        assert read_db.call_count >= 1
        assert response.status_code == 200
        assert "ETag" not in response
        assert response.content.startswith(b"original")
    assert warnings_logged(caplog)
    # Back to normal: validated again.
    assert site.get(if_none_match=tag).status_code == 304


@pytest.mark.parametrize(("template", "is_async"), SITES)
def test_a_rolled_back_bump_leaves_no_trace(
    article: Article, template: str, is_async: bool, redis_server: RedisServer
) -> None:
    site = make_site(article, template, is_async)
    key = versions.object_key(article)
    with override_settings(CACHES=redis_caches(redis_server.url)):
        site.current()
        site.check()
        before = versions.get(key)
        with contextlib.suppress(RuntimeError), transaction.atomic():
            article.title = "never committed"
            article.save()  # tracked: bumps inside the transaction
            assert versions.bump(key)[key] > before + 1  # visible inside it
            raise RuntimeError("roll back")
        assert versions.get(key) == before
        site.check()  # the old tag is still current: 304, and nothing else changed
        site.write()
        site.check()


def test_a_write_whose_view_fails_after_saving_is_rolled_back(
    article: Article, redis_server: RedisServer
) -> None:
    site = make_site(article, "/versioned/{pk}/", False)
    with override_settings(CACHES=redis_caches(redis_server.url)):
        site.current()
        failing = mock.patch.object(
            Article, "save", autospec=True, side_effect=DatabaseError("disk full")
        )
        with failing, pytest.raises(DatabaseError):
            site.request("PUT", if_match=site.history[-1])
        article.refresh_from_db()
        assert article.title == "original"
        site.check()
        site.write()
        site.check()


# A worker killed mid-request ----------------------------------------------------------------


@pytest.mark.server
def test_a_worker_killed_mid_request_leaves_the_others_correct(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = fast_auth_env(tmp_path, redis_server.url)
    prepare_database(env)
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    command = [
        sys.executable, "-m", "gunicorn", "example_project.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", "3", "--timeout", "20",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        try:
            wait_until(
                lambda: len(child_pids(process.pid)) >= 3 and answers(port),
                process,
                timeout=30,
                what="gunicorn",
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{log_path.read_text()}") from None
        _run_with_a_kill(port, process.pid)
        # The master replaced the worker; every worker answers.
        wait_until(
            lambda: len(child_pids(process.pid)) >= 3,
            process,
            timeout=20,
            what="gunicorn's new worker",
        )
        for _ in range(12):
            assert exchange(port, build("GET", "/about/")).status == 200
    finally:
        stop(process, timeout=10)
    assert " 500 " not in log_path.read_text()


def fast_auth_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """The demo's environment with its own Redis, and a settings module that wraps the demo's
    with a fast password hasher: the API's Basic auth otherwise spends ~0.3 s of PBKDF2 per write."""
    module_dir = tmp_path / "settings_module"
    module_dir.mkdir()
    (module_dir / "fast_demo_settings.py").write_text(
        "from example_project.settings import *  # noqa: F403\n"
        'PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]\n'
    )
    env = demo_env(tmp_path / "demo.sqlite3")
    env["REDIS_URL"] = redis_url
    env["DJANGO_SETTINGS_MODULE"] = "fast_demo_settings"
    env["PYTHONPATH"] = os.pathsep.join([str(module_dir), str(ROOT)])
    return env


def _worker_serving(client: socket.socket, server_port: int, workers: list[int]) -> int:
    """The worker process holding the server side of ``client``'s connection (from /proc)."""
    client_port = client.getsockname()[1]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        inodes = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                inodes.add(f"socket:[{fields[9]}]")
        for pid in workers:
            with contextlib.suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) in inodes:
                            return pid
        time.sleep(0.05)
    raise AssertionError("no worker took the connection")


def _kill_a_worker_in_the_middle_of_a_write(port: int, master: int, path: str) -> None:
    """A write in flight: headers and part of the body sent, so the worker is inside the view (and
    its transaction), waiting for the rest. That worker is killed: the write never happens."""
    body = json.dumps({"title": "never finished"}).encode()
    raw = build("PATCH", path, [BASIC, (b"If-Match", b"*")], body)
    in_flight = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        in_flight.sendall(raw[: -len(body) + 3])
        victim = _worker_serving(in_flight, port, child_pids(master))
        os.kill(victim, signal.SIGKILL)
        with contextlib.suppress(ConnectionResetError):
            assert in_flight.recv(65536) == b""  # no answer from the dead worker
    finally:
        in_flight.close()


BASIC = (b"Authorization", b"Basic ZGVtbzpkZW1v")  # demo:demo


def _run_with_a_kill(port: int, master: int, seconds: float = 6.0) -> None:
    listing = json.loads(exchange(port, build("GET", "/api/articles/")).body)
    path = f"/api/articles/{listing['results'][0]['id']}/"
    first = exchange(port, build("GET", path))
    history: list[tuple[float, str]] = [
        (0.0, first.headers["etag"])
    ]  # (received at, tag)
    observations: list[
        tuple[float, str, int, str]
    ] = []  # (sent at, tag sent, status, etag)
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def writer() -> None:
        while not stop.is_set():
            with lock:
                tag = history[-1][1]
            body = json.dumps({"title": f"title {time.monotonic()}"}).encode()
            try:
                reply = exchange(
                    port,
                    build("PATCH", path, [BASIC, (b"If-Match", tag.encode())], body),
                )
            except OSError as exc:  # a request on the killed worker
                failures.append(f"write: {exc}")
                if len(failures) > 20:
                    return
                continue
            if reply.status == 200:
                with lock:
                    history.append((time.monotonic(), reply.headers["etag"]))
            elif reply.status != 412:  # 412: the kill lost our reply, the tag moved on
                failures.append(f"write status {reply.status}")
            if reply.status == 412:
                with contextlib.suppress(OSError):
                    fresh = exchange(port, build("GET", path))
                    with lock:
                        history.append((time.monotonic(), fresh.headers["etag"]))

    def reader() -> None:
        while not stop.is_set():
            with lock:
                tags = [tag for _, tag in history[-3:]]
            for tag in tags:
                sent = time.monotonic()
                try:
                    reply = exchange(
                        port, build("GET", path, [(b"If-None-Match", tag.encode())])
                    )
                except OSError as exc:
                    failures.append(f"read: {exc}")
                    if len(failures) > 20:
                        return
                    continue
                observations.append(
                    (sent, tag, reply.status, reply.headers.get("etag", ""))
                )

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(seconds / 3)
        _kill_a_worker_in_the_middle_of_a_write(port, master, path)
        time.sleep(2 * seconds / 3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert len(history) > 3 and len(observations) > 50, (
        len(history),
        len(observations),
    )
    # Oracle: a tag is stale once the writer received a later tag; no 304 for it afterwards.
    superseded = {tag: history[i + 1][0] for i, (_, tag) in enumerate(history[:-1])}
    for sent, tag, status, etag in observations:
        assert status in {200, 304}, status
        if status == 304:
            assert tag not in superseded or sent < superseded[tag], "stale 304"
        else:
            assert etag not in superseded or sent < superseded[etag], "stale 200"
    # No write lost: the page is what the last successful write made it.
    assert exchange(port, build("GET", path)).headers["etag"] == history[-1][1]
    # Connection errors only from the killed worker's in-flight requests.
    assert len(failures) <= 4, failures


# The load oracle's checker (bench/load_oracle.py) must catch what it claims to --------------


def _oracle_record(
    backdoor: list[dict[str, Any]] | None = None, **changes: Any
) -> tuple[Any, dict[str, tuple[str | None, str]], list[Any], list[str]]:
    from bench.load_oracle import Read, Record, Write
    from bench.load_oracle import changes as changes_of

    path = "/api/articles/1/"
    record = Record()
    record.writes = [
        Write(path, '"t0"', "first", sent=1.0, received=2.0, status=200, etag='"t1"'),
        Write(path, '"t1"', "second", sent=3.0, received=4.0, status=200, etag='"t2"'),
        Write(path, '"t1"', "late", sent=3.5, received=4.5, status=412, etag='"t2"'),
    ]
    record.reads = [
        Read(
            path, "GET", '"t0"', sent=1.5, received=1.6, status=304, etag='"t0"'
        ),  # in time
        Read(path, "GET", '"t1"', sent=5.0, received=5.1, status=200, etag='"t2"'),
        Read(path, "HEAD", '"t2"', sent=5.0, received=5.1, status=304, etag='"t2"'),
    ]
    record.first_seen = {(path, '"t0"'): 0.5, (path, '"t1"'): 2.0, (path, '"t2"'): 4.0}
    for name, value in changes.items():
        getattr(record, name).append(value)
    found = changes_of(record, backdoor or [], [path], {1: path})
    return record, {path: ('"t2"', "second")}, found, [path]


def test_the_load_oracle_passes_a_correct_history() -> None:
    from bench.load_oracle import check

    assert check(*_oracle_record()) == []


def test_the_load_oracle_catches_a_stale_304_and_a_stale_200() -> None:
    from bench.load_oracle import Read, check

    path = "/api/articles/1/"
    stale_304 = Read(
        path, "GET", '"t1"', sent=4.1, received=4.2, status=304, etag='"t1"'
    )
    (violation,) = check(*_oracle_record(reads=stale_304))
    assert violation.startswith("stale 304")
    stale_200 = Read(
        path, "HEAD", None, sent=4.1, received=4.2, status=200, etag='"t1"'
    )
    (violation,) = check(*_oracle_record(reads=stale_200))
    assert violation.startswith("stale 200")


def test_the_load_oracle_catches_a_stale_304_after_a_back_office_write() -> None:
    from bench.load_oracle import Read, check

    path = "/api/articles/1/"
    author_edit = {
        "kind": "author",
        "ids": [],
        "all": True,
        "started": 4.2,
        "committed": 4.3,
    }
    after = Read(path, "GET", '"t2"', sent=4.4, received=4.5, status=304, etag='"t2"')
    violations = check(*_oracle_record(backdoor=[author_edit], reads=after))
    # The new read, and the history's own 200 and 304 carrying "t2" at 5.0: all after the
    # edit ended, which made "t2" (first seen at 4.0) stale.
    assert len(violations) == 3
    assert all(v.startswith("stale ") and "author" in v for v in violations)
    during = Read(path, "GET", '"t2"', sent=4.25, received=4.5, status=304, etag='"t2"')
    assert len(check(*_oracle_record(backdoor=[author_edit], reads=during))) == 2


def test_the_load_oracle_catches_a_double_success_and_a_lost_write() -> None:
    from bench.load_oracle import Write, check

    path = "/api/articles/1/"
    double = Write(
        path, '"t1"', "third", sent=3.2, received=4.4, status=200, etag='"t3"'
    )
    violations = check(*_oracle_record(writes=double))
    assert any("2 writes succeeded with If-Match" in v for v in violations)
    record, _final, found, paths = _oracle_record()
    lost = check(record, {path: ('"t2"', "first")}, found, paths)
    assert lost and "final title" in lost[0]
