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
from typing import TYPE_CHECKING, Any, Final

from django.core.cache import caches

from django_conditional import redis_adapter
from django_conditional.conf import conf
from django_conditional.store import database

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

logger = logging.getLogger("django_conditional")

SCHEMA: Final = "v1"  # bump when the meaning of cached values changes
_lock = threading.Lock()
# Keys whose cached value may be stale in this process: a write to the cache failed.
untrusted: set[str] = set()


def cache() -> BaseCache:
    return caches[conf.CACHE_ALIAS]


def prefix() -> str:
    """What the cache key of a version key starts with."""
    return f"{conf.KEY_PREFIX}:{SCHEMA}:"


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
    keys: Sequence[str], cached: Mapping[str, Any], start: str
) -> tuple[dict[str, int], list[str]]:
    """The trusted cached versions of ``keys``, and the keys the database must answer."""
    found: dict[str, int] = {}
    missing: list[str] = []
    distrusted = untrusted
    for key in keys:
        value = cached.get(start + key)
        # Anything but a plain int (a foreign or corrupt value) is not trusted.
        if type(value) is int and not (distrusted and key in distrusted):
            found[key] = value
        else:
            missing.append(key)
    return found, missing


# Versions only grow in absolute value: a write that would lower the cached one is dropped, so
# neither a slow bumper nor a reader that read the database before a commit moves it back.
# Returns the values the keys hold afterwards.
_SET_MAX: Final = """
local ttl = tonumber(ARGV[1])
local result = {}
for i, key in ipairs(KEYS) do
  local new = tonumber(ARGV[i + 1])
  local raw = redis.call('GET', key)
  local old = raw and tonumber(raw)
  if (not old) or math.abs(old) < math.abs(new) then
    if ttl > 0 then
      redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
    else
      redis.call('SET', key, ARGV[i + 1])
    end
    result[i] = ARGV[i + 1]
  else
    result[i] = raw
  end
end
return result
"""


class MonotonicWriter:
    """Writes versions to the primary of Django's ``RedisCache`` through the ``_SET_MAX`` script."""

    def __init__(self, described: redis_adapter.RedisBackend) -> None:
        self.client = described.primary_client()
        self.script: Any = self.client.register_script(_SET_MAX)
        self.make_key = described.make_key

    def set_max(self, values: Mapping[str, int], timeout: int | None) -> dict[str, int]:
        """Store each version unless the cache holds a larger one (one round trip); returns
        what the cache holds afterwards."""
        if not values or (timeout is not None and timeout <= 0):
            return dict(values)  # Django's meaning of a timeout <= 0: do not cache
        after = self.script(
            keys=[self.make_key(key) for key in values],
            args=[timeout or 0, *values.values()],
        )
        return {key: int(value) for key, value in zip(values, after, strict=True)}

    def set_many(self, values: Mapping[str, int], timeout: int | None) -> None:
        """Plain ``SET``s, in one pipeline (to move a value back down)."""
        pipeline = self.client.pipeline(transaction=False)
        for key, value in values.items():
            pipeline.set(self.make_key(key), value, ex=timeout)
        pipeline.execute()


_WRITER: Final = "_django_conditional_writer"


def monotonic_writer(backend: BaseCache) -> MonotonicWriter | None:
    """The monotonic writer of ``backend`` (one per cache object), None off Django's RedisCache."""
    described = redis_adapter.backend(backend)
    if described is None or not described.plain_ints:
        return None  # the script writes plain integers, as Django's own serializer does
    writer: MonotonicWriter | None = backend.__dict__.get(_WRITER)
    if writer is None:
        writer = backend.__dict__[_WRITER] = MonotonicWriter(described)
    return writer


def fill(backend: BaseCache, start: str, values: Mapping[str, int]) -> None:
    """Store what a reader read from the database, never over a newer value."""
    timeout = conf.VERSION_CACHE_TIMEOUT
    trusted = {start + k: v for k, v in values.items() if k not in untrusted}
    try:
        writer = monotonic_writer(backend)
        if writer is not None:
            writer.set_max(trusted, timeout)
            return
        for key, value in trusted.items():
            backend.add(key, value, timeout)
    except Exception as exc:
        warn("add", exc)


def _set_and_verify(
    backend: BaseCache, start: str, db: str, committed: dict[str, int]
) -> None:
    timeout = conf.VERSION_CACHE_TIMEOUT
    keys = list(committed)
    backend.set_many({start + k: v for k, v in committed.items()}, timeout)
    # A concurrent bump may have committed and set a newer value before our set landed: read
    # the database and set what moved. Whatever commits after this read is followed by its own
    # bumper's set, so the cache ends at the latest committed version.
    current = committed
    for _round in range(3):
        again = database.read(keys, db)
        moved = {k: v for k, v in again.items() if v != current[k]}
        if not moved:
            return
        backend.set_many({start + k: v for k, v in moved.items()}, timeout)
        current = again
    backend.delete_many([start + k for k in keys])  # too busy: let readers refill


def _set_max_and_check(
    writer: MonotonicWriter, start: str, db: str, committed: dict[str, int]
) -> None:
    # A larger cached value is a concurrent newer bump, unless the database went back (a
    # restored backup, a test's rolled-back transaction): then the database wins.
    timeout = conf.VERSION_CACHE_TIMEOUT
    after = writer.set_max({start + k: v for k, v in committed.items()}, timeout)
    ahead = [k for k in committed if after[start + k] != committed[k]]
    if ahead:
        now = database.read(ahead, db)
        behind = {
            start + k: now[k] for k in ahead if abs(now[k]) < abs(after[start + k])
        }
        if behind:
            writer.set_many(behind, timeout)


def publish(db: str, committed: dict[str, int]) -> None:
    """After commit: write the versions a bump committed to the cache (see the module docstring)."""
    backend = cache()
    start = prefix()
    try:
        writer = monotonic_writer(backend)
        if writer is not None:
            _set_max_and_check(writer, start, db, committed)
        else:
            _set_and_verify(backend, start, db, committed)
    except Exception as exc:  # the cache, or the database read, failed
        warn("set_many", exc)
        try:
            backend.delete_many([start + k for k in committed])
        except Exception as exc2:
            warn("delete_many", exc2)
            with _lock:
                untrusted.update(committed)
