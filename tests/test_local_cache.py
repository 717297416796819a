"""The process-local version cache (``store.local``, ``store.tracking``): invalidations applied in
the request's path, the lease, the write fence, and every doubt (pause, killed connections,
restart, FLUSHDB, fork) forgetting the copy, against redis-server processes of the test's own.

No assertion here depends on timing: waits only bound how long a test may hang."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.test import override_settings

from django_conditional import versions
from django_conditional.store import epoch, fence, local, resp3
from django_conditional.store.tracking import Tracked
from tests.test_store_faults import REDIS_SERVER, Redis

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None, reason="needs redis-server on the PATH"
)
KEY = "local-test:1"
LONG = 3600.0  # a lease that never runs out during a test


@pytest.fixture
def server(redis_process: Redis) -> Redis:
    return redis_process


@pytest.fixture
def store(local_store: Redis) -> Redis:
    return local_store


def _tracked() -> Tracked:
    side = local._side(caches["default"])
    assert side is not None
    return side.tracked


def _arrived(tracked: Tracked) -> None:
    """Wait (bounded) until the server sent something on the tracking connection."""
    assert tracked.sock is not None
    readable, _, _ = select.select([tracked.sock], [], [], 10)
    assert readable, "nothing arrived on the tracking connection"


def _read() -> int:
    return versions.read([KEY]).versions[KEY]


def _made(key: str) -> str:
    """The Redis key of ``key``'s version in the live epoch."""
    made: str = caches["default"].make_key(versions.cache_key(key))
    return made


def _held() -> int:
    """A read that the local copy answers (asserted)."""
    tracked = _tracked()
    hits = tracked.hits
    value = _read()
    assert tracked.hits == hits + 1, "the read was not answered from memory"
    return value


# -- the codec and the order of what arrives --


def test_resp3_parses_pushes_and_replies_incrementally() -> None:
    data = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n*2\r\n$1\r\n5\r\n_\r\n"
    for cut in range(1, len(data)):
        value, at = resp3.parse(data[:cut])
        assert value is resp3.INCOMPLETE or at <= cut
    push, at = resp3.parse(data)
    assert type(push) is resp3.Push and push == [b"invalidate", [b"k"]]
    reply, end = resp3.parse(data, at)
    assert reply == [b"5", None] and end == len(data)
    assert resp3.parse(b">2\r\n$10\r\ninvalidate\r\n_\r\n")[0] == [b"invalidate", None]
    assert resp3.parse(b"%1\r\n+a\r\n:1\r\n")[0] == {b"a": 1}
    assert isinstance(resp3.parse(b"-ERR no\r\n")[0], resp3.ReplyError)


def _waiting_mget(tracked: Tracked, names: list[str]) -> None:
    from django_conditional.store.tracking import _Waiter

    tracked._waiting.append(_Waiter(0.0, "mget", names))


def test_an_invalidation_sent_before_a_reply_is_applied_before_it() -> None:
    tracked = Tracked(address=None)  # type: ignore[arg-type]
    tracked.values["k"] = b"1"
    _waiting_mget(tracked, ["k"])
    push = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
    reply = b"*1\r\n$1\r\n2\r\n"
    tracked._feed(push + reply[:5])
    assert "k" not in tracked.values  # the invalidation, at once
    tracked._feed(reply[5:])
    assert tracked.values["k"] == b"2" and tracked.leased_at == 0.0
    tracked._feed(push)  # one sent after the reply removes what the reply stored
    assert "k" not in tracked.values


def test_the_lease_runs_from_when_the_fence_was_sent() -> None:
    tracked = Tracked(address=None)  # type: ignore[arg-type]
    tracked.values["k"] = b"1"
    assert tracked.lookup(["k"], LONG) is None  # no fence yet
    tracked.leased_at = time.monotonic()
    assert tracked.lookup(["k"], LONG) == [b"1"]
    assert tracked.lookup(["k", "other"], LONG) is None  # a key not held never answers
    tracked.leased_at -= 2 * 0.05
    assert tracked.lookup(["k"], 0.05) is None  # expired: the caller fences first


# -- against a real server --


def test_an_invalidation_is_applied_before_a_local_hit(store: Redis) -> None:
    versions.bump(KEY)
    assert _read() == 1  # read through: now tracked
    assert _held() == 1
    assert _held() == 1
    tracked = _tracked()
    trips = tracked.round_trips
    versions.bump(KEY)  # publishes from another connection (the writer's)
    _arrived(tracked)  # the invalidation is in the socket, not yet applied
    assert "local-test" in "".join(tracked.values)
    assert _read() == 2  # drained in the request's path first: read through
    assert tracked.round_trips == trips + 1
    assert _held() == 2


