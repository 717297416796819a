"""Security (issue 8, item 4): permissions, per-user tags, no echoed header values, shared caches.

The admin's own permission tests live in test_admin.py; here only what they leave out
(anonymous and non-staff users, the second bump action, CSRF).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import Warning, run_checks
from django.test import AsyncClient, Client, override_settings
from django.urls import reverse

from django_conditional import checks, versions
from django_conditional.conf import conf
from django_conditional.models import ResourceVersion
from django_conditional.validators import ETag
from example_project.blog.factories import ArticleFactory
from example_project.blog.models import Article as BlogArticle
from tests.testapp.models import Article, Author

LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
REDIS = "django.core.cache.backends.redis.RedisCache"


class LocMemSubclass(LocMemCache):
    """A site's own flavour of a per-process cache: still not shared."""


# System check W010: a cache the workers do not share -----------------------------------------


@pytest.mark.parametrize(
    "backend",
    [
        LOCMEM,
        "django.core.cache.backends.filebased.FileBasedCache",
        "django.core.cache.backends.dummy.DummyCache",
        f"{__name__}.LocMemSubclass",
    ],
)
def test_w010_warns_about_a_cache_the_workers_do_not_share(backend: str) -> None:
    caches_setting = {"default": {"BACKEND": backend, "LOCATION": "/tmp/w010-test"}}
    with override_settings(CACHES=caches_setting):
        (message,) = checks.check_shared_cache()
    assert isinstance(message, Warning)
    assert message.id == "django_conditional.W010"
    assert backend in message.msg
    assert "SILENCED_SYSTEM_CHECKS" in (message.hint or "")
    assert "django_conditional.W010" in (message.hint or "")


def test_w010_explains_stale_304s_for_a_per_process_cache() -> None:
    with override_settings(CACHES={"default": {"BACKEND": LOCMEM}}):
        (message,) = checks.check_shared_cache()
    assert "304" in message.msg
    assert "worker" in message.msg


@pytest.mark.parametrize(
    "backend",
    [
        REDIS,
        "django.core.cache.backends.memcached.PyMemcacheCache",
        "django.core.cache.backends.db.DatabaseCache",
        "no.such.Backend",
    ],
)
def test_w010_is_quiet_for_shared_caches(backend: str) -> None:
    with override_settings(CACHES={"default": {"BACKEND": backend}}):
        assert checks.check_shared_cache() == []


def test_w010_looks_at_the_alias_the_app_uses() -> None:
    setting = {
        "default": {"BACKEND": LOCMEM},
        "versions": {"BACKEND": REDIS, "LOCATION": "redis://127.0.0.1:1/0"},
    }
    with override_settings(CACHES=setting, CONDITIONAL_CACHE_ALIAS="versions"):
        assert checks.check_shared_cache() == []
    with override_settings(CACHES=setting, CONDITIONAL_CACHE_ALIAS="default"):
        assert [m.id for m in checks.check_shared_cache()] == [
            "django_conditional.W010"
        ]


def test_w010_is_registered_and_can_be_silenced() -> None:
    with override_settings(
        CACHES={"default": {"BACKEND": LOCMEM}}, SILENCED_SYSTEM_CHECKS=[]
    ):
        ids = [m.id for m in run_checks(tags=["caches"])]
        assert "django_conditional.W010" in ids
    with override_settings(
        CACHES={"default": {"BACKEND": LOCMEM}},
        SILENCED_SYSTEM_CHECKS=["django_conditional.W010"],
    ):
        assert "django_conditional.W010" not in [
            m.id for m in run_checks(tags=["caches"]) if not m.is_silenced()
        ]


# Admin: bumping needs a staff user with the change permission -------------------------------

CHANGELIST = "admin:django_conditional_resourceversion_changelist"
BUMP_COLLECTION = "admin:django_conditional_resourceversion_bump_collection"


@pytest.fixture
def article_key(db: None) -> Iterator[str]:
    caches[conf.CACHE_ALIAS].clear()
    article = ArticleFactory()
    yield versions.object_key(article)
    caches[conf.CACHE_ALIAS].clear()


def _row(key: str) -> ResourceVersion:
    found: ResourceVersion = ResourceVersion.objects.get(key=key)
    return found


def _attempt_bumps(client: Client, key: str) -> list[int]:
    statuses = []
    for action in ("bump_selected", "bump_collections"):
        response = client.post(
            reverse(CHANGELIST), {"action": action, "_selected_action": [_row(key).pk]}
        )
        statuses.append(response.status_code)
    statuses.append(client.get(reverse(BUMP_COLLECTION)).status_code)
    blog_type = ContentType.objects.get_for_model(BlogArticle)
    statuses.append(
        client.post(reverse(BUMP_COLLECTION), {"model": blog_type.pk}).status_code
    )
    return statuses


