"""One RESP3 connection to the primary with ``CLIENT TRACKING on``, and the local copy it keeps.

``Tracked`` holds the raw values of the keys read on its connection (``values``), the lease
(``leased_at``: when the newest command whose reply has been read was *sent*), and the replies
awaited, in order. Everything the server sends is applied in the order it was sent: an
invalidation push removes its keys (a null one, after ``FLUSHDB``, removes all) at its place
among the replies, and a reply to ``MGET`` stores the values it carries at its own place. So a
reply received for a command sent at ``s`` follows every invalidation the server queued on this
connection before it executed that command, and the copy is as fresh as the server was at ``s``.

Any doubt forgets the whole copy: the connection closed or timed out, bytes that are not RESP3,
an error reply, a reply nobody asked for, another process (a fork: ``check_pid``), an unknown push.
The caller (``store.local``) decides when the copy may answer; see its docstring for the lease,
the write fence and why no stale 304 follows a write's response. Sync callers hold a lock around
every use (threads share one connection per process); asyncio callers have one connection per
event loop, read by a reader callback and by ``drain``, both on the loop's thread. Nothing here
blocks except ``call`` (sync), up to the socket timeout."""

from __future__ import annotations

import asyncio
import math
import os
import select
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from django_conditional.redis_adapter import Address, server_identity
from django_conditional.store import resp3

__all__ = ["HOLD", "Doubt", "Tracked"]

_CHUNK: Final = 65536
# A version read through leaves a holder mark in Redis for HOLD seconds (``store.local``); the copy
# is used until HOLD_MARGIN before the mark can have expired, measured from the read's sending.
HOLD: Final = 60.0
HOLD_MARGIN: Final = 1.0


class Doubt(ConnectionError):
    """The tracking connection can no longer be trusted; its copy has been forgotten."""


@dataclass(slots=True, eq=False)
class _Waiter:
    """A command sent, awaiting its reply: when it was sent, what to do with the reply."""

    sent: float
    kind: str  # "mget", "info" or "ok"
    names: list[str] = field(default_factory=list)
    marks: int = 0  # how many names after the first are held (marked) by this read
    future: asyncio.Future[object] | None = None
    result: object = None
    error: BaseException | None = None
    done: bool = False


