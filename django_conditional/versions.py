"""The version store: one integer per resource, in the database, read through a shared cache.

Keys are strings: ``object_key(Article, 42) == "o:blog.article:42"``,
``collection_key(Article) == "c:blog.article"``,
``collection_key(Article, "by_author", author=7) == "c:blog.article:by_author:author=7"``.
A key never bumped has version 0; a negative version means the object was deleted.

How the cache stays right across workers (no process-local copy of a version is ever kept):

- **Writers** (``bump``) increment the row in the database in one statement (the row stays locked
  until the commit, so the value it returns is the value committed); once the transaction commits
  (``transaction.on_commit``) they ``set`` those values in the cache, then read the database once
  and ``set`` again the keys that moved meanwhile. That read closes the race of two concurrent
  bumpers whose ``set`` calls land out of order: whichever commit comes after a writer's read is
  followed by that other writer's own ``set``, so the last ``set`` is never older than the last
  commit. A rolled-back transaction (or savepoint) writes nothing to the cache.
- **Readers** (``get_many``) make one ``get_many`` call; keys it misses are read from the database
  in one query and stored with ``add`` (only if absent), so a reader that read the database just
  before a bump committed can never overwrite the value the bumper set after its commit.
- **Redis** (Django's ``RedisCache``): reads are one ``MGET`` on a connection kept per process
  (``fastcache``; ``redis.asyncio`` in async code); writes go through a small Lua script that
  stores a version only if it is larger (in absolute value) than the cached one, so even the instant of the race above cannot show an older version;
  a cached value larger than the database's (a restored backup) is corrected by the next bump.
  Other backends have no such atomic write through Django's cache API: there, two bumps of one key
  that commit at the same moment can show the older version for the time of one database read
  (4 writers and 4 readers hammering one key on PostgreSQL see such reads through the generic
  path, and none through Redis: ``test_no_reader_sees_a_version_older_than_a_finished_bump``).
  Use Redis where that matters.
- **Failures**: any cache exception is logged (warning, logger ``django_conditional``) and the
  database answers. A writer that cannot set falls back to deleting the keys; if that fails too,
  this process remembers the keys, never trusts their cached values, and deletes them as soon as
  the cache answers again.

Values are stored as plain ``int`` so Django's ``RedisCache`` stores them without pickling.
Versions are read from the database that writes them (``router.db_for_write``): a replica's lag
could otherwise put an old version in the cache.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from asgiref.sync import sync_to_async
from django.apps import apps
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db import (
    DatabaseError,
    IntegrityError,
    connections,
    models,
    router,
    transaction,
)
from django.db.models import F, Value
from django.db.models.functions import Abs
from django.utils import timezone

from django_conditional import fastcache
from django_conditional.conf import conf

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

    from django_conditional.models import ResourceVersion

__all__ = [
    "object_key",
    "collection_key",
    "get",
    "get_many",
    "aget_many",
    "bump",
    "lock",
    "MAX_KEY_LENGTH",
]

logger = logging.getLogger("django_conditional")

MAX_KEY_LENGTH = 255
_CHUNK = 500  # keys per SQL statement (SQLite's variable limit, Oracle's IN-list limit)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.~@+\-]")
_CACHE_SCHEMA = "v1"  # bump when the meaning of cached values changes


# ---------------------------------------------------------------------------------------------
# Keys: cheap string building, no database query (model._meta.label_lower).


def _model_of(model_or_instance: Any) -> type[models.Model]:
    model = (
        model_or_instance
        if isinstance(model_or_instance, type)
        else type(model_or_instance)
    )
    if not issubclass(model, models.Model):
        raise TypeError(f"expected a model or an instance, not {model_or_instance!r}")
    # A proxy shares the rows, hence the versions, of its concrete model.
    concrete: type[models.Model] = model._meta.concrete_model  # type: ignore[assignment]
    return concrete


def _text(value: Any) -> str:
    text = value if type(value) is str else str(value)
    return quote(text, safe="") if _UNSAFE.search(text) else text


def _check_length(key: str) -> str:
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(
            f"version key longer than {MAX_KEY_LENGTH} characters: {key[:60]}..."
        )
    return key


def object_key(model_or_instance: Any, pk: Any = None) -> str:
    """The key of one object: ``"o:<app_label>.<model_name>:<pk>"``.

    With an instance, its pk is used unless ``pk`` is given. A pk given as text is normalised by the
    model's pk field (``"42"`` and ``42``, or a UUID's two spellings, give one key).
    """
    model = _model_of(model_or_instance)
    if pk is None:
        if isinstance(model_or_instance, type):
            raise TypeError("object_key(Model, pk) needs a pk")
        pk = model_or_instance.pk
        if pk is None:
            raise ValueError("object_key() of an unsaved instance")
    elif type(pk) is str:
        # Not a valid pk: it names no object, keep the text.
        with suppress(ValidationError):
            pk = model._meta.pk.to_python(pk)
    return _check_length(f"o:{model._meta.label_lower}:{_text(pk)}")


def collection_key(model: Any, name: str | None = None, **params: Any) -> str:
    """The key of a model's whole table (``"c:blog.article"``) or of a named collection in it.

    ``collection_key(Article, "by_author", author=7) == "c:blog.article:by_author:author=7"``;
    several parameters are sorted by name and joined with ``,``.
    """
    label = _model_of(model)._meta.label_lower
    if name is None:
        if params:
            raise TypeError("collection_key() parameters need a collection name")
        return f"c:{label}"
    if params:
        args = ",".join(f"{_text(k)}={_text(params[k])}" for k in sorted(params))
        return _check_length(f"c:{label}:{_text(name)}:{args}")
    return _check_length(f"c:{label}:{_text(name)}")


def parse_key(key: str) -> tuple[str, str | None, str, str]:
    """``(kind, model label or None, object pk, collection name)`` that a key names."""
    kind, _, rest = key.partition(":")
    label, _, tail = rest.partition(":")
    if kind == "o" and label and tail:
        return "object", label, unquote(tail), ""
    if kind == "c" and label:
        return "collection", label, "", tail
    return "collection", None, "", key


# ---------------------------------------------------------------------------------------------
# Cache access, never raising.

_lock = threading.Lock()
# Keys whose cached value may be stale in this process: a write to the cache failed.
_untrusted: set[str] = set()


def _cache() -> BaseCache:
    return caches[conf.CACHE_ALIAS]


def _prefix() -> str:
    return f"{conf.KEY_PREFIX}:{_CACHE_SCHEMA}:"


def _warn(action: str, exc: BaseException) -> None:
    logger.warning(
        "django_conditional: cache %s failed (%s: %s); using the database",
        action,
        type(exc).__name__,
        exc,
    )


def _repair(cache: BaseCache, prefix: str) -> None:
    """Delete the keys a failed write left untrusted, now that the cache answers."""
    with _lock:
        keys = list(_untrusted)
    try:
        cache.delete_many([prefix + key for key in keys])
    except Exception as exc:
        _warn("delete", exc)
        return
    with _lock:
        _untrusted.difference_update(keys)


def _split(
    keys: Sequence[str], cached: Mapping[str, Any], prefix: str
) -> tuple[dict[str, int], list[str]]:
    found: dict[str, int] = {}
    missing: list[str] = []
    untrusted = _untrusted
    for key in keys:
        value = cached.get(prefix + key)
        # Anything but a plain int (a foreign or corrupt value) is not trusted.
        if type(value) is int and not (untrusted and key in untrusted):
            found[key] = value
        else:
            missing.append(key)
    return found, missing


def _fill(cache: BaseCache, prefix: str, values: Mapping[str, int]) -> None:
    # add (or Redis' monotonic set), never set: a bump that committed after our database read
    # has set a newer value, which must stay.
    timeout = conf.VERSION_CACHE_TIMEOUT
    try:
        shortcut = _redis(cache)
        if shortcut is not None:
            shortcut.set_max(
                {prefix + k: v for k, v in values.items() if k not in _untrusted},
                timeout,
            )
            return
        for key, value in values.items():
            if key not in _untrusted:
                cache.add(prefix + key, value, timeout)
    except Exception as exc:
        _warn("add", exc)


# ---------------------------------------------------------------------------------------------
# Database access.


def _model() -> type[ResourceVersion]:
    from django_conditional.models import ResourceVersion

    return ResourceVersion


def _chunks(keys: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


def _read_db(keys: Sequence[str], using: str | None = None) -> dict[str, int]:
    """Current versions from the database (0 for keys without a row), one query per 500 keys."""
    model = _model()
    db = using or router.db_for_write(model)
    values = dict.fromkeys(keys, 0)
    for chunk in _chunks(keys):
        values.update(
            model._base_manager.using(db)
            .filter(key__in=chunk)
            .values_list("key", "version")
        )
    return values


# Versions only grow in absolute value: a write that would lower the cached one is dropped, so
# neither a slow bumper nor a reader that read the database before a commit moves it back.
# Returns the values the keys hold afterwards.
_SET_MAX = """
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

