"""Views for the hostile-input, fault and security tests: one of each kind of conditional stack.

- ``drop/`` and ``drop-async/``: the drop-in ``condition`` decorator (fixed ETag and Last-Modified).
- ``mw/``, ``mw-async/`` (content-hash ETag) and ``mw-dated/`` (Last-Modified set by the view):
  undecorated views, for ``ConditionalGetMiddleware`` (tests add it with ``override_settings``).
- ``versioned/<pk>/`` and ``versioned-async/<pk>/``: ``@versioned(ObjectOf(Article))`` on the test app,
  with a fixed Last-Modified; PUT renames the article (atomic check and write).
- ``required/<pk>/`` and ``required-async/<pk>/``: versioned without a date, If-Match required.
- ``private/<pk>/`` and ``private-async/<pk>/``: per-user versioned pages (with a per-user
  ``Content-Location``).
- ``range/``: the drop-in decorator in front of a view that honours ``Range: bytes=a-b``.
- the example project's blog URLs (``/api/articles/<pk>/`` and the rest).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, URLResolver, include, path
from django.views.decorators.csrf import csrf_exempt

from django_conditional.decorators import condition, versioned
from django_conditional.httpdate import format_http_date
from django_conditional.resources import ObjectOf
from tests.testapp.models import Article

TAG = "v1-hostile"
LAST_MODIFIED = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
BODY = "hostile input test page " * 20
# How many times each view ran a write (a 412/428 must leave these alone), and a read.
WRITES: dict[str, int] = {}
READS: dict[str, int] = {}


def _tag(request: HttpRequest) -> str:
    return f'"{TAG}"'


def _last_modified(request: HttpRequest, *args: object, **kwargs: object) -> datetime:
    return LAST_MODIFIED


def _page(request: HttpRequest, name: str) -> HttpResponse:
    if request.method in {"GET", "HEAD"}:
        READS[name] = READS.get(name, 0) + 1
        return HttpResponse(BODY)
    WRITES[name] = WRITES.get(name, 0) + 1
    return HttpResponse(status=204)


@csrf_exempt
@condition(etag_func=_tag, last_modified_func=_last_modified)
def drop(request: HttpRequest) -> HttpResponse:
    return _page(request, "drop")


@condition(etag_func=_tag, last_modified_func=_last_modified)
async def drop_async(request: HttpRequest) -> HttpResponse:
    return _page(request, "drop-async")


@csrf_exempt
def mw(request: HttpRequest) -> HttpResponse:
    return _page(request, "mw")


async def mw_async(request: HttpRequest) -> HttpResponse:
    return _page(request, "mw-async")


@csrf_exempt
def mw_dated(request: HttpRequest) -> HttpResponse:
    response = _page(request, "mw-dated")
    if response.status_code == 200:
        response.headers["Last-Modified"] = format_http_date(LAST_MODIFIED)
    return response


def _rename(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    article = get_object_or_404(Article, pk=pk)
    if request.method in {"GET", "HEAD"}:
        READS[name] = READS.get(name, 0) + 1
        return HttpResponse(f"{article.title}: {BODY}")
    WRITES[name] = WRITES.get(name, 0) + 1
    article.title = f"renamed {WRITES[name]}"
    article.save()
    return HttpResponse(status=204)


@csrf_exempt
@versioned(ObjectOf(Article), last_modified=_last_modified)
def versioned_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _rename(request, pk, "versioned")


async def _arename(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    try:
        article = await Article.objects.aget(pk=pk)
    except Article.DoesNotExist:
        raise Http404 from None
    if request.method in {"GET", "HEAD"}:
        return HttpResponse(f"{article.title}: {BODY}")
    WRITES[name] = WRITES.get(name, 0) + 1
    article.title = f"renamed {WRITES[name]}"
    await article.asave()
    return HttpResponse(status=204)


@versioned(ObjectOf(Article), last_modified=_last_modified)
async def versioned_async(request: HttpRequest, pk: int) -> HttpResponse:
    return await _arename(request, pk, "versioned-async")


@csrf_exempt
@versioned(ObjectOf(Article), require_precondition=True)
def required(request: HttpRequest, pk: int) -> HttpResponse:
    return _rename(request, pk, "required")


@versioned(ObjectOf(Article), require_precondition=True)
async def required_async(request: HttpRequest, pk: int) -> HttpResponse:
    return await _arename(request, pk, "required-async")


def _private_page(user: Any) -> HttpResponse:
    name = user.get_username() if user.is_authenticated else "anonymous"
    response = HttpResponse(f"private page of {name}")
    # Headers a 304 repeats (§15.4.5), here different for each user.
    response.headers["Content-Location"] = f"/people/{name}/"
    response.headers["Cache-Control"] = "max-age=60"
    return response


@versioned(ObjectOf(Article), per_user=True)
def private(request: HttpRequest, pk: int) -> HttpResponse:
    return _private_page(request.user)


@versioned(ObjectOf(Article), per_user=True)
async def private_async(request: HttpRequest, pk: int) -> HttpResponse:
    # request.user loads lazily from the database: in a thread (Django 4.2 has no auser()).
    page: HttpResponse = await sync_to_async(_private_page)(request.user)
    return page


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    unit, _, spec = header.partition("=")
    first, dash, last = spec.partition("-")
    if unit.strip() != "bytes" or not dash or "," in spec:
        return None
    if not (first.isascii() and first.isdigit() and last.isascii() and last.isdigit()):
        return None
    start, end = int(first), min(int(last), size - 1)
    return (start, end) if start <= end else None


@condition(etag_func=_tag, last_modified_func=_last_modified)
def ranged(request: HttpRequest) -> HttpResponse:
    content = BODY.encode()
    wanted = request.META.get("HTTP_RANGE")
    span = None if wanted is None else _byte_range(wanted, len(content))
    if span is None:
        return HttpResponse(content)
    start, end = span
    response = HttpResponse(content[start : end + 1], status=206)
    response.headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
    return response


urlpatterns: list[URLPattern | URLResolver] = [
    path("drop/", drop),
    path("drop-async/", drop_async),
    path("mw/", mw),
    path("mw-async/", mw_async),
    path("mw-dated/", mw_dated),
    path("versioned/<int:pk>/", versioned_view),
    path("versioned-async/<int:pk>/", versioned_async),
    path("required/<int:pk>/", required),
    path("required-async/<int:pk>/", required_async),
    path("private/<int:pk>/", private),
    path("private-async/<int:pk>/", private_async),
    path("range/", ranged),
    path("", include("example_project.blog.urls")),
]
