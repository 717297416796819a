"""``VersionedSource``: validators from the versions of the resources a view shows.

The face (``@versioned``, ``VersionedMixin``, the DRF views) declares the resources; this source
reads their versions and the headers remembered from the view's last 200 in one store read, and
builds the validators. The entity-tag is ``"<state>.<variant>"``: ``<state>`` is the
``version_tag`` of the versions (with the deploy salt), ``<variant>`` a digest of the request
header values the response varies on (and of the user, for per-user pages; see ``variants``).
Unsafe methods compare the ``<state>`` part only: a client that read the page with ``Accept:
text/html`` can PUT with ``If-Match`` and ``Accept: */*``, and still loses no update.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_cache_control, patch_vary_headers

from django_conditional import answers, remembered, versions
from django_conditional.conf import conf
from django_conditional.flow import (
    Args,
    Kwargs,
    Resolved,
    ValidatorSource,
    acall,
    call,
)
from django_conditional.preconditions import SAFE_METHODS, Preconditions
from django_conditional.purge.headers import stamp_cache_tags
from django_conditional.resources import (
    Resource,
    aresolve_keys,
    as_resources,
    resolve_keys,
)
from django_conditional.sources.versions import version_tag
from django_conditional.validators import ETag, Validators, to_utc
from django_conditional.variants import (
    STATE_SEPARATOR,
    auser_id,
    meta_key,
    same_state,
    user_id,
    variant_digest,
)
from django_conditional.versions import Stamp

__all__ = ["FROM_VERSIONS", "Declared", "ValidatorFunc", "VersionedSource"]

logger = logging.getLogger("django_conditional")


def FROM_VERSIONS(request: HttpRequest, *args: object, **kwargs: object) -> None:  # noqa: N802
    """``versioned(..., last_modified=FROM_VERSIONS)``: ``Last-Modified`` is the time of the last
    bump of the view's resources, read with their versions in the same round trip (no query)."""
    raise AssertionError("a marker, never called")


ValidatorFunc = Callable[..., object]
_TAKEN = "_conditional_read"  # the request's read, kept by ``read_for_check`` for ``resolve``
Declared = Sequence[Resource | Callable[..., object]]


