"""The version keys a row's change affects: its own, its named collections', its parents', and
those of the multi-table relatives that share the row.

Key computation mostly runs after the data was written (``post_save``, bulk paths), so it must not
raise for a reason of its own: a collection function, a parent or a key that fails is logged (an
error to fix) and replaced by its model's table key, so the write stands and is still announced.
Database errors propagate: the transaction is broken anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import DatabaseError, connections, models, router

from django_conditional import versions
from django_conditional.tracking.registry import (
    Tracking,
    needs_instance,
    relatives,
    trackings_or_default,
)

logger = logging.getLogger("django_conditional")

Seen = set[tuple[type[models.Model], object]]
Rows = dict[
    str, tuple[type[models.Model], object]
]  # object key -> (model, pk) of the row it names

_CHUNK = 500  # pks per query (SQLite's variable limit)


def _guarded(
    what: str, model: type[models.Model], compute: Callable[[], list[str]]
) -> list[str]:
    """``compute()``, or the table key of ``model`` (logged) if it raises."""
    try:
        return compute()
    except DatabaseError:
        raise
    except Exception:
        logger.exception(
            "django_conditional: the %s of %s raised; bumping its table key instead",
            what,
            model._meta.label,
        )
        return [versions.collection_key(model)]


def instance_keys(
    instance: models.Model, found: Iterable[Tracking], seen: Seen | None = None
) -> list[str]:
    """The keys of ``instance`` under each of ``found`` (``seen`` cuts parent cycles)."""
    keys: list[str] = []
    for tracking in found:
        keys.extend(_tracking_keys(instance, tracking, seen))
    return keys


def pk_keys(found: Iterable[Tracking], pks: Iterable[object]) -> list[str]:
    """The table and object keys of the rows ``pks``, for trackings that need no instance."""
    keys: list[str] = []
    pks = list(pks)
    for tracking in found:
        keys.append(versions.collection_key(tracking.model))
        keys.extend(key for pk in pks for key in _object_key(tracking, pk))
    return keys


def _object_key(tracking: Tracking, pk: object) -> list[str]:
    return _guarded("object key", tracking.model, lambda: tracking.own_keys(pk)[:1])


def own_rows(found: Iterable[Tracking], pks: Iterable[object]) -> Rows:
    """The object keys of the rows ``pks`` under each of ``found``, with the row each names (a
    batch checks at its end whether they exist)."""
    rows: Rows = {}
    pks = [pk for pk in pks if pk is not None]
    for tracking in found:
        for pk in pks:
            try:
                rows[versions.object_key(tracking.model, pk)] = (tracking.model, pk)
            except Exception:  # logged by pk_keys/instance_keys
                continue
    return rows


def _collection_keys(instance: models.Model, tracking: Tracking) -> list[str]:
    keys: list[str] = []
    for func in tracking.collections:
        result = func(instance)
        if result is None:
            continue
        result = [result] if isinstance(result, str) else list(result)
        bad = [key for key in result if not isinstance(key, str)]
        if bad:
            raise TypeError(f"collection keys must be strings, not {bad!r}")
        keys.extend(result)
    return keys


def _tracking_keys(
    instance: models.Model, tracking: Tracking, seen: Seen | None = None
) -> list[str]:
    model = tracking.model
    pk = instance.pk
    keys = (
        _guarded("object key", model, lambda: tracking.own_keys(pk))
        if pk is not None
        else []
    )
    keys.extend(
        _guarded("collections", model, lambda: _collection_keys(instance, tracking))
    )
    if tracking.parents:
        seen = set() if seen is None else seen
        seen.add((model, pk))
        keys.extend(
            _guarded("parents", model, lambda: _parents(instance, tracking, seen))
        )
    return keys


def _parents(instance: models.Model, tracking: Tracking, seen: Seen) -> list[str]:
    keys: list[str] = []
    for fk in tracking.parent_fields():
        parent_pk = getattr(instance, fk.attname)
        if parent_pk is not None:
            keys.extend(_parent_keys(instance, fk, parent_pk, seen))
    return keys


def _parent_keys(
    instance: models.Model,
    fk: models.ForeignKey[Any, Any],
    parent_pk: object,
    seen: Seen,
) -> list[str]:
    parent_model: type[models.Model] = fk.related_model
    found = trackings_or_default(parent_model)
    if (found[0].model, parent_pk) in seen:
        return []
    if fk.target_field.primary_key is False:
        # A ForeignKey to a non-pk field: the parent must be loaded to know its pk.
        parent = _cached_or_fetch(
            instance, fk, parent_model, {fk.target_field.name: parent_pk}
        )
        if parent is None:
            return [versions.collection_key(t.model) for t in found]
        return instance_keys(parent, found, seen)
    if not needs_instance(found):
        seen.add((found[0].model, parent_pk))
        return pk_keys(found, [parent_pk])
    parent = _cached_or_fetch(instance, fk, parent_model, {"pk": parent_pk})
    if parent is None:  # deleted meanwhile (a cascade): its own delete bumps the rest
        return pk_keys(found, [parent_pk])
    return instance_keys(parent, found, seen)


def _cached_or_fetch(
    instance: models.Model,
    fk: models.ForeignKey[Any, Any],
    parent_model: type[models.Model],
    lookup: dict[str, object],
) -> models.Model | None:
    if fk.is_cached(instance):
        cached: models.Model | None = fk.get_cached_value(instance)
        if cached is not None and getattr(cached, fk.target_field.attname) == next(
            iter(lookup.values())
        ):
            return cached
    db = instance._state.db or router.db_for_read(parent_model)
    found: models.Model | None = (
        parent_model._base_manager.using(db).filter(**lookup).first()
    )
    return found


# ---------------------------------------------------------------------------------------------
# Keys of rows as the database has them now.


def can_lock(db: str) -> bool:
    """Whether rows read on ``db`` now can be locked until the transaction ends: the write that
    follows would lock them anyway, and a concurrent move must not slip between read and write."""
    connection = connections[db]
    return connection.in_atomic_block and connection.features.has_select_for_update


def _read(
    model: type[models.Model], pks: Sequence[object], db: str, lock: bool
) -> Iterable[models.Model]:
    queryset = model._base_manager.using(db).order_by("pk")
    if lock:
        queryset = queryset.select_for_update()
    for start in range(0, len(pks), _CHUNK):
        yield from queryset.filter(pk__in=pks[start : start + _CHUNK])


def _present(
    model: type[models.Model], pks: Sequence[object], db: str, lock: bool
) -> list[object]:
    queryset = model._base_manager.using(db).order_by("pk")
    if lock:
        queryset = queryset.select_for_update()
    found: list[object] = []
    for start in range(0, len(pks), _CHUNK):
        chunk = pks[start : start + _CHUNK]
        found.extend(queryset.filter(pk__in=chunk).values_list("pk", flat=True))
    return found


def row_keys(
    model: type[models.Model], pks: Sequence[object], db: str, lock: bool = False
) -> list[str]:
    """The keys of the ``model`` rows ``pks`` (missing ones give none), read now."""
    found = trackings_or_default(model)
    if not pks:
        return []
    if not needs_instance(found):
        present = _present(model, pks, db, lock)
        return pk_keys(found, present) if present else []
    keys: list[str] = []
    for row in _read(model, pks, db, lock):
        keys.extend(instance_keys(row, found))
    return keys


def relative_keys(
    model: type[models.Model], pks: Sequence[object], db: str, lock: bool = False
) -> list[str]:
    """The keys of the rows of ``model``'s multi-table relatives that share the rows ``pks``."""
    keys: list[str] = []
    for other in relatives(model):
        keys.extend(row_keys(other, pks, db, lock))
    return keys


def read_keys(
    model: type[models.Model], pks: Sequence[object], db: str, lock: bool = False
) -> list[str]:
    """``row_keys`` and ``relative_keys``: everything the rows ``pks`` cover, as they are now."""
    return row_keys(model, pks, db, lock) + relative_keys(model, pks, db, lock)
