"""Cache reads for the version store: one round trip, and little CPU around it.

``get_many(cache, keys)`` is a drop-in for ``cache.get_many(keys)`` (a value the serializer
cannot read is reported missing). For Django's ``RedisCache`` and django-redis it skips what
makes that call expensive (a new client per call, every key validated again, redis-py's command
machinery): connections made like the cache's own to the primary (``redis_adapter``) are kept on
a small lock-free stack, the cache's key names computed once, all keys fetched with one ``MGET``
written straight to the connection and decoded as the cache decodes them; each read notes which
server answered it (``store.served``). Nothing read is kept; a forked worker never uses its
parent's connections. Other backends, subclasses, redis-py's client-side caching or another
private API go through the public cache API. Errors propagate as from ``cache.get_many``; a kept
connection the server closed is replaced once; a failed one is never reused. Async variants use
``redis.asyncio`` connections per event loop (Sentinel's options: a thread).
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final

from asgiref.sync import sync_to_async

from django_conditional import redis_adapter
from django_conditional.conf import conf
from django_conditional.store import served

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

    from django_conditional.redis_adapter import RedisBackend

__all__ = ["get_many", "aget_many", "get_ints", "aget_ints", "is_fast", "server_id"]

_ATTRIBUTE: Final = "_django_conditional_fast_reader"
_MAX_MADE_KEYS: Final = 4096
_NOT_FAST: Final = "not-fast"
_PROBE: Final = "django-conditional-probe"


def _new(template: Any) -> Any:
    return template.connection_class(**template.connection_kwargs)


def _packed(connection: Any, keys: list[str], kept: bool) -> Any:
    # A new connection also asks which server it reached, in the same round trip.
    if kept:
        return connection.pack_command("MGET", *keys)
    return connection.pack_commands([("INFO",), ("MGET", *keys)])


def _take(idle: list[Any], template: Any) -> tuple[Any, bool]:
    """A kept connection (and True), else a new one made like ``template``'s (and False)."""
    try:
        return idle.pop(), True  # atomic: two threads never take the same one
    except IndexError:
        return _new(template), False


_registry: dict[tuple[object, ...], _RedisReader] = {}
_registry_lock = threading.Lock()


