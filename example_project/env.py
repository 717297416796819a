"""Database and cache settings read from the environment, shared by the example project and the tests.

``DATABASE_URL``  postgres://user:password@host:port/name  -> PostgreSQL (psycopg 3); else SQLite.
``TEST_DATABASE_NAME``  name of the PostgreSQL test database created by the test runner (SQLite tests stay
in memory: a named SQLite test database would be a file shared by every run in the same directory).
``REDIS_URL``  redis://host:port/db  -> Redis cache; else the local-memory cache.
``REDIS_CACHE_BACKEND``  ``django`` (Django's own ``RedisCache``, the default) or ``django-redis``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "pgsql"})


def database_from_env(
    sqlite_path: Path | str | None = None,
    environ: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Return ``DATABASES["default"]``.

    Without ``DATABASE_URL``, SQLite at ``sqlite_path``, or in memory when it is None.
    """
    env = os.environ if environ is None else environ
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": ":memory:" if sqlite_path is None else str(sqlite_path),
        }
    database = _postgres_from_url(url)
    test_name = env.get("TEST_DATABASE_NAME", "").strip()
    if test_name:
        database["TEST"] = {"NAME": test_name}
    return database


def _postgres_from_url(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        raise ValueError(
            f"DATABASE_URL must use one of {sorted(POSTGRES_SCHEMES)}, not {parts.scheme!r}"
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ValueError(
            "DATABASE_URL must name a database: postgres://user@host:port/name"
        )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


REDIS_BACKENDS = {
    "django": "django.core.cache.backends.redis.RedisCache",
    "django-redis": "django_redis.cache.RedisCache",
}


def _redis_backend(env: dict[str, str] | os._Environ[str]) -> str:
    name = env.get("REDIS_CACHE_BACKEND", "").strip() or "django"
    if name not in REDIS_BACKENDS:
        raise ValueError(
            f"REDIS_CACHE_BACKEND must be one of {sorted(REDIS_BACKENDS)}, not {name!r}"
        )
    return REDIS_BACKENDS[name]


def cache_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Return ``CACHES["default"]``: Redis when ``REDIS_URL`` is set, else the local-memory cache."""
    env = os.environ if environ is None else environ
    url = env.get("REDIS_URL", "").strip()
    if url:
        scheme = urlsplit(url).scheme
        if scheme not in {"redis", "rediss", "unix"}:
            raise ValueError(
                f"REDIS_URL must use redis://, rediss:// or unix://, not {scheme!r}"
            )
        return {"BACKEND": _redis_backend(env), "LOCATION": url}
    return {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "django-conditional",
    }
