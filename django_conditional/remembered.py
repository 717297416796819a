"""Headers a view sets on its 200, remembered in the cache for the 304 or 412 sent without running it.

RFC 9110 §15.4.5 wants a 304 to carry the ``Cache-Control``, ``Content-Location``, ``Expires`` and
``Vary`` that the 200 would carry. A decorator that answers before the view runs cannot see them, so
each 200 records them (per host, view and URL, and representation) and the next 304 reads them
back. An ``Expires`` that is ``Date`` (or now) plus ``max-age`` is relative: it is kept as an offset
and recomputed, so it never goes back in time; any other ``Expires`` is absolute and kept as sent.
An unchanged 200 writes with ``add`` (a no-op while the entry is there), so the headers are written
again by the next 200 after any loss (eviction, flush).
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime, timezone
from functools import lru_cache
from typing import Final

from django.core.cache import caches
from django.http import HttpRequest, HttpResponseBase

from django_conditional.conf import conf
from django_conditional.httpdate import format_http_date, parse_http_date
from django_conditional.preconditions import ANY, CONTENT_CODINGS, decoded_tag
from django_conditional.request import preconditions
from django_conditional.responses import VARY_CODING, compressible
from django_conditional.validators import Validators

logger = logging.getLogger(__name__)
REMEMBERED_HEADERS: Final = ("Cache-Control", "Content-Location", "Vary")
_EXPIRES_OFFSET: Final = "Expires-Offset"
# Process-local record of what this worker last wrote, so that an unchanged 200 costs no cache write.
# It only ever suppresses a redundant write; reads always go to the shared cache.
_last_written: dict[str, tuple[dict[str, object], float]] = {}
MAX_WRITTEN: Final = 4096


def headers_key(view_id: str, request: HttpRequest, token: str) -> str:
    """Where the headers of one representation of a view's URL are remembered.

    ``token`` names the representation (``validator_token``): per-user and per-language
    variants have distinct validators, so one variant's 304 never gets another's headers.
    """
    # The path and query as the request spelled them (``get_full_path`` would re-quote them):
    # two spellings of one URL only keep two copies of the same headers.
    meta = request.META
    query = meta.get("QUERY_STRING", "")
    # The host as the client named it: one allowed host never sets another's headers.
    host = str(meta.get("HTTP_HOST") or meta.get("SERVER_NAME", "")).lower()
    digest = hashlib.md5(
        f"{host}\n{view_id}\n{request.path}\n{query}\n{token}".encode(
            "utf-8", "surrogateescape"
        ),
        usedforsecurity=False,
    ).hexdigest()
    return f"{conf.KEY_PREFIX}:headers:{digest}"


def validator_token(validators: Validators) -> str:
    """The representation ``validators`` describe: its opaque-tag, else its Last-Modified second."""
    if validators.etag is not None:
        return f"e{validators.etag.tag}"
    if validators.last_modified is not None:
        return f"d{int(validators.last_modified.timestamp())}"
    return ""


def request_token(request: HttpRequest) -> str | None:
    """The token of the representation a revalidating client holds (its last ``If-None-Match`` tag).

    Lets a caller fetch remembered headers before it knows the current validators; on a 304 one of
    the client's tags is the current one, most often the last (a cache holding two versions sends
    ``"old", "current"``). The caller checks it against the current validators (``token_of``) and
    loads by the matching one when it guessed wrong. A content-coding suffix (``"v3-gzip"``) is set
    aside, as the headers are remembered before compression.
    """
    tags = preconditions(request).if_none_match
    if tags is None or tags == ANY or not tags:
        return None
    tag = tags[-1]
    return f"e{(decoded_tag(tag, CONTENT_CODINGS) or tag).tag}"


def view_id(view: object) -> str:
    return (
        f"{getattr(view, '__module__', '')}.{getattr(view, '__qualname__', repr(view))}"
    )


def to_remember(response: HttpResponseBase) -> dict[str, object]:
    """The headers of ``response`` worth remembering, ``Expires`` as an offset in seconds."""
    memo: dict[str, object] = {
        name: response.headers[name]
        for name in REMEMBERED_HEADERS
        if name in response.headers
    }
    if "Expires" in response.headers:
        offset = _relative_expires(response)
        if offset is not None:
            memo[_EXPIRES_OFFSET] = offset
        else:
            # Absolute, or invalid (RFC 9111 §5.3: "already expired"): kept as it was sent.
            memo["Expires"] = response.headers["Expires"]
    if compressible(response):
        memo[VARY_CODING] = "1"
    return memo


def _max_age(cache_control: str) -> int | None:
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.strip('"').isdigit():
            return int(value.strip('"'))
    return None


def _relative_expires(response: HttpResponseBase) -> float | None:
    """``Expires`` as an offset from the response's date, when it is that date plus ``max-age``
    (as ``patch_response_headers`` and ``cache_page`` write it); None when it is absolute."""
    expires = parse_http_date(response.headers["Expires"])
    max_age = _max_age(response.get("Cache-Control", ""))
    if expires is None or max_age is None:
        return None
    date = parse_http_date(response.get("Date")) if "Date" in response.headers else None
    base = date.timestamp() if date is not None else time.time()
    offset = expires.timestamp() - base
    # The response's date and Expires are written in whole seconds, maybe a second apart.
    return float(max_age) if abs(offset - max_age) <= 2 else None


def from_cache(memo: object, key: str | None = None) -> dict[str, str]:
    """Headers to put on a 304 from a remembered ``memo`` (whatever the cache returned for ``key``)."""
    if not isinstance(memo, dict):
        if key is not None:
            # Evicted or flushed: let the next 200 of this worker write it again.
            _last_written.pop(key, None)
        return {}
    headers = {name: value for name, value in memo.items() if isinstance(value, str)}
    offset = expires_offset(memo)
    if offset is not None:
        headers["Expires"] = expires_in(offset)
    return headers


def expires_in(offset: float) -> str:
    """The ``Expires`` value ``offset`` seconds from now."""
    return _expires_at(int(time.time() + offset))


@lru_cache(maxsize=64)
def _expires_at(moment: int) -> str:
    # An HTTP-date has whole seconds: one formatting per second and offset.
    return format_http_date(datetime.fromtimestamp(moment, timezone.utc))


def expires_offset(memo: object) -> float | None:
    """The relative ``Expires`` of a remembered ``memo`` (seconds after now), None if it has none."""
    offset = memo.get(_EXPIRES_OFFSET) if isinstance(memo, dict) else None
    return float(offset) if isinstance(offset, (int, float)) else None


def _changed(key: str, memo: dict[str, object]) -> bool:
    """Whether ``memo`` differs from what this worker last wrote at ``key`` (then ``set``, else
    ``add``: a no-op while the entry is there, a rewrite after a loss)."""
    now = time.monotonic()
    previous = _last_written.get(key)
    if previous is not None and previous[0] == memo:
        return False
    if len(_last_written) >= MAX_WRITTEN:
        _last_written.clear()
    _last_written[key] = (dict(memo), now)
    return True


def written_keys() -> frozenset[str]:
    """The keys this process remembers having written (a bounded, process-local record)."""
    return frozenset(_last_written)


def forget_written() -> None:
    """Forget that record (tests that clear the cache between cases)."""
    _last_written.clear()


def remember(key: str, response: HttpResponseBase) -> None:
    memo = to_remember(response)
    if not memo:
        return
    cache = caches[conf.CACHE_ALIAS]
    try:
        if _changed(key, memo):
            cache.set(key, memo, conf.REMEMBER_HEADERS_TIMEOUT)
        else:
            cache.add(key, memo, conf.REMEMBER_HEADERS_TIMEOUT)
    # The cache is an optimisation: never fail a response for it.
    except Exception as exc:
        _not_remembered(key, exc)


async def aremember(key: str, response: HttpResponseBase) -> None:
    memo = to_remember(response)
    if not memo:
        return
    cache = caches[conf.CACHE_ALIAS]
    try:
        if _changed(key, memo):
            await cache.aset(key, memo, conf.REMEMBER_HEADERS_TIMEOUT)
        else:
            await cache.aadd(key, memo, conf.REMEMBER_HEADERS_TIMEOUT)
    except Exception as exc:
        _not_remembered(key, exc)


def _not_remembered(key: str, exc: Exception) -> None:
    # An expected fault (the cache is down or restarting): one line, no traceback.
    _last_written.pop(key, None)
    logger.warning(
        "Could not remember headers in the cache (%s: %s)", type(exc).__name__, exc
    )


def recall(key: str) -> dict[str, str]:
    try:
        return from_cache(caches[conf.CACHE_ALIAS].get(key), key)
    except Exception as exc:
        logger.warning(
            "Could not read remembered headers from the cache (%s: %s)",
            type(exc).__name__,
            exc,
        )
        return {}


async def arecall(key: str) -> dict[str, str]:
    try:
        return from_cache(await caches[conf.CACHE_ALIAS].aget(key), key)
    except Exception as exc:
        logger.warning(
            "Could not read remembered headers from the cache (%s: %s)",
            type(exc).__name__,
            exc,
        )
        return {}
