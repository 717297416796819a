"""Unsafe methods on versioned views: the precondition check and the write in one transaction.

For PUT, PATCH, POST and DELETE (any method but GET, HEAD, OPTIONS, TRACE, CONNECT) a versioned
view runs inside ``transaction.atomic()``. Its version rows are locked first
(``versions.lock``: ``SELECT ... FOR UPDATE``), ``If-Match``, ``If-Unmodified-Since`` and
``If-None-Match`` are evaluated against those locked database versions, never the cache
(RFC 9110 §13.1.1, §13.1.4, §13.2.2), and a failed precondition is answered 412 without running
the view. Two concurrent writes that send the same ``If-Match`` therefore serialise on the row
lock: the first one writes and bumps the version, the second sees the new version and gets 412.
A successful write that changed the versions answers with the new ``ETag`` (read again inside the
transaction; the cache is written when it commits, before the response leaves).

The 428 policy (RFC 6585 §3) is checked before anything else: a write that must be conditional and
carries neither ``If-Match`` nor ``If-Unmodified-Since`` is refused before the view runs.

Async views: transactions are bound to a thread, so the lock, the evaluation and the view run in
Django's thread-sensitive executor (``sync_to_async(thread_sensitive=True)``); the async view
itself runs on the event loop through ``async_to_sync``, and its ORM calls come back to that
thread, inside the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Protocol, TypeVar, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.db import router, transaction
from django.http import HttpRequest, HttpResponseBase

from django_conditional.conf import DEFAULT_REQUIRED_METHODS, conf
from django_conditional.httpdate import parse_http_date
from django_conditional.preconditions import IGNORING_METHODS, SAFE_METHODS
from django_conditional.responses import precondition_required
from django_conditional.validators import Validators

_View = TypeVar("_View", bound=Callable[..., Any])
# None: the site policy (``CONDITIONAL_REQUIRE_PRECONDITION``); True: PUT, PATCH and DELETE;
# False: never; or the unsafe methods that must be conditional.
RequirePrecondition = bool | None | Collection[str]


@dataclass
class WriteState:
    """The keys a write locked and their versions before the view ran."""

    keys: list[str] = field(default_factory=list)
    before: dict[str, int] = field(default_factory=dict)


_state: ContextVar[WriteState | None] = ContextVar(
    "django_conditional_write", default=None
)


def current_write() -> WriteState | None:
    """The write in progress in this context (set while a versioned unsafe request runs)."""
    return _state.get()


class WriteSource(Protocol):
    def resolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...

    async def aresolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...

    def after_write(
        self,
        request: HttpRequest,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        response: HttpResponseBase,
        state: WriteState,
    ) -> None: ...


def is_write(method: str | None) -> bool:
    return method not in SAFE_METHODS and method not in IGNORING_METHODS


def must_be_conditional(
    request: HttpRequest, setting: RequirePrecondition, dated: bool = True
) -> bool:
    """Whether the 428 policy applies to ``request`` and it carries no precondition the server
    can evaluate: If-Match, or a valid If-Unmodified-Since when the resource is ``dated``
    (§13.1.4 ignores an invalid date, and any date for a resource without one)."""
    meta = request.META
    if "HTTP_IF_MATCH" in meta or (
        dated and parse_http_date(meta.get("HTTP_IF_UNMODIFIED_SINCE")) is not None
    ):
        return False
    method = request.method
    if setting is None:
        policy = conf.REQUIRE_PRECONDITION
        return policy is not None and policy.applies(method, request.path_info)
    if setting is True:
        return method in DEFAULT_REQUIRED_METHODS
    if setting is False:
        return False
    return method in {m.upper() for m in setting}


def _database() -> str:
    from django_conditional.models import ResourceVersion

    return router.db_for_write(ResourceVersion)


def _validators(resolved: Any) -> Validators | None:
    validators = getattr(resolved, "validators", None)
    return validators if isinstance(validators, Validators) else None


def guard(
    view: _View,
    source: WriteSource,
    require_precondition: RequirePrecondition = None,
) -> _View:
    """Wrap ``view`` (already wrapped by ``conditional_view(view, source)``) for atomic writes."""

    def locked(
        request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HttpResponseBase:
        state = WriteState()
        with transaction.atomic(using=_database()):
            token = _state.set(state)
            try:
                if iscoroutinefunction(view):
                    response: HttpResponseBase = async_to_sync(view)(
                        request, *args, **kwargs
                    )
                else:
                    response = view(request, *args, **kwargs)
                if state.keys:
                    source.after_write(request, args, kwargs, response, state)
            finally:
                _state.reset(token)
        return response

    # A source without a modification date can only be guarded by If-Match.
    dated = getattr(source, "last_modified", True) is not None
    required = ("If-Match", "If-Unmodified-Since") if dated else ("If-Match",)

    def refuse(request: HttpRequest, resolved: Any) -> HttpResponseBase:
        return precondition_required(request, required, _validators(resolved))

    if iscoroutinefunction(view):

        async def _async_view(
            request: HttpRequest, *args: Any, **kwargs: Any
        ) -> HttpResponseBase:
            if not is_write(request.method):
                response: HttpResponseBase = await view(request, *args, **kwargs)
                return response
            if must_be_conditional(request, require_precondition, dated):
                return refuse(request, await source.aresolve(request, args, kwargs))
            return await sync_to_async(locked, thread_sensitive=True)(
                request, args, kwargs
            )

        return cast(_View, wraps(view)(_async_view))

    def _view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not is_write(request.method):
            response: HttpResponseBase = view(request, *args, **kwargs)
            return response
        if must_be_conditional(request, require_precondition, dated):
            return refuse(request, source.resolve(request, args, kwargs))
        return locked(request, args, kwargs)

    return cast(_View, wraps(view)(_view))
