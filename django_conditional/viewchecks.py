"""System checks of the site's versioned views: what silently breaks their 304s.

The URLconf is walked (``urlwalk``) for versioned views: ``@versioned`` functions (their
``VersionedSource``), class-based views with ``VersionedMixin`` and DRF views with
``ConditionalAPIMixin`` (their declared resources, or the model they derive them from).

- ``django_conditional.E016``: a resource names a model that ``track()`` never registered. Its
  versions stay at 0 whatever changes, so its 304s never end. (A model bumped by hand with
  ``versions.bump`` may silence it.)
- ``django_conditional.W011``: a tracked model behind a versioned view whose default manager's
  queryset is not a ``TrackedQuerySet``: ``update()``, ``bulk_create()`` and ``bulk_update()``
  through it send no signal, so they change rows without bumping their versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error, Warning
from django.db.models import Model

from django_conditional.tracking.querysets import TrackedQuerySet
from django_conditional.tracking.registry import tracked
from django_conditional.urlwalk import Route, routes
from django_conditional.writes import SOURCE_ATTRIBUTE

# Class attributes naming the resources of class-based views (VersionedMixin, the DRF mixin).
_CLASS_RESOURCES = (
    "version_resources",
    "conditional_resources",
    "conditional_list_resources",
)


def _model(ref: object) -> type[Model] | None:
    if isinstance(ref, str):
        try:
            return apps.get_model(ref)
        except (LookupError, ValueError):
            return None  # resolving it at request time reports it
    return ref if isinstance(ref, type) and issubclass(ref, Model) else None


def _resource_models(resources: Iterable[object]) -> Iterator[type[Model]]:
    for resource in resources:
        model = _model(getattr(resource, "model", None))
        if model is not None:
            yield model


def _class_models(view_class: type) -> Iterator[type[Model]]:
    from django_conditional.mixins import VersionedMixin

    drf = _drf_mixin()
    if not issubclass(view_class, VersionedMixin) and not (
        drf is not None and issubclass(view_class, drf)
    ):
        return
    declared = False
    for name in _CLASS_RESOURCES:
        resources = getattr(view_class, name, None)
        if resources is not None:
            declared = True
            yield from _resource_models(resources)
    if not declared:  # derived from the generic view's model or queryset
        model = getattr(view_class, "model", None) or getattr(
            getattr(view_class, "queryset", None), "model", None
        )
        found = _model(model)
        if found is not None:
            yield found


def _drf_mixin() -> type | None:
    try:
        from django_conditional.drf.views import ConditionalAPIMixin
    except ImportError:  # Django REST framework is not installed
        return None
    return ConditionalAPIMixin


def view_models(route: Route) -> list[type[Model]]:
    """The models whose versions the view of ``route`` reads (none for other views)."""
    source = getattr(route.callback, SOURCE_ATTRIBUTE, None)
    if source is not None:
        return list(_resource_models(getattr(source, "resources", ())))
    if route.view_class is not None:
        return list(_class_models(route.view_class))
    return []


def _versioned_models(urlconf: str | None = None) -> dict[type[Model], list[str]]:
    found: dict[type[Model], list[str]] = {}
    for route in routes(urlconf):
        for model in view_models(route):
            found.setdefault(model, []).append(route.route or "/")
    return found


def _bulk_tracked(model: type[Model]) -> bool:
    try:
        return isinstance(model._default_manager.get_queryset(), TrackedQuerySet)
    except Exception:  # a manager that cannot build its queryset yet: not ours to judge
        return True


def _where(routes_: Sequence[str]) -> str:
    shown = ", ".join(repr(r) for r in routes_[:3])
    return shown + (f" and {len(routes_) - 3} more" if len(routes_) > 3 else "")


def check_versioned_views(
    app_configs: Sequence[Any] | None = None, **kwargs: object
) -> list[CheckMessage]:
    """E016 (untracked model) and W011 (bulk paths that do not bump) for the site's views."""
    try:
        found = _versioned_models()
    except Exception:  # a broken URLconf is reported by Django's own checks
        return []
    messages: list[CheckMessage] = []
    for model, where in found.items():
        label = model._meta.label
        if tracked(model) is None:
            messages.append(
                Error(
                    f"Versioned views read the versions of {label}, which is not tracked: "
                    f"they stay at 0 whatever changes, so 304s never end (URLs {_where(where)}).",
                    hint=f"Call django_conditional.track({model.__name__}) in your AppConfig.ready(), "
                    "or silence this check if the model is bumped by hand (versions.bump).",
                    obj=model,
                    id="django_conditional.E016",
                )
            )
        elif not _bulk_tracked(model):
            messages.append(
                Warning(
                    f"{label}'s default manager does not bump versions on bulk writes: "
                    "update(), bulk_create() and bulk_update() send no signal, so versioned "
                    f"views of it (URLs {_where(where)}) keep answering 304 after them.",
                    hint="Use objects = django_conditional.TrackedManager() (or a manager "
                    "built from TrackedQuerySet) as the model's default manager.",
                    obj=model,
                    id="django_conditional.W011",
                )
            )
    return messages
