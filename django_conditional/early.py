"""``EarlyAnswerMiddleware``: a remembered 304 sent before the rest of the middleware runs.

``answers`` sends a versioned view's 304 again from inside the view, after the middleware
stack (sessions, CSRF, authentication, messages, ...) and the URL resolver have run; on a page
whose 304 is otherwise free, they are most of its cost. Placed first in ``MIDDLEWARE``, this
middleware keeps the *final* 304 (every middleware's headers on it) and sends a fresh copy to the
next request with the same inputs, while the store read it came from still proves it
(``versions.unchanged``, the check ``answers`` makes).

Skipping code is safe only when nothing skipped could have answered otherwise or added what the
key lacks. A 304 is kept only when:

- every other entry of ``MIDDLEWARE`` is in ``safe_middleware``: each of those was read for this,
  and none refuses a GET or HEAD, or changes a 304, by anything but what is keyed or refused
  below (``CommonMiddleware`` only without ``DISALLOWED_USER_AGENTS``); a site's own middleware
  is not, so its presence turns the early answer off (the view-level one stays);
- the URL resolved to the remembering view itself, or to it inside ``require_safe``,
  ``require_GET`` or ``csrf_exempt`` (recognised by their wrapper's code; they pass an allowed
  GET or HEAD straight through): any other decorator around ``@versioned`` (``login_required``,
  ``cache_control``, a site's own) may check or add anything, so its pages always run the stack;
  and no middleware chose another URLconf;
- the 304 sets no cookie and has no ``Vary: *``; and ``answers`` kept it (its own conditions).

The key: method, scheme (``request.scheme``), ``Host``, ``X-Forwarded-Host`` and
``X-Forwarded-Port`` as sent (absent apart from empty: a host the stack refused,
``ALLOWED_HOSTS``, never got a 304 to keep), the server name and port, ``SCRIPT_NAME`` and the path
after it, query, ``If-None-Match``, ``Accept-Encoding``, ``Cookie`` (the stack's cookie middleware
answers by it), and the value of every header the view or the final ``Vary`` names, with those
names.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponseBase
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_safe

from django_conditional import answers, observe, versions
from django_conditional.responses import headers_for_304
from django_conditional.variants import meta_key

__all__ = ["SAFE_MIDDLEWARE", "EarlyAnswerMiddleware", "forget"]

logger = logging.getLogger("django_conditional")

SAFE_MIDDLEWARE: Final = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",  # headers by scheme (keyed)
        "django.middleware.common.CommonMiddleware",
        "django.middleware.gzip.GZipMiddleware",  # by Accept-Encoding (keyed)
        "django.middleware.http.ConditionalGetMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",  # GET/HEAD pass; its cookie: refused
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",  # Vary: Cookie, cookies
        "django.contrib.auth.middleware.AuthenticationMiddleware",  # a lazy user only
        "django.contrib.messages.middleware.MessageMiddleware",  # its cookie: refused
        "django_conditional.compression.GZipMiddleware",
        "django_conditional.middleware.ConditionalGetMiddleware",
    }
)


def _probe(request: HttpRequest) -> HttpResponseBase:
    raise NotImplementedError  # pragma: no cover - never called: its wrappers' code is read


async def _aprobe(request: HttpRequest) -> HttpResponseBase:
    raise NotImplementedError  # pragma: no cover - never called: its wrappers' code is read


# Decorators that may wrap ``@versioned`` on a page answered early: each passes a GET or HEAD it
# allows straight to the view (``require_http_methods`` refuses by method alone, and the method
# is keyed; ``csrf_exempt`` only marks the view). Recognised by their wrapper's code object, the
# same for every view they wrap.
_PASS_THROUGH: Final = frozenset(
    decorator(probe).__code__
    for decorator in (require_safe, require_GET, csrf_exempt)
    for probe in (_probe, _aprobe)
)
_COMMAS: Final = re.compile(r"\s*,\s*")
_Base = tuple[str | None, ...]
# (inputs, varied header names, their values) -> the final 304
_entries: dict[
    tuple[_Base, tuple[str, ...], tuple[str | None, ...]], answers.Answer
] = {}
_named: dict[
    _Base, tuple[str, ...]
] = {}  # a URL's inputs -> the headers its 304 varies on


def _base(request: HttpRequest) -> _Base | None:
    """The request's inputs every kept 304 is keyed by (None: never answered early)."""
    meta = request.META
    tags = meta.get("HTTP_IF_NONE_MATCH")
    method = request.method
    if tags is None or method not in ("GET", "HEAD"):
        return None
    for name in answers.REFUSED:
        if name in meta:
            return None
    # The host as sent (validated by the stack when the 304 kept for it was made: the same
    # input gets the same answer; a host refused there was never kept), absent apart from empty.
    # The cookies as sent: the stack's cookie middleware answers by them (a session saved on
    # every request, a malformed CSRF cookie reset), and a 304 it gave a cookie is never kept.
    base = (
        method,
        request.scheme,
        meta.get("HTTP_HOST"),
        meta.get("HTTP_X_FORWARDED_HOST"),
        meta.get("HTTP_X_FORWARDED_PORT"),
        meta.get("SERVER_NAME"),
        meta.get("SERVER_PORT"),
        meta.get("SCRIPT_NAME"),  # where the URLconf's path starts: not in request.path
        request.path_info,
        meta.get("QUERY_STRING"),
        tags,
        meta.get("HTTP_ACCEPT_ENCODING"),
        meta.get("HTTP_COOKIE"),
    )
    return base if _size(base) <= answers.MAX_INPUT else None


