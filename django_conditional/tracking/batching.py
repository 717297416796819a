"""Batching: inside ``batch()`` the receivers add keys to the batch instead of bumping one by one."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import transaction

from django_conditional import versions


@dataclass
class _Batch:
    keys: dict[str, bool] = field(default_factory=dict)  # key -> deleted

    def add(self, keys: Iterable[str], deleted_key: str | None = None) -> None:
        # A deleted object stays deleted: a later bump in the batch comes from a child
        # (parent propagation), not from its re-creation.
        for key in keys:
            self.keys.setdefault(key, False)
        if deleted_key is not None:
            self.keys[deleted_key] = True


_current_batch: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar(
    "django_conditional_batch", default=None
)


@contextmanager
def batch(using: str | None = None) -> Iterator[None]:
    """Collect the bumps of tracked changes made inside the block and send them in two statements
    (one for live keys, one for deleted objects) at its end, inside one transaction."""
    outer = _current_batch.get()
    if outer is not None:  # nested: the outermost batch bumps
        yield
        return
    current = _Batch()
    token = _current_batch.set(current)
    reset = False
    try:
        with transaction.atomic(using=using, savepoint=False):
            yield
            _current_batch.reset(token)
            reset = True
            _flush(current, using)
    finally:
        if not reset:
            _current_batch.reset(token)


def _flush(current: _Batch, using: str | None) -> None:
    live = [key for key, deleted in current.keys.items() if not deleted]
    gone = [key for key, deleted in current.keys.items() if deleted]
    if live:
        versions.bump(*live, using=using)
    if gone:
        versions.bump(*gone, deleted=True, using=using)


def bump(
    keys: Iterable[str], deleted_key: str | None = None, using: str | None = None
) -> None:
    """Bump ``keys`` now, or at the end of the current batch (``deleted_key`` as deleted)."""
    current = _current_batch.get()
    if current is not None:
        current.add(keys, deleted_key)
        return
    live = [key for key in dict.fromkeys(keys) if key != deleted_key]
    if live:
        versions.bump(*live, using=using)
    if deleted_key is not None:
        versions.bump(deleted_key, deleted=True, using=using)
