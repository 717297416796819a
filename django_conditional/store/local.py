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

**Write fence.** A read through (``EVAL``: marks, then ``MGET``) leaves a holder mark
``held|<key>`` = "1" for ``HOLD`` (60 s) on each version key it reads, and the copy of that key is
used only until ``HOLD`` minus a margin after the read was sent. Every script that replaces a
version (``store.scripts``: the pending mark before a commit, the publication after it) looks at
the key's mark: a reader's mark means copies may be in use, so the writer must let ``T``
(``CONDITIONAL_LEASE_SECONDS``) pass from now before answering, and the mark becomes a writer's
("0") that lasts ``T``; a writer's mark still there means the same for what is left of it; no mark
means no copy of the old value can answer after this write's response: no wait. The wait happens
once, when ``fenced()`` (``writes.write``) closes, before the view's response is returned, or in
the commit hook for a commit outside any scope (a script, ``ATOMIC_REQUESTS``, admin). A
publication that is not the script's (another serializer, a failure) waits a whole ``T``.

**Why no stale 304 follows a write's response.** (1) Let a script replace a key at ``w`` and find
a reader's or a writer's mark: the response leaves after ``w + T``. A revalidation sent after it
reaches a worker at ``r > w + T``. If the worker answers from its copy, its lease holds at some
``c >= r``: a reply was read for a command sent at ``s > c - T > w``. That command ran after the
script, on the same server; the script, when it ran, queued an invalidation on this connection
for every key it changed that the connection had read (a copy exists only because the connection
read it; a key the server dropped from its tracking table is invalidated then); Redis sends a
connection's pushes and replies in the order it queued them. So the invalidation was read, and
applied, before the fence's reply: the worker no longer holds the old value and reads through.
(2) Let the script find no mark. A copy of the old value was read at some ``g < w``, and its read
set a mark lasting ``HOLD`` in the same script. Either ``HOLD`` has passed (the copy is no longer
used), or a writer's script at ``w' in (g, w)`` turned it into a mark that expired at ``w' + T``:
that script queued an invalidation of the copy, and by (1) with ``w'`` any answer after
``w' + T`` (hence after ``w``) applied it first.

Anything that breaks the chain forgets the copy before the next answer:
a disconnect, a timeout, bytes not understood, an error reply, a null invalidation (``FLUSHDB``), a
fork (pid check), a reconnect (to another server life: a new ``run_id`` also changes the epoch key
read in every ``MGET``); the epoch key is itself tracked, so a new epoch reads through.

