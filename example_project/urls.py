from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        "<!doctype html><title>django-conditional demo</title>"
        '<h1>django-conditional demo</h1><p><a href="/admin/">Admin</a></p>'
    )


urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
]
