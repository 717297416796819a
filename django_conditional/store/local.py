"""The process-local version cache: most 304s answered without a network round trip, never stale.

On Django's ``RedisCache`` (the fast path, ``CONDITIONAL_LOCAL_CACHE``, on by default) every
version read goes through one RESP3 connection per process (per event loop for asyncio) with
``CLIENT TRACKING on`` (``store.tracking``): the keys it reads (the epoch key, the versions, the
remembered headers) are tracked by the server, which pushes an invalidation on that connection
when one changes. Their raw values are kept in the process. A read answers from that copy when:

1. pending pushes have been applied first, in the request's own path (a zero-timeout poll);
2. every key asked for is held, the epoch key and every version as a plain integer (a key not
   held, absent or pending is read through: one ``MGET``, which also tracks it);
3. the **lease** holds: a reply was read on the connection for a command *sent* less than ``T``
   (``CONDITIONAL_LEASE_SECONDS``) ago. Otherwise the read goes through (the ``MGET`` is the
   fence): at most one round trip per ``T`` per connection for a steady load.

**Write fence.** After a transaction that bumped versions commits, ``versions._published``
publishes them and calls ``published()``: the writer then lets ``T`` pass, measured from the end
of the publication, before going on. In the write path (``writes.write`` opens ``fenced()``) the
wait happens once, when the scope closes, after every publication of the transaction, before the
view's response is returned; a commit outside any scope (a script, ``ATOMIC_REQUESTS``, admin)
waits in the commit hook itself. So a write's response (or ``atomic()`` returning) comes at least
``T`` after its new versions were stored in Redis.

**Why no stale 304 follows a write's response.** Let the publication of a write be applied by
Redis at ``w``; its response leaves after ``w + T``. A revalidation sent after that response
reaches a worker at ``r > w + T``. If the worker answers from its copy, its lease holds at some
``c >= r``: a reply was read for a command sent at ``s > c - T > w``. That command ran after the
publication, on the same server; the publication, when it ran, queued an invalidation on this
connection for every key it changed that the connection had read (a copy of a key exists only
because the connection read it; a key the server dropped from its tracking table is invalidated
then); Redis sends a connection's pushes and replies in the order it queued them. So the
invalidation was read, and applied, before the fence's reply: the worker no longer holds the old
value and reads through. Anything that breaks the chain forgets the copy before the next answer:
a disconnect, a timeout, bytes not understood, an error reply, a null invalidation (``FLUSHDB``), a
fork (pid check), a reconnect (to another server life: a new ``run_id`` also changes the epoch key
read in every ``MGET``); the epoch key is itself tracked, so a new epoch reads through.

Conditions: one primary (replicas are never read; Redis Cluster is not supported); the durations
``T`` of the writer and of the reader measured by clocks of the same rate: on one host
``time.monotonic()`` is one clock; across hosts their rates must agree within a bound ``ρ`` and
``T`` must be raised by ``ρ·T`` (NTP slews at most 500 ppm: 25 µs of 50 ms, covered by
``_MARGIN``); the client sends its revalidation after it received the write's response.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from django_conditional import fastcache, redis_adapter
from django_conditional.conf import conf
from django_conditional.store.stamps import is_held
from django_conditional.store.tracking import Tracked

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

__all__ = ["aget_many", "fenced", "get_many", "is_on", "published", "stats"]

_MARGIN: Final = (
    0.001  # seconds added to the writer's wait: clock rates, sleep granularity
)
_MAX_MADE: Final = 4096
_ATTRIBUTE: Final = "_django_conditional_local"
_OFF: Final = "off"


class _Side:
    """The local cache of one cache configuration: its tracking connections and key names."""

    def __init__(self, described: redis_adapter.RedisBackend, address: Any) -> None:
        self.loads = described.loads
        self.make_key = described.make_key
        self.made: dict[str, str] = {}
        self.lock = threading.Lock()
        self.tracked = Tracked(address)
        self.address = address
        self.by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Tracked] = (
            weakref.WeakKeyDictionary()
        )

    def made_keys(self, names: list[str]) -> list[str]:
        made = self.made
        out = []
        for name in names:
            full = made.get(name)
            if full is None:
                if len(made) >= _MAX_MADE:
                    made.clear()
                full = made[name] = self.make_key(name)
            out.append(full)
        return out

    def for_loop(self, loop: asyncio.AbstractEventLoop) -> Tracked:
        found = self.by_loop.get(loop)
        if found is None:
            for closed in [old for old in self.by_loop if old.is_closed()]:
                gone = self.by_loop.pop(closed)
                if gone.sock is not None:
                    gone.sock.close()
            found = self.by_loop[loop] = Tracked(self.address)
        return found

    def decode(self, names: list[str], raw: list[bytes | None]) -> dict[str, object]:
        return fastcache.decode(self.loads, names, raw)

    def every(self) -> list[Tracked]:
        return [self.tracked, *self.by_loop.values()]


_registry: dict[tuple[object, ...], _Side] = {}
_registry_lock = threading.Lock()


def _build(cache: BaseCache) -> _Side | None:
    described = redis_adapter.backend(cache)
    if described is None or not described.plain_ints or not fastcache.is_fast(cache):
        return None
    address = described.primary_address()
    if address is None:
        return None
    with _registry_lock:
        side = _registry.get(described.fingerprint)
        if side is None:
            side = _registry[described.fingerprint] = _Side(described, address)
    return side


def _side(cache: BaseCache) -> _Side | None:
    if not conf.LOCAL_CACHE or not conf.REDIS_FAST_PATH:
        return None
    found = cache.__dict__.get(_ATTRIBUTE)
    if found is None:
        found = _build(cache)
        cache.__dict__[_ATTRIBUTE] = _OFF if found is None else found
        return found
    return None if found is _OFF else found


def is_on(cache: BaseCache) -> bool:
    """Whether version reads from ``cache`` go through the local cache."""
    return _side(cache) is not None


def _usable(raw: list[bytes | None], versions: int) -> bool:
    """Whether held values may answer: the epoch and every version (no pending mark)."""
    return all(is_held(raw[index]) for index in range(versions + 1))


def _noted(cache: BaseCache, tracked: Tracked) -> None:
    # A new connection learnt the run_id of the server: tell the store (a restart, a failover).
    if tracked.server is not None and fastcache.server_id(cache) != tracked.server:
        fastcache.note_server(cache, tracked.server)


def get_many(cache: BaseCache, names: list[str], versions: int) -> dict[str, object]:
    """``fastcache.get_many(cache, names)``, answered from the local copy when it may (see the
    module docstring). ``names``: the epoch key, ``versions`` version keys, then any others."""
    side = _side(cache)
    if side is None:
        return fastcache.get_many(cache, names)
    made = side.made_keys(names)
    lease = conf.LEASE_SECONDS
    with side.lock:
        tracked = side.tracked
        tracked.check_pid()
        tracked.drain()
        raw = tracked.lookup(made, lease)
        if raw is not None and _usable(raw, versions):
            tracked.hits += 1
        else:
            tracked.round_trips += 1
            raw = tracked.call("mget", made, "MGET", *made)  # type: ignore[assignment]
    _noted(cache, tracked)
    assert raw is not None
    return side.decode(names, raw)


async def aget_many(
    cache: BaseCache, names: list[str], versions: int
) -> dict[str, object]:
    """``get_many`` for async code, on the running event loop's own tracking connection."""
    side = _side(cache)
    if side is None:
        return await fastcache.aget_many(cache, names)
    made = side.made_keys(names)
    tracked = side.for_loop(asyncio.get_running_loop())
    tracked.check_pid()
    tracked.drain()
    raw = tracked.lookup(made, conf.LEASE_SECONDS)
    if raw is not None and _usable(raw, versions):
        tracked.hits += 1
    else:
        tracked.round_trips += 1
        raw = await tracked.acall("mget", made, "MGET", *made)  # type: ignore[assignment]
    _noted(cache, tracked)
    assert raw is not None
    return side.decode(names, raw)


