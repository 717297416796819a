"""Correct, cheap HTTP conditional requests (RFC 9110) for Django.

The public API, importable from here::

    from django_conditional import versioned, ObjectOf, CollectionOf, track, bump
    from django_conditional import condition, etag, last_modified  # drop-ins for Django's

Names are imported on first use, so importing the package (as Django does for INSTALLED_APPS,
before settings are ready) imports nothing from Django.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("django-conditional")
except PackageNotFoundError:  # pragma: no cover - a source tree without install
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from django_conditional.compression import GZipMiddleware
    from django_conditional.decorators import condition, etag, last_modified
    from django_conditional.middleware import ConditionalGetMiddleware
    from django_conditional.mixins import VersionedMixin
    from django_conditional.resources import CollectionOf, KeyFunction, ObjectOf
    from django_conditional.tracking import (
        TrackedManager,
        TrackedQuerySet,
        batch,
        track,
    )
    from django_conditional.versioned_views import FROM_VERSIONS, versioned
    from django_conditional.versions import bump, collection_key, object_key

_PUBLIC = {
    "condition": "django_conditional.decorators",
    "etag": "django_conditional.decorators",
    "last_modified": "django_conditional.decorators",
    "versioned": "django_conditional.versioned_views",
    "FROM_VERSIONS": "django_conditional.versioned_views",
    "ObjectOf": "django_conditional.resources",
    "CollectionOf": "django_conditional.resources",
    "KeyFunction": "django_conditional.resources",
    "VersionedMixin": "django_conditional.mixins",
    "ConditionalGetMiddleware": "django_conditional.middleware",
    "GZipMiddleware": "django_conditional.compression",
    "track": "django_conditional.tracking",
    "batch": "django_conditional.tracking",
    "TrackedQuerySet": "django_conditional.tracking",
    "TrackedManager": "django_conditional.tracking",
    "bump": "django_conditional.versions",
    "object_key": "django_conditional.versions",
    "collection_key": "django_conditional.versions",
}

__all__ = [
    "FROM_VERSIONS",
    "CollectionOf",
    "ConditionalGetMiddleware",
    "GZipMiddleware",
    "KeyFunction",
    "ObjectOf",
    "TrackedManager",
    "TrackedQuerySet",
    "VersionedMixin",
    "__version__",
    "batch",
    "bump",
    "collection_key",
    "condition",
    "etag",
    "last_modified",
    "object_key",
    "track",
    "versioned",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
