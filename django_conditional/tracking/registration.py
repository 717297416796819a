"""``track`` and ``untrack``: register a model and connect the receivers of every class whose
signals can report a change to its rows (proxies and multi-table children, even those defined
after ``track`` ran)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.signals import class_prepared

from django_conditional.tracking.receivers import connect, connect_m2m, disconnect
from django_conditional.tracking.registry import (
    CollectionsFunc,
    Tracking,
    concerned,
    forget,
    models_tracked,
    register,
    senders,
    trackings,
    unregister,
)

_M = TypeVar("_M", bound=models.Model)

_connected = False


def _on_class_prepared(sender: type[models.Model], **kwargs: object) -> None:
    # A proxy or a multi-table child of a tracked model, defined after ``track`` ran: its
    # signals name it, not the tracked model.
    if any(concerned(sender, model) for model in models_tracked()):
        forget()
        connect(sender)


def _connect_global() -> None:
    global _connected
    if not _connected:
        connect_m2m()
        class_prepared.connect(
            _on_class_prepared, dispatch_uid="django_conditional.proxies"
        )
        _connected = True


def track(
    model: type[_M],
    *,
    parents: Sequence[str] = (),
    collections: Sequence[CollectionsFunc] = (),
) -> type[_M]:
    """Bump ``model``'s versions whenever one of its objects changes (see the package docstring).

    ``parents``: names of ForeignKey/OneToOneField fields whose targets are bumped too.
    ``collections``: callables ``instance -> key(s)`` naming the collections the instance belongs to,
    e.g. ``lambda a: collection_key(Article, "by_author", author=a.author_id)``; they are called with
    the row before and after each change, so a move between collections bumps both.
    Returns the model, so it also works as a class decorator. Calling it again replaces the options.
    """
    if model._meta.abstract or model._meta.proxy:
        raise ImproperlyConfigured(
            f"track() needs a concrete model, not {model._meta.label} (its proxies are covered)"
        )
    tracking = Tracking(model, tuple(parents), tuple(collections))
    if apps.ready:
        tracking.parent_fields()  # fail early on a typo
    register(tracking)
    _connect_global()
    for sender in senders(model):
        connect(sender)
    return model


def untrack(model: type[models.Model]) -> None:
    """Stop tracking ``model`` (tests, mostly)."""
    if not unregister(model):
        return
    for sender in senders(model):
        if not trackings(sender):
            disconnect(sender)
