"""Automatic version bumps for tracked models.

``track(Article, parents=("author",), collections=[by_author])`` (in ``AppConfig.ready()``, or
below the model class) bumps, whenever an article is saved, deleted, or one of its many-to-many
relations changes (from either side):

- the article's object key and its model's collection key;
- the named collections ``collections`` returns for it, before and after the change;
- its parents (``Comment`` tracked with ``parents=("article",)`` bumps the article when a comment
  changes, as Rails' ``touch: true``), recursively through the parents' own tracking.

Bulk paths that send no signal (``QuerySet.update``, ``bulk_create``, ``bulk_update``) are covered
by ``TrackedQuerySet``/``TrackedManager``; ``QuerySet.delete`` sends ``post_delete`` for every row of
a tracked model and is batched by ``TrackedQuerySet.delete``. Raw SQL calls ``versions.bump``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models, router, transaction
from django.db.models.signals import (
    class_prepared,
    m2m_changed,
    post_delete,
    post_save,
    pre_save,
)

from django_conditional import versions

__all__ = ["track", "tracked", "batch", "TrackedQuerySet", "TrackedManager"]

_M = TypeVar("_M", bound=models.Model)
CollectionsFunc = Callable[[Any], "Iterable[str] | str | None"]

_OLD_KEYS = "_conditional_old_keys"  # instance attribute: keys computed from the row before a save


@dataclass
class Tracking:
    """How one model is tracked (``track``'s arguments)."""

    model: type[models.Model]
    parents: tuple[str, ...] = ()
    collections: tuple[CollectionsFunc, ...] = ()
    _parent_fields: list[models.ForeignKey[Any, Any]] | None = field(
        default=None, repr=False
    )

    @property
    def needs_instance(self) -> bool:
        """Whether keys depend on field values (named collections, parents), not only on the pk."""
        return bool(self.parents or self.collections)

    def parent_fields(self) -> list[models.ForeignKey[Any, Any]]:
        if self._parent_fields is None:
            fields = []
            for name in self.parents:
                try:
                    fk = self.model._meta.get_field(name)
                except FieldDoesNotExist as exc:
                    raise ImproperlyConfigured(
                        f"track({self.model._meta.label}): no field {name!r} for parents"
                    ) from exc
                if not (fk.many_to_one or fk.one_to_one) or not fk.concrete:
                    raise ImproperlyConfigured(
                        f"track({self.model._meta.label}): parent {name!r} is not a ForeignKey"
                        " or OneToOneField"
                    )
                fields.append(fk)
            self._parent_fields = fields  # type: ignore[assignment]
        return self._parent_fields  # type: ignore[return-value]

    def own_keys(self, pk: Any) -> list[str]:
        return [
            versions.object_key(self.model, pk),
            versions.collection_key(self.model),
        ]

    def collection_keys(self, instance: models.Model) -> list[str]:
        keys: list[str] = []
        for func in self.collections:
            result = func(instance)
            if result is None:
                continue
            if isinstance(result, str):
                keys.append(result)
            else:
                keys.extend(result)
        return keys


_registry: dict[type[models.Model], Tracking] = {}


def tracked(model: type[models.Model]) -> Tracking | None:
    """The tracking of ``model`` (or of the concrete model of a proxy), None if it is not tracked."""
    found = _registry.get(model)
    if found is None and model._meta.proxy:
        found = _registry.get(model._meta.concrete_model)  # type: ignore[arg-type]
    return found


_resolved: dict[type[models.Model], tuple[Tracking, ...]] = {}


def _trackings(model: type[models.Model]) -> tuple[Tracking, ...]:
    """Every tracking a change to a ``model`` row concerns: its own (proxies share their concrete
    model's) and those of tracked multi-table-inheritance ancestors, whose rows it shares.
    Empty when none is tracked."""
    found = _resolved.get(model)
    if found is None:
        concrete: type[models.Model] = model._meta.concrete_model  # type: ignore[assignment]
        ancestors = [
            _registry[parent]
            for parent in concrete._meta.get_parent_list()
            if parent in _registry
        ]
        own = _registry.get(concrete)
        if own is None and ancestors:
            own = Tracking(concrete)  # the child's own object and table keys
        found = tuple([own, *ancestors] if own is not None else ancestors)
        _resolved[model] = found
    return found


def _trackings_or_default(model: type[models.Model]) -> tuple[Tracking, ...]:
    return _trackings(model) or (Tracking(model._meta.concrete_model),)  # type: ignore[arg-type]


def _needs_instance(trackings: Iterable[Tracking]) -> bool:
    """Whether a row's keys need the row itself (named collections, parents), not just its pk."""
    return any(tracking.needs_instance for tracking in trackings)


def _keys(
    instance: models.Model,
    trackings: Iterable[Tracking],
    seen: set[tuple[type[models.Model], Any]] | None = None,
) -> list[str]:
    keys: list[str] = []
    for tracking in trackings:
        keys.extend(_instance_keys(instance, tracking, seen))
    return keys


def _pk_keys(trackings: Iterable[Tracking], pks: Iterable[Any]) -> list[str]:
    """The table and object keys of the rows ``pks``, for trackings that need no instance."""
    keys: list[str] = []
    for tracking in trackings:
        keys.append(versions.collection_key(tracking.model))
        keys.extend(versions.object_key(tracking.model, pk) for pk in pks)
    return keys


# ---------------------------------------------------------------------------------------------
# Keys of an instance (its own, its named collections, its parents').


def _instance_keys(
    instance: models.Model,
    tracking: Tracking,
    seen: set[tuple[type[models.Model], Any]] | None = None,
) -> list[str]:
    pk = instance.pk
    keys = tracking.own_keys(pk) if pk is not None else []
    keys.extend(tracking.collection_keys(instance))
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
    seen: set[tuple[type[models.Model], Any]],
) -> list[str]:
    parent_model: type[models.Model] = fk.related_model
    trackings = _trackings_or_default(parent_model)
    if (trackings[0].model, parent_pk) in seen:
        return []
    if fk.target_field.primary_key is False:
        # A ForeignKey to a non-pk field: the parent must be loaded to know its pk.
        parent = _cached_or_fetch(
            instance, fk, parent_model, {fk.target_field.name: parent_pk}
        )
        if parent is None:
            return [versions.collection_key(t.model) for t in trackings]
        return _keys(parent, trackings, seen)
    if not _needs_instance(trackings):
        seen.add((trackings[0].model, parent_pk))
        return _pk_keys(trackings, [parent_pk])
    parent = _cached_or_fetch(instance, fk, parent_model, {"pk": parent_pk})
    if parent is None:  # deleted meanwhile (a cascade): its own delete bumps the rest
        return _pk_keys(trackings, [parent_pk])
    return _keys(parent, trackings, seen)


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


