"""The version store against real redis-server processes of the test's own: a replica that lags,
a restart from a snapshot taken before a bump, a FLUSHDB, and a cache write that fails in one
worker while another reads. After each: no stale 304, and correct answers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.cache import caches
from django.test import Client, override_settings

from django_conditional import fastcache, redis_adapter, versions
from django_conditional.store import cache as store_cache
from django_conditional.store import database as store_database
from django_conditional.store import scripts as store_scripts
from example_project.serving import free_port
from tests.testapp.models import Article, Author

REDIS_SERVER = shutil.which("redis-server")
REDIS = "django.core.cache.backends.redis.RedisCache"
ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server on the PATH"),
    pytest.mark.urls("tests.urls_versioned"),
]


class Redis:
    """A redis-server on a free loopback port, with its own directory (for snapshots)."""

    def __init__(self, directory: Path, *extra: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no",
                "--dir", str(self.directory), "--dbfilename", "dump.rdb",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while self.call("PING") not in (True, "PONG"):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def call(self, *words: str) -> Any:
        import redis

        try:
            return redis.Redis(port=self.port, decode_responses=True).execute_command(
                *words
            )
        except redis.ConnectionError:
            return None


@pytest.fixture
def redis_dir(tmp_path: Path) -> Path:
    return tmp_path / "redis"


@pytest.fixture
def primary(redis_dir: Path) -> Iterator[Redis]:
    server = Redis(redis_dir / "primary")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def caches_for(*urls: str) -> dict[str, Any]:
    options = {"socket_timeout": 2, "socket_connect_timeout": 2}
    location: str | list[str] = urls[0] if len(urls) == 1 else list(urls)
    return {"default": {"BACKEND": REDIS, "LOCATION": location, "OPTIONS": options}}


def _tag(client: Client, article: Article) -> str:
    response = client.get(f"/articles/{article.pk}/")
    assert response.status_code == 200
    etag: str = response.headers["ETag"]
    return etag


def _revalidate(client: Client, article: Article, tag: str) -> int:
    response = client.get(f"/articles/{article.pk}/", headers={"If-None-Match": tag})
    return response.status_code


def _edit(article: Article, title: str) -> None:
    article.title = title
    article.save()


@pytest.fixture
def article(db: None) -> Article:
    author = Author.objects.create(name="Ada")
    created: Article = Article.objects.create(author=author, title="One", body="b")
    return created


@pytest.mark.django_db(transaction=True)
def test_a_restart_from_a_snapshot_taken_before_a_bump_serves_no_stale_304(
    primary: Redis, article: Article
) -> None:
    client = Client()
    with override_settings(CACHES=caches_for(primary.url)):
        versions.clear_local_state()
        old = _tag(client, article)
        assert _revalidate(client, article, old) == 304  # served from the cache
        assert primary.call("SAVE") in (
            True,
            "OK",
        )  # the snapshot holds the old version
        _edit(article, "Two")
        new = _tag(client, article)
        assert new != old
        primary.stop()
        primary.start()  # loads the snapshot: the cache went back in time
        assert primary.call("DBSIZE") > 0
        for _ in range(5):
            assert _revalidate(client, article, old) == 200, "a stale 304"
            assert _revalidate(client, article, new) == 304


@pytest.mark.django_db(transaction=True)
def test_a_flushdb_serves_no_stale_304_even_against_a_late_fill(
    primary: Redis, article: Article
) -> None:
    client = Client()
    with override_settings(CACHES=caches_for(primary.url)):
        versions.clear_local_state()
        old = _tag(client, article)
        key = versions.object_key(article)
        before = int(versions.cache_key(key).split(":")[-4])
        stale = store_database.read_stamps(
            [key]
        )  # a reader's database read, before the bump
        _edit(article, "Two")
        new = _tag(client, article)
        assert primary.call("FLUSHDB") in (True, "OK")
        assert _revalidate(client, article, new) == 304  # the database answers
        store_cache.fill(caches["default"], before, stale)  # that reader's late fill
        for _ in range(5):
            assert _revalidate(client, article, old) == 200, "a stale 304"
            assert _revalidate(client, article, new) == 304
        assert versions.get(key) == store_database.read([key])[key]


@pytest.mark.django_db(transaction=True)
def test_a_lagging_replica_never_answers_for_a_superseded_version(
    primary: Redis, redis_dir: Path, article: Article
) -> None:
    replica = Redis(
        redis_dir / "replica", "--replicaof", "127.0.0.1", str(primary.port)
    )
    replica.start()
    try:
        client = Client()
        with override_settings(CACHES=caches_for(primary.url, replica.url)):
            versions.clear_local_state()
            old = _tag(client, article)
            deadline = time.monotonic() + 10
            while replica.call("DBSIZE") != primary.call("DBSIZE"):
                assert time.monotonic() < deadline, "the replica never synced"
                time.sleep(0.05)
            assert replica.call("REPLICAOF", "NO", "ONE") in (
                True,
                "OK",
            )  # it stops following
            _edit(article, "Two")
            new = _tag(client, article)
            # Django reads other keys from a random server; versions come from the primary.
            for _ in range(20):
                assert _revalidate(client, article, old) == 200, "a stale 304"
                assert _revalidate(client, article, new) == 304
    finally:
        replica.stop()


READER = """
import os, sys
sys.path.insert(0, {root!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
from django_conditional import versions
print(versions.get({key!r}))
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failed_publication_in_one_worker_is_distrusted_by_another(
    primary: Redis, article: Article, settings: Any
) -> None:
    """Worker A commits a bump whose cache write fails; worker B (another process) reads."""
    config = caches_for(primary.url)
    with override_settings(CACHES=config):
        versions.clear_local_state()
        key = versions.object_key(article)
        assert versions.get(key) == 1  # cached in the live epoch
        writer = store_scripts.monotonic_writer(caches["default"])
        assert writer is not None
        real = writer.write

        def publication_fails(mode: str, *args: Any, **kwargs: Any) -> Any:
            if mode == "publish":
                raise ConnectionError("the cache went away after the commit")
            return real(mode, *args, **kwargs)

        with mock.patch.object(writer, "write", publication_fails):
            _edit(article, "Two")  # commits version 2; its publication fails
        current = store_database.read([key])[key]
        assert current == 2
        db = settings.DATABASES["default"]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            # The other worker: the same database and the same Redis, another process.
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": primary.url,
        }
        run = subprocess.run(
            [sys.executable, "-c", READER.format(root=str(ROOT), key=key)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        seen = run.stdout.split()[-1]
        assert int(seen) == current, "another worker trusted the old cached version"
        assert json.loads(seen) == versions.get(key)


@pytest.mark.django_db(transaction=True)
def test_a_foreign_value_at_the_epoch_key_is_replaced_not_kept_forever(
    primary: Redis,
) -> None:
    """Something else wrote the epoch key: nothing cached is trusted while it is there, and the
    next read replaces it, so versions are cached again (not read from the database for good)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_conditional.store import epoch

    with override_settings(CACHES=caches_for(primary.url)):
        versions.clear_local_state()
        versions.bump("c:foreign-epoch")
        assert versions.get("c:foreign-epoch") == 1
        server = fastcache.server_id(caches["default"])
        assert server is not None and server.startswith(primary.call("INFO")["run_id"])
        primary.call("SET", caches["default"].make_key(epoch.key(server)), "garbage")
        versions.clear_local_state()
        assert versions.get("c:foreign-epoch") == 1  # from the database
        with CaptureQueriesContext(connection) as queries:
            assert versions.get("c:foreign-epoch") == 1
        assert len(queries) == 0  # cached again in a new epoch


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("served_check", [True, False], ids=["served", "control"])
def test_a_read_is_trusted_by_the_server_that_answered_it(
    primary: Redis, redis_dir: Path, served_check: bool
) -> None:
    """After a failover a process may keep a connection to the promoted replica while its idea
    of the server still names the old master (a writer's script on the old master said so). The
    promoted replica holds a copy of the old master's epoch key and versions, as of the
    failover: a read it answers must not be trusted as the old master's."""
    from django_conditional.store import served

    key = "served:1"
    replica = Redis(
        redis_dir / "replica", "--replicaof", "127.0.0.1", str(primary.port)
    )
    replica.start()
    try:
        with override_settings(CACHES=caches_for(primary.url)):
            versions.clear_local_state()
            cache = caches["default"]
            versions.bump(key)
            assert versions.get(key) == 1  # cached in the old master's epoch
            old = fastcache.server_id(cache)
            deadline = time.monotonic() + 10
            while replica.call("DBSIZE") != primary.call("DBSIZE"):
                assert time.monotonic() < deadline, "the replica never synced"
                time.sleep(0.05)
            assert replica.call("REPLICAOF", "NO", "ONE") in (True, "OK")  # promoted
            versions.bump(key)  # on the old master: 2
            reader = fastcache._reader(cache)
            assert reader is not None
            template = reader._template
            options = {**template.connection_kwargs, "port": replica.port}
            to_replica = template.connection_class(**options)
            to_replica.connect()
            to_replica.conditional_server = redis_adapter.server_identity(
                replica.call("INFO")
            )
            reader._idle[:] = [
                to_replica
            ]  # the kept connection goes to the promoted replica
            reader.server_id = old  # while the process still believes the old master
            # The control: trust checked against the process's idea of the server, as before.
            believed = mock.patch.object(served, "by", lambda: old)
            with contextlib.nullcontext() if served_check else believed:
                found = versions.get(key)
            assert found == (2 if served_check else 1)
    finally:
        replica.stop()
