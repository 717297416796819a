"""The Redis Sentinel harness (tests/redis_topology.py): it starts, it fails over and back, and a
django-redis cache configured by it follows the master through a failover.

Real processes on free loopback ports (never the shared Redis on 6379); skipped when the
binaries are missing (``scripts/ensure-redis-sentinel`` installs them). A forced failover takes
~11 s (the old master is reconfigured ~10 s after the switch), so there are three of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_topology import HOST, SentinelTopology, find_binary

pytestmark = pytest.mark.skipif(
    find_binary("redis-server") is None or find_binary("redis-sentinel") is None,
    reason="needs redis-server and redis-sentinel (scripts/ensure-redis-sentinel installs them)",
)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelTopology]:
    """One topology for the module; a test that fails over fails back before it ends."""
    with SentinelTopology(tmp_path_factory.mktemp("sentinel")) as running:
        yield running


def eventually(read: Callable[[], Any], timeout: float = 5.0) -> Any:
    """``read()``'s first answer that is not None (replication is asynchronous)."""
    deadline = time.monotonic() + timeout
    while (value := read()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_starts_with_the_primary_as_master(topology: SentinelTopology) -> None:
    primary, replica = topology.servers
    assert topology.master_address() == (HOST, primary)
    assert (topology.role(primary), topology.role(replica)) == ("master", "slave")
    for _, port in topology.sentinels:
        name = topology.service_name
        assert len(topology.call(port, "SENTINEL", "replicas", name)) == 1
        assert len(topology.call(port, "SENTINEL", "sentinels", name)) == 2
    topology.call(primary, "SET", "harness:key", "written on the primary")
    read = lambda: topology.call(replica, "GET", "harness:key")  # noqa: E731
    assert eventually(read) == "written on the primary"
    assert "sentinel0" in topology.log_tail(5)


def test_fails_over_and_back(topology: SentinelTopology) -> None:
    primary, replica = topology.servers
    assert topology.failover() == (HOST, replica)
    assert topology.master_address() == (HOST, replica)
    assert (topology.role(primary), topology.role(replica)) == ("slave", "master")
    topology.call(replica, "SET", "harness:moved", "on the new master")
    read = lambda: topology.call(primary, "GET", "harness:moved")  # noqa: E731
    assert eventually(read) == "on the new master"

    assert topology.failover() == (HOST, primary)
    assert topology.master_address() == (HOST, primary)
    assert (topology.role(primary), topology.role(replica)) == ("master", "slave")
    assert topology.call(primary, "GET", "harness:moved") == "on the new master"


def test_django_redis_cache_follows_the_master(tmp_path: Path) -> None:
    """Set and get through the sentinels, before and after a failover; then a second topology
    with the same service name in the same process (django-redis pools by URL, process-wide)."""
    pytest.importorskip("django_redis")
    with SentinelTopology(tmp_path / "first") as topology:
        primary, replica = topology.servers
        cache = django_redis_cache(topology)
        cache.set("greeting", "hello")
        assert topology.call(primary, "EXISTS", cache.make_key("greeting")) == 1
        assert eventually(lambda: cache.get("greeting")) == "hello"

        assert topology.failover() == (HOST, replica)
        cache.set("after", "the failover")
        assert topology.call(replica, "EXISTS", cache.make_key("after")) == 1
        assert eventually(lambda: cache.get("after")) == "the failover"
        assert cache.get("greeting") == "hello"

    with SentinelTopology(tmp_path / "second") as second:
        cache = django_redis_cache(second)
        cache.set("again", 1)
        assert second.call(second.servers[0], "EXISTS", cache.make_key("again")) == 1
        assert eventually(lambda: cache.get("again")) == 1


def django_redis_cache(topology: SentinelTopology) -> Any:
    """A django-redis cache built from ``topology.django_redis_cache_settings()``, as Django
    would build a ``CACHES`` entry."""
    from django_redis.cache import RedisCache

    entry = topology.django_redis_cache_settings()
    assert entry["BACKEND"] == "django_redis.cache.RedisCache"
    params = {key: value for key, value in entry.items() if key != "LOCATION"}
    return RedisCache(entry["LOCATION"], params)