Conditions: one primary (replicas are never read; Redis Cluster is not supported; after a
Sentinel failover the old master is retired and ``T`` waited before the new one is written:
``store.epoch``); the durations ``T`` of the writer and of the reader measured by clocks of
the same rate: on one host ``time.monotonic()`` is one clock; across hosts their rates must
agree within a bound ``ρ`` and ``T`` must be raised by ``ρ·T`` (NTP slews at most 500 ppm: 25 µs
of 50 ms, covered by ``store.fence``'s margin); the client sends its revalidation after it received the
write's response.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from django_conditional import fastcache, redis_adapter
from django_conditional.conf import conf
from django_conditional.store import served
from django_conditional.store.epoch import RETIRED
from django_conditional.store.stamps import is_held
from django_conditional.store.tracking import HOLD, Doubt, Tracked

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

__all__ = [
    "Proof",
    "Read",
    "aget_many",
    "get_many",
    "holds",
    "is_on",
    "stats",
]

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


def _noted(cache: BaseCache, tracked: Tracked, raw: list[bytes | None]) -> None:
    # The copy, or the read through, came from this connection's server.
    served.note(tracked.server)
    # A failover retired this server: ask Sentinel again next time.
    if raw[0] == _RETIRED:
        tracked.fail(Doubt("the server was retired"))
    # A new connection learnt which server it reached: tell the store (a restart, a failover).
    if tracked.server is not None and fastcache.server_id(cache) != tracked.server:
        fastcache.note_server(cache, tracked.server)


# The read that fills the copy: holder marks on the version keys (``held|<key>`` = "1" for
# ``HOLD`` seconds), then their values, in one script, so a write that replaces a key after the
# read finds the mark and fences (``store.scripts``). ARGV[1]: the marks' life in ms, ARGV[2]: how
# many keys after the first (the epoch key) are versions.
_HOLD_READ: Final = """
for i = 2, 1 + tonumber(ARGV[2]) do
  redis.call('SET', 'held|' .. KEYS[i], '1', 'PX', ARGV[1])
end
return redis.call('MGET', unpack(KEYS))
"""


_HOLD_MS: Final = int(HOLD * 1000)
_RETIRED: Final = RETIRED.encode()


def _read_through(made: list[str], versions: int) -> list[str | int]:
    return ["EVAL", _HOLD_READ, len(made), *made, _HOLD_MS, versions]


@dataclass(frozen=True, slots=True, eq=False)
class Proof:
    """What a read from the copy returned: the connection, the names and their raw values. While
    the copy still holds exactly these (``holds``), the same read would return the same."""

    tracked: Tracked
    made: list[str]
    raw: list[bytes | None]
    server: str | None


class Read(dict[str, object]):
    """The decoded values of a read, and its ``Proof``."""

    __slots__ = ("proof",)

    def __init__(self, values: dict[str, object], proof: Proof) -> None:
        super().__init__(values)
        self.proof = proof


def _answered(
    side: _Side,
    tracked: Tracked,
    names: list[str],
    made: list[str],
    raw: list[bytes | None],
) -> Read:
    return Read(side.decode(names, raw), Proof(tracked, made, raw, tracked.server))


def get_many(cache: BaseCache, names: list[str], versions: int) -> dict[str, object]:
    """``fastcache.get_many(cache, names)``, answered from the local copy when it may (see the
    module docstring). ``names``: the epoch key, ``versions`` version keys, then any others."""
    side = _side(cache)
    if side is None:
        return fastcache.get_many(cache, names)
    made = side.made_keys(names)
    with side.lock:
        tracked = side.tracked
        raw = _current(tracked, made)
        if raw is not None and _usable(raw, versions):
            tracked.hits += 1
        else:
            tracked.round_trips += 1
            words = _read_through(made, versions)
            raw = tracked.call("mget", made, *words, marks=versions)  # type: ignore[assignment]
        assert raw is not None
        _noted(cache, tracked, raw)
    return _answered(side, tracked, names, made, raw)


def holds(cache: BaseCache, proof: Proof) -> bool:
    """Whether the read ``proof`` proves would now be answered from the copy with the same raw
    values: pending invalidations applied first, under the lease, no holder mark run out (the
    same conditions as ``get_many``). On the connection the read used: the process's, or the
    running event loop's."""
    side = _side(cache)
    if side is None:
        return False
    tracked = proof.tracked
    if tracked is side.tracked:
        # Not waiting: a thread holding the lock may be in a read through (an event loop must
        # not block on it); the caller then computes its answer, which waits as reads do.
        if not side.lock.acquire(blocking=False):
            return False
        try:
            return _still(tracked, proof)
        finally:
            side.lock.release()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    return side.by_loop.get(loop) is tracked and _still(tracked, proof)


def _current(tracked: Tracked, made: list[str]) -> list[bytes | None] | None:
    """The copy's raw values of ``made`` once everything the server sent is applied, in the
    request's own path (None: one is not held, or the lease ran out)."""
    tracked.check_pid()
    tracked.drain()
    return tracked.lookup(made, conf.LEASE_SECONDS)


def _still(tracked: Tracked, proof: Proof) -> bool:
    if _current(tracked, proof.made) != proof.raw or tracked.server != proof.server:
        return False
    tracked.hits += 1
    served.note(tracked.server)
    return True


async def aget_many(
    cache: BaseCache, names: list[str], versions: int
) -> dict[str, object]:
    """``get_many`` for async code, on the running event loop's own tracking connection."""
    side = _side(cache)
    if side is None:
        return await fastcache.aget_many(cache, names)
    made = side.made_keys(names)
    tracked = side.for_loop(asyncio.get_running_loop())
    raw = _current(tracked, made)
    if raw is not None and _usable(raw, versions):
        tracked.hits += 1
    else:
        tracked.round_trips += 1
        words = _read_through(made, versions)
        raw = await tracked.acall("mget", made, *words, marks=versions)  # type: ignore[assignment]
    assert raw is not None
    _noted(cache, tracked, raw)
    return _answered(side, tracked, names, made, raw)


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
