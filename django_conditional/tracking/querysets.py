"""Bulk paths that send no model signal (``update``, ``bulk_create``, ``bulk_update``), tracked."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from django.db import models, transaction

from django_conditional import versions
from django_conditional.tracking.batching import batch, bump
from django_conditional.tracking.keys import instance_keys, pk_keys
from django_conditional.tracking.registry import needs_instance, trackings_or_default

_M = TypeVar("_M", bound=models.Model)


class TrackedQuerySet(models.QuerySet[_M]):
    """A queryset whose bulk writes bump the versions of every object they touch, and of its
    collections, in the same transaction. Works for untracked models too (object and table keys)."""

    def _keys_of(self, objs: Iterable[models.Model]) -> list[str]:
        found = trackings_or_default(self.model)
        keys: list[str] = []
        for obj in objs:
            keys.extend(instance_keys(obj, found))
        return keys

    def _snapshot(self, pks: Sequence[Any]) -> list[str]:
        """Keys of the rows ``pks`` as the database has them now (named collections, parents)."""
        found = trackings_or_default(self.model)
        if not pks:
            return []
        if not needs_instance(found):
            return pk_keys(found, pks)
        keys: list[str] = []
        base = self.model._base_manager.using(self.db)
        for start in range(0, len(pks), 500):
            keys.extend(self._keys_of(base.filter(pk__in=pks[start : start + 500])))
        return keys

    def update(self, **kwargs: Any) -> int:
        with transaction.atomic(using=self.db, savepoint=False):
            pks = list(self.values_list("pk", flat=True))
            if not pks:
                return 0
            before = self._snapshot(pks)
            count = 0
            # Only rows whose pk was read are updated, so every updated row is bumped.
            for start in range(0, len(pks), 500):
                count += super(
                    TrackedQuerySet, self.filter(pk__in=pks[start : start + 500])
                ).update(**kwargs)
            after = self._snapshot(pks)
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

    def bulk_create(self, objs: Iterable[_M], *args: Any, **kwargs: Any) -> list[_M]:
        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, *args, **kwargs)
            keys = self._keys_of(created)
            keys.append(versions.collection_key(self.model))
            bump(keys, using=self.db)
        return created

    def bulk_update(
        self, objs: Iterable[_M], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        # Django's bulk_update runs ``update()`` per batch of rows, which bumps them (reading the
        # rows before and after); the batch turns all of those into one bump.
        with batch(using=self.db):
            return super().bulk_update(objs, fields, batch_size=batch_size)


TrackedManager = models.Manager.from_queryset(TrackedQuerySet)