def _versions_of(key: str) -> tuple[int, int]:
    return _row(key).version, versions.get(versions.collection_key(BlogArticle))


@pytest.mark.urls("example_project.urls")
def test_anonymous_users_cannot_bump(article_key: str) -> None:
    before = _versions_of(article_key)
    statuses = _attempt_bumps(Client(), article_key)
    assert all(status == 302 for status in statuses)  # to the admin login
    assert _versions_of(article_key) == before


@pytest.mark.urls("example_project.urls")
def test_non_staff_users_cannot_bump_even_with_the_permission(article_key: str) -> None:
    user = User.objects.create_user("reader", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="change_resourceversion"))
    client = Client()
    client.force_login(user)
    before = _versions_of(article_key)
    assert all(status == 302 for status in _attempt_bumps(client, article_key))
    assert _versions_of(article_key) == before


@pytest.mark.urls("example_project.urls")
def test_staff_without_any_permission_cannot_bump(article_key: str) -> None:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    before = _versions_of(article_key)
    statuses = _attempt_bumps(client, article_key)
    assert all(status == 403 for status in statuses), statuses
    assert _versions_of(article_key) == before


@pytest.mark.urls("example_project.urls")
def test_bumping_needs_a_csrf_token(article_key: str) -> None:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    before = _versions_of(article_key)
    statuses = _attempt_bumps(client, article_key)
    assert statuses[0] == statuses[1] == statuses[3] == 403
    assert _versions_of(article_key) == before


# Per-user pages ------------------------------------------------------------------------------


@pytest.fixture
def people(db: None) -> Iterator[dict[str, Any]]:
    caches[conf.CACHE_ALIAS].clear()
    author = Author.objects.create(name="author")
    article = Article.objects.create(author=author, title="shared", body="")
    users = {
        name: User.objects.create_user(name, password="pw") for name in ("alice", "bob")
    }
    yield {"article": article, **users}
    caches[conf.CACHE_ALIAS].clear()


