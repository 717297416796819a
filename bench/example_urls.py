"""The example project's URLs plus the bench's comparisons beside them (``make bench``, issue 16):
the framework floor, and the article page behind Django's own ``condition()`` with its version
read from the site's ``RedisCache`` (one ``cache.get``), the way a site without this app would
write it."""

from __future__ import annotations

import inspect
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import condition, require_safe

from example_project.blog import views
from example_project.urls import urlpatterns as site

# The page's own code, without the app's decorator.
_article_page = inspect.unwrap(views.article_detail)


def floor(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"")


def _cached_version(request: HttpRequest, pk: int) -> str:
    key = f"bench-django-article:{pk}"
    version = cache.get(key)
    if version is None:
        version = "1"
        cache.set(key, version, None)
    return f"django-{pk}-{version}"


django_article_detail = require_safe(
    condition(etag_func=_cached_version)(_article_page)
)

urlpatterns: list[Any] = [
    path("bench/floor/", floor),
    path("bench/floor-b/", floor),
    path("bench/django/articles/<int:pk>/", django_article_detail),
    *site,
]
