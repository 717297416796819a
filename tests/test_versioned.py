"""``@versioned`` on GET/HEAD: validators from versions, 304/412 before the view, one cache round trip."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, Client

from django_conditional import versions
from django_conditional.resources import CollectionOf, ObjectOf
from django_conditional.versioned_views import VersionedSource, versioned
from tests.testapp.models import Article, Author, Comment
from tests.testapp.views import CALLS
from tests.versioned_support import clear_version_cache, count_cache_calls, run_async

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.urls_versioned"),
    pytest.mark.usefixtures("clean_versions"),
]


def aget(path: str, **headers: str):
    return run_async(AsyncClient().get)(path, headers=headers)


def revalidate(client: Client, path: str, **headers: str):
    first = client.get(path, headers=headers)
    assert first.status_code == 200
    return first, client.get(
        path, headers={**headers, "If-None-Match": first.headers["ETag"]}
    )


# ---------------------------------------------------------------------------------------------
# 200, 304, validators


def test_get_has_a_strong_etag_and_vary(client, article):
    response = client.get(f"/articles/{article.pk}/")
    assert response.status_code == 200
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert "Accept" in response.headers["Vary"]
    assert "Accept-Language" in response.headers["Vary"]
    assert response.json()["title"] == "One"


def test_head_has_the_same_etag(client, article):
    get = client.get(f"/articles/{article.pk}/")
    head = client.head(f"/articles/{article.pk}/")
    assert head.status_code == 200
    assert head.headers["ETag"] == get.headers["ETag"]
    again = client.head(
        f"/articles/{article.pk}/", headers={"If-None-Match": get.headers["ETag"]}
    )
    assert again.status_code == 304


def test_304_does_not_run_the_view(client, article):
    first, second = revalidate(client, f"/articles/{article.pk}/")
    assert second.status_code == 304
    assert second.content == b""
    assert second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["Vary"] == "Accept, Accept-Language"
    assert CALLS["article"] == 1


@pytest.mark.parametrize("count", [1, 3, 40])
def test_warm_304_no_query_one_cache_round_trip(
    client, article, count, django_assert_num_queries
):
    path = f"/many/{count}/"
    first = client.get(path)  # warms the version cache (a miss reads the database)
    etag = first.headers["ETag"]
    with django_assert_num_queries(0), count_cache_calls() as cache_calls:
        response = client.get(path, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert cache_calls.round_trips == 1, cache_calls.calls
    assert CALLS["many"] == 1


@pytest.mark.parametrize("count", [1, 3, 40])
def test_warm_304_no_query_one_cache_round_trip_async(
    article, count, django_assert_num_queries
):
    path = f"/async-many/{count}/"
    first = aget(path)
    etag = first.headers["ETag"]
    with django_assert_num_queries(0), count_cache_calls() as cache_calls:
        response = aget(path, **{"If-None-Match": etag})
    assert response.status_code == 304
    assert cache_calls.round_trips == 1, cache_calls.calls
    assert CALLS["amany"] == 1


def test_warm_304_with_three_kinds_of_resources(
    client, article, django_assert_num_queries
):
    path = f"/authors/{article.author_id}/"
    first = client.get(path)
    assert first.json() == {"titles": ["One"]}
    with django_assert_num_queries(0), count_cache_calls() as cache_calls:
        response = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert response.status_code == 304
    assert cache_calls.round_trips == 1
    assert CALLS["author_page"] == 1


def test_304_keeps_the_headers_of_the_200_in_the_same_round_trip(
    client, article, django_assert_num_queries
):
    path = f"/cache-control/{article.pk}/"
    first = client.get(path)
    assert first.headers["Cache-Control"] == "max-age=60"
    with django_assert_num_queries(0), count_cache_calls() as cache_calls:
        response = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert response.status_code == 304
    assert response.headers["Cache-Control"] == "max-age=60"
    assert response.headers["Vary"] == "Accept, Accept-Language"
    assert cache_calls.round_trips == 1


def test_remembered_headers_heal_after_a_cache_flush(client, article):
    path = f"/cache-control/{article.pk}/"
    first = client.get(path)
    clear_version_cache()  # eviction, flush or restart of the cache
    bare = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert bare.status_code == 304
    assert "Cache-Control" not in bare.headers  # nothing to recall, nothing invented
    assert client.get(path).status_code == 200  # the next 200 writes them again
    healed = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert healed.status_code == 304
    assert healed.headers["Cache-Control"] == "max-age=60"


def test_if_modified_since_304_recalls_the_headers_of_the_200(client, article):
    # No If-None-Match: the remembered headers are found by the current validators.
    path = f"/dated-expiring/{article.pk}/"
    first = client.get(path)
    response = client.get(
        path, headers={"If-Modified-Since": first.headers["Last-Modified"]}
    )
    assert response.status_code == 304
    assert response.headers["Cache-Control"] == "max-age=60"
    assert "Expires" in response.headers
    assert response.headers["Vary"] == "Accept, Accept-Language"
    assert CALLS["article_dated_expiring"] == 1


def test_declared_headers_are_on_the_304(client, article):
    first, second = revalidate(client, f"/declared/{article.pk}/")
    assert second.status_code == 304
    assert second.headers["Cache-Control"] == "max-age=5"


def test_cold_cache_still_answers_304_from_the_database(client, article):
    first = client.get(f"/articles/{article.pk}/")
    clear_version_cache()
    response = client.get(
        f"/articles/{article.pk}/", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert response.status_code == 304


def test_async_view_304_and_200(article):
    first = aget(f"/async/{article.pk}/")
    assert first.status_code == 200
    assert first.json()["title"] == "One"
    second = aget(f"/async/{article.pk}/", **{"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 304
    assert CALLS["aarticle"] == 1


def test_async_view_cold_cache_reads_the_database_off_the_event_loop(article):
    # A sync ORM call on the event loop would raise SynchronousOnlyOperation.
    clear_version_cache()
    assert aget(f"/async/{article.pk}/").status_code == 200


def test_async_key_function(article):
    first = aget(f"/async-keys/{article.pk}/")
    second = aget(
        f"/async-keys/{article.pk}/", **{"If-None-Match": first.headers["ETag"]}
    )
    assert second.status_code == 304


def test_if_match_failing_on_get_is_412_without_running_the_view(client, article):
    response = client.get(f"/articles/{article.pk}/", headers={"If-Match": '"nope"'})
    assert response.status_code == 412
    assert response.headers["ETag"]
    assert CALLS["article"] == 0


def test_if_match_star_on_a_deleted_object_is_412(
    client, article, django_capture_on_commit_callbacks
):
    pk = article.pk
    with django_capture_on_commit_callbacks(execute=True):
        article.delete()
    response = client.get(f"/articles/{pk}/", headers={"If-Match": "*"})
    assert response.status_code == 412
    assert "ETag" not in response.headers


def test_deleted_object_never_304(client, article, django_capture_on_commit_callbacks):
    first = client.get(f"/articles/{article.pk}/")
    pk = article.pk
    with django_capture_on_commit_callbacks(execute=True):
        article.delete()
    assert versions.get(versions.object_key(Article, pk)) < 0
    response = client.get(
        f"/articles/{pk}/", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert response.status_code == 404


def test_missing_url_kwarg_is_a_configuration_error(client, article):
    with pytest.raises(ImproperlyConfigured, match="article_pk"):
        client.get(f"/wrong-kwarg/{article.pk}/")


# ---------------------------------------------------------------------------------------------
# The ETag changes with every kind of bump, and only then


def _etag(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return str(response.headers["ETag"])


def test_etag_stable_without_change(client, article):
    assert _etag(client, f"/articles/{article.pk}/") == _etag(
        client, f"/articles/{article.pk}/"
    )


@pytest.mark.parametrize(
    "change",
    [
        "save",
        "update",
        "bump",
        "comment",
        "tag",
    ],
)
def test_etag_changes_after_each_kind_of_bump(
    client, article, change, django_capture_on_commit_callbacks
):
    path = f"/articles/{article.pk}/"
    before = _etag(client, path)
    with django_capture_on_commit_callbacks(execute=True):
        if change == "save":
            article.title = "Two"
            article.save()
        elif change == "update":
            Article.objects.filter(pk=article.pk).update(title="Two")
        elif change == "bump":
            versions.bump(versions.object_key(Article, article.pk))
        elif change == "comment":
            Comment.objects.create(article=article, body="hello")
        else:
            from tests.testapp.models import Tag

            article.tags.add(Tag.objects.create(name="t"))
    after = _etag(client, path)
    assert after != before
    stale = client.get(path, headers={"If-None-Match": before})
    assert stale.status_code == 200


@pytest.mark.parametrize("change", ["article", "comment", "author", "other-author"])
def test_collection_page_etag(
    client, article, change, django_capture_on_commit_callbacks
):
    path = f"/authors/{article.author_id}/"
    before = _etag(client, path)
    with django_capture_on_commit_callbacks(execute=True):
        if change == "article":
            Article.objects.create(author=article.author, title="Two")
        elif change == "comment":
            Comment.objects.create(article=article, body="hello")
        elif change == "author":
            author = article.author
            author.name = "Ada L."
            author.save()
        else:
            other = Author.objects.create(name="Bob")
            Article.objects.create(author=other, title="Bob's")
    after = _etag(client, path)
    if change == "other-author":
        # Another author's article bumps neither this author nor their by_author collection.
        assert after == before
    else:
        assert after != before


def test_rolled_back_change_keeps_the_etag(client, article):
    from django.db import transaction

    path = f"/articles/{article.pk}/"
    before = _etag(client, path)
    with pytest.raises(RuntimeError), transaction.atomic():
        article.title = "Two"
        article.save()
        raise RuntimeError("roll back")
    assert _etag(client, path) == before


def test_deploy_salt_changes_every_etag(client, article, settings):
    path = f"/articles/{article.pk}/"
    before = _etag(client, path)
    settings.CONDITIONAL_DEPLOY_SALT = "another-deploy"
    assert _etag(client, path) != before


# ---------------------------------------------------------------------------------------------
# Negotiation and users never share a tag


def test_accept_language_changes_the_etag(client, article):
    path = f"/articles/{article.pk}/"
    english = client.get(path, headers={"Accept-Language": "en"}).headers["ETag"]
    french = client.get(path, headers={"Accept-Language": "fr"}).headers["ETag"]
    assert english != french
    cross = client.get(
        path, headers={"Accept-Language": "fr", "If-None-Match": english}
    )
    assert cross.status_code == 200
    same = client.get(path, headers={"Accept-Language": "en", "If-None-Match": english})
    assert same.status_code == 304


def test_accept_changes_the_etag(client, article):
    path = f"/articles/{article.pk}/"
    html = client.get(path, headers={"Accept": "text/html"}).headers["ETag"]
    json = client.get(path, headers={"Accept": "application/json"}).headers["ETag"]
    assert html != json


def test_vary_empty_ignores_accept_language(client, article):
    path = f"/plain/{article.pk}/"
    english = client.get(path, headers={"Accept-Language": "en"})
    french = client.get(path, headers={"Accept-Language": "fr"})
    assert english.headers["ETag"] == french.headers["ETag"]
    assert "Vary" not in english.headers


def test_per_user_etags_differ(article):
    ada = User.objects.create_user("ada", password="x")
    bob = User.objects.create_user("bob", password="x")
    path = f"/private/{article.pk}/"
    tags = {}
    for user in (ada, bob, None):
        client = Client()
        if user is not None:
            client.force_login(user)
        response = client.get(path)
        assert response.status_code == 200
        assert "private" in response.headers["Cache-Control"]
        assert "Cookie" in response.headers["Vary"]
        tags[user.username if user else "anonymous"] = response.headers["ETag"]
    assert len(set(tags.values())) == 3
    client = Client()
    client.force_login(bob)
    crossed = client.get(path, headers={"If-None-Match": tags["ada"]})
    assert crossed.status_code == 200
    own = client.get(path, headers={"If-None-Match": tags["bob"]})
    assert own.status_code == 304
    assert "private" in own.headers["Cache-Control"]
    assert "Cookie" in own.headers["Vary"]


def test_per_user_async(article):
    ada = User.objects.create_user("ada", password="x")
    client = AsyncClient()
    client.force_login(ada)
    path = f"/async-private/{article.pk}/"
    first = run_async(client.get)(path)
    anonymous = aget(path)
    assert first.headers["ETag"] != anonymous.headers["ETag"]
    second = run_async(client.get)(
        path, headers={"If-None-Match": first.headers["ETag"]}
    )
    assert second.status_code == 304


@pytest.mark.parametrize(
    "engine",
    [
        "django.contrib.sessions.backends.cache",
        "django.contrib.sessions.backends.cached_db",
        "django.contrib.sessions.backends.signed_cookies",
    ],
)
def test_per_user_304_without_query_on_a_cached_session(
    article, settings, engine, django_assert_num_queries
):
    settings.SESSION_ENGINE = engine
    ada = User.objects.create_user("ada", password="x")
    client = Client()
    client.force_login(ada)
    path = f"/private/{article.pk}/"
    first = client.get(path)
    with django_assert_num_queries(0):
        response = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert response.status_code == 304


def test_per_user_on_the_database_session_costs_one_query(
    article, django_assert_num_queries
):
    ada = User.objects.create_user("ada", password="x")
    client = Client()
    client.force_login(ada)
    path = f"/private/{article.pk}/"
    first = client.get(path)
    with django_assert_num_queries(1):  # the session row; never the user table
        response = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert response.status_code == 304


# ---------------------------------------------------------------------------------------------
# Declarations


def test_resources_need_a_name_for_parameters():
    with pytest.raises(TypeError):
        CollectionOf(Article, author="author_pk")


def test_versioned_needs_resources():
    with pytest.raises(TypeError):
        versioned()


def test_not_a_resource():
    with pytest.raises(TypeError):
        versioned(42)  # type: ignore[arg-type]


def test_model_by_label(rf, article):
    source = VersionedSource(
        [ObjectOf("testapp.Article"), CollectionOf("testapp.Comment")]
    )
    request = rf.get("/")
    assert source.keys(request, (), {"pk": str(article.pk)}) == [
        versions.object_key(Article, article.pk),
        versions.collection_key(Comment),
    ]


def test_keys_come_once_each_in_order(rf, article):
    request = rf.get("/")
    kwargs: dict[str, object] = {"pk": str(article.pk)}
    one = VersionedSource([lambda request, **kwargs: ["b", "a", "b", "a"]])
    assert one.keys(request, (), kwargs) == ["b", "a"]
    several = VersionedSource(
        [CollectionOf(Comment), ObjectOf(Article), CollectionOf("testapp.Comment")]
    )
    expected = [
        versions.collection_key(Comment),
        versions.object_key(Article, article.pk),
    ]
    assert several.keys(request, (), kwargs) == expected
    assert several.keys(request, (), kwargs) == expected  # the collection key, kept


def test_key_function_must_return_keys(rf):
    source = VersionedSource([lambda request, **kwargs: 42])
    with pytest.raises(TypeError, match="key"):
        source.keys(rf.get("/"), (), {})


# ---------------------------------------------------------------------------------------------
# The cache fails: answers come from the database, never stale, never a 500


def _broken(*args, **kwargs):
    raise ConnectionError("cache down")


@pytest.mark.parametrize("path", ["/articles/{pk}/", "/async/{pk}/"])
def test_cache_down_answers_from_the_database(
    client, article, path, caplog, django_capture_on_commit_callbacks
):
    from unittest import mock

    from django_conditional import fastcache

    url = path.format(pk=article.pk)
    tag = _etag(client, url)
    with (
        mock.patch.object(fastcache, "get_many", _broken),
        mock.patch.object(fastcache, "aget_many", _broken),
    ):
        send = (
            client.get if path.startswith("/articles") else run_async(AsyncClient().get)
        )
        assert send(url, headers={"If-None-Match": tag}).status_code == 304
        with django_capture_on_commit_callbacks(execute=True):
            Article.objects.filter(pk=article.pk).update(title="Two")
        assert send(url, headers={"If-None-Match": tag}).status_code == 200
    assert "cache get_many failed" in caplog.text


@pytest.mark.redis
def test_real_redis_unreachable_answers_from_the_database(
    client, article, settings, django_capture_on_commit_callbacks
):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"/articles/{article.pk}/"
    tag = _etag(client, url)
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        },
    }
    settings.CONDITIONAL_CACHE_ALIAS = "down"
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    assert aget(f"/async/{article.pk}/", **{"If-None-Match": tag}).status_code == 304
    with django_capture_on_commit_callbacks(execute=True):
        Article.objects.filter(pk=article.pk).update(title="Two")
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 200


def test_user_id_sources(rf):
    from django.contrib.auth.models import AnonymousUser

    from django_conditional.variants import auser_id, user_id

    request = rf.get("/")
    assert user_id(request) == ""  # no session at all
    assert async_to_sync(auser_id)(request) == ""
    request._cached_user = AnonymousUser()
    assert user_id(request) == ""
    loaded = User(pk=7, username="seven")
    request._cached_user = loaded
    assert user_id(request) == "7"
    assert async_to_sync(auser_id)(request) == "7"


def test_resource_reprs_and_key_functions(rf):
    from django_conditional.resources import KeyFunction, as_resources

    assert "ObjectOf(" in repr(ObjectOf(Article))
    assert "CollectionOf(" in repr(CollectionOf(Article, "by_author", author="pk"))

    async def akeys(request):
        return "o:x:1"

    function = KeyFunction(akeys)
    assert "KeyFunction(" in repr(function)
    assert function.keys(rf.get("/"), (), {}) == ["o:x:1"]  # awaited for a sync view
    generated = KeyFunction(lambda request: (key for key in ["a", "b"]))
    assert generated.keys(rf.get("/"), (), {}) == ["a", "b"]
    assert async_to_sync(generated.akeys)(rf.get("/"), (), {}) == ["a", "b"]
    with pytest.raises(TypeError):
        as_resources([])
