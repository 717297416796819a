"""View decorators: drop-in ``condition``, ``etag`` and ``last_modified``, on sync and async views.

Same signatures and calling conventions as ``django.views.decorators.http``; where Django departs
from RFC 9110 these follow the RFC (``If-Match: *`` and ``If-None-Match: *`` on a resource that
exists without an ETag, ``If-Unmodified-Since`` on a resource with no date, 304s that keep the
headers the view sets). Validators are computed, and preconditions evaluated, before the view runs.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache, wraps
from inspect import isawaitable
from typing import Any, TypeVar, cast

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_cache_control, patch_vary_headers

from django_conditional import fastcache, remembered, versions, writes
from django_conditional.conf import conf
from django_conditional.evaluation import answer, evaluate_request, has_preconditions
from django_conditional.httpdate import format_http_date
from django_conditional.preconditions import (
    SAFE_METHODS,
    Evaluation,
    Outcome,
    parse_entity_tags,
)
from django_conditional.resources import (
    Resource,
    aresolve_keys,
    as_resources,
    resolve_keys,
)
from django_conditional.sources.versions import version_tag
from django_conditional.validators import ETag, Validators, to_utc

logger = logging.getLogger("django_conditional")

_View = TypeVar("_View", bound=Callable[..., Any])
ValidatorFunc = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A view's current validators, and the headers its 200 carries when the source knows them.

    ``remembered_headers`` None means "not fetched yet": a 304 then recalls them. ``base_headers``
    go on every early answer, under the remembered ones (the source's own ``Vary``, ``private``).
    """

    validators: Validators
    remembered_headers: Mapping[str, str] | None = None
    base_headers: Mapping[str, str] = field(default_factory=dict)


class ValidatorSource:
    """Where a decorated view's validators come from. Subclasses give ``resolve`` (and ``aresolve``)."""

    def resolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Resolved:
        raise NotImplementedError

    async def aresolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Resolved:
        return await sync_to_async(self.resolve)(request, args, kwargs)

    def finish(
        self, request: HttpRequest, response: HttpResponseBase, resolved: Resolved
    ) -> None:
        """Stamp the validators on a successful GET or HEAD, as Django's ``condition`` does."""
        if request.method in SAFE_METHODS and 200 <= response.status_code < 300:
            validators = resolved.validators
            if validators.last_modified is not None and not response.has_header(
                "Last-Modified"
            ):
                response.headers["Last-Modified"] = format_http_date(
                    validators.last_modified
                )
            if validators.etag is not None:
                response.headers.setdefault("ETag", str(validators.etag))