class VersionedSource(ValidatorSource):
    """Validators from the versions of declared resources (see ``versioned``)."""

    def __init__(
        self,
        resources: Declared,
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
        self.repeats = (
            False  # its 304s may be sent again (``answers``; set by ``versioned_view``)
        )
        self.meta_keys = tuple(meta_key(name) for name in self.vary)
        vary_headers = [*self.vary, "Cookie"] if per_user else list(self.vary)
        self.vary_headers = tuple(dict.fromkeys(vary_headers))
        defaults = {}
        if self.vary_headers:
            defaults["Vary"] = ", ".join(self.vary_headers)
        if per_user:
            defaults["Cache-Control"] = "private"
        self.default_headers: Mapping[str, str] = defaults

    def keys(self, request: HttpRequest, args: Args, kwargs: Kwargs) -> list[str]:
        return resolve_keys(self.resources, request, args, kwargs)

    def variant_values(self, request: HttpRequest, user: str | None) -> list[str]:
        meta = request.META
        values = [
            f"{name}:{meta.get(key, '')}"
            for name, key in zip(self.vary, self.meta_keys, strict=True)
        ]
        if user is not None:
            values.append(f"user:{user}")
        return values

    def validators(
        self,
        found: Mapping[str, int],
        request: HttpRequest,
        user: str | None,
        last_modified: object = None,
    ) -> Validators:
        """The validators of the representation selected by ``request`` at versions ``found``.

        A deleted resource (a negative version) has no current representation: no validators,
        ``exists=False`` (so ``If-Match: *`` fails and ``If-None-Match`` never yields a 304).
        """
        if any(version < 0 for version in found.values()):
            return Validators(None, None, exists=False)
        state = version_tag(found)
        values = self.variant_values(request, user)
        tag = f"{state}{STATE_SEPARATOR}{variant_digest(values)}" if values else state
        if not isinstance(last_modified, datetime):
            return Validators(ETag(tag), None, exists=True)
        return Validators(
            ETag(tag),
            to_utc(last_modified),
            exists=True,
            changed_within_second=last_modified.microsecond != 0,
        )

    def write_conditions(
        self, conditions: Preconditions, validators: Validators
    ) -> Preconditions:
        """For unsafe methods: a tag naming the current state under another variant stands for
        the current tag (see the module docstring)."""
        if validators.etag is None or not (self.vary or self.per_user):
            return conditions
        return same_state(conditions, validators.etag)

    def _headers_key(self, request: HttpRequest) -> str | None:
        # The read path. The client's If-None-Match tag names the headers to fetch with it.
        if conf.REMEMBER_HEADERS and request.method in SAFE_METHODS:
            token = remembered.request_token(request)
            if token is not None:
                return remembered.headers_key(self.view_id, request, token)
        return None

    def _unvalidated(self, exc: DatabaseError, keys: Sequence[str]) -> Resolved:
        # Neither the cache nor the database gave the versions: no validator, hence no 304 or
        # 412 from a guess; the view answers (a 500 only if it cannot either).
        logger.warning(
            "django_conditional: version lookup failed (%s); no validators", exc
        )
        return Resolved(
            Validators(None, None, exists=True), None, self.default_headers, keys
        )

    def _resolved(
        self,
        request: HttpRequest,
        headers_key: str | None,
        keys: Sequence[str],
        snapshot: versions.Snapshot,
        user: str | None,
        modified: object,
    ) -> Resolved:
        found = snapshot.versions
        validators = self.validators(found, request, user, modified)
        # Without a client tag the remembered headers were not fetched with the versions, and
        # when the tag fetched by is not the current one (``"current", "old"``) they are another
        # representation's: a 304 then loads them by the current validators.
        headers = None
        if headers_key is not None and remembered.request_token(
            request
        ) == remembered.validator_token(validators):
            headers = remembered.from_cache(snapshot.extra, headers_key)
        proof = None
        if self.repeats and snapshot.proof is not None:
            offset = remembered.expires_offset(snapshot.extra) if headers else None
            proof = answers.Provenance(snapshot.proof, offset)
        return Resolved(validators, headers, self.default_headers, keys, found, proof)

    def read_for_check(
        self, request: HttpRequest, args: Args, kwargs: Kwargs
    ) -> versions.Snapshot:
        """The request's one read, made early for the access check (``visible_by_state``) and
        kept on the request for the decision that follows: one read per request, not two."""
        keys = self.keys(request, args, kwargs)
        headers_key = self._headers_key(request)
        snapshot = versions.read(keys, headers_key)
        request.__dict__[_TAKEN] = (keys, headers_key, snapshot)
        return snapshot

    def resolve(self, request: HttpRequest, args: Args, kwargs: Kwargs) -> Resolved:
        taken = request.__dict__.pop(_TAKEN, None)
        if taken is not None:
            keys, headers_key, snapshot = taken
        else:
            keys = self.keys(request, args, kwargs)
            headers_key = self._headers_key(request)
            try:
                snapshot = versions.read(keys, headers_key)
            except DatabaseError as exc:
                return self._unvalidated(exc, keys)
        user = user_id(request) if self.per_user else None
        modified = (
            snapshot.last_changed()
            if self.last_modified is FROM_VERSIONS
            else call(self.last_modified, request, args, kwargs)
        )
        return self._resolved(request, headers_key, keys, snapshot, user, modified)

    async def aresolve(
        self, request: HttpRequest, args: Args, kwargs: Kwargs
    ) -> Resolved:
        taken = request.__dict__.pop(_TAKEN, None)
        if taken is not None:
            keys, headers_key, snapshot = taken
        else:
            keys = await aresolve_keys(self.resources, request, args, kwargs)
            headers_key = self._headers_key(request)
            try:
                snapshot = await versions.aread(keys, headers_key)
            except DatabaseError as exc:
                return self._unvalidated(exc, keys)
        user = await auser_id(request) if self.per_user else None
        modified = (
            snapshot.last_changed()
            if self.last_modified is FROM_VERSIONS
            else await acall(self.last_modified, request, args, kwargs)
        )
        return self._resolved(request, headers_key, keys, snapshot, user, modified)

    # -- the write path (``writes``), inside its transaction --

    def locked_validators(
        self,
        request: HttpRequest,
        args: Args,
        kwargs: Kwargs,
        locked: Mapping[str, Stamp],
    ) -> Validators:
        """The validators of the rows ``versions.lock_stamps`` locked for a write."""
        user = user_id(request) if self.per_user else None
        snapshot = versions.Snapshot.of(locked)
        if self.last_modified is FROM_VERSIONS:
            modified = snapshot.last_changed()
        else:
            modified = call(self.last_modified, request, args, kwargs)
        return self.validators(snapshot.versions, request, user, modified)

    def current_etag(
        self, request: HttpRequest, found: Mapping[str, int]
    ) -> ETag | None:
        user = user_id(request) if self.per_user else None
        return self.validators(found, request, user).etag

    def finish(
        self, request: HttpRequest, response: HttpResponseBase, resolved: Resolved
    ) -> None:
        super().finish(request, response, resolved)
        if self.vary_headers:
            patch_vary_headers(response, self.vary_headers)
        if self.per_user:
            patch_cache_control(response, private=True)
        stamp_cache_tags(request, response, resolved.keys)
