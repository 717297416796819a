"""The drop-in ``condition``/``etag``/``last_modified`` on sync and async views."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import django
import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.test import AsyncRequestFactory, RequestFactory
from django.views.decorators import http as django_http
from django.views.decorators.cache import cache_control

from django_conditional import decorators

UTC = timezone.utc
MODIFIED = datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC)
FUTURE = "Tue, 21 Nov 2050 08:00:00 GMT"
PAST = "Thu, 19 Nov 2026 08:00:00 GMT"


class Counter:
    def __init__(self) -> None:
        self.calls = 0


def make_view(
    counter: Counter, *, is_async: bool, set_headers: bool = True
) -> Callable[..., Any]:
    def build() -> HttpResponse:
        counter.calls += 1
        response = HttpResponse("content")
        if set_headers:
            response["Cache-Control"] = "max-age=60"
            response["Vary"] = "Accept-Language"
            response["Content-Location"] = "/doc.en"
            response["Date"] = "Fri, 20 Nov 2026 10:00:00 GMT"
            response["Expires"] = "Fri, 20 Nov 2026 10:01:00 GMT"
        return response

    if is_async:

        async def async_view(
            request: HttpRequest, *args: Any, **kwargs: Any
        ) -> HttpResponse:
            return build()

        return async_view

    def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return build()

    return sync_view


def call(view: Callable[..., Any], method: str = "GET", **headers: str) -> Any:
    if iscoroutinefunction(view):
        request = AsyncRequestFactory().generic(
            method, "/doc/", headers=headers or None
        )
        return async_to_sync(view)(request)
    return view(RequestFactory().generic(method, "/doc/", headers=headers or None))


def etag_v1(request: HttpRequest, *args: Any, **kwargs: Any) -> str:
    return "v1"


def modified(request: HttpRequest, *args: Any, **kwargs: Any) -> datetime:
    return MODIFIED


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_200_carries_validators(is_async: bool) -> None:
    view = decorators.condition(etag_v1, modified)(
        make_view(Counter(), is_async=is_async)
    )
    response = call(view)
    assert response.status_code == 200
    assert response["ETag"] == '"v1"'
    assert response["Last-Modified"] == "Fri, 20 Nov 2026 08:00:00 GMT"


def test_304_without_running_the_view_keeps_the_headers_of_the_200(
    is_async: bool,
) -> None:
    counter = Counter()
    view = decorators.etag(etag_v1)(make_view(counter, is_async=is_async))
    assert call(view).status_code == 200
    response = call(view, if_none_match='"v1"')
    assert response.status_code == 304
    assert counter.calls == 1
    assert response["ETag"] == '"v1"'
    assert response["Cache-Control"] == "max-age=60"
    assert response["Vary"] == "Accept-Language"
    assert response["Content-Location"] == "/doc.en"
    # Expires keeps its distance from now instead of going back in time.
    expires = datetime.strptime(response["Expires"], "%a, %d %b %Y %H:%M:%S GMT")
    assert (
        abs((expires.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds() - 60) < 5
    )
    assert response.content == b""
    assert "Content-Length" not in response


def test_412_without_running_the_view(is_async: bool) -> None:
    counter = Counter()
    view = decorators.condition(etag_v1, modified)(
        make_view(counter, is_async=is_async)
    )
    response = call(view, "PUT", if_match='"v0"')
    assert response.status_code == 412
    assert counter.calls == 0
    assert response["ETag"] == '"v1"'
    assert response["Last-Modified"] == "Fri, 20 Nov 2026 08:00:00 GMT"
    body = json.loads(response.content)
    assert body["status"] == 412 and body["precondition"] == "If-Match"


def test_matching_if_match_runs_the_view(is_async: bool) -> None:
    counter = Counter()
    view = decorators.etag(etag_v1)(make_view(counter, is_async=is_async))
    assert call(view, "PUT", if_match='"v1"').status_code == 200
    assert counter.calls == 1


def test_last_modified_future_if_modified_since_gives_304(is_async: bool) -> None:
    view = decorators.last_modified(modified)(make_view(Counter(), is_async=is_async))
    assert call(view, if_modified_since=FUTURE).status_code == 304
    assert call(view, if_modified_since=PAST).status_code == 200


def test_headers_declared_on_the_decorator(is_async: bool, settings: Any) -> None:
    settings.CONDITIONAL_REMEMBER_HEADERS = False
    counter = Counter()
    view = decorators.etag(etag_v1, headers={"Cache-Control": "private, max-age=5"})(
        make_view(counter, is_async=is_async)
    )
    response = call(view, if_none_match='"v1"')
    assert response.status_code == 304
    assert response["Cache-Control"] == "private, max-age=5"
    assert "Vary" not in response
    assert counter.calls == 0


def test_decorators_outside_act_on_the_304(is_async: bool) -> None:
    if is_async and django.VERSION < (5, 0):
        pytest.skip("Django < 5.0's cache_control cannot wrap an async view")
    view = cache_control(max_age=30)(
        decorators.etag(etag_v1)(
            make_view(Counter(), is_async=is_async, set_headers=False)
        )
    )
    response = call(view, if_none_match='"v1"')
    assert response.status_code == 304
    assert response["Cache-Control"] == "max-age=30"


def test_no_validators_means_no_representation(is_async: bool) -> None:
    def none(request: HttpRequest) -> None:
        return None

    counter = Counter()
    view = decorators.condition(none, none)(make_view(counter, is_async=is_async))
    assert (
        call(view, "PUT", if_none_match="*").status_code == 200
    )  # create-only write proceeds
    assert call(view, "PUT", if_match="*").status_code == 412
    assert "ETag" not in call(view)


def test_if_range_mismatch_drops_the_range_header(is_async: bool) -> None:
    seen: list[str | None] = []
    view: Callable[..., Any]
    if is_async:

        async def async_view(request: HttpRequest) -> HttpResponse:
            seen.append(request.META.get("HTTP_RANGE"))
            return HttpResponse("x")

        view = decorators.etag(etag_v1)(async_view)
    else:

        def sync_view(request: HttpRequest) -> HttpResponse:
            seen.append(request.META.get("HTTP_RANGE"))
            return HttpResponse("x")

        view = decorators.etag(etag_v1)(sync_view)
    assert call(view, if_range='"v0"', range="bytes=0-1").status_code == 200
    assert call(view, if_range='"v1"', range="bytes=0-1").status_code == 200
    assert seen == [None, "bytes=0-1"]


# --- Where Django deviates from RFC 9110, these follow the RFC -------------------------------


def test_if_match_star_with_only_a_date_succeeds(is_async: bool) -> None:
    ours = decorators.last_modified(modified)(make_view(Counter(), is_async=is_async))
    assert call(ours, "PUT", if_match="*").status_code == 200
    theirs = django_http.last_modified(modified)(make_view(Counter(), is_async=False))
    assert call(theirs, "PUT", if_match="*").status_code == 412  # Django's deviation


def test_if_none_match_star_with_only_a_date_matches(is_async: bool) -> None:
    ours = decorators.last_modified(modified)(make_view(Counter(), is_async=is_async))
    assert call(ours, if_none_match="*").status_code == 304
    assert call(ours, "PUT", if_none_match="*").status_code == 412
    theirs = django_http.last_modified(modified)(make_view(Counter(), is_async=False))
    assert call(theirs, if_none_match="*").status_code == 200  # Django's deviation


def test_if_unmodified_since_without_a_date_is_ignored(is_async: bool) -> None:
    ours = decorators.etag(etag_v1)(make_view(Counter(), is_async=is_async))
    assert call(ours, "PUT", if_unmodified_since=PAST).status_code == 200
    theirs = django_http.etag(etag_v1)(make_view(Counter(), is_async=False))
    assert (
        call(theirs, "PUT", if_unmodified_since=PAST).status_code == 412
    )  # Django's deviation


def test_django_304_loses_view_headers_ours_keeps_them() -> None:
    theirs = django_http.etag(etag_v1)(make_view(Counter(), is_async=False))
    call(theirs)
    assert "Cache-Control" not in call(theirs, if_none_match='"v1"')
    ours = decorators.etag(etag_v1)(make_view(Counter(), is_async=False))
    call(ours)
    assert call(ours, if_none_match='"v1"')["Cache-Control"] == "max-age=60"


# --- Same answers as Django where Django is right --------------------------------------------

AGREEMENT_CASES = [
    ("GET", {}),
    ("GET", {"if_none_match": '"v1"'}),
    ("GET", {"if_none_match": 'W/"v1"'}),
    ("GET", {"if_none_match": '"v0", "v1"'}),
    ("GET", {"if_none_match": '"v0"'}),
    ("HEAD", {"if_none_match": '"v1"'}),
    ("GET", {"if_modified_since": FUTURE}),
    ("GET", {"if_modified_since": PAST}),
    ("GET", {"if_none_match": '"v0"', "if_modified_since": FUTURE}),
    ("PUT", {"if_match": '"v1"'}),
    ("PUT", {"if_match": '"v0"'}),
    ("PUT", {"if_match": 'W/"v1"'}),
    ("PUT", {"if_match": "*"}),
    ("PUT", {"if_none_match": '"v1"'}),
    ("PUT", {"if_unmodified_since": PAST}),
    ("PUT", {"if_unmodified_since": FUTURE}),
    ("DELETE", {"if_match": '"v1"', "if_unmodified_since": PAST}),
    ("GET", {"if_match": '"v0"', "if_none_match": '"v1"'}),
]


@pytest.mark.parametrize(("method", "headers"), AGREEMENT_CASES)
def test_same_status_as_django(method: str, headers: dict[str, str]) -> None:
    ours = decorators.condition(etag_v1, modified)(make_view(Counter(), is_async=False))
    theirs = django_http.condition(etag_v1, modified)(
        make_view(Counter(), is_async=False)
    )
    assert (
        call(ours, method, **headers).status_code
        == call(theirs, method, **headers).status_code
    )


# --- Async validator functions, and sync ones that use the ORM under async views ---------------


async def async_etag(request: HttpRequest) -> str:
    return "v1"


def test_async_etag_func_on_sync_and_async_views(is_async: bool) -> None:
    view = decorators.etag(async_etag)(make_view(Counter(), is_async=is_async))
    assert call(view)["ETag"] == '"v1"'
    assert call(view, if_none_match='"v1"').status_code == 304


@pytest.mark.django_db(transaction=True)
def test_sync_orm_etag_func_under_an_async_view_runs_off_the_event_loop() -> None:
    def orm_etag(request: HttpRequest) -> str:
        return f"users-{User.objects.count()}"

    view = decorators.etag(orm_etag)(make_view(Counter(), is_async=True))
    assert call(view)["ETag"] == '"users-0"'


def test_wraps_keeps_the_view_identity(is_async: bool) -> None:
    original = make_view(Counter(), is_async=is_async)
    view = decorators.etag(etag_v1)(original)
    assert view.__name__ == original.__name__
    assert iscoroutinefunction(view) is is_async
