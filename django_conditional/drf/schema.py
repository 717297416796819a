"""OpenAPI for conditional views: a drf-spectacular extension (installed when this module is
imported, which ``django_conditional.drf`` does when drf-spectacular is installed).

Every operation of a ``ConditionalAPIMixin`` view documents what it answers: reads take
``If-None-Match`` (and ``If-Modified-Since`` with a ``Last-Modified``) and may answer 304; writes
take ``If-Match`` (required where the 428 policy applies) and may answer 412 and 428 with problem
details; ``create`` takes ``If-None-Match: *``; successful answers carry ``ETag`` (and
``Location`` on a 201).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import (
    OpenApiSerializerFieldExtension,
    OpenApiViewExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

from django_conditional.conf import DEFAULT_REQUIRED_METHODS, conf
from django_conditional.preconditions import SAFE_METHODS

from .views import ConditionalAPIMixin

__all__ = ["ConditionalSchemaMixin", "ConditionalViewExtension", "ETagFieldExtension"]

_STRING = {"type": "string"}
_PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "precondition": {
            "type": "string",
            "description": "The header that failed (412).",
        },
        "required": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The headers that may be sent (428).",
        },
    },
    "required": ["type", "title", "status", "detail"],
}
_ETAG = {"schema": _STRING, "description": "The entity-tag of the representation."}
_LAST_MODIFIED = {"schema": _STRING, "description": "HTTP-date of the last change."}


def _header(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "in": "header",
        "name": name,
        "schema": _STRING,
        "required": required,
        "description": description,
    }


def _required(view: ConditionalAPIMixin, method: str, path: str) -> bool:
    """Whether the 428 policy applies to ``method`` on this operation."""
    policy = view.get_require_precondition()
    if policy is None:
        site = conf.REQUIRE_PRECONDITION
        return site is not None and site.applies(method, path)
    if policy is True:
        return method in DEFAULT_REQUIRED_METHODS
    if policy is False:
        return False
    return method in {m.upper() for m in policy}


class ConditionalSchemaMixin(AutoSchema):
    """Adds the conditional parameters, responses and headers to each operation."""

    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any
    ) -> Any:
        operation = super().get_operation(
            path, path_regex, path_prefix, method, registry
        )
        view = self.view
        if operation is None or not isinstance(view, ConditionalAPIMixin):
            return operation
        problem = ResolvedComponent(  # type: ignore[no-untyped-call]
            name="ProblemDetails",
            type=ResolvedComponent.SCHEMA,
            object="ProblemDetails",
            schema=_PROBLEM,
        )
        registry.register_on_missing(problem)
        dated = type(view).conditional_last_modified is not None
        self._success_headers(operation.setdefault("responses", {}), dated)
        if self.method in SAFE_METHODS:
            self._read(operation, dated)
        else:
            content = {"application/problem+json": {"schema": problem.ref}}
            self._write(operation, view, path, dated, content)
        return operation

    def _success_headers(self, responses: dict[str, Any], dated: bool) -> None:
        for code in [code for code in responses if code.startswith("2")]:
            headers = responses[code].setdefault("headers", {})
            if self.method != "DELETE":
                headers["ETag"] = _ETAG
            if dated and self.method in SAFE_METHODS:
                headers["Last-Modified"] = _LAST_MODIFIED
            if code == "201":
                headers["Location"] = {
                    "schema": _STRING,
                    "description": "The new object's URL.",
                }

    def _read(self, operation: dict[str, Any], dated: bool) -> None:
        parameters = operation.setdefault("parameters", [])
        parameters.append(
            _header("If-None-Match", "Entity-tags held: 304 if one is current.")
        )
        if dated:
            parameters.append(
                _header("If-Modified-Since", "304 if unchanged since this date.")
            )
        operation["responses"]["304"] = {
            "description": "Not Modified",
            "headers": {"ETag": _ETAG},
        }

    def _write(
        self,
        operation: dict[str, Any],
        view: ConditionalAPIMixin,
        path: str,
        dated: bool,
        content: dict[str, Any],
    ) -> None:
        parameters = operation.setdefault("parameters", [])
        responses = operation["responses"]
        if view.conditional_creating():
            description = '"*": create only if the named object does not exist.'
            parameters.append(_header("If-None-Match", description))
        else:
            required = _required(view, self.method, path)
            description = (
                "The ETag of the representation being changed (lost-update check)."
            )
            parameters.append(_header("If-Match", description, required and not dated))
            if dated:
                parameters.append(
                    _header("If-Unmodified-Since", "412 if changed since then.")
                )
            if required:
                responses["428"] = {
                    "description": "Precondition Required",
                    "content": content,
                }
        responses["412"] = {"description": "Precondition Failed", "content": content}


class ConditionalViewExtension(OpenApiViewExtension):  # type: ignore[no-untyped-call]
    """Gives every ``ConditionalAPIMixin`` view the conditional schema."""

    target_class = "django_conditional.drf.views.ConditionalAPIMixin"
    match_subclasses = True

    def view_replacement(self) -> Any:
        base = type(self.target.schema)
        if not issubclass(base, AutoSchema) or issubclass(base, ConditionalSchemaMixin):
            return self.target
        schema_class = type(
            f"Conditional{base.__name__}", (ConditionalSchemaMixin, base), {}
        )
        return type(self.target.__name__, (self.target,), {"schema": schema_class()})


class ETagFieldExtension(OpenApiSerializerFieldExtension):  # type: ignore[no-untyped-call]
    """``ETagField``: a read-only entity-tag string (null for a deleted item)."""

    target_class = "django_conditional.drf.fields.ETagField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> Any:
        return {
            "type": "string",
            "nullable": True,
            "readOnly": True,
            "description": "The ETag of this item's own URL: send it in If-Match to change it.",
        }
