"""What a versioned view depends on, named from its URL arguments without loading anything.

A resource turns ``(request, args, kwargs)`` into version-store keys (see ``versions.object_key``
and ``versions.collection_key``). Nothing here queries the database: an object is named by the
primary key in the URL, not fetched.

- ``ObjectOf(Article)`` / ``ObjectOf("blog.Article", url_kwarg="article_pk")``: one object; a URL
  value that cannot be its primary key is a 404.
- ``CollectionOf(Article)``: the model's whole table (bumped by every change to it).
- ``CollectionOf(Comment, "by_article", article="pk")``: a named collection whose parameters are
  read from URL kwargs (a string names the kwarg; a callable ``(request, *args, **kwargs)`` computes it).
- Any callable ``(request, *args, **kwargs) -> key | list[key]``; ``async def`` callables are awaited
  in async views. Sync callables run on the event loop of an async view: they must not do I/O.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from inspect import isawaitable
from typing import Any

from asgiref.sync import async_to_sync
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connections, router
from django.db.models import Field, IntegerField, Model
from django.http import Http404

from django_conditional.store.keys import collection_key, object_key

ModelRef = type[Model] | str
KeyFunc = Callable[..., object]
ParamSource = str | Callable[..., object]


def _model(ref: ModelRef) -> type[Model]:
    if isinstance(ref, str):
        return apps.get_model(ref)
    return ref


class Resource:
    """A declared dependency of a view; subclasses return its version-store keys."""

    # Whether the keys come from the URL's arguments alone (then a 304 computed from them may be
    # sent again for the same URL: ``answers``); not for callables, which may read anything.
    from_url: bool = False

    def keys(
        self, request: object, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> list[str]:
        raise NotImplementedError

    async def akeys(
        self, request: object, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> list[str]:
        return self.keys(request, args, kwargs)


def _url_value(
    source: ParamSource,
    request: object,
    args: tuple[object, ...],
    kwargs: dict[str, object],
) -> Any:
    if callable(source):
        return source(request, *args, **kwargs)
    try:
        return kwargs[source]
    except KeyError:
        raise ImproperlyConfigured(
            f"The URL of {getattr(request, 'path_info', '?')!r} has no {source!r} argument; "
            f"its arguments are {sorted(kwargs)}."
        ) from None


def _no_such(model: type[Model]) -> Http404:
    # As the view's own lookup would answer: no such object.
    return Http404(f"No {model._meta.object_name} matches the URL.")


def _in_range(model: type[Model], field: Field[object, object], pk: int) -> bool:
    """Whether the database column of an integer primary key can hold ``pk``."""
    if not isinstance(field, IntegerField):  # auto fields are integer fields too
        return True
    ops = connections[router.db_for_read(model)].ops
    low, high = ops.integer_field_range(field.get_internal_type())
    # Some backends report no range (SQLite before Django 5.0): no column holds more than 64 bits.
    low = -(2**63) if low is None else low
    high = 2**63 - 1 if high is None else high
    return low <= pk <= high


class ObjectOf(Resource):
    """One object of ``model``, whose primary key is the URL kwarg ``url_kwarg``."""

    def __init__(self, model: ModelRef, url_kwarg: ParamSource = "pk") -> None:
        self.model = model
        self.url_kwarg = url_kwarg
        self.from_url = isinstance(url_kwarg, str)

    def keys(
        self, request: object, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> list[str]:
        model = _model(self.model)
        pk = _url_value(self.url_kwarg, request, args, kwargs)
        field = model._meta.pk
        if type(pk) is str and field is not None:
            try:
                pk = field.to_python(pk)
            except ValidationError:
                raise _no_such(model) from None
        if type(pk) is int and field is not None and not _in_range(model, field, pk):
            # A value no row can hold (Django < 5.0 would fail on it in the view: a 500).
            raise _no_such(model)
        return [object_key(model, pk)]

    def __repr__(self) -> str:
        return f"ObjectOf({self.model!r}, url_kwarg={self.url_kwarg!r})"


class CollectionOf(Resource):
    """All of ``model`` (no ``name``), or its collection ``name`` with parameters from the URL."""

    def __init__(
        self, model: ModelRef, name: str | None = None, **params: ParamSource
    ) -> None:
        if params and name is None:
            raise TypeError(
                "CollectionOf parameters need a collection name: "
                "CollectionOf(Model, 'by_author', author='author_pk')."
            )
        self.model = model
        self.name = name
        self.params = params
        self.from_url = all(isinstance(source, str) for source in params.values())
        self._key: str | None = None  # without parameters, the key never changes

    def keys(
        self, request: object, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> list[str]:
        if not self.params:
            if self._key is None:
                self._key = collection_key(_model(self.model), self.name)
            return [self._key]
        values = {
            param: _url_value(source, request, args, kwargs)
            for param, source in self.params.items()
        }
        return [collection_key(_model(self.model), self.name, **values)]

    def __repr__(self) -> str:
        return f"CollectionOf({self.model!r}, {self.name!r}, **{self.params!r})"


def _as_keys(result: object, origin: object) -> list[str]:
    if isinstance(result, str):
        return [result]
    if isinstance(result, Iterable) and not isinstance(result, (bytes, Mapping)):
        keys = list(result)  # a generator is read once
        if all(isinstance(key, str) for key in keys):
            return keys
    raise TypeError(f"{origin!r} must return a key or a list of keys, not {result!r}.")


class KeyFunction(Resource):
    """A plain callable ``(request, *args, **kwargs) -> key | list[key]`` (sync or async)."""

    def __init__(self, func: KeyFunc) -> None:
        self.func = func

    def keys(
        self, request: object, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> list[str]:
        result = self.func(request, *args, **kwargs)
        if isawaitable(result):
            result = async_to_sync(_await)(result)
        return _as_keys(result, self.func)

    async def akeys(
        self, request: object, args: tuple[object, ...], kwargs: dict[str, object]
    ) -> list[str]:
        result = self.func(request, *args, **kwargs)
        if isawaitable(result):
            result = await result
        return _as_keys(result, self.func)

    def __repr__(self) -> str:
        return f"KeyFunction({self.func!r})"


async def _await(awaitable: Awaitable[object]) -> object:
    return await awaitable


def as_resources(declared: Iterable[Resource | KeyFunc]) -> tuple[Resource, ...]:
    """Normalise what a user declared: resources as they are, callables wrapped."""
    resources: list[Resource] = []
    for item in declared:
        if isinstance(item, Resource):
            resources.append(item)
        elif callable(item):
            resources.append(KeyFunction(item))
        else:
            raise TypeError(
                f"{item!r} is not a resource: use ObjectOf(Model), CollectionOf(Model) or a callable."
            )
    if not resources:
        raise TypeError("A versioned view needs at least one resource.")
    return tuple(resources)


def resolve_keys(
    resources: Sequence[Resource],
    request: object,
    args: tuple[object, ...],
    kwargs: dict[str, object],
) -> list[str]:
    """Every key of ``resources``, in order, without duplicates."""
    keys: dict[str, None] = {}
    for resource in resources:
        for key in resource.keys(request, args, kwargs):
            keys[key] = None
    return list(keys)


async def aresolve_keys(
    resources: Sequence[Resource],
    request: object,
    args: tuple[object, ...],
    kwargs: dict[str, object],
) -> list[str]:
    keys: dict[str, None] = {}
    for resource in resources:
        for key in await resource.akeys(request, args, kwargs):
            keys[key] = None
    return list(keys)


# Names of version 0.x, kept for one release.
_RENAMED = {"Obj": "ObjectOf", "Collection": "CollectionOf", "Function": "KeyFunction"}


def __getattr__(name: str) -> Any:
    new = _RENAMED.get(name)
    if new is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"django_conditional.resources.{name} is renamed {new}; the old name goes in 1.0.",
        DeprecationWarning,
        stacklevel=2,
    )
    return globals()[new]
