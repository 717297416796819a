"""The one place that touches private APIs of Django's ``RedisCache`` (Django 4.2 to 6.x).

``backend(cache)`` checks, once per cache object, that ``cache`` is exactly Django's
``RedisCache`` with its own client and serializer and that every private attribute used here
exists; it returns a ``RedisBackend`` describing it, or None, and everything else then goes
through the public cache API. ``CONDITIONAL_REDIS_FAST_PATH = False`` turns the fast path off.

With several ``LOCATION``s Django writes to the first server and reads from a random replica;
versions are read and written on the first (the primary) only: a lagging replica would answer
with a superseded version.
"""

from __future__ import annotations

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


# Connection options a raw connection honours; any other (TLS, credential providers, ...) means
# the tracking connection is not made and reads keep the one-round-trip path.
_PLAIN_OPTIONS: Final = frozenset(
    {"host", "port", "path", "username", "password", "db", "socket_timeout"}
    | {"socket_connect_timeout", "socket_keepalive", "retry_on_timeout", "retry"}
    | {"health_check_interval", "client_name", "encoding", "encoding_errors"}
    | {"decode_responses", "himport_registry", "maint_notifications_pool_handler"}
    | {"maint_notifications_config", "orig_host_address", "orig_socket_timeout"}
    | {"orig_socket_connect_timeout", "protocol", "parser_class"}
    # Who the client says it is (CLIENT SETINFO; Django 6.1 passes driver_info): no effect on the wire.
    | {"driver_info", "lib_name", "lib_version"}
)


def _address(pool: Any) -> Address | None:
    from redis.connection import Connection, UnixDomainSocketConnection

    options = pool.connection_kwargs
    if pool.connection_class not in (Connection, UnixDomainSocketConnection):
        return None
    if set(options) - _PLAIN_OPTIONS:
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
    )


@dataclass(frozen=True)
class RedisBackend:
    """What the fast path needs of one ``RedisCache``: where its primary is, how to connect, decode
    and name keys."""

    primary_url: str
    servers: tuple[str, ...]
    pool_class: Any
    pool_options: dict[str, object]
    loads: Callable[[bytes], object]
    plain_ints: bool
    make_key: Callable[[str], str]
    client_class: Any
    fingerprint: tuple[object, ...]

    def primary_pool(self) -> Any:
        """A new connection pool to the primary, built as Django builds the cache's own."""
        return self.pool_class.from_url(self.primary_url, **self.pool_options)

    def primary_address(self) -> Address | None:
        """The primary's address for a raw RESP3 connection, None when its options ask for more
        than a plain TCP or Unix socket with a password (TLS, a credential provider, ...)."""
        try:
            return _address(self.primary_pool())
        except Exception:
            return None

    def primary_client(self) -> Any:
        """A redis-py client on a new pool to the primary (for writes and scripts)."""
        return self.client_class(connection_pool=self.primary_pool())


def is_redis_cache(cache: BaseCache) -> bool:
    """Whether ``cache`` is a Django ``RedisCache`` (fast path or not)."""
    try:
        from django.core.cache.backends.redis import RedisCache
    except ImportError:  # pragma: no cover - redis-py missing
        return False
    return isinstance(cache, RedisCache)


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
    return RedisBackend(
        primary_url=servers[0],
        servers=servers,
        pool_class=client._pool_class,
        pool_options=dict(client._pool_options),
        loads=client._serializer.loads,
        plain_ints=type(client._serializer) is RedisSerializer,
        make_key=cache.make_and_validate_key,
        client_class=client._client,
        fingerprint=(
            servers,
            repr(sorted(options.items())),
            cache.key_prefix,
            cache.version,
            cache.key_func,
        ),
    )


def backend(cache: BaseCache) -> RedisBackend | None:
    """The fast-path description of ``cache``, or None (any other backend, a changed private
    API, or ``CONDITIONAL_REDIS_FAST_PATH = False``). Remembered on the cache object."""
    if not conf.REDIS_FAST_PATH:
        return None
    found = cache.__dict__.get(_ATTRIBUTE)
    if found is None:
        try:
            found = _describe(cache) if is_redis_cache(cache) else None
        except Exception:  # the private API changed: the public one still works
            found = None
        cache.__dict__[_ATTRIBUTE] = _NONE if found is None else found
    return None if found == _NONE else found
