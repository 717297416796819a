"""Automatic version bumps for tracked models.

``track(Article, parents=("author",), collections=[by_author])`` (in ``AppConfig.ready()``, or
below the model class) bumps, whenever an article is saved, deleted, or one of its many-to-many
relations changes (from either side):

- the article's object key and its model's collection key;
- the named collections ``collections`` returns for it, before and after the change;
- its parents (``Comment`` tracked with ``parents=("article",)`` bumps the article when a comment
  changes, as Rails' ``touch: true``), recursively through the parents' own tracking.

Bulk paths that send no signal (``QuerySet.update``, ``bulk_create``, ``bulk_update``) are covered
by ``TrackedQuerySet``/``TrackedManager``; ``QuerySet.delete`` sends ``post_delete`` for every row of
a tracked model and is batched by ``TrackedQuerySet.delete``. Raw SQL calls ``versions.bump``.

Every write bumps the keys of the rows it touches as they were before and as they are after:
saves with an explicit pk and raw saves (``loaddata``) read the old row first, upserts read the
rows they may conflict with, and a write to a multi-table parent row bumps the tracked children
that extend it. Inside ``transaction.atomic`` the old row is read with ``select_for_update`` where
the database supports it; a save in autocommit mode reads it unlocked, so wrap concurrent moves
of one row in a transaction (``ATOMIC_REQUESTS``). A bump never raises once the data is written:
a failing collection function or key is logged and replaced by the table key.

Modules: ``registry`` (who is tracked, resolution of proxies and multi-table relatives),
``keys`` (the keys a row covers), ``batching`` (``batch``, savepoint-correct), ``receivers``
(signals), ``registration`` (``track``/``untrack``), ``querysets`` (bulk paths).
"""

from __future__ import annotations

from django_conditional.tracking.batching import batch
from django_conditional.tracking.querysets import TrackedManager, TrackedQuerySet
from django_conditional.tracking.registration import track, untrack
from django_conditional.tracking.registry import tracked

__all__ = [
    "track",
    "untrack",
    "tracked",
    "batch",
    "TrackedQuerySet",
    "TrackedManager",
]
