"""Every ``CONDITIONAL_*`` setting, read in one place.

Values are read once and kept, since the hot path reads several per request (a missing Django
setting costs an AttributeError each time); ``setting_changed`` (``override_settings``, the
``settings`` fixture) clears them, so tests and live reconfiguration still see new values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

_PREFIX = "CONDITIONAL_"
_read: dict[str, object] = {}


def _setting(name: str, default: Any) -> Any:
    try:
        return _read[name]
    except KeyError:
        value = _read[name] = getattr(settings, _PREFIX + name, default)
        return value


def _parsed(name: str, default: Any, parse: Callable[[Any], Any]) -> Any:
    """``parse`` of a setting's value, computed once (until a setting changes)."""
    key = "parsed:" + name
    try:
        return _read[key]
    except KeyError:
        try:
            value = _read[key] = parse(_setting(name, default))
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from exc
        return value


def _forget(*, setting: str, **kwargs: object) -> None:
    if setting.startswith(_PREFIX):
        _read.clear()


setting_changed.connect(_forget, dispatch_uid="django_conditional.conf")


DEFAULT_REQUIRED_METHODS = ("PUT", "PATCH", "DELETE")


def compile_paths(value: object, setting: str) -> tuple[re.Pattern[str], ...]:
    """Regexes (strings or compiled) matched with ``re.match`` at the start of ``request.path_info``.

    A plain prefix such as ``"/admin/"`` is a regex that matches itself, so prefixes work as is.
    Raises ``ValueError`` naming ``setting`` when ``value`` is not a list of valid patterns.
    """
    if isinstance(value, (str, bytes, re.Pattern)) or not isinstance(value, Iterable):
        raise ValueError(f"{setting} must be a list of regular expressions.")
    patterns = []
    for item in value:
        if isinstance(item, re.Pattern) and isinstance(item.pattern, str):
            patterns.append(item)
        elif isinstance(item, str):
            try:
                patterns.append(re.compile(item))
            except re.error as exc:
                raise ValueError(
                    f"{setting}: invalid regular expression {item!r}: {exc}"
                ) from exc
        else:
            raise ValueError(f"{setting}: {item!r} is not a regular expression string.")
    return tuple(patterns)


@dataclass(frozen=True)
class PreconditionPolicy:
    """The 428 policy (RFC 6585 §3) of ``CONDITIONAL_REQUIRE_PRECONDITION``, parsed.

    ``paths`` is None for every path. Read it with ``conf.REQUIRE_PRECONDITION`` (None when off).
    """

    methods: frozenset[str]
    paths: tuple[re.Pattern[str], ...] | None = None

    def applies(self, method: str | None, path: str) -> bool:
        """Whether a ``method`` request to ``path`` (``request.path_info``) must be conditional."""
        if method not in self.methods:
            return False
        return self.paths is None or any(p.match(path) for p in self.paths)

    @classmethod
    def parse(cls, value: object) -> PreconditionPolicy | None:
        """Read the setting's value; ``ValueError`` when malformed (the system check reports it)."""
        name = "CONDITIONAL_REQUIRE_PRECONDITION"
        if value is None or value is False:
            return None
        if value is True:
            return cls(frozenset(DEFAULT_REQUIRED_METHODS))
        if not isinstance(value, dict):
            raise ValueError(
                f"{name} must be None, True or a dict with 'methods' and/or 'paths'."
            )
        unknown = set(value) - {"methods", "paths"}
        if unknown:
            raise ValueError(
                f"{name} has unknown keys: {', '.join(sorted(map(str, unknown)))}."
            )
        methods = value.get("methods", DEFAULT_REQUIRED_METHODS)
        if (
            isinstance(methods, str)
            or not isinstance(methods, Iterable)
            or not all(isinstance(m, str) and m for m in methods)
        ):
            raise ValueError(f"{name}['methods'] must be a list of HTTP method names.")
        upper = frozenset(m.upper() for m in methods)
        safe = upper & {"GET", "HEAD", "OPTIONS", "TRACE"}
        if safe:
            raise ValueError(
                f"{name}['methods'] may only name unsafe methods, not {', '.join(sorted(safe))}."
            )
        paths = value.get("paths")
        return cls(
            upper, None if paths is None else compile_paths(paths, f"{name}['paths']")
        )


