"""System checks for misconfiguration, with stable ids ``django_conditional.E0xx`` / ``W0xx``."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.middleware.gzip import GZipMiddleware
from django.middleware.http import (
    ConditionalGetMiddleware as DjangoConditionalGetMiddleware,
)
from django.utils.module_loading import import_string

from django_conditional.conf import PreconditionPolicy, compile_paths, conf
from django_conditional.middleware import ConditionalGetMiddleware
from django_conditional.sources import content

MIDDLEWARE_PATH = "django_conditional.middleware.ConditionalGetMiddleware"


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_settings(
    app_configs: Sequence[object] | None = None, **kwargs: object
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if not _is_positive_int(conf.MAX_LIST_MEMBERS):
        errors.append(
            Error(
                "CONDITIONAL_MAX_LIST_MEMBERS must be a positive integer.",
                id="django_conditional.E001",
            )
        )
    if conf.CACHE_ALIAS not in settings.CACHES:
        errors.append(
            Error(
                f"CONDITIONAL_CACHE_ALIAS names {conf.CACHE_ALIAS!r}, which is not in CACHES.",
                hint="Set it to one of the aliases of the CACHES setting.",
                id="django_conditional.E002",
            )
        )
    if not isinstance(conf.KEY_PREFIX, str) or not conf.KEY_PREFIX:
        errors.append(
            Error(
                "CONDITIONAL_KEY_PREFIX must be a non-empty string.",
                id="django_conditional.E003",
            )
        )
    if not _is_positive_int(conf.REMEMBER_HEADERS_TIMEOUT):
        errors.append(
            Error(
                "CONDITIONAL_REMEMBER_HEADERS_TIMEOUT must be a positive integer (seconds).",
                id="django_conditional.E004",
            )
        )
    errors.extend(_check_middleware_settings())
    return errors


def _check_middleware_settings() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    hash_name = conf.HASH
    if hash_name not in content.HASH_NAMES:
        errors.append(
            Error(
                f"CONDITIONAL_HASH is {hash_name!r}, which is not a supported hash.",
                hint=f"Choose one of {', '.join(map(repr, content.HASH_NAMES))}.",
                id="django_conditional.E010",
            )
        )
    elif hash_name in content.XXHASH_HASHERS and not content.XXHASH_AVAILABLE:
        errors.append(
            Error(
                f"CONDITIONAL_HASH is {hash_name!r} but the xxhash package is not installed.",
                hint='Install xxhash, or set CONDITIONAL_HASH = "md5" (or another stdlib hash).',
                id="django_conditional.E011",
            )
        )
    try:
        PreconditionPolicy.parse(
            getattr(settings, "CONDITIONAL_REQUIRE_PRECONDITION", None)
        )
    except ValueError as exc:
        errors.append(
            Error(
                str(exc),
                hint='For example {"methods": ["PUT", "PATCH", "DELETE"], "paths": [r"^/api/"]}, or True.',
                id="django_conditional.E012",
            )
        )
    try:
        compile_paths(
            getattr(settings, "CONDITIONAL_SKIP_PATHS", ()), "CONDITIONAL_SKIP_PATHS"
        )
    except ValueError as exc:
        errors.append(
            Error(
                str(exc),
                hint='For example [r"^/media/", "/downloads/"] (matched at the start of the path).',
                id="django_conditional.E013",
            )
        )
    if not isinstance(conf.PRECHECK_UNSAFE, bool):
        errors.append(
            Error(
                "CONDITIONAL_PRECHECK_UNSAFE must be True or False.",
                id="django_conditional.E014",
            )
        )
    return errors


def _is_subclass(entry: object, cls: type) -> bool:
    if not isinstance(entry, str):
        return False
    try:
        imported = import_string(entry)
    except ImportError:
        return (
            False  # Django reports a middleware that does not import when it loads it.
        )
    return isinstance(imported, type) and issubclass(imported, cls)


def check_middleware(
    app_configs: Sequence[object] | None = None, **kwargs: object
) -> list[CheckMessage]:
    """Our middleware: present when settings rely on it, once, inside GZip, not beside Django's."""
    entries = list(getattr(settings, "MIDDLEWARE", None) or [])
    ours = [
        i for i, e in enumerate(entries) if _is_subclass(e, ConditionalGetMiddleware)
    ]
    messages: list[CheckMessage] = []
    if not ours:
        policy = getattr(settings, "CONDITIONAL_REQUIRE_PRECONDITION", None)
        if policy not in (None, False) or getattr(
            settings, "CONDITIONAL_PRECHECK_UNSAFE", False
        ):
            messages.append(
                Warning(
                    f"{MIDDLEWARE_PATH} is not in MIDDLEWARE, but "
                    "CONDITIONAL_REQUIRE_PRECONDITION or CONDITIONAL_PRECHECK_UNSAFE relies on it.",
                    hint="Add it to MIDDLEWARE after GZipMiddleware and SessionMiddleware; "
                    "without it only versioned views apply the 428 policy.",
                    id="django_conditional.W001",
                )
            )
        return messages
    if len(ours) > 1:
        messages.append(
            Warning(
                f"{MIDDLEWARE_PATH} is listed {len(ours)} times in MIDDLEWARE.",
                hint="Keep one entry: each copy hashes every body again.",
                id="django_conditional.W002",
            )
        )
    gzip = [i for i, e in enumerate(entries) if _is_subclass(e, GZipMiddleware)]
    if gzip and ours[0] < gzip[-1]:
        messages.append(
            Warning(
                f"{MIDDLEWARE_PATH} is before GZipMiddleware in MIDDLEWARE.",
                hint="Move it after GZipMiddleware, as Django documents for its own "
                "ConditionalGetMiddleware: placed before, it hashes the compressed body, which "
                "changes on every response (GZip adds random bytes), so no 304 is ever sent.",
                id="django_conditional.W003",
            )
        )
    if any(
        _is_subclass(e, DjangoConditionalGetMiddleware)
        and not _is_subclass(e, ConditionalGetMiddleware)
        for e in entries
    ):
        messages.append(
            Warning(
                f"{MIDDLEWARE_PATH} is used beside django.middleware.http.ConditionalGetMiddleware.",
                hint="Remove Django's: this one replaces it, and Django's hashes every body again with md5.",
                id="django_conditional.W004",
            )
        )
    return messages


