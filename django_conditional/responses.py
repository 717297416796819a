"""Responses to preconditions: 304 (§15.4.5), 412 (§15.5.13) and 428 (RFC 6585 §3).

412 and 428 bodies are RFC 9457 problem details, with a plain-text alternative.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from http.cookies import SimpleCookie
from typing import Any, Final

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotModified,
)
from django.http.response import ResponseHeaders
from django.utils.translation import gettext as _

from django_conditional.httpdate import format_http_date, parse_http_date
from django_conditional.preconditions import (
    ANY,
    Evaluation,
    Preconditions,
    weakened_if_match,
)
from django_conditional.request import preconditions
from django_conditional.validators import ETag, Validators

logger = logging.getLogger("django_conditional")

# §15.4.5: what a 304 carries of what the 200 would have carried.
NOT_MODIFIED_HEADERS: Final = (
    "Cache-Control",
    "Content-Location",
    "Date",
    "ETag",
    "Expires",
    "Vary",
    "Last-Modified",
)
# Set on a 304 whose 200 a compressor varies on Accept-Encoding (a body of at least
# ``COMPRESSIBLE_LENGTH`` bytes or a streaming one, no Content-Encoding): ``compression`` then gives
# the 304 the 200's ``Vary: Accept-Encoding`` (§15.4.5). Remembered headers carry it as the
# pseudo-header ``VARY_CODING`` (never sent).
VARY_CODING_ATTRIBUTE: Final = "conditional_vary_coding"
VARY_CODING: Final = ":vary-coding"
COMPRESSIBLE_LENGTH: Final = 200
PROBLEM_JSON: Final = "application/problem+json"
_SPEC: Final = "https://www.rfc-editor.org/rfc/rfc9110"
_PRECONDITION_SECTIONS: Final = {
    "If-Match": "section-13.1.1",
    "If-None-Match": "section-13.1.2",
    "If-Unmodified-Since": "section-13.1.4",
}


class _HeadersWithoutLength(ResponseHeaders):
    # §8.6: a 304 must not carry a Content-Length other than the 200's; later middleware
    # (CommonMiddleware) would add "Content-Length: 0", so this mapping refuses it.
    def __setitem__(self, key: str, value: Any) -> None:
        if key.lower() != "content-length":
            super().__setitem__(key, value)


def headers_for_304(items: Iterable[tuple[str, str]]) -> ResponseHeaders:
    """A 304's headers holding ``items`` (never a ``Content-Length``): kept to send again."""
    headers = _HeadersWithoutLength({})
    for name, value in items:
        headers[name] = value
    return headers


class NotModified(HttpResponseNotModified):
    """A bodiless 304 that keeps the §15.4.5 headers and cookies it is given."""

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        cookies: SimpleCookie | None = None,
    ):
        super().__init__()
        self.headers = _HeadersWithoutLength({})
        for name in NOT_MODIFIED_HEADERS:
            if headers is not None and name in headers:
                self.headers[name] = headers[name]
        if cookies:
            self.cookies = cookies
        if headers is not None and headers.get(VARY_CODING):
            setattr(self, VARY_CODING_ATTRIBUTE, True)


def compressible(response: HttpResponseBase) -> bool:
    """Whether a compressor would vary ``response`` on Accept-Encoding (Django's GZip rule)."""
    if "Content-Encoding" in response.headers:
        return False
    if getattr(response, "is_rendered", True) is False:
        return False  # a template response rendered later (DRF): its length is not known yet
    return response.streaming or len(response.content) >= COMPRESSIBLE_LENGTH  # type: ignore[attr-defined]


def validator_headers(validators: Validators) -> dict[str, str]:
    """``ETag`` and ``Last-Modified`` header values for ``validators``."""
    headers = {}
    if validators.etag is not None:
        headers["ETag"] = str(validators.etag)
    if validators.last_modified is not None:
        headers["Last-Modified"] = format_http_date(validators.last_modified)
    return headers


def response_validators(
    response: HttpResponseBase, etag: ETag | None = None
) -> Validators:
    """The validators a built 2xx response carries; it exists, whatever it carries (§13.1.1).

    ``etag`` is the response's ETag when the caller just made it (saves parsing it back).
    """
    if etag is None:
        header = response.get("ETag")
        etag = ETag.from_header_value(header) if header else None
    last_modified = response.get("Last-Modified")
    return Validators(
        etag,
        parse_http_date(last_modified) if last_modified else None,
        exists=True,
    )


def not_modified_like(response: HttpResponseBase) -> NotModified:
    """The 304 for a request whose full response (``response``) was already built."""
    headers = {
        name: response.headers[name]
        for name in NOT_MODIFIED_HEADERS
        if name in response.headers
    }
    if compressible(response):
        headers[VARY_CODING] = "1"
    return NotModified(headers, response.cookies)


def _wants_text(request: HttpRequest) -> bool:
    accept = request.META.get("HTTP_ACCEPT", "")
    return "text/" in accept and "json" not in accept


