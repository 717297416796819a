from __future__ import annotations

import hashlib
from importlib.util import find_spec

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from django_conditional.decorators import etag

HOME_PAGE = (
    "<!doctype html><title>django-conditional demo</title>"
    "<h1>django-conditional demo</h1>"
    "<p>Ask again with <code>If-None-Match</code> and this page answers 304 Not Modified.</p>"
    '<p><a href="/articles/">Articles</a> · <a href="/about/">About</a> · '
    '<a href="/api/articles/">API</a> · <a href="/admin/">Admin</a></p>'
)
HOME_ETAG = hashlib.sha256(HOME_PAGE.encode()).hexdigest()[:16]


@etag(lambda request: HOME_ETAG)
def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(HOME_PAGE)


urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("", include("example_project.blog.urls")),
]
if find_spec("rest_framework") is not None and find_spec("drf_spectacular") is not None:
    urlpatterns.append(path("drf/", include("example_project.drf_urls")))