def _client(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _get(client: Client, path: str, is_async: bool, **headers: str) -> Any:
    if not is_async:
        return client.get(path, headers=headers)
    async_client = AsyncClient()
    async_client.cookies = client.cookies

    async def go() -> Any:
        return await async_client.get(path, headers=headers)

    return async_to_sync(go)()


PRIVATE = [("/private/{pk}/", False), ("/private-async/{pk}/", True)]


@pytest.mark.urls("tests.urls_hostile")
@pytest.mark.parametrize(("template", "is_async"), PRIVATE)
def test_per_user_pages_never_share_tags(
    people: dict[str, Any], template: str, is_async: bool
) -> None:
    path = template.format(pk=people["article"].pk)
    clients = {
        name: _client(people.get(name)) for name in ("alice", "bob", "anonymous")
    }
    responses = {name: _get(c, path, is_async) for name, c in clients.items()}
    tags = {name: r["ETag"] for name, r in responses.items()}
    assert len(set(tags.values())) == 3, tags
    assert responses["alice"].content == b"private page of alice"
    for name, response in responses.items():
        assert "private" in response["Cache-Control"], name
        assert "Cookie" in response["Vary"], name
    # Another user's tag never validates one's own page.
    for name, client in clients.items():
        for other, tag in tags.items():
            response = _get(client, path, is_async, if_none_match=tag)
            assert response.status_code == (304 if other == name else 200), (
                name,
                other,
            )
            if response.status_code == 200:
                assert response.content.decode().endswith(name)


def _alice_revalidates_after_bob(
    people: dict[str, Any], template: str, is_async: bool
) -> Any:
    """Alice's 304, with Bob's 200 of the same URL in between (headers are remembered per URL)."""
    path = template.format(pk=people["article"].pk)
    alice = _client(people["alice"])
    tag = _get(alice, path, is_async)["ETag"]
    _get(_client(people["bob"]), path, is_async)
    return _get(alice, path, is_async, if_none_match=tag)


@pytest.mark.urls("tests.urls_hostile")
@pytest.mark.parametrize(("template", "is_async"), PRIVATE)
def test_per_user_304_keeps_cache_control_private(
    people: dict[str, Any], template: str, is_async: bool
) -> None:
    response = _alice_revalidates_after_bob(people, template, is_async)
    assert response.status_code == 304
    assert "private" in response["Cache-Control"]
    assert "public" not in response["Cache-Control"]
    assert "Cookie" in response["Vary"]


@pytest.mark.urls("tests.urls_hostile")
@pytest.mark.parametrize(("template", "is_async"), PRIVATE)
def test_per_user_304_never_carries_another_users_headers(
    people: dict[str, Any], template: str, is_async: bool
) -> None:
    response = _alice_revalidates_after_bob(people, template, is_async)
    assert response.status_code == 304
    assert "bob" not in response.get("Content-Location", "")


@pytest.mark.urls("tests.urls_hostile")
def test_per_user_tags_do_not_name_the_user_without_the_server_secret(
    people: dict[str, Any],
) -> None:
    """The user part of a per-user tag is keyed with SECRET_KEY: whoever sees a tag cannot test
    user ids against it (the digest function is public, the key is not)."""
    path = f"/private/{people['article'].pk}/"
    tags = []
    for secret in ("first secret " * 4, "second secret " * 4):
        with override_settings(SECRET_KEY=secret):
            caches[conf.CACHE_ALIAS].clear()
            response = _client(people["alice"]).get(path)
            assert response.content == b"private page of alice"
            tags.append(response["ETag"])
    first, second = tags
    assert first != second
    # The state part (versions and deploy salt) is the same: only the user part is keyed.
    assert first.split(".")[0] == second.split(".")[0]


# No header value is echoed into a response ---------------------------------------------------

MARKER = "<svg/onload=alert(1)>\"'&x-echo-marker"


@pytest.fixture
def api_user(db: None) -> Iterator[dict[str, Any]]:
    caches[conf.CACHE_ALIAS].clear()
    user = User.objects.create_user("demo", password="demo")
    user.user_permissions.add(
        Permission.objects.get(
            codename="change_article", content_type__app_label="blog"
        )
    )
    author = Author.objects.create(name="author")
    article = Article.objects.create(author=author, title="t", body="")
    yield {"blog": ArticleFactory(), "article": article}
    caches[conf.CACHE_ALIAS].clear()


def _serialized(response: Any) -> bytes:
    """Status line, headers and body, as sent."""
    serialized: bytes = response.serialize()
    return serialized


BASIC = "Basic " + base64.b64encode(b"demo:demo").decode()
ECHO_HEADERS = [
    {"If-Match": f'"{MARKER}"'},
    {"If-Match": MARKER},
    {"If-None-Match": "*"},
    {"If-None-Match": f'"{MARKER}", *'},
    {"If-Unmodified-Since": MARKER},
    {"If-Unmodified-Since": "Sun, 31 Dec 2023 00:00:00 GMT", "If-Range": MARKER},
    {"If-Modified-Since": MARKER, "Range": MARKER},
    {},  # no precondition: 428 on the API
]


@pytest.mark.urls("tests.urls_hostile")
@pytest.mark.parametrize(
    "accept", ["application/json", "text/plain", MARKER, "text/html"]
)
@pytest.mark.parametrize("headers", ECHO_HEADERS)
@pytest.mark.parametrize("method", ["GET", "PATCH"])
@pytest.mark.parametrize(
    "path", ["/drop/", "/mw/", "/versioned/{pk}/", "/api/articles/{blog}/"]
)
def test_no_request_header_value_is_echoed(
    api_user: dict[str, Any],
    path: str,
    method: str,
    headers: dict[str, str],
    accept: str,
) -> None:
    url = path.format(pk=api_user["article"].pk, blog=api_user["blog"].pk)
    sent = {
        **headers,
        "Accept": accept,
        "Accept-Language": MARKER,
        "Authorization": BASIC,
        "User-Agent": MARKER,
    }
    middleware = ["django_conditional.middleware.ConditionalGetMiddleware"]
    with override_settings(
        MIDDLEWARE=middleware,
        CONDITIONAL_PRECHECK_UNSAFE=True,
        CONDITIONAL_REQUIRE_PRECONDITION=True,
    ):
        response = Client().generic(
            method, url, json.dumps({"title": "x"}), "application/json", headers=sent
        )
    assert response.status_code < 500
    raw = _serialized(response)
    for fragment in (MARKER, "<svg", "x-echo-marker"):
        assert fragment.encode() not in raw, (response.status_code, raw[:500])


@pytest.mark.urls("tests.urls_hostile")
def test_a_304_repeats_only_the_servers_own_tag(api_user: dict[str, Any]) -> None:
    tag = ETag.from_header_value(Client().get("/drop/")["ETag"])
    header = f'"{MARKER}", W/"{tag.tag}", "{MARKER}2"'
    response = Client().get("/drop/", headers={"If-None-Match": header})
    assert response.status_code == 304
    assert response["ETag"] in {f'"{tag.tag}"', f'W/"{tag.tag}"'}
    assert MARKER.encode() not in _serialized(response)
