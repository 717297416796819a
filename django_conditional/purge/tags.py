"""Cache tags of version keys: the ``Surrogate-Key`` / ``Cache-Tag`` / ``xkey`` header of a
response, and the tags a purge names.

A version key becomes one tag. A key that is a safe token (``[A-Za-z0-9_.~@+:=%#-]``, no comma,
no space) of at most ``MAX_TAG_BYTES`` is its own tag, readable in a CDN's console; any other key
is named by its digest (``h:`` and 16 hex digits of BLAKE2b-64). When the readable tags of a
response do not fit ``MAX_HEADER_BYTES`` (Fastly's 16,384 bytes for all keys; Cloudflare's Cache-Tag
alike), the header lists the digest of every key instead; when even those do not fit, the response
lists none and is marked ``Cache-Control: private`` (a shared cache must not keep what no purge
could reach). A tag is never cut short: a truncated key would name another key, or none.

A purge names both tags of every bumped key (its readable tag and its digest), so it reaches a
response whichever form its header used.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_TAG_BYTES",
    "digest_tag",
    "header_value",
    "purge_tags",
    "separator",
    "tag",
]

# Fastly: a surrogate key is at most 1,024 bytes, the header at most 16,384 bytes.
MAX_TAG_BYTES: Final = 1024
MAX_HEADER_BYTES: Final = 16384
_SAFE: Final = re.compile(r"[A-Za-z0-9_.~@+:=%#\-]+")


def digest_tag(key: str) -> str:
    """The tag naming ``key`` by its digest: ``h:`` and 16 hex digits."""
    return "h:" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def tag(key: str, max_tag_bytes: int = MAX_TAG_BYTES) -> str:
    """The readable tag of ``key`` (itself), or its digest when it is not a safe short token."""
    if len(key) <= max_tag_bytes and _SAFE.fullmatch(key):
        return key
    return digest_tag(key)


def separator(header: str) -> str:
    """How a header separates its tags: commas for Cloudflare's ``Cache-Tag``, else spaces."""
    return "," if header.lower() == "cache-tag" else " "


def _joined(tags: Iterable[str], sep: str, limit: int) -> str | None:
    unique = list(dict.fromkeys(tags))
    value = sep.join(unique)
    return value if len(value.encode()) <= limit else None


def header_value(
    keys: Sequence[str], sep: str = " ", limit: int = MAX_HEADER_BYTES
) -> str | None:
    """The header listing ``keys`` in at most ``limit`` bytes, or None when it cannot be done
    without dropping a key (the caller then keeps the response out of shared caches)."""
    readable = _joined((tag(key) for key in keys), sep, limit)
    if readable is not None:
        return readable
    return _joined((digest_tag(key) for key in keys), sep, limit)


def purge_tags(keys: Iterable[str]) -> list[str]:
    """Every tag a purge of ``keys`` names: each key's readable tag and its digest."""
    found: dict[str, None] = {}
    for key in keys:
        found[tag(key)] = None
        found[digest_tag(key)] = None
    return list(found)
