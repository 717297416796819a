"""Validators of a DRF representation: the core's ``VersionedSource``, told what DRF negotiated.

The entity-tag stays ``"<state>.<variant>"`` (see ``django_conditional.versioned_views``). For DRF the
variant is what selects the representation once ``initial()`` has run: the accepted renderer and
media type (``Accept`` or ``?format=``), ``request.version``, the active language, the query
string (page, filters, ordering; the format override is already the renderer), extra headers a
view names, and for per-user views the user DRF authenticated (session, Basic, token...).
Refusals are raised as DRF exceptions (``exceptions``), so DRF's exception handling renders them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_cache_control
from django.utils.translation import get_language
from rest_framework.settings import api_settings

from django_conditional.flow import Args, Kwargs, Resolved
from django_conditional.responses import weakened_tag
from django_conditional.validators import Validators
from django_conditional.variants import meta_key
from django_conditional.versioned_views import Declared, ValidatorFunc, VersionedSource
from django_conditional.versions import Stamp

from .exceptions import PreconditionFailed, PreconditionRequired

__all__ = ["APISource", "CreateSource", "drf_user_id"]

# The headers a DRF representation depends on besides the URL: content negotiation and language.
BASE_VARY = ("Accept", "Accept-Language")
# Per-user representations: DRF authenticates from either.
USER_VARY = ("Authorization", "Cookie")


def drf_user_id(request: object) -> str:
    """The id of the user DRF authenticated for ``request``, or ``""`` for an anonymous one."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return str(user.pk)


def query_token(request: Any) -> str:
    """The query string, sorted, without the format override (the renderer stands for it)."""
    params = getattr(request, "query_params", None) or request.GET
    skip = api_settings.URL_FORMAT_OVERRIDE
    pairs = sorted(
        (key, value)
        for key, values in params.lists()
        for value in values
        if key != skip
    )
    return urlencode(pairs)


class APISource(VersionedSource):
    """A ``VersionedSource`` whose variant is DRF's negotiated representation.

    ``query=False`` leaves the query string out: the tag of an item as its own URL shows it
    (``ETagField``, a created object's ``ETag``).
    """

    def __init__(
        self,
        resources: Declared,
        *,
        vary: Sequence[str] = (),
        per_user: bool = False,
        last_modified: ValidatorFunc | None = None,
        view_id: str = "",
        query: bool = True,
    ) -> None:
        headers = [*BASE_VARY, *vary, *(USER_VARY if per_user else ())]
        # The user enters through ``variant_values`` (DRF's user, not the session's).
        super().__init__(
            resources,
            vary=tuple(dict.fromkeys(headers)),
            per_user=False,
            last_modified=last_modified,
            view_id=view_id,
        )
        self.extra_vary = tuple(vary)
        self.drf_per_user = per_user
        self.query = query
        if per_user:
            self.default_headers = {**self.default_headers, "Cache-Control": "private"}

    def variant_values(self, request: HttpRequest, user: str | None) -> list[str]:
        renderer = getattr(request, "accepted_renderer", None)
        media_type = getattr(request, "accepted_media_type", None) or ""
        values = [
            f"renderer:{getattr(renderer, 'format', '')}:{media_type}",
            f"version:{getattr(request, 'version', None) or ''}",
            f"language:{get_language() or ''}",
            f"query:{query_token(request) if self.query else ''}",
        ]
        meta = request.META
        values.extend(
            f"{name}:{meta.get(meta_key(name), '')}" for name in self.extra_vary
        )
        if self.drf_per_user:
            values.append(f"user:{drf_user_id(request)}")
        return values

    def precondition_failed(
        self, request: HttpRequest, decided_by: str | None, validators: Validators
    ) -> NoReturn:
        weakened = weakened_tag(request, decided_by, validators)
        raise PreconditionFailed(decided_by, validators, weakened)

    def precondition_required(
        self, request: HttpRequest, required: Sequence[str], validators: Validators
    ) -> NoReturn:
        raise PreconditionRequired(required, validators)

    def finish(
        self, request: HttpRequest, response: HttpResponseBase, resolved: Resolved
    ) -> None:
        super().finish(request, response, resolved)
        if self.drf_per_user:
            patch_cache_control(response, private=True)


def _no_keys(*args: object, **kwargs: object) -> list[str]:
    return []


class CreateSource(APISource):
    """``create``: the target is the object the request creates, which has no current
    representation unless the request names an existing one (``exists``). So ``If-None-Match: *``
    holds and the object is created; ``If-Match`` fails (RFC 9110 §13.1.1); and
    ``If-None-Match: *`` fails with 412 when the client names an object that exists."""

    def __init__(self, exists: Callable[[Any], bool], **options: Any) -> None:
        super().__init__((_no_keys,), **options)
        self.exists = exists

    def resolve(self, request: HttpRequest, args: Args, kwargs: Kwargs) -> Resolved:
        return Resolved(Validators(None, None, exists=False), {}, self.default_headers)

    def locked_validators(
        self,
        request: HttpRequest,
        args: Args,
        kwargs: Kwargs,
        locked: Mapping[str, Stamp],
    ) -> Validators:
        return Validators(None, None, exists=self.exists(request))
