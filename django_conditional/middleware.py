"""``ConditionalGetMiddleware``: a drop-in for Django's, exact to RFC 9110, sync and async.

What each page gets:

- Every 200 to GET or HEAD without ``ETag`` or ``Last-Modified`` gets a strong ``ETag`` from a
  hash of its body (``CONDITIONAL_HASH``); a ``FileResponse`` over a regular file gets one from
  the file's size and mtime; other streaming bodies, ``Cache-Control: no-store`` and
  ``CONDITIONAL_SKIP_PATHS`` get none.
- Preconditions of GET and HEAD are evaluated by the engine (§13.2.2) on the validators of the
  built 2xx response: 304 (§15.4.5 headers and cookies kept), 412, and ``If-Range`` (a partial
  from a representation that no longer matches becomes the full 200).
- Unsafe methods: the middleware runs after the view, so it cannot stop a write that already
  happened. Two guards run *before* the view, after routing (a URL that routes nowhere is the 404
  it would be, §13.2.1): the opt-in 428 policy (``CONDITIONAL_REQUIRE_PRECONDITION``) and the
  GET-first check (``CONDITIONAL_PRECHECK_UNSAFE``, on by default), which evaluates the
  preconditions of a request that carries any against a GET of the same URL, on pages whose view
  does not evaluate them itself (decorated views, and class-based views with ``VersionedMixin``,
  recognised through ``view_class``). The GET-first check is not atomic (a write may land between
  the GET and the write); versioned views are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, ResolverMatch, resolve

from django_conditional import observe
from django_conditional.byteranges import ranged, release
from django_conditional.conf import conf
from django_conditional.evaluation import evaluate_request, has_preconditions
from django_conditional.flow import is_guarded
from django_conditional.preconditions import (
    IGNORING_METHODS,
    SAFE_METHODS,
    Evaluation,
    Outcome,
    Preconditions,
    accepts_coding,
)
from django_conditional.request import (
    get_twin,
    preconditions,
    ranges_deferred,
    without_range,
)
from django_conditional.responses import (
    echo_weak_tag,
    not_modified_like,
    precondition_failed,
    precondition_required,
    response_validators,
)
from django_conditional.sources.content import get_hasher, response_etag
from django_conditional.validators import ETag, Validators

GetResponse = Callable[[HttpRequest], Any]
_ROUTE = "_django_conditional_route"
_UNRESOLVED = object()


def _can_fail(conditions: Preconditions) -> bool:
    """Whether an unsafe request carries a precondition it can fail on (§13.2.2 steps 1-3)."""
    return (
        conditions.if_match is not None
        or conditions.if_unmodified_since is not None
        or conditions.if_none_match is not None
    )


def _no_store(response: HttpResponseBase) -> bool:
    cache_control = response.get("Cache-Control")
    return cache_control is not None and any(
        part.strip().lower() == "no-store" for part in cache_control.split(",")
    )


def _route(request: HttpRequest) -> ResolverMatch | None:
    """The request's URL match (None: a 404), resolved once per request."""
    found = request.__dict__.get(_ROUTE, _UNRESOLVED)
    if found is _UNRESOLVED:
        try:
            found = resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            found = None
        request.__dict__[_ROUTE] = found
    return found  # type: ignore[no-any-return]


