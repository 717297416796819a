"""Unsafe methods on versioned views: the precondition check and the write in one transaction.

For PUT, PATCH, POST and DELETE (any method but GET, HEAD, OPTIONS, TRACE, CONNECT) the write path
is one visible sequence (``write``):

1. open ``transaction.atomic()`` on the versions' database;
2. lock the version rows of the view's resources (``versions.lock``: ``SELECT ... FOR UPDATE``;
   on SQLite the write lock is taken first, so a concurrent writer waits instead of failing);
3. evaluate ``If-Match``, ``If-Unmodified-Since`` and ``If-None-Match`` against those locked
   database versions, never the cache (RFC 9110 §13.1.1, §13.1.4, §13.2.2); a failure is a 412
   and the view does not run;
4. run the view;
5. a successful write answers with the ``ETag`` a GET would then give (read again inside the
   transaction; the cache is written when the transaction commits, before the response leaves):
   a 200 or 204 that changed the versions, the target's; a 201, the created resource's, found by
   resolving its ``Location`` to a versioned view (RFC 9110 §15.3.2), never the collection's;
   any other status, none. Only when the response describes the stored state as it will be
   served (§9.3.4): ``write_etag=False`` on the view, or ``transformed(response)`` for one
   response, says the stored data was transformed, and then no ``ETag`` is sent.

Two concurrent writes that send the same ``If-Match`` serialise on the row lock: the first writes
and bumps the version, the second sees the new version and gets 412. The 428 policy (RFC 6585 §3)
is checked before anything else. Async views: transactions are bound to a thread, so the sequence
runs in Django's thread-sensitive executor, and an async view runs inside it through
``async_to_sync`` (its ORM calls come back to that thread, inside the transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import urljoin, urlsplit

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponseBase
from django.urls import Resolver404, get_script_prefix, resolve

from django_conditional import observe, versions
from django_conditional.conf import DEFAULT_REQUIRED_METHODS, conf
from django_conditional.flow import Args, Kwargs, Resolved, View, Visible, visible_first
from django_conditional.preconditions import (
    IGNORING_METHODS,
    SAFE_METHODS,
    Outcome,
    evaluate,
)
from django_conditional.request import preconditions
from django_conditional.store import fence
from django_conditional.store.database import RowsMissing, database
from django_conditional.validators import ETag, Validators

if TYPE_CHECKING:
    from django_conditional.versioned_views import VersionedSource

# None: the site policy (``CONDITIONAL_REQUIRE_PRECONDITION``); True: PUT, PATCH and DELETE;
# False: never; or the unsafe methods that must be conditional.
RequirePrecondition = bool | None | Collection[str]
# On a versioned view's wrapper: its ``VersionedSource``; on a class-based view's class: a
# ``(request, args, kwargs) -> VersionedSource`` classmethod. A 201's ``Location`` is resolved to
# one of them to give the created resource's ``ETag``.
SOURCE_ATTRIBUTE = "conditional_source"
CLASS_SOURCE_ATTRIBUTE = "conditional_source_for"
# Set on a response (``transformed``) whose write stored something else than it describes.
TRANSFORMED_ATTRIBUTE = "conditional_transformed"
_Response = TypeVar("_Response", bound=HttpResponseBase)
# A write starts again when a version row is deleted by hand between its making and its lock.
_ATTEMPTS: Final = 8


def transformed(response: _Response) -> _Response:
    """Mark a write's response: the stored data was transformed, so it gets no ``ETag`` (§9.3.4)."""
    setattr(response, TRANSFORMED_ATTRIBUTE, True)
    return response


def is_write(method: str | None) -> bool:
    return method not in SAFE_METHODS and method not in IGNORING_METHODS