def _guarded_views() -> bool:
    """Whether any URL pattern serves a view whose preconditions this app evaluates."""
    from django.urls import URLResolver, get_resolver

    from django_conditional.mixins import VersionedMixin

    try:
        patterns = list(get_resolver().url_patterns)
    except Exception:  # a broken URLconf is reported by Django's own checks
        return False
    while patterns:
        pattern = patterns.pop()
        if isinstance(pattern, URLResolver):
            patterns.extend(pattern.url_patterns)
            continue
        callback = getattr(pattern, "callback", None)
        view_class = getattr(callback, "view_class", None)
        if getattr(callback, "conditional_guarded", False) or (
            isinstance(view_class, type) and issubclass(view_class, VersionedMixin)
        ):
            return True
    return False


def check_compression(
    app_configs: Sequence[object] | None = None, **kwargs: object
) -> list[CheckMessage]:
    """W005: Django's GZipMiddleware weakens strong tags, so If-Match on them always fails."""
    from django_conditional.compression import GZipMiddleware as CodingGZipMiddleware

    entries = list(getattr(settings, "MIDDLEWARE", None) or [])
    weakening = [
        entry
        for entry in entries
        if _is_subclass(entry, GZipMiddleware)
        and not _is_subclass(entry, CodingGZipMiddleware)
    ]
    if not weakening:
        return []
    policy = getattr(settings, "CONDITIONAL_REQUIRE_PRECONDITION", None)
    if policy in (None, False) and not _guarded_views():
        return []
    return [
        Warning(
            f'{weakening[0]} turns strong ETags into weak ones (W/"...") on compressed '
            "responses, and If-Match never matches a weak tag: writes guarded by If-Match "
            "fail with 412 for clients that read through it.",
            hint="Use django_conditional.compression.GZipMiddleware in its place: it keeps "
            'the tag strong and marks the coding ("v3-gzip"), which If-Match recognises.',
            id="django_conditional.W005",
        )
    ]


# Cache backends whose content one process (or one host) does not share with the others.
_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": (
        "is local to each process: a version bumped in one worker stays stale in the others, "
        "which then answer 304 to validators that are no longer current."
    ),
    "django.core.cache.backends.filebased.FileBasedCache": (
        "is shared only by processes on one host that use the same directory: workers on other "
        "hosts keep stale versions and answer 304 to validators that are no longer current."
    ),
    "django.core.cache.backends.dummy.DummyCache": (
        "stores nothing: every version is read from the database, so no 304 is free."
    ),
}


def check_shared_cache(
    app_configs: Sequence[object] | None = None, **kwargs: object
) -> list[CheckMessage]:
    """W010: the version cache must be shared by every worker (Redis, Memcached, database)."""
    alias = conf.CACHE_ALIAS
    backend = settings.CACHES.get(alias, {}).get("BACKEND", "")
    for path, problem in _LOCAL_CACHES.items():
        if _is_subclass(backend, import_string(path)):
            return [
                Warning(
                    f"CONDITIONAL_CACHE_ALIAS {alias!r} uses {backend}, which {problem}",
                    hint=(
                        "Use a cache every worker shares (Redis, Memcached or the database "
                        "cache). A single-process deployment (runserver, one worker) may "
                        "silence this with SILENCED_SYSTEM_CHECKS = "
                        "['django_conditional.W010']."
                    ),
                    id="django_conditional.W010",
                )
            ]
    return []


def register_checks() -> None:
    from django_conditional.redis_checks import check_cluster, check_replicas
    from django_conditional.viewchecks import check_versioned_views

    register("django_conditional", Tags.urls)(check_versioned_views)
    register("django_conditional", Tags.caches)(check_settings)
    register("django_conditional")(check_middleware)
    register("django_conditional")(check_compression)
    register(Tags.caches)(check_shared_cache)
    register("django_conditional", Tags.caches)(check_replicas)
    register("django_conditional", Tags.caches, deploy=True)(check_cluster)