class ConditionalGetMiddleware:
    """Content ETags, 304/412 and If-Range after the view; the 428 policy and GET-first before it.

    Place it where Django's ``ConditionalGetMiddleware`` goes: after ``GZipMiddleware`` and
    before any middleware that changes the response body.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        self.stock_gzip = conf.STOCK_GZIP
        if self.async_mode:
            # Mark the instance as a coroutine function; the switch happens in __call__.
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        early = self.before_view(request)
        if early is not None:
            return early
        if self.needs_precheck(request):
            early = self.precheck(request, self.get_response(get_twin(request)))
            if early is not None:
                return early
        response: HttpResponseBase = self.get_response(request)
        full = self.full_request(request, response)
        if full is not None:
            release(response)
            response = self.get_response(full)
        if self.head_needs_get(request, response):
            self.copy_get_validators(response, self.get_response(get_twin(request)))
            return self.after_view(request, response, tag=False)
        return self.after_view(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = (
            self.get_response
        )
        early = self.before_view(request)
        if early is not None:
            return early
        if self.needs_precheck(request):
            early = self.precheck(request, await get_response(get_twin(request)))
            if early is not None:
                return early
        response = await get_response(request)
        full = self.full_request(request, response)
        if full is not None:
            release(response)
            response = await get_response(full)
        if self.head_needs_get(request, response):
            self.copy_get_validators(response, await get_response(get_twin(request)))
            return self.after_view(request, response, tag=False)
        return self.after_view(request, response)

    # The steps, plain sync methods shared by both modes (subclassing-friendly).

    def skipped(self, request: HttpRequest) -> bool:
        """Whether ``CONDITIONAL_SKIP_PATHS`` leaves this request alone (the 428 policy still applies)."""
        skip_paths = conf.SKIP_PATHS
        if not skip_paths:
            return False
        path = request.path_info
        return any(pattern.match(path) for pattern in skip_paths)

    def before_view(self, request: HttpRequest) -> HttpResponseBase | None:
        """428 (RFC 6585 §3) for a write the policy requires to be conditional and that is not."""
        if request.method in SAFE_METHODS:
            return None
        policy = conf.REQUIRE_PRECONDITION
        conditions = preconditions(request)
        if (
            policy is not None
            and policy.applies(request.method, request.path_info)
            and conditions.if_match is None
            # §13.1.4: an invalid date is ignored, so it does not make the write conditional.
            and conditions.if_unmodified_since is None
            # §13.2.1: after the normal request checks; a URL that routes nowhere is a 404.
            and _route(request) is not None
        ):
            return observe.answered(request, self, precondition_required(request))
        return None

    def needs_precheck(self, request: HttpRequest) -> bool:
        """Whether the GET-first check runs: opt-in, an unsafe request with preconditions, an unguarded view."""
        if (
            request.method in SAFE_METHODS
            or request.method in IGNORING_METHODS
            or not conf.PRECHECK_UNSAFE
            or not _can_fail(preconditions(request))
            or self.skipped(request)
        ):
            return False
        match = _route(request)
        return match is not None and not is_guarded(match.func)

    def precheck(
        self, request: HttpRequest, current: HttpResponseBase
    ) -> HttpResponseBase | None:
        """412 when the write's preconditions fail against ``current`` (the GET); None to run the write.

        Only a 2xx GET says what the current representation is; on anything else the write's
        own response decides (§13.2.1), so it runs.
        """
        if not 200 <= current.status_code < 300:
            release(current)
            return None
        etag = None
        if current.status_code == 200 and self.wants_etag(current):
            etag = self.add_etag(current)
        validators = response_validators(current, etag)
        release(current)
        evaluation = evaluate_request(request, validators)
        if evaluation.outcome is Outcome.PRECONDITION_FAILED:
            failed = precondition_failed(request, evaluation.decided_by, validators)
            return observe.answered(request, self, failed, evaluation, validators)
        return None

    def full_request(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpRequest | None:
        """For a 206 whose If-Range does not hold (§13.1.5), the request to run again without
        Range, so the view sends the full 200; None otherwise."""
        if (
            response.status_code != 206
            or request.method != "GET"
            or not preconditions(request).has_if_range
            or preconditions(request).range is None
            or self.skipped(request)
        ):
            return None
        evaluation = evaluate_request(request, response_validators(response))
        return None if evaluation.range_allowed else without_range(request)

    def head_needs_get(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        """A HEAD answered with an empty body, where the GET's body is what the tag must hash."""
        return (
            request.method == "HEAD"
            and response.status_code == 200
            and not response.streaming
            and not response.content  # type: ignore[attr-defined]
            and self.may_tag(response)
            and not self.skipped(request)
        )

    def copy_get_validators(
        self, response: HttpResponseBase, get_response: HttpResponseBase
    ) -> None:
        """Give a HEAD ``response`` the validators of the GET's ``get_response``, so both agree."""
        if get_response.status_code == 200:
            if self.wants_etag(get_response):
                self.add_etag(get_response)
            for name in ("ETag", "Last-Modified"):
                if name in get_response.headers:
                    response.headers[name] = get_response.headers[name]
        release(get_response)

    def may_tag(self, response: HttpResponseBase) -> bool:
        """Whether a 200 may get a content validator: no ``ETag`` or ``Last-Modified`` yet, no ``no-store``."""
        return not (
            "ETag" in response.headers
            or "Last-Modified" in response.headers
            or _no_store(response)
        )

    def wants_etag(self, response: HttpResponseBase) -> bool:
        """Whether a 200 gets a content validator: ``may_tag``, and a body (Django leaves an empty
        one untagged: a HEAD answered without a body would announce a tag its GET never has)."""
        return self.may_tag(response) and (
            response.streaming or bool(response.content)  # type: ignore[attr-defined]
        )

    def add_etag(self, response: HttpResponseBase) -> ETag | None:
        """Set the content ETag on ``response``; return it (None when it gets none)."""
        etag = response_etag(response, get_hasher(conf.HASH))
        if etag is not None:
            response.headers["ETag"] = str(etag)
        return etag

    def after_view(
        self, request: HttpRequest, response: HttpResponseBase, *, tag: bool = True
    ) -> HttpResponseBase:
        """Tag a 200 to GET or HEAD (unless ``tag`` is False), then answer its preconditions (§13.2.1: 2xx only)."""
        if request.method not in SAFE_METHODS or self.skipped(request):
            return response
        status = response.status_code
        etag = None
        if tag and status == 200 and self.wants_etag(response):
            etag = self.add_etag(response)
        if not 200 <= status < 300:
            return response
        watch = observe.watch(request, self, once=True)  # None unless observed
        if has_preconditions(request):
            validators = response_validators(response, etag)
            evaluation = evaluate_request(request, validators)
            if watch is not None:
                watch.decided(evaluation, validators)
            if evaluation.outcome is Outcome.NOT_MODIFIED:
                not_modified = not_modified_like(response)
                release(response)
                self.echo_weak_tag(request, evaluation, validators, not_modified)
                return observe.finish(watch, not_modified)
            if evaluation.outcome is Outcome.PRECONDITION_FAILED:
                release(response)
                failed = precondition_failed(request, evaluation.decided_by, validators)
                return observe.finish(watch, failed)
        elif watch is not None:
            watch.decided(None, response_validators(response, etag))
        return observe.finish(watch, self.serve_ranges(request, response))

    def serve_ranges(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        """206/416 for a GET with ``Range`` (§14), after the preconditions held.

        Left to the compressor outside when there is one of ours (ranges of the coded bytes,
        ``compression``); not served when Django's own ``GZipMiddleware`` would compress the
        answer, since it would compress a 206 as if it were the whole body.
        """
        if ranges_deferred(request) or (
            self.stock_gzip
            and accepts_coding(
                preconditions(request).accept_encoding,
                "gzip",
                preconditions(request).max_members,
            )
        ):
            return response
        return ranged(request, response)

    def echo_weak_tag(
        self,
        request: HttpRequest,
        evaluation: Evaluation,
        validators: Validators,
        not_modified: HttpResponseBase,
    ) -> None:
        """Repeat the client's ``W/`` on the 304's ETag when that is the form it holds
        (``responses.echo_weak_tag``: what ``GZipMiddleware`` outside this one weakened)."""
        echo_weak_tag(preconditions(request), evaluation, validators, not_modified)
