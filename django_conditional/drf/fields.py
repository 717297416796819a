"""``ETagField``: each item of a list carries the ``ETag`` of its own URL.

A client can send that tag in ``If-Match`` to update or delete the item, without a GET of each
item first. The tags of a whole page come from one store read (``ConditionalAPIMixin.conditional_etags``)
made when the first item is serialised, and match what ``GET`` of the item's URL answers to the same
``Accept``, version, language (and user, for per-user views).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers

__all__ = ["ETagField"]

_TAGS_ATTRIBUTE = "_conditional_etags"


class ETagField(serializers.Field):  # type: ignore[type-arg]
    """A read-only field: the item's current entity-tag (null for a deleted item).

    ``etag = ETagField()`` on a serializer used by a ``ConditionalAPIMixin`` view.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        kwargs.setdefault("source", "*")
        kwargs.setdefault(
            "help_text", "The entity-tag of this item's own URL, for If-Match."
        )
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str | None:
        view = self.context.get("view")
        if view is None or not hasattr(view, "conditional_etags"):
            raise ImproperlyConfigured(
                "ETagField needs the serializer context of a ConditionalAPIMixin view."
            )
        # The list being serialised (a page), when this item is one of many.
        listing = getattr(self.parent, "parent", None)
        items = (
            getattr(listing, "instance", None)
            if isinstance(listing, serializers.ListSerializer)
            else None
        )
        if items is None:
            return view.conditional_etags([value])[0]  # type: ignore[no-any-return]
        tags: dict[int, str | None] | None = getattr(listing, _TAGS_ATTRIBUTE, None)
        if tags is None:
            page = list(items)  # the page's list, or the queryset's cached results
            tags = dict(zip(map(id, page), view.conditional_etags(page), strict=True))
            setattr(listing, _TAGS_ATTRIBUTE, tags)
        if (
            id(value) not in tags
        ):  # an item the listing did not hold (a manager's .all())
            return view.conditional_etags([value])[0]  # type: ignore[no-any-return]
        return tags[id(value)]
