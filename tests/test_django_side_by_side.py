"""Issue 17: side by side with Django, on the installed Django.

The same requests go through Django's ``condition``/``etag``/``last_modified`` and
``ConditionalGetMiddleware`` and through ours; status and validators (and, behind the
middleware, the 304's §15.4.5 headers) must be equal wherever Django follows RFC 9110. Where it
does not, ``departs`` names the section and the test asserts the answers do differ, so the list
in docs/rfc.md ("Side by side with Django") stays true:

- ``If-Match: *`` on a resource with a date but no ETag: Django 412, the RFC a match (§13.1.1);
- ``If-None-Match: *`` on such a resource: Django runs the method, the RFC 304 or 412 (§13.1.2);
- ``If-Unmodified-Since`` on a resource with no date: Django 412, the RFC ignores it (§13.1.4),
  in the decorators and the middleware;
- the middleware: HEAD evaluated as GET (§9.3.2, §13.2.2; Django's answers HEAD unconditionally)
  and the preconditions of unsafe methods evaluated against the GET (§13.2.2; Django's ignores
  them);
- validators on an answer that is not 2xx (a 404): Django's decorators and middleware add the
  ETag/Last-Modified of a representation the answer is not (§8.8.3, §15.4.5); ours never do;
- a 412 carries the current validators (ours; RFC 9457 problem details), Django's only on GET
  and HEAD;
- not an RFC matter: behind the middleware, a 200 with its own ``Last-Modified`` keeps it as its
  only validator, where Django's adds a content ``ETag`` beside it (§8.8.1 allows either).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.middleware.http import ConditionalGetMiddleware as DjangoMiddleware
from django.test import RequestFactory
from django.urls import path
from django.views.decorators import http as django_http

from django_conditional import decorators
from django_conditional.middleware import ConditionalGetMiddleware

pytestmark = pytest.mark.urls("tests.test_django_side_by_side")

MODIFIED = datetime(2026, 11, 20, 8, 0, 0, tzinfo=timezone.utc)
LAST_MODIFIED = "Fri, 20 Nov 2026 08:00:00 GMT"
BEFORE = "Thu, 19 Nov 2026 08:00:00 GMT"
FUTURE = "Tue, 21 Nov 2050 08:00:00 GMT"
VALIDATORS = ("ETag", "Last-Modified")
# The §15.4.5 headers a 304 keeps, compared behind the middleware (whose view always runs).
NOT_MODIFIED_HEADERS = ("Cache-Control", "Content-Location", "Expires", "Vary")
HEADER_SETS: list[dict[str, str]] = [
    {},
    {"If-Match": '"v1"'},
    {"If-Match": '"v0"'},
    {"If-Match": 'W/"v1"'},
    {"If-Match": "*"},
    {"If-Match": '"v0", "v1"'},
    {"If-None-Match": '"v1"'},
    {"If-None-Match": 'W/"v1"'},
    {"If-None-Match": '"v0"'},
    {"If-None-Match": '"v0", "v1"'},
    {"If-None-Match": "*"},
    {"If-Modified-Since": FUTURE},
    {"If-Modified-Since": LAST_MODIFIED},
    {"If-Modified-Since": BEFORE},
    {"If-Modified-Since": "not a date"},
    {"If-Unmodified-Since": BEFORE},
    {"If-Unmodified-Since": FUTURE},
    {"If-Match": '"v1"', "If-Unmodified-Since": BEFORE},
    {"If-None-Match": '"v0"', "If-Modified-Since": FUTURE},
    {"If-Match": '"v0"', "If-None-Match": '"v1"'},
]
METHODS = ["GET", "HEAD", "PUT", "DELETE", "POST"]


def etag_v1(request: HttpRequest, *args: Any, **kwargs: Any) -> str:
    return "v1"


def modified(request: HttpRequest, *args: Any, **kwargs: Any) -> datetime:
    return MODIFIED


FACES: dict[str, Callable[[Any], Any]] = {
    "condition": lambda module: module.condition(etag_v1, modified),
    "etag": lambda module: module.etag(etag_v1),
    "last_modified": lambda module: module.last_modified(modified),
}


def make_view(status: int) -> Callable[..., HttpResponse]:
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = HttpResponse("content", status=status)
        response["Cache-Control"] = "max-age=60"
        response["Vary"] = "Accept-Language"
        return response

    return view


def departs(face: str, method: str, headers: dict[str, str]) -> str | None:
    """The RFC 9110 section where Django's decorators answer this request otherwise, or None."""
    has_etag, has_date = face != "last_modified", face != "etag"
    if headers.get("If-Match") == "*" and not has_etag:
        return "§13.1.1"
    if "If-Match" not in headers and "If-Unmodified-Since" in headers and not has_date:
        return "§13.1.4"
    if headers.get("If-None-Match") == "*" and not has_etag:
        return "§13.1.2"
    return None


