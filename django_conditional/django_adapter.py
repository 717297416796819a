"""The one place that touches private APIs of Django itself (its cache backends have
``redis_adapter``), each behind a check of the shape it was written for (Django 4.2 to 6.x), with
a public fallback when the shape differs.

- ``queued_commit_hooks(db)``: what ``transaction.on_commit`` queued in the current transaction
  of ``db``, the hooks of savepoints rolled back already dropped (``connection.run_on_commit``:
  tuples of ``(savepoint ids, callable, robust)``); None when it has another shape.
- ``cloned_headers(headers)``: a copy of a response's headers without checking every value again
  (``ResponseHeaders._store``: lower-case name -> ``(name, value)``, each value checked when it was
  first set); else rebuilt through the mapping API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connections
from django.http.response import ResponseHeaders

__all__ = ["cloned_headers", "queued_commit_hooks"]

_Headers = TypeVar("_Headers", bound=ResponseHeaders)


def queued_commit_hooks(db: str) -> list[Callable[[], Any]] | None:
    """The callables queued to run when the current transaction on ``db`` commits, in order."""
    hooks = getattr(connections[db], "run_on_commit", None)
    if not isinstance(hooks, list):
        return None
    found = []
    for hook in hooks:
        if not isinstance(hook, tuple) or len(hook) < 2:
            return None
        found.append(hook[1])
    return found


def cloned_headers(headers: _Headers) -> _Headers:
    """A new mapping of ``headers``' class with the same headers."""
    store = getattr(headers, "_store", None)
    if isinstance(store, dict):
        clone = object.__new__(type(headers))
        clone._store = dict(store)
        return clone
    return type(headers)(dict(headers.items()))
