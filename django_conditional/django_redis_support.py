"""django-redis (``django_redis.cache.RedisCache``) described for the fast path through its public
API: ``get_redis_connection(alias, write=True)`` (the primary; under Sentinel, the master), the
redis-py pool's connection class and options, the client's ``decode``; and what the sentinels
of a group say (``sentinel_group``), for retiring a former master (``store.scripts``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from django_conditional.redis_adapter import PLAIN_OPTIONS, Group, RedisBackend

__all__ = ["describe", "sentinel_group"]


def _up(state: dict[str, Any]) -> bool:
    return not (state.get("is_sdown") or state.get("is_odown"))


def sentinel_group(sentinel: Any, service: str) -> Group:
    """Ask every sentinel (not only the first that answers, as redis-py does: one may lag)."""
    named: dict[tuple[str, int], int] = {}
    servers: set[tuple[str, int]] = set()
    for client in sentinel.sentinels:
        try:
            master = client.sentinel_master(service)
            replicas = client.sentinel_slaves(service)
        except Exception:  # this sentinel does not answer: it names nobody
            continue
        address = (str(master["ip"]), int(master["port"]))
        named[address] = named.get(address, 0) + 1
        servers.add(address)
        servers.update((str(r["ip"]), int(r["port"])) for r in replicas if _up(r))
    top = max(named.items(), key=lambda item: item[1], default=None)
    majority = top is not None and top[1] * 2 > len(sentinel.sentinels)
    return Group(top[0] if majority and top else None, frozenset(servers))


_STAMP_TEXT: Final = re.compile(rb"V(-?\d+\|\d+|pending:-?\d+(?::-?\d+)?)\n\.")


_BACKEND: Final = "django_redis.cache.RedisCache"


def _alias_of(cache: object) -> str | None:
    # Only django-redis aliases, the version cache's first: asking ``caches`` for another alias
    # would build that cache (and a broken one would turn this fast path off).
    from django.conf import settings
    from django.core.cache import caches

    from django_conditional.conf import conf

    ours = [a for a, c in settings.CACHES.items() if c.get("BACKEND") == _BACKEND]
    ours.sort(key=lambda alias: alias != conf.CACHE_ALIAS)
    return next((alias for alias in ours if caches[alias] is cache), None)


def _stamp_or(decode: Callable[[bytes], object]) -> Callable[[bytes], object]:
    # The store's values are written by its Lua script as a protocol-0 pickle of their text
    # (``store.stamps``): read here whatever SERIALIZER and COMPRESSOR the cache uses.
    def loads(raw: bytes) -> object:
        found = _STAMP_TEXT.fullmatch(raw)
        return found[1].decode() if found else decode(raw)

    return loads


def describe(cache: Any) -> RedisBackend | None:
    """The fast-path description of django-redis's ``RedisCache`` with its default or Sentinel
    client, else None."""
    try:
        from django_redis import get_redis_connection
        from django_redis.cache import RedisCache
        from django_redis.client import DefaultClient, SentinelClient
    except ImportError:
        return None
    # Herd, sharded and custom clients read and write their own way.
    if type(cache) is not RedisCache or type(cache.client) not in (
        DefaultClient,
        SentinelClient,
    ):
        return None
    alias = _alias_of(cache)
    if alias is None:
        return None
    client = get_redis_connection(
        alias, write=True
    )  # the primary (Sentinel: the master)
    pool = client.connection_pool
    sentinel = getattr(pool, "sentinel_manager", None)
    if getattr(pool, "cache", None) is not None:
        return None  # redis-py's client-side caching: reads through the cache API
    if sentinel is not None and not getattr(pool, "is_master", False):
        return None  # not the master's pool: a replica's answers may lag
    options = dict(pool.connection_kwargs)
    return RedisBackend(
        loads=_stamp_or(cache.client.decode),
        plain_ints=True,  # DefaultClient.encode stores every int as a plain integer
        make_key=lambda key: str(cache.make_key(key)),
        fingerprint=(
            "django-redis",
            id(pool),
            cache.key_prefix,
            cache.version,
            cache.key_func,
        ),
        new_pool=lambda: pool,
        new_client=lambda: client,
        new_async_pool=None if sentinel is not None else _async_pool(pool, options),
        locate=None if sentinel is None else pool.get_master_address,
        group=None
        if sentinel is None
        else (lambda: sentinel_group(sentinel, pool.service_name)),
    )


# Options an asyncio connection takes as the sync one does.
_ASYNC_OPTIONS: Final = frozenset(
    {"host", "port", "path", "username", "password", "db", "socket_timeout"}
    | {
        "socket_connect_timeout",
        "socket_keepalive",
        "client_name",
        "health_check_interval",
    }
)


def _async_pool(pool: Any, options: dict[str, Any]) -> Callable[[], Any] | None:
    import redis.asyncio
    from redis.connection import Connection, UnixDomainSocketConnection

    kinds: dict[type[Any], type[Any]] = {
        Connection: redis.asyncio.Connection,
        UnixDomainSocketConnection: redis.asyncio.UnixDomainSocketConnection,
    }
    kind = kinds.get(pool.connection_class)
    # Options beyond the plain ones (TLS, a credential provider) have no sure asyncio twin here;
    # the plain ones it lacks are the sync client's own bookkeeping (parser, retry, notices).
    if kind is None or set(options) - PLAIN_OPTIONS:
        return None
    kept = {k: v for k, v in options.items() if k in _ASYNC_OPTIONS}
    return lambda: redis.asyncio.ConnectionPool(connection_class=kind, **kept)
