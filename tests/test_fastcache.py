"""fastcache: the same answers as the cache API, in one round trip, never older than the cache."""

from __future__ import annotations

import asyncio
import os
import pickle
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisSerializer
from django.test.utils import override_settings

from django_conditional import fastcache, versions
from django_conditional.conf import conf

# REDIS_URL when the suite runs on Redis, else a database of this module's own on the local server.
REDIS_URL = os.environ.get("REDIS_URL", "").strip() or "redis://127.0.0.1:6379/14"


def _redis_answers() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except Exception:
        return False
    return True


needs_redis = pytest.mark.skipif(
    not _redis_answers(), reason=f"needs Redis at {REDIS_URL}"
)


def redis_cache(**params: Any) -> RedisCache:
    """A RedisCache of its own: a unique KEY_PREFIX per test keeps parallel runs apart."""
    params.setdefault("KEY_PREFIX", f"fastcache-test-{uuid.uuid4().hex[:12]}")
    return RedisCache(params.pop("LOCATION", REDIS_URL), params)


class _ConnectionCalls:
    """Counts the calls of one method of redis-py's connections, sync and asyncio alike."""

    method = ""
    module_class = (
        ""  # the class in ``redis.connection`` and ``redis.asyncio.connection``
    )

    def __init__(self) -> None:
        self.calls = 0

    def __enter__(self) -> Any:
        import redis.asyncio.connection
        import redis.connection

        sync_cls = getattr(redis.connection, self.module_class)
        async_cls = getattr(redis.asyncio.connection, self.module_class)
        sync_original = getattr(sync_cls, self.method)
        async_original = getattr(async_cls, self.method)
        counter = self

        def sync_counting(self: Any, *args: Any, **kwargs: Any) -> Any:
            counter.calls += 1
            return sync_original(self, *args, **kwargs)

        async def async_counting(self: Any, *args: Any, **kwargs: Any) -> Any:
            counter.calls += 1
            return await async_original(self, *args, **kwargs)

        self._patches = [
            mock.patch.object(sync_cls, self.method, sync_counting),
            mock.patch.object(async_cls, self.method, async_counting),
        ]
        for patch in self._patches:
            patch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for patch in self._patches:
            patch.stop()


class Counting(_ConnectionCalls):
    """Counts the packets sent to Redis (one per command or pipeline: a round trip)."""

    method, module_class = "send_packed_command", "AbstractConnection"

    @property
    def sent(self) -> int:
        return self.calls


class Connects(_ConnectionCalls):
    """Counts the connections opened (``_connect`` makes the socket, in every redis-py version)."""

    method, module_class = "_connect", "Connection"

    @property
    def opened(self) -> int:
        return self.calls


@pytest.fixture
def cache() -> Iterator[RedisCache]:
    made = redis_cache()
    yield made
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{made.key_prefix}:*"))
    if keys:
        client.delete(*keys)


VALUES: dict[str, Any] = {
    "int": 42,
    "zero": 0,
    "negative": -3,
    "big": 2**62,
    "text": "42",
    "bool": True,
    "float": 1.5,
    "dict": {"Cache-Control": "max-age=60"},
    "none": None,
}


# -- other backends: the public API ----------------------------------------------------------------


def test_locmem_uses_the_cache_api():
    cache = LocMemCache("fastcache-test", {})
    cache.set_many(VALUES)
    keys = [*VALUES, "absent"]
    assert not fastcache.is_fast(cache)
    with mock.patch.object(cache, "get_many", wraps=cache.get_many) as spy:
        assert fastcache.get_many(cache, keys) == cache.get_many(keys)
        assert fastcache.get_ints(cache, keys) == {
            "int": 42,
            "zero": 0,
            "negative": -3,
            "big": 2**62,
        }
    assert spy.call_count == 3  # fastcache twice, the comparison once


def test_no_keys_no_call():
    cache = LocMemCache("fastcache-test", {})
    with mock.patch.object(cache, "get_many", side_effect=AssertionError):
        assert fastcache.get_many(cache, []) == {}
        assert fastcache.get_ints(cache, iter([])) == {}
        assert asyncio.run(fastcache.aget_many(cache, [])) == {}


def test_async_locmem_reads_without_a_thread():
    cache = LocMemCache("fastcache-test", {})
    cache.set_many({"a": 1, "b": "x"})
    with mock.patch(
        "django_conditional.fastcache.sync_to_async", side_effect=AssertionError
    ):
        assert asyncio.run(fastcache.aget_many(cache, ["a", "b", "c"])) == {
            "a": 1,
            "b": "x",
        }
        assert asyncio.run(fastcache.aget_ints(cache, ["a", "b", "c"])) == {"a": 1}


