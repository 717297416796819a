"""Bumps, now or at the end of a ``batch()``.

Outside a batch a bump runs in the write's own transaction (or savepoint), so it stands or falls
with the write. Inside a batch the keys are only recorded, and a savepoint rolled back in the
block does not take its records with it: a delete rolled back would still mark its object
deleted. So the batch remembers which row each object key names and, at its end, asks the
database which of them exist (one query per model): an existing row is bumped as live, a missing
one as deleted. Extra bumps of collections are harmless (a spurious 200); a deleted mark on a
live row, or a live one on a deleted row, is not.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import DatabaseError, models, router, transaction

from django_conditional import versions

logger = logging.getLogger("django_conditional")

Rows = Mapping[str, tuple[type[models.Model], object]]  # object key -> (model, pk)

_CHUNK = 500


@dataclass
class _Batch:
    keys: dict[str, bool] = field(default_factory=dict)  # key -> deleted
    rows: dict[str, tuple[type[models.Model], object]] = field(default_factory=dict)

    def add(self, keys: Iterable[str], rows: Rows, deleted: Iterable[str]) -> None:
        for key in keys:
            self.keys.setdefault(key, False)
        for key in deleted:
            self.keys[key] = True
        self.rows.update(rows)


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


def _existing(rows: Rows, using: str | None) -> dict[str, bool]:
    """For each object key of ``rows``: whether its row is missing now (deleted)."""
    by_model: dict[type[models.Model], dict[str, object]] = {}
    for key, (model, pk) in rows.items():
        by_model.setdefault(model, {})[key] = pk
    deleted: dict[str, bool] = {}
    for model, keyed in by_model.items():
        try:
            present = _present_keys(model, list(keyed.values()), using)
        except DatabaseError:
            raise
        except Exception:  # a pk the field rejects: keep what the receivers recorded
            logger.exception("django_conditional: cannot check %s rows", model)
            continue
        deleted.update((key, key not in present) for key in keyed)
    return deleted


def _present_keys(
    model: type[models.Model], pks: list[object], using: str | None
) -> set[str]:
    db = using or router.db_for_write(model)
    present: set[str] = set()
    for start in range(0, len(pks), _CHUNK):
        found = model._base_manager.using(db).filter(pk__in=pks[start : start + _CHUNK])
        present.update(
            versions.object_key(model, pk) for pk in found.values_list("pk", flat=True)
        )
    return present


def _flush(current: _Batch, using: str | None) -> None:
    flags = dict(current.keys)
    flags.update(_existing(current.rows, using))
    _send([key for key, gone in flags.items() if not gone], False, using)
    _send([key for key, gone in flags.items() if gone], True, using)


def _send(keys: list[str], deleted: bool, using: str | None) -> None:
    """``versions.bump``; a key it rejects (too long, not a key) is logged and skipped, so the
    others are bumped: the data was written already, its bump must not raise."""
    if not keys:
        return
    try:
        versions.bump(*keys, deleted=deleted, using=using)
        return
    except DatabaseError:
        raise
    except (ValueError, TypeError):
        pass
    for key in keys:
        try:
            versions.bump(key, deleted=deleted, using=using)
        except DatabaseError:
            raise
        except (ValueError, TypeError):
            logger.exception("django_conditional: cannot bump %r; skipped", key)


def bump(
    keys: Iterable[str],
    *,
    rows: Rows | None = None,
    deleted: Iterable[str] = (),
    using: str | None = None,
) -> None:
    """Bump ``keys`` (``deleted`` ones as deleted) now, or at the end of the current batch, which
    checks then whether the rows ``rows`` names exist."""
    deleted = list(deleted)
    current = _current_batch.get()
    if current is not None:
        current.add(keys, rows or {}, deleted)
        return
    gone = set(deleted)
    _send([key for key in dict.fromkeys(keys) if key not in gone], False, using)
    _send(list(dict.fromkeys(deleted)), True, using)
