"""A cached version and the time of its bump, as one cache value: ``"<version>|<ms>"``.

The bump time comes with the version in the read's one round trip, so ``Last-Modified`` from
versions costs no query. ``<ms>`` is milliseconds since the Unix epoch (0: not known). On Django's
``RedisCache`` the value is stored as a protocol-0 pickle of that text (``V<text>\\n.``), which
Django's serializer reads back and the Lua writer can parse; other backends store the text.
A plain integer (a value written by an older release) reads as a version with no time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Final

Stamp = tuple[int, int]  # (version, bump time in ms; 0 when not known)

_TEXT: Final = re.compile(r"(-?\d+)\|(\d+)")
_RAW: Final = re.compile(rb"^V?(-?\d+)\|(\d+)")
_PENDING: Final = re.compile(rb"pending:(-?\d+)")
_COMING: Final = re.compile(r"pending:[^:]*:(-?\d+)")


def ms(moment: datetime | None) -> int:
    return 0 if moment is None else int(moment.timestamp() * 1000)


def moment(milliseconds: int) -> datetime | None:
    if not milliseconds:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, timezone.utc)


def versions_of(stamps: Mapping[str, Stamp]) -> dict[str, int]:
    """The versions alone of ``stamps``."""
    return {key: stamp[0] for key, stamp in stamps.items()}


def encode(stamp: Stamp) -> str:
    return f"{stamp[0]}|{stamp[1]}"


def pickled(stamp: Stamp) -> bytes:
    """``encode(stamp)`` as the bytes of a pickle (protocol 0) of that text."""
    return b"V" + encode(stamp).encode() + b"\n."


def decode(value: object) -> Stamp | None:
    """The stamp a cached value (as the cache API returns it) holds; None for anything else."""
    if type(value) is int:
        return value, 0
    if type(value) is str:
        found = _TEXT.fullmatch(value)
        if found:
            return int(found.group(1)), int(found.group(2))
    return None


def coming(value: object) -> int | None:
    """The version a pending mark (as the cache API returns it) says its bump commits; None for
    anything else."""
    found = _COMING.match(value) if type(value) is str else None
    return int(found.group(1)) if found else None


def raw_version(raw: object) -> int | None:
    """The version in a raw Redis value: a stamp, a plain integer, or what a pending mark kept."""
    if not isinstance(raw, bytes):
        return None
    if raw.lstrip(b"-").isdigit():
        return int(raw)
    found = _RAW.match(raw) or _PENDING.search(raw)
    return int(found.group(1)) if found else None


def is_held(raw: bytes | None) -> bool:
    """Whether a raw Redis value is a version a reader may use: a plain integer or a stamp (not
    a pending mark, nothing foreign)."""
    if raw is None:
        return False
    return raw.lstrip(b"-").isdigit() or _RAW.match(raw) is not None
