"""The one place that touches private APIs of Django's ``RedisCache`` (Django 4.2 to 6.x); what
the fast path needs of a Redis cache (``RedisBackend``), django-redis's described by
``django_redis_support`` through its public API.

``backend(cache)`` checks, once per cache object, that ``cache`` is exactly Django's
``RedisCache`` with its own client and serializer and that every private attribute used here
exists, or exactly django-redis's with its ``DefaultClient`` or ``SentinelClient``; it returns a
``RedisBackend`` describing it, or None, and everything else then goes through the public cache
API. ``CONDITIONAL_REDIS_FAST_PATH = False`` turns the fast path off.

With several ``LOCATION``s Django writes to the first server and reads from a random replica;
versions are read and written on the first (the primary) only: a lagging replica would answer
with a superseded version. Under Sentinel, the primary is the master Sentinel names at each
connect.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from django_conditional.conf import conf

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

__all__ = ["Address", "RedisBackend", "backend", "is_redis_cache"]

_ATTRIBUTE: Final = "_django_conditional_redis_backend"
_NONE: Final = "none"
_PRIVATE: Final = ("_pool_class", "_serializer", "_pool_options", "_servers", "_client")


@dataclass(frozen=True)
class Address:
    """Where and how a raw connection reaches the primary (``store.tracking``)."""

    host: str | None
    port: int
    path: str | None  # a Unix socket
    username: str | None
    password: str | None
    db: int
    timeout: float | None
    connect_timeout: float | None
    # Sentinel: asked at each connect, as redis-py's Sentinel connections do.
    locate: Callable[[], tuple[str, int]] | None = None

    def endpoint(self) -> tuple[str, int]:
        """The host and port to connect to now."""
        if self.locate is not None:
            return self.locate()
        return self.host or "localhost", self.port


# Connection options a raw connection honours; any other (TLS, credential providers, ...) means
# the tracking connection is not made and reads keep the one-round-trip path.
PLAIN_OPTIONS: Final = frozenset(
    {"host", "port", "path", "username", "password", "db", "socket_timeout"}
    | {"socket_connect_timeout", "socket_keepalive", "retry_on_timeout", "retry"}
    | {"health_check_interval", "client_name", "encoding", "encoding_errors"}
    | {"decode_responses", "himport_registry", "maint_notifications_pool_handler"}
    | {"maint_notifications_config", "orig_host_address", "orig_socket_timeout"}
    | {"orig_socket_connect_timeout", "protocol", "parser_class"}
    # Who the client says it is (CLIENT SETINFO; Django 6.1 passes driver_info): no effect on the wire.
    | {"driver_info", "lib_name", "lib_version"}
    # A Sentinel connection's pool: where it asks for the master (``locate``).
    | {"connection_pool"}
)


def _address(pool: Any, locate: Callable[[], tuple[str, int]] | None) -> Address | None:
    from redis.connection import Connection, UnixDomainSocketConnection
    from redis.sentinel import SentinelManagedConnection

    options = pool.connection_kwargs
    plain = (Connection, UnixDomainSocketConnection)
    if locate is not None:
        if pool.connection_class is not SentinelManagedConnection:
            return None  # TLS (SentinelManagedSSLConnection), or another class
    elif pool.connection_class not in plain:
        return None  # TLS, or another connection class
    if set(options) - PLAIN_OPTIONS:
        return None
    timeout = options.get("socket_timeout")
    return Address(
        host=options.get("host") if pool.connection_class is Connection else None,
        port=int(options.get("port", 6379)),
        path=options.get("path"),
        username=options.get("username"),
        password=options.get("password"),
        db=int(options.get("db") or 0),
        timeout=timeout,
        connect_timeout=options.get("socket_connect_timeout", timeout),
        locate=locate,
    )


_RUN_ID: Final = re.compile(r"^run_id:(\w+)", re.MULTILINE)
_REPLID: Final = re.compile(r"^master_replid:(\w+)", re.MULTILINE)


def server_identity(info: object) -> str | None:
    """Which server life, in which mastership, answered ``INFO``: ``<run_id>.<master_replid>``.
    A restart changes the run_id; a promotion changes the replication id, also on a server that
    was the master before (a failback), whose old epoch key came back to it by replication.
    The write script (``store.scripts``) computes the same."""
    if isinstance(info, dict):  # as redis-py parses it
        run, replication = info.get("run_id"), info.get("master_replid")
    else:
        text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
        run, replication = _RUN_ID.search(text), _REPLID.search(text)
        run, replication = run and run[1], replication and replication[1]
    if not run:
        return None
    return f"{run}.{replication}" if replication else str(run)


@dataclass(frozen=True)
class Group:
    """What the sentinels of a group say now: the master a majority of them names (None: no
    majority), and every server any of them lists, not flagged down."""

    master: tuple[str, int] | None
    servers: frozenset[tuple[str, int]]


@dataclass(frozen=True)
class RedisBackend:
    """What the fast path needs of one Redis cache: how to reach its primary (after a failover
    Sentinel names another), how to decode values and name keys."""

    loads: Callable[[bytes], object]
    plain_ints: bool
    make_key: Callable[[str], str]
    fingerprint: tuple[object, ...]
    new_pool: Callable[[], Any]
    new_client: Callable[[], Any]
    # None: async reads run the sync read in a thread (no asyncio pool with the same options).
    new_async_pool: Callable[[], Any] | None = None
    # Sentinel: where the master is now, and what the sentinels say of the group.
    locate: Callable[[], tuple[str, int]] | None = None
    group: Callable[[], Group] | None = None

    def primary_pool(self) -> Any:
        """A connection pool to the primary; its connection class and options make new ones."""
        return self.new_pool()

    def primary_address(self) -> Address | None:
        """The primary's address for a raw RESP3 connection, None when its options ask for more
        than a plain TCP or Unix socket with a password (TLS, a credential provider, ...)."""
        try:
            return _address(self.primary_pool(), self.locate)
        except Exception:
            return None

    def primary_client(self) -> Any:
        """A redis-py client on the primary (for writes and scripts)."""
        return self.new_client()

    def peer_client(self, host: str, port: int) -> Any:
        """A redis-py client on another server of the group, as the primary's is configured
        (credentials, database, timeouts)."""
        import redis

        options = self.primary_pool().connection_kwargs
        kept: dict[str, Any] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
        kept.update(
            (name, options[name]) for name in _PEER_OPTIONS if options.get(name)
        )
        return redis.Redis(host=host, port=port, **kept)


_PEER_OPTIONS: Final = (
    "username",
    "password",
    "db",
    "socket_timeout",
    "socket_connect_timeout",
)


def is_redis_cache(cache: BaseCache) -> bool:
    """Whether ``cache`` is a Django ``RedisCache`` (fast path or not)."""
    try:
        from django.core.cache.backends.redis import RedisCache
    except ImportError:  # pragma: no cover - redis-py missing
        return False
    return isinstance(cache, RedisCache)


def is_django_redis(cache: object) -> bool:
    """Whether ``cache`` is django-redis's ``RedisCache`` (fast path or not)."""
    return type(cache).__module__ == "django_redis.cache"