def case_id(case: object) -> str:
    if isinstance(case, dict):
        return "+".join(f"{name}={value}" for name, value in case.items()) or "none"
    return str(case)


def answer(view: Callable[..., Any], method: str, headers: dict[str, str]) -> Any:
    return view(RequestFactory().generic(method, "/page/", headers=headers or None))


def validators_of(response: Any) -> tuple[str | None, ...]:
    return tuple(response.headers.get(name) for name in VALIDATORS)


DECORATOR_CASES = [
    (face, status, method, headers)
    for face in FACES
    for status in (200, 404)
    for method in METHODS
    for headers in HEADER_SETS
]


@pytest.mark.parametrize(
    ("face", "status", "method", "headers"), DECORATOR_CASES, ids=case_id
)
def test_the_drop_in_decorators_answer_as_django_does(face, status, method, headers):
    ours = answer(FACES[face](decorators)(make_view(status)), method, headers)
    theirs = answer(FACES[face](django_http)(make_view(status)), method, headers)
    section = departs(face, method, headers)
    if section is not None:
        assert ours.status_code != theirs.status_code, section
        return
    assert ours.status_code == theirs.status_code
    if ours.status_code == 412:
        # Ours always carries the current validators (problem details); Django's only on GET
        # and HEAD.
        assert validators_of(ours) == validators_of(answer_200(face))
    elif 200 <= ours.status_code < 300 or ours.status_code == 304:
        assert validators_of(ours) == validators_of(theirs)
    else:
        # §8.8.3: a 404 is no representation of the target; Django tags it anyway (GET/HEAD).
        assert validators_of(ours) == (None, None)


def answer_200(face: str) -> Any:
    return answer(FACES[face](decorators)(make_view(200)), "GET", {})


# -- the middleware ----------------------------------------------------------------------------


def page(request: HttpRequest) -> HttpResponse:
    return make_view(200)(request)


def dated(request: HttpRequest) -> HttpResponse:
    response = make_view(200)(request)
    response["Last-Modified"] = LAST_MODIFIED
    return response


def missing(request: HttpRequest) -> HttpResponse:
    return make_view(404)(request)


VIEWS = {"/page/": page, "/dated/": dated, "/missing/": missing}
urlpatterns = [path(route.strip("/") + "/", view) for route, view in VIEWS.items()]


def through(middleware: Any, route: str, method: str, headers: dict[str, str]) -> Any:
    request = RequestFactory().generic(method, route, headers=headers or None)
    return middleware(VIEWS[route])(request)


def middleware_departs(route: str, method: str, headers: dict[str, str]) -> str | None:
    """Where Django's middleware answers otherwise: it evaluates GET only, and fails an
    If-Unmodified-Since on a page with no date."""
    if not headers:
        return None
    if (
        route == "/page/"
        and "If-Unmodified-Since" in headers
        and "If-Match" not in headers
    ):
        return "§13.1.4"
    if method == "HEAD":
        return "§13.2.2"  # HEAD evaluated as GET (§9.3.2)
    if method not in ("GET", "HEAD"):
        return "§13.2.2"  # unsafe methods: Django's middleware ignores preconditions
    return None


MIDDLEWARE_CASES = [
    (route, method, headers)
    for route in VIEWS
    for method in METHODS
    for headers in HEADER_SETS
]


@pytest.mark.parametrize(("route", "method", "headers"), MIDDLEWARE_CASES, ids=case_id)
def test_the_middleware_answers_as_djangos_does(settings, route, method, headers):
    settings.CONDITIONAL_HASH = "md5"  # Django's hash, so the tags compare equal
    ours = through(ConditionalGetMiddleware, route, method, headers)
    theirs = through(DjangoMiddleware, route, method, headers)
    section = middleware_departs(route, method, headers)
    if route == "/missing/":
        # §8.8.3: Django's middleware tags a 404 (GET); ours never tags a non-2xx answer.
        assert ours.status_code == theirs.status_code == 404
        assert validators_of(ours) == (None, None)
        return
    if section is not None and _changes_the_answer(ours, theirs):
        assert ours.status_code != theirs.status_code, section
        return
    assert ours.status_code == theirs.status_code
    if ours.status_code == 412:
        return
    if route == "/dated/":
        # A view's own Last-Modified is kept as its only validator (Django adds a content ETag
        # beside it; §8.8.1 allows either).
        assert "ETag" not in ours.headers
        assert ours.headers.get("Last-Modified") == theirs.headers.get("Last-Modified")
    elif method == "GET" or ours.status_code == 304:
        assert validators_of(ours) == validators_of(theirs)
    if ours.status_code == 304:
        for name in NOT_MODIFIED_HEADERS:
            assert ours.headers.get(name) == theirs.headers.get(name), name
        assert "Content-Length" not in ours.headers


def _changes_the_answer(ours: Any, theirs: Any) -> bool:
    # Where one evaluates (304 or 412) and the other runs the view (2xx).
    return ours.status_code in (304, 412) or theirs.status_code in (304, 412)
