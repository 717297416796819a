"""The cache in front of the version rows: which cached values to trust, fills, publication.

No process-local copy of a version is ever kept; the cache is shared by every worker.

- **Writers** publish after their transaction commits: ``set`` the committed values, then read
  the database once and ``set`` again the keys that moved meanwhile (so the last ``set`` is never
  older than the last commit). On Django's ``RedisCache`` a Lua script stores a version only if it
  is larger in absolute value than the cached one, so not even an instant shows an older version.
- **Readers** that missed fill with ``add`` (only if absent) or the same monotonic script, so a
  reader that read the database just before a bump committed never overwrites the bump's value.
- **Failures** are logged (logger ``django_conditional``) and the database answers. A writer that
  cannot set deletes the keys; if that fails too, this process distrusts the keys and deletes them
  as soon as the cache answers again.

Values are plain ``int``, so Django's ``RedisCache`` stores them without pickling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from django.core.cache import caches

from django_conditional import fastcache
from django_conditional.conf import conf
from django_conditional.store import database, epoch
from django_conditional.store.scripts import (
    EpochMoved,
    MonotonicWriter,
    epoch_store,
    monotonic_writer,
)
from django_conditional.store.stamps import (
    Stamp,
    coming,
    decode,
    encode,
    pickled,
    raw_version,
    versions_of,
)

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

logger = logging.getLogger("django_conditional")

# What a key holds between a bump and its publication (``pending:<kept>:<coming>``, the version
# the bump commits last): readers take it for a miss and never fill over it, and only the
# publication of that version or a later one replaces it, so a publication that fails, or an
# earlier bump's late one, leaves every worker reading the database.
PENDING: Final = "pending"
_lock = threading.Lock()
# Keys whose cached value may be stale in this process: a write to the cache failed.
untrusted: set[str] = set()


def cache() -> BaseCache:
    return caches[conf.CACHE_ALIAS]


def warn(action: str, exc: BaseException) -> None:
    logger.warning(
        "django_conditional: cache %s failed (%s: %s); using the database",
        action,
        type(exc).__name__,
        exc,
    )


def repair(backend: BaseCache, start: str) -> None:
    """Delete the keys a failed write left untrusted, now that the cache answers."""
    with _lock:
        keys = list(untrusted)
    try:
        backend.delete_many([start + key for key in keys])
    except Exception as exc:
        warn("delete", exc)
        return
    with _lock:
        untrusted.difference_update(keys)


def split(
    keys: Sequence[str], cached: Mapping[str, object], start: str
) -> tuple[dict[str, Stamp], list[str]]:
    """The trusted cached stamps of ``keys``, and the keys the database must answer."""
    found: dict[str, Stamp] = {}
    missing: list[str] = []
    distrusted = untrusted
    for key in keys:
        # Anything but a stamp (pending, foreign or corrupt) is not trusted.
        stamp = decode(cached.get(start + key))
        if stamp is not None and not (distrusted and key in distrusted):
            found[key] = stamp
        else:
            missing.append(key)
    return found, missing


def fill(backend: BaseCache, into: int, values: Mapping[str, Stamp]) -> None:
    """Store what a reader read from the database in epoch ``into``, never over anything."""
    if not into:
        return
    trusted = {k: v for k, v in values.items() if k not in untrusted}
    server = fastcache.server_id(backend)
    try:
        writer = monotonic_writer(backend)
        if writer is not None:
            writer.write(
                "fill", server, into, _pickled(trusted), conf.VERSION_CACHE_TIMEOUT
            )
            return
        start = epoch.prefix(into)
        for key, value in trusted.items():
            backend.add(start + key, encode(value), conf.VERSION_CACHE_TIMEOUT)
    except EpochMoved:
        return  # a namespace nobody reads any more
    except Exception as exc:
        warn("add", exc)


def _live_epoch(backend: BaseCache, server: str | None, attempt: int) -> int:
    """The epoch a write goes into. The script checks it atomically with the write (another
    epoch, or none: ``EpochMoved``, and the next attempt asks the cache), so its first attempt
    takes the one believed and spares a round trip; anything else asks the cache."""
    believed = epoch.believed(server)
    if attempt == 0 and believed and monotonic_writer(backend) is not None:
        return believed
    return epoch.establish(epoch_store(backend), server)


def _mark(
    backend: BaseCache, marks: dict[str, int], server: str | None, attempt: int
) -> None:
    into = _live_epoch(backend, server, attempt)
    if not into:
        return
    writer = monotonic_writer(backend)
    if writer is not None:  # the script keeps the version each mark replaces
        writer.write("mark", server, into, marks, conf.PENDING_TIMEOUT)
        return
    start = epoch.prefix(into)
    backend.set_many(
        {start + k: f"{PENDING}:?:{v}" for k, v in marks.items()}, conf.PENDING_TIMEOUT
    )


def mark_pending(bumped: Mapping[str, Stamp]) -> None:
    """Before a bump commits, its rows locked: mark its keys pending in the live epoch, each
    naming the version the bump commits (see ``PENDING``)."""
    timeout = conf.VERSION_CACHE_TIMEOUT
    if timeout is not None and timeout <= 0:
        return  # versions are not cached at all
    backend = cache()
    marks = versions_of(bumped)
    try:
        server = fastcache.server_id(backend)
        for attempt in range(4):  # the first may take a stale belief
            try:
                return _mark(backend, marks, server, attempt)
            except EpochMoved as moved:  # another server life: mark there
                server = moved.server
            except epoch.Retired:  # its connections are closed: ask Sentinel again
                server = fastcache.server_id(backend)
    except Exception as exc:
        warn("mark", exc)


def _set_unless_marked_later(
    backend: BaseCache, start: str, stamps: Mapping[str, Stamp]
) -> None:
    # Not over the mark of a later bump (two commands here, not one script: a mark made between
    # them can still be replaced; the script closes that on Redis).
    held = backend.get_many([start + k for k in stamps])
    backend.set_many(
        {
            start + k: encode(v)
            for k, v in stamps.items()
            if abs(coming(held.get(start + k)) or 0) <= abs(v[0])
        },
        conf.VERSION_CACHE_TIMEOUT,
    )


def _set_and_verify(
    backend: BaseCache, start: str, db: str, committed: dict[str, Stamp]
) -> None:
    keys = list(committed)
    _set_unless_marked_later(backend, start, committed)
    # A concurrent bump may have committed and set a newer value before our set landed: read
    # the database and set what moved. Whatever commits after this read is followed by its own
    # bumper's set, so the cache ends at the latest committed version.
    current = committed
    for _round in range(3):
        again = database.read_stamps(keys, db)
        moved = {k: v for k, v in again.items() if v[0] != current[k][0]}
        if not moved:
            return
        _set_unless_marked_later(backend, start, moved)
        current = again
    backend.delete_many([start + k for k in keys])  # too busy: let readers refill


def _set_max_and_check(
    writer: MonotonicWriter,
    server: str | None,
    into: int,
    db: str,
    committed: dict[str, Stamp],
) -> None:
    # A larger cached value is a concurrent newer bump, unless the database went back (a
    # restored backup, a test's rolled-back transaction): then the database wins.
    timeout = conf.VERSION_CACHE_TIMEOUT
    after = writer.write("publish", server, into, _pickled(committed), timeout)
    ahead = [k for k in committed if raw_version(after[k]) != committed[k][0]]
    if ahead:
        now = database.read_stamps(ahead, db)
        behind = {
            k: now[k] for k in ahead if abs(now[k][0]) < abs(raw_version(after[k]) or 0)
        }
        if behind:
            writer.write("set", server, into, _pickled(behind), timeout)


def _pickled(stamps: Mapping[str, Stamp]) -> dict[str, bytes]:
    return {key: pickled(stamp) for key, stamp in stamps.items()}


def _publish_once(
    backend: BaseCache,
    server: str | None,
    db: str,
    committed: dict[str, Stamp],
    attempt: int,
) -> bool:
    # The epoch is checked after the commit (by the script, or read): a namespace made later
    # reads the database after it.
    into = _live_epoch(backend, server, attempt)
    if not into:
        return False  # nothing cached is trusted: readers go to the database
    writer = monotonic_writer(backend)
    if writer is not None:
        _set_max_and_check(writer, server, into, db, committed)
        return True
    _set_and_verify(backend, epoch.prefix(into), db, committed)
    return False


def publish(db: str, committed: dict[str, Stamp]) -> bool:
    """After commit: write the versions a bump committed into the live epoch. True when the
    script did, and said which write fence it needs (``store.fence.fence_for``)."""
    backend = cache()
    server = fastcache.server_id(backend)
    try:
        for attempt in range(4):  # the first may take a stale belief
            try:
                return _publish_once(backend, server, db, committed, attempt)
            except EpochMoved as moved:
                server = moved.server
                fastcache.note_server(backend, server)
            except epoch.Retired:  # a failover: the connections were closed, ask again
                server = fastcache.server_id(backend)
        raise EpochMoved(server)  # the server keeps changing: leave the marks to expire
    except Exception as exc:  # the cache, or the database read, failed
        warn("set_many", exc)
        start = epoch.prefix(epoch.believed(server))
        try:
            backend.delete_many([start + k for k in committed])
        except Exception as exc2:
            warn("delete_many", exc2)
            with _lock:
                untrusted.update(committed)
        return False
