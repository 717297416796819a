"""Remembered headers: per representation, self-healing after eviction or a failed write."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from unittest import mock

import pytest
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from django_conditional import remembered
from django_conditional.decorators import etag
from django_conditional.validators import ETag, Validators


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    caches["default"].clear()
    remembered.forget_written()
    yield
    remembered.forget_written()


def test_tokens() -> None:
    moment = datetime(2026, 11, 20, tzinfo=timezone.utc)
    assert remembered.validator_token(Validators(ETag("a"), moment)) == "ea"
    assert remembered.validator_token(Validators(ETag("a", weak=True))) == "ea"
    assert (
        remembered.validator_token(Validators(None, moment))
        == f"d{int(moment.timestamp())}"
    )
    assert remembered.validator_token(Validators(None, None, exists=False)) == ""


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("*", None),
        ("garbage", None),
        ('"a"', "ea"),
        ('W/"a", "b"', "eb"),
        ('"a-gzip"', "ea"),
    ],
)
def test_request_token(header: str | None, token: str | None) -> None:
    headers = {} if header is None else {"if_none_match": header}
    assert remembered.request_token(RequestFactory().get("/", headers=headers)) == token


def test_memo_keys_differ_per_representation_and_url() -> None:
    request = RequestFactory().get("/a/?x=1")
    keys = {
        remembered.headers_key("v", request, "ea"),
        remembered.headers_key("v", request, "eb"),
        remembered.headers_key("w", request, "ea"),
        remembered.headers_key("v", RequestFactory().get("/a/?x=2"), "ea"),
    }
    assert len(keys) == 4


def counting_view(calls: list[int], cache_control: str = "max-age=60") -> Any:
    @etag(lambda request: "v1")
    def view(request: HttpRequest) -> HttpResponse:
        calls.append(1)
        response = HttpResponse("x")
        response["Cache-Control"] = cache_control
        return response

    return view


def test_an_unchanged_200_writes_the_cache_once() -> None:
    view = counting_view([])
    with mock.patch.object(
        caches["default"], "set", wraps=caches["default"].set
    ) as cache_set:
        view(RequestFactory().get("/"))
        view(RequestFactory().get("/"))
    assert cache_set.call_count == 1


def test_evicted_memo_is_written_again_by_the_next_200() -> None:
    view = counting_view([])
    view(RequestFactory().get("/"))
    caches["default"].clear()  # eviction, flush or restart of the cache
    not_modified = view(RequestFactory().get("/", headers={"if_none_match": '"v1"'}))
    assert "Cache-Control" not in not_modified  # nothing to recall, nothing invented
    view(RequestFactory().get("/"))
    again = view(RequestFactory().get("/", headers={"if_none_match": '"v1"'}))
    assert again["Cache-Control"] == "max-age=60"


def test_failed_write_is_retried_by_the_next_200(
    caplog: pytest.LogCaptureFixture,
) -> None:
    view = counting_view([])
    with mock.patch.object(
        caches["default"], "set", side_effect=ConnectionError("down")
    ):
        view(RequestFactory().get("/"))
    assert "Could not remember headers" in caplog.text
    view(RequestFactory().get("/"))
    response = view(RequestFactory().get("/", headers={"if_none_match": '"v1"'}))
    assert response["Cache-Control"] == "max-age=60"


def test_failed_read_sends_the_304_without_remembered_headers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    view = counting_view([])
    view(RequestFactory().get("/"))
    with mock.patch.object(caches["default"], "get", side_effect=TimeoutError("slow")):
        response = view(RequestFactory().get("/", headers={"if_none_match": '"v1"'}))
    assert response.status_code == 304
    assert "Could not read remembered headers" in caplog.text


def test_async_failures_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    from asgiref.sync import async_to_sync

    response = HttpResponse("x")
    response["Vary"] = "Accept"
    cache = caches["default"]
    with mock.patch.object(cache, "aset", side_effect=ConnectionError("down")):
        async_to_sync(remembered.aremember)("k", response)
    with mock.patch.object(cache, "aget", side_effect=ConnectionError("down")):
        assert async_to_sync(remembered.arecall)("k") == {}
    assert caplog.text.count("Could not") == 2
    assert "k" not in remembered.written_keys()


def test_invalid_expires_is_kept_as_it_was() -> None:
    response = HttpResponse("x")
    response["Expires"] = "0"
    assert remembered.from_cache(remembered.to_remember(response)) == {"Expires": "0"}


def test_expires_without_date_keeps_its_distance_from_now() -> None:
    response = HttpResponse("x")
    response["Expires"] = (
        "Tue, 21 Nov 2000 08:00:00 GMT"  # long past: stays in the past
    )
    restored = remembered.from_cache(remembered.to_remember(response))
    assert restored["Expires"].endswith("2000 08:00:00 GMT")


def test_local_record_is_bounded() -> None:
    response = HttpResponse("x")
    response["Vary"] = "Accept"
    for number in range(remembered.MAX_WRITTEN + 1):
        remembered.remember(f"k{number}", response)
    assert len(remembered.written_keys()) == 1
