"""Which representation a request selects: the values of the headers it varies on, and the user.

A versioned view's entity-tag is ``"<state>.<variant>"``: ``<variant>`` is a keyed digest of the
request header values the response varies on (and of the user, for per-user pages), so two
negotiated representations never share a tag (RFC 9110 §8.8.3).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Final

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest

from django_conditional.preconditions import ANY, EntityTags, Preconditions
from django_conditional.validators import ETag

__all__ = [
    "STATE_SEPARATOR",
    "auser_id",
    "meta_key",
    "same_state",
    "user_id",
    "variant_digest",
]

# A versioned tag is "<state><STATE_SEPARATOR><variant>".
STATE_SEPARATOR: Final = "."

# Values longer than this are hashed every time rather than remembered: a client sending huge
# Accept headers must not grow the worker's memory.
_MEMO_MAX_LENGTH: Final = 512


def meta_key(name: str) -> str:
    """``"Accept-Language"`` -> ``"HTTP_ACCEPT_LANGUAGE"``."""
    return "HTTP_" + name.upper().replace("-", "_")


def variant_digest(values: Sequence[str]) -> str:
    """A short digest of ``values``, keyed with ``SECRET_KEY`` (a per-user tag names no user id)."""
    joined = tuple(values)
    if sum(len(value) for value in joined) > _MEMO_MAX_LENGTH:
        return _keyed_digest.__wrapped__(settings.SECRET_KEY, joined)
    return _keyed_digest(settings.SECRET_KEY, joined)


@lru_cache(maxsize=4096)
def _keyed_digest(secret: str, values: tuple[str, ...]) -> str:
    # Remembered per value set (a pure function): a revalidation hashes nothing again.
    return hashlib.blake2b(
        "\n".join(values).encode("utf-8", "surrogateescape"),
        digest_size=6,
        key=hashlib.blake2b(secret.encode(), digest_size=32).digest(),
        person=b"dj-cond-vary",
    ).hexdigest()


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
    from django.contrib.auth import SESSION_KEY

    cached = _cached_user_id(request)
    if cached is not None:
        return cached
    session = getattr(request, "session", None)
    value = None if session is None else session.get(SESSION_KEY)
    return "" if value is None else str(value)


async def auser_id(request: HttpRequest) -> str:
    """``user_id`` for async views: the session is read with its async API (or in a thread)."""
    from django.contrib.auth import SESSION_KEY

    cached = _cached_user_id(request)
    if cached is not None:
        return cached
    session = getattr(request, "session", None)
    if session is None:
        return ""
    aget = getattr(session, "aget", None)  # Django 5.1+
    if aget is not None:
        value = await aget(SESSION_KEY)
    else:  # pragma: no cover - Django < 5.1
        value = await sync_to_async(session.get)(SESSION_KEY)
    return "" if value is None else str(value)


def _state(tag: ETag) -> str:
    return tag.tag.rpartition(STATE_SEPARATOR)[0] or tag.tag


def same_state(conditions: Preconditions, current: ETag) -> Preconditions:
    """``conditions`` where a tag naming ``current``'s state under another variant stands for
    ``current`` (for unsafe methods: a client that read the page with ``Accept: text/html`` can
    write with ``Accept: */*`` and still loses no update)."""
    state = _state(current)

    def mapped(tags: EntityTags | None) -> EntityTags | None:
        if tags is None or tags == ANY:
            return tags
        return tuple(
            ETag(current.tag, tag.weak)
            if STATE_SEPARATOR in tag.tag and _state(tag) == state
            else tag
            for tag in tags
        )

    return replace(
        conditions,
        if_match=mapped(conditions.if_match),
        if_none_match=mapped(conditions.if_none_match),
    )
