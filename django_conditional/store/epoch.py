"""The epoch: which namespace of cached versions the current cache server life may trust.

Cached versions live under ``<KEY_PREFIX>:<schema>:<epoch>:``. The epoch is a random integer
kept in the cache at ``<KEY_PREFIX>:<schema>:epoch:<server>``, where ``<server>`` is the Redis
``run_id`` the fast path's connection reached (``any`` on other backends). So:

- a ``FLUSHDB`` (or an eviction of the epoch key) leaves no epoch: the next reader makes a new
  one, and every version is read from the database again;
- a restart (from a snapshot or not), a failover or a restore puts a server with another
  identity (``run_id`` and replication id, ``redis_adapter.server_identity``) in front of the
  data: its epoch key has another name, so nothing the old server life cached is trusted,
  whatever the snapshot or the replication stream holds;
- under Sentinel, a process makes the first epoch on a server only when a majority of the
  sentinels names that server the master, and after **retiring** every other server that still
  says it is a master (``retired`` in its epoch key, and a copy on the new master;
  ``EpochStore.retire_others``), then one lease ``T``. A former master that still takes commands
  (Sentinel demotes it seconds after the failover) is then trusted by nobody, and whoever reads
  ``retired`` drops its connections and asks Sentinel again (``Retired``). When it cannot be
  sure (no majority, a listed server that does not answer), no epoch is made: the database
  answers and the next read tries again.

Every read fetches the epoch key in its one round trip and trusts the versions only when it
holds the epoch the process expected; writers publish (after their commit) only into the epoch
live at that moment, so a namespace created later reads the database after the commit.
"""

from __future__ import annotations

import secrets
import threading
from typing import Final, Protocol

from django_conditional.conf import conf

SCHEMA: Final = "v3"  # bump when the meaning of cached values changes
ANY_SERVER: Final = "any"
RETIRED: Final = "retired"
_lock = threading.Lock()
# (cache alias, server) -> the epoch this process last saw there.
_believed: dict[tuple[str, str], int] = {}


def base() -> str:
    return f"{conf.KEY_PREFIX}:{SCHEMA}:"


def key(server: str | None) -> str:
    """Where the epoch of ``server`` (a Redis ``run_id``; None: not known) is kept."""
    return f"{base()}epoch:{server or ANY_SERVER}"


def prefix(epoch: int) -> str:
    """What the cache keys of versions in ``epoch`` start with."""
    return f"{base()}{epoch}:"


def believed(server: str | None) -> int:
    """The epoch this process expects on ``server`` (0: none known yet, a namespace never used)."""
    return _believed.get((conf.CACHE_ALIAS, server or ANY_SERVER), 0)


def _believe(server: str | None, epoch: int) -> int:
    with _lock:
        _believed[(conf.CACHE_ALIAS, server or ANY_SERVER)] = epoch
    return epoch


def forget() -> None:
    """Forget every epoch seen (tests that clear the cache)."""
    with _lock:
        _believed.clear()


class Retired(Exception):
    """The server's epoch key says ``retired``: a failover made another server the master."""


class EpochStore(Protocol):
    """Reads and adds the epoch key on the primary (``store.cache.epoch_store``)."""

    def get(self, name: str) -> object: ...

    def add(self, name: str, value: int) -> object: ...

    def delete(self, name: str) -> object: ...

    def retire_others(self, server: str | None) -> bool:
        """Make every other master of the group untrusted (Sentinel; else nothing to do);
        whether an epoch may be made on ``server`` now."""


def establish(store: EpochStore, server: str | None) -> int:
    """The live epoch of ``server``: the one the cache holds, else a new one (made with ``add``,
    so concurrent makers agree). Raises what the cache raises."""
    name = key(server)
    raw = store.get(name)
    found = _as_int(raw)
    if not found:
        if raw in (RETIRED, RETIRED.encode()):
            raise Retired(server)
        if raw is not None:
            # A foreign value where the epoch lives: ``add`` would never replace it, and every
            # read would go to the database for good. Only a value nobody trusts is removed.
            store.delete(name)
        if not store.retire_others(server):
            return 0  # not sure no other master is trusted: the database answers
        store.add(name, secrets.randbits(48) + 1)
        found = _as_int(store.get(name))
        if not found:  # evicted at once, or the cache refuses: trust nothing
            return 0
    return _believe(server, found)


def adopt(server: str | None, value: object) -> bool:
    """Believe ``value``, read at ``server``'s epoch key, when it is an epoch (as ``establish``
    does when it finds one); whether it is."""
    found = _as_int(value)
    if found:
        _believe(server, found)
    return bool(found)


def _as_int(value: object) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bytes) and value.isdigit():
        return int(value)
    return 0