def test_other_backends_are_read_in_a_thread(tmp_path):
    from django.core.cache.backends.filebased import FileBasedCache

    cache = FileBasedCache(str(tmp_path), {})
    cache.set_many({"a": 1, "b": "x"})
    assert not fastcache.is_fast(cache)
    assert asyncio.run(fastcache.aget_many(cache, ["a", "b"])) == {"a": 1, "b": "x"}
    assert asyncio.run(fastcache.aget_ints(cache, ["a", "b"])) == {"a": 1}


class ShardedCache(RedisCache):
    """A subclass that reads its own way: fastcache must not bypass it."""

    def get_many(self, keys: Any, version: Any = None) -> dict[str, Any]:
        return dict.fromkeys(keys, "from-subclass")


@needs_redis
def test_subclass_with_its_own_reads_uses_the_cache_api():
    cache = ShardedCache(REDIS_URL, {"KEY_PREFIX": "fastcache-test-sharded"})
    assert not fastcache.is_fast(cache)
    assert fastcache.get_many(cache, ["a"]) == {"a": "from-subclass"}
    assert fastcache.get_ints(cache, ["a"]) == {}


@pytest.mark.parametrize("name", ["_pool_options", "_pool_class", "_servers"])
def test_private_api_mismatch_falls_back(name):
    cache = redis_cache()
    backend = cache._cache
    del backend.__dict__[name]  # as if a future Django renamed it
    assert not fastcache.is_fast(cache)
    with mock.patch.object(cache, "get_many", return_value={"a": 1}) as public:
        assert fastcache.get_ints(cache, ["a"]) == {"a": 1}
    public.assert_called_once_with(["a"])


# -- RedisCache: the direct path -------------------------------------------------------------------


@needs_redis
def test_same_values_as_the_cache_api(cache):
    cache.set_many(VALUES)
    keys = [*VALUES, "absent"]
    assert fastcache.is_fast(cache)
    assert fastcache.get_many(cache, keys) == cache.get_many(keys)
    assert fastcache.get_many(cache, keys)["none"] is None
    assert asyncio.run(fastcache.aget_many(cache, keys)) == cache.get_many(keys)


@needs_redis
def test_get_ints_treats_everything_but_plain_ints_as_missing(cache):
    cache.set_many(VALUES)
    expected = {"int": 42, "zero": 0, "negative": -3, "big": 2**62}
    with mock.patch("pickle.loads", side_effect=AssertionError("unpickled")):
        assert fastcache.get_ints(cache, list(VALUES)) == expected
        assert asyncio.run(fastcache.aget_ints(cache, list(VALUES))) == expected


@needs_redis
def test_keys_are_those_django_makes():
    versioned = redis_cache(VERSION=3)
    versioned.set("k", 1)
    versioned.set("k", 2, version=2)
    assert fastcache.get_ints(versioned, ["k"]) == {"k": 1}
    custom = redis_cache(KEY_FUNCTION=lambda key, prefix, version: f"{prefix}|{key}")
    custom.set("k", 7)
    assert fastcache.get_ints(custom, ["k"]) == {"k": 7}
    import redis

    assert redis.Redis.from_url(REDIS_URL).get(f"{custom.key_prefix}|k") == b"7"


@needs_redis
def test_many_keys_one_round_trip(cache):
    keys = [f"k{i}" for i in range(50)]
    cache.set_many({key: i for i, key in enumerate(keys)})
    fastcache.get_ints(cache, keys)  # the connection is opened (handshake) here
    with Counting() as counting:
        assert fastcache.get_ints(cache, keys) == {key: i for i, key in enumerate(keys)}
    assert counting.sent == 1
    asyncio.run(fastcache.aget_ints(cache, keys))

    async def read() -> tuple[dict[str, int], int]:
        await fastcache.aget_ints(cache, keys)  # this loop's connection is opened here
        with Counting() as counting:
            values = await fastcache.aget_ints(cache, keys)
        return values, counting.sent

    values, sent = asyncio.run(read())
    assert values == {key: i for i, key in enumerate(keys)}
    assert sent == 1


@needs_redis
def test_client_built_once_per_process_and_configuration(cache):
    import redis

    cache.set("a", 1)
    fastcache.get_ints(cache, ["a"])
    # Another cache object of the same configuration (as a new thread or ASGI request gets).
    twin = RedisCache(REDIS_URL, {"KEY_PREFIX": cache.key_prefix})
    with mock.patch.object(
        redis.Redis, "__init__", side_effect=AssertionError("new client")
    ):
        assert fastcache.get_ints(cache, ["a"]) == {"a": 1}
        assert fastcache.get_ints(twin, ["a"]) == {"a": 1}
    assert fastcache._reader(twin) is fastcache._reader(cache)
    other = redis_cache()
    assert fastcache._reader(other) is not fastcache._reader(cache)


