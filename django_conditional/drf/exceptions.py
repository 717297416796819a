"""412 and 428 as DRF exceptions, so they pass through the project's exception handler.

The body is the RFC 9457 problem details document the core sends (``responses.failed_problem``,
``responses.required_problem``); the resource's current validators travel on the exception as
``headers`` and the DRF face puts them on whatever response the exception handler returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException

from django_conditional.responses import (
    failed_problem,
    required_problem,
    validator_headers,
)
from django_conditional.validators import ETag, Validators

__all__ = ["ConditionalProblem", "PreconditionFailed", "PreconditionRequired"]


class ConditionalProblem(APIException):
    """A refused precondition: ``detail`` is the problem details document (a dict)."""

    def __init__(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> None:
        super().__init__(detail=str(body["detail"]), code=self.default_code)
        self.status_code = int(body["status"])
        # A plain dict: DRF's default handler renders a dict ``detail`` as the whole body,
        # and "status" stays a number, as RFC 9457 §3.1.2 wants.
        self.detail: Any = dict(body)
        self.headers = dict(headers)

    def get_codes(self) -> Any:
        return self.default_code

    def get_full_details(self) -> Any:
        return {"message": str(self.detail["detail"]), "code": self.default_code}


class PreconditionFailed(ConditionalProblem):
    """412 Precondition Failed (RFC 9110 §15.5.13), carrying the current ``ETag``."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "Precondition Failed"
    default_code = "precondition_failed"

    def __init__(
        self,
        decided_by: str | None,
        validators: Validators,
        weakened: ETag | None = None,
    ) -> None:
        body = failed_problem(decided_by, weakened)
        super().__init__(body, validator_headers(validators))


class PreconditionRequired(ConditionalProblem):
    """428 Precondition Required (RFC 6585 §3)."""

    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = "Precondition Required"
    default_code = "precondition_required"

    def __init__(self, required: Iterable[str], validators: Validators | None) -> None:
        headers = validator_headers(validators) if validators is not None else {}
        super().__init__(required_problem(required), headers)