def problem(
    request: HttpRequest,
    status: int,
    title: str,
    detail: str,
    *,
    type_uri: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> HttpResponse:
    """An RFC 9457 problem details response, or plain text when the client prefers ``text/*``."""
    if _wants_text(request):
        response = HttpResponse(
            f"{status} {title}\n\n{detail}\n",
            status=status,
            content_type="text/plain; charset=utf-8",
        )
    else:
        body = {"type": type_uri, "title": title, "status": status, "detail": detail}
        body.update(extensions or {})
        response = HttpResponse(
            json.dumps(body), status=status, content_type=PROBLEM_JSON
        )
    response.headers["Vary"] = "Accept"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


_warned_weakened = False


def weakened_tag(
    request: HttpRequest, decided_by: str | None, validators: Validators
) -> ETag | None:
    """The weak form of the current tag that a failed ``If-Match`` held (a proxy weakened the
    tag), or None; warns once per process, naming the fix."""
    global _warned_weakened
    if decided_by not in (None, "If-Match"):
        return None
    found = weakened_if_match(preconditions(request).if_match, validators)
    if found is not None and not _warned_weakened:
        _warned_weakened = True
        logger.warning(
            "django_conditional: If-Match held %s, the weak form of the current entity-tag: a "
            "proxy in front of the application (nginx with gzip_proxied?) weakened the tag when "
            "it compressed the response, so every conditional write from its clients fails. Let "
            "the application compress (django_conditional.compression.GZipMiddleware, and turn "
            "the proxy's compression off for its responses) or set "
            "CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH = True (versioned views; see "
            "docs/deployment.md). Logged once per process.",
            found,
        )
    return found


def _weakened_detail(weakened: ETag) -> str:
    return _(
        "If-Match holds %(tag)s, the weak form of the current entity-tag: a proxy between the "
        "client and the server weakened the tag when it compressed the response, and If-Match "
        "compares strongly (RFC 9110 section 13.1.1), so this write can never succeed as sent. "
        "To fix it, let the application compress its responses "
        "(django_conditional.compression.GZipMiddleware) instead of the proxy, or set "
        "CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH = True on the server."
    ) % {"tag": str(weakened)}


def failed_problem(
    decided_by: str | None, weakened: ETag | None = None
) -> dict[str, Any]:
    """The RFC 9457 body of a 412 decided by ``decided_by`` (for faces that render it themselves);
    ``weakened``: the weak form of the current tag the If-Match held (``weakened_tag``)."""
    header = decided_by or "If-Match"
    if header == "If-None-Match":
        detail = _(
            "The resource exists and If-None-Match forbids acting on an existing resource."
        )
    elif header == "If-Unmodified-Since":
        detail = _(
            "The resource was modified after the date given in If-Unmodified-Since."
        )
    elif weakened is not None:
        detail = _weakened_detail(weakened)
    else:
        detail = _(
            "The resource has changed: If-Match does not match its current entity-tag. "
            "Fetch it again and retry with the ETag of this response."
        )
    body = {
        "type": f"{_SPEC}#{_PRECONDITION_SECTIONS.get(header, 'section-13.1.1')}",
        "title": _("Precondition Failed"),
        "status": 412,
        "detail": detail,
        "precondition": header,
    }
    if weakened is not None:
        body["weakened-etag"] = str(weakened)
    return body


def required_problem(required: Iterable[str]) -> dict[str, Any]:
    """The RFC 9457 body of a 428 that asks for one of ``required``."""
    names = list(required)
    detail = _(
        "This request must be conditional. Send %(headers)s with the resource's current validator."
    ) % {"headers": _(" or ").join(names)}
    return {
        "type": "https://www.rfc-editor.org/rfc/rfc6585#section-3",
        "title": _("Precondition Required"),
        "status": 428,
        "detail": detail,
        "required": names,
    }


def _problem_response(
    request: HttpRequest, body: Mapping[str, Any], headers: Mapping[str, str] | None
) -> HttpResponse:
    standard = ("type", "title", "status", "detail")
    extensions = {k: v for k, v in body.items() if k not in standard}
    return problem(
        request,
        body["status"],
        body["title"],
        body["detail"],
        type_uri=body["type"],
        headers=headers,
        extensions=extensions,
    )


def precondition_failed(
    request: HttpRequest, decided_by: str | None, validators: Validators
) -> HttpResponse:
    """412, naming the precondition that failed and carrying the resource's current validators."""
    weakened = weakened_tag(request, decided_by, validators)
    return _problem_response(
        request, failed_problem(decided_by, weakened), validator_headers(validators)
    )


def precondition_required(
    request: HttpRequest,
    required: Iterable[str] = ("If-Match", "If-Unmodified-Since"),
    validators: Validators | None = None,
) -> HttpResponse:
    """428 (RFC 6585 §3): the write must be conditional; says which header to send."""
    headers = validator_headers(validators) if validators is not None else None
    return _problem_response(request, required_problem(required), headers)


def echo_weak_tag(
    conditions: Preconditions,
    evaluation: Evaluation,
    validators: Validators,
    not_modified: HttpResponseBase,
) -> None:
    """Repeat the client's ``W/`` on a 304's ETag when that is the form it holds.

    ``GZipMiddleware`` (outside the conditional middleware) weakens the ETag of a compressed 200
    but leaves the bodiless 304 alone; the 304 then confirms the weak tag the client stored
    (§15.4.5: the ETag the 200 to this request would have carried).
    """
    current = validators.etag
    tags = conditions.if_none_match
    if (
        evaluation.decided_by != "If-None-Match"
        or current is None
        or current.weak
        or tags is None
        or tags == ANY
    ):
        return
    forms = {tag.weak for tag in tags if tag.tag == current.tag}
    if forms == {True}:
        not_modified.headers["ETag"] = str(ETag(current.tag, weak=True))
