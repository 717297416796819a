"""Signal receivers: every save, delete and many-to-many change of a tracked row bumps its keys."""

from __future__ import annotations

from typing import Any

from django.db import models, router
from django.db.models.signals import (
    m2m_changed,
    post_delete,
    post_save,
    pre_save,
)

from django_conditional import versions
from django_conditional.tracking.batching import bump
from django_conditional.tracking.keys import instance_keys, pk_keys
from django_conditional.tracking.registry import needs_instance, trackings

_OLD_KEYS = "_conditional_old_keys"  # instance attribute: keys computed from the row before a save


def on_pre_save(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    """Snapshot the keys of the row as the database has it, for ``on_post_save``."""
    found = trackings(sender)
    if not needs_instance(found):
        return
    instance.__dict__.pop(_OLD_KEYS, None)
    if instance._state.adding or instance.pk is None or kwargs.get("raw"):
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and not any(t.collections for t in found):
        fks = [fk for t in found for fk in t.parent_fields()]
        names = {fk.attname for fk in fks} | {fk.name for fk in fks}
        if not names.intersection(update_fields):
            return  # parents unchanged: the keys after the save say it all
    db = kwargs.get("using") or instance._state.db
    old = sender._base_manager.using(db).filter(pk=instance.pk).first()
    if old is not None:
        instance.__dict__[_OLD_KEYS] = instance_keys(old, found)


def on_post_save(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    found = trackings(sender)
    if not found:
        return
    keys = instance.__dict__.pop(_OLD_KEYS, [])
    keys.extend(instance_keys(instance, found))
    bump(keys, using=kwargs.get("using"))


def on_post_delete(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    found = trackings(sender)
    if not found or instance.pk is None:
        return
    # Deleting a child of a multi-table parent deletes the parent row too (Django sends
    # post_delete for both): each object key is marked deleted by its own model's signal.
    bump(
        instance_keys(instance, found),
        deleted_key=versions.object_key(found[0].model, instance.pk),
        using=kwargs.get("using"),
    )


def _m2m_field(
    through: type[models.Model], declaring: type[models.Model]
) -> models.ManyToManyField[Any, Any] | None:
    for candidate in declaring._meta.many_to_many:
        if candidate.remote_field.through is through:
            return candidate
    return None


def _cleared_pks(
    through: type[models.Model],
    instance: models.Model,
    model: type[models.Model],
    reverse: bool,
) -> list[Any]:
    declaring = model if reverse else type(instance)
    m2m = _m2m_field(through, declaring)
    if m2m is None:  # pragma: no cover - a through model Django would not send for
        return []
    source = m2m.m2m_field_name()
    target = m2m.m2m_reverse_field_name()
    mine, theirs = (target, source) if reverse else (source, target)
    column = through._meta.get_field(theirs).attname  # type: ignore[union-attr]
    db = instance._state.db or router.db_for_read(through)
    return list(
        through._base_manager.using(db)
        .filter(**{mine: instance.pk})
        .values_list(column, flat=True)
    )


def on_m2m_changed(
    sender: type[models.Model],
    instance: models.Model,
    action: str,
    reverse: bool,
    model: type[models.Model],
    pk_set: set[Any] | None,
    using: str | None = None,
    **kwargs: Any,
) -> None:
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    mine = trackings(type(instance))
    theirs = trackings(model)
    if not mine and not theirs:
        return
    keys = instance_keys(instance, mine)
    if theirs:
        # The clear bumps before the rows go, inside the same transaction (``clear`` is atomic):
        # nobody sees the new versions before the rows are gone.
        pks = (
            _cleared_pks(sender, instance, model, reverse)
            if action == "pre_clear"
            else list(pk_set or ())
        )
        if pks and needs_instance(theirs):
            db = using or instance._state.db
            for other in model._base_manager.using(db).filter(pk__in=pks):
                keys.extend(instance_keys(other, theirs))
        elif pks:
            keys.extend(pk_keys(theirs, pks))
    if keys:
        bump(keys, using=using)


def connect(sender: type[models.Model]) -> None:
    uid = f"django_conditional.{sender._meta.label_lower}"
    pre_save.connect(on_pre_save, sender=sender, dispatch_uid=uid)
    post_save.connect(on_post_save, sender=sender, dispatch_uid=uid)
    post_delete.connect(on_post_delete, sender=sender, dispatch_uid=uid)


def disconnect(sender: type[models.Model]) -> None:
    uid = f"django_conditional.{sender._meta.label_lower}"
    pre_save.disconnect(sender=sender, dispatch_uid=uid)
    post_save.disconnect(sender=sender, dispatch_uid=uid)
    post_delete.disconnect(sender=sender, dispatch_uid=uid)


def connect_m2m() -> None:
    # One receiver for every through model: relations declared on either side, even on
    # models loaded after ``track`` ran, are seen; untracked ones cost a dict lookup.
    m2m_changed.connect(on_m2m_changed, dispatch_uid="django_conditional.m2m")
