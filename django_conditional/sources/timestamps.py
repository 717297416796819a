"""``Last-Modified`` values (RFC 9110 §8.8.2) from model timestamp fields and version rows.

A ``Last-Modified`` taken from ``Max("updated_at")`` of a queryset does not move when a row is
deleted or leaves the queryset; ``versions_modified`` reads the time of the last bump of the
version rows instead, which deletions and m2m changes move too. Prefer a version ETag where you
can: ``If-None-Match`` takes precedence over ``If-Modified-Since`` (§13.2.2), and dates have a
one-second resolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import Max

from django_conditional.validators import to_utc

__all__ = [
    "instance_modified",
    "latest_modified",
    "alatest_modified",
    "versions_modified",
]


def _utc(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, not {type(value).__name__}")
    return to_utc(value)


def instance_modified(
    instance: models.Model, field: str = "updated_at"
) -> datetime | None:
    """The value of ``instance``'s timestamp ``field``, in UTC to the second (None when empty)."""
    return _utc(getattr(instance, field))


def latest_modified(
    queryset: models.QuerySet[Any], field: str = "updated_at"
) -> datetime | None:
    """The latest ``field`` of the rows of ``queryset`` (one aggregate query), None when empty."""
    return _utc(queryset.order_by().aggregate(latest=Max(field))["latest"])


async def alatest_modified(
    queryset: models.QuerySet[Any], field: str = "updated_at"
) -> datetime | None:
    """``latest_modified`` for async views."""
    latest = await queryset.order_by().aaggregate(latest=Max(field))
    return _utc(latest["latest"])


def versions_modified(keys: Iterable[str]) -> datetime | None:
    """When the last of ``keys`` was bumped, None if none was: read with their versions from the
    store (kept with each version in the cache, so no query once they are cached)."""
    from django_conditional import versions

    return versions.read(keys).last_changed()


async def aversions_modified(keys: Iterable[str]) -> datetime | None:
    """``versions_modified`` for async views."""
    from django_conditional import versions

    return (await versions.aread(keys)).last_changed()
