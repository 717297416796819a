"""Bulk paths that send no model signal (``update``, ``bulk_create``, ``bulk_update``), tracked.

Each reads the rows it is about to write (locked, where the database can), writes, and reads them
again: the keys of both states are bumped, so rows that move between parents or named collections
bump where they were and where they are, and multi-table relatives sharing the rows are included.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from functools import reduce
from operator import or_
from typing import TypeVar

from django.db import models, transaction
from django.db.models import Q, UniqueConstraint

from django_conditional import versions
from django_conditional.tracking.batching import batch, bump
from django_conditional.tracking.keys import (
    can_lock,
    instance_keys,
    own_rows,
    read_keys,
)
from django_conditional.tracking.registry import trackings_or_default

_M = TypeVar("_M", bound=models.Model)

_CHUNK = 500


def _unique_sets(
    model: type[models.Model], unique_fields: Collection[str] | None
) -> list[tuple[str, ...]]:
    """The sets of fields a conflict of ``bulk_create`` can be on: ``unique_fields``, else every
    unconditional unique constraint of the model (and its primary key)."""
    opts = model._meta
    if unique_fields:
        pk_name = opts.pk.name
        return [tuple(pk_name if name == "pk" else name for name in unique_fields)]
    sets: list[tuple[str, ...]] = [
        (f.name,) for f in opts.local_concrete_fields if f.unique
    ]
    sets.extend(tuple(names) for names in opts.unique_together)
    sets.extend(
        tuple(c.fields)
        for c in opts.total_unique_constraints
        if isinstance(c, UniqueConstraint) and c.fields
    )
    return sets


def _conflict_lookup(obj: models.Model, sets: list[tuple[str, ...]]) -> Q | None:
    """The rows ``obj`` may conflict with: same pk, or same values of a unique set."""
    opts = type(obj)._meta
    terms = [Q(pk=obj.pk)] if obj.pk is not None else []
    for names in sets:
        values = {
            opts.get_field(name).attname: getattr(obj, opts.get_field(name).attname)  # type: ignore[union-attr]
            for name in names
        }
        if None not in values.values():
            terms.append(Q(**values))
    return reduce(or_, terms) if terms else None


class TrackedQuerySet(models.QuerySet[_M]):
    """A queryset whose bulk writes bump the versions of every object they touch, and of its
    collections, in the same transaction. Works for untracked models too (object and table keys)."""

    def _keys_of(self, objs: Iterable[models.Model]) -> list[str]:
        found = trackings_or_default(self.model)
        keys: list[str] = []
        for obj in objs:
            keys.extend(instance_keys(obj, found))
        return keys

    def update(self, **kwargs: object) -> int:
        with transaction.atomic(using=self.db, savepoint=False):
            pks = list(self.values_list("pk", flat=True))
            if not pks:
                return 0
            before = read_keys(self.model, pks, self.db, lock=can_lock(self.db))
            count = 0
            # Only rows whose pk was read are updated, so every updated row is bumped.
            for start in range(0, len(pks), _CHUNK):
                count += super(
                    TrackedQuerySet, self.filter(pk__in=pks[start : start + _CHUNK])
                ).update(**kwargs)
            after = read_keys(self.model, pks, self.db)
            bump(before + after, using=self.db)
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def delete(self) -> tuple[int, dict[str, int]]:
        # Tracked models have post_delete receivers, so Django collects and signals every row
        # (cascades included); the batch turns those into two bump statements.
        with batch(using=self.db):
            return super().delete()

    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]

    def _conflicting_pks(self, lookups: list[Q], lock: bool) -> list[object]:
        base = self.model._base_manager.using(self.db).order_by("pk")
        if lock:
            base = base.select_for_update()
        pks: list[object] = []
        for start in range(0, len(lookups), 100):
            condition = reduce(or_, lookups[start : start + 100])
            pks.extend(base.filter(condition).values_list("pk", flat=True))
        return list(dict.fromkeys(pks))

    def bulk_create(
        self,
        objs: Iterable[_M],
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        update_fields: Collection[str] | None = None,
        unique_fields: Collection[str] | None = None,
    ) -> list[_M]:
        """``bulk_create``; with ``ignore_conflicts``/``update_conflicts`` the rows the objects may
        conflict with are read before (locked) and after, so rows that existed and moved bump
        their old and new keys, and inserted rows are found even when no pk comes back."""
        objs = list(objs)
        lookups: list[Q] = []
        if ignore_conflicts or update_conflicts:
            sets = _unique_sets(self.model, unique_fields)
            lookups = [q for q in (_conflict_lookup(o, sets) for o in objs) if q]
        with transaction.atomic(using=self.db, savepoint=False):
            before_pks = (
                self._conflicting_pks(lookups, can_lock(self.db)) if lookups else []
            )
            keys = read_keys(self.model, before_pks, self.db)
            created = super().bulk_create(
                objs,
                batch_size=batch_size,
                ignore_conflicts=ignore_conflicts,
                update_conflicts=update_conflicts,
                update_fields=update_fields,
                unique_fields=unique_fields,
            )
            after_pks = self._conflicting_pks(lookups, False) if lookups else []
            keys.extend(read_keys(self.model, after_pks, self.db))
            keys.extend(self._keys_of(created))
            keys.append(versions.collection_key(self.model))
            pks = [*after_pks, *(obj.pk for obj in created)]
            rows = own_rows(trackings_or_default(self.model), pks)
            bump(keys, rows=rows, using=self.db)
        return created

    bulk_create.alters_data = True  # type: ignore[attr-defined]

    def bulk_update(
        self, objs: Iterable[_M], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        # Django's bulk_update runs ``update()`` per batch of rows, which bumps them (reading the
        # rows before and after); the batch turns all of those into one bump.
        with batch(using=self.db):
            return super().bulk_update(objs, fields, batch_size=batch_size)


TrackedManager = models.Manager.from_queryset(TrackedQuerySet)
