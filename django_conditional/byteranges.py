"""Byte-range answers (RFC 9110 §14, §15.3.7, §15.5.17) built from a full 200.

``ranged(request, response)`` turns the 200 a GET with ``Range`` got into a 206 (one range),
a 206 ``multipart/byteranges`` (several, §14.6) or a 416 with ``Content-Range: bytes */<length>``,
as ``ranges.decide`` says; the 200 is kept when ``If-Range`` does not hold (§13.1.5) or the
field is ignored. The middleware calls it after the preconditions (§13.2.2: preconditions first).

What can be ranged: a non-streaming 200, and a ``FileResponse`` over a seekable file whose length
is known; those get ``Accept-Ranges: bytes`` (GET and HEAD). A file is read with seeks, one
block at a time, never whole. Other streaming bodies, a response with ``Accept-Ranges: none``
or one that already has ``Content-Range`` are left alone. Only GET is ranged (§14.2).

The 206 keeps every header of the 200 (``Cache-Control``, ``ETag``, ``Expires``, ``Vary``,
``Content-Location``, ``Last-Modified``, cookies...) but ``Content-Length`` (its own) and, for
multipart, ``Content-Type``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import IO, Final

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)

from django_conditional.preconditions import if_range_holds
from django_conditional.ranges import ByteRange, Decision, decide
from django_conditional.request import preconditions
from django_conditional.responses import problem, response_validators

__all__ = ["rangeable_length", "ranged", "RANGE_METHODS"]

RANGE_METHODS: Final = frozenset({"GET"})
_ADVERTISED: Final = frozenset({"GET", "HEAD"})
_NOT_COPIED: Final = frozenset({"content-length", "content-range"})
_BLOCK: Final = 64 * 1024


def _file(response: HttpResponseBase) -> IO[bytes] | None:
    filelike = getattr(response, "file_to_stream", None)
    if (
        filelike is None
        or not hasattr(filelike, "seek")
        or not hasattr(filelike, "tell")
    ):
        return None
    seekable = getattr(filelike, "seekable", None)
    if seekable is not None and not seekable():
        return None
    return filelike  # type: ignore[no-any-return]


def rangeable_length(response: HttpResponseBase) -> int | None:
    """The length of the bytes a range of ``response`` would select; None when it cannot be ranged."""
    if (
        response.status_code != 200
        or response.get("Accept-Ranges", "").strip().lower() == "none"
        or "Content-Range" in response.headers
    ):
        return None
    if not response.streaming:
        return len(response.content)  # type: ignore[attr-defined]
    length = response.get("Content-Length")
    if isinstance(response, FileResponse) and _file(response) and length:
        return int(length) if length.isdigit() else None
    return None


def _copy_headers(
    source: HttpResponseBase, target: HttpResponseBase, multipart: bool
) -> None:
    for name, value in source.headers.items():
        lowered = name.lower()
        if lowered in _NOT_COPIED or (multipart and lowered == "content-type"):
            continue
        target.headers[name] = value
    target.cookies = source.cookies


def _parts(
    ranges: Sequence[ByteRange], length: int, content_type: str, boundary: str
) -> list[tuple[bytes, ByteRange]]:
    """Each part's head (§14.6: delimiter, Content-Type, Content-Range) with its range."""
    return [
        (
            (
                f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n"
                f"Content-Range: {byte_range.content_range(length)}\r\n\r\n"
            ).encode("latin-1"),
            byte_range,
        )
        for byte_range in ranges
    ]


def _in_memory(
    response: HttpResponseBase, ranges: Sequence[ByteRange], length: int
) -> HttpResponse:
    content: bytes = response.content  # type: ignore[attr-defined]
    if len(ranges) == 1:
        (only,) = ranges
        partial = HttpResponse(content[only.first : only.last + 1], status=206)
        _copy_headers(response, partial, multipart=False)
        partial.headers["Content-Range"] = only.content_range(length)
    else:
        boundary = secrets.token_hex(16)
        parts = _parts(ranges, length, response.get("Content-Type", ""), boundary)
        body = (
            b"".join(head + content[r.first : r.last + 1] for head, r in parts)
            + f"\r\n--{boundary}--\r\n".encode()
        )
        partial = HttpResponse(body, status=206)
        _copy_headers(response, partial, multipart=True)
        partial.headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    partial.headers["Content-Length"] = str(len(partial.content))
    return partial


