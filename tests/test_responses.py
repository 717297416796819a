"""304, 412 and 428 responses."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from django.http import HttpResponse
from django.middleware.common import CommonMiddleware
from django.test import RequestFactory
from django.utils import translation

from django_conditional.responses import (
    NOT_MODIFIED_HEADERS,
    NotModified,
    not_modified_like,
    precondition_failed,
    precondition_required,
    problem,
)
from django_conditional.validators import ETag, Validators

VALIDATORS = Validators(ETag("v2"), datetime(2026, 11, 20, 8, tzinfo=timezone.utc))


def full_response() -> HttpResponse:
    response = HttpResponse("a body", content_type="text/html")
    for name in NOT_MODIFIED_HEADERS:
        response[name] = f"value of {name}"
    response["Content-Language"] = "en"
    response["X-Other"] = "x"
    response.set_cookie("session", "abc")
    return response


def test_not_modified_keeps_the_section_15_4_5_headers_and_cookies() -> None:
    response = not_modified_like(full_response())
    assert response.status_code == 304
    for name in NOT_MODIFIED_HEADERS:
        assert response[name] == f"value of {name}"
    assert "Content-Type" not in response
    assert "Content-Language" not in response
    assert "X-Other" not in response
    assert response.cookies["session"].value == "abc"
    assert response.content == b""


def test_not_modified_refuses_a_content_length_from_later_middleware() -> None:
    # CommonMiddleware adds "Content-Length: 0" to any response without one (RFC 9110 §8.6).
    response = NotModified({"ETag": '"v1"'})
    request = RequestFactory().get("/")
    CommonMiddleware(lambda r: response).process_response(request, response)
    assert "Content-Length" not in response
    response["X-Later"] = "kept"
    assert response["X-Later"] == "kept"


def test_not_modified_without_headers() -> None:
    response = NotModified()
    assert response.status_code == 304
    assert dict(response.headers) == {}


def as_json(response: Any) -> dict[str, Any]:
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    return body


@pytest.mark.parametrize(
    ("header", "section"),
    [
        ("If-Match", "section-13.1.1"),
        ("If-None-Match", "section-13.1.2"),
        ("If-Unmodified-Since", "section-13.1.4"),
        (None, "section-13.1.1"),
    ],
)
def test_precondition_failed_is_a_problem_with_the_current_validators(
    header: str | None, section: str
) -> None:
    response = precondition_failed(RequestFactory().put("/"), header, VALIDATORS)
    assert response.status_code == 412
    assert response["ETag"] == '"v2"'
    assert response["Last-Modified"] == "Fri, 20 Nov 2026 08:00:00 GMT"
    body = as_json(response)
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == 412
    assert body["title"] == "Precondition Failed"
    assert body["type"].endswith(section)
    assert body["precondition"] == (header or "If-Match")


def test_precondition_failed_plain_text_for_text_clients() -> None:
    request = RequestFactory().put("/", headers={"accept": "text/plain"})
    response = precondition_failed(request, "If-Match", VALIDATORS)
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.startswith(b"412 Precondition Failed")
    assert response["Vary"] == "Accept"


def test_precondition_required_names_the_headers_to_send() -> None:
    response = precondition_required(RequestFactory().put("/"))
    assert response.status_code == 428
    body = as_json(response)
    assert body["status"] == 428
    assert body["required"] == ["If-Match", "If-Unmodified-Since"]
    assert "If-Match" in body["detail"] and "If-Unmodified-Since" in body["detail"]
    assert "ETag" not in response


def test_precondition_required_may_carry_validators() -> None:
    response = precondition_required(
        RequestFactory().put("/"), ["If-Match"], VALIDATORS
    )
    assert response["ETag"] == '"v2"'
    assert as_json(response)["required"] == ["If-Match"]


def test_problem_bodies_are_translated() -> None:
    with translation.override("fr"):
        response = precondition_failed(
            RequestFactory().put("/"), "If-Match", VALIDATORS
        )
    # Django ships no French "Precondition Failed"; the title stays a str either way.
    assert isinstance(as_json(response)["title"], str)


def test_problem_echoes_nothing_from_the_request() -> None:
    hostile = "<script>alert(1)</script>"
    request = RequestFactory().put(
        "/", headers={"if_match": hostile, "accept": f"text/html, {hostile}"}
    )
    response = precondition_failed(request, "If-Match", VALIDATORS)
    assert b"<script>" not in response.content
    generic = problem(request, 400, "Bad", "detail")
    assert b"script" not in generic.content


def test_cloned_headers_are_a_copy_of_their_own() -> None:
    from types import MappingProxyType

    from django_conditional.django_adapter import cloned_headers
    from django_conditional.responses import headers_for_304

    kept = headers_for_304(
        [("ETag", '"a"'), ("Vary", "Accept"), ("Content-Length", "9")]
    )
    clone = cloned_headers(kept)
    assert type(clone) is type(kept) and dict(clone.items()) == dict(kept.items())
    assert "Content-Length" not in clone  # a 304's headers never take one
    clone["Expires"] = "0"
    clone["Content-Length"] = "0"
    assert "Expires" not in kept and "Content-Length" not in clone
    # A mapping of another shape (a future Django) is rebuilt through the public API.
    kept._store = MappingProxyType(kept._store)  # type: ignore[assignment]
    rebuilt = cloned_headers(kept)
    assert dict(rebuilt.items()) == {"ETag": '"a"', "Vary": "Accept"}