# ---------------------------------------------------------------------------------------------
# Batching: receivers add keys to the innermost batch instead of bumping one by one.


@dataclass
class _Batch:
    keys: dict[str, bool] = field(default_factory=dict)  # key -> deleted

    def add(self, keys: Iterable[str], deleted_key: str | None = None) -> None:
        # A deleted object stays deleted: a later bump in the batch comes from a child
        # (parent propagation), not from its re-creation.
        for key in keys:
            self.keys.setdefault(key, False)
        if deleted_key is not None:
            self.keys[deleted_key] = True


_current_batch: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar(
    "django_conditional_batch", default=None
)


@contextmanager
def batch(using: str | None = None) -> Iterator[None]:
    """Collect the bumps of tracked changes made inside the block and send them in two statements
    (one for live keys, one for deleted objects) at its end, inside one transaction."""
    outer = _current_batch.get()
    if outer is not None:  # nested: the outermost batch bumps
        yield
        return
    current = _Batch()
    token = _current_batch.set(current)
    reset = False
    try:
        with transaction.atomic(using=using, savepoint=False):
            yield
            _current_batch.reset(token)
            reset = True
            _flush(current, using)
    finally:
        if not reset:
            _current_batch.reset(token)


def _flush(current: _Batch, using: str | None) -> None:
    live = [key for key, deleted in current.keys.items() if not deleted]
    gone = [key for key, deleted in current.keys.items() if deleted]
    if live:
        versions.bump(*live, using=using)
    if gone:
        versions.bump(*gone, deleted=True, using=using)


