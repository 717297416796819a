"""View decorators: drop-in ``condition``, ``etag`` and ``last_modified``, on sync and async views.

Same signatures and calling conventions as ``django.views.decorators.http``; where Django departs
from RFC 9110 these follow the RFC (``If-Match: *`` and ``If-None-Match: *`` on a resource that
exists without an ETag, ``If-Unmodified-Since`` on a resource with no date, 304s that keep the
headers the view sets). Validators are computed, and preconditions evaluated, before the view runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from inspect import isawaitable
from typing import Any, TypeVar, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase

from django_conditional import remembered
from django_conditional.conf import conf
from django_conditional.evaluation import answer, evaluate_request, has_preconditions
from django_conditional.httpdate import format_http_date
from django_conditional.preconditions import SAFE_METHODS, Outcome
from django_conditional.validators import Validators

_View = TypeVar("_View", bound=Callable[..., Any])
ValidatorFunc = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A view's current validators, and the headers its 200 carries when the source knows them."""

    validators: Validators
    remembered_headers: Mapping[str, str] | None = None


class ValidatorSource:
    """Where a decorated view's validators come from. Subclasses give ``resolve`` (and ``aresolve``)."""

    def resolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Resolved:
        raise NotImplementedError

    async def aresolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Resolved:
        return await sync_to_async(self.resolve)(request, args, kwargs)

    def finish(
        self, request: HttpRequest, response: HttpResponseBase, resolved: Resolved
    ) -> None:
        """Stamp the validators on a successful GET or HEAD, as Django's ``condition`` does."""
        if request.method in SAFE_METHODS and 200 <= response.status_code < 300:
            validators = resolved.validators
            if validators.last_modified is not None and not response.has_header(
                "Last-Modified"
            ):
                response.headers["Last-Modified"] = format_http_date(
                    validators.last_modified
                )
            if validators.etag is not None:
                response.headers.setdefault("ETag", str(validators.etag))


def _call(
    func: ValidatorFunc | None,
    request: HttpRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if func is None:
        return None
    result = func(request, *args, **kwargs)
    if isawaitable(result):
        # An async validator function on a sync view: run it to completion.
        return async_to_sync(_await)(result)
    return result


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


async def _acall(
    func: ValidatorFunc | None,
    request: HttpRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if func is None:
        return None
    if iscoroutinefunction(func):
        return await func(request, *args, **kwargs)
    # A sync function may use the ORM: never call it from the event loop.
    result = await sync_to_async(func)(request, *args, **kwargs)
    return await result if isawaitable(result) else result


def _validators(etag: Any, last_modified: Any) -> Validators:
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

    def resolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Resolved:
        return Resolved(
            _validators(
                _call(self.etag_func, request, args, kwargs),
                _call(self.last_modified_func, request, args, kwargs),
            )
        )

    async def aresolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Resolved:
        return Resolved(
            _validators(
                await _acall(self.etag_func, request, args, kwargs),
                await _acall(self.last_modified_func, request, args, kwargs),
            )
        )


def _early_headers(
    declared: Mapping[str, str], remembered_headers: Mapping[str, str] | None
) -> dict[str, str]:
    return {**(remembered_headers or {}), **declared}


def conditional_view(
    view: _View, source: ValidatorSource, *, headers: Mapping[str, str] | None = None
) -> _View:
    """Wrap ``view`` so its preconditions are answered from ``source`` before it runs.

    ``headers`` declares headers of the view's 200 (``Cache-Control``, ``Vary``...) for the 304s
    sent without running it; with ``CONDITIONAL_REMEMBER_HEADERS`` those the view sets are also
    remembered from its last 200. Decorators applied outside this one act on the 304 anyway.
    """
    declared = dict(headers or {})
    identity = remembered.view_id(view)

    def should_remember(request: HttpRequest, response: HttpResponseBase) -> bool:
        return (
            conf.REMEMBER_HEADERS
            and request.method in SAFE_METHODS
            and 200 <= response.status_code < 300
        )

    if iscoroutinefunction(view):

        async def _async_view(
            request: HttpRequest, *args: Any, **kwargs: Any
        ) -> HttpResponseBase:
            resolved = await source.aresolve(request, args, kwargs)
            if has_preconditions(request):
                evaluation = evaluate_request(request, resolved.validators)
                remembered_headers = resolved.remembered_headers
                if (
                    evaluation.outcome is Outcome.NOT_MODIFIED
                    and remembered_headers is None
                    and conf.REMEMBER_HEADERS
                ):
                    remembered_headers = await remembered.arecall(
                        remembered.memo_key(identity, request)
                    )
                early = answer(
                    request,
                    evaluation,
                    resolved.validators,
                    _early_headers(declared, remembered_headers),
                )
                if early is not None:
                    return early
            response: HttpResponseBase = await view(request, *args, **kwargs)
            source.finish(request, response, resolved)
            if should_remember(request, response):
                await remembered.aremember(
                    remembered.memo_key(identity, request), response
                )
            return response

        return cast(_View, wraps(view)(_async_view))

    def _view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        resolved = source.resolve(request, args, kwargs)
        if has_preconditions(request):
            evaluation = evaluate_request(request, resolved.validators)
            remembered_headers = resolved.remembered_headers
            if (
                evaluation.outcome is Outcome.NOT_MODIFIED
                and remembered_headers is None
                and conf.REMEMBER_HEADERS
            ):
                remembered_headers = remembered.recall(
                    remembered.memo_key(identity, request)
                )
            early = answer(
                request,
                evaluation,
                resolved.validators,
                _early_headers(declared, remembered_headers),
            )
            if early is not None:
                return early
        response: HttpResponseBase = view(request, *args, **kwargs)
        source.finish(request, response, resolved)
        if should_remember(request, response):
            remembered.remember(remembered.memo_key(identity, request), response)
        return response

    return cast(_View, wraps(view)(_view))


def condition(
    etag_func: ValidatorFunc | None = None,
    last_modified_func: ValidatorFunc | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Callable[[_View], _View]:
    """Drop-in for ``django.views.decorators.http.condition``; functions may be ``async def``."""

    def decorator(view: _View) -> _View:
        return conditional_view(
            view, FunctionSource(etag_func, last_modified_func), headers=headers
        )

    return decorator


def etag(
    etag_func: ValidatorFunc, *, headers: Mapping[str, str] | None = None
) -> Callable[[_View], _View]:
    """Drop-in for ``django.views.decorators.http.etag``."""
    return condition(etag_func=etag_func, headers=headers)


def last_modified(
    last_modified_func: ValidatorFunc, *, headers: Mapping[str, str] | None = None
) -> Callable[[_View], _View]:
    """Drop-in for ``django.views.decorators.http.last_modified``."""
    return condition(last_modified_func=last_modified_func, headers=headers)