class Tracked:
    """A tracking connection (made on first use), its local copy and its lease."""

    def __init__(self, address: Address, max_keys: int = 65536) -> None:
        self.address = address
        self.max_keys = max_keys
        self.values: dict[str, bytes | None] = {}
        # Until when a held version may answer (its holder mark's life, see HOLD).
        self.held_until: dict[str, float] = {}
        self.leased_at = -math.inf
        self.server: str | None = None
        self.sock: socket.socket | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._buffer = bytearray()
        self._waiting: deque[_Waiter] = deque()
        self._pid = os.getpid()
        self.hits = self.round_trips = self.flushes = self.connects = 0

    def forget(self) -> None:
        """Drop the whole local copy and the lease."""
        if self.values:
            self.flushes += 1
        self.values.clear()
        self.held_until.clear()
        self.leased_at = -math.inf

    def lookup(self, names: list[str], lease: float) -> list[bytes | None] | None:
        """The held raw values of ``names`` (None: absent in Redis), or None when one is not held
        or the lease ran out (a fence was sent ``lease`` seconds ago or more)."""
        now = time.monotonic()
        if now - self.leased_at >= lease:
            return None
        values, held_until = self.values, self.held_until
        out: list[bytes | None] = []
        for name in names:
            if name not in values or held_until.get(name, math.inf) <= now:
                return None
            out.append(values[name])
        return out

    def check_pid(self) -> None:
        """In a forked child: the parent's socket and copy are not this process's."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            sock, self.sock = self.sock, None
            if sock is not None:
                sock.close()  # the child's descriptor only: the parent's connection lives on
            self._buffer.clear()
            self._waiting.clear()
            self.forget()

    def fail(self, exc: BaseException) -> None:
        """Close the connection, forget the copy, fail every reply awaited."""
        sock, self.sock = self.sock, None
        if sock is not None:
            if self.loop is not None and not self.loop.is_closed():
                self.loop.remove_reader(sock.fileno())
            sock.close()
        self._buffer.clear()
        waiting = list(self._waiting)
        self._waiting.clear()
        for waiter in waiting:
            waiter.error, waiter.done = exc, True
            if waiter.future is not None and not waiter.future.done():
                waiter.future.set_exception(exc)
        self.forget()

    # -- what the server sends --

    def _feed(self, data: bytes) -> None:
        if not data:
            raise Doubt("the server closed the tracking connection")
        buffer = self._buffer
        buffer += data
        at = 0
        while at < len(buffer):
            try:
                value, after = resp3.parse(buffer, at)
            except (ValueError, IndexError) as exc:
                raise Doubt(f"unreadable reply: {exc}") from exc
            if value is resp3.INCOMPLETE:
                break
            at = after
            if type(value) is resp3.Push:
                self._invalidate(value)
            else:
                self._answer(value)
        del buffer[:at]

    def _invalidate(self, push: resp3.Push) -> None:
        if len(push) != 2 or push[0] != b"invalidate":
            raise Doubt(f"unexpected push {push[:1]!r}")
        keys = push[1]
        if keys is None:  # FLUSHDB / FLUSHALL: everything
            self.forget()
            return
        values, held_until = self.values, self.held_until
        for key in keys:
            name = key.decode("utf-8", "surrogateescape")
            values.pop(name, None)
            held_until.pop(name, None)

    def _answer(self, value: object) -> None:
        if not self._waiting:
            raise Doubt("a reply nobody asked for")
        waiter = self._waiting.popleft()
        if isinstance(value, resp3.ReplyError):
            waiter.error = value
        else:
            # Every invalidation queued before this command ran has been applied above.
            self.leased_at = max(self.leased_at, waiter.sent)
            if waiter.kind == "mget":
                self._store(waiter, value)
            elif waiter.kind == "info":
                self._note_server(value)
            waiter.result = value
        waiter.done = True
        if waiter.future is not None and not waiter.future.done():
            waiter.future.set_result(None)

    def _store(self, waiter: _Waiter, value: object) -> None:
        names = waiter.names
        if type(value) is not list or len(value) != len(names):
            raise Doubt("an MGET reply of the wrong shape")
        values, held_until = self.values, self.held_until
        if len(values) + len(names) > self.max_keys:
            values.clear()  # bounded: dropping copies is always safe
            held_until.clear()
        for name, raw in zip(names, value, strict=True):
            values[name] = raw
        until = waiter.sent + HOLD - HOLD_MARGIN
        for name in names[1 : 1 + waiter.marks]:
            held_until[name] = until

    def _note_server(self, info: object) -> None:
        self.server = server_identity(info)

    # -- sending --

    def _handshake(self) -> list[tuple[str, bytes]]:
        address = self.address
        hello: list[str | int] = ["HELLO", 3]
        if address.password is not None:
            hello += ["AUTH", address.username or "default", address.password]
        steps = [("ok", resp3.command(*hello))]
        if address.db:
            steps.append(("ok", resp3.command("SELECT", address.db)))
        steps.append(("ok", resp3.command("CLIENT", "TRACKING", "on")))
        steps.append(("info", resp3.command("INFO")))
        return steps

    def _queue(
        self, kind: str, data: bytes, names: list[str], marks: int = 0
    ) -> _Waiter:
        waiter = _Waiter(time.monotonic(), kind, names, marks)
        if self.loop is not None:
            waiter.future = self.loop.create_future()
        self._waiting.append(waiter)
        assert self.sock is not None
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent != len(data):  # a full send buffer: the server does not read
            raise Doubt("the tracking connection does not take commands")
        return waiter

    @staticmethod
    def _checked(waiter: _Waiter) -> object:
        if waiter.error is not None:
            raise Doubt(f"the server refused: {waiter.error}") from waiter.error
        return waiter.result

    def drain(self) -> None:
        """Apply whatever the server sent so far, without waiting (a zero-timeout poll)."""
        sock = self.sock
        if sock is None:
            return
        try:
            while True:
                data = sock.recv(_CHUNK)
                self._feed(data)
                if len(data) < _CHUNK:
                    return
        except BlockingIOError:
            return
        except (OSError, Doubt) as exc:
            self.fail(exc)

    def _open(self) -> socket.socket:
        address = self.address
        if address.path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(address.connect_timeout)
            sock.connect(address.path)
        else:
            sock = socket.create_connection(address.endpoint(), address.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return sock

    def _wait(self, waiter: _Waiter) -> object:
        timeout = self.address.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while not waiter.done:
            assert self.sock is not None
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self.sock], [], [], left)
            if not readable:
                raise TimeoutError("the tracking connection timed out")
            try:
                self._feed(self.sock.recv(_CHUNK))
            except BlockingIOError:
                continue
        return self._checked(waiter)

    def call(
        self, kind: str, names: list[str], *words: str | int, marks: int = 0
    ) -> object:
        """Send one command and read up to its reply (the caller holds the lock). ``marks``:
        how many names after the first the command marks as held (see HOLD)."""
        try:
            if self.sock is None:
                self.forget()
                self.sock = self._open()
                self.connects += 1
                for step, data in self._handshake():
                    self._wait(self._queue(step, data, []))
            return self._wait(self._queue(kind, resp3.command(*words), names, marks))
        except BaseException as exc:
            self.fail(exc)
            raise

    # -- asyncio (one Tracked per event loop) --

    def _on_readable(self) -> None:
        self.drain()

    async def _aopen(self) -> None:
        loop = asyncio.get_running_loop()
        address = self.address
        if address.path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = address.path
        else:
            # Sentinel's answer comes over the network: not on the loop.
            host, port = (
                address.endpoint()
                if address.locate is None
                else await asyncio.to_thread(address.endpoint)
            )
            info = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            sock = socket.socket(info[0][0], socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            target = info[0][4]
        sock.setblocking(False)
        try:
            await asyncio.wait_for(
                loop.sock_connect(sock, target), address.connect_timeout
            )
        except BaseException:
            sock.close()
            raise
        self.loop, self.sock = loop, sock
        loop.add_reader(sock.fileno(), self._on_readable)

    async def _await(self, waiter: _Waiter) -> object:
        assert waiter.future is not None
        await asyncio.wait_for(waiter.future, self.address.timeout)
        return self._checked(waiter)

    async def acall(
        self, kind: str, names: list[str], *words: str | int, marks: int = 0
    ) -> object:
        """``call`` for the event loop this connection belongs to."""
        try:
            if self.sock is None:
                self.forget()
                await self._aopen()
                self.connects += 1
                last = [self._queue(step, data, []) for step, data in self._handshake()]
                for waiter in last:
                    await self._await(waiter)
            waiter = self._queue(kind, resp3.command(*words), names, marks)
            return await self._await(waiter)
        except BaseException as exc:
            self.fail(exc)
            raise
