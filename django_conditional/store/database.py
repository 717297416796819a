"""The version rows in the database: read, increment (upsert), lock.

Every increment is computed by the database in the statement that writes it, never
read-modify-write, and rows are always locked in key order, so concurrent writers serialise
without deadlocks. Versions are read from the database that writes them (``router.db_for_write``):
a replica's lag could otherwise put an old version in the cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from django.apps import apps
from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.models import F, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Abs
from django.utils import timezone

from django_conditional.store.keys import bounded_key, parse_key
from django_conditional.store.stamps import Stamp, ms, versions_of

if TYPE_CHECKING:
    from django.contrib.contenttypes.models import ContentType

    from django_conditional.models import ResourceVersion

CHUNK: Final = (
    500  # keys per SQL statement (SQLite's variable limit, Oracle's IN-list limit)
)
_COLUMNS: Final = (
    "key",
    "kind",
    "content_type",
    "object_pk",
    "name",
    "version",
    "updated_at",
)


def row_model() -> type[ResourceVersion]:
    from django_conditional.models import ResourceVersion

    return ResourceVersion


def database(using: str | None = None) -> str:
    """The database holding the versions (the one ``ResourceVersion`` is written to)."""
    return using or router.db_for_write(row_model())


def chunks(keys: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(keys), CHUNK):
        yield keys[start : start + CHUNK]


def read_stamps(keys: Sequence[str], using: str | None = None) -> dict[str, Stamp]:
    """Current versions and bump times (``(0, 0)`` for keys without a row), one query per
    ``CHUNK`` keys."""
    manager = row_model()._base_manager.using(database(using))
    values: dict[str, Stamp] = dict.fromkeys(keys, (0, 0))
    for chunk in chunks(keys):
        rows = manager.filter(key__in=chunk).values_list("key", "version", "updated_at")
        values.update(_stamped(rows))
    return values


def _stamped(rows: Iterable[tuple[str, int, Any]]) -> Iterator[tuple[str, Stamp]]:
    # A row lock() created is at version 0: never bumped, so no time of a change.
    return ((key, (version, ms(at) if version else 0)) for key, version, at in rows)


def read(keys: Sequence[str], using: str | None = None) -> dict[str, int]:
    """Current versions (0 for keys without a row)."""
    return versions_of(read_stamps(keys, using))


def _content_type(label: str | None) -> ContentType | None:
    from django.contrib.contenttypes.models import ContentType

    if label is None:
        return None
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return None
    found: ContentType = ContentType.objects.get_for_model(
        model, for_concrete_model=True
    )
    return found


def row_defaults(key: str) -> dict[str, object]:
    """What a new row restates of its key (for the admin and queries)."""
    kind, label, object_pk, name = parse_key(key)
    return {
        "kind": kind,
        "content_type": _content_type(label),
        "object_pk": object_pk,
        "name": name,
    }


def _new_version(deleted: bool) -> CombinedExpression:
    # |version| + 1, negative for a deleted object: computed by the database, in the UPDATE.
    magnitude = Abs(F("version")) + Value(1)
    return -magnitude if deleted else magnitude


def uses_upsert(db: str) -> bool:
    """Whether ``INSERT ... ON CONFLICT ... RETURNING`` is available (PostgreSQL, SQLite >= 3.35)."""
    connection = connections[db]
    if connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite":
        import sqlite3

        return sqlite3.sqlite_version_info >= (3, 35)
    return False


def _upsert_statement(db: str, count: int, deleted: bool) -> str:
    connection = connections[db]
    qn = connection.ops.quote_name
    opts = row_model()._meta
    columns = [
        qn(str(getattr(opts.get_field(name), "column", name))) for name in _COLUMNS
    ]
    table = qn(opts.db_table)
    version, updated_at = columns[5], columns[6]
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sign = "-" if deleted else ""
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * count)} "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET "
        f"{version} = {sign}(ABS({table}.{version}) + 1), "
        f"{updated_at} = EXCLUDED.{updated_at} "
        f"RETURNING {columns[0]}, {version}, {updated_at}"
    )


def _upsert_params(db: str, chunk: Sequence[str], deleted: bool) -> list[object]:
    connection = connections[db]
    opts = row_model()._meta
    fields = [opts.get_field(name) for name in _COLUMNS]
    now = timezone.now()
    params: list[object] = []
    for key in chunk:
        row = row_defaults(key)
        content_type = row["content_type"]
        values = [
            key,
            row["kind"],
            getattr(content_type, "pk", None),
            row["object_pk"],
            row["name"],
            -1 if deleted else 1,
            now,
        ]
        params.extend(
            field.get_db_prep_save(value, connection)  # type: ignore[union-attr]
            for field, value in zip(fields, values, strict=True)
        )
    return params


def upsert_returning(db: str, keys: Sequence[str], deleted: bool) -> dict[str, Stamp]:
    """One ``INSERT ... ON CONFLICT (key) DO UPDATE ... RETURNING`` per chunk of keys."""
    connection = connections[db]
    field = row_model()._meta.get_field("updated_at")
    result: dict[str, Stamp] = {}
    for chunk in chunks(keys):
        sql = _upsert_statement(db, len(chunk), deleted)
        with connection.cursor() as cursor:
            cursor.execute(sql, _upsert_params(db, chunk, deleted))
            for key, value, at in cursor.fetchall():
                # SQLite returns text: the field's converters make it a datetime.
                for convert in field.get_db_converters(connection):  # type: ignore[union-attr]
                    at = convert(at, None, connection)
                result[key] = (int(value), ms(at))
    return result


def upsert_portable(db: str, keys: Sequence[str], deleted: bool) -> dict[str, Stamp]:
    """``UPDATE ... SET version = ABS(version) + 1`` for the rows that exist, then ``INSERT`` the
    missing ones in a savepoint; a concurrent insert (``IntegrityError``) sends that key back to
    the UPDATE."""
    model = row_model()
    manager = model._base_manager.db_manager(db)
    pending = list(keys)
    for _attempt in range(5):
        if not pending:
            return read_stamps(keys, db)
        for chunk in chunks(pending):
            manager.filter(key__in=chunk).update(
                version=_new_version(deleted), updated_at=timezone.now()
            )
        # Rows updated above are locked by this transaction until it ends.
        present: set[str] = set()
        for chunk in chunks(pending):
            present.update(manager.filter(key__in=chunk).values_list("key", flat=True))
        retry = []
        for key in (key for key in pending if key not in present):
            defaults = row_defaults(key)
            try:
                with transaction.atomic(using=db):
                    manager.create(key=key, version=-1 if deleted else 1, **defaults)
            except IntegrityError:
                retry.append(key)  # created by a concurrent transaction: increment it
        pending = retry
    if not pending:
        return read_stamps(keys, db)
    raise DatabaseError(
        f"could not bump {pending!r}"
    )  # pragma: no cover - five lost races


def increment(db: str, keys: Sequence[str], deleted: bool) -> dict[str, Stamp]:
    """Increment the versions of ``keys`` (sorted) in ``db``; the values this transaction holds."""
    if uses_upsert(db):
        return upsert_returning(db, keys, deleted)
    return upsert_portable(db, keys, deleted)


def _reserve(db: str, keys: Sequence[str]) -> None:
    # SQLite: a transaction that reads first and writes later cannot wait for another writer
    # ("database is locked" at once, a 500). A write as its first statement takes the write lock
    # up front, waiting for the other writer (the connection's busy timeout) instead.
    if connections[db].vendor == "sqlite":
        manager = row_model()._base_manager.db_manager(db)
        manager.filter(key__in=keys[:1]).update(version=F("version"))


# Rows this process has seen exist, per database: a lock of only such keys may take one query
# (the locking read), not two (``lock(known_first=True)``).
_existing: set[tuple[str, str]] = set()
_MAX_EXISTING: Final = 65536


def _locked_stamps(manager: Any, keys: Sequence[str]) -> dict[str, Stamp]:
    found: dict[str, Stamp] = {}
    for chunk in chunks(keys):
        rows = (
            manager.select_for_update()
            .filter(key__in=chunk)
            .order_by("key")
            .values_list("key", "version", "updated_at")
        )
        found.update(_stamped(rows))
    return found


def _create(manager: Any, keys: Sequence[str]) -> None:
    model = row_model()
    manager.bulk_create(
        [model(key=key, version=0, **row_defaults(key)) for key in keys],
        ignore_conflicts=True,
    )


class RowsMissing(DatabaseError):
    """A row this process had seen is gone (deleted by hand, or made by a transaction that rolled
    back) and rows are already locked: the transaction must start again (``lock`` then makes the
    missing rows before locking any, so no writer waits for another's insert holding a lock)."""


def _all_locked(
    db: str, unique: Sequence[str], found: dict[str, Stamp]
) -> dict[str, Stamp]:
    """``found``, when the locking read returned every row of ``unique``; else ``RowsMissing``."""
    if len(found) < len(unique):
        _existing.difference_update((db, key) for key in unique if key not in found)
        raise RowsMissing(f"version rows gone: {sorted(set(unique) - set(found))}")
    return found


def lock(keys: Iterable[str], using: str | None = None) -> dict[str, int]:
    """Lock the rows of ``keys`` (creating missing ones) until the transaction ends; their
    versions. ``RowsMissing`` when a row was deleted between its making and its lock (the
    transaction must start again)."""
    return versions_of(lock_stamps(keys, using))


def lock_stamps(
    keys: Iterable[str], using: str | None = None, *, known_first: bool = False
) -> dict[str, Stamp]:
    """``lock``, giving each key's version and bump time. ``known_first``: when every row was seen before, lock them with one query, and
    raise ``RowsMissing`` if one is gone (for a caller that can start its transaction again)."""
    db = database(using)
    if not connections[db].in_atomic_block:
        raise transaction.TransactionManagementError(
            "versions.lock() must be called inside transaction.atomic()"
        )
    # One lock order everywhere: no deadlock between two writers. The keys as reads and bumps
    # name them (``bounded_key``): the rows they use, not others.
    unique = sorted({bounded_key(key) for key in keys})
    if not unique:
        return {}
    _reserve(db, unique)
    manager = row_model()._base_manager.db_manager(db)
    values: dict[str, Stamp] = dict.fromkeys(unique, (0, 0))
    if known_first and all((db, key) in _existing for key in unique):
        values.update(_all_locked(db, unique, _locked_stamps(manager, unique)))
        return values
    # Missing rows are created before any row is locked: a writer never waits for another's
    # insert while holding a lock.
    for chunk in chunks(unique):
        existing = set(manager.filter(key__in=chunk).values_list("key", flat=True))
        missing = [key for key in chunk if key not in existing]
        if missing:
            _create(manager, missing)
    # A row seen above may be deleted before the lock: never go on without its lock.
    values.update(_all_locked(db, unique, _locked_stamps(manager, unique)))
    if len(_existing) > _MAX_EXISTING:
        _existing.clear()
    _existing.update((db, key) for key in unique)
    return values
