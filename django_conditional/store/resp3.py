"""A small RESP3 codec for the tracking connection (``store.tracking``): commands out, replies and
push messages in, parsed incrementally from a buffer in the order the server sent them.

Written here rather than taken from redis-py: the tracking connection must see every push in its
place among the replies (an invalidation sent before a reply is applied before it), which
redis-py's parsers hide behind private handlers.
"""

from __future__ import annotations

from typing import Final

__all__ = ["INCOMPLETE", "Push", "ReplyError", "command", "parse"]


class Push(list):  # type: ignore[type-arg]
    """A push message (``>``): ``[b"invalidate", [keys] or None]`` on a tracking connection."""


class ReplyError(Exception):
    """An error reply (``-ERR ...``, ``!``): the server refused a command."""


class _Incomplete:
    """More bytes are needed before the next message can be parsed."""


INCOMPLETE: Final = _Incomplete()
_AGGREGATES: Final = frozenset(b"*~>%|")


def command(*words: str | bytes | int) -> bytes:
    """One command, encoded as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(words)]
    for word in words:
        data = word if isinstance(word, bytes) else str(word).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _scalar(kind: int, line: bytes) -> object:
    if kind == 43:  # + simple string
        return line
    if kind == 45:  # - error
        return ReplyError(line.decode(errors="replace"))
    if kind in (58, 40):  # : integer, ( big number
        return int(line)
    if kind == 44:  # , double
        return float(line)
    if kind == 35:  # # boolean
        return line == b"t"
    if kind == 95:  # _ null
        return None
    raise ValueError(f"unknown RESP3 type {chr(kind)!r}")


def _aggregate(
    kind: int, count: int, buffer: bytes | bytearray, at: int
) -> tuple[object, int]:
    items: list[object] = []
    total = count * 2 if kind in (37, 124) else count  # % map, | attribute: pairs
    for _ in range(total):
        value, at = parse(buffer, at)
        if value is INCOMPLETE:
            return INCOMPLETE, at
        items.append(value)
    if kind == 62:  # > push
        return Push(items), at
    if kind == 37:  # % map
        return dict(zip(items[::2], items[1::2], strict=True)), at
    if kind == 124:  # | attribute: metadata before the real reply, which follows
        return parse(buffer, at)
    return items, at  # * array, ~ set


def parse(buffer: bytes | bytearray, at: int = 0) -> tuple[object, int]:
    """The message starting at ``at`` and the offset after it, or ``(INCOMPLETE, at)``.

    ``ValueError`` on bytes that are not RESP3 (the caller then trusts nothing it holds)."""
    end = buffer.find(b"\r\n", at)
    if end < 0:
        return INCOMPLETE, at
    kind = buffer[at]
    line = bytes(buffer[at + 1 : end])
    after = end + 2
    if kind in (36, 61, 33):  # $ bulk, = verbatim, ! bulk error
        size = int(line)
        if size < 0:
            return None, after
        if len(buffer) < after + size + 2:
            return INCOMPLETE, at
        data = bytes(buffer[after : after + size])
        if kind == 61:
            data = data[4:]  # "txt:" or "mkd:"
        elif kind == 33:
            return ReplyError(data.decode(errors="replace")), after + size + 2
        return data, after + size + 2
    if kind in _AGGREGATES:
        count = int(line)
        if count < 0:
            return None, after
        value, last = _aggregate(kind, count, buffer, after)
        return (INCOMPLETE, at) if value is INCOMPLETE else (value, last)
    return _scalar(kind, line), after