_NO_REDIS: Any = object()
_REDIS_ATTR = "_django_conditional_redis"


class _Redis:
    """Writes to Django's ``RedisCache`` through a monotonic ``SET`` script, on one client kept
    per cache object (per thread) sharing the cache's connection pool, options and key function.
    (Reads go through ``fastcache``.)"""

    def __init__(self, client: Any, make_key: Callable[[str], str]) -> None:
        self.client = client
        self.script: Any = client.register_script(_SET_MAX)
        self.make_key = make_key

    def set_max(self, values: Mapping[str, int], timeout: int | None) -> dict[str, int]:
        """Store each version unless the cache holds a larger one (one round trip); returns
        what the cache holds afterwards."""
        if not values or (timeout is not None and timeout <= 0):
            return dict(values)  # Django's meaning of a timeout <= 0: do not cache
        make_key = self.make_key
        after = self.script(
            keys=[make_key(key) for key in values],
            args=[timeout or 0, *values.values()],
        )
        return {key: int(value) for key, value in zip(values, after, strict=True)}

    def set_many(self, values: Mapping[str, int], timeout: int | None) -> None:
        """Plain ``SET``s, in one pipeline (to move a value back down)."""
        pipeline = self.client.pipeline(transaction=False)
        for key, value in values.items():
            pipeline.set(self.make_key(key), value, ex=timeout)
        pipeline.execute()


