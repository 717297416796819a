from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from django_conditional.decorators import etag

STATE = {"version": 1}


def current_etag(request: HttpRequest) -> str:
    return f"v{STATE['version']}"


@etag(current_etag)
def document(request: HttpRequest) -> HttpResponse:
    if request.method == "PUT":
        STATE["version"] += 1
        return HttpResponse(status=204)
    return HttpResponse(f"version {STATE['version']} " + "lorem ipsum " * 100)


urlpatterns = [path("doc/", document)]
