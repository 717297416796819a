"""The version keys a row's change affects: its own, its named collections', its parents'."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models, router

from django_conditional import versions
from django_conditional.tracking.registry import (
    Tracking,
    needs_instance,
    trackings_or_default,
)

Seen = set[tuple[type[models.Model], Any]]


def instance_keys(
    instance: models.Model, found: Iterable[Tracking], seen: Seen | None = None
) -> list[str]:
    """The keys of ``instance`` under each of ``found`` (``seen`` cuts parent cycles)."""
    keys: list[str] = []
    for tracking in found:
        keys.extend(_tracking_keys(instance, tracking, seen))
    return keys


def pk_keys(found: Iterable[Tracking], pks: Iterable[Any]) -> list[str]:
    """The table and object keys of the rows ``pks``, for trackings that need no instance."""
    keys: list[str] = []
    pks = list(pks)
    for tracking in found:
        keys.append(versions.collection_key(tracking.model))
        keys.extend(versions.object_key(tracking.model, pk) for pk in pks)
    return keys


def _collection_keys(instance: models.Model, tracking: Tracking) -> list[str]:
    keys: list[str] = []
    for func in tracking.collections:
        result = func(instance)
        if result is None:
            continue
        if isinstance(result, str):
            keys.append(result)
        else:
            keys.extend(result)
    return keys


def _tracking_keys(
    instance: models.Model, tracking: Tracking, seen: Seen | None = None
) -> list[str]:
    pk = instance.pk
    keys = tracking.own_keys(pk) if pk is not None else []
    keys.extend(_collection_keys(instance, tracking))
    if tracking.parents:
        seen = set() if seen is None else seen
        seen.add((tracking.model, pk))
        for fk in tracking.parent_fields():
            parent_pk = getattr(instance, fk.attname)
            if parent_pk is None:
                continue
            keys.extend(_parent_keys(instance, fk, parent_pk, seen))
    return keys


def _parent_keys(
    instance: models.Model,
    fk: models.ForeignKey[Any, Any],
    parent_pk: Any,
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
    lookup: dict[str, Any],
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
