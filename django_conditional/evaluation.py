"""From a request to the engine and back: evaluate preconditions and build the early answer."""

from __future__ import annotations

from collections.abc import Mapping

from django.http import HttpRequest, HttpResponseBase

from django_conditional.conf import conf
from django_conditional.preconditions import (
    ConditionalHeaders,
    Evaluation,
    Outcome,
    evaluate,
)
from django_conditional.responses import (
    NotModified,
    precondition_failed,
    validator_headers,
)
from django_conditional.validators import Validators


def evaluate_request(request: HttpRequest, validators: Validators) -> Evaluation:
    """Evaluate the request's preconditions against ``validators`` (RFC 9110 §13.2.2)."""
    return evaluate(
        request.method or "GET",
        ConditionalHeaders.from_meta(request.META),
        validators,
        max_members=conf.MAX_LIST_MEMBERS,
    )


def answer(
    request: HttpRequest,
    evaluation: Evaluation,
    validators: Validators,
    headers: Mapping[str, str] | None = None,
) -> HttpResponseBase | None:
    """The 304 or 412 that ``evaluation`` calls for, or None to go on to the view.

    ``headers`` are those the 200 would carry (for the 304). When If-Range fails, the Range
    header is dropped from the request so that the view sends the full representation.
    """
    if evaluation.outcome is Outcome.NOT_MODIFIED:
        return NotModified({**(headers or {}), **validator_headers(validators)})
    if evaluation.outcome is Outcome.PRECONDITION_FAILED:
        return precondition_failed(request, evaluation.decided_by, validators)
    if not evaluation.range_allowed:
        request.META.pop("HTTP_RANGE", None)
    return None


def has_preconditions(request: HttpRequest) -> bool:
    """Whether the request carries any precondition or If-Range, without parsing them."""
    meta = request.META
    return (
        "HTTP_IF_MATCH" in meta
        or "HTTP_IF_NONE_MATCH" in meta
        or "HTTP_IF_MODIFIED_SINCE" in meta
        or "HTTP_IF_UNMODIFIED_SINCE" in meta
        or "HTTP_IF_RANGE" in meta
    )
