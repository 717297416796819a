"""Remembered 304s: a versioned view's 304 sent again while the read that made it still holds.

A versioned view's 304 is a function of the request (method, host, path and query, the view's
URL arguments, ``If-None-Match`` and the header values the view varies on), of the view's own
declarations, of the settings, and of one store read. When the process-local version cache
answered that read (``store.local``), the 304 is kept with the read's proof, and the next request
with the same inputs gets a copy of it as soon as ``versions.unchanged`` says the same read would
return the same bytes now: pending invalidations applied first, under the lease, no holder mark
run out, the same server and epoch, no cached value distrusted. That is the condition under which
the local copy itself may answer, so a remembered 304 is exactly as fresh as a recomputed one
(``docs/local-cache.md``): it skips the key building, the decoding, the tag, the evaluation and
the remembered headers, not a check.

What else a 304 could depend on is kept out: per-user views, ``Last-Modified`` functions, key
functions and URL parameters from callables (``Resource.from_url``), access checks that are not
remembered by state, a declared ``Expires``, observed requests (``observe``), ``If-Match``,
``If-Unmodified-Since``, ``Range``, ``If-Range``, a 304 with cookies. ``Accept-Encoding`` is always
keyed (the compression middleware matches a coded tag by it). A remembered relative ``Expires`` is
recomputed on every copy. The process keeps at most ``MAX_ANSWERS`` entries, each with bounded
inputs, all forgotten when a setting changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, Final, cast

from asgiref.sync import iscoroutinefunction
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponseBase
from django.http.response import ResponseHeaders

from django_conditional import observe, versions
from django_conditional.django_adapter import cloned_headers
from django_conditional.flow import View, proven
from django_conditional.remembered import expires_in
from django_conditional.responses import (
    VARY_CODING_ATTRIBUTE,
    NotModified,
    headers_for_304,
)

__all__ = [
    "HANDED",
    "MAX_ANSWERS",
    "MAX_INPUT",
    "REFUSED",
    "Answer",
    "Handed",
    "Provenance",
    "copied",
    "forget",
    "remembering",
]

MAX_ANSWERS: Final = 4096  # in the process, all views together
MAX_INPUT: Final = (
    2048  # characters of request input a key may hold; longer: not remembered
)
REFUSED: Final = (
    "HTTP_IF_MATCH",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
)


_answers: dict[tuple[object, ...], Answer] = {}  # (view number, request inputs) -> 304
_views = itertools.count()


@dataclass(frozen=True, slots=True, eq=False)
class Provenance:
    """What a 304 was made from: the store read's proof, and the remembered ``Expires`` offset
    (None: no relative ``Expires``)."""

    read: versions.Proof
    expires_offset: float | None


@dataclass(frozen=True, slots=True, eq=False)
class Answer:
    """A 304 kept: its provenance, its headers, whether its tag was a coded one (``compression``)."""

    provenance: Provenance
    headers: ResponseHeaders  # (``responses.headers_for_304``) only ever copied
    vary_coding: bool = False


# On a request whose 304 came from a remembering view (computed or sent again): what ``early``
# needs to keep the final 304 before the middleware.
HANDED: Final = "_conditional_handed"


@dataclass(frozen=True, slots=True, eq=False)
class Handed:
    """The remembering view (the wrapper itself), its 304's provenance, the headers (``META``
    names) the view varies on."""

    view: object
    provenance: Provenance
    vary: tuple[str, ...]


def _key(
    view: int,
    request: HttpRequest,
    args: tuple[object, ...],
    kwargs: dict[str, Any],
    vary: tuple[str, ...],
) -> tuple[object, ...] | None:
    """The request's inputs to a 304, or None when it must be computed."""
    meta = request.META
    tags = meta.get("HTTP_IF_NONE_MATCH")
    method = request.method
    if tags is None or method not in ("GET", "HEAD"):
        return None
    for name in REFUSED:
        if name in meta:
            return None
    values = tuple([str(meta.get(name, "")) for name in vary])
    # A coded tag ("v3-gzip") matches by Accept-Encoding (``preconditions``): always keyed.
    coding = str(meta.get("HTTP_ACCEPT_ENCODING", ""))
    host = str(meta.get("HTTP_HOST") or meta.get("SERVER_NAME", ""))
    path, query = request.path, str(meta.get("QUERY_STRING", ""))
    size = len(host) + len(path) + len(query) + len(tags) + len(coding)
    if size + sum(map(len, values)) > MAX_INPUT:
        return None
    key = (
        view,
        method,
        host,
        path,
        query,
        str(tags),
        coding,
        values,
        args,
        tuple(kwargs.items()),
    )
    try:
        hash(key)
    except TypeError:  # a URL converter's unhashable value
        return None
    return key


