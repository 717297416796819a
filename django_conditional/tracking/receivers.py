"""Signal receivers: every save, delete and many-to-many change of a tracked row bumps its keys."""

from __future__ import annotations

from typing import Any

from django.db import models, router
from django.db.models.signals import (
    m2m_changed,
    post_delete,
    post_save,
    pre_delete,
    pre_save,
)

from django_conditional.tracking.batching import bump
from django_conditional.tracking.keys import (
    can_lock,
    instance_keys,
    own_rows,
    pk_keys,
    read_keys,
    relative_keys,
)
from django_conditional.tracking.registry import (
    Tracking,
    needs_instance,
    relatives,
    trackings,
)

_OLD_KEYS = "_conditional_old_keys"  # instance attribute: keys computed from the row before a save


def _fields_named(found: tuple[Tracking, ...]) -> set[str]:
    fks = [fk for t in found for fk in t.parent_fields()]
    return {fk.attname for fk in fks} | {fk.name for fk in fks}


def on_pre_save(
    sender: type[models.Model],
    instance: models.Model,
    raw: bool = False,
    using: str | None = None,
    update_fields: frozenset[str] | None = None,
    **kwargs: object,
) -> None:
    """Snapshot the keys of the row as the database has it, for ``on_post_save``.

    Whenever the pk is set: a new instance with an existing pk, or a raw save (``loaddata``),
    updates that row, whose old parents and collections must be bumped too. Inside a transaction
    the row is read with ``select_for_update``: a concurrent move of it cannot slip between this
    read and the write, which would leave the collection it moved out of unbumped.
    """
    instance.__dict__.pop(_OLD_KEYS, None)
    found = trackings(sender)
    pk = instance.pk
    if not found or pk is None:
        return
    others = relatives(sender)
    if not needs_instance(found) and not any(
        needs_instance(trackings(other)) for other in others
    ):
        return  # the keys are the pk's: the ones after the save say it all
    if (
        update_fields is not None
        and not others
        and not any(t.collections for t in found)
        and not _fields_named(found).intersection(update_fields)
    ):
        return  # parents unchanged: the keys after the save say it all
    db = using or instance._state.db or router.db_for_write(sender)
    old = read_keys(sender, [pk], db, lock=can_lock(db))
    if old:
        instance.__dict__[_OLD_KEYS] = old


def on_post_save(
    sender: type[models.Model],
    instance: models.Model,
    using: str | None = None,
    **kwargs: object,
) -> None:
    """Bump the keys of the row before (``on_pre_save``) and after the save, and of the
    multi-table relatives whose rows extend it."""
    found = trackings(sender)
    if not found:
        return
    keys = instance.__dict__.pop(_OLD_KEYS, [])
    keys.extend(instance_keys(instance, found))
    if relatives(sender):
        db = using or instance._state.db or router.db_for_write(sender)
        keys.extend(relative_keys(sender, [instance.pk], db))
    bump(keys, rows=own_rows(found, [instance.pk]), using=using)


def on_post_delete(
    sender: type[models.Model],
    instance: models.Model,
    using: str | None = None,
    **kwargs: object,
) -> None:
    found = trackings(sender)
    if not found or instance.pk is None:
        return
    # Deleting a child of a multi-table parent deletes the parent row too (Django sends
    # post_delete for both): each object key is marked deleted by its own model's signal. The
    # rows of relatives that extend this one are deleted by the cascade, which signals them.
    keys = instance_keys(instance, found)
    deleted = list(own_rows(found[:1], [instance.pk]))
    bump(keys, rows=own_rows(found, [instance.pk]), deleted=deleted, using=using)


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
) -> list[object]:
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


def _m2m_partners(
    model: type[models.Model],
) -> list[tuple[type[models.Model], type[models.Model], bool]]:
    """``(through, other model, reverse)`` for each many-to-many relation of ``model``'s own rows
    whose other side is tracked (declared on either side)."""
    concrete: Any = model._meta.concrete_model
    found: list[tuple[type[models.Model], type[models.Model], bool]] = [
        (f.remote_field.through, f.related_model, False)
        for f in concrete._meta.local_many_to_many
    ]
    found.extend(
        (rel.through, rel.related_model, True)
        for rel in concrete._meta.related_objects
        if rel.many_to_many and rel.model is concrete
    )
    return [entry for entry in found if trackings(entry[1])]


def on_pre_delete(
    sender: type[models.Model],
    instance: models.Model,
    using: str | None = None,
    **kwargs: object,
) -> None:
    """Deleting a row deletes its many-to-many links without ``m2m_changed``: bump the rows on
    the other side now, while the links can still be read (inside the delete's transaction)."""
    if instance.pk is None or not trackings(sender):
        return
    db = using or instance._state.db or router.db_for_write(sender)
    keys: list[str] = []
    for through, other, reverse in _m2m_partners(sender):
        pks = _cleared_pks(through, instance, other, reverse)
        if pks:
            keys.extend(read_keys(other, pks, db))
    if keys:
        bump(keys, using=using)


def on_m2m_changed(
    sender: type[models.Model],
    instance: models.Model,
    action: str,
    reverse: bool,
    model: type[models.Model],
    pk_set: set[object] | None,
    using: str | None = None,
    **kwargs: object,
) -> None:
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    mine = trackings(type(instance))
    theirs = trackings(model)
    if not mine and not theirs:
        return
    db = using or instance._state.db or router.db_for_write(type(instance))
    keys = instance_keys(instance, mine)
    if mine and relatives(type(instance)):
        keys.extend(relative_keys(type(instance), [instance.pk], db))
    if theirs:
        # The clear bumps before the rows go, inside the same transaction (``clear`` is atomic):
        # nobody sees the new versions before the rows are gone.
        pks = (
            _cleared_pks(sender, instance, model, reverse)
            if action == "pre_clear"
            else list(pk_set or ())
        )
        if needs_instance(theirs) or relatives(model):
            keys.extend(read_keys(model, pks, db))
        else:
            keys.extend(pk_keys(theirs, pks))
    if keys:
        bump(keys, using=using)


def connect(sender: type[models.Model]) -> None:
    uid = f"django_conditional.{sender._meta.label_lower}"
    pre_save.connect(on_pre_save, sender=sender, dispatch_uid=uid)
    post_save.connect(on_post_save, sender=sender, dispatch_uid=uid)
    post_delete.connect(on_post_delete, sender=sender, dispatch_uid=uid)
    pre_delete.connect(on_pre_delete, sender=sender, dispatch_uid=uid)


def disconnect(sender: type[models.Model]) -> None:
    uid = f"django_conditional.{sender._meta.label_lower}"
    pre_save.disconnect(sender=sender, dispatch_uid=uid)
    post_save.disconnect(sender=sender, dispatch_uid=uid)
    post_delete.disconnect(sender=sender, dispatch_uid=uid)
    pre_delete.disconnect(sender=sender, dispatch_uid=uid)


def connect_m2m() -> None:
    # One receiver for every through model: relations declared on either side, even on
    # models loaded after ``track`` ran, are seen; untracked ones cost a dict lookup.
    m2m_changed.connect(on_m2m_changed, dispatch_uid="django_conditional.m2m")