# -- the write fence --

_fence = threading.local()


def _fencing() -> bool:
    from django_conditional.store import cache as store_cache

    return conf.WRITE_FENCE and _side(store_cache.cache()) is not None


def _wait_until(deadline: float) -> None:
    left = deadline - time.monotonic()
    if left > 0:
        time.sleep(left)


def published() -> None:
    """After versions were published to the cache (in the commit hook): the write fence. Inside
    ``fenced()`` the wait is left to the scope's end; outside, it happens now."""
    if not _fencing():
        return
    deadline = time.monotonic() + conf.LEASE_SECONDS + _MARGIN
    if getattr(_fence, "depth", 0):
        _fence.deadline = max(getattr(_fence, "deadline", 0.0), deadline)
    else:
        _wait_until(deadline)


@contextmanager
def fenced() -> Iterator[None]:
    """A scope (a write request's transaction) whose publications wait once, at its end, until
    ``T`` has passed since the last of them."""
    _fence.depth = getattr(_fence, "depth", 0) + 1
    try:
        yield
    finally:
        _fence.depth -= 1
        if not _fence.depth:
            deadline = getattr(_fence, "deadline", 0.0)
            _fence.deadline = 0.0
            if deadline:
                _wait_until(deadline)


def stats() -> dict[str, int]:
    """What this process's local caches did: reads answered from memory (``hits``), reads that
    made a round trip (``round_trips``), copies forgotten (``flushes``), connections made."""
    totals = {"hits": 0, "round_trips": 0, "flushes": 0, "connects": 0}
    for side in list(_registry.values()):
        for tracked in side.every():
            totals["hits"] += tracked.hits
            totals["round_trips"] += tracked.round_trips
            totals["flushes"] += tracked.flushes
            totals["connects"] += tracked.connects
    return totals
