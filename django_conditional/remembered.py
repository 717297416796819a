"""Headers a view sets on its 200, remembered in the cache for the 304 or 412 sent without running it.

RFC 9110 §15.4.5 wants a 304 to carry the ``Cache-Control``, ``Content-Location``, ``Expires`` and
``Vary`` that the 200 would carry. A decorator that answers before the view runs cannot see them, so
each 200 records them (per view and URL) and the next 304 reads them back. ``Expires`` is kept as an
offset from the response's ``Date`` and recomputed, so it never goes back in time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime, timezone
from typing import Any, Final

from django.core.cache import caches
from django.http import HttpRequest, HttpResponseBase

from django_conditional.conf import conf
from django_conditional.httpdate import format_http_date, parse_http_date
from django_conditional.preconditions import ANY, CONTENT_CODINGS, decoded_tag
from django_conditional.request import preconditions
from django_conditional.validators import Validators

logger = logging.getLogger(__name__)
REMEMBERED_HEADERS: Final = ("Cache-Control", "Content-Location", "Vary")
_EXPIRES_OFFSET: Final = "Expires-Offset"
# Process-local record of what this worker last wrote, so that an unchanged 200 costs no cache write.
# It only ever suppresses a redundant write; reads always go to the shared cache.
_last_written: dict[str, tuple[dict[str, object], float]] = {}
_LAST_WRITTEN_MAX: Final = 4096


def headers_key(view_id: str, request: HttpRequest, token: str) -> str:
    """Where the headers of one representation of a view's URL are remembered.

    ``token`` names the representation (``validator_token``): per-user and per-language
    variants have distinct validators, so one variant's 304 never gets another's headers.
    """
    # The path and query as the request spelled them (``get_full_path`` would re-quote them):
    # two spellings of one URL only keep two copies of the same headers.
    query = request.META.get("QUERY_STRING", "")
    digest = hashlib.md5(
        f"{view_id}\n{request.path}\n{query}\n{token}".encode(
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
    """The token of the representation a revalidating client holds (its first ``If-None-Match`` tag).

    Lets a caller fetch remembered headers before it knows the current validators; on a 304 the
    client's tag is the current one. A content-coding suffix (``"v3-gzip"``) is set aside, as the
    headers are remembered before compression.
    """
    tags = preconditions(request).if_none_match
    if tags is None or tags == ANY or not tags:
        return None
    tag = tags[0]
    return f"e{(decoded_tag(tag, CONTENT_CODINGS) or tag).tag}"


def view_id(view: Any) -> str:
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
        expires = parse_http_date(response.headers["Expires"])
        base = (
            parse_http_date(response.headers.get("Date"))
            if "Date" in response.headers
            else None
        )
        if expires is not None:
            memo[_EXPIRES_OFFSET] = expires.timestamp() - (
                base.timestamp() if base else time.time()
            )
        else:
            # §5.3 of RFC 9111: an invalid Expires means "already expired"; keep it as it was.
            memo["Expires"] = response.headers["Expires"]
    return memo


def from_cache(memo: Any, key: str | None = None) -> dict[str, str]:
    """Headers to put on a 304 from a remembered ``memo`` (whatever the cache returned for ``key``)."""
    if not isinstance(memo, dict):
        if key is not None:
            # Evicted or flushed: let the next 200 of this worker write it again.
            _last_written.pop(key, None)
        return {}
    headers = {name: value for name, value in memo.items() if isinstance(value, str)}
    offset = memo.get(_EXPIRES_OFFSET)
    if isinstance(offset, (int, float)):
        headers["Expires"] = format_http_date(
            datetime.fromtimestamp(time.time() + offset, timezone.utc)
        )
    return headers


def _needs_write(key: str, memo: dict[str, object]) -> bool:
    now = time.monotonic()
    previous = _last_written.get(key)
    # Offsets jitter by milliseconds between responses; compare them rounded.
    comparable = {k: round(v) if isinstance(v, float) else v for k, v in memo.items()}
    if (
        previous is not None
        and previous[0] == comparable
        and now - previous[1] < conf.REMEMBER_HEADERS_TIMEOUT / 2
    ):
        return False
    if len(_last_written) >= _LAST_WRITTEN_MAX:
        _last_written.clear()
    _last_written[key] = (comparable, now)
    return True


def remember(key: str, response: HttpResponseBase) -> None:
    memo = to_remember(response)
    if memo and _needs_write(key, memo):
        try:
            caches[conf.CACHE_ALIAS].set(key, memo, conf.REMEMBER_HEADERS_TIMEOUT)
        except Exception:  # the cache is an optimisation: never fail a response for it
            _last_written.pop(key, None)
            logger.warning("Could not remember headers in the cache", exc_info=True)


async def aremember(key: str, response: HttpResponseBase) -> None:
    memo = to_remember(response)
    if memo and _needs_write(key, memo):
        try:
            await caches[conf.CACHE_ALIAS].aset(
                key, memo, conf.REMEMBER_HEADERS_TIMEOUT
            )
        except Exception:
            _last_written.pop(key, None)
            logger.warning("Could not remember headers in the cache", exc_info=True)


def recall(key: str) -> dict[str, str]:
    try:
        return from_cache(caches[conf.CACHE_ALIAS].get(key), key)
    except Exception:
        logger.warning(
            "Could not read remembered headers from the cache", exc_info=True
        )
        return {}


async def arecall(key: str) -> dict[str, str]:
    try:
        return from_cache(await caches[conf.CACHE_ALIAS].aget(key), key)
    except Exception:
        logger.warning(
            "Could not read remembered headers from the cache", exc_info=True
        )
        return {}
