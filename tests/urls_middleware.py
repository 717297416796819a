"""Views for the middleware tests: plain pages whose content the tests change, sync and async."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.urls import path
from django.utils.cache import patch_response_headers, patch_vary_headers
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt

# What the pages say; tests change it to show a new representation.
STATE: dict[str, Any] = {
    "content": "Hello, conditional world! " * 20,
    "writes": 0,
    "gets": 0,
    "file": None,
}


def page(request: HttpRequest) -> HttpResponse:
    STATE["gets"] += 1
    return HttpResponse(STATE["content"])


async def apage(request: HttpRequest) -> HttpResponse:
    STATE["gets"] += 1
    return HttpResponse(STATE["content"])


def cached_page(request: HttpRequest) -> HttpResponse:
    """A page with the headers §15.4.5 lists: Cache-Control, Expires, Vary, Content-Location."""
    response = HttpResponse(STATE["content"])
    patch_response_headers(response, cache_timeout=60)
    patch_vary_headers(response, ("Accept-Language",))
    response.headers["Content-Location"] = "/cached/"
    response.headers["Content-Language"] = "en"
    return response


def cookie_page(request: HttpRequest) -> HttpResponse:
    request.session["seen"] = request.session.get("seen", 0) + 1
    response = HttpResponse(STATE["content"])
    response.set_cookie("flavour", "oat")
    return response


def with_etag(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(STATE["content"])
    response.headers["ETag"] = '"view-tag"'
    return response


def with_last_modified(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(STATE["content"])
    response.headers["Last-Modified"] = "Sat, 01 Jan 2022 00:00:00 GMT"
    return response


def no_store(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(STATE["content"])
    response.headers["Cache-Control"] = "private, No-Store"
    return response


def not_found(request: HttpRequest) -> HttpResponse:
    return HttpResponse(STATE["content"], status=404)


def created(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(STATE["content"], status=203)
    response.headers["ETag"] = '"created-tag"'
    return response


def empty(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"")


def streaming(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(iter([b"chunk one, ", b"chunk two"]))


async def astreaming(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"async chunk one, "
        yield b"async chunk two"

    return StreamingHttpResponse(chunks())


def file_page(request: HttpRequest) -> FileResponse:
    return FileResponse(open(STATE["file"], "rb"))  # noqa: SIM115 - FileResponse closes it


def memory_file(request: HttpRequest) -> FileResponse:
    return FileResponse(io.BytesIO(STATE["content"].encode()))


def head_special(request: HttpRequest) -> HttpResponse:
    """A view that skips its work on HEAD, answering with an empty body."""
    if request.method == "HEAD":
        return HttpResponse(b"")
    return HttpResponse(STATE["content"])


def _ranged(request: HttpRequest, etag: str | None) -> HttpResponse:
    body = STATE["content"].encode()
    range_header = request.META.get("HTTP_RANGE", "")
    if range_header.startswith("bytes=0-"):
        last = int(range_header.removeprefix("bytes=0-"))
        response = HttpResponse(body[: last + 1], status=206)
        response.headers["Content-Range"] = f"bytes 0-{last}/{len(body)}"
    else:
        response = HttpResponse(body)
    response.headers["Accept-Ranges"] = "bytes"
    if etag is not None:
        response.headers["ETag"] = etag
    return response


def ranged(request: HttpRequest) -> HttpResponse:
    return _ranged(request, '"range-v2"')


def ranged_untagged(request: HttpRequest) -> HttpResponse:
    return _ranged(request, None)


def absolute_expires(request: HttpRequest) -> HttpResponse:
    """A page that expires at a fixed moment, whatever the time of the request."""
    response = HttpResponse(STATE["content"])
    response.headers["Expires"] = "Fri, 01 Jan 2100 00:00:00 GMT"
    response.headers["Cache-Control"] = "public"
    return response


def refuses_ranges(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(STATE["content"])
    response.headers["Accept-Ranges"] = "none"
    return response


def localized(request: HttpRequest) -> HttpResponse:
    return HttpResponse(gettext("Yes") + " " + STATE["content"])


@csrf_exempt
def resource(request: HttpRequest) -> HttpResponseBase:
    """GET reads the content; PUT/PATCH/DELETE/POST write it (counted), as an unguarded page would."""
    if request.method in ("GET", "HEAD"):
        STATE["gets"] += 1
        return HttpResponse(STATE["content"])
    STATE["writes"] += 1
    if request.method == "DELETE":
        return HttpResponse(status=204)
    STATE["content"] = request.body.decode() or STATE["content"]
    return HttpResponse("written")


# No csrf_exempt: Django 4.2's cannot wrap an async view (and these tests run without CsrfViewMiddleware).
async def aresource(request: HttpRequest) -> HttpResponseBase:
    if request.method in ("GET", "HEAD"):
        STATE["gets"] += 1
        return HttpResponse(STATE["content"])
    STATE["writes"] += 1
    STATE["content"] = request.body.decode() or STATE["content"]
    return HttpResponse("written")


@csrf_exempt
def guarded(request: HttpRequest) -> HttpResponse:
    """Stands for a view that evaluates preconditions itself before writing."""
    if request.method != "GET":
        STATE["writes"] += 1
    return HttpResponse(STATE["content"])


guarded.conditional_guarded = True  # type: ignore[attr-defined]


@csrf_exempt
def forbidden_get(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return HttpResponse("nope", status=403)
    STATE["writes"] += 1
    return HttpResponse("written")


urlpatterns = [
    path("page/", page),
    path("apage/", apage),
    path("cached/", cached_page),
    path("cookie/", cookie_page),
    path("with-etag/", with_etag),
    path("with-last-modified/", with_last_modified),
    path("no-store/", no_store),
    path("not-found/", not_found),
    path("created/", created),
    path("empty/", empty),
    path("streaming/", streaming),
    path("astreaming/", astreaming),
    path("file/", file_page),
    path("memory-file/", memory_file),
    path("head-special/", head_special),
    path("ranged/", ranged),
    path("ranged-untagged/", ranged_untagged),
    path("localized/", localized),
    path("absolute-expires/", absolute_expires),
    path("refuses-ranges/", refuses_ranges),
    path("resource/", resource),
    path("aresource/", aresource),
    path("guarded/", guarded),
    path("forbidden-get/", forbidden_get),
    path("skipped/page/", page),
    path("api/resource/", resource),
]