def _read_range(filelike: IO[bytes], start: int, count: int) -> Iterator[bytes]:
    filelike.seek(start)
    while count > 0:
        data = filelike.read(min(_BLOCK, count))
        if not data:  # the file shrank under us: stop rather than loop
            return
        count -= len(data)
        yield data


def _file_chunks(
    filelike: IO[bytes],
    offset: int,
    plan: Sequence[tuple[bytes, ByteRange]],
    end: bytes,
) -> Iterator[bytes]:
    for head, byte_range in plan:
        if head:
            yield head
        yield from _read_range(filelike, offset + byte_range.first, byte_range.length)
    if end:
        yield end


async def _afile_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    # Each block is read in a thread: an async server never blocks on the disk, and the file is
    # never read whole (Django would consume a sync iterator whole to serve it asynchronously).
    def step() -> bytes | None:
        return next(chunks, None)

    while True:
        chunk = await sync_to_async(step, thread_sensitive=False)()
        if chunk is None:
            return
        yield chunk


def _from_file(
    request: HttpRequest,
    response: HttpResponseBase,
    ranges: Sequence[ByteRange],
    length: int,
) -> StreamingHttpResponse:
    filelike = _file(response)
    assert filelike is not None
    offset = (
        filelike.tell()
    )  # FileResponse serves the file from where it was handed over
    multipart = len(ranges) > 1
    if multipart:
        boundary = secrets.token_hex(16)
        plan = _parts(ranges, length, response.get("Content-Type", ""), boundary)
        end = f"\r\n--{boundary}--\r\n".encode()
    else:
        plan, end = [(b"", ranges[0])], b""
    size = sum(len(head) + r.length for head, r in plan) + len(end)
    chunks = _file_chunks(filelike, offset, plan, end)
    streamed = _afile_chunks(chunks) if isinstance(request, ASGIRequest) else chunks
    partial = StreamingHttpResponse(streamed, status=206)
    _copy_headers(response, partial, multipart)
    if multipart:
        partial.headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    else:
        partial.headers["Content-Range"] = ranges[0].content_range(length)
    partial.headers["Content-Length"] = str(size)
    # The file now belongs to the 206: it closes it when the server is done with it.
    closers = response._resource_closers  # type: ignore[attr-defined]
    partial._resource_closers.extend(closers)  # type: ignore[attr-defined]
    closers.clear()
    return partial


def range_not_satisfiable(request: HttpRequest, length: int) -> HttpResponse:
    """416 (§15.5.17) with the current length, as ``Content-Range: bytes */<length>``."""
    return problem(
        request,
        416,
        "Range Not Satisfiable",
        f"None of the requested ranges overlaps the {length} bytes of the representation.",
        type_uri="https://www.rfc-editor.org/rfc/rfc9110#section-15.5.17",
        headers={"Content-Range": f"bytes */{length}", "Accept-Ranges": "bytes"},
    )


def ranged(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """The 206 or 416 for ``request`` from its full 200 ``response``, or ``response`` itself.

    A replaced response is released (its file passes to the 206). The caller has evaluated the
    preconditions already; this evaluates ``If-Range`` against the response's own validators.
    """
    if request.method not in _ADVERTISED:
        return response
    length = rangeable_length(response)
    if length is None:
        return response
    response.headers.setdefault("Accept-Ranges", "bytes")
    conditions = preconditions(request)
    if (
        request.method not in RANGE_METHODS
        or conditions.range is None
        or not if_range_holds(conditions, response_validators(response))
    ):
        return response
    answer = decide(conditions.range, length)
    if answer.decision is Decision.FULL:
        return response
    if answer.decision is Decision.UNSATISFIABLE:
        release(response)
        return range_not_satisfiable(request, length)
    if response.streaming:
        return _from_file(request, response, answer.ranges, length)
    return _in_memory(response, answer.ranges, length)


def release(response: HttpResponseBase) -> None:
    """Close what a replaced response holds (its file, its iterator).

    Not ``response.close()``: that also sends ``request_finished`` (closing database
    connections) for a request that is still being answered.
    """
    closers = getattr(response, "_resource_closers", None)
    if not closers:
        return
    for closer in closers:
        closer()
    closers.clear()
