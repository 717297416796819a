"""Which server answered a read: the identity of the connection that served it.

A process may hold connections to two masters for a while after a Sentinel failover (kept ones
to the old, new ones to the new): a read is trusted against the server that answered it
(``versions``), not the process's newest idea of the server. Kept per context (a thread, an
asyncio task), set by the read itself (``fastcache``, ``store.local``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Final

_served: Final[ContextVar[str | None]] = ContextVar("conditional_served", default=None)


def note(server: str | None) -> None:
    """The last read in this context was answered by ``server`` (None: not known)."""
    _served.set(server)


def by() -> str | None:
    """The identity of the server that answered this context's last read."""
    return _served.get()