def test_an_expired_lease_makes_one_fence_round_trip(store: Redis) -> None:
    versions.bump(KEY)
    _read()
    assert _held() == 1
    tracked = _tracked()
    trips = tracked.round_trips
    tracked.leased_at -= 2 * LONG  # as if T had passed since the last fence was sent
    assert _read() == 1
    assert tracked.round_trips == trips + 1  # one fence (the read itself)
    assert _held() == 1  # and the lease holds again
    with override_settings(CONDITIONAL_LEASE_SECONDS=0):
        for _ in range(3):
            assert _read() == 1
        assert tracked.round_trips == trips + 4  # T = 0: every read is a round trip


def test_a_key_held_as_absent_or_pending_never_answers(store: Redis) -> None:
    tracked = _tracked()
    assert _read() == 0  # never bumped: the database answers, the cache is filled
    _read()
    before = tracked.round_trips
    from django_conditional.store import cache as store_cache

    store_cache.mark_pending({KEY: (1, 0)})
    _arrived(tracked)
    assert _read() == 0
    assert (
        tracked.round_trips == before + 1
    )  # pending: read through, the database answers


def test_paused_redis_no_answer_from_memory_after_the_lease(store: Redis) -> None:
    versions.bump(KEY)
    _read()
    assert _held() == 1
    tracked = _tracked()
    assert store.process is not None
    os.kill(store.process.pid, signal.SIGSTOP)
    try:
        assert _held() == 1  # the lease still holds: memory may answer
        tracked.leased_at -= 2 * LONG
        assert _read() == 1  # the fence times out: the database answers
        assert tracked.sock is None and not tracked.values  # the copy was forgotten
    finally:
        os.kill(store.process.pid, signal.SIGCONT)
    assert _read() == 1  # a new connection
    assert _held() == 1


def test_killed_tracking_connections_forget_the_copy(store: Redis) -> None:
    versions.bump(KEY)
    _read()
    assert _held() == 1
    tracked = _tracked()
    connects = tracked.connects
    assert store.call("CLIENT", "KILL", "TYPE", "normal") >= 1
    _arrived(tracked)  # the close
    assert _read() == 1
    assert tracked.connects == connects + 1 and tracked.flushes >= 1
    assert _held() == 1


def test_a_restart_forgets_the_copy_and_notes_the_new_server(store: Redis) -> None:
    versions.bump(KEY)
    _read()
    assert _held() == 1
    tracked = _tracked()
    old_server = tracked.server
    store.stop()
    store.start()  # no snapshot: an empty server with another run_id
    _arrived(tracked)
    assert _read() == 1  # the database answers, the new server is filled
    assert tracked.server != old_server
    from django_conditional import fastcache

    assert fastcache.server_id(caches["default"]) == tracked.server
    _read()
    assert _held() == 1
    versions.bump(KEY)
    _arrived(tracked)
    assert _read() == 2


def test_flushdb_is_a_null_invalidation(store: Redis) -> None:
    versions.bump(KEY)
    _read()
    assert _held() == 1
    tracked = _tracked()
    assert store.call("FLUSHDB") in (True, "OK")
    _arrived(tracked)
    tracked.drain()
    assert not tracked.values and tracked.flushes >= 1
    versions.bump(KEY)
    assert _read() == 2