def must_be_conditional(
    request: HttpRequest, setting: RequirePrecondition, dated: bool = True
) -> bool:
    """Whether the 428 policy applies to ``request`` and it carries no precondition the server
    can evaluate: If-Match, or a valid If-Unmodified-Since when the resource is ``dated``
    (§13.1.4 ignores an invalid date, and any date for a resource without one)."""
    conditions = preconditions(request)
    if conditions.if_match is not None or (
        dated and conditions.if_unmodified_since is not None
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


def _run(
    view: Callable[..., Any], request: HttpRequest, args: Args, kwargs: Kwargs
) -> Any:
    if iscoroutinefunction(view):
        return async_to_sync(view)(request, *args, **kwargs)
    return view(request, *args, **kwargs)


def _located_source(
    request: HttpRequest, location: str
) -> tuple[VersionedSource, Args, Kwargs] | None:
    # The versioned view a GET of ``location`` (on this host) reaches, with its URL arguments.
    parts = urlsplit(location)
    if (parts.scheme or parts.netloc) and parts.netloc != request.get_host():
        return None
    prefix = get_script_prefix()
    path = urljoin(request.path, parts.path)
    if not path.startswith(prefix):
        return None
    try:
        match = resolve("/" + path[len(prefix) :], getattr(request, "urlconf", None))
    except Resolver404:
        return None
    args, kwargs = tuple(match.args), dict(match.kwargs)
    source = getattr(match.func, SOURCE_ATTRIBUTE, None)
    view_class = getattr(match.func, "view_class", None)
    if source is None and hasattr(view_class, CLASS_SOURCE_ATTRIBUTE):
        source = getattr(view_class, CLASS_SOURCE_ATTRIBUTE)(request, args, kwargs)
    return None if source is None else (source, args, kwargs)


def created_etag(request: HttpRequest, location: str) -> ETag | None:
    """The ``ETag`` a GET of ``location`` would give, read inside the write's transaction
    (None when it names no versioned view of this site)."""
    located = _located_source(request, location)
    if located is None:
        return None
    source, args, kwargs = located
    try:
        keys = source.keys(request, args, kwargs)
    except Http404:
        return None
    return source.current_etag(request, versions.lock(keys))


def _stamp(
    response: HttpResponseBase,
    source: VersionedSource,
    request: HttpRequest,
    before: Mapping[str, int],
    write_etag: bool,
) -> None:
    # The ETag a GET would then give, when the response describes the stored state (§9.3.4).
    if (
        not write_etag
        or response.has_header("ETag")
        or getattr(response, TRANSFORMED_ATTRIBUTE, False)
    ):
        return
    etag: ETag | None = None
    if response.status_code == 201:
        location = response.headers.get("Location")
        etag = created_etag(request, location) if location else None
    elif response.status_code in (200, 204):
        # The rows are this transaction's (locked before the view): its bumps, no query.
        after = versions.committed_versions(before)
        etag = source.current_etag(request, after) if after != before else None
    if etag is not None:
        response.headers["ETag"] = str(etag)


def write(
    view: Callable[..., Any],
    source: VersionedSource,
    request: HttpRequest,
    args: Args,
    kwargs: Kwargs,
    write_etag: bool = True,
) -> HttpResponseBase:
    """The write path: lock, read, evaluate, run the view, publish (see the module docstring)."""
    watch = observe.watch(request, source, source.view_id)
    for attempt in range(_ATTEMPTS):
        try:
            # The first takes rows seen before with one query; the others make rows first.
            response = _write(
                view, source, request, args, kwargs, write_etag, watch, attempt == 0
            )
            break
        except RowsMissing:  # before the view ran: start again
            if attempt == _ATTEMPTS - 1:
                raise
    return observe.finish(watch, response)  # after the commit


def _write(
    view: Callable[..., Any],
    source: VersionedSource,
    request: HttpRequest,
    args: Args,
    kwargs: Kwargs,
    write_etag: bool,
    watch: observe.Watch | None,
    known_first: bool,
) -> HttpResponseBase:
    with fence.fenced(), transaction.atomic(using=database()):
        # The queries spent deciding, counted for the decision record.
        before, validators = observe.counted(
            watch, _locked, source, request, args, kwargs, known_first
        )
        conditions = source.write_conditions(preconditions(request), validators)
        evaluation = evaluate(
            request.method or "POST",
            conditions,
            validators,
            accept_weakened=conf.ACCEPT_WEAKENED_IF_MATCH,
        )
        if watch is not None:  # the locked rows: no cache read
            watch.read(tuple(before), before, 0)
            watch.decided(evaluation, validators)
        if evaluation.outcome is not Outcome.PROCEED:
            return source.precondition_failed(
                request, evaluation.decided_by, validators
            )
        response: HttpResponseBase = _run(view, request, args, kwargs)
        if response.status_code < 400 and transaction.get_rollback(using=database()):
            # A view swallowed a database error (or asked for the rollback): what it answers
            # as done will not commit; a success would tell the client its write was kept.
            raise transaction.TransactionManagementError(
                f"{request.method} {request.path}: the view answered "
                f"{response.status_code} but its transaction is marked for rollback"
            )
        _stamp(response, source, request, before, write_etag)
    return response


def _locked(
    source: VersionedSource,
    request: HttpRequest,
    args: Args,
    kwargs: Kwargs,
    known_first: bool,
) -> tuple[dict[str, int], Validators]:
    keys = source.keys(request, args, kwargs)
    locked = versions.lock_stamps(keys, known_first=known_first)
    before = versions.versions_of(locked)
    return before, source.locked_validators(request, args, kwargs, locked)


def _refused(
    request: HttpRequest,
    source: VersionedSource,
    resolved: Resolved,
    required: Sequence[str],
    watch: observe.Watch | None,
) -> HttpResponseBase:
    if watch is not None:
        watch.read(resolved.keys, resolved.versions, 1 if resolved.keys else 0)
        watch.decided(None, resolved.validators, observe.PRECONDITION_REQUIRED)
    refused = source.precondition_required(request, required, resolved.validators)
    return observe.finish(watch, refused)


def guard(
    view: View,
    read_view: View,
    source: VersionedSource,
    require_precondition: RequirePrecondition = None,
    *,
    visible: Visible = None,
    write_etag: bool = True,
) -> View:
    """``read_view`` for safe methods; for unsafe ones the 428 policy, then ``write``.

    ``visible``, the view's access check, runs before both (``flow.visible_first``): a 428 or
    412 only for a resource the requester may read. ``read_view`` must not run it again.
    """
    # A source without a modification date can only be guarded by If-Match.
    dated = source.last_modified is not None
    required = ("If-Match", "If-Unmodified-Since") if dated else ("If-Match",)

    def refusal(request: HttpRequest) -> bool:
        return must_be_conditional(request, require_precondition, dated)

    if iscoroutinefunction(view):

        async def _async_view(
            request: HttpRequest, *args: object, **kwargs: object
        ) -> HttpResponseBase:
            if not is_write(request.method):
                response: HttpResponseBase = await read_view(request, *args, **kwargs)
                return response
            if refusal(request):
                watch = observe.watch(request, source, source.view_id)
                found = await observe.acounted(
                    watch, source.aresolve, request, args, kwargs
                )
                return _refused(request, source, found, required, watch)
            return await sync_to_async(write, thread_sensitive=True)(
                view, source, request, args, kwargs, write_etag
            )

        return visible_first(view, cast(View, wraps(read_view)(_async_view)), visible)

    def _view(
        request: HttpRequest, *args: object, **kwargs: object
    ) -> HttpResponseBase:
        if not is_write(request.method):
            response: HttpResponseBase = read_view(request, *args, **kwargs)
            return response
        if refusal(request):
            watch = observe.watch(request, source, source.view_id)
            found = observe.counted(watch, source.resolve, request, args, kwargs)
            return _refused(request, source, found, required, watch)
        return write(view, source, request, args, kwargs, write_etag)

    return visible_first(view, cast(View, wraps(read_view)(_view)), visible)