def copied(answer: Answer) -> HttpResponseBase:
    """A fresh 304 from ``answer`` (its relative ``Expires`` recomputed)."""
    response = NotModified()
    response.headers = cloned_headers(answer.headers)  # checked when kept
    offset = answer.provenance.expires_offset
    if offset is not None:
        response.headers["Expires"] = expires_in(offset)
    if answer.vary_coding:
        setattr(response, VARY_CODING_ATTRIBUTE, True)
    return response


def _kept(
    key: tuple[object, ...] | None,
    request: HttpRequest,
    response: HttpResponseBase,
    handing: tuple[object, tuple[str, ...]],
) -> None:
    provenance = proven(request)  # taken off the request in any case
    if (
        key is None
        or not isinstance(provenance, Provenance)
        or response.status_code != 304
        or type(response) is not NotModified
        or response.cookies
    ):
        return
    if len(_answers) >= MAX_ANSWERS:
        _answers.clear()  # only ever costs recomputing
    _answers[key] = Answer(
        provenance,
        headers_for_304(response.items()),
        bool(getattr(response, VARY_CODING_ATTRIBUTE, False)),
    )
    request.__dict__[HANDED] = Handed(handing[0], provenance, handing[1])


def _again(
    key: tuple[object, ...] | None,
    request: HttpRequest,
    handing: tuple[object, tuple[str, ...]],
) -> HttpResponseBase | None:
    if key is None:
        return None
    answer = _answers.get(key)
    if answer is None or observe.listening():
        return None
    if not versions.unchanged(answer.provenance.read):
        _answers.pop(key, None)
        return None
    request.__dict__[HANDED] = Handed(handing[0], answer.provenance, handing[1])
    return copied(answer)


def remembering(view: View, vary: tuple[str, ...]) -> View:
    """``view`` (a versioned view, all its wrappers included), its 304s remembered (see the module).
    ``vary``: the request headers (``META`` names) its representations vary on."""
    number = next(_views)
    wrapped: Callable[..., Any] = view

    if iscoroutinefunction(view):

        async def _async_view(
            request: HttpRequest, *args: object, **kwargs: Any
        ) -> HttpResponseBase:
            key = _key(number, request, args, kwargs, vary)
            again = _again(key, request, handing)
            if again is not None:
                return again
            response: HttpResponseBase = await wrapped(request, *args, **kwargs)
            _kept(key, request, response, handing)
            return response

        remembered = cast(View, wraps(view)(_async_view))
    else:

        def _view(
            request: HttpRequest, *args: object, **kwargs: Any
        ) -> HttpResponseBase:
            key = _key(number, request, args, kwargs, vary)
            again = _again(key, request, handing)
            if again is not None:
                return again
            response: HttpResponseBase = wrapped(request, *args, **kwargs)
            _kept(key, request, response, handing)
            return response

        remembered = cast(View, wraps(view)(_view))
    # The wrapper itself: ``early`` keeps a 304 only when the URL resolved to it, no decorator
    # around it.
    handing = (remembered, vary)
    return remembered


def forget(**kwargs: object) -> None:
    """Forget every remembered 304 (a setting changed; tests)."""
    _answers.clear()


setting_changed.connect(forget, dispatch_uid="django_conditional.answers")
