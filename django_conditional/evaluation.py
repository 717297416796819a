"""From a request to the engine and back: evaluate its parsed preconditions, build the early answer."""

from __future__ import annotations

from collections.abc import Mapping

from django.http import HttpRequest, HttpResponseBase

from django_conditional.preconditions import Evaluation, Outcome, evaluate
from django_conditional.request import preconditions, without_range
from django_conditional.responses import (
    NotModified,
    precondition_failed,
    validator_headers,
)
from django_conditional.validators import Validators


def evaluate_request(request: HttpRequest, validators: Validators) -> Evaluation:
    """Evaluate the request's preconditions against ``validators`` (RFC 9110 §13.2.2)."""
    return evaluate(request.method or "GET", preconditions(request), validators)


def has_preconditions(request: HttpRequest) -> bool:
    """Whether the request carries a precondition or an If-Range that can change its answer."""
    return preconditions(request).any


def answer(
    request: HttpRequest,
    evaluation: Evaluation,
    validators: Validators,
    headers: Mapping[str, str] | None = None,
) -> HttpResponseBase | None:
    """The 304 or 412 that ``evaluation`` calls for, or None to go on to the view.

    ``headers`` are those the 200 would carry (the 304 keeps them, §15.4.5).
    """
    if evaluation.outcome is Outcome.NOT_MODIFIED:
        return NotModified({**(headers or {}), **validator_headers(validators)})
    if evaluation.outcome is Outcome.PRECONDITION_FAILED:
        return precondition_failed(request, evaluation.decided_by, validators)
    return None


def request_for_view(
    request: HttpRequest, evaluation: Evaluation | None
) -> HttpRequest:
    """The request the view runs with: without Range when If-Range failed (§13.1.5)."""
    if evaluation is None or evaluation.range_allowed:
        return request
    return without_range(request)