def _redis(cache: BaseCache) -> _Redis | None:
    """The shortcut for Django's own ``RedisCache`` (one server, its client and serializer);
    None for any other backend, which is used through the cache API."""
    found = cache.__dict__.get(_REDIS_ATTR, _NO_REDIS)
    if found is _NO_REDIS:
        found = None
        try:
            from django.core.cache.backends.redis import (
                RedisCache,
                RedisCacheClient,
                RedisSerializer,
            )

            if type(cache) is RedisCache:
                client: Any = cache._cache
                servers: Any = getattr(client, "_servers", ())
                if (
                    type(client) is RedisCacheClient
                    and type(getattr(client, "_serializer", None)) is RedisSerializer
                    and len(servers) == 1
                ):
                    get_pool: Any = getattr(client, "_get_connection_pool")  # noqa: B009
                    redis_class: Any = getattr(client, "_client")  # noqa: B009
                    found = _Redis(
                        redis_class(connection_pool=get_pool(write=True)),
                        cache.make_key,
                    )
        except Exception as exc:  # pragma: no cover - redis-py missing or changed
            _warn("client setup", exc)
            found = None
        cache.__dict__[_REDIS_ATTR] = found
    shortcut: _Redis | None = found
    return shortcut


def _cache_get_many(cache: BaseCache, cache_keys: list[str]) -> Mapping[str, Any]:
    """The one cache round trip of a read (``fastcache``: one ``MGET`` on Django's ``RedisCache``
    pool, else ``cache.get_many``); only plain ``int`` values come back."""
    return fastcache.get_ints(cache, cache_keys)


async def _acache_get_many(
    cache: BaseCache, cache_keys: list[str]
) -> Mapping[str, Any]:
    return await fastcache.aget_ints(cache, cache_keys)


def get_many(keys: Iterable[str]) -> dict[str, int]:
    """Versions of ``keys``: one cache round trip, one database query for the keys it missed."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    prefix = _prefix()
    cache: BaseCache | None = _cache()
    cached: Mapping[str, Any] = {}
    try:
        if _untrusted:
            _repair(cache, prefix)  # type: ignore[arg-type]
        cached = _cache_get_many(cache, [prefix + key for key in keys])  # type: ignore[arg-type]
    except Exception as exc:
        _warn("get_many", exc)
        cache = None
    found, missing = _split(keys, cached, prefix)
    if missing:
        values = _read_db(missing)
        if cache is not None:
            _fill(cache, prefix, values)
        found.update(values)
    return found


async def aget_many(keys: Iterable[str]) -> dict[str, int]:
    """``get_many`` for async views: the same round trip, the database in a thread on a miss."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    prefix = _prefix()
    cache: BaseCache | None = _cache()
    cached: Mapping[str, Any] = {}
    try:
        if _untrusted:
            await sync_to_async(_repair)(cache, prefix)  # type: ignore[arg-type]
        cached = await _acache_get_many(cache, [prefix + key for key in keys])  # type: ignore[arg-type]
    except Exception as exc:
        _warn("get_many", exc)
        cache = None
    found, missing = _split(keys, cached, prefix)
    if missing:
        values = await sync_to_async(_read_db)(missing)
        if cache is not None:
            await sync_to_async(_fill)(cache, prefix, values)
        found.update(values)
    return found


