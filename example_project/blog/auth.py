"""HTTP Basic authentication for the demo API. DEMO ONLY.

Basic credentials travel in clear text on every request: never use this outside a local demo
(a real site uses sessions with CSRF protection, or tokens, over HTTPS). The API views that use
it are CSRF exempt because they accept no session cookie, only the ``Authorization`` header.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse

REALM = "django-conditional demo"

_View = TypeVar("_View", bound=Callable[..., Any])


def basic_auth_user(request: HttpRequest) -> AbstractBaseUser | None:
    """The active user named by the request's ``Authorization: Basic`` credentials, or None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    return authenticate(request, username=username, password=password)


def unauthorized() -> HttpResponse:
    response = JsonResponse(
        {"detail": "Authentication required: send HTTP Basic credentials (demo/demo)."},
        status=401,
    )
    response.headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    return response


def forbidden(permission: str) -> HttpResponse:
    return JsonResponse({"detail": f"Permission {permission} required."}, status=403)


def basic_auth_required(
    permissions: dict[str, str],
) -> Callable[[_View], _View]:
    """Require Basic credentials and, per unsafe method, a permission; safe methods stay public.

    Applied outside the conditional decorator so that a 401/403 wins over 412/428
    (RFC 9110 §13.2.1: preconditions are ignored when the request would fail anyway).
    """

    def decorator(view: _View) -> _View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            permission = permissions.get(request.method or "GET")
            if permission is None:
                return view(request, *args, **kwargs)
            user = basic_auth_user(request)
            if user is None:
                return unauthorized()
            if not user.has_perm(permission):  # type: ignore[attr-defined]
                return forbidden(permission)
            request.user = user  # type: ignore[assignment]
            return view(request, *args, **kwargs)

        return cast(_View, wrapper)

    return decorator
