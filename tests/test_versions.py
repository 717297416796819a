"""The version store: keys, get_many/aget_many, bump, lock, the cache protocol and its failures."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import caches
from django.core.cache.backends.redis import RedisSerializer
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from django_conditional import fastcache, versions
from django_conditional.conf import conf
from django_conditional.models import ResourceVersion
from django_conditional.signals import version_bumped
from django_conditional.store import cache as store_cache
from django_conditional.store import database as store_database
from django_conditional.store import epoch, stamps
from django_conditional.store import keys as key_store
from django_conditional.store import scripts as store_scripts
from tests.testapp.models import Article, Author, Country, Tag


@pytest.fixture(autouse=True)
def _clean_cache():
    caches[conf.CACHE_ALIAS].clear()
    versions.clear_local_state()
    yield
    versions.clear_local_state()


@pytest.fixture
def generic_cache(monkeypatch):
    """Use the cache API even on Django's RedisCache (the protocol every backend gets)."""
    monkeypatch.setattr(store_cache, "monotonic_writer", lambda cache: None)


def cached(key: str):
    """The version the cache holds for ``key`` (or whatever else it holds: a mark, None)."""
    value = caches[conf.CACHE_ALIAS].get(versions.cache_key(key))
    stamp = stamps.decode(value)
    return value if stamp is None else stamp[0]


# ---------------------------------------------------------------------------------------------
# Keys


def test_object_key_int_pk():
    assert versions.object_key(Author, 42) == "o:testapp.author:42"


def test_object_key_from_instance():
    assert versions.object_key(Author(pk=7)) == "o:testapp.author:7"


def test_object_key_text_pk_normalised_by_the_pk_field():
    assert versions.object_key(Author, "42") == versions.object_key(Author, 42)
    tag_id = uuid.uuid4()
    assert versions.object_key(Tag, tag_id.hex) == versions.object_key(Tag, tag_id)
    assert versions.object_key(Tag, str(tag_id)) == f"o:testapp.tag:{tag_id}"


def test_object_key_string_pk_quoted_when_unsafe():
    assert versions.object_key(Country, "fr") == "o:testapp.country:fr"
    key = versions.object_key(Country, "a b:c")
    assert key == "o:testapp.country:a%20b%3Ac"
    assert versions.parse_key(key) == ("object", "testapp.country", "a b:c", "")


def test_object_key_invalid_text_pk_kept():
    assert versions.object_key(Author, "nope") == "o:testapp.author:nope"


def test_object_key_needs_a_pk():
    with pytest.raises(TypeError):
        versions.object_key(Author)
    with pytest.raises(ValueError):
        versions.object_key(Author())


def test_object_key_rejects_non_models():
    with pytest.raises(TypeError):
        versions.object_key(int, 1)


def test_collection_keys():
    assert versions.collection_key(Article) == "c:testapp.article"
    assert (
        versions.collection_key(Article, "by_author", author=7)
        == "c:testapp.article:by_author:author=7"
    )
    assert (
        versions.collection_key(Article, "q", z=1, a="x y")
        == "c:testapp.article:q:a=x%20y,z=1"
    )
    assert versions.collection_key(Article, "recent") == "c:testapp.article:recent"
    with pytest.raises(TypeError):
        versions.collection_key(Article, author=7)


@pytest.mark.django_db(transaction=True)
def test_long_and_unprintable_keys_are_bounded_not_refused():
    long_key = versions.collection_key(Article, "x" * 300)
    assert len(long_key) == versions.MAX_KEY_LENGTH
    assert long_key.startswith("c:testapp.article:xxx")
    assert long_key != versions.collection_key(Article, "x" * 299)
    non_ascii = versions.object_key(Article, "é" * 30)
    assert non_ascii.isascii() and len(non_ascii) <= versions.MAX_KEY_LENGTH
    raw = "my key é " + "y" * 400
    assert versions.cache_key(raw).isascii()
    assert versions.bump(raw) == {
        versions.cache_key(raw)[len(versions.cache_key("")) :]: 1
    }


def test_parse_key():
    assert versions.parse_key("c:testapp.article:by_author:author=7") == (
        "collection",
        "testapp.article",
        "",
        "by_author:author=7",
    )
    assert versions.parse_key("custom") == ("collection", None, "", "custom")


# ---------------------------------------------------------------------------------------------
# Reads and bumps


@pytest.mark.django_db
def test_never_bumped_is_zero():
    assert versions.get_many(["o:testapp.author:1", "c:testapp.author"]) == {
        "o:testapp.author:1": 0,
        "c:testapp.author": 0,
    }
    assert versions.get_many([]) == {}