def _describe(cache: object) -> RedisBackend | None:
    from django.core.cache.backends.redis import (
        RedisCache,
        RedisCacheClient,
        RedisSerializer,
    )

    if type(cache) is not RedisCache or type(cache._cache) is not RedisCacheClient:
        return None  # a subclass or another client reads and writes its own way
    client: Any = cache._cache
    options: Any = cache._options  # type: ignore[attr-defined]
    for name in _PRIVATE:
        getattr(client, name)
    servers = tuple(client._servers)
    pool_class, pool_options = client._pool_class, dict(client._pool_options)

    def new_pool() -> Any:
        return pool_class.from_url(servers[0], **pool_options)

    def new_async_pool() -> Any:
        import redis.asyncio

        # The sync parser class of Django's pool has no place in an asyncio connection.
        options = {k: v for k, v in pool_options.items() if k != "parser_class"}
        return redis.asyncio.ConnectionPool.from_url(servers[0], **options)

    return RedisBackend(
        loads=client._serializer.loads,
        plain_ints=type(client._serializer) is RedisSerializer,
        make_key=cache.make_and_validate_key,
        fingerprint=(
            servers,
            repr(sorted(options.items())),
            cache.key_prefix,
            cache.version,
            cache.key_func,
        ),
        new_pool=new_pool,
        new_client=lambda: client._client(connection_pool=new_pool()),
        new_async_pool=new_async_pool,
    )


def backend(cache: BaseCache) -> RedisBackend | None:
    """The fast-path description of ``cache``, or None (any other backend, a changed private
    API, or ``CONDITIONAL_REDIS_FAST_PATH = False``). Remembered on the cache object."""
    if not conf.REDIS_FAST_PATH:
        return None
    found = cache.__dict__.get(_ATTRIBUTE)
    if found is None:
        try:
            if is_redis_cache(cache):
                found = _describe(cache)
            else:
                from django_conditional import django_redis_support

                found = django_redis_support.describe(cache)
        except Exception:  # the private API changed: the public one still works
            found = None
        cache.__dict__[_ATTRIBUTE] = _NONE if found is None else found
    return None if found == _NONE else found
