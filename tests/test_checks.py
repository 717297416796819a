"""System checks: each id fires on its misconfiguration and only there."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_conditional import checks, redis_checks
from django_conditional.middleware import ConditionalGetMiddleware
from django_conditional.sources import content

MW = "django_conditional.middleware.ConditionalGetMiddleware"
SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
GZIP = "django.middleware.gzip.GZipMiddleware"
DJANGO_CG = "django.middleware.http.ConditionalGetMiddleware"


class OurSubclass(ConditionalGetMiddleware):
    pass


def check_ids(**overrides: Any) -> list[str]:
    """The ids our checks report under ``overrides`` of the settings."""
    with override_settings(**overrides):
        messages = checks.check_settings() + checks.check_middleware()
    return [message.id or "" for message in messages]


def test_default_test_settings_are_clean():
    assert check_ids() == []


def test_well_placed_middleware_is_clean():
    assert check_ids(MIDDLEWARE=[GZIP, SESSION, MW]) == []


@pytest.mark.parametrize(
    "setting",
    [
        {"CONDITIONAL_REQUIRE_PRECONDITION": True},
        {"CONDITIONAL_REQUIRE_PRECONDITION": {"paths": ["/api/"]}},
        {"CONDITIONAL_PRECHECK_UNSAFE": True},
    ],
)
def test_w001_middleware_missing_where_settings_rely_on_it(setting):
    assert check_ids(MIDDLEWARE=[SESSION], **setting) == ["django_conditional.W001"]
    assert check_ids(MIDDLEWARE=[SESSION, MW], **setting) == []


def test_w001_not_raised_when_nothing_relies_on_the_middleware():
    assert check_ids(MIDDLEWARE=[SESSION], CONDITIONAL_REQUIRE_PRECONDITION=None) == []


def test_w002_listed_twice():
    assert check_ids(MIDDLEWARE=[MW, SESSION, MW]) == ["django_conditional.W002"]
    subclass = f"{__name__}.OurSubclass"
    assert check_ids(MIDDLEWARE=[MW, subclass]) == ["django_conditional.W002"]


def test_w003_before_gzip():
    assert check_ids(MIDDLEWARE=[MW, GZIP]) == ["django_conditional.W003"]
    assert check_ids(MIDDLEWARE=[GZIP, MW]) == []


def test_w003_knows_gzip_subclasses():
    coded = "django_conditional.compression.GZipMiddleware"
    assert check_ids(MIDDLEWARE=[MW, coded]) == ["django_conditional.W003"]
    assert check_ids(MIDDLEWARE=[coded, MW]) == []


def test_w004_beside_djangos_own():
    assert check_ids(MIDDLEWARE=[GZIP, DJANGO_CG, MW]) == ["django_conditional.W004"]
    # Django's alone is not ours to judge.
    assert check_ids(MIDDLEWARE=[DJANGO_CG]) == []


def test_unimportable_middleware_is_left_to_django():
    assert check_ids(MIDDLEWARE=["no.such.Middleware", MW]) == []
    assert check_ids(MIDDLEWARE=[None, MW]) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"CONDITIONAL_MAX_LIST_MEMBERS": 0}, "django_conditional.E001"),
        ({"CONDITIONAL_MAX_LIST_MEMBERS": True}, "django_conditional.E001"),
        ({"CONDITIONAL_CACHE_ALIAS": "nowhere"}, "django_conditional.E002"),
        ({"CONDITIONAL_KEY_PREFIX": ""}, "django_conditional.E003"),
        ({"CONDITIONAL_REMEMBER_HEADERS_TIMEOUT": -1}, "django_conditional.E004"),
    ],
)
def test_core_setting_errors(overrides, expected):
    assert check_ids(**overrides) == [expected]


def test_warnings_carry_hints():
    with override_settings(MIDDLEWARE=[MW, GZIP, DJANGO_CG, MW]):
        messages = checks.check_middleware()
    assert [m.id for m in messages] == [
        "django_conditional.W002",
        "django_conditional.W003",
        "django_conditional.W004",
    ]
    assert all(isinstance(m, Warning) and m.hint for m in messages)


@pytest.mark.parametrize("value", ["crc32", "", "MD5"])
def test_e010_unknown_hash(value):
    assert check_ids(CONDITIONAL_HASH=value) == ["django_conditional.E010"]


@pytest.mark.parametrize("value", ["md5", "sha1", "sha256", "blake2b", "xxh3"])
def test_supported_hashes_are_clean(value):
    assert check_ids(CONDITIONAL_HASH=value) == []


def test_e011_xxh3_without_xxhash(monkeypatch):
    monkeypatch.setattr(content, "XXHASH_AVAILABLE", False)
    assert check_ids(CONDITIONAL_HASH="xxh3") == ["django_conditional.E011"]
    assert check_ids(CONDITIONAL_HASH="md5") == []


@pytest.mark.parametrize(
    "value",
    [
        "PUT",
        ["PUT"],
        {"methods": "PUT"},
        {"methods": ["GET"]},
        {"methods": [""]},
        {"paths": "/api/"},
        {"paths": ["("]},
        {"paths": [42]},
        {"method": ["PUT"]},
    ],
)
def test_e012_malformed_428_policy(value):
    assert check_ids(MIDDLEWARE=[MW], CONDITIONAL_REQUIRE_PRECONDITION=value) == [
        "django_conditional.E012"
    ]


@pytest.mark.parametrize(
    "value",
    [
        None,
        False,
        True,
        {},
        {"methods": ["post"]},
        {"paths": [r"^/api/"], "methods": []},
    ],
)
def test_well_formed_428_policies(value):
    assert check_ids(MIDDLEWARE=[MW], CONDITIONAL_REQUIRE_PRECONDITION=value) == []


@pytest.mark.parametrize("value", ["/api/", ["("], [None], 5])
def test_e013_malformed_skip_paths(value):
    assert check_ids(CONDITIONAL_SKIP_PATHS=value) == ["django_conditional.E013"]


def test_e014_precheck_must_be_a_bool():
    assert check_ids(MIDDLEWARE=[MW], CONDITIONAL_PRECHECK_UNSAFE="yes") == [
        "django_conditional.E014"
    ]


def test_errors_are_errors():
    with override_settings(CONDITIONAL_HASH="crc32"):
        (message,) = checks.check_settings()
    assert isinstance(message, Error)
    assert "md5" in (message.hint or "")


def test_checks_are_registered_with_the_check_command():
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()
    with (
        override_settings(CONDITIONAL_HASH="crc32", MIDDLEWARE=[MW, GZIP]),
        pytest.raises(SystemCheckError) as raised,
    ):
        call_command("check", stdout=StringIO(), stderr=StringIO())
    assert "django_conditional.E010" in str(raised.value)
    assert "django_conditional.W003" in str(raised.value)


# W005: Django's GZip (which weakens tags) in front of writes guarded by If-Match.
OUR_GZIP = "django_conditional.compression.GZipMiddleware"


def compression_ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [message.id or "" for message in checks.check_compression()]


def test_w005_djangos_gzip_in_front_of_guarded_views():
    # tests.urls_compression serves a view decorated with django_conditional's @etag.
    ids = compression_ids(MIDDLEWARE=[GZIP, MW], ROOT_URLCONF="tests.urls_compression")
    assert ids == ["django_conditional.W005"]


def test_w005_djangos_gzip_with_the_428_policy():
    ids = compression_ids(
        MIDDLEWARE=[GZIP, MW],
        CONDITIONAL_REQUIRE_PRECONDITION=True,
        ROOT_URLCONF="tests.urls",
    )
    assert ids == ["django_conditional.W005"]


def test_w005_sees_versioned_class_views_through_include():
    ids = compression_ids(MIDDLEWARE=[GZIP], ROOT_URLCONF="example_project.urls")
    assert ids == ["django_conditional.W005"]


def test_w005_not_raised_with_our_gzip_or_without_guarded_views():
    assert (
        compression_ids(
            MIDDLEWARE=[OUR_GZIP, MW], ROOT_URLCONF="tests.urls_compression"
        )
        == []
    )
    assert compression_ids(MIDDLEWARE=[MW], ROOT_URLCONF="tests.urls_compression") == []
    assert compression_ids(MIDDLEWARE=[GZIP, MW], ROOT_URLCONF="tests.urls") == []


def test_w005_broken_urlconf_is_left_to_django():
    assert compression_ids(MIDDLEWARE=[GZIP], ROOT_URLCONF="tests.no_such_urls") == []


REPLICATED = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": ["redis://127.0.0.1:1/0", "redis://127.0.0.1:2/0"],
    }
}


REDIS_BACKENDS = pytest.mark.parametrize(
    "backend",
    ["django.core.cache.backends.redis.RedisCache", "django_redis.cache.RedisCache"],
    ids=["django", "django-redis"],
)


def _replicated(backend: str) -> dict:
    return {"default": {**REPLICATED["default"], "BACKEND": backend}}


@REDIS_BACKENDS
def test_i011_replicas_read_versions_on_the_primary(backend):
    with override_settings(CACHES=_replicated(backend)):
        messages = redis_checks.check_replicas()
    assert [m.id for m in messages] == ["django_conditional.I011"]
    assert "redis://127.0.0.1:1/0" in messages[0].msg


@REDIS_BACKENDS
def test_e015_replicas_without_the_fast_path_are_refused(backend):
    with override_settings(
        CACHES=_replicated(backend), CONDITIONAL_REDIS_FAST_PATH=False
    ):
        messages = redis_checks.check_replicas()
    assert [m.id for m in messages] == ["django_conditional.E015"]


def test_one_server_or_another_backend_needs_no_replica_check():
    assert redis_checks.check_replicas() == []
    single = {"default": {**REPLICATED["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    with override_settings(CACHES=single):
        assert redis_checks.check_replicas() == []


@pytest.mark.parametrize("cluster", [True, False], ids=["cluster", "single"])
def test_w016_a_redis_cluster_node_is_told(tmp_path, cluster):
    from tests.test_store_faults import REDIS_SERVER, Redis, caches_for

    if REDIS_SERVER is None:
        pytest.skip("needs redis-server on the PATH")
    from example_project.serving import free_port

    # The cluster bus port is the port + 10000 unless named: a free one of its own.
    bus = ("--cluster-port", str(free_port()))
    extra = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", *bus)
    server = Redis(tmp_path / "redis", *(extra if cluster else ()))
    server.start()
    try:
        with override_settings(CACHES=caches_for(server.url)):
            messages = redis_checks.check_cluster()
    finally:
        server.stop()
    assert [message.id for message in messages] == (
        ["django_conditional.W016"] if cluster else []
    )


def test_w016_is_silent_when_the_server_is_unreachable():
    from example_project.serving import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
            }
        }
    ):
        assert redis_checks.check_cluster() == []


SENTINEL_CLIENT = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://nowhere/0",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": [("127.0.0.1", 1)],
        },
    }
}


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "cache-api"])
def test_e015_sentinel_client_reads_replicas_off_the_fast_path(fast):
    """django-redis's SentinelClient reads the cache's keys from a replica: versions must take
    the fast path (the master), like several LOCATIONs."""
    with override_settings(CACHES=SENTINEL_CLIENT, CONDITIONAL_REDIS_FAST_PATH=fast):
        messages = redis_checks.check_replicas()
    expected = "django_conditional.I011" if fast else "django_conditional.E015"
    assert [m.id for m in messages] == [expected]
