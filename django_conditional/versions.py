"""The version store: one integer per resource, in the database, read through a shared cache.

A key never bumped has version 0; a negative version means the object was deleted. Keys are built
by ``object_key`` and ``collection_key`` (``store.keys``); rows live in the database
(``store.database``); the cache in front of them is kept right across workers as
``store.cache`` explains. This module is the store's public face:

- ``read(keys, extra_key)``: everything an answer needs, in one cache round trip, the database
  answering (and the cache being filled) for the keys the cache missed;
- ``bump(*keys)``: increment in the database, publish to the cache when the transaction commits;
- ``lock(keys)``: lock the rows for a write's precondition check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from asgiref.sync import sync_to_async
from django.core.cache.backends.base import BaseCache
from django.db import transaction

from django_conditional import fastcache, purge
from django_conditional.store import cache as store_cache
from django_conditional.store import committing, database, epoch, fence, local, served
from django_conditional.store import scripts as store_scripts
from django_conditional.store.database import lock, lock_stamps
from django_conditional.store.keys import (
    MAX_KEY_LENGTH,
    bounded_key,
    collection_key,
    object_key,
    parse_key,
)
from django_conditional.store.proofs import Proof, unchanged
from django_conditional.store.stamps import Stamp, decode, moment, versions_of

__all__ = [
    "MAX_KEY_LENGTH",
    "Proof",
    "Snapshot",
    "Stamp",
    "aget_many",
    "aread",
    "bump",
    "cache_key",
    "clear_local_state",
    "collection_key",
    "committed_versions",
    "get",
    "get_many",
    "lock",
    "lock_stamps",
    "locked_stamps",
    "object_key",
    "parse_key",
    "read",
    "unchanged",
    "untrusted_keys",
    "versions_of",
]

logger = logging.getLogger("django_conditional")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one read returned: the versions of the keys asked for, the time of each one's last
    bump (None when not known: never bumped, or cached by an older release), and the value cached
    at the extra key fetched in the same round trip (None when absent or the cache failed)."""

    versions: dict[str, int]
    extra: object = None
    changed: dict[str, datetime | None] = field(default_factory=dict)
    # Set when the process-local copy answered the whole read: see ``unchanged``.
    proof: Proof | None = None

    @classmethod
    def of(
        cls,
        stamps: Mapping[str, Stamp],
        extra: object = None,
        proof: Proof | None = None,
    ) -> Snapshot:
        return cls(
            versions_of(stamps),
            extra,
            {key: moment(stamp[1]) for key, stamp in stamps.items()},
            proof,
        )

    def last_changed(self) -> datetime | None:
        """The latest bump of the keys (None if none was ever bumped): a ``Last-Modified``."""
        times = [time for time in self.changed.values() if time is not None]
        return max(times) if times else None


def cache_key(key: str) -> str:
    """The cache key (before the cache's own ``KEY_PREFIX``) holding the version of ``key`` in
    the live epoch (made if there is none)."""
    backend = store_cache.cache()
    server = fastcache.server_id(backend)
    live = epoch.establish(store_scripts.epoch_store(backend), server)
    return epoch.prefix(live) + bounded_key(key)


def untrusted_keys() -> frozenset[str]:
    """Keys whose cached versions this process does not trust (a cache write of theirs failed)."""
    return frozenset(store_cache.untrusted)


def clear_local_state() -> None:
    """Forget what this process distrusts and the epochs it saw (tests that clear the cache)."""
    store_cache.untrusted.clear()
    epoch.forget()


@dataclass(frozen=True, slots=True)
class _Plan:
    """One read: the keys, the epoch and server this process expects, the extra key."""

    keys: list[str]
    server: str | None
    epoch: int
    extra_key: str | None
    backend: BaseCache

    @property
    def prefix(self) -> str:
        return epoch.prefix(self.epoch)

    def cache_keys(self) -> list[str]:
        start = self.prefix
        wanted = [epoch.key(self.server), *(start + key for key in self.keys)]
        if self.extra_key is not None:
            wanted.append(self.extra_key)
        return wanted

    def trusts(self, cached: Mapping[str, object] | None) -> bool:
        """Whether ``cached`` comes from the epoch and server expected (else: the database)."""
        if cached is None or not self.epoch:
            return False
        same_server = served.by() == self.server  # the server that answered this read
        return same_server and cached.get(epoch.key(self.server)) == self.epoch


