"""Which models are tracked, and how: the registry ``track`` fills and its resolution.

A row can be changed through several model classes: its own, a proxy, a multi-table child (which
shares its ancestors' rows). ``trackings(model)`` answers, for a model whose signal or queryset
fired, every tracking that row concerns; it is cached and the cache is cleared whenever the
registry changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models

from django_conditional import versions

CollectionsFunc = Callable[[Any], "Iterable[str] | str | None"]


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
        """The ``parents`` fields, checked once (a typo is an ``ImproperlyConfigured``)."""
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

    def own_keys(self, pk: object) -> list[str]:
        return [
            versions.object_key(self.model, pk),
            versions.collection_key(self.model),
        ]


_registry: dict[type[models.Model], Tracking] = {}
_resolved: dict[type[models.Model], tuple[Tracking, ...]] = {}
_relatives: dict[type[models.Model], tuple[type[models.Model], ...]] = {}


def tracked(model: type[models.Model]) -> Tracking | None:
    """The tracking of ``model`` (or of the concrete model of a proxy), None if it is not tracked."""
    found = _registry.get(model)
    if found is None and model._meta.proxy:
        found = _registry.get(model._meta.concrete_model)  # type: ignore[arg-type]
    return found


def register(tracking: Tracking) -> None:
    _registry[tracking.model] = tracking
    forget()


def unregister(model: type[models.Model]) -> bool:
    """Remove ``model``'s tracking; whether it was tracked."""
    found = _registry.pop(model, None) is not None
    forget()
    return found


def forget() -> None:
    _resolved.clear()
    _relatives.clear()


def models_tracked() -> list[type[models.Model]]:
    return list(_registry)


def trackings(model: type[models.Model]) -> tuple[Tracking, ...]:
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


def _pk_chain(model: type[models.Model]) -> list[type[models.Model]]:
    """``model`` and the multi-table ancestors whose primary key its primary key is."""
    chain = [model]
    pk = model._meta.pk
    while (
        pk is not None and pk.remote_field is not None and pk.remote_field.parent_link
    ):
        model = pk.related_model
        chain.append(model)
        pk = model._meta.pk
    return chain


def relatives(model: type[models.Model]) -> tuple[type[models.Model], ...]:
    """The concrete models, other than ``model`` and its ancestors, whose rows extend a ``model``
    row under the same primary key (multi-table children, their children, siblings sharing an
    ancestor row) and are tracked: a change to a ``model`` row changes their representation too.
    (A child's second parent, whose primary key differs, is not followed.)"""
    concrete: type[models.Model] = model._meta.concrete_model  # type: ignore[assignment]
    found = _relatives.get(concrete)
    if found is None:
        chain = _pk_chain(concrete)
        found = tuple(
            other
            for other in apps.get_models()
            if not other._meta.proxy
            and other not in chain
            and _pk_chain(other)[-1] is chain[-1]
            and trackings(other)
        )
        _relatives[concrete] = found
    return found


def trackings_or_default(model: type[models.Model]) -> tuple[Tracking, ...]:
    """``trackings(model)``, or the object and table keys of an untracked model."""
    return trackings(model) or (Tracking(model._meta.concrete_model),)  # type: ignore[arg-type]


def needs_instance(found: Iterable[Tracking]) -> bool:
    """Whether a row's keys need the row itself (named collections, parents), not just its pk."""
    return any(tracking.needs_instance for tracking in found)


def concerned(candidate: type[models.Model], model: type[models.Model]) -> bool:
    """Whether ``candidate``'s rows are ``model``'s: itself, a proxy, a multi-table child."""
    concrete = candidate._meta.concrete_model
    return concrete is model or model in concrete._meta.get_parent_list()  # type: ignore[union-attr]


def senders(model: type[models.Model]) -> list[type[models.Model]]:
    """The model classes whose signals can report a change to a ``model`` row."""
    # ``all_models`` holds every model class defined so far, even before the registry is ready.
    found: list[type[models.Model]] = [model]
    for app_models in list(apps.all_models.values()):
        for candidate in list(app_models.values()):
            if candidate is not model and concerned(candidate, model):
                found.append(candidate)
    return found
