"""Helpers shared by the versioned-view tests: count cache round trips, warm the version cache."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from asgiref.sync import async_to_sync
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache

from django_conditional import versions
from django_conditional.conf import conf

CACHE_METHODS = (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "get_or_set",
    "has_key",
    "incr",
    "decr",
    "set_many",
    "delete_many",
    "clear",
)


class CacheCalls:
    """Top-level calls to the cache API (a ``get_many`` that loops over ``get`` counts once),
    and, on Redis, the commands sent to the server (each one a network round trip)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.redis_commands: list[str] = []
        self._depth = threading.local()
        self._lock = threading.Lock()

    @property
    def round_trips(self) -> int:
        """Round trips made for the requests: on Redis, without those that open a connection."""
        if not self.on_redis:
            return len(self.calls)
        return sum(name not in _HANDSHAKE for name in self.redis_commands)

    on_redis = False


@contextmanager
def count_cache_calls() -> Iterator[CacheCalls]:
    """Count the cache round trips made inside the block (in every thread)."""
    cache = caches[conf.CACHE_ALIAS]
    counter = CacheCalls()
    backend = type(cache)
    with ExitStack() as stack:
        for name in CACHE_METHODS + tuple("a" + m for m in CACHE_METHODS):
            original = getattr(backend, name, None)
            # BaseCache's async defaults call the sync methods (counted there); patching them
            # would also hide from the code under test that the backend has no native async API.
            if original is None or (
                name not in CACHE_METHODS and original is getattr(BaseCache, name, None)
            ):
                continue
            stack.enter_context(
                mock.patch.object(backend, name, _counted(counter, name, original))
            )
        if backend.__name__ == "RedisCache":
            import redis.asyncio.connection
            import redis.connection

            counter.on_redis = True
            # Counted where every command (or pipeline) leaves for the server: one packet, one
            # round trip, whichever client sends it (Django's, or fastcache's kept connection).
            sync_cls: Any = redis.connection.AbstractConnection
            async_cls: Any = redis.asyncio.connection.AbstractConnection
            send, asend = sync_cls.send_packed_command, async_cls.send_packed_command

            def send_packed_command(
                self: Any, command: Any, *args: Any, **kw: Any
            ) -> Any:
                with counter._lock:
                    counter.redis_commands.append(_command_name(command))
                return send(self, command, *args, **kw)

            async def asend_packed_command(
                self: Any, command: Any, *args: Any, **kw: Any
            ) -> Any:
                with counter._lock:
                    counter.redis_commands.append(_command_name(command))
                return await asend(self, command, *args, **kw)

            stack.enter_context(
                mock.patch.object(sync_cls, "send_packed_command", send_packed_command)
            )
            stack.enter_context(
                mock.patch.object(
                    async_cls, "send_packed_command", asend_packed_command
                )
            )
        yield counter


# What redis-py sends when it opens a connection (library name, database, credentials), once per
# connection: a kept connection never sends them again. A new event loop opens a new connection.
_HANDSHAKE = frozenset({"CLIENT", "SELECT", "AUTH", "HELLO", "READONLY"})


def _command_name(packed: Any) -> str:
    """The name of the (first) command in a packed RESP request: ``*2\r\n$4\r\nMGET...``."""
    data = packed if isinstance(packed, bytes) else b"".join(packed)
    lines = data.split(b"\r\n", 3)
    return lines[2].decode("ascii", "replace").upper() if len(lines) > 2 else "?"


def _counted(counter: CacheCalls, name: str, original: Any) -> Any:
    if name not in CACHE_METHODS:

        async def acall(self: BaseCache, *args: Any, **kwargs: Any) -> Any:
            depth = getattr(counter._depth, "value", 0)
            if depth == 0:
                with counter._lock:
                    counter.calls.append(name)
            counter._depth.value = depth + 1
            try:
                return await original(self, *args, **kwargs)
            finally:
                counter._depth.value = depth

        return acall

    def call(self: BaseCache, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(counter._depth, "value", 0)
        if depth == 0:
            with counter._lock:
                counter.calls.append(name)
        counter._depth.value = depth + 1
        try:
            return original(self, *args, **kwargs)
        finally:
            counter._depth.value = depth

    return call


def clear_version_cache() -> None:
    caches[conf.CACHE_ALIAS].clear()
    versions.clear_local_state()


def run_async(method: Any) -> Any:
    """``async_to_sync`` for ``AsyncClient`` methods, which are plain functions returning a
    coroutine on Django 4.2 (asgiref warns about those)."""

    async def call(*args: Any, **kwargs: Any) -> Any:
        return await method(*args, **kwargs)

    return async_to_sync(call)