def _bump(
    keys: Iterable[str], deleted_key: str | None = None, using: str | None = None
) -> None:
    current = _current_batch.get()
    if current is not None:
        current.add(keys, deleted_key)
        return
    live = [key for key in dict.fromkeys(keys) if key != deleted_key]
    if live:
        versions.bump(*live, using=using)
    if deleted_key is not None:
        versions.bump(deleted_key, deleted=True, using=using)


# ---------------------------------------------------------------------------------------------
# Receivers.


def _on_pre_save(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    trackings = _trackings(sender)
    if not _needs_instance(trackings):
        return
    instance.__dict__.pop(_OLD_KEYS, None)
    if instance._state.adding or instance.pk is None or kwargs.get("raw"):
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and not any(t.collections for t in trackings):
        fks = [fk for t in trackings for fk in t.parent_fields()]
        names = {fk.attname for fk in fks} | {fk.name for fk in fks}
        if not names.intersection(update_fields):
            return  # parents unchanged: the keys after the save say it all
    db = kwargs.get("using") or instance._state.db
    old = sender._base_manager.using(db).filter(pk=instance.pk).first()
    if old is not None:
        instance.__dict__[_OLD_KEYS] = _keys(old, trackings)


def _on_post_save(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    trackings = _trackings(sender)
    if not trackings:
        return
    keys = instance.__dict__.pop(_OLD_KEYS, [])
    keys.extend(_keys(instance, trackings))
    _bump(keys, using=kwargs.get("using"))


def _on_post_delete(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    trackings = _trackings(sender)
    if not trackings or instance.pk is None:
        return
    # Deleting a child of a multi-table parent deletes the parent row too (Django sends
    # post_delete for both): each object key is marked deleted by its own model's signal.
    _bump(
        _keys(instance, trackings),
        deleted_key=versions.object_key(trackings[0].model, instance.pk),
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


def _on_m2m_changed(
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
    mine = _trackings(type(instance))
    theirs = _trackings(model)
    if not mine and not theirs:
        return
    keys = _keys(instance, mine)
    if theirs:
        # The clear bumps before the rows go, inside the same transaction (``clear`` is atomic):
        # nobody sees the new versions before the rows are gone.
        pks = (
            _cleared_pks(sender, instance, model, reverse)
            if action == "pre_clear"
            else list(pk_set or ())
        )
        if pks and _needs_instance(theirs):
            db = using or instance._state.db
            for other in model._base_manager.using(db).filter(pk__in=pks):
                keys.extend(_keys(other, theirs))
        elif pks:
            keys.extend(_pk_keys(theirs, pks))
    if keys:
        _bump(keys, using=using)


_connected = False


def _connect(sender: type[models.Model]) -> None:
    uid = f"django_conditional.{sender._meta.label_lower}"
    pre_save.connect(_on_pre_save, sender=sender, dispatch_uid=uid)
    post_save.connect(_on_post_save, sender=sender, dispatch_uid=uid)
    post_delete.connect(_on_post_delete, sender=sender, dispatch_uid=uid)


def _disconnect(sender: type[models.Model]) -> None:
    uid = f"django_conditional.{sender._meta.label_lower}"
    pre_save.disconnect(sender=sender, dispatch_uid=uid)
    post_save.disconnect(sender=sender, dispatch_uid=uid)
    post_delete.disconnect(sender=sender, dispatch_uid=uid)


def _concerned(candidate: type[models.Model], model: type[models.Model]) -> bool:
    """Whether ``candidate``'s rows are ``model``'s: itself, a proxy, a multi-table child."""
    concrete = candidate._meta.concrete_model
    return concrete is model or model in concrete._meta.get_parent_list()  # type: ignore[union-attr]


def _senders(model: type[models.Model]) -> list[type[models.Model]]:
    # ``all_models`` holds every model class defined so far, even before the registry is ready.
    found: list[type[models.Model]] = [model]
    for app_models in list(apps.all_models.values()):
        for candidate in list(app_models.values()):
            if candidate is not model and _concerned(candidate, model):
                found.append(candidate)
    return found


def _on_class_prepared(sender: type[models.Model], **kwargs: Any) -> None:
    # A proxy or a multi-table child of a tracked model, defined after ``track`` ran: its
    # signals name it, not the tracked model.
    if any(_concerned(sender, model) for model in _registry):
        _resolved.clear()
        _connect(sender)


def _connect_global() -> None:
    global _connected
    if not _connected:
        # One receiver for every through model: relations declared on either side, even on
        # models loaded after ``track`` ran, are seen; untracked ones cost a dict lookup.
        m2m_changed.connect(_on_m2m_changed, dispatch_uid="django_conditional.m2m")
        class_prepared.connect(
            _on_class_prepared, dispatch_uid="django_conditional.proxies"
        )
        _connected = True


def track(
    model: type[_M],
    *,
    parents: Sequence[str] = (),
    collections: Sequence[CollectionsFunc] = (),
) -> type[_M]:
    """Bump ``model``'s versions whenever one of its objects changes (see the module docstring).

    ``parents``: names of ForeignKey/OneToOneField fields whose targets are bumped too.
    ``collections``: callables ``instance -> key(s)`` naming the collections the instance belongs to,
    e.g. ``lambda a: collection_key(Article, "by_author", author=a.author_id)``; they are called with
    the row before and after each change, so a move between collections bumps both.
    Returns the model, so it also works as a class decorator. Calling it again replaces the options.
    """
    if model._meta.abstract or model._meta.proxy:
        raise ImproperlyConfigured(
            f"track() needs a concrete model, not {model._meta.label} (its proxies are covered)"
        )
    tracking = Tracking(model, tuple(parents), tuple(collections))
    if apps.ready:
        tracking.parent_fields()  # fail early on a typo
    _registry[model] = tracking
    _resolved.clear()
    _connect_global()
    for sender in _senders(model):
        _connect(sender)
    return model


def untrack(model: type[models.Model]) -> None:
    """Stop tracking ``model`` (tests, mostly)."""
    if _registry.pop(model, None) is None:
        return
    _resolved.clear()
    for sender in _senders(model):
        if not _trackings(sender):
            _disconnect(sender)


# ---------------------------------------------------------------------------------------------
# Bulk paths.


class TrackedQuerySet(models.QuerySet[_M]):
    """A queryset whose bulk writes bump the versions of every object they touch, and of its
    collections, in the same transaction. Works for untracked models too (object and table keys)."""

    def _keys_of(self, objs: Iterable[models.Model]) -> list[str]:
        trackings = _trackings_or_default(self.model)
        keys: list[str] = []
        for obj in objs:
            keys.extend(_keys(obj, trackings))
        return keys

    def _snapshot(self, pks: Sequence[Any]) -> list[str]:
        """Keys of the rows ``pks`` as the database has them now (named collections, parents)."""
        trackings = _trackings_or_default(self.model)
        if not pks:
            return []
        if not _needs_instance(trackings):
            return _pk_keys(trackings, pks)
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
            _bump(before + after, using=self.db)
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
            _bump(keys, using=self.db)
        return created

    def bulk_update(
        self, objs: Iterable[_M], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        # Django's bulk_update runs ``update()`` per batch of rows, which bumps them (reading the
        # rows before and after); the batch turns all of those into one bump.
        with batch(using=self.db):
            return super().bulk_update(objs, fields, batch_size=batch_size)


TrackedManager = models.Manager.from_queryset(TrackedQuerySet)
