"""The write fence: a write's response leaves only once local copies of what it replaced are unused.

``store.local`` explains the scheme and why it holds: a script that replaces a version a reader
may hold a copy of (its holder mark) says how long copies may still answer (``fence_for``); the
write waits that long once, when ``fenced()`` (``writes.write``) closes, before the view's
response is returned, or in the commit hook for a commit outside any scope (``published``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from django_conditional.conf import conf
from django_conditional.store import local

__all__ = ["fence_for", "fence_ms", "fence_now", "fenced", "published"]

_MARGIN: Final = (
    0.001  # seconds added to the writer's wait: clock rates, sleep granularity
)

_fence = threading.local()


def _fencing() -> bool:
    from django_conditional.store import cache as store_cache

    return conf.WRITE_FENCE and local.is_on(store_cache.cache())


def _wait_until(deadline: float) -> None:
    left = deadline - time.monotonic()
    if left > 0:
        time.sleep(left)


def fence_ms() -> int:
    """A whole fence in milliseconds (``T`` and the margin, rounded up): how long the holder
    mark a writer leaves lasts."""
    return math.ceil((conf.LEASE_SECONDS + _MARGIN) * 1000)


def fence_now() -> None:
    """Wait a whole fence here (a former master was retired: copies read from it may be used
    until ``T`` has passed)."""
    if _fencing():
        time.sleep(conf.LEASE_SECONDS + _MARGIN)


def fence_for(seconds: float) -> None:
    """A writer's script replaced keys that local copies may hold (their holder marks): this
    thread's write must not answer before ``seconds`` from now. Inside ``fenced()`` the wait is
    left to the scope's end; outside, to ``published()``."""
    if seconds > 0 and _fencing():
        deadline = time.monotonic() + seconds + _MARGIN
        _fence.deadline = max(getattr(_fence, "deadline", 0.0), deadline)


def published(reported: bool) -> None:
    """After versions were published to the cache (in the commit hook). ``reported``: the
    scripts said which fence the write needs (``fence_for``); else a whole one, from now."""
    if not _fencing():
        _fence.deadline = 0.0
        return
    if not reported:
        fence_for(conf.LEASE_SECONDS)
    if not getattr(_fence, "depth", 0):
        deadline, _fence.deadline = getattr(_fence, "deadline", 0.0), 0.0
        if deadline:
            _wait_until(deadline)


@contextmanager
def fenced() -> Iterator[None]:
    """A scope (a write request's transaction) whose publications wait once, at its end, until
    ``T`` has passed since the last of them."""
    _fence.depth = getattr(_fence, "depth", 0) + 1
    try:
        yield
    finally:
        _fence.depth -= 1
        if not _fence.depth:
            deadline = getattr(_fence, "deadline", 0.0)
            _fence.deadline = 0.0
            if deadline:
                _wait_until(deadline)