def _call(
    func: ValidatorFunc | None,
    request: HttpRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if func is None:
        return None
    result = func(request, *args, **kwargs)
    if isawaitable(result):
        # An async validator function on a sync view: run it to completion.
        return async_to_sync(_await)(result)
    return result


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


async def _acall(
    func: ValidatorFunc | None,
    request: HttpRequest,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    if func is None:
        return None
    if iscoroutinefunction(func):
        return await func(request, *args, **kwargs)
    # A sync function may use the ORM: never call it from the event loop.
    result = await sync_to_async(func)(request, *args, **kwargs)
    return await result if isawaitable(result) else result


def _validators(etag: Any, last_modified: Any) -> Validators:
    return Validators.of(
        etag if isinstance(etag, str) and etag else None,
        last_modified if isinstance(last_modified, datetime) else None,
    )


class FunctionSource(ValidatorSource):
    """Validators from Django-style ``etag_func`` and ``last_modified_func`` (sync or async)."""

    def __init__(
        self, etag_func: ValidatorFunc | None, last_modified_func: ValidatorFunc | None
    ):
        self.etag_func = etag_func
        self.last_modified_func = last_modified_func

    def resolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Resolved:
        return Resolved(
            _validators(
                _call(self.etag_func, request, args, kwargs),
                _call(self.last_modified_func, request, args, kwargs),
            )
        )

    async def aresolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Resolved:
        return Resolved(
            _validators(
                await _acall(self.etag_func, request, args, kwargs),
                await _acall(self.last_modified_func, request, args, kwargs),
            )
        )


def _preflight(
    request: HttpRequest, resolved: Resolved
) -> tuple[Evaluation | None, bool]:
    """The evaluation of the request's preconditions (None without any), and whether the
    answer is a 304 that still needs the remembered headers of the 200."""
    if not has_preconditions(request):
        return None, False
    evaluation = evaluate_request(request, resolved.validators)
    needs_memo = (
        evaluation.outcome is Outcome.NOT_MODIFIED
        and resolved.remembered_headers is None
        and conf.REMEMBER_HEADERS
    )
    return evaluation, needs_memo


def _early_answer(
    request: HttpRequest,
    evaluation: Evaluation,
    resolved: Resolved,
    memo: Mapping[str, str] | None,
    declared: Mapping[str, str],
) -> HttpResponseBase | None:
    # The 304 carries the source's own headers, then the remembered ones, then the declared.
    headers = {**resolved.base_headers, **(memo or {}), **declared}
    return answer(request, evaluation, resolved.validators, headers)


def _guarded(wrapper: Any) -> Any:
    # Preconditions are evaluated before the view runs: the middleware's GET-first check
    # (middleware.GUARDED_VIEW_ATTRIBUTE) has nothing to add; ``wraps`` carries it outwards.
    wrapper.conditional_guarded = True
    return wrapper


def conditional_view(
    view: _View, source: ValidatorSource, *, headers: Mapping[str, str] | None = None
) -> _View:
    """Wrap ``view`` so its preconditions are answered from ``source`` before it runs.

    ``headers`` declares headers of the view's 200 (``Cache-Control``, ``Vary``...) for the 304s
    sent without running it; with ``CONDITIONAL_REMEMBER_HEADERS`` those the view sets are also
    remembered from its last 200. Decorators applied outside this one act on the 304 anyway.
    """
    declared = dict(headers or {})
    identity = remembered.view_id(view)

    def memo_key(request: HttpRequest, resolved: Resolved) -> str:
        token = remembered.validator_token(resolved.validators)
        return remembered.memo_key(identity, request, token)

    def should_remember(request: HttpRequest, response: HttpResponseBase) -> bool:
        return (
            conf.REMEMBER_HEADERS
            and request.method in SAFE_METHODS
            and 200 <= response.status_code < 300
        )

    if iscoroutinefunction(view):

        async def _async_view(
            request: HttpRequest, *args: Any, **kwargs: Any
        ) -> HttpResponseBase:
            resolved = await source.aresolve(request, args, kwargs)
            evaluation, needs_memo = _preflight(request, resolved)
            if evaluation is not None:
                memo = resolved.remembered_headers
                if needs_memo:
                    memo = await remembered.arecall(memo_key(request, resolved))
                early = _early_answer(request, evaluation, resolved, memo, declared)
                if early is not None:
                    return early
            response: HttpResponseBase = await view(request, *args, **kwargs)
            source.finish(request, response, resolved)
            if should_remember(request, response):
                await remembered.aremember(memo_key(request, resolved), response)
            return response

        return cast(_View, _guarded(wraps(view)(_async_view)))

    def _view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        resolved = source.resolve(request, args, kwargs)
        evaluation, needs_memo = _preflight(request, resolved)
        if evaluation is not None:
            memo = resolved.remembered_headers
            if needs_memo:
                memo = remembered.recall(memo_key(request, resolved))
            early = _early_answer(request, evaluation, resolved, memo, declared)
            if early is not None:
                return early
        response: HttpResponseBase = view(request, *args, **kwargs)
        source.finish(request, response, resolved)
        if should_remember(request, response):
            remembered.remember(memo_key(request, resolved), response)
        return response

    return cast(_View, _guarded(wraps(view)(_view)))


def condition(
    etag_func: ValidatorFunc | None = None,
    last_modified_func: ValidatorFunc | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> Callable[[_View], _View]:
    """Drop-in for ``django.views.decorators.http.condition``; functions may be ``async def``."""

    def decorator(view: _View) -> _View:
        return conditional_view(
            view, FunctionSource(etag_func, last_modified_func), headers=headers
        )

    return decorator


def etag(
    etag_func: ValidatorFunc, *, headers: Mapping[str, str] | None = None
) -> Callable[[_View], _View]:
    """Drop-in for ``django.views.decorators.http.etag``."""
    return condition(etag_func=etag_func, headers=headers)


def last_modified(
    last_modified_func: ValidatorFunc, *, headers: Mapping[str, str] | None = None
) -> Callable[[_View], _View]:
    """Drop-in for ``django.views.decorators.http.last_modified``."""
    return condition(last_modified_func=last_modified_func, headers=headers)


# Versioned views ---------------------------------------------------------------------------------
#
# A versioned view names the resources it shows (``resources.Obj``, ``resources.Collection`` or a
# key function); its validators are built from their versions, read from the version store in one
# cache round trip, so a 304 or a 412 costs no database query and the view never runs.
#
# The entity-tag is ``"<state>.<variant>"``: ``<state>`` is ``version_etag`` of the versions
# (with the deploy salt), ``<variant>`` a digest of the request header values the response varies
# on (and of the user, for per-user pages). Two negotiated representations never share a tag
# (§8.8.3), so a 304 is only sent for the exact variant a client holds. Unsafe methods compare the
# ``<state>`` part only (see ``writes``): a client that read the page with ``Accept: text/html``
# can PUT with ``If-Match`` and ``Accept: */*``, and still loses no update.

_STATE_SEPARATOR = "."


def _header_key(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


def _variant_digest(values: Sequence[str]) -> str:
    return _keyed_digest(settings.SECRET_KEY, tuple(values))


@lru_cache(maxsize=4096)
def _keyed_digest(secret: str, values: tuple[str, ...]) -> str:
    # Keyed with SECRET_KEY: whoever sees a per-user tag cannot test user ids against it.
    # Remembered per value set (a pure function): a revalidation hashes nothing again.
    return hashlib.blake2b(
        "\n".join(values).encode(),
        digest_size=6,
        key=hashlib.blake2b(secret.encode(), digest_size=32).digest(),
        person=b"dj-cond-vary",
    ).hexdigest()


def _user_id_from_session(session: Any) -> str:
    from django.contrib.auth import SESSION_KEY

    value = session.get(SESSION_KEY)
    return "" if value is None else str(value)


def _cached_user_id(request: HttpRequest) -> str | None:
    # A user that something already loaded (``request.user`` evaluated) costs nothing more.
    user = getattr(request, "_cached_user", None) or getattr(
        request, "_acached_user", None
    )
    if user is None:
        return None
    return str(user.pk) if user.is_authenticated else ""


def user_id(request: HttpRequest) -> str:
    """The logged-in user's id, read from the session, or ``""`` for an anonymous request.

    This reads the session (one query with the database session engine, none with the cache or
    signed-cookie engines) but never the user table. The session's auth hash is not verified
    here: a session invalidated by a password change still names its user for the ETag, and the
    view itself then renders for an anonymous user under a different tag once the session is flushed.
    """
    cached = _cached_user_id(request)
    if cached is not None:
        return cached
    session = getattr(request, "session", None)
    return "" if session is None else _user_id_from_session(session)


async def auser_id(request: HttpRequest) -> str:
    """``user_id`` for async views: the session is read with its async API (or in a thread)."""
    cached = _cached_user_id(request)
    if cached is not None:
        return cached
    session = getattr(request, "session", None)
    if session is None:
        return ""
    from django.contrib.auth import SESSION_KEY

    aget = getattr(session, "aget", None)  # Django 5.1+
    if aget is not None:
        value = await aget(SESSION_KEY)
    else:  # pragma: no cover - Django < 5.1
        value = await sync_to_async(session.get)(SESSION_KEY)
    return "" if value is None else str(value)


def _cache_keys(keys: list[str], prefix: str, memo_key: str | None) -> list[str]:
    cache_keys = [prefix + key for key in keys]
    if memo_key is not None:
        cache_keys.append(memo_key)
    return cache_keys


def _cache_get_many(cache_keys: list[str]) -> Mapping[str, Any]:
    # One round trip: a single MGET on a kept client for Django's RedisCache (fastcache).
    return fastcache.get_many(caches[conf.CACHE_ALIAS], cache_keys)


async def _acache_get_many(cache_keys: list[str]) -> Mapping[str, Any]:
    # Never Django's ``aget_many``, which makes one call per key on backends without async.
    return await fastcache.aget_many(caches[conf.CACHE_ALIAS], cache_keys)


def _read(keys: list[str], memo_key: str | None) -> tuple[dict[str, int], Any]:
    """The versions of ``keys`` and the remembered headers at ``memo_key``, in ONE cache
    round trip when every version is cached; the version store (database fallback, cache fill)
    answers for the rest. A cache failure is logged and the database answers."""
    prefix = versions._prefix()
    try:
        cached = _cache_get_many(_cache_keys(keys, prefix, memo_key))
    except Exception as exc:
        # Straight to the database: asking the failing cache again would double the timeout.
        logger.warning("django_conditional: cache get_many failed (%s)", exc)
        return versions._read_db(keys), None
    # The store's own split: plain ints it trusts are found, the rest it reads and refills.
    found, missing = versions._split(keys, cached, prefix)
    if missing:
        found.update(versions.get_many(missing))
    return found, cached.get(memo_key) if memo_key is not None else None


async def _aread(keys: list[str], memo_key: str | None) -> tuple[dict[str, int], Any]:
    prefix = versions._prefix()
    try:
        cached = await _acache_get_many(_cache_keys(keys, prefix, memo_key))
    except Exception as exc:
        logger.warning("django_conditional: cache get_many failed (%s)", exc)
        return await sync_to_async(versions._read_db)(keys), None
    found, missing = versions._split(keys, cached, prefix)
    if missing:
        found.update(await versions.aget_many(missing))
    return found, cached.get(memo_key) if memo_key is not None else None


def _split_state(tag: ETag) -> str:
    return tag.tag.rpartition(_STATE_SEPARATOR)[0] or tag.tag


class VersionedSource(ValidatorSource):
    """Validators from the versions of declared resources (see ``versioned``)."""

    def __init__(
        self,
        resources: Sequence[Resource | Callable[..., Any]],
        *,
        vary: Sequence[str] = ("Accept", "Accept-Language"),
        per_user: bool = False,
        last_modified: ValidatorFunc | None = None,
        view_id: str = "",
    ) -> None:
        self.resources = as_resources(resources)
        self.vary = tuple(vary)
        self.per_user = per_user
        self.last_modified = last_modified
        self.view_id = view_id
        self._meta_keys = tuple(_header_key(name) for name in self.vary)
        vary_headers = [*self.vary, "Cookie"] if per_user else list(self.vary)
        self.vary_headers = tuple(dict.fromkeys(vary_headers))
        defaults = {}
        if self.vary_headers:
            defaults["Vary"] = ", ".join(self.vary_headers)
        if per_user:
            defaults["Cache-Control"] = "private"
        self.default_headers: Mapping[str, str] = defaults

    # -- keys, variant, validators (pure) --

    def keys(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> list[str]:
        return resolve_keys(self.resources, request, args, kwargs)

    async def akeys(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> list[str]:
        return await aresolve_keys(self.resources, request, args, kwargs)

    def variant_values(self, request: HttpRequest, user: str | None) -> list[str]:
        meta = request.META
        values = [
            f"{name}:{meta.get(key, '')}"
            for name, key in zip(self.vary, self._meta_keys, strict=True)
        ]
        if user is not None:
            values.append(f"user:{user}")
        return values

    def validators(
        self,
        versions: Mapping[str, int],
        request: HttpRequest,
        user: str | None,
        last_modified: Any = None,
    ) -> Validators:
        """The validators of the representation selected by ``request`` at ``versions``.

        A deleted resource (a negative version) has no current representation: no validators,
        ``exists=False`` (so ``If-Match: *`` fails and ``If-None-Match`` never yields a 304).
        """
        if any(version < 0 for version in versions.values()):
            return Validators(None, None, exists=False)
        state = version_tag(versions)
        values = self.variant_values(request, user)
        tag = f"{state}{_STATE_SEPARATOR}{_variant_digest(values)}" if values else state
        return Validators(
            ETag(tag),
            to_utc(last_modified) if isinstance(last_modified, datetime) else None,
            exists=True,
        )

    def _same_state_as_current(
        self, request: HttpRequest, validators: Validators
    ) -> None:
        # Unsafe methods: an entity-tag naming the current state under another variant stands
        # for the current tag (see the comment above VersionedSource). Rewrites the lists in META.
        current = validators.etag
        if current is None or not (self.vary or self.per_user):
            return
        state = _split_state(current)
        for key in ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH"):
            raw = request.META.get(key)
            if raw is None:
                continue
            tags = parse_entity_tags(raw, conf.MAX_LIST_MEMBERS)
            if tags == "*":
                continue
            request.META[key] = ", ".join(
                str(ETag(current.tag, tag.weak))
                if _STATE_SEPARATOR in tag.tag and _split_state(tag) == state
                else str(tag)
                for tag in tags
            )

    # -- reads --

    def _memo_key(self, request: HttpRequest) -> str | None:
        # The client's If-None-Match tag names the headers to fetch (none without one).
        if conf.REMEMBER_HEADERS and request.method in SAFE_METHODS:
            token = remembered.request_token(request)
            if token is not None:
                return remembered.memo_key(self.view_id, request, token)
        return None

    def _unvalidated(self, exc: DatabaseError) -> Resolved:
        # Neither the cache nor the database gave the versions: no validator, hence no 304 or
        # 412 from a guess; the view answers (a 500 only if it cannot either).
        logger.warning(
            "django_conditional: version lookup failed (%s); no validators", exc
        )
        return Resolved(Validators(None, None, exists=True), dict(self.default_headers))

    def _resolved(
        self, validators: Validators, memo_key: str | None, memo: Any
    ) -> Resolved:
        # Without a client tag the remembered headers were not fetched with the versions: the
        # 304 (to If-Modified-Since) recalls them by the current validators.
        # A memo missing from the cache (evicted, flushed) lets the next 200 write it again.
        remembered_headers = (
            None if memo_key is None else remembered.restore(memo, memo_key)
        )
        return Resolved(validators, remembered_headers, self.default_headers)

    def resolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Resolved:
        keys = self.keys(request, args, kwargs)
        write = writes.current_write()
        if write is not None:
            return self._resolve_locked(request, args, kwargs, keys, write)
        memo_key = self._memo_key(request)
        try:
            found, memo = _read(keys, memo_key)
        except DatabaseError as exc:
            return self._unvalidated(exc)
        user = user_id(request) if self.per_user else None
        last_modified = _call(self.last_modified, request, args, kwargs)
        return self._resolved(
            self.validators(found, request, user, last_modified), memo_key, memo
        )

    async def aresolve(
        self, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Resolved:
        if writes.current_write() is not None:
            # Inside a write's transaction: lock and read in the transaction's thread.
            return await sync_to_async(self.resolve, thread_sensitive=True)(
                request, args, kwargs
            )
        keys = await self.akeys(request, args, kwargs)
        memo_key = self._memo_key(request)
        try:
            found, memo = await _aread(keys, memo_key)
        except DatabaseError as exc:
            return self._unvalidated(exc)
        user = await auser_id(request) if self.per_user else None
        last_modified = await _acall(self.last_modified, request, args, kwargs)
        return self._resolved(
            self.validators(found, request, user, last_modified), memo_key, memo
        )

    def _resolve_locked(
        self,
        request: HttpRequest,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        keys: list[str],
        write: writes.WriteState,
    ) -> Resolved:
        locked = versions.lock(keys)
        write.keys = keys
        write.before = dict(locked)
        user = user_id(request) if self.per_user else None
        last_modified = _call(self.last_modified, request, args, kwargs)
        validators = self.validators(locked, request, user, last_modified)
        self._same_state_as_current(request, validators)
        return Resolved(validators, dict(self.default_headers))

    def after_write(
        self,
        request: HttpRequest,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        response: HttpResponseBase,
        state: writes.WriteState,
    ) -> None:
        """A successful write that changed the versions answers with the new ``ETag``."""
        if not 200 <= response.status_code < 300 or response.has_header("ETag"):
            return
        after = versions.lock(state.keys)
        if after == state.before:
            return
        user = user_id(request) if self.per_user else None
        etag = self.validators(after, request, user).etag
        if etag is not None:
            response.headers["ETag"] = str(etag)

    def finish(
        self, request: HttpRequest, response: HttpResponseBase, resolved: Resolved
    ) -> None:
        super().finish(request, response, resolved)
        if self.vary_headers:
            patch_vary_headers(response, self.vary_headers)
        if self.per_user:
            patch_cache_control(response, private=True)


def versioned_view(
    view: _View,
    resources: Sequence[Resource | Callable[..., Any]],
    *,
    vary: Sequence[str] = ("Accept", "Accept-Language"),
    per_user: bool = False,
    last_modified: ValidatorFunc | None = None,
    require_precondition: writes.RequirePrecondition = None,
    headers: Mapping[str, str] | None = None,
    view_id: str | None = None,
) -> _View:
    """``versioned(...)(view)``, for callers (the mixins) that build it per class or per request."""
    source = VersionedSource(
        resources,
        vary=vary,
        per_user=per_user,
        last_modified=last_modified,
        view_id=view_id or remembered.view_id(view),
    )
    checked = conditional_view(view, source, headers=headers)
    return writes.guard(checked, source, require_precondition)


def versioned(
    *resources: Resource | Callable[..., Any],
    vary: Sequence[str] = ("Accept", "Accept-Language"),
    per_user: bool = False,
    last_modified: ValidatorFunc | None = None,
    require_precondition: writes.RequirePrecondition = None,
    headers: Mapping[str, str] | None = None,
) -> Callable[[_View], _View]:
    """Validate a view against the versions of the resources it shows, before it runs.

    ``@versioned(Obj(Article), Collection(Comment, "by_article", article="pk"))``: GET and HEAD
    get a strong ``ETag`` from the versions and a 304 (or 412) from one cache round trip with
    no database query and without running the view. ``vary`` names the request headers the
    representation depends on (they enter the tag and ``Vary``); ``per_user=True`` adds the
    logged-in user (and ``Vary: Cookie``, ``Cache-Control: private``). ``last_modified`` is an
    optional ``(request, *args, **kwargs) -> datetime`` (it may query). Unsafe methods run
    atomically against the locked versions (``writes``); ``require_precondition`` is the 428
    policy (None: ``CONDITIONAL_REQUIRE_PRECONDITION``; True: PUT, PATCH, DELETE; or methods).
    """
    declared = as_resources(resources)

    def decorator(view: _View) -> _View:
        return versioned_view(
            view,
            declared,
            vary=vary,
            per_user=per_user,
            last_modified=last_modified,
            require_precondition=require_precondition,
            headers=headers,
        )

    return decorator