class _RedisReader:
    """Connections to the primary of one cache configuration, and how to decode what it answers."""

    def __init__(self, described: RedisBackend) -> None:
        self._described = described
        self._loads = described.loads
        self._plain_ints = described.plain_ints
        self._made: dict[str, str] = {}
        self._template = described.primary_pool()
        if getattr(self._template, "cache", None) is not None:
            raise ValueError("redis-py client-side caching: read through the cache API")
        from redis.exceptions import ConnectionError as RedisConnectionError

        self._retried: tuple[type[BaseException], ...] = (RedisConnectionError,)
        self._pid = os.getpid()
        # The identity of the server the newest connection reached (``server_identity``): a
        # restart, a failover or a restore changes it (``versions`` then distrusts the epoch).
        self.server_id: str | None = None
        self._idle: list[Any] = []
        self._async_idle: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, list[Any]]
        ] = weakref.WeakKeyDictionary()

    # -- keys --

    def made_keys(self, keys: Sequence[str]) -> list[str]:
        made = self._made
        out = []
        for key in keys:
            full = made.get(key)
            if full is None:
                full = self._described.make_key(key)
                if len(made) >= _MAX_MADE_KEYS:
                    made.clear()
                made[key] = full
            out.append(full)
        return out

    # -- connections --

    def _note_server(self, connection: Any, info: object) -> None:
        """Remember which server (life and mastership) a new connection reached (``INFO``), on
        the connection too: each read says which server answered it (``served``)."""
        connection.conditional_server = redis_adapter.server_identity(info)
        self.server_id = connection.conditional_server

    def _idle_connections(self) -> list[Any]:
        if self._pid != os.getpid():
            # A forked worker: its parent's sockets are not its own to read from.
            self._idle = []
            self._pid = os.getpid()
        return self._idle

    def leave(self) -> None:
        idle, self._idle = self._idle, []
        self._async_idle = weakref.WeakKeyDictionary()  # closed with their loops
        self.server_id = None
        for connection in idle:
            with suppress(Exception):
                connection.disconnect()

    def mget(self, keys: list[str]) -> list[Any]:
        """``MGET keys`` on a kept connection: one round trip."""
        idle = self._idle_connections()
        connection, kept = _take(idle, self._template)
        while True:
            try:
                if (
                    not kept
                ):  # as redis-py's pools do: Sentinel's connections locate here
                    connection.connect()
                connection.send_packed_command(_packed(connection, keys, kept))
                if not kept:
                    self._note_server(connection, connection.read_response())
                raw: list[Any] = connection.read_response()
                served.note(getattr(connection, "conditional_server", None))
            except BaseException as exc:
                connection.disconnect()
                if kept and isinstance(exc, self._retried):
                    # A kept connection the server closed (a restart, an idle timeout): once
                    # more on a new one. A timeout is not retried: that would double the wait.
                    connection, kept = _new(self._template), False
                    continue
                raise
            idle.append(connection)
            return raw

    async def amget(self, keys: list[str]) -> list[Any]:
        """``mget`` for async code, on connections of the running event loop (in a thread when
        the cache's options have no asyncio equivalent: Sentinel's, ...)."""
        if self._described.new_async_pool is None:
            return await sync_to_async(self.mget, thread_sensitive=False)(keys)
        loop = asyncio.get_running_loop()
        found = self._async_idle.get(loop)
        if found is None:
            # A new loop (``async_to_sync`` makes one per call): forget the closed ones, whose
            # connections would otherwise keep them alive.
            for closed in [old for old in self._async_idle if old.is_closed()]:
                del self._async_idle[closed]
            template = self._described.new_async_pool()
            found = self._async_idle[loop] = (template, [])
        template, idle = found
        connection, kept = _take(idle, template)
        while True:
            try:
                await connection.send_packed_command(_packed(connection, keys, kept))
                if not kept:
                    self._note_server(connection, await connection.read_response())
                raw: list[Any] = await connection.read_response()
                served.note(getattr(connection, "conditional_server", None))
            except BaseException as exc:
                with suppress(Exception):
                    await connection.disconnect()
                if kept and isinstance(exc, self._retried):
                    connection, kept = _new(template), False
                    continue
                raise
            idle.append(connection)
            return raw

    # -- decoding --

    def decode(
        self, keys: Sequence[str], raw: Sequence[bytes | None]
    ) -> dict[str, object]:
        return decode(self._loads, keys, raw)

    def decode_ints(
        self, keys: Sequence[str], raw: Sequence[bytes | None]
    ) -> dict[str, int]:
        found: dict[str, int] = {}
        if self._plain_ints:
            for key, value in zip(keys, raw, strict=True):
                if value is not None:
                    with suppress(ValueError):  # a pickled value: not a version
                        found[key] = int(value)
            return found
        loads = self._loads
        for key, value in zip(keys, raw, strict=True):
            if value is not None:
                decoded = loads(value)
                if type(decoded) is int:
                    found[key] = decoded
        return found


def decode(
    loads: Callable[[bytes], object], keys: Sequence[str], raw: Sequence[bytes | None]
) -> dict[str, object]:
    """What ``MGET`` returned, decoded as the cache decodes it. A value the serializer cannot
    read (written by something else) is reported missing, as ``get_ints`` reports a non-int:
    one foreign value must not fail the whole read, nor stay unreplaced for good."""
    found: dict[str, object] = {}
    for key, value in zip(keys, raw, strict=True):
        if value is not None:
            with suppress(Exception):
                found[key] = loads(value)
    return found