@pytest.mark.django_db
def test_bump_increments_and_returns_new_versions(django_capture_on_commit_callbacks):
    key = versions.object_key(Author, 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert versions.bump(key) == {key: 1}
    with django_capture_on_commit_callbacks(execute=True):
        assert versions.bump(key, key) == {key: 2}
    assert versions.get(key) == 2
    assert cached(key) == 2
    row = ResourceVersion.objects.get(key=key)
    assert (row.kind, row.object_pk, row.name) == ("object", "1", "")
    assert row.content_type.model_class() is Author
    assert row.exists


@pytest.mark.django_db
def test_bump_deleted_goes_negative_and_back(django_capture_on_commit_callbacks):
    key = versions.object_key(Author, 5)
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(key)
        versions.bump(key, deleted=True)
    assert versions.get(key) == -2
    assert not ResourceVersion.objects.get(key=key).exists
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(key, deleted=True)
    assert versions.get(key) == -3
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(key)
    assert versions.get(key) == 4


@pytest.mark.django_db
def test_new_deleted_key_starts_negative(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert versions.bump("o:testapp.author:9", deleted=True) == {
            "o:testapp.author:9": -1
        }


@pytest.mark.django_db
def test_bump_rows_describe_collections_and_foreign_keys():
    versions.bump(
        versions.collection_key(Article),
        versions.collection_key(Article, "by_author", author=3),
        "site-wide",
    )
    rows = {row.key: row for row in ResourceVersion.objects.all()}
    whole = rows["c:testapp.article"]
    assert (whole.kind, whole.name, whole.content_type.model_class()) == (
        "collection",
        "",
        Article,
    )
    named = rows["c:testapp.article:by_author:author=3"]
    assert named.name == "by_author:author=3"
    custom = rows["site-wide"]
    assert (custom.content_type, custom.name) == (None, "site-wide")
    assert str(custom) == "site-wide @ 1"
    assert custom.get_object() is None


@pytest.mark.django_db
def test_get_object():
    author = Author.objects.create(name="a")
    row = ResourceVersion.objects.get(key=versions.object_key(author))
    assert row.get_object() == author
    versions.bump("o:testapp.author:nope")
    assert ResourceVersion.objects.get(key="o:testapp.author:nope").get_object() is None
    versions.bump("o:nosuch.model:1")
    assert ResourceVersion.objects.get(key="o:nosuch.model:1").get_object() is None
    from django.contrib.contenttypes.models import ContentType

    gone = ContentType.objects.create(app_label="uninstalled", model="gone")
    row = ResourceVersion.objects.create(key="o:uninstalled.gone:1", content_type=gone)
    assert row.get_object() is None  # the model is no longer installed


@pytest.mark.django_db
def test_string_and_uuid_pks_bump(django_capture_on_commit_callbacks):
    tag_id = uuid.uuid4()
    keys = [versions.object_key(Tag, tag_id), versions.object_key(Country, "a b")]
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(*keys)
    assert versions.get_many(keys) == dict.fromkeys(keys, 1)
    assert ResourceVersion.objects.get(key=keys[0]).object_pk == str(tag_id)
    assert ResourceVersion.objects.get(key=keys[1]).object_pk == "a b"


@pytest.mark.django_db
def test_warm_get_many_is_one_cache_call_and_no_query(
    django_capture_on_commit_callbacks, django_assert_num_queries
):
    keys = [versions.object_key(Author, pk) for pk in range(20)]
    keys.append(versions.collection_key(Author))
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(*keys)
    cache = caches[conf.CACHE_ALIAS]
    # The one round trip: Redis MGET on Django's RedisCache, else the cache's get_many.
    spy: Any
    if fastcache.is_fast(cache):
        reader = fastcache._reader(cache)
        assert reader is not None
        spy = mock.patch.object(reader, "mget", wraps=reader.mget)
    else:
        spy = mock.patch.object(cache, "get_many", wraps=cache.get_many)
    with (
        spy as round_trip,
        mock.patch.object(fastcache, "get_many", wraps=fastcache.get_many) as reads,
        django_assert_num_queries(0),
    ):
        assert versions.get_many(keys) == dict.fromkeys(keys, 1)
    assert reads.call_count == 1
    assert round_trip.call_count == 1


@pytest.mark.django_db
def test_warm_aget_many_is_one_cache_call_and_no_query(
    django_capture_on_commit_callbacks, django_assert_num_queries
):
    keys = [versions.object_key(Author, pk) for pk in range(20)]
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(*keys)
    with (
        mock.patch.object(fastcache, "aget_many", wraps=fastcache.aget_many) as reads,
        django_assert_num_queries(0),
    ):
        assert async_to_sync(versions.aget_many)(keys) == dict.fromkeys(keys, 1)
    assert reads.call_count == 1


@pytest.mark.django_db
def test_miss_reads_the_database_once_and_fills_the_cache(
    django_capture_on_commit_callbacks, django_assert_num_queries
):
    keys = [versions.object_key(Author, pk) for pk in range(5)]
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(*keys[:3])
    caches[conf.CACHE_ALIAS].clear()
    with django_assert_num_queries(1):
        assert versions.get_many(keys) == {
            **dict.fromkeys(keys[:3], 1),
            **dict.fromkeys(keys[3:], 0),
        }
    assert [cached(key) for key in keys] == [1, 1, 1, 0, 0]
    with django_assert_num_queries(0):
        versions.get_many(keys)


@pytest.mark.django_db
def test_untrusted_cached_value_is_a_miss(django_assert_num_queries):
    key = versions.object_key(Author, 1)
    caches[conf.CACHE_ALIAS].set(versions.cache_key(key), "garbage")
    with django_assert_num_queries(1):
        assert versions.get(key) == 0


@pytest.mark.django_db
def test_aget_many_warm_and_cold(
    django_capture_on_commit_callbacks, django_assert_num_queries
):
    keys = ["o:testapp.author:1", "o:testapp.author:2"]
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(keys[0])
    caches[conf.CACHE_ALIAS].clear()
    with django_assert_num_queries(1):
        assert async_to_sync(versions.aget_many)(keys) == {keys[0]: 1, keys[1]: 0}
    with django_assert_num_queries(0):
        assert async_to_sync(versions.aget_many)(keys + keys) == {
            keys[0]: 1,
            keys[1]: 0,
        }
    assert async_to_sync(versions.aget_many)([]) == {}


# ---------------------------------------------------------------------------------------------
# Transactions


@pytest.mark.django_db
def test_cache_written_only_on_commit(django_capture_on_commit_callbacks):
    key = versions.object_key(Author, 1)
    assert versions.get(key) == 0  # cached 0
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert versions.bump(key) == {key: 1}
        # Marked pending before the commit: every reader goes to the database meanwhile.
        assert str(cached(key)).startswith("pending")
        assert versions.get(key) == 1  # this transaction's own view
    assert str(cached(key)).startswith("pending")
    for callback in callbacks:
        callback()
    assert cached(key) == 1


@pytest.mark.django_db
def test_rolled_back_bump_leaves_no_trace(django_capture_on_commit_callbacks):
    key = versions.object_key(Author, 1)
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(key)
    received = []

    def receiver(**kwargs):
        received.append(kwargs)

    version_bumped.connect(receiver)
    try:
        with (
            django_capture_on_commit_callbacks(execute=True) as callbacks,
            pytest.raises(RuntimeError),
            transaction.atomic(),
        ):
            versions.bump(key)
            raise RuntimeError
    finally:
        version_bumped.disconnect(receiver)
    assert callbacks == []
    assert received == []
    # The mark stays until CONDITIONAL_PENDING_TIMEOUT: readers read the database meanwhile.
    assert str(cached(key)).startswith("pending")
    assert ResourceVersion.objects.get(key=key).version == 1
    assert versions.get(key) == 1
    assert str(cached(key)).startswith("pending")  # a reader never fills over a mark


@pytest.fixture(params=["configured cache", "own redis-server"])
def any_version_cache(request: pytest.FixtureRequest) -> Any:
    """The suite's cache (the API path on LocMem), then Redis (the script path)."""
    if request.param == "configured cache":
        yield
        return
    from tests.test_store_faults import caches_for

    server = request.getfixturevalue("redis_process")
    with override_settings(CACHES=caches_for(server.url)):
        versions.clear_local_state()
        yield
    versions.clear_local_state()


@pytest.mark.django_db
def test_an_earlier_bumps_late_publication_never_lifts_a_later_bumps_mark(
    any_version_cache, django_capture_on_commit_callbacks
):
    # Two writers of one key: the first commits; the second commits after it and its worker
    # dies before publishing. The first's publication, arriving last, must not replace the
    # second's mark: the cache would hold version 1 over a committed 2 (stale 304s).
    key = versions.object_key(Author, 1)
    assert versions.get(key) == 0
    with django_capture_on_commit_callbacks(execute=False) as first:
        versions.bump(key)
    with django_capture_on_commit_callbacks(execute=False):
        versions.bump(key)  # committed, never published
    for callback in first:
        callback()
    # Still marked (the script), or the database's 2 (the API path reads it after its set).
    assert cached(key) == 2 or str(cached(key)).startswith("pending")
    assert versions.get(key) == 2
    # Its own version, or a later one, replaces the mark.
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(key)
    assert cached(key) == 3


@pytest.mark.django_db
def test_version_bumped_signal(django_capture_on_commit_callbacks):
    received = []

    def receiver(sender, keys, versions, **kwargs):
        received.append((sender, keys, versions))

    version_bumped.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            versions.bump("a", "b")
        assert received == []
        for callback in callbacks:
            callback()
    finally:
        version_bumped.disconnect(receiver)
    assert received == [(ResourceVersion, ("a", "b"), {"a": 1, "b": 1})]


@pytest.mark.django_db
def test_failing_receiver_is_logged_not_raised(
    django_capture_on_commit_callbacks, caplog
):
    def receiver(**kwargs):
        raise ValueError("boom")

    version_bumped.connect(receiver)
    try:
        with (
            caplog.at_level(logging.ERROR, logger="django_conditional"),
            django_capture_on_commit_callbacks(execute=True),
        ):
            versions.bump("a")
    finally:
        version_bumped.disconnect(receiver)
    assert "version_bumped receiver" in caplog.text
    assert cached("a") == 1


@pytest.mark.django_db
def test_reader_fill_never_overwrites_a_newer_bump(django_capture_on_commit_callbacks):
    """A reader that read the database before a bump committed stores with ``add``: it loses."""
    key = "o:testapp.author:1"
    stale = store_database.read_stamps(
        [key]
    )  # the reader's database read, before the bump commits
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(key)
    live = int(versions.cache_key("").split(":")[-2])
    store_cache.fill(caches[conf.CACHE_ALIAS], live, stale)
    assert cached(key) == 1
    assert versions.get(key) == 1


@pytest.mark.django_db
def test_writer_sets_again_when_a_concurrent_bump_moved_the_key(
    generic_cache,
    django_capture_on_commit_callbacks,
):
    """Two bumpers whose cache writes land out of order: the read after the set repairs it."""
    key = "o:testapp.author:1"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        versions.bump(key)  # ours commits version 1...
    # ...another worker commits version 2 and sets it before our callback runs...
    ResourceVersion.objects.filter(key=key).update(version=2)
    cache = caches[conf.CACHE_ALIAS]
    cache.set(versions.cache_key(key), 2)
    with mock.patch.object(cache, "set_many", wraps=cache.set_many) as set_many:
        callbacks[0]()  # ...then our set(1) lands after theirs, and is repaired
    written = [
        {k: stamps.decode(v)[0] for k, v in c.args[0].items()}  # type: ignore[index]
        for c in set_many.call_args_list
    ]
    assert written == [{versions.cache_key(key): 1}, {versions.cache_key(key): 2}]
    assert cached(key) == 2


@pytest.mark.django_db
def test_publish_with_the_database_unreadable_deletes(
    generic_cache, django_capture_on_commit_callbacks, caplog
):
    key = "o:testapp.author:1"
    assert versions.get(key) == 0
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        versions.bump(key)
    with mock.patch.object(store_database, "read_stamps", _raise):
        callbacks[0]()
    assert cached(key) is None
    assert versions.get(key) == 1


@pytest.mark.django_db
def test_writer_gives_up_setting_and_deletes_a_key_that_keeps_moving(
    generic_cache,
    django_capture_on_commit_callbacks,
):
    key = "o:testapp.author:1"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        versions.bump(key)
    counter = iter(range(2, 100))
    with mock.patch.object(
        store_database,
        "read_stamps",
        lambda keys, using=None: {key: (next(counter), 0)},
    ):
        callbacks[0]()
    assert cached(key) is None


# ---------------------------------------------------------------------------------------------
# Cache failures


class Down(ConnectionError):
    pass


def _raise(*args, **kwargs):
    raise Down("cache is down")


@pytest.mark.django_db
def test_cache_down_on_read_uses_the_database(
    django_capture_on_commit_callbacks, caplog
):
    key = versions.object_key(Author, 1)
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(key)
    cache = caches[conf.CACHE_ALIAS]
    with (
        mock.patch.object(fastcache, "get_many", _raise),
        mock.patch.object(fastcache, "aget_many", _raise),
        mock.patch.object(cache, "add", _raise),
        caplog.at_level(logging.WARNING, logger="django_conditional"),
    ):
        assert versions.get_many([key, "x"]) == {key: 1, "x": 0}
        assert async_to_sync(versions.aget_many)([key]) == {key: 1}
    assert "cache get_many failed" in caplog.text
    assert "Down" in caplog.text


@pytest.mark.django_db
def test_cache_failing_fill_is_logged(generic_cache, caplog):
    cache = caches[conf.CACHE_ALIAS]
    with (
        mock.patch.object(cache, "add", _raise),
        caplog.at_level(logging.WARNING, logger="django_conditional"),
    ):
        assert versions.get("k") == 0
    assert "cache epoch failed" in caplog.text or "cache add failed" in caplog.text


@pytest.mark.django_db
def test_cache_down_on_write_never_serves_the_old_value(
    generic_cache, django_capture_on_commit_callbacks, caplog, django_assert_num_queries
):
    key = versions.object_key(Author, 1)
    assert versions.get(key) == 0  # 0 is now cached
    cache = caches[conf.CACHE_ALIAS]
    with (
        mock.patch.object(cache, "set_many", _raise),
        mock.patch.object(cache, "delete_many", _raise),
        caplog.at_level(logging.WARNING, logger="django_conditional"),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            versions.bump(key)
        # The cache still holds 0, but this process knows it cannot trust it.
        assert cached(key) == 0
        assert versions.get(key) == 1
        assert async_to_sync(versions.aget_many)([key]) == {key: 1}
    assert "cache set_many failed" in caplog.text
    assert "cache delete_many failed" in caplog.text
    assert key in versions.untrusted_keys()
    # The cache is back: the next read deletes the untrusted keys, then fills them.
    assert versions.get(key) == 1
    assert not versions.untrusted_keys()
    assert cached(key) == 1
    with django_assert_num_queries(0):
        assert versions.get(key) == 1


@pytest.mark.django_db
def test_repair_failing_keeps_keys_untrusted(generic_cache, caplog):
    store_cache.untrusted.add("k")
    cache = caches[conf.CACHE_ALIAS]
    cache.set(versions.cache_key("k"), 5)
    with (
        mock.patch.object(cache, "delete_many", _raise),
        caplog.at_level(logging.WARNING, logger="django_conditional"),
    ):
        assert versions.get("k") == 0
        assert async_to_sync(versions.aget_many)(["k"]) == {"k": 0}
    assert "k" in versions.untrusted_keys()


@pytest.mark.django_db
def test_cache_set_failing_falls_back_to_delete(
    generic_cache, django_capture_on_commit_callbacks, caplog
):
    key = versions.object_key(Author, 1)
    assert versions.get(key) == 0
    cache = caches[conf.CACHE_ALIAS]
    with (
        mock.patch.object(cache, "set_many", _raise),
        caplog.at_level(logging.WARNING, logger="django_conditional"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        versions.bump(key)
    assert cached(key) is None
    assert not versions.untrusted_keys()
    assert versions.get(key) == 1


@pytest.mark.django_db
def test_version_cache_timeout(
    generic_cache, settings, django_capture_on_commit_callbacks
):
    settings.CONDITIONAL_VERSION_CACHE_TIMEOUT = 60
    cache = caches[conf.CACHE_ALIAS]
    with (
        mock.patch.object(cache, "set_many", wraps=cache.set_many) as set_many,
        django_capture_on_commit_callbacks(execute=True),
    ):
        versions.bump("k")
    assert set_many.call_args.args[1] == 60


@pytest.mark.django_db
def test_cache_alias_and_prefix(settings, django_capture_on_commit_callbacks):
    settings.CACHES = {
        **settings.CACHES,
        "versions": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "versions-test",
        },
    }
    settings.CONDITIONAL_CACHE_ALIAS = "versions"
    settings.CONDITIONAL_KEY_PREFIX = "cv"
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump("k")
    assert versions.cache_key("k").startswith("cv:v3:")
    assert caches["versions"].get(versions.cache_key("k")).split("|")[0] == "1"
    caches["versions"].clear()


@pytest.mark.redis
@pytest.mark.django_db
def test_real_redis_unreachable_falls_back_to_the_database(
    django_capture_on_commit_callbacks, caplog
):
    key = versions.object_key(Author, 1)
    closed = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    with (
        override_settings(CACHES=closed),
        caplog.at_level(logging.WARNING, logger="django_conditional"),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            assert versions.bump(key) == {key: 1}
        assert versions.get_many([key, "o:testapp.author:2"]) == {
            key: 1,
            "o:testapp.author:2": 0,
        }
        assert async_to_sync(versions.aget_many)([key]) == {key: 1}
    assert "cache get_many failed" in caplog.text
    assert "ConnectionError" in caplog.text


def test_no_redis_shortcut_for_other_backends():
    locmem = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    with override_settings(CACHES=locmem):
        assert store_scripts.monotonic_writer(caches["default"]) is None


@pytest.mark.redis
@pytest.mark.django_db
def test_redis_shortcut_reads_what_the_cache_wrote(django_capture_on_commit_callbacks):
    cache = caches[conf.CACHE_ALIAS]
    shortcut = store_scripts.monotonic_writer(cache)
    assert shortcut is not None
    assert (
        store_scripts.monotonic_writer(cache) is shortcut
    )  # one client per cache object
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump("a", "b")
    cache.set(versions.cache_key("c"), "pickled text")
    cache.set(versions.cache_key("d"), True)  # a bool is pickled, not stored as digits
    with mock.patch.object(cache, "get_many", _raise):
        assert versions.get_many(["a", "b", "c", "d"]) == {
            "a": 1,
            "b": 1,
            "c": 0,
            "d": 0,
        }
        assert async_to_sync(versions.aget_many)(["a", "b"]) == {"a": 1, "b": 1}
    # The keys are the cache's own (KEY_PREFIX, VERSION and KEY_FUNCTION applied).
    assert stamps.decode(cache.get(versions.cache_key("a")))[0] == 1  # type: ignore[index]


class Serializer(RedisSerializer):
    """A custom serializer: the shortcut cannot know how it stores values."""


@pytest.mark.redis
def test_redis_custom_serializer_uses_the_cache_api(settings):
    custom = {
        "default": {
            **settings.CACHES["default"],
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "OPTIONS": {"serializer": "tests.test_versions.Serializer"},
        }
    }
    with override_settings(CACHES=custom):
        assert store_scripts.monotonic_writer(caches["default"]) is None


@pytest.mark.redis
@pytest.mark.django_db
def test_redis_writes_never_lower_a_newer_version(django_capture_on_commit_callbacks):
    key = "o:testapp.author:1"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        versions.bump(key)  # ours commits 1...
    # ...a concurrent bump commits 2 and its worker sets it first...
    ResourceVersion.objects.filter(key=key).update(version=2)
    shortcut = store_scripts.monotonic_writer(caches[conf.CACHE_ALIAS])
    assert shortcut is not None
    server = fastcache.server_id(caches[conf.CACHE_ALIAS])
    live = int(versions.cache_key(key).split(":")[-4])
    shortcut.write("publish", server, live, {key: 2}, None)
    callbacks[0]()  # ...our late write of 1 is dropped by Redis itself
    assert cached(key) == 2
    # A reader that read the database before a commit cannot lower it either.
    store_cache.fill(caches[conf.CACHE_ALIAS], live, {key: (1, 0)})
    assert cached(key) == 2
    assert shortcut.write("publish", server, live, {key: -3}, None) == {key: b"-3"}
    assert cached(key) == -3
    # A pending mark keeps the version it replaced: an older publication cannot pass it.
    shortcut.write("mark", server, live, {key: 4}, 60)
    assert cached(key) == "pending:-3:4"
    shortcut.write("publish", server, live, {key: 2}, None)
    assert cached(key) == "pending:-3:4"
    shortcut.write("publish", server, live, {key: 4}, None)
    assert cached(key) == 4
    # Another epoch, or another server, is refused.
    with pytest.raises(store_scripts.EpochMoved):
        shortcut.write("publish", server, live + 1, {key: 9}, None)
    with pytest.raises(store_scripts.EpochMoved):
        shortcut.write("publish", "not-this-server", live, {key: 9}, None)
    assert cached(key) == 4


@pytest.mark.redis
@pytest.mark.django_db
def test_redis_cache_ahead_of_the_database_is_corrected_by_a_bump(
    django_capture_on_commit_callbacks,
):
    """A restored backup (or a test's rolled-back transaction) left the cache ahead."""
    key = "o:testapp.author:1"
    caches[conf.CACHE_ALIAS].set(versions.cache_key(key), 7)
    assert versions.get(key) == 7  # nothing says otherwise until the next bump
    with django_capture_on_commit_callbacks(execute=True):
        assert versions.bump(key) == {key: 1}
    assert cached(key) == 1
    assert versions.get(key) == 1


@pytest.mark.redis
@pytest.mark.django_db
def test_redis_version_cache_timeout(settings, django_capture_on_commit_callbacks):
    cache = caches[conf.CACHE_ALIAS]
    shortcut = store_scripts.monotonic_writer(cache)
    assert shortcut is not None
    settings.CONDITIONAL_VERSION_CACHE_TIMEOUT = 60
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump("a")
    versions.get("b")  # a fill
    for key in ("a", "b"):
        assert 0 < shortcut.client.ttl(cache.make_key(versions.cache_key(key))) <= 60
    settings.CONDITIONAL_VERSION_CACHE_TIMEOUT = None
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump("c")
    assert shortcut.client.ttl(cache.make_key(versions.cache_key("c"))) == -1
    settings.CONDITIONAL_VERSION_CACHE_TIMEOUT = 0  # do not cache
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump("d")
    assert cached("d") is None
    assert versions.get("d") == 1


@pytest.mark.redis
@pytest.mark.django_db
def test_redis_script_failing_falls_back_to_delete(
    django_capture_on_commit_callbacks, caplog
):
    key = "o:testapp.author:1"
    assert versions.get(key) == 0
    shortcut = store_scripts.monotonic_writer(caches[conf.CACHE_ALIAS])
    assert shortcut is not None
    with (
        mock.patch.object(shortcut, "script", _raise),
        caplog.at_level(logging.WARNING, logger="django_conditional"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        versions.bump(key)
    assert cached(key) is None
    assert "cache set_many failed" in caplog.text
    assert versions.get(key) == 1


# ---------------------------------------------------------------------------------------------
# lock() and the portable bump


@pytest.mark.django_db(transaction=True)
def test_lock_outside_atomic_on_a_transactional_db():
    with pytest.raises(transaction.TransactionManagementError):
        versions.lock(["k"])
    with transaction.atomic():
        assert versions.lock([]) == {}


@pytest.mark.django_db
def test_lock_creates_rows_and_reads_the_database():
    versions.bump("b")
    caches[conf.CACHE_ALIAS].set(
        versions.cache_key("b"), 99
    )  # the cache is not consulted
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert versions.lock(["b", "a", "b"]) == {"a": 0, "b": 1}
    assert ResourceVersion.objects.get(key="a").version == 0
    if connection.features.has_select_for_update:
        assert any("FOR UPDATE" in q["sql"] for q in queries.captured_queries)


@pytest.mark.django_db
def test_a_lock_takes_the_rows_reads_and_bumps_use(django_capture_on_commit_callbacks):
    # A key function's key with a space, non-ASCII or over MAX_KEY_LENGTH characters is bounded
    # the same way by every path: the lock must hold the row the bump increments.
    keys = ["has space", "caf\u00e9", "k" * (versions.MAX_KEY_LENGTH + 5)]
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(*keys)
    with transaction.atomic():
        locked = versions.lock(keys)
    bounded = {key: key_store.bounded_key(key) for key in keys}
    assert locked == {bounded[key]: 1 for key in keys}
    assert versions.read(keys).versions == locked


@pytest.mark.django_db
def test_a_second_lock_of_rows_seen_is_one_query_and_a_deleted_row_comes_back():
    with transaction.atomic():
        versions.lock(["seen-a", "seen-b"])  # rows made: now known to exist
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        found = versions.lock_stamps(["seen-b", "seen-a"], known_first=True)
    assert found == {"seen-a": (0, 0), "seen-b": (0, 0)}
    locking = [q for q in queries.captured_queries if "resourceversion" in q["sql"]]
    reserve = 1 if connection.vendor == "sqlite" else 0  # SQLite's write lock first
    assert len(locking) == 1 + reserve
    ResourceVersion.objects.filter(key="seen-a").delete()  # by hand
    with pytest.raises(store_database.RowsMissing), transaction.atomic():
        versions.lock_stamps(
            ["seen-a", "seen-b"], known_first=True
        )  # locks held: no insert now
    with transaction.atomic():  # the caller starts again: rows made before any lock
        again = versions.lock_stamps(["seen-a", "seen-b"], known_first=True)
        assert again == {"seen-a": (0, 0), "seen-b": (0, 0)}
        assert ResourceVersion.objects.filter(key="seen-a").exists()


@pytest.mark.django_db
def test_portable_bump_path(monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(store_database, "uses_upsert", lambda db: False)
    with django_capture_on_commit_callbacks(execute=True):
        assert versions.bump("a", "b") == {"a": 1, "b": 1}
        assert versions.bump("a", deleted=True) == {"a": -2}
        assert versions.bump("c", deleted=True) == {"c": -1}
        assert versions.bump("a", "c") == {"a": 3, "c": 2}
    assert versions.get_many(["a", "b", "c"]) == {"a": 3, "b": 1, "c": 2}


@pytest.mark.django_db
def test_portable_bump_retries_a_lost_insert_race(monkeypatch):
    """A concurrent transaction inserts the row between our UPDATE and our INSERT."""
    monkeypatch.setattr(store_database, "uses_upsert", lambda db: False)
    real_defaults = store_database.row_defaults
    raced: list[str] = []

    def defaults_then_concurrent_insert(key):
        if not raced:
            raced.append(key)
            ResourceVersion.objects.bulk_create([ResourceVersion(key=key, version=4)])
        return real_defaults(key)

    monkeypatch.setattr(store_database, "row_defaults", defaults_then_concurrent_insert)
    assert versions.bump("k") == {"k": 5}
    assert raced == ["k"]


def test_uses_upsert_by_vendor():
    with mock.patch.object(connection, "vendor", "postgresql"):
        assert store_database.uses_upsert("default")
    with mock.patch.object(connection, "vendor", "mysql"):
        assert not store_database.uses_upsert("default")


@pytest.mark.django_db
def test_bump_nothing():
    assert versions.bump() == {}


@pytest.mark.django_db
def test_bump_chunks_many_keys(django_capture_on_commit_callbacks):
    keys = [f"k{i}" for i in range(1203)]
    with django_capture_on_commit_callbacks(execute=True):
        values = versions.bump(*keys)
    assert values == dict.fromkeys(keys, 1)
    assert versions.get_many(keys) == dict.fromkeys(keys, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_bumps_are_atomic():
    """Eight threads bump one key five times each: the database and the cache end at 40."""
    key = "o:testapp.author:1"
    errors = []

    def worker():
        try:
            for _ in range(5):
                versions.bump(key)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert ResourceVersion.objects.get(key=key).version == 40
    assert cached(key) == 40


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_no_reader_sees_a_version_older_than_a_finished_bump():
    """Writers bump one key while readers read it: once a bump has returned, every read that
    starts afterwards sees at least its version (what a 304 needs), on every thread."""
    key = "o:testapp.author:1"
    lock = threading.Lock()
    published = [0]  # the largest version a finished bump returned
    stale: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def writer():
        try:
            for _ in range(40):
                value = versions.bump(key)[key]
                with lock:
                    published[0] = max(published[0], value)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def reader():
        try:
            for _ in range(3000):
                if done.is_set():
                    break
                with lock:
                    floor = published[0]
                seen = versions.get_many([key])[key]
                if seen < floor:
                    stale.append((seen, floor))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    writers = [threading.Thread(target=writer) for _ in range(4)]
    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    done.set()
    for thread in readers:
        thread.join(timeout=120)
    assert errors == []
    assert stale == []
    assert published[0] == 160
    assert versions.get(key) == 160
    assert cached(key) == 160


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_bumps_in_opposite_orders_do_not_deadlock():
    """Two transactions bump the same keys given in opposite orders, many times over."""
    keys = [f"k{i}" for i in range(6)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(order):
        try:
            barrier.wait(timeout=30)
            for _ in range(30):
                with transaction.atomic():
                    versions.bump(*order)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(keys,)),
        threading.Thread(target=worker, args=(list(reversed(keys)),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert versions.get_many(keys) == dict.fromkeys(keys, 60)


@pytest.mark.django_db(transaction=True)
def test_a_new_processs_first_read_asks_the_cache_again_not_the_database(
    django_assert_num_queries,
):
    # Issue 16: a process that believes no epoch yet (a new worker) learns the live one from
    # the epoch key its read fetched, and reads again: no query when the versions are cached.
    versions.bump("first-read:1")
    assert versions.read(["first-read:1"]).versions == {"first-read:1": 1}
    epoch.forget()
    with django_assert_num_queries(0):
        assert versions.read(["first-read:1"]).versions == {"first-read:1": 1}
    epoch.forget()
    with django_assert_num_queries(0):
        found = async_to_sync(versions.aread)(["first-read:1"])
    assert found.versions == {"first-read:1": 1}
    # No epoch in the cache (a flush): the database answers, as before.
    caches[conf.CACHE_ALIAS].clear()
    epoch.forget()
    with django_assert_num_queries(1):
        assert versions.read(["first-read:1"]).versions == {"first-read:1": 1}