@needs_redis
def test_never_older_than_the_cache(cache):
    # Another worker writes through its own client: the next read sees it, every time.
    writer = RedisCache(REDIS_URL, {"KEY_PREFIX": cache.key_prefix})
    for value in range(1, 6):
        writer.set("v", value)
        assert fastcache.get_ints(cache, ["v"]) == {"v": value}
        assert asyncio.run(fastcache.aget_ints(cache, ["v"])) == {"v": value}
    writer.delete("v")
    assert fastcache.get_ints(cache, ["v"]) == {}


@needs_redis
@pytest.mark.django_db
def test_a_bump_through_the_store_is_read_at_once(django_capture_on_commit_callbacks):
    config = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"fastcache-test-{uuid.uuid4().hex[:12]}",
        }
    }
    with override_settings(CACHES=config):
        cache = caches[conf.CACHE_ALIAS]
        key = "c:fastcache.bumped"
        cache_key = versions.cache_key(key)
        for expected in (1, 2, 3):
            with django_capture_on_commit_callbacks(execute=True):
                versions.bump(key)
            (value,) = fastcache.get_many(cache, [cache_key]).values()
            assert str(value).split("|")[0] == str(expected)  # "<version>|<bump time>"
            assert versions.get_many([key]) == {key: expected}
        cache.delete(cache_key)


class Serializer(RedisSerializer):
    """Stores ints pickled too."""

    def dumps(self, obj: Any) -> Any:
        return pickle.dumps(obj)

    def loads(self, data: Any) -> Any:
        return pickle.loads(data)


@needs_redis
def test_custom_serializer_decodes_as_the_cache():
    cache = redis_cache(OPTIONS={"serializer": "tests.test_fastcache.Serializer"})
    cache.set_many({"int": 5, "text": "5"})
    assert fastcache.is_fast(cache)
    assert fastcache.get_many(cache, ["int", "text"]) == {"int": 5, "text": "5"}
    assert fastcache.get_ints(cache, ["int", "text"]) == {"int": 5}


@needs_redis
def test_several_servers_read_like_django():
    # The same server twice: Django reads from "replicas" (servers after the first).
    cache = redis_cache(LOCATION=f"{REDIS_URL},{REDIS_URL}")
    cache.set_many({"a": 1, "b": 2})
    assert fastcache.get_ints(cache, ["a", "b"]) == {"a": 1, "b": 2}
    assert asyncio.run(fastcache.aget_many(cache, ["a", "b"])) == {"a": 1, "b": 2}


def test_errors_propagate_like_the_cache_api():
    import redis

    down = RedisCache(
        "redis://127.0.0.1:1/0", {"OPTIONS": {"socket_connect_timeout": 0.5}}
    )
    assert fastcache.is_fast(down)
    with pytest.raises(redis.ConnectionError):
        down.get_many(["a"])
    with pytest.raises(redis.ConnectionError):
        fastcache.get_ints(down, ["a"])
    with pytest.raises(redis.ConnectionError):
        asyncio.run(fastcache.aget_ints(down, ["a"]))


# -- kept connections ------------------------------------------------------------------------------


def _kept(cache: RedisCache) -> list[Any]:
    reader = fastcache._reader(cache)
    assert reader is not None
    return reader._idle


@needs_redis
def test_one_connection_serves_every_read(cache):
    cache.set_many({"a": 1, "b": 2})
    with Connects() as connects:
        for _ in range(20):
            assert fastcache.get_ints(cache, ["a", "b"]) == {"a": 1, "b": 2}
    assert connects.opened == 1
    assert len(_kept(cache)) == 1


@needs_redis
def test_a_connection_the_server_closed_is_replaced_once(cache):
    import redis

    cache.set("a", 1)
    fastcache.get_ints(cache, ["a"])
    [connection] = _kept(cache)
    connection.send_command("CLIENT", "ID")
    client_id = connection.read_response()
    # What a Redis restart or an idle timeout does to a kept connection.
    assert redis.Redis.from_url(REDIS_URL).client_kill_filter(_id=client_id) == 1
    with Connects() as connects:
        assert fastcache.get_ints(cache, ["a"]) == {"a": 1}
    assert connects.opened == 1  # one retry, on a new connection
    assert _kept(cache) != [connection] and len(_kept(cache)) == 1


