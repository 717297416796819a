"""Redis Sentinel through django-redis: versions are read and written on the current master, a
failover changes the epoch, and a former master that still takes commands is retired, so no
stale 304 follows a write, against a primary, a replica and three sentinels of the test's own
(``tests.redis_topology``).

The load run across a forced failover is ``bench/load_oracle.py --sentinel`` (CI's make load)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import redis
from asgiref.sync import async_to_sync
from django.core.cache import caches
from django.db import connections, transaction
from django.test import Client, override_settings

from django_conditional import fastcache, redis_adapter, versions
from django_conditional.store import local
from django_conditional.store import scripts as store_scripts
from example_project.blog.models import Article, Author
from tests.redis_topology import SentinelTopology, find_binary

pytest.importorskip("django_redis")
pytestmark = [
    pytest.mark.skipif(
        find_binary("redis-sentinel") is None or find_binary("redis-server") is None,
        reason="needs redis-server and redis-sentinel (scripts/ensure-redis-sentinel)",
    ),
    pytest.mark.urls("example_project.urls"),
]

KEY = "sentinel:1"
DB = 3
# Sentinel reconfigures a former master with SLAVEOF (in a MULTI with CLIENT KILL): without the
# command, the former master stays a master that takes commands, and its clients stay connected:
# the split that a forced failover shows for ~10 s, made to last for the test.
UNRECONFIGURABLE = (
    "--rename-command",
    "SLAVEOF",
    "",
    "--rename-command",
    "REPLICAOF",
    "",
)


def _caches(topology: SentinelTopology, client: str) -> dict[str, Any]:
    entry = topology.django_redis_cache_settings(
        db=DB, CLIENT_CLASS=f"django_redis.client.{client}"
    )
    entry["OPTIONS"].update(SOCKET_TIMEOUT=2, SOCKET_CONNECT_TIMEOUT=2)
    return {"default": entry}


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelTopology]:
    with SentinelTopology(tmp_path_factory.mktemp("sentinel")) as started:
        yield started


def _master_identity(topology: SentinelTopology) -> str:
    _, port = topology.master_address()
    info = topology.call(port, "INFO")
    return f"{info['run_id']}.{info['master_replid']}"


@pytest.mark.parametrize("local_cache", [False, True], ids=["one-read", "local"])
@pytest.mark.parametrize("client", ["SentinelClient", "DefaultClient"])
@pytest.mark.django_db(transaction=True)
def test_versions_go_to_the_master(
    topology: SentinelTopology, client: str, local_cache: bool
) -> None:
    with override_settings(
        CACHES=_caches(topology, client), CONDITIONAL_LOCAL_CACHE=local_cache
    ):
        versions.clear_local_state()
        cache = caches["default"]
        assert local.is_on(cache) is local_cache
        described = redis_adapter.backend(cache)
        assert described is not None and described.locate is not None
        assert described.locate() == topology.master_address()
        address = described.primary_address()
        assert address is not None and address.endpoint() == topology.master_address()
        with transaction.atomic():
            versions.bump(KEY)
        current = versions.get(KEY)
        assert current >= 1
        assert fastcache.server_id(cache) == _master_identity(topology)
        # Async reads: Sentinel's options have no asyncio twin, so the sync read, in a thread.
        assert async_to_sync(versions.aget_many)([KEY]) == {KEY: current}


@pytest.mark.parametrize("local_cache", [False, True], ids=["one-read", "local"])
@pytest.mark.django_db(transaction=True)
def test_a_failover_changes_the_epoch_and_no_304_is_stale(
    topology: SentinelTopology, local_cache: bool
) -> None:
    with override_settings(
        CACHES=_caches(topology, "SentinelClient"),
        CONDITIONAL_LOCAL_CACHE=local_cache,
        CONDITIONAL_LEASE_SECONDS=0.05,
    ):
        versions.clear_local_state()
        assert local.is_on(caches["default"]) is local_cache
        article = Article.objects.create(
            author=Author.objects.create(name="Ada"), title="One", body="b"
        )
        client, path = Client(), f"/articles/{article.pk}/"
        tag = client.get(path).headers["ETag"]
        assert client.get(path, headers={"If-None-Match": tag}).status_code == 304
        before = fastcache.server_id(caches["default"])
        topology.failover()
        # The old master's connections were closed; the next read reaches the new master, a
        # server identity (and so an epoch) never seen: the database answers, rightly 304.
        assert client.get(path, headers={"If-None-Match": tag}).status_code == 304
        assert fastcache.server_id(caches["default"]) not in (None, before)
        assert fastcache.server_id(caches["default"]) == _master_identity(topology)
        article.title = "Two"
        article.save()
        after = client.get(path, headers={"If-None-Match": tag})
        assert after.status_code == 200 and b"Two" in after.content


def _bump_elsewhere(topology: SentinelTopology) -> None:
    """A bump from a process that started after the failover: a cache object and pool of its
    own (django-redis keeps pools per process), so it reaches the new master."""
    topology.forget_django_redis_pools()

    def bump() -> None:
        try:
            with transaction.atomic():
                versions.bump(KEY)
        finally:
            connections.close_all()

    thread = threading.Thread(target=bump)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()


def _named_by_all(topology: SentinelTopology, old: tuple[str, int]) -> str | None:
    """None once every sentinel names another master than ``old``."""
    for _, port in topology.sentinels:
        named = topology.call(
            port, "SENTINEL", "get-master-addr-by-name", topology.service_name
        )
        if int(named[1]) == old[1]:
            return f"sentinel {port} still names {old}"
    return None


@pytest.mark.parametrize("retire", [True, False], ids=["retired", "control"])
@pytest.mark.django_db(transaction=True)
def test_a_former_master_still_taking_commands_is_retired(
    tmp_path: Path, retire: bool
) -> None:
    """This process keeps its connections to the former master (Sentinel could not demote it);
    another bumps on the new master. Retiring the former master's epoch is what keeps this
    process from answering with the version it cached there (the control shows it would)."""
    with (
        SentinelTopology(tmp_path, primary_args=UNRECONFIGURABLE) as topology,
        override_settings(CACHES=_caches(topology, "DefaultClient")),
    ):
        versions.clear_local_state()
        with transaction.atomic():
            versions.bump(KEY)
        assert versions.get(KEY) == 1  # cached on the first master, connections kept
        old = topology.master_address()
        topology._ask_failover(30)
        topology.wait_for(lambda: _named_by_all(topology, old), "the new master")
        assert topology.role(old[1]) == "master"  # two masters: the split
        with mock.patch.object(
            store_scripts, "retire_peers", wraps=store_scripts.retire_peers
        ) as retiring:
            if not retire:  # the control: proceed without retiring anything
                retiring.side_effect = lambda described, server: True
            _bump_elsewhere(topology)
        assert retiring.called
        assert versions.get(KEY) == (2 if retire else 1)


def _database_reads() -> Any:
    from django_conditional.store import database

    return mock.patch.object(database, "read_stamps", wraps=database.read_stamps)


@pytest.mark.django_db(transaction=True)
def test_no_epoch_while_a_listed_master_cannot_be_asked(
    topology: SentinelTopology,
) -> None:
    """Retiring is not best effort: when a server the sentinels list does not answer, no epoch
    is made (the database answers), and caching resumes once it answers again."""
    from django_conditional.store import epoch

    with override_settings(CACHES=_caches(topology, "DefaultClient")):
        versions.clear_local_state()
        cache = caches["default"]
        described = redis_adapter.backend(cache)
        assert described is not None and described.group is not None
        group = described.group()
        assert group.master == topology.master_address() and len(group.servers) == 2
        name = cache.make_key(epoch.key(fastcache.server_id(cache)))
        master = redis.Redis(*topology.master_address(), db=DB)
        master.delete(name)
        real = type(described).peer_client

        def peer_client(self: Any, host: str, peer: int) -> Any:
            if (host, peer) != group.master:
                raise ConnectionError("the peer does not answer")
            return real(self, host, peer)

        with mock.patch.object(type(described), "peer_client", peer_client):
            with transaction.atomic():
                versions.bump(KEY)
            with _database_reads() as reads:
                current = versions.get(KEY)
            assert reads.called  # the database answered
            assert master.get(name) is None  # and no epoch was made
        assert versions.get(KEY) == current
        assert master.get(name) is not None  # made once it can be sure
        with _database_reads() as reads:
            assert versions.get(KEY) == current
        assert not reads.called


def test_no_epoch_on_a_server_the_sentinels_do_not_name(
    topology: SentinelTopology,
) -> None:
    """A process connected to a server that a majority of the sentinels does not name the
    master (a former master, before it is demoted) makes no epoch there."""
    with override_settings(CACHES=_caches(topology, "DefaultClient")):
        versions.clear_local_state()
        cache = caches["default"]
        described = redis_adapter.backend(cache)
        assert described is not None
        assert store_scripts.retire_peers(described, "some-other-server") is False
        assert store_scripts.retire_peers(described, fastcache.server_id(cache)) is True


@pytest.mark.django_db(transaction=True)
def test_every_sentinel_down_reads_and_writes_through_the_database(
    tmp_path: Path,
) -> None:
    """No sentinel answers (the master cannot be located): pages and writes still work, from the
    database, never a 500; caching comes back with the sentinels."""
    with (
        SentinelTopology(tmp_path) as topology,
        override_settings(CACHES=_caches(topology, "DefaultClient")),
    ):
        versions.clear_local_state()
        article = Article.objects.create(
            author=Author.objects.create(name="Ada"), title="One", body="b"
        )
        client, path = Client(), f"/articles/{article.pk}/"
        tag = client.get(path).headers["ETag"]
        sentinels = [p for p in topology.processes if p.name.startswith("sentinel")]
        for process in sentinels:
            process.popen.kill()
            process.popen.wait(timeout=10)
        topology.forget_django_redis_pools()
        versions.clear_local_state()
        ours = [
            n for n in vars(caches["default"]) if n.startswith("_django_conditional")
        ]
        for name in ours:  # as in a new process: no reader, writer or description kept
            delattr(caches["default"], name)
        assert client.get(path, headers={"If-None-Match": tag}).status_code == 304
        article.title = "Two"
        article.save()  # the bump commits; its cache writes fail and are logged
        after = client.get(path, headers={"If-None-Match": tag})
        assert after.status_code == 200 and b"Two" in after.content
        assert (
            client.get(
                path, headers={"If-None-Match": after.headers["ETag"]}
            ).status_code
            == 304
        )
