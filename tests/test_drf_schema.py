"""The OpenAPI schema drf-spectacular generates for conditional views: valid by its own
validator, with the conditional parameters, responses and headers of each operation."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema


@pytest.fixture(scope="module")
def schema():
    generated = SchemaGenerator(urlconf="tests.urls_drf").get_schema(
        request=None, public=True
    )
    validate_schema(generated)
    return generated


def parameters(operation):
    return {
        p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"
    }


def test_reads_document_if_none_match_and_the_304(schema):
    for path in ("/articles/", "/articles/{id}/"):
        operation = schema["paths"][path]["get"]
        assert "If-None-Match" in parameters(operation)
        assert "If-Match" not in parameters(operation)
        assert "304" in operation["responses"]
        assert "ETag" in operation["responses"]["200"]["headers"]
        assert "ETag" in operation["responses"]["304"]["headers"]


def test_writes_document_if_match_412_and_428(schema):
    detail = schema["paths"]["/articles/{id}/"]
    for method in ("put", "patch", "delete"):
        operation = detail[method]
        if_match = parameters(operation)["If-Match"]
        assert if_match["required"] is True  # require_precondition = True
        for code in ("412", "428"):
            content = operation["responses"][code]["content"]
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/ProblemDetails"
            }
    assert "ETag" in detail["put"]["responses"]["200"]["headers"]
    assert "204" in detail["delete"]["responses"]
    problem = schema["components"]["schemas"]["ProblemDetails"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}


def test_the_428_is_documented_per_action(schema):
    detail = schema["paths"]["/per-action/{id}/"]
    assert parameters(detail["put"])["If-Match"]["required"] is True
    assert "428" in detail["put"]["responses"]
    assert parameters(detail["patch"])["If-Match"]["required"] is False
    assert "428" not in detail["patch"]["responses"]
    assert "412" in detail["patch"]["responses"]


def test_create_documents_if_none_match_etag_and_location(schema):
    operation = schema["paths"]["/articles/"]["post"]
    assert "If-None-Match" in parameters(operation)
    assert "If-Match" not in parameters(operation)
    assert {"ETag", "Location"} <= set(operation["responses"]["201"]["headers"])
    assert "412" in operation["responses"]


def test_the_etag_field_is_a_read_only_string(schema):
    field = schema["components"]["schemas"]["Article"]["properties"]["etag"]
    assert field["type"] == "string"
    assert field["readOnly"] is True


def test_function_views_are_documented(schema):
    operation = schema["paths"]["/function/{id}/"]
    assert "304" in operation["get"]["responses"]
    assert parameters(operation["put"])["If-Match"]["required"] is True
