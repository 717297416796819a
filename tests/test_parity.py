"""Issue 17: 304s that carry exactly the 200's headers (§15.4.5), behind the decorators, the
versioned views and the middleware (compression included)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path
from django.utils.cache import patch_response_headers

from django_conditional import remembered
from django_conditional.decorators import etag
from django_conditional.resources import ObjectOf
from django_conditional.versioned_views import versioned
from tests.testapp.models import Article

pytestmark = pytest.mark.urls("tests.test_parity")

ABSOLUTE = "Fri, 01 Jan 2100 00:00:00 GMT"
LONG = "A body long enough for a compressor to bother with it. " * 10
OUR_GZIP = "django_conditional.compression.GZipMiddleware"
MW = "django_conditional.middleware.ConditionalGetMiddleware"


@etag(lambda request: "fixed")
def absolute(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(LONG)
    response.headers["Expires"] = ABSOLUTE
    response.headers["Cache-Control"] = "public"
    return response


@etag(lambda request: "fixed")
def relative(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(LONG)
    patch_response_headers(response, cache_timeout=60)
    return response


@etag(lambda request: "fixed")
def hosted(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(LONG)
    response.headers["Content-Location"] = f"http://{request.get_host()}/hosted/"
    return response


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse(LONG)


@versioned(ObjectOf(Article), vary=())
def located(request: HttpRequest, pk: int) -> HttpResponse:
    response = HttpResponse(LONG)
    response.headers["Content-Location"] = f"/located/{pk}/"
    response.headers["Cache-Control"] = "max-age=30"
    return response


urlpatterns = [
    path("absolute/", absolute),
    path("relative/", relative),
    path("hosted/", hosted),
    path("plain/", plain),
    path("located/<int:pk>/", located),
]


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    remembered.forget_written()
    caches["default"].clear()
    yield
    remembered.forget_written()


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Move the clock of ``remembered`` forward by ``seconds``."""

    def move(seconds: float) -> None:
        now = time.time() + seconds
        monkeypatch.setattr(time, "time", lambda: now)

    return move


def test_absolute_expires_is_kept_as_sent(client, later):
    assert client.get("/absolute/")["Expires"] == ABSOLUTE
    later(3600)
    response = client.get("/absolute/", headers={"If-None-Match": '"fixed"'})
    assert response.status_code == 304
    assert response["Expires"] == ABSOLUTE


def test_relative_expires_stays_relative(client, later):
    first = client.get("/relative/")
    assert first.status_code == 200
    later(3600)
    response = client.get("/relative/", headers={"If-None-Match": '"fixed"'})
    assert response.status_code == 304
    assert response["Expires"] != first["Expires"]  # an hour later, still 60 s ahead
    assert response["Cache-Control"] == "max-age=60"


def test_remembered_headers_are_keyed_by_host(client):
    client.get("/hosted/", headers={"Host": "localhost"})
    other = client.get(
        "/hosted/", headers={"Host": "127.0.0.1", "If-None-Match": '"fixed"'}
    )
    assert other.status_code == 304
    assert other.get("Content-Location") != "http://localhost/hosted/"


def test_remembered_headers_are_written_again_after_a_loss(client):
    client.get("/hosted/")
    client.get("/hosted/")
    caches["default"].clear()  # evicted, flushed (the test's own cache)
    client.get("/hosted/")  # an unchanged 200, after the loss
    response = client.get("/hosted/", headers={"If-None-Match": '"fixed"'})
    assert response.status_code == 304
    assert response["Content-Location"] == "http://testserver/hosted/"


@pytest.mark.django_db
@pytest.mark.usefixtures("clean_versions")
@pytest.mark.parametrize("order", ["old-first", "old-last"])
def test_the_304_carries_the_headers_of_the_matching_tag(client, article, order):
    url = f"/located/{article.pk}/"
    current = client.get(url)["ETag"]
    tags = ['"old"', current] if order == "old-first" else [current, '"old"']
    response = client.get(url, headers={"If-None-Match": ", ".join(tags)})
    assert response.status_code == 304
    assert response["Content-Location"] == url
    assert response["Cache-Control"] == "max-age=30"


@pytest.mark.parametrize("page", ["/plain/", "/absolute/"])
def test_vary_of_the_304_is_the_200s_behind_compression(client, page):
    with override_settings(MIDDLEWARE=[OUR_GZIP, MW]):
        full = client.get(page, headers={"Accept-Encoding": "gzip"})
        assert "Accept-Encoding" in full["Vary"]
        tag = full["ETag"]
        response = client.get(
            page, headers={"Accept-Encoding": "gzip", "If-None-Match": tag}
        )
        assert response.status_code == 304
        assert response["Vary"] == full["Vary"]
        identity = client.get(page)
        again = client.get(page, headers={"If-None-Match": identity["ETag"]})
        assert again.status_code == 304
        assert again["Vary"] == identity["Vary"]
