"""What a transaction will commit: the stamps of its bumps, read from Django's commit hooks.

Every bump queues its publication with ``transaction.on_commit``. Django drops the hooks of a
savepoint that rolls back, so the hooks still queued are exactly the bumps the commit will make
current, and the values the cache will be given. A write takes its new ``ETag`` from them instead
of reading the rows again (one query fewer while it holds the row locks).

The hooks are Django's private list, read through ``django_adapter.queued_commit_hooks``; when
it cannot be read the answer is None, and the caller reads the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from django_conditional import django_adapter
from django_conditional.store.stamps import Stamp

__all__ = ["Publication", "bumped", "register"]

Publisher = Callable[[str, dict[str, Stamp]], None]


@dataclass(frozen=True, slots=True)
class Publication:
    """One bump's commit hook: publishes ``stamps`` (the values the bump wrote in ``db``)."""

    db: str
    stamps: dict[str, Stamp]
    publish: Publisher

    def __call__(self) -> None:
        self.publish(self.db, self.stamps)


def register(db: str, stamps: dict[str, Stamp], publish: Publisher) -> None:
    """Publish ``stamps`` when the transaction on ``db`` commits."""
    transaction.on_commit(Publication(db, stamps, publish), using=db)


def bumped(db: str) -> dict[str, Stamp] | None:
    """The stamps the current transaction on ``db`` will commit for the keys it bumped (a later
    bump of a key wins); nothing when it is marked for rollback; None when Django's commit hooks
    cannot be read."""
    if transaction.get_rollback(using=db):
        return {}  # nothing of it will commit
    hooks = django_adapter.queued_commit_hooks(db)
    if hooks is None:
        return None
    found: dict[str, Stamp] = {}
    for hook in hooks:
        if isinstance(hook, Publication) and hook.db == db:
            found.update(hook.stamps)
    return found
