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
