"""Validators read off a built response: a hash of its body, or a file's size and mtime.

A hash of the exact bytes of a 200 is a strong validator (RFC 9110 §8.8.1): it changes whenever
the representation data changes. Streaming bodies are never hashed, since that would read them
into memory. A ``FileResponse`` over a regular file gets a strong tag from ``os.fstat``
(modification time in nanoseconds and size, as nginx and Apache do); over anything else (a
``BytesIO``, a pipe, a socket) it is left without a validator.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from functools import lru_cache
from typing import Final

from django.core.exceptions import ImproperlyConfigured
from django.http import FileResponse, HttpResponseBase

from django_conditional.conf import conf
from django_conditional.validators import ETag

Hasher = Callable[[bytes], str]

try:
    import xxhash

    _xxh3: Hasher | None = xxhash.xxh3_128_hexdigest
except (
    ImportError
):  # pragma: no cover - xxhash is a dependency; CONDITIONAL_HASH offers stdlib ones
    _xxh3 = None


def _md5(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def _sha1(content: bytes) -> str:
    return hashlib.sha1(content, usedforsecurity=False).hexdigest()


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _blake2b(content: bytes) -> str:
    return hashlib.blake2b(content, digest_size=16).hexdigest()


STDLIB_HASHERS: Final[dict[str, Hasher]] = {
    "md5": _md5,
    "sha1": _sha1,
    "sha256": _sha256,
    "blake2b": _blake2b,
}
XXHASH_HASHERS: Final = ("xxh3",)
XXHASH_AVAILABLE: Final = _xxh3 is not None
HASH_NAMES: Final = (*XXHASH_HASHERS, *STDLIB_HASHERS)


@lru_cache(maxsize=16)
def get_hasher(name: str) -> Hasher:
    """The body hash called ``name`` (a ``CONDITIONAL_HASH`` value)."""
    found = STDLIB_HASHERS.get(name)
    if found is not None:
        return found
    if name == "xxh3":
        if _xxh3 is None:  # pragma: no cover - see the import above
            raise ImproperlyConfigured(
                'CONDITIONAL_HASH = "xxh3" needs the xxhash package; install it or '
                'choose a stdlib hash such as "md5".'
            )
        return _xxh3
    raise ImproperlyConfigured(
        f"CONDITIONAL_HASH is {name!r}; choose one of {', '.join(HASH_NAMES)}."
    )


def content_etag(content: bytes, hash_name: str | None = None) -> ETag:
    """The strong entity-tag of a body: its hash with ``hash_name`` (default ``CONDITIONAL_HASH``)."""
    return ETag(get_hasher(hash_name or conf.HASH)(content))


def file_etag(response: HttpResponseBase) -> ETag | None:
    """A strong tag from the size and mtime of a ``FileResponse``'s regular file, else None."""
    if not isinstance(response, FileResponse):
        return None
    stream = getattr(response, "file_to_stream", None)
    if stream is None:
        return None
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        # No descriptor (BytesIO raises io.UnsupportedOperation, an OSError) or already closed.
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return ETag(f"{info.st_mtime_ns:x}-{info.st_size:x}")


def response_etag(
    response: HttpResponseBase, hasher: Hasher | None = None
) -> ETag | None:
    """The validator this module can give ``response``: a file tag, a body hash, or None (streaming).

    ``hasher`` defaults to the one ``CONDITIONAL_HASH`` names.
    """
    if response.streaming:
        return file_etag(response)
    content: bytes = response.content  # type: ignore[attr-defined]
    if hasher is None:
        hasher = get_hasher(conf.HASH)
    return ETag(hasher(content))