class Settings:
    @property
    def MAX_LIST_MEMBERS(self) -> int:
        """How many members of an entity-tag list are read; the rest are ignored (CPU guard)."""
        value: int = _setting("MAX_LIST_MEMBERS", 100)
        return value

    @property
    def CACHE_ALIAS(self) -> str:
        """The cache (``CACHES`` alias) holding resource versions and remembered headers."""
        value: str = _setting("CACHE_ALIAS", "default")
        return value

    @property
    def KEY_PREFIX(self) -> str:
        """Prefix of every cache key this app writes."""
        value: str = _setting("KEY_PREFIX", "conditional")
        return value

    @property
    def REMEMBER_HEADERS(self) -> bool:
        """Remember the headers a view sets on its 200 so a 304 or 412 sent without running it carries them."""
        value: bool = _setting("REMEMBER_HEADERS", True)
        return value

    @property
    def REMEMBER_HEADERS_TIMEOUT(self) -> int:
        """Seconds remembered headers live in the cache."""
        value: int = _setting("REMEMBER_HEADERS_TIMEOUT", 24 * 60 * 60)
        return value

    @property
    def HASH(self) -> str:
        """Hash of the body behind the middleware's content ETags: ``"xxh3"`` (xxh3_128, the
        default, needs ``xxhash``), or a stdlib one: ``"md5"`` (as Django), ``"sha1"``, ``"sha256"``,
        ``"blake2b"`` (128-bit)."""
        value: str = _setting("HASH", "xxh3")
        return value

    @property
    def SKIP_PATHS(self) -> tuple[re.Pattern[str], ...]:
        """Paths the middleware leaves alone: regexes matched at the start of ``request.path_info``
        (``re.match``; a plain prefix such as ``"/admin/"`` works as is). Default: none."""
        value: tuple[re.Pattern[str], ...] = _parsed(
            "SKIP_PATHS", (), lambda v: compile_paths(v, "CONDITIONAL_SKIP_PATHS")
        )
        return value

    @property
    def REQUIRE_PRECONDITION(self) -> PreconditionPolicy | None:
        """The opt-in 428 policy: which unsafe requests must carry ``If-Match`` or ``If-Unmodified-Since``.

        The setting ``CONDITIONAL_REQUIRE_PRECONDITION`` is one of:

        - ``None`` / ``False`` (default): off.
        - ``True``: ``PUT``, ``PATCH`` and ``DELETE`` on every path.
        - a dict ``{"methods": ["PUT", "PATCH", "DELETE", "POST"], "paths": [r"^/api/", "/articles/"]}``:
          ``methods`` (unsafe method names, default ``PUT``, ``PATCH``, ``DELETE``) and ``paths``
          (regexes matched with ``re.match`` at the start of ``request.path_info``; omitted or
          None = every path).

        The middleware answers 428 before the view runs; versioned views read the same policy.
        Returns the parsed :class:`PreconditionPolicy` (None when off); malformed values raise
        ``ImproperlyConfigured`` (and the system check ``django_conditional.E012`` reports them).
        """
        value: PreconditionPolicy | None = _parsed(
            "REQUIRE_PRECONDITION", None, PreconditionPolicy.parse
        )
        return value

    @property
    def PRECHECK_UNSAFE(self) -> bool:
        """Evaluate ``If-Match``, ``If-Unmodified-Since`` and ``If-None-Match`` of an unsafe request
        to an undecorated page against a GET of the same URL run first (on by default: a client that
        sends a precondition asks for it, §13.2.2; not atomic, versioned views are). False: off."""
        value: bool = _setting("PRECHECK_UNSAFE", True)
        return value

    @property
    def VERSION_CACHE_TIMEOUT(self) -> int | None:
        """Seconds a resource version lives in the cache; None (the default) keeps it until the next bump."""
        value: int | None = _setting("VERSION_CACHE_TIMEOUT", None)
        return value

    @property
    def PENDING_TIMEOUT(self) -> int:
        """Seconds a bumped key stays marked pending in the cache if its publication after the
        commit never comes (a failed cache write): meanwhile every worker reads the database."""
        value: int = _setting("PENDING_TIMEOUT", 60)
        return value

    @property
    def REDIS_FAST_PATH(self) -> bool:
        """Read and write versions on Django's ``RedisCache`` through its connection pool directly
        (``redis_adapter``), skipping the client Django builds per call. False: the public API."""
        value: bool = _setting("REDIS_FAST_PATH", True)
        return value

    @property
    def LOCAL_CACHE(self) -> bool:
        """Keep versions read in a process-local copy made coherent by Redis ``CLIENT TRACKING``,
        a lease and a write fence (``store.local``), so most 304s make no round trip. Effective
        only on the Redis fast path (Django's ``RedisCache``, plain TCP or Unix socket); other
        backends read once per request. False: off."""
        value: bool = _setting("LOCAL_CACHE", True)
        return value

    @property
    def LEASE_SECONDS(self) -> float:
        """T of the local cache: a local copy answers only while a reply came back on its tracking
        connection for a command sent less than T ago, and a request that replaced versions a
        local copy may hold (their holder marks) waits T before its response leaves."""
        value: float = _setting("LEASE_SECONDS", 0.05)
        return value

    @property
    def WRITE_FENCE(self) -> bool:
        """The writer's wait of ``LEASE_SECONDS``. Only for measuring what it prevents: without
        it, a local copy may answer a stale 304 after a write's response (``docs/local-cache.md``)."""
        value: bool = _setting("WRITE_FENCE", True)
        return value

    @property
    def DEPLOY_SALT(self) -> str | None:
        """Mixed into every version-based ETag; change it on each deploy. None (the default) derives
        one from the ``CONDITIONAL_DEPLOY_SALT`` environment variable, else from the code and templates."""
        value: str | None = _setting("DEPLOY_SALT", None)
        return value

    @property
    def ACCEPT_WEAKENED_IF_MATCH(self) -> bool:
        """Let ``If-Match`` on a versioned view take ``W/"x"`` for its current ``"x"``: the tag a
        proxy that compresses (nginx ``gzip_proxied``) weakened. Off by default: RFC 9110 §13.1.1
        asks for the strong comparison (see docs/deployment.md for why a version tag keeps
        lost-update protection). Off, such a 412 says why in its problem details."""
        value: bool = _setting("ACCEPT_WEAKENED_IF_MATCH", False)
        return value

    @property
    def SURROGATE_KEY_HEADERS(self) -> tuple[str, ...]:
        """Response headers listing a versioned response's version keys as cache tags, for
        purges: ``["Surrogate-Key"]`` (Fastly), ``["Cache-Tag"]`` (Cloudflare), ``["xkey"]``
        (Varnish xkey). Default: none (``django_conditional.purge.tags`` says how keys fit)."""
        value: tuple[str, ...] = _parsed(
            "SURROGATE_KEY_HEADERS",
            (),
            lambda v: (v,) if isinstance(v, str) else tuple(v or ()),
        )
        return value

    @property
    def PURGE_BACKEND(self) -> str | None:
        """Dotted path of the purge backend called after a commit with the tags of the keys it
        bumped (``django_conditional.purge``), e.g. ``"django_conditional.purge.varnish.VarnishPurge"``.
        None (the default): no purges."""
        value: str | None = _setting("PURGE_BACKEND", None)
        return value

    @property
    def PURGE_OPTIONS(self) -> dict[str, Any]:
        """Keyword arguments of the purge backend's class (``{"urls": [...]}`` for Varnish)."""
        value: dict[str, Any] = _setting("PURGE_OPTIONS", {})
        return value

    @property
    def PURGE_TIMEOUT(self) -> float:
        """Seconds a commit waits for its purge; a slower one is logged and left to finish."""
        value: float = _setting("PURGE_TIMEOUT", 5.0)
        return value

    @property
    def SERVER_TIMING(self) -> bool:
        """Add ``Server-Timing: cond;desc="304 If-None-Match";dur=...`` to every response a
        conditional decision answered (``django_conditional.observe``). Off by default."""
        value: bool = _setting("SERVER_TIMING", False)
        return value

    @property
    def SERVER_TIMING_ORIGINS(self) -> tuple[str, ...]:
        """Origins (``"https://app.example"``, or ``"*"``) whose requests also get ``Server-Timing``;
        by default only requests from this site do (never a cross-origin fetch's response)."""
        value: tuple[str, ...] = _parsed(
            "SERVER_TIMING_ORIGINS",
            (),
            lambda v: (v,) if isinstance(v, str) else tuple(v or ()),
        )
        return value

    @property
    def METRICS(self) -> bool:
        """Count decisions in ``conditional_outcomes_total`` (prometheus_client) and set
        ``conditional.*`` attributes on the current OpenTelemetry span, for whichever of the two
        is installed. Off by default."""
        value: bool = _setting("METRICS", False)
        return value

    @property
    def STOCK_GZIP(self) -> bool:
        """Whether Django's own ``GZipMiddleware`` is in ``MIDDLEWARE`` (it compresses a 206 as if
        it were the whole body, so the middleware serves no range to clients it would compress for)."""
        middleware = getattr(settings, "MIDDLEWARE", None) or ()
        return "django.middleware.gzip.GZipMiddleware" in middleware


conf = Settings()
