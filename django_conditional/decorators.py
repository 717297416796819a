"""View decorators: drop-in ``condition``, ``etag`` and ``last_modified``, on sync and async views.

Same signatures and calling conventions as ``django.views.decorators.http``; where Django departs
from RFC 9110 these follow the RFC (``If-Match: *`` and ``If-None-Match: *`` on a resource that
exists without an ETag, ``If-Unmodified-Since`` on a resource with no date, 304s that keep the
headers the view sets). Validators are computed, and preconditions evaluated, before the view runs.
``versioned`` (validators from resource versions) lives in ``django_conditional.versioned_views`` and is
re-exported here and at the package root.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from django.http import HttpRequest

from django_conditional.flow import (
    Args,
    Kwargs,
    Resolved,
    ValidatorSource,
    View,
    Visible,
    acall,
    call,
    conditional_view,
)
from django_conditional.validators import Validators
from django_conditional.versioned_views import versioned, versioned_view

__all__ = [
    "condition",
    "etag",
    "last_modified",
    "versioned",
    "versioned_view",
    "conditional_view",
    "FunctionSource",
]

ValidatorFunc = Callable[..., object]


def _validators(etag: object, last_modified: object) -> Validators:
    return Validators.of(
        etag if isinstance(etag, str) and etag else None,
        last_modified if isinstance(last_modified, datetime) else None,
    )


class FunctionSource(ValidatorSource):
    """Validators from Django-style ``etag_func`` and ``last_modified_func`` (sync or async)."""

    def __init__(
        self, etag_func: ValidatorFunc | None, last_modified_func: ValidatorFunc | None
    ):
        self.etag_func = etag_func
        self.last_modified_func = last_modified_func

    def resolve(self, request: HttpRequest, args: Args, kwargs: Kwargs) -> Resolved:
        return Resolved(
            _validators(
                call(self.etag_func, request, args, kwargs),
                call(self.last_modified_func, request, args, kwargs),
            )
        )

    async def aresolve(
        self, request: HttpRequest, args: Args, kwargs: Kwargs
    ) -> Resolved:
        return Resolved(
            _validators(
                await acall(self.etag_func, request, args, kwargs),
                await acall(self.last_modified_func, request, args, kwargs),
            )
        )


def condition(
    etag_func: ValidatorFunc | None = None,
    last_modified_func: ValidatorFunc | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    visible: Visible = None,
) -> Callable[[View], View]:
    """Drop-in for ``django.views.decorators.http.condition``; functions may be ``async def``.

    ``visible``: the view's access check, run before the validator functions and preconditions
    (``flow.visible_first``, RFC 9110 §13.2.1).
    """

    def decorator(view: View) -> View:
        source = FunctionSource(etag_func, last_modified_func)
        return conditional_view(view, source, headers=headers, visible=visible)

    return decorator


def etag(
    etag_func: ValidatorFunc,
    *,
    headers: Mapping[str, str] | None = None,
    visible: Visible = None,
) -> Callable[[View], View]:
    """Drop-in for ``django.views.decorators.http.etag``."""
    return condition(etag_func=etag_func, headers=headers, visible=visible)


def last_modified(
    last_modified_func: ValidatorFunc,
    *,
    headers: Mapping[str, str] | None = None,
    visible: Visible = None,
) -> Callable[[View], View]:
    """Drop-in for ``django.views.decorators.http.last_modified``."""
    return condition(
        last_modified_func=last_modified_func, headers=headers, visible=visible
    )