def _size(values: tuple[object, ...]) -> int:
    return sum([len(value) for value in values if type(value) is str])


def _varied(
    base: _Base, meta: dict[str, Any], names: tuple[str, ...]
) -> tuple[str | None, ...] | None:
    values = tuple([meta.get(name) for name in names])
    if _size(values) + _size(base) > answers.MAX_INPUT:
        return None
    return values


def _again(base: _Base | None, request: HttpRequest) -> HttpResponseBase | None:
    names = None if base is None else _named.get(base)
    if base is None or names is None:
        return None
    values = _varied(base, request.META, names)
    if values is None:
        return None
    key = (base, names, values)
    answer = _entries.get(key)
    if answer is None or observe.listening():
        return None
    if not versions.unchanged(answer.provenance.read):
        _entries.pop(key, None)
        return None
    return answers.copied(answer)


def _vary_names(response: HttpResponseBase) -> tuple[str, ...] | None:
    names = [n.strip() for n in _COMMAS.split(response.get("Vary", "")) if n.strip()]
    if "*" in names:
        return None
    return tuple(meta_key(name) for name in names)


def _keep(base: _Base | None, request: HttpRequest, response: HttpResponseBase) -> None:
    handed = request.__dict__.pop(answers.HANDED, None)
    if base is None or not isinstance(handed, answers.Handed):
        return
    match = getattr(request, "resolver_match", None)
    varied = _vary_names(response)
    if (
        response.status_code != 304
        or response.cookies
        or varied is None
        or match is None
        or not _reaches(match.func, handed.view)
        or getattr(request, "urlconf", None) is not None
    ):
        return
    names = tuple(dict.fromkeys(handed.vary + varied))
    values = _varied(base, request.META, names)
    if values is None:
        return
    if len(_entries) >= answers.MAX_ANSWERS or len(_named) >= answers.MAX_ANSWERS:
        forget()  # only ever costs recomputing
    _named[base] = names
    _entries[base, names, values] = answers.Answer(
        handed.provenance, headers_for_304(response.items())
    )


def _reaches(func: object, view: object) -> bool:
    """Whether the URL's view ``func`` is ``view``, or pass-through decorators around it."""
    for _depth in range(8):
        if func is view:
            return True
        if getattr(func, "__code__", None) not in _PASS_THROUGH:
            return False
        func = getattr(func, "__wrapped__", None)
    return False


def _why_not(middleware: type[Any], safe: frozenset[str]) -> str | None:
    """Why the early answer is off with this ``MIDDLEWARE`` (None: it is on)."""
    stack = list(settings.MIDDLEWARE)
    if not stack or import_string(stack[0]) is not middleware:
        return f"{middleware.__name__} is not first in MIDDLEWARE"
    unsafe = [path for path in stack[1:] if path not in safe]
    if unsafe:
        return f"not known to be safe to skip: {', '.join(unsafe)}"
    if getattr(settings, "DISALLOWED_USER_AGENTS", None):
        return "DISALLOWED_USER_AGENTS is set (CommonMiddleware refuses by User-Agent)"
    return None


class EarlyAnswerMiddleware:
    """Sends a remembered versioned 304 before the other middleware (see the module).
    ``safe_middleware``: a subclass may add middleware it has checked the same way."""

    safe_middleware = SAFE_MIDDLEWARE
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(self.get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        why_not = _why_not(type(self), self.safe_middleware)
        if why_not is not None:
            logger.warning("django_conditional: no early 304s: %s", why_not)
        self.on = why_not is None

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        base = _base(request) if self.on else None
        again = _again(base, request)
        if again is not None:
            return again
        response: HttpResponseBase = self.get_response(request)
        _keep(base, request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        base = _base(request) if self.on else None
        again = _again(base, request)
        if again is not None:
            return again
        pending: Awaitable[HttpResponseBase] = self.get_response(request)
        response = await pending
        _keep(base, request, response)
        return response


def forget(**kwargs: object) -> None:
    """Forget every 304 kept (a setting changed; tests)."""
    _entries.clear()
    _named.clear()


setting_changed.connect(forget, dispatch_uid="django_conditional.early")
