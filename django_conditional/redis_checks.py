"""System checks of the Redis topology behind ``CONDITIONAL_CACHE_ALIAS``: replicas (I011/E015)
and Redis Cluster (W016)."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Warning

from django_conditional.conf import conf


def check_replicas(
    app_configs: Sequence[object] | None = None, **kwargs: object
) -> list[CheckMessage]:
    """I011/E015: with several Redis ``LOCATION``s, versions must come from the primary."""
    from django.core.cache import caches

    from django_conditional import redis_adapter

    config = settings.CACHES.get(conf.CACHE_ALIAS, {})
    location = config.get("LOCATION")
    servers = location.split(",") if isinstance(location, str) else list(location or [])
    cache = caches[conf.CACHE_ALIAS]
    on_redis = redis_adapter.is_redis_cache(cache) or redis_adapter.is_django_redis(
        cache
    )
    # django-redis's SentinelClient reads the cache's keys from a replica, as several
    # LOCATIONs do: the same danger with one LOCATION.
    client = str(config.get("OPTIONS", {}).get("CLIENT_CLASS", ""))
    replicated = len(servers) > 1 or client.endswith("SentinelClient")
    if not replicated or not on_redis:
        return []
    if redis_adapter.backend(cache) is not None:
        return [
            Info(
                f"CONDITIONAL_CACHE_ALIAS {conf.CACHE_ALIAS!r} has Redis replicas: versions "
                f"are read and written on the primary ({servers[0]}: the first LOCATION, or "
                "the master Sentinel names); the cache reads its other keys from a replica.",
                id="django_conditional.I011",
            )
        ]
    return [
        Error(
            f"CONDITIONAL_CACHE_ALIAS {conf.CACHE_ALIAS!r} has Redis replicas but its "
            "versions would be read through the cache API, which reads from a replica: a "
            "lagging replica would answer 304 for a superseded version.",
            hint=(
                "Use Django's RedisCache or django-redis's DefaultClient with "
                "CONDITIONAL_REDIS_FAST_PATH = True (the default; versions then go to the "
                "first LOCATION), or point "
                "CONDITIONAL_CACHE_ALIAS at a cache with the primary only."
            ),
            id="django_conditional.E015",
        )
    ]


def _cluster_enabled(cache: object) -> bool:
    from django_conditional import redis_adapter

    described = redis_adapter.backend(cache)  # type: ignore[arg-type]
    if described is None:
        return False
    try:
        info = described.primary_client().info("cluster")
    except Exception:  # unreachable now: the check says nothing it does not know
        return False
    return bool(info.get("cluster_enabled"))


def check_cluster(
    app_configs: Sequence[object] | None = None, **kwargs: object
) -> list[CheckMessage]:
    """W016 (``check --deploy``): a Redis Cluster node behind the version cache. Versions are read
    with one multi-key ``MGET`` (the epoch key and every version key) and written by one script
    over them: across hash slots Cluster refuses both, so every version read would go to the
    database. Asks the server (``INFO cluster``), so it runs only with ``--deploy``."""
    from django.core.cache import caches

    if not _cluster_enabled(caches[conf.CACHE_ALIAS]):
        return []
    return [
        Warning(
            f"CONDITIONAL_CACHE_ALIAS {conf.CACHE_ALIAS!r} is a Redis Cluster node: versions "
            "are read and written as several keys at once, which Cluster refuses across hash "
            "slots, so every version read goes to the database (correct, but no 304 is cheap).",
            hint=(
                "Point CONDITIONAL_CACHE_ALIAS at a single primary (with replicas or Redis "
                "Sentinel for failover); other keys may stay on the Cluster."
            ),
            id="django_conditional.W016",
        )
    ]
