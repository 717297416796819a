"""The benchmark's views: one realistic page served five ways, bodies of fixed sizes, and writes.

Every variant of the realistic page renders the same template from the same 50 rows, so the only
difference between them is how (and whether) a conditional request is answered early.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.http import (
    ConditionalGetMiddleware as DjangoConditionalGetMiddleware,
)
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import condition as django_condition

from bench.benchproject.pages.models import Row
from django_conditional import fastcache, versions
from django_conditional.conf import conf
from django_conditional.decorators import versioned
from django_conditional.resources import CollectionOf, ObjectOf
from django_conditional.responses import NotModified

PAGE_ROWS = 50
PAGE_VERSION_KEY = "page-version"


def _render_page(request: HttpRequest) -> HttpResponse:
    rows = list(Row.objects.order_by("id")[:PAGE_ROWS])
    newest = max((row.updated for row in rows), default=None)
    return render(
        request,
        "pages/list.html",
        {"title": "Latest rows", "rows": rows, "newest": newest},
    )


# (a) the full 200, no conditional handling at all.
def full_page(request: HttpRequest) -> HttpResponse:
    return _render_page(request)


# (b) Django's condition() with a hand-written etag function that queries the database.
def db_etag(request: HttpRequest) -> str:
    stats = Row.objects.aggregate(count=Count("id"), newest=Max("updated"))
    newest = stats["newest"]
    stamp = newest.timestamp() if newest is not None else 0
    return f'"{stats["count"]}-{stamp}"'


@django_condition(etag_func=db_etag)
def django_db_page(request: HttpRequest) -> HttpResponse:
    return _render_page(request)


# (c) Django's condition() with a version read from the cache (RedisCache in the Redis run).
def cache_etag(request: HttpRequest) -> str:
    cache = caches["default"]
    version = cache.get(PAGE_VERSION_KEY)
    if version is None:
        version = Row.objects.aggregate(newest=Max("updated"))["newest"]
        version = int(version.timestamp() * 1e6) if version is not None else 0
        cache.set(PAGE_VERSION_KEY, version, None)
    return f'"{version}"'


@django_condition(etag_func=cache_etag)
def django_cache_page(request: HttpRequest) -> HttpResponse:
    return _render_page(request)


# (d) this app: validators from the version store, answered before the view runs.
@versioned(CollectionOf(Row))
def versioned_page(request: HttpRequest) -> HttpResponse:
    return _render_page(request)


# (e) the floor: the smallest Django response.
def floor(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"")


# (e') the floor plus one version read (one MGET on Redis): what a single round trip costs.
def floor_read(request: HttpRequest) -> HttpResponse:
    fastcache.get_ints(caches["default"], [PAGE_VERSION_KEY])
    return HttpResponse(b"")


# (e'') the least a 304 that asks the cache once can do: one read of as many keys as the version
# 304 reads (the page's version and its remembered headers), then a 304 with the headers the
# version 304 carries. Nothing compared, no tag computed: no one-round-trip 304 is faster, so this
# bounds every ratio of the version 304 on the machine that runs it.
_BOUND_KEYS: list[str] = []


def _bound_keys() -> list[str]:
    # The epoch key and the version key the version 304 reads (the epoch is made once).
    if not _BOUND_KEYS:
        version_key = versions.cache_key(versions.collection_key(Row))
        _BOUND_KEYS.extend(
            [
                version_key.rsplit(":", 3)[0] + ":epoch:probe",
                version_key,
                f"{conf.KEY_PREFIX}:headers:{'0' * 32}",
            ]
        )
    return _BOUND_KEYS


def floor_304(request: HttpRequest) -> HttpResponseBase:
    fastcache.get_many(caches["default"], _bound_keys())
    return NotModified(
        {
            "ETag": request.META.get("HTTP_IF_NONE_MATCH", '"bound"'),
            "Vary": "Accept, Accept-Language",
        }
    )


# (f) bodies of fixed sizes, plain and behind each conditional-GET middleware.
def _body(size: int) -> bytes:
    generator = random.Random(size)
    alphabet = "abcdefghijklmnopqrstuvwxyz      <>/=\n"
    return "".join(generator.choice(alphabet) for _ in range(size)).encode()


BODY_SIZES = {"1k": 1024, "20k": 20 * 1024, "200k": 200 * 1024}
_BODIES = {name: _body(size) for name, size in BODY_SIZES.items()}


def body_view(request: HttpRequest, size: str) -> HttpResponse:
    return HttpResponse(_BODIES[size], content_type="text/html; charset=utf-8")


def _wrapped(middleware: Callable[[Any], Any]) -> Callable[..., HttpResponseBase]:
    # Middleware around this one view only, made once and called exactly as Django's stack
    # calls it (the view's size comes from the URL match, as the handler resolves it).
    def get_response(request: HttpRequest) -> HttpResponseBase:
        match = request.resolver_match
        assert match is not None
        return body_view(request, match.kwargs["size"])

    instance = middleware(get_response)

    def view(request: HttpRequest, size: str) -> HttpResponseBase:
        response: HttpResponseBase = instance(request)
        return response

    return view


django_middleware_body = _wrapped(DjangoConditionalGetMiddleware)


def _app_middleware() -> Callable[[Any], Any] | None:
    try:
        from django_conditional.middleware import ConditionalGetMiddleware
    except ImportError:  # pragma: no cover - the app's middleware not there
        return None
    middleware: Callable[[Any], Any] = ConditionalGetMiddleware
    return middleware


_APP_MIDDLEWARE = _app_middleware()
app_middleware_body = None if _APP_MIDDLEWARE is None else _wrapped(_APP_MIDDLEWARE)


# (g) writes: PUT with If-Match, Django's condition() (check, then write: not atomic) and this app
# (versions locked, checked and bumped in one transaction).
def row_etag(request: HttpRequest, pk: int) -> str | None:
    updated = Row.objects.filter(pk=pk).values_list("updated", flat=True).first()
    if updated is None:
        return None
    return '"' + hashlib.md5(updated.isoformat().encode()).hexdigest() + '"'


def _write(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method != "PUT":
        return HttpResponse(status=405)
    row = get_object_or_404(Row, pk=pk)
    row.score += 1
    row.updated = timezone.now()
    row.save(update_fields=["score", "updated"])
    return HttpResponse(b"", status=204)


@django_condition(etag_func=row_etag)
def django_write(request: HttpRequest, pk: int) -> HttpResponse:
    return _write(request, pk)


@versioned(ObjectOf(Row))
def app_write(request: HttpRequest, pk: int) -> HttpResponse:
    return _write(request, pk)
