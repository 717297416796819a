"""Purges of shared caches (Varnish, CDNs) when versions change, batched per transaction.

Opt-in: ``CONDITIONAL_PURGE_BACKEND`` names a class (dotted path; instantiated once with
``CONDITIONAL_PURGE_OPTIONS`` as keyword arguments) or a function; it is called as
``backend.purge(tags)`` (a class) or ``backend(tags)`` (a function) with the tags of the keys a
committed transaction bumped (``tags.purge_tags``: each key's readable tag and its digest).

``versions.bump`` records its keys here (``collect``); the first publication after the commit
(``versions._published``) sends every key the transaction bumped in one call (``flush``). Keys of
a savepoint rolled back inside it are purged too: a needless purge costs a cache miss, never a
stale answer. A backend that raises, hangs past ``CONDITIONAL_PURGE_TIMEOUT`` seconds or cannot
reach its cache is logged (logger ``django_conditional``) and never fails the write: the call runs
in a worker thread the commit waits for at most that long.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from django.utils.module_loading import import_string

from django_conditional.conf import conf
from django_conditional.purge.tags import purge_tags

__all__ = ["collect", "flush", "backend", "send"]

logger = logging.getLogger("django_conditional")
Purge = Callable[[Sequence[str]], object]

_pending = (
    threading.local()
)  # per thread (a connection's thread): db alias -> set of keys
_loaded: tuple[str, object, Purge] | None = None
_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def backend() -> Purge | None:
    """The configured purge callable (loaded once per setting value), or None when off."""
    global _loaded
    path = conf.PURGE_BACKEND
    if not path:
        return None
    options = conf.PURGE_OPTIONS
    loaded = _loaded
    if loaded is not None and loaded[0] == path and loaded[1] is options:
        return loaded[2]
    target: Any = import_string(path)
    purge: Purge = target(**options).purge if isinstance(target, type) else target
    _loaded = (path, options, purge)
    return purge


def collect(db: str, keys: Iterable[str]) -> None:
    """Inside a bump's transaction: remember its keys for the purge after the commit."""
    if not conf.PURGE_BACKEND:
        return
    by_db: dict[str, set[str]] | None = getattr(_pending, "by_db", None)
    if by_db is None:
        by_db = _pending.by_db = {}
    by_db.setdefault(db, set()).update(keys)


def flush(db: str) -> None:
    """After a commit on ``db``: purge every key collected since the last flush (once per
    transaction: the later publications of the same commit find nothing left)."""
    by_db: dict[str, set[str]] | None = getattr(_pending, "by_db", None)
    keys = by_db.pop(db, None) if by_db else None
    if keys:
        send(sorted(keys))


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=2, thread_name_prefix="django-conditional-purge"
            )
        return _executor


def send(keys: Sequence[str]) -> None:
    """Purge ``keys`` now through the backend; failures and timeouts are logged, never raised."""
    try:
        purge = backend()
    except Exception as exc:
        logger.warning(
            "django_conditional: purge backend %r could not be loaded (%s: %s)",
            conf.PURGE_BACKEND,
            type(exc).__name__,
            exc,
        )
        return
    if purge is None or not keys:
        return
    timeout = conf.PURGE_TIMEOUT
    try:
        future = _pool().submit(purge, purge_tags(keys))
        future.result(timeout=timeout)
    except FutureTimeout:
        logger.warning(
            "django_conditional: purge of %d keys still running after %.1f s; "
            "the write goes on (shared caches may serve the old content until it ends)",
            len(keys),
            timeout,
        )
    except Exception as exc:
        logger.warning(
            "django_conditional: purge of %d keys failed (%s: %s); shared caches may serve "
            "the old content until it expires",
            len(keys),
            type(exc).__name__,
            exc,
        )
