"""Compression that keeps strong validators strong, so ``If-Match`` survives it.

Django's ``GZipMiddleware`` turns ``"v3"`` into ``W/"v3"`` on a compressed response. A client
that sends that tag back in ``If-Match`` then fails forever, since ``If-Match`` uses the strong
comparison (RFC 9110 §13.1.1). This middleware marks the content-coding inside a strong tag
instead (``"v3-gzip"``, as Apache's mod_deflate does): the gzip and identity representations keep
distinct strong tags (§8.8.3), and the precondition engine recognises the suffix, so
``If-Match: "v3-gzip"`` holds exactly while ``"v3"`` is current, and ``If-None-Match: "v3-gzip"``
only matches for requests that would get gzip.

Byte ranges (RFC 9110 §14) of a response this middleware may compress are ranges of the coded
bytes: it tells the ``ConditionalGetMiddleware`` inside to leave them to it, and serves them on the
response it sends (``If-Range`` then compares the coded tag, ``"v3-gzip"``). Only a deterministic
coding can be ranged: with Django's BREACH mitigation (``max_random_bytes``, 100 by default) two
compressions of one body differ, so a compressed 200 is sent whole; a subclass with
``max_random_bytes = 0`` serves ranges of the coded bytes. A compressed streaming body is never
ranged (its length is unknown); identity responses (clients without ``Accept-Encoding: gzip``) are. A 304 gets the ``Vary: Accept-Encoding`` its 200
gets (Django's middleware skips bodiless responses) when the 200 is known to be compressible.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.middleware.gzip import GZipMiddleware as DjangoGZipMiddleware
from django.utils.cache import patch_vary_headers

from django_conditional.byteranges import ranged
from django_conditional.preconditions import ANY, accepts_coding
from django_conditional.request import defer_ranges, preconditions
from django_conditional.responses import VARY_CODING_ATTRIBUTE
from django_conditional.validators import ETag

CODING = "gzip"


def coded_etag(etag: str) -> str | None:
    """``"v3"`` -> ``"v3-gzip"``; None for a weak or malformed tag."""
    if len(etag) >= 2 and etag[0] == '"' and etag[-1] == '"':
        return f'{etag[:-1]}-{CODING}"'
    return None


def _client_holds_coded(request: HttpRequest, coded: str) -> bool:
    if coded[1:-1] not in request.META.get("HTTP_IF_NONE_MATCH", ""):
        return False  # a tag cannot match unless its characters are there (no escapes)
    conditions = preconditions(request)
    tags = conditions.if_none_match
    if not tags or tags == ANY:
        return False
    if not accepts_coding(conditions.accept_encoding, CODING, conditions.max_members):
        return False
    wanted = ETag.from_header_value(coded)
    return any(tag.weak_match(wanted) for tag in tags)


class GZipMiddleware(DjangoGZipMiddleware):
    """Drop-in for ``django.middleware.gzip.GZipMiddleware`` that writes ``"tag-gzip"``, not ``W/"tag"``."""

    def process_request(self, request: HttpRequest) -> None:
        defer_ranges(request)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        etag = response.get("ETag")
        coded_before = "Content-Encoding" in response.headers
        response = super().process_response(request, response)
        if response.status_code == 304 and getattr(
            response, VARY_CODING_ATTRIBUTE, False
        ):
            patch_vary_headers(response, ("Accept-Encoding",))
        coded = coded_etag(etag) if etag else None
        if coded is not None:
            if response.get("Content-Encoding") == CODING:
                response.headers["ETag"] = coded
            elif response.status_code == 304 and _client_holds_coded(request, coded):
                # The client revalidated its gzip representation: confirm that one.
                response.headers["ETag"] = coded
        if (
            self.max_random_bytes
            and not coded_before
            and "Content-Encoding" in response
        ):
            # BREACH mitigation pads every compressed body differently: a range of one would
            # not continue a range of another, so the compressed 200 is sent whole.
            return response
        return ranged(request, response)
