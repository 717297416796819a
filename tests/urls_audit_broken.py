"""A deliberately broken site for ``conditional_audit`` and the view system checks (#20): each
view has exactly one of the problems the audit reports, the versioned ones the checks report."""

from __future__ import annotations

from itertools import count

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.urls import path
from django.views.decorators.http import require_safe

from django_conditional import ObjectOf
from django_conditional.versioned_views import versioned
from tests.testapp.models import Author, Note

_requests = count()
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"


def _answer(request: HttpRequest, tag: str, body: str, **headers: str) -> HttpResponse:
    # A correct GET: 304 (with the 200's headers) for the current tag, else the 200.
    if request.headers.get("If-None-Match") == tag:
        return HttpResponseNotModified(headers={"ETag": tag, **headers})
    return HttpResponse(body, headers={"ETag": tag, **headers})


@require_safe
def no_validator(request: HttpRequest) -> HttpResponse:
    return HttpResponse("no validator")


@require_safe
def ignores_if_none_match(request: HttpRequest) -> HttpResponse:
    return HttpResponse("always 200", headers={"ETag": '"inm"'})


@require_safe
def ignores_if_modified_since(request: HttpRequest) -> HttpResponse:
    return HttpResponse("always 200", headers={"Last-Modified": LAST_MODIFIED})


@require_safe
def missing_304_headers(request: HttpRequest) -> HttpResponse:
    if request.headers.get("If-None-Match") == '"kept"':
        return HttpResponseNotModified(headers={"ETag": '"kept"'})  # no Cache-Control
    return HttpResponse(
        "cached", headers={"ETag": '"kept"', "Cache-Control": "max-age=60"}
    )


@require_safe
def head_differs(request: HttpRequest) -> HttpResponse:
    return _answer(request, '"head"' if request.method == "HEAD" else '"get"', "body")


@require_safe
def stable_tag(request: HttpRequest) -> HttpResponse:
    return _answer(request, '"stable"', f"request {next(_requests)}")


@require_safe
def vary_same_tag(request: HttpRequest) -> HttpResponse:
    language = request.headers.get("Accept-Language", "en")
    return _answer(request, '"one-tag"', f"in {language}", Vary="Accept-Language")


def write_ignores_if_match(request: HttpRequest) -> HttpResponse:
    if request.method in ("GET", "HEAD"):
        return _answer(request, '"w1"', "writable")
    return HttpResponse(status=204)


def write_not_required(request: HttpRequest) -> HttpResponse:
    # Honours If-Match, but writes without one where the site's 428 policy requires one.
    if request.method in ("GET", "HEAD"):
        return _answer(request, '"w2"', "writable")
    if_match = request.headers.get("If-Match")
    if if_match is not None and if_match != '"w2"':
        return HttpResponse(status=412)
    return HttpResponse(status=204)


@versioned(ObjectOf(Note))
def untracked(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse("a note")


@versioned(ObjectOf(Author))
def bulk_untracked(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse("an author")


PROBLEMS = {
    "/no-validator/": "NO_VALIDATOR",
    "/ignores-inm/": "INM_NOT_304",
    "/ignores-ims/": "IMS_NOT_304",
    "/missing-304-headers/": "MISSING_HDRS_304",
    "/head-differs/": "HEAD_MISMATCH",
    "/stable-tag/": "ETAG_BODY_CHANGED",
    "/vary-same-tag/": "VARY_ETAG_DOESNT_CHANGE",
    "/write-ignores-if-match/": "IF_MATCH_IGNORED",
    "/write-not-required/": "PRECONDITION_NOT_REQUIRED",
}

urlpatterns = [
    path("no-validator/", no_validator),
    path("ignores-inm/", ignores_if_none_match),
    path("ignores-ims/", ignores_if_modified_since),
    path("missing-304-headers/", missing_304_headers),
    path("head-differs/", head_differs),
    path("stable-tag/", stable_tag),
    path("vary-same-tag/", vary_same_tag),
    path("write-ignores-if-match/", write_ignores_if_match),
    path("write-not-required/", write_not_required),
    path("notes/<int:pk>/", untracked),
    path("authors/<int:pk>/", bulk_untracked),
]
