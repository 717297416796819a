"""django-redis (``django_redis.cache.RedisCache``): the same one-read fast path and local version
cache as Django's own ``RedisCache``, reached through django-redis's public
``get_redis_connection``, whatever its SERIALIZER and COMPRESSOR; its other clients (herd,
sharded) keep the public cache API. Against a redis-server of the test's own.

The whole suite also runs on django-redis (``REDIS_CACHE_BACKEND=django-redis``, a CI stage)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import caches
from django.test import Client, override_settings

from django_conditional import fastcache, redis_adapter, versions
from django_conditional.store import local
from django_conditional.store import scripts as store_scripts
from example_project.blog.models import Article, Author
from tests.test_store_faults import REDIS_SERVER, Redis

pytest.importorskip("django_redis")
pytestmark = [
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server on the PATH"),
    pytest.mark.urls("example_project.urls"),
]

BACKEND = "django_redis.cache.RedisCache"
KEY = "django-redis:1"


def django_redis_caches(url: str, **options: Any) -> dict[str, Any]:
    options.setdefault("SOCKET_TIMEOUT", 2)
    options.setdefault("SOCKET_CONNECT_TIMEOUT", 2)
    return {"default": {"BACKEND": BACKEND, "LOCATION": url, "OPTIONS": options}}


@pytest.fixture
def on_django_redis(redis_process: Redis) -> Iterator[Redis]:
    with override_settings(CACHES=django_redis_caches(redis_process.url)):
        versions.clear_local_state()
        yield redis_process
    versions.clear_local_state()


def _publish(*keys: str) -> None:
    from django.db import transaction

    with transaction.atomic():
        versions.bump(*keys)


# -- the fast path is taken, through the public API --


def test_default_client_takes_the_fast_path(on_django_redis: Redis) -> None:
    cache = caches["default"]
    described = redis_adapter.backend(cache)
    assert described is not None and described.plain_ints
    assert fastcache.is_fast(cache)
    assert store_scripts.monotonic_writer(cache) is not None
    from django_redis import get_redis_connection

    # The connection it writes on is django-redis's own primary client.
    assert described.primary_client() is get_redis_connection("default", write=True)


@pytest.mark.django_db(transaction=True)
def test_a_version_read_is_one_mget_and_no_query(
    on_django_redis: Redis, django_assert_num_queries: Any
) -> None:
    _publish(KEY)
    reader = fastcache._reader(caches["default"])
    assert reader is not None
    with (
        mock.patch.object(reader, "mget", wraps=reader.mget) as round_trips,
        django_assert_num_queries(0),
    ):
        assert versions.get(KEY) == 1
    assert round_trips.call_count == 1


@pytest.mark.django_db(transaction=True)
def test_async_reads_use_redis_asyncio(on_django_redis: Redis) -> None:
    described = redis_adapter.backend(caches["default"])
    assert described is not None and described.new_async_pool is not None
    _publish(KEY)
    reader = fastcache._reader(caches["default"])
    with mock.patch.object(reader, "mget") as sync_read:
        assert async_to_sync(versions.aget_many)([KEY]) == {KEY: 1}
    sync_read.assert_not_called()


@pytest.mark.parametrize(
    "options",
    [
        {"SERIALIZER": "django_redis.serializers.json.JSONSerializer"},
        {"COMPRESSOR": "django_redis.compressors.zlib.ZlibCompressor"},
        {
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            "COMPRESSOR": "django_redis.compressors.zlib.ZlibCompressor",
            "COMPRESS_MIN_LEN": 1,
        },
    ],
    ids=["json", "zlib", "json+zlib"],
)
@pytest.mark.django_db(transaction=True)
def test_its_serializer_and_compressor_are_handled(
    redis_process: Redis, options: dict[str, Any], django_assert_num_queries: Any
) -> None:
    """The store's values are read whatever the cache's codec: cached (no query) and right,
    and the cache's own values still round-trip through it."""
    with override_settings(CACHES=django_redis_caches(redis_process.url, **options)):
        versions.clear_local_state()
        cache = caches["default"]
        assert fastcache.is_fast(cache)
        _publish(KEY)
        with django_assert_num_queries(0):
            assert versions.get(KEY) == 1
        _publish(KEY)
        with django_assert_num_queries(0):
            assert versions.get(KEY) == 2
        cache.set("user-value", {"a": [1, 2]})
        assert cache.get("user-value") == {"a": [1, 2]}
        assert fastcache.get_many(cache, ["user-value"]) == {
            "user-value": {"a": [1, 2]}
        }


@pytest.mark.django_db(transaction=True)
def test_the_herd_client_keeps_the_public_api(redis_process: Redis) -> None:
    caches_ = django_redis_caches(
        redis_process.url, CLIENT_CLASS="django_redis.client.HerdClient"
    )
    with override_settings(CACHES=caches_):
        versions.clear_local_state()
        cache = caches["default"]
        assert redis_adapter.backend(cache) is None
        assert not fastcache.is_fast(cache)
        _publish(KEY)
        assert versions.get(KEY) == 1
        _publish(KEY)
        assert versions.get(KEY) == 2


# -- pages: 304 without a query, never stale, with the local cache on --


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("local_cache", [False, True], ids=["one-read", "local"])
def test_article_page_revalidates_and_sees_writes(
    redis_process: Redis, local_cache: bool, django_assert_num_queries: Any
) -> None:
    with override_settings(
        CACHES=django_redis_caches(redis_process.url),
        CONDITIONAL_LOCAL_CACHE=local_cache,
        CONDITIONAL_LEASE_SECONDS=0.05,
    ):
        versions.clear_local_state()
        assert local.is_on(caches["default"]) is local_cache
        author = Author.objects.create(name="Ada")
        article = Article.objects.create(
            author=author, title="One", body="b", published=True
        )
        client = Client()
        first = client.get(f"/articles/{article.pk}/")
        assert first.status_code == 200
        tag = first.headers["ETag"]
        client.get(f"/articles/{article.pk}/", headers={"If-None-Match": tag})
        with django_assert_num_queries(0):
            again = client.get(
                f"/articles/{article.pk}/", headers={"If-None-Match": tag}
            )
        assert again.status_code == 304
        article.title = "Two"
        article.save()
        after = client.get(f"/articles/{article.pk}/", headers={"If-None-Match": tag})
        assert after.status_code == 200 and after.headers["ETag"] != tag
        assert b"Two" in after.content


@pytest.mark.django_db(transaction=True)
def test_the_server_identity_names_the_mastership(on_django_redis: Redis) -> None:
    """The epoch key is named by run_id and replication id: a replica promoted later, or this
    server promoted again after a failback, reads another epoch key."""
    identity = fastcache.server_id(caches["default"])
    info = on_django_redis.call("INFO")
    assert identity == f"{info['run_id']}.{info['master_replid']}"
