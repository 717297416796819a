"""Request parsing: the conditional header fields of a request, parsed once and never written back.

Every face (middleware, decorators, mixins) asks ``preconditions(request)``; the first call parses
``If-Match``, ``If-None-Match``, ``If-Modified-Since``, ``If-Unmodified-Since``, ``If-Range`` and
``Range`` into an immutable ``Preconditions`` kept on the request object, later calls return it.
``request.META`` is never modified: a view that must ignore ``Range`` (a failed ``If-Range``)
gets a copy of the request without it (``without_range``).
"""

from __future__ import annotations

import copy
import io
from typing import Final

from django.http import HttpRequest

from django_conditional.conf import conf
from django_conditional.preconditions import ConditionalHeaders, Preconditions

__all__ = [
    "parse_headers",
    "preconditions",
    "without_range",
    "forget",
    "get_twin",
    "defer_ranges",
    "ranges_deferred",
]

_ATTRIBUTE: Final = "_django_conditional_preconditions"
_RANGES_OUTSIDE: Final = "_django_conditional_ranges_outside"


def parse_headers(request: HttpRequest) -> Preconditions:
    """Parse the request's conditional headers (``preconditions`` does it once per request)."""
    return Preconditions.parse(
        ConditionalHeaders.from_meta(request.META), conf.MAX_LIST_MEMBERS
    )


def preconditions(request: HttpRequest) -> Preconditions:
    """The request's parsed conditional headers (parsed on the first call only)."""
    found: Preconditions | None = request.__dict__.get(_ATTRIBUTE)
    if found is None:
        found = request.__dict__[_ATTRIBUTE] = parse_headers(request)
    return found


def forget(request: HttpRequest) -> None:
    """Drop the parsed headers of a copied request whose META differs from its original's."""
    request.__dict__.pop(_ATTRIBUTE, None)


def without_range(request: HttpRequest) -> HttpRequest:
    """A shallow copy of ``request`` whose view sees no ``Range`` (§13.1.5: If-Range failed)."""
    twin = copy.copy(request)
    twin.META = {k: v for k, v in request.META.items() if k != "HTTP_RANGE"}
    if "environ" in twin.__dict__:  # WSGIRequest: environ is META
        twin.environ = twin.META  # type: ignore[attr-defined]
    twin.__dict__.pop("headers", None)  # cached_property over META
    twin.__dict__[_ATTRIBUTE] = preconditions(request).without_range()
    return twin


# What a GET twin of a request must not carry: the write's content and its preconditions.
_NOT_FOR_GET: Final = frozenset(
    {
        "CONTENT_LENGTH",
        "CONTENT_TYPE",
        "HTTP_IF_MATCH",
        "HTTP_IF_NONE_MATCH",
        "HTTP_IF_MODIFIED_SINCE",
        "HTTP_IF_UNMODIFIED_SINCE",
        "HTTP_IF_RANGE",
        "HTTP_RANGE",
    }
)


def get_twin(request: HttpRequest) -> HttpRequest:
    """A GET of the same URL for the same user: no content, no preconditions, no Range."""
    twin = copy.copy(request)
    for cached in ("headers", "_post", "_files", "POST", "FILES", "data"):
        twin.__dict__.pop(cached, None)
    forget(twin)
    twin.method = "GET"
    twin.META = {k: v for k, v in request.META.items() if k not in _NOT_FOR_GET}
    twin.META["REQUEST_METHOD"] = "GET"
    if "environ" in twin.__dict__:  # WSGIRequest: environ is META
        twin.environ = twin.META  # type: ignore[attr-defined]
    twin._body = b""
    twin._stream = io.BytesIO(b"")
    twin._read_started = False  # type: ignore[attr-defined]
    return twin


def defer_ranges(request: HttpRequest) -> None:
    """Say that ranges of this request are served further out (by the compressor, on coded bytes)."""
    request.__dict__[_RANGES_OUTSIDE] = True


def ranges_deferred(request: HttpRequest) -> bool:
    return bool(request.__dict__.get(_RANGES_OUTSIDE, False))