def _plan(keys: Iterable[str], extra_key: str | None) -> _Plan:
    unique = list(dict.fromkeys(bounded_key(key) for key in keys))
    backend = store_cache.cache()
    server = fastcache.server_id(backend)
    return _Plan(unique, server, epoch.believed(server), extra_key, backend)


def _from_database(plan: _Plan, cached: Mapping[str, object] | None) -> Snapshot:
    # The cache failed, or holds another epoch (a flush, a restart, a failover): the database
    # answers and the live epoch is filled. The epoch is made BEFORE the database read: a fill
    # lands only in an epoch that existed before its read, so a write committed before the read
    # published into it or finds it (a new master's epoch follows the old one's retirement).
    backend = store_cache.cache()
    into = 0
    if cached is not None:
        server = fastcache.server_id(backend)
        try:
            into = epoch.establish(store_scripts.epoch_store(backend), server)
        except Exception as exc:
            store_cache.warn("epoch", exc)
    fresh = database.read_stamps(plan.keys)
    store_cache.fill(backend, into, fresh)
    return Snapshot.of(fresh)


def _complete(plan: _Plan, cached: Mapping[str, object] | None) -> Snapshot:
    """The snapshot from what the cache returned (None: it failed), reading and filling what it
    missed. Sync: async callers run it in a thread when the database must answer."""
    if not plan.trusts(cached):
        extra = (
            None
            if cached is None or plan.extra_key is None
            else cached.get(plan.extra_key)
        )
        fallback = _from_database(plan, cached)
        return Snapshot(fallback.versions, extra, fallback.changed)
    assert cached is not None
    backend = store_cache.cache()
    # Split before repairing: the values just read may be the ones a failed write left stale.
    found, missing = store_cache.split(plan.keys, cached, plan.prefix)
    proof = None
    if store_cache.untrusted:
        store_cache.repair(backend, plan.prefix)
    elif not missing and isinstance(cached, local.Read):
        proof = Proof(plan.server, plan.epoch, cached.proof, plan.backend)
    if missing:
        fresh = database.read_stamps(missing)
        store_cache.fill(backend, plan.epoch, fresh)
        found.update(fresh)
    extra = cached.get(plan.extra_key) if plan.extra_key is not None else None
    return Snapshot.of(found, extra, proof)


def _all_cached(plan: _Plan, cached: Mapping[str, object] | None) -> bool:
    if not plan.trusts(cached) or store_cache.untrusted:
        return False
    assert cached is not None
    start = plan.prefix
    return all(decode(cached.get(start + key)) is not None for key in plan.keys)


def _learnt(plan: _Plan, cached: Mapping[str, object] | None) -> bool:
    """Whether a read this process could not trust taught it what a second read needs: the
    server's ``run_id`` (a new connection) or its live epoch (its first read of that server).
    Then a new worker's first 304 costs a round trip more, not a database connection."""
    if cached is None:
        return False
    server = fastcache.server_id(plan.backend)
    if server != plan.server:
        return server is not None
    if plan.epoch:
        return False  # an epoch believed: ``_complete`` decides whether the read is trusted
    return epoch.adopt(server, cached.get(epoch.key(server)))


def _get(plan: _Plan) -> Mapping[str, object] | None:
    try:
        return local.get_many(plan.backend, plan.cache_keys(), len(plan.keys))
    # To the database: asking the failing cache again would double the wait.
    except Exception as exc:
        store_cache.warn("get_many", exc)
        return None


async def _aget(plan: _Plan) -> Mapping[str, object] | None:
    try:
        return await local.aget_many(plan.backend, plan.cache_keys(), len(plan.keys))
    except Exception as exc:
        store_cache.warn("get_many", exc)
        return None


