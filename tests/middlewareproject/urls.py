"""One page whose content lives in a file (MIDDLEWAREPROJECT_CONTENT), so every worker sees a change."""

from __future__ import annotations

import os
from pathlib import Path

from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import path
from django.utils.cache import patch_response_headers, patch_vary_headers
from django.views.decorators.csrf import csrf_exempt


def _content_file() -> Path:
    return Path(os.environ["MIDDLEWAREPROJECT_CONTENT"])


@csrf_exempt
def article(request: HttpRequest) -> HttpResponse:
    if request.method == "PUT":
        _content_file().write_bytes(request.body)
        return HttpResponse("saved\n")
    response = HttpResponse(
        _content_file().read_bytes(), content_type="text/plain; charset=utf-8"
    )
    patch_response_headers(
        response, cache_timeout=60
    )  # Cache-Control: max-age=60, Expires
    patch_vary_headers(response, ("Accept-Language",))
    return response


def download(request: HttpRequest) -> FileResponse:
    """A large file (MIDDLEWAREPROJECT_DOWNLOAD), served whole or by ranges by the middleware."""
    path_name = os.environ["MIDDLEWAREPROJECT_DOWNLOAD"]
    return FileResponse(open(path_name, "rb"))  # noqa: SIM115 - FileResponse closes it


urlpatterns = [path("article/", article), path("download/", download)]