def get(key: str) -> int:
    """The version of one key (see ``get_many``)."""
    return get_many([key])[key]


# ---------------------------------------------------------------------------------------------
# Bumps.


def _row_defaults(key: str) -> dict[str, Any]:
    from django.contrib.contenttypes.models import ContentType

    kind, label, object_pk, name = parse_key(key)
    content_type = None
    if label is not None:
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            model = None
        if model is not None:
            content_type = ContentType.objects.get_for_model(
                model, for_concrete_model=True
            )
    return {
        "kind": kind,
        "content_type": content_type,
        "object_pk": object_pk,
        "name": name,
    }


def _new_version(deleted: bool) -> Any:
    # |version| + 1, negative for a deleted object: computed by the database, in the UPDATE.
    magnitude = Abs(F("version")) + Value(1)
    return -magnitude if deleted else magnitude


def _column(field: Any) -> str:
    column: str = field.column
    return column


def _upsert_sql(db: str, keys: Sequence[str], deleted: bool) -> dict[str, int]:
    """One ``INSERT ... ON CONFLICT (key) DO UPDATE ... RETURNING`` (PostgreSQL, SQLite >= 3.35)."""
    model = _model()
    connection = connections[db]
    qn = connection.ops.quote_name
    opts = model._meta
    fields = [
        opts.get_field(name)
        for name in (
            "key",
            "kind",
            "content_type",
            "object_pk",
            "name",
            "version",
            "updated_at",
        )
    ]
    columns = [qn(_column(field)) for field in fields]
    table = qn(opts.db_table)
    version = qn(_column(opts.get_field("version")))
    updated_at = qn(_column(opts.get_field("updated_at")))
    now = timezone.now()
    start = -1 if deleted else 1
    sign = "-" if deleted else ""
    result: dict[str, int] = {}
    for chunk in _chunks(keys):
        params: list[Any] = []
        for key in chunk:
            row = _row_defaults(key)
            ct = row["content_type"]
            values = [
                key,
                row["kind"],
                ct.pk if ct is not None else None,
                row["object_pk"],
                row["name"],
                start,
                now,
            ]
            params.extend(
                field.get_db_prep_save(value, connection)  # type: ignore[union-attr]
                for field, value in zip(fields, values, strict=True)
            )
        placeholders = ", ".join(
            ["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(chunk)
        )
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {placeholders} "
            f"ON CONFLICT ({columns[0]}) DO UPDATE SET "
            f"{version} = {sign}(ABS({table}.{version}) + 1), "
            f"{updated_at} = EXCLUDED.{updated_at} "
            f"RETURNING {columns[0]}, {version}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            result.update((key, int(value)) for key, value in cursor.fetchall())
    return result


def _upsert_orm(db: str, keys: Sequence[str], deleted: bool) -> dict[str, int]:
    """Portable path: ``UPDATE ... SET version = ABS(version) + 1`` for the rows that exist, then
    ``INSERT`` the missing ones in a savepoint; a concurrent insert (``IntegrityError``) sends that
    key back to the UPDATE. Every increment is done by the database, never read-modify-write."""
    model = _model()
    manager = model._base_manager.db_manager(db)
    pending = list(keys)
    for _attempt in range(5):
        if not pending:
            break
        for chunk in _chunks(pending):
            manager.filter(key__in=chunk).update(
                version=_new_version(deleted), updated_at=timezone.now()
            )
        # Rows updated above are locked by this transaction until it ends.
        present = set()
        for chunk in _chunks(pending):
            present.update(manager.filter(key__in=chunk).values_list("key", flat=True))
        retry = []
        for key in pending:
            if key in present:
                continue
            defaults = _row_defaults(key)
            try:
                with transaction.atomic(using=db):
                    manager.create(key=key, version=-1 if deleted else 1, **defaults)
            except IntegrityError:
                retry.append(key)  # created by a concurrent transaction: increment it
        pending = retry
    else:  # pragma: no cover - five lost races in a row
        raise DatabaseError(f"could not bump {pending!r}")
    return _read_db(keys, db)


def _uses_upsert(db: str) -> bool:
    connection = connections[db]
    if connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite":
        import sqlite3

        return sqlite3.sqlite_version_info >= (3, 35)
    return False


def _set_and_verify(
    cache: BaseCache,
    prefix: str,
    db: str,
    committed: dict[str, int],
    timeout: int | None,
) -> None:
    keys = list(committed)
    cache.set_many({prefix + k: v for k, v in committed.items()}, timeout)
    # A concurrent bump may have committed and set a newer value before our set landed:
    # read the database and set what moved. Whatever commits after this read is followed
    # by its own bumper's set, so the cache ends at the latest committed version (it may show
    # the older one for the time of this read).
    current = committed
    for _round in range(3):
        again = _read_db(keys, db)
        moved = {k: v for k, v in again.items() if v != current[k]}
        if not moved:
            return
        cache.set_many({prefix + k: v for k, v in moved.items()}, timeout)
        current = again
    cache.delete_many([prefix + k for k in keys])  # too busy: let readers refill


def _set_max_and_check(
    shortcut: _Redis,
    prefix: str,
    db: str,
    committed: dict[str, int],
    timeout: int | None,
) -> None:
    # Monotonic in Redis itself: an older value never overwrites a newer one, not even for an
    # instant. A larger cached value is a concurrent newer bump, unless the database went back
    # (a restored backup, a test's rolled-back transaction): then the database wins.
    after = shortcut.set_max({prefix + k: v for k, v in committed.items()}, timeout)
    ahead = [k for k in committed if after[prefix + k] != committed[k]]
    if ahead:
        now = _read_db(ahead, db)
        behind = {
            prefix + k: now[k] for k in ahead if abs(now[k]) < abs(after[prefix + k])
        }
        if behind:
            shortcut.set_many(behind, timeout)


def _publish(db: str, committed: dict[str, int]) -> None:
    """After commit: write the versions this bump committed to the cache, and announce them."""
    from django_conditional.signals import version_bumped

    keys = list(committed)
    cache = _cache()
    prefix = _prefix()
    timeout = conf.VERSION_CACHE_TIMEOUT
    try:
        shortcut = _redis(cache)
        if shortcut is not None:
            _set_max_and_check(shortcut, prefix, db, committed, timeout)
        else:
            _set_and_verify(cache, prefix, db, committed, timeout)
    except Exception as exc:  # the cache, or the database read, failed
        _warn("set_many", exc)
        try:
            cache.delete_many([prefix + k for k in keys])
        except Exception as exc2:
            _warn("delete_many", exc2)
            with _lock:
                _untrusted.update(keys)
    results = version_bumped.send_robust(
        sender=_model(), keys=tuple(keys), versions=committed
    )
    for receiver, response in results:
        if isinstance(response, Exception):
            logger.error(
                "django_conditional: version_bumped receiver %r raised",
                receiver,
                exc_info=response,
            )


def bump(*keys: str, deleted: bool = False, using: str | None = None) -> dict[str, int]:
    """Increment the versions of ``keys`` atomically in the database; returns the new versions.

    Call it after changing data by means that send no model signals (raw SQL, another process).
    Inside a transaction the new versions are visible to this transaction at once, and to the cache,
    other workers and ``version_bumped`` receivers only when it commits; a rollback undoes them.
    ``deleted=True`` marks objects as deleted (their version turns negative).
    """
    # Sorted: concurrent bumps of overlapping keys lock their rows in one order, never deadlock.
    unique = sorted(set(keys))
    if not unique:
        return {}
    for key in unique:
        _check_length(key)
    db = using or router.db_for_write(_model())
    with transaction.atomic(using=db, savepoint=False):
        if _uses_upsert(db):
            values = _upsert_sql(db, unique, deleted)
        else:
            values = _upsert_orm(db, unique, deleted)
        # The rows stay locked until the commit: these are the values it commits.
        transaction.on_commit(lambda: _publish(db, values), using=db)
    return values


def lock(keys: Iterable[str], using: str | None = None) -> dict[str, int]:
    """Lock the rows of ``keys`` (creating missing ones) until the transaction ends; their versions
    as the database has them. Must run inside ``transaction.atomic``: check, write, then ``bump``."""
    model = _model()
    db = using or router.db_for_write(model)
    if not connections[db].in_atomic_block:
        raise transaction.TransactionManagementError(
            "versions.lock() must be called inside transaction.atomic()"
        )
    unique = sorted(
        set(keys)
    )  # one lock order everywhere: no deadlock between two writers
    if not unique:
        return {}
    manager = model._base_manager.db_manager(db)
    for chunk in _chunks(unique):
        existing = set(manager.filter(key__in=chunk).values_list("key", flat=True))
        missing = [key for key in chunk if key not in existing]
        if missing:
            manager.bulk_create(
                [model(key=key, version=0, **_row_defaults(key)) for key in missing],
                ignore_conflicts=True,
            )
    values = dict.fromkeys(unique, 0)
    for chunk in _chunks(unique):
        values.update(
            manager.select_for_update()
            .filter(key__in=chunk)
            .order_by("key")
            .values_list("key", "version")
        )
    return values
