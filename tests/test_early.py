"""``EarlyAnswerMiddleware``: a remembered 304 sent before the other middleware, only while its
proof holds and only where nothing skipped could have answered otherwise (a redis-server of the
test's own, the local version cache on).

Each test counts the requests that reached the middleware after it (``Counting``): an early
answer reaches nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from django_conditional import answers, early, observe, versions
from django_conditional.resources import ObjectOf
from django_conditional.versioned_views import FROM_VERSIONS, versioned
from tests.test_store_faults import REDIS_SERVER, Redis
from tests.testapp.models import Article

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None, reason="needs redis-server on the PATH"
)
KEY = versions.object_key(Article, 1)
passed: list[str] = []


class Counting:
    """Counts the requests that reach it (an early answer skips it); sync or async."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        passed.append(request.path)
        return self.get_response(
            request
        )  # a coroutine in async mode: the caller awaits it


class SetsCookie:
    """Sets a cookie on every response (as a session saved on every request would)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = self.get_response(request)
        response.set_cookie("seen", "1")
        return response


class VariesOnPadding(SetsCookie):
    """Adds ``Vary: X-Padding`` to every response (a header the view's tag does not hold)."""

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = self.get_response(request)
        patch_vary_headers(response, ["X-Padding"])
        return response


class Early(early.EarlyAnswerMiddleware):
    safe_middleware = early.SAFE_MIDDLEWARE | {
        "tests.test_early.Counting",
        "tests.test_early.SetsCookie",
        "tests.test_early.VariesOnPadding",
    }


def _page(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(f"article {pk}", headers={"Cache-Control": "max-age=60"})


def _star_page(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse("varies on everything", headers={"Vary": "*"})


article = versioned(
    ObjectOf(Article), vary=("Accept-Language",), last_modified=FROM_VERSIONS
)(_page)
urlpatterns = [
    path("articles/<int:pk>/", article),
    path("login/<int:pk>/", login_required(versioned(ObjectOf(Article))(_page))),
    path(
        "cached/<int:pk>/",
        cache_control(private=True)(versioned(ObjectOf(Article))(_page)),
    ),
    path("star/<int:pk>/", versioned(ObjectOf(Article))(_star_page)),
    path(
        "safe/<int:pk>/", csrf_exempt(require_safe(versioned(ObjectOf(Article))(_page)))
    ),
]

STACK = [
    "tests.test_early.Early",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tests.test_early.Counting",
]


@pytest.fixture
def site(local_store: Redis) -> Iterator[None]:
    with override_settings(ROOT_URLCONF="tests.test_early", MIDDLEWARE=STACK):
        versions.bump(KEY)
        answers.forget()
        early.forget()
        passed.clear()
        yield
    early.forget()
    answers.forget()


def _warm(client: Client, url: str, **headers: str) -> str:
    """The 200's tag, then one computed 304 (which is kept)."""
    tag: str = client.get(url, headers=headers).headers["ETag"]
    assert client.get(url, headers={"If-None-Match": tag, **headers}).status_code == 304
    return tag


def test_a_repeated_revalidation_skips_every_middleware_and_keeps_the_headers(
    site: None,
) -> None:
    client = Client()
    tag = _warm(client, "/articles/1/")
    computed = client.get("/articles/1/", headers={"If-None-Match": tag})
    before = len(passed)
    again = client.get("/articles/1/", headers={"If-None-Match": tag})
    assert again.status_code == 304 and len(passed) == before
    assert dict(again.items()) == dict(computed.items())
    assert again.headers["ETag"] == tag and "Last-Modified" in again.headers
    assert again.content == b""
    # A change: the proof fails, the request goes through and gets the new page.
    versions.bump(KEY)
    changed = client.get("/articles/1/", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and len(passed) == before + 1


def test_different_inputs_are_never_answered_from_another_request(site: None) -> None:
    client = Client()
    tag = _warm(client, "/articles/1/", **{"Accept-Language": "fr"})
    before = len(passed)
    variants: list[dict[str, Any]] = [
        {"headers": {"Accept-Language": "de"}},  # a header the view varies on
        {"headers": {"Accept-Language": "fr", "Accept-Encoding": "gzip"}},
        {"headers": {"Accept-Language": "fr"}, "HTTP_HOST": "localhost"},
        {"headers": {"Accept-Language": "fr", "X-Forwarded-Host": "example.com"}},
        {
            "headers": {"Accept-Language": "fr", "X-Forwarded-Host": ""}
        },  # empty, not absent
        {
            "headers": {"Accept-Language": "fr", "Cookie": "sessionid=x"}
        },  # cookies answer
        {"headers": {"Accept-Language": "fr"}, "SCRIPT_NAME": "/a"},  # another mount
        {"headers": {"Accept-Language": "fr"}, "secure": True},
        {"headers": {"Accept-Language": "fr"}, "data": {"page": "2"}},
        {"headers": {"Accept-Language": "fr", "If-Match": tag}},
        {"headers": {"Accept-Language": "fr", "Range": "bytes=0-1"}},
    ]
    for extra in variants:
        headers = {"If-None-Match": tag, **extra.pop("headers")}
        client.get("/articles/1/", headers=headers, **extra)
    assert len(passed) == before + len(variants)
    # HEAD is apart from GET too.
    client.head("/articles/1/", headers={"If-None-Match": tag, "Accept-Language": "fr"})
    assert len(passed) == before + len(variants) + 1


def test_a_host_allowed_hosts_refuses_is_never_answered_early(site: None) -> None:
    client = Client()
    tag = _warm(client, "/articles/1/")
    with override_settings(ALLOWED_HOSTS=["example.com"]):
        refused = client.get(
            "/articles/1/", headers={"If-None-Match": tag}, HTTP_HOST="evil.test"
        )
    assert refused.status_code == 400


def test_method_checks_and_csrf_exempt_around_versioned_are_passed_through(
    site: None,
) -> None:
    client = Client()
    tag = _warm(client, "/safe/1/")
    before = len(passed)
    assert client.get("/safe/1/", headers={"If-None-Match": tag}).status_code == 304
    assert len(passed) == before
    assert client.post("/safe/1/", headers={"If-None-Match": tag}).status_code == 405


@pytest.mark.parametrize("url", ["/login/1/", "/cached/1/"])
def test_a_view_with_a_decorator_around_versioned_is_never_answered_early(
    site: None, url: str, django_user_model: Any
) -> None:
    client = Client()
    user = django_user_model.objects.create_user("ada", password="x")
    client.force_login(user)
    tag = _warm(client, url)
    before = len(passed)
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    assert len(passed) == before + 1  # went through: the decorator ran
    if (
        url == "/login/1/"
    ):  # logged out: the decorator answers, never a 304 kept for another
        client.logout()
        assert client.get(url, headers={"If-None-Match": tag}).status_code == 302


@pytest.mark.parametrize("case", ["cookie", "vary-star"])
def test_a_304_with_cookies_or_vary_star_is_never_answered_early(
    site: None, case: str
) -> None:
    stack = [*STACK, "tests.test_early.SetsCookie"] if case == "cookie" else STACK
    url = "/star/1/" if case == "vary-star" else "/articles/1/"
    with override_settings(MIDDLEWARE=stack):
        client = Client()
        tag = _warm(client, url)
        before = len(passed)
        for _ in range(2):
            response = client.get(url, headers={"If-None-Match": tag})
            assert response.status_code == 304
        assert len(passed) == before + 2


def test_observed_requests_go_through(
    site: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client()
    tag = _warm(client, "/articles/1/")
    monkeypatch.setattr(observe, "listening", lambda: True)
    before = len(passed)
    client.get("/articles/1/", headers={"If-None-Match": tag})
    assert len(passed) == before + 1


def test_async_stack_answers_early_too(site: None) -> None:
    client = AsyncClient()
    tag = async_to_sync(client.get)("/articles/1/").headers["ETag"]
    for _ in range(2):
        response = async_to_sync(client.get)(
            "/articles/1/", headers={"If-None-Match": tag}
        )
        assert response.status_code == 304
    before = len(passed)
    again = async_to_sync(client.get)("/articles/1/", headers={"If-None-Match": tag})
    assert again.status_code == 304 and len(passed) == before


@pytest.mark.parametrize(
    ("stack", "why"),
    [
        (["tests.test_early.Counting", "tests.test_early.Early"], "not first"),
        (
            ["tests.test_early.Early", "django.middleware.locale.LocaleMiddleware"],
            "LocaleMiddleware",
        ),
        (
            ["tests.test_early.Early", "django.middleware.common.CommonMiddleware"],
            "DISALLOWED_USER_AGENTS",
        ),
    ],
)
def test_an_unknown_stack_turns_the_early_answer_off(
    site: None, stack: list[str], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    import re

    with (
        override_settings(
            MIDDLEWARE=[*stack, "tests.test_early.Counting"]
            if "tests.test_early.Counting" not in stack
            else stack,
            DISALLOWED_USER_AGENTS=[re.compile("nobody")]
            if "DISALLOWED" in why
            else [],
        ),
        caplog.at_level(logging.WARNING, logger="django_conditional"),
    ):
        client = Client()
        tag = _warm(client, "/articles/1/")
        before = len(passed)
        client.get("/articles/1/", headers={"If-None-Match": tag})
        assert len(passed) == before + 1
    assert why in caplog.text


def test_the_table_is_bounded(site: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answers, "MAX_ANSWERS", 2)
    client = Client()
    tag = _warm(client, "/articles/1/")
    for n in range(5):
        client.get(f"/articles/1/?n={n}", headers={"If-None-Match": tag})
        client.get(f"/articles/1/?n={n}", headers={"If-None-Match": tag})
    assert len(early._entries) <= 2 and len(early._named) <= 2


def test_a_varied_header_is_keyed_and_a_long_one_is_never_kept(site: None) -> None:
    with override_settings(MIDDLEWARE=[*STACK, "tests.test_early.VariesOnPadding"]):
        client = Client()
        url, tag = "/articles/1/", _warm(client, "/articles/1/", **{"X-Padding": "a"})
        headers = {"If-None-Match": tag}
        before = len(passed)
        assert client.get(url, headers={**headers, "X-Padding": "a"}).status_code == 304
        assert len(passed) == before  # the same inputs: early
        client.get(url, headers={**headers, "X-Padding": "b"})
        assert len(passed) == before + 1  # another value of a varied header: through
        # A value the view's own key does not hold, too long for the early key: answered in
        # the view each time, never kept or looked up early.
        long = "x" * answers.MAX_INPUT
        for _ in range(2):
            response = client.get(url, headers={**headers, "X-Padding": long})
            assert response.status_code == 304
        assert len(passed) == before + 3


def test_pass_through_decorators_are_followed_only_so_deep(site: None) -> None:
    view = versioned(ObjectOf(Article))(_page)
    wrapped: Any = view
    for _ in range(9):
        wrapped = require_safe(wrapped)
    assert early._reaches(require_safe(view), view)
    assert not early._reaches(wrapped, view)