def _build(cache: Any) -> _RedisReader | None:
    """A reader for ``cache`` when it reads exactly as Django's ``RedisCache``, else None."""
    described = redis_adapter.backend(cache)
    if described is None:
        return None
    with _registry_lock:
        reader = _registry.get(described.fingerprint)
        if reader is None:
            try:
                reader = _RedisReader(described)
            except Exception:
                return None
            _registry[described.fingerprint] = reader
    return reader


def _reader(cache: Any) -> _RedisReader | None:
    if not conf.REDIS_FAST_PATH:
        return None
    found = cache.__dict__.get(_ATTRIBUTE)
    if found is None:
        reader = _build(cache)
        cache.__dict__[_ATTRIBUTE] = _NOT_FAST if reader is None else reader
        return reader
    return None if found is _NOT_FAST else found


def server_id(cache: BaseCache) -> str | None:
    """The identity of the Redis server the fast path reads from (``server_identity``; None: not
    known, or not the fast path)."""
    reader = _reader(cache)
    if reader is None:
        return None
    if reader.server_id is None:
        # A new connection: INFO in the same round trip. Unreachable: the next read fails too.
        with suppress(Exception):
            reader.mget([_PROBE])
    return reader.server_id


def note_server(cache: BaseCache, server: str | None) -> None:
    """Record the server identity a writer found (the server restarted, or failed over)."""
    reader = _reader(cache)
    if reader is not None and server:
        reader.server_id = server


def reconnect(cache: BaseCache) -> None:
    """Close the kept connections: the next read makes new ones (and learns the server anew)."""
    reader = _reader(cache)
    if reader is not None:
        reader.leave()


def is_fast(cache: BaseCache) -> bool:
    """Whether reads from ``cache`` take the direct Redis path."""
    return _reader(cache) is not None


def _keys(keys: Iterable[str]) -> list[str]:
    return keys if type(keys) is list else list(keys)


def get_many(cache: BaseCache, keys: Iterable[str]) -> dict[str, object]:
    """``cache.get_many(keys)``, in one round trip."""
    keys = _keys(keys)
    if not keys:
        return {}
    reader = _reader(cache)
    if reader is None:
        served.note(None)
        return cache.get_many(keys)
    raw = reader.mget(reader.made_keys(keys))
    return reader.decode(keys, raw)


def get_ints(cache: BaseCache, keys: Iterable[str]) -> dict[str, int]:
    """The plain ``int`` values of ``keys`` in ``cache``; anything else is reported missing."""
    keys = _keys(keys)
    if not keys:
        return {}
    reader = _reader(cache)
    if reader is None:
        values = cache.get_many(keys)
        return {key: value for key, value in values.items() if type(value) is int}
    raw = reader.mget(reader.made_keys(keys))
    return reader.decode_ints(keys, raw)


async def _public_get_many(cache: BaseCache, keys: list[str]) -> dict[str, object]:
    from django.core.cache.backends.locmem import LocMemCache

    if type(cache) is LocMemCache:
        return cache.get_many(keys)  # in memory, never blocks: no thread needed
    result: dict[str, object] = await sync_to_async(cache.get_many)(keys)
    return result


async def aget_many(cache: BaseCache, keys: Iterable[str]) -> dict[str, object]:
    """``get_many`` for async code: ``redis.asyncio`` for ``RedisCache``, else the cache in a thread
    (one ``get_many``, where Django's ``aget_many`` makes one call per key)."""
    keys = _keys(keys)
    if not keys:
        return {}
    reader = _reader(cache)
    if reader is None:
        served.note(None)
        return await _public_get_many(cache, keys)
    raw = await reader.amget(reader.made_keys(keys))
    return reader.decode(keys, raw)


async def aget_ints(cache: BaseCache, keys: Iterable[str]) -> dict[str, int]:
    """``get_ints`` for async code."""
    keys = _keys(keys)
    if not keys:
        return {}
    reader = _reader(cache)
    if reader is None:
        values = await _public_get_many(cache, keys)
        return {key: value for key, value in values.items() if type(value) is int}
    raw = await reader.amget(reader.made_keys(keys))
    return reader.decode_ints(keys, raw)