@needs_redis
def test_a_timeout_is_not_retried_and_its_connection_not_reused(cache):
    import redis

    cache.set("a", 1)
    fastcache.get_ints(cache, ["a"])
    [connection] = _kept(cache)
    with (
        mock.patch.object(
            connection, "read_response", side_effect=redis.TimeoutError("slow")
        ),
        Connects() as connects,
        pytest.raises(redis.TimeoutError),
    ):
        fastcache.get_ints(cache, ["a"])
    assert connects.opened == 0  # no second try: that would double the wait
    assert (
        _kept(cache) == [] and connection._sock is None
    )  # closed: it may be out of step
    assert fastcache.get_ints(cache, ["a"]) == {"a": 1}


@needs_redis
def test_any_failure_closes_the_connection(cache):
    cache.set("a", 1)
    fastcache.get_ints(cache, ["a"])
    [connection] = _kept(cache)
    with (
        mock.patch.object(connection, "read_response", side_effect=KeyboardInterrupt),
        pytest.raises(KeyboardInterrupt),
    ):
        fastcache.get_ints(cache, ["a"])
    assert _kept(cache) == [] and connection._sock is None


@needs_redis
def test_a_forked_worker_opens_its_own_connection(cache):
    cache.set("a", 1)
    fastcache.get_ints(cache, ["a"])
    [parents] = _kept(cache)
    reader = fastcache._reader(cache)
    assert reader is not None
    with mock.patch("django_conditional.fastcache.os.getpid", return_value=-7):
        with Connects() as connects:
            assert fastcache.get_ints(cache, ["a"]) == {"a": 1}
        assert connects.opened == 1
        assert _kept(cache) != [parents]
    assert parents._sock is not None  # the parent's socket was left alone


@needs_redis
def test_threads_never_share_a_connection(cache):
    import threading

    cache.set_many({f"k{i}": i for i in range(8)})
    errors: list[object] = []

    def read(index: int) -> None:
        for _ in range(150):
            got = fastcache.get_ints(cache, [f"k{index}"])
            if got != {f"k{index}": index}:
                errors.append(got)

    with Connects() as connects:
        threads = [threading.Thread(target=read, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert 1 <= connects.opened <= 8
    assert len(_kept(cache)) == connects.opened  # every connection given back, once


@needs_redis
def test_concurrent_tasks_never_share_a_connection(cache):
    cache.set_many({f"k{i}": i for i in range(20)})

    async def main() -> tuple[list[dict[str, int]], list[dict[str, int]]]:
        first = await asyncio.gather(
            *(fastcache.aget_ints(cache, [f"k{i}"]) for i in range(20))
        )
        with Connects() as connects:
            again = await asyncio.gather(
                *(fastcache.aget_ints(cache, [f"k{i}"]) for i in range(20))
            )
        assert connects.opened == 0  # the connections of the first round are kept
        return list(first), list(again)

    first, again = asyncio.run(main())
    expected = [{f"k{i}": i} for i in range(20)]
    assert first == expected and again == expected


@needs_redis
def test_a_cancelled_read_closes_its_connection(cache):
    cache.set("a", 1)

    async def main() -> None:
        await fastcache.aget_ints(cache, ["a"])
        reader = fastcache._reader(cache)
        assert reader is not None
        idle = reader._async_idle[asyncio.get_running_loop()][1]
        [connection] = idle
        with (
            mock.patch.object(
                connection, "read_response", side_effect=asyncio.CancelledError
            ),
            pytest.raises(asyncio.CancelledError),
        ):
            await fastcache.aget_ints(cache, ["a"])
        assert idle == [] and not connection.is_connected
        assert await fastcache.aget_ints(cache, ["a"]) == {"a": 1}

    asyncio.run(main())


@needs_redis
def test_an_async_connection_the_server_closed_is_replaced_once(cache):
    import redis

    cache.set("a", 1)

    async def main() -> None:
        await fastcache.aget_ints(cache, ["a"])
        reader = fastcache._reader(cache)
        assert reader is not None
        [connection] = reader._async_idle[asyncio.get_running_loop()][1]
        await connection.send_command("CLIENT", "ID")
        client_id = await connection.read_response()
        assert redis.Redis.from_url(REDIS_URL).client_kill_filter(_id=client_id) == 1
        with Connects() as connects:
            assert await fastcache.aget_ints(cache, ["a"]) == {"a": 1}
        assert connects.opened == 1

    asyncio.run(main())


@needs_redis
def test_closed_event_loops_are_forgotten(cache):
    cache.set("a", 1)
    for _ in range(3):
        assert asyncio.run(fastcache.aget_ints(cache, ["a"])) == {"a": 1}
    reader = fastcache._reader(cache)
    assert reader is not None
    # Each asyncio.run closed its loop; the next new loop dropped the earlier ones.
    assert len(reader._async_idle) <= 1