def test_a_forked_child_never_uses_its_parents_copy(store: Redis) -> None:
    versions.bump(KEY)
    _read()
    assert _held() == 1
    parent = _tracked()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it read and whether memory answered
        try:
            value = _read()
            tracked = _tracked()
            os.write(writer, f"{value} {tracked.hits} {tracked.connects}".encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        value, hits, connects = map(int, pipe.read().split())
    os.waitpid(pid, 0)
    assert value == 1
    assert hits == parent.hits and connects == parent.connects + 1  # its own connection
    assert _held() == 1  # the parent's connection was left alone


def test_threads_share_one_connection(store: Redis) -> None:
    versions.bump(KEY)
    _read()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(200):
                assert _read() == 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert _tracked().connects == 1


def test_asyncio_applies_invalidations_on_its_loops_connection(store: Redis) -> None:
    versions.bump(KEY)

    async def scenario() -> tuple[int, int, int, int]:
        first = (await versions.aread([KEY])).versions[KEY]
        side = local._side(caches["default"])
        assert side is not None
        tracked = side.for_loop(asyncio.get_running_loop())
        hits = tracked.hits
        assert (await versions.aread([KEY])).versions[KEY] == first
        assert tracked.hits == hits + 1
        await asyncio.to_thread(versions.bump, KEY)
        for _ in range(100):  # the reader callback applies it, or the next read's drain
            if KEY not in "".join(tracked.values):
                break
            await asyncio.sleep(0.01)
        second = (await versions.aread([KEY])).versions[KEY]
        return first, second, tracked.hits, hits

    first, second, hits, before = asyncio.run(scenario())
    assert (first, second) == (1, 2)
    assert hits == before + 1


# -- the write fence --


@pytest.fixture
def fence_waits(store: Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The writer's waits (seconds left when it would sleep), with the fence on and T = 5 s."""
    waits: list[float] = []
    monkeypatch.setattr(
        fence, "_wait_until", lambda deadline: waits.append(deadline - time.monotonic())
    )
    with override_settings(CONDITIONAL_WRITE_FENCE=True, CONDITIONAL_LEASE_SECONDS=5):
        yield waits


def test_no_copy_held_no_fence(fence_waits: list[float]) -> None:
    # Nobody read the key through a local copy: no holder mark, so the write does not wait.
    versions.bump(KEY)
    versions.bump(KEY)
    assert fence_waits == []


def test_a_held_copy_makes_the_writer_wait_a_whole_fence(
    fence_waits: list[float],
) -> None:
    versions.bump(KEY)
    _read()  # a read through: the key is held here now (its holder mark is set)
    versions.bump(KEY)  # outside a scope: the commit hook waits
    assert len(fence_waits) == 1 and 4.9 < fence_waits[0] <= 5.1
    # A write within the fence finds the writer's mark: it waits for what is left of it.
    versions.bump(KEY)
    assert len(fence_waits) == 2 and 0 < fence_waits[1] <= fence_waits[0]


def test_the_fence_waits_once_per_scope(fence_waits: list[float]) -> None:
    versions.bump(KEY)
    versions.bump("local-test:2")
    versions.read([KEY, "local-test:2"])  # both held
    with fence.fenced():
        versions.bump(KEY)
        versions.bump("local-test:2")
        assert fence_waits == []  # deferred to the scope's end
    assert len(fence_waits) == 1 and fence_waits[0] > 4.9


def test_a_copy_is_used_only_while_its_holder_mark_lives(
    store: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions.bump(KEY)
    _read()
    assert store.call("GET", f"held|{_made(KEY)}") == "1"
    ttl = store.call("PTTL", f"held|{_made(KEY)}")
    assert 55_000 < ttl <= 60_000
    _held()
    tracked = _tracked()
    name = _made(KEY)
    tracked.held_until[name] = time.monotonic() - 1  # as if HOLD had nearly passed
    trips = tracked.round_trips
    _read()
    assert tracked.round_trips == trips + 1  # read through again, which marks it again
    assert tracked.held_until[name] > time.monotonic() + 50


def test_without_the_script_every_write_waits_a_whole_fence(
    fence_waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A publication that is not the script's (another serializer, a failure) reports nothing.
    from django_conditional.store import cache as store_cache

    monkeypatch.setattr(store_cache, "monotonic_writer", lambda backend: None)
    versions.bump(KEY)
    assert len(fence_waits) == 1 and fence_waits[0] > 4.9
    with override_settings(CONDITIONAL_WRITE_FENCE=False):
        versions.bump(KEY)
    assert len(fence_waits) == 1


def test_other_backends_and_the_setting_keep_the_one_read_path(store: Redis) -> None:
    assert local.is_on(caches["default"])
    with override_settings(CONDITIONAL_LOCAL_CACHE=False):
        assert not local.is_on(caches["default"])
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(CACHES=locmem):
        assert not local.is_on(caches["default"])
        assert not fence._fencing()


def test_stats_count_hits_and_round_trips(store: Redis) -> None:
    versions.bump(KEY)
    _read()
    _held()
    counted: dict[str, Any] = local.stats()
    assert counted["hits"] >= 1 and counted["round_trips"] >= 1


def test_a_new_processs_first_read_asks_the_cache_again_not_the_database(
    store: Redis, django_assert_num_queries: Any
) -> None:
    # A new worker believes no epoch yet: its first read learns the live one from the epoch key
    # it fetched and reads again (a round trip), instead of opening a database connection.
    versions.bump(KEY)
    assert _read() == 1
    epoch.forget()
    with django_assert_num_queries(0):
        assert _read() == 1