def read(keys: Iterable[str], extra_key: str | None = None) -> Snapshot:
    """The versions of ``keys`` and the value at ``extra_key``: one cache round trip; the database
    answers for the keys the cache missed (and they are filled). ``DatabaseError`` propagates."""
    plan = _plan(keys, extra_key)
    if not plan.keys and extra_key is None:
        return Snapshot({})
    cached = _get(plan)
    for _again in range(2):  # what a new process learns: the server, then its epoch
        if not _learnt(plan, cached):
            break
        plan = _plan(keys, extra_key)
        cached = _get(plan)
    return _complete(plan, cached)


async def aread(keys: Iterable[str], extra_key: str | None = None) -> Snapshot:
    """``read`` for async code: the round trip on the event loop, the database in a thread."""
    plan = _plan(keys, extra_key)
    if not plan.keys and extra_key is None:
        return Snapshot({})
    cached = await _aget(plan)
    for _again in range(2):
        if not _learnt(plan, cached):
            break
        plan = _plan(keys, extra_key)
        cached = await _aget(plan)
    if _all_cached(plan, cached):
        return _complete(plan, cached)  # no I/O left
    return await sync_to_async(_complete)(plan, cached)


def get_many(keys: Iterable[str]) -> dict[str, int]:
    """Versions of ``keys``: one cache round trip, one database query for the keys it missed."""
    return read(keys).versions


async def aget_many(keys: Iterable[str]) -> dict[str, int]:
    """``get_many`` for async views."""
    return (await aread(keys)).versions


def get(key: str) -> int:
    """The version of one key (see ``get_many``)."""
    return get_many([key])[bounded_key(key)]


def locked_stamps(keys: Iterable[str]) -> dict[str, Stamp]:
    """The versions and bump times of ``keys`` as this transaction sees them (after ``lock``)."""
    return database.read_stamps(list(keys))


def committed_versions(locked: Mapping[str, int]) -> dict[str, int]:
    """The versions the keys ``lock`` returned will have when this transaction commits: the
    locked values with its own bumps applied (no other transaction can bump a locked row), read
    from the rows only when Django's commit hooks cannot tell the bumps."""
    bumps = committing.bumped(database.database())
    if bumps is None:
        return versions_of(locked_stamps(locked))
    return {
        key: bumps[key][0] if key in bumps else version
        for key, version in locked.items()
    }


def _announce(committed: dict[str, int]) -> None:
    from django_conditional.signals import version_bumped

    results = version_bumped.send_robust(
        sender=database.row_model(), keys=tuple(committed), versions=committed
    )
    for receiver, response in results:
        if isinstance(response, Exception):
            logger.error(
                "django_conditional: version_bumped receiver %r raised",
                receiver,
                exc_info=response,
            )


def _published(db: str, committed: dict[str, Stamp]) -> None:
    reported = store_cache.publish(db, committed)
    fence.published(reported)  # the write fence (store/fence.py)
    purge.flush(db)  # every key of the transaction, once (shared caches: Varnish, CDNs)
    _announce(versions_of(committed))


def bump(*keys: str, deleted: bool = False, using: str | None = None) -> dict[str, int]:
    """Increment the versions of ``keys`` atomically in the database; returns the new versions.

    Call it after changing data by means that send no model signals (raw SQL, another process).
    Inside a transaction the new versions are visible to this transaction at once, and to the
    cache, other workers and ``version_bumped`` receivers only when it commits; a rollback undoes
    them. ``deleted=True`` marks objects as deleted (their version turns negative).
    """
    # Sorted: concurrent bumps of overlapping keys lock their rows in one order, never deadlock.
    unique: Sequence[str] = sorted({bounded_key(key) for key in keys})
    if not unique:
        return {}
    db = database.database(using)
    with transaction.atomic(using=db, savepoint=False):
        purge.collect(db, unique)
        stamps = database.increment(db, unique, deleted)
        # The rows are locked now: each mark names the version this bump commits, so an
        # earlier bump's late publication cannot lift it (store/cache.py, ``PENDING``).
        store_cache.mark_pending(stamps)
        # The rows stay locked until the commit: these are the values it commits.
        committing.register(db, stamps, _published)
    return versions_of(stamps)
