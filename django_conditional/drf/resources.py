"""Resources of DRF routes: an object looked up by a field other than its primary key, and the
keys of an item as its own URL would name them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Model
from django.http import Http404

from django_conditional.resources import Resource, as_resources, resolve_keys
from django_conditional.store.keys import object_key
from django_conditional.versioned_views import Declared

__all__ = ["ObjectByLookup", "item_keys"]

# Set by ``item_keys``: the primary key of an item already in hand, so no lookup query is needed.
PK_HINT = "_conditional_item_pk"


class ObjectByLookup(Resource):
    """One object of ``model`` named by ``field`` (a slug...) in the URL kwarg ``url_kwarg``.

    The version store keys objects by primary key, so this costs one query (``values_list``);
    declare ``ObjectOf`` or a key function on views that can name the primary key directly.
    """

    def __init__(self, model: type[Model], field: str, url_kwarg: str) -> None:
        self.model = model
        self.field = field
        self.url_kwarg = url_kwarg

    def keys(
        self, request: object, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> list[str]:
        if PK_HINT in kwargs:
            return [object_key(self.model, kwargs[PK_HINT])]
        value = kwargs.get(self.url_kwarg)
        manager = self.model._default_manager
        found = list(
            manager.filter(**{self.field: value}).values_list("pk", flat=True)[:2]
        )
        if len(found) != 1:
            raise Http404(f"No {self.model._meta.object_name} matches the URL.")
        return [object_key(self.model, found[0])]

    def __repr__(self) -> str:
        return f"ObjectByLookup({self.model!r}, {self.field!r}, {self.url_kwarg!r})"


def item_keys(
    declared: Declared,
    request: Any,
    route_kwargs: Mapping[str, Any],
    lookup_kwarg: str,
    item: Model,
    field: str,
) -> list[str]:
    """The version keys of ``item`` (looked up by ``field``), as its detail route's
    resources name them (the list route's own kwargs, a nested route's parent, are kept)."""
    resources = as_resources(declared)
    kwargs = {**route_kwargs, lookup_kwarg: getattr(item, field)}
    if any(isinstance(resource, ObjectByLookup) for resource in resources):
        kwargs[PK_HINT] = item.pk
    return resolve_keys(resources, request, (), kwargs)
