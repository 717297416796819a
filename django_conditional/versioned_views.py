"""``@versioned``: validators from the versions of the resources a view shows.

A versioned view names its resources (``ObjectOf``, ``CollectionOf`` or a key function); its
validators are built from their versions, read from the version store together with the headers
remembered from its last 200 in one cache round trip, so a 304 or a 412 costs no database query and
the view never runs. Unsafe methods take the atomic write path (``writes``).

The source of the validators is ``versioned_source.VersionedSource``; the tag's shape is
explained there. A view whose 304s depend only on its URL and request headers has them sent again
while the read that made them holds (``answers``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from django_conditional import answers, remembered, visibility, writes
from django_conditional.flow import View, Visible, conditional_view
from django_conditional.resources import Resource, as_resources
from django_conditional.versioned_source import (
    FROM_VERSIONS,
    Declared,
    ValidatorFunc,
    VersionedSource,
)

__all__ = [
    "FROM_VERSIONS",
    "Declared",
    "ValidatorFunc",
    "VersionedSource",
    "versioned",
    "versioned_view",
]


def versioned_view(
    view: View,
    resources: Declared,
    *,
    vary: Sequence[str] = ("Accept", "Accept-Language"),
    per_user: bool = False,
    last_modified: ValidatorFunc | None = None,
    require_precondition: writes.RequirePrecondition = None,
    headers: Mapping[str, str] | None = None,
    view_id: str | None = None,
    visible: Visible = None,
    write_etag: bool = True,
    visible_by_state: bool = False,
    repeat_answers: bool = True,
) -> View:
    """``versioned(...)(view)``, for callers (the mixins) that build it per class.
    ``repeat_answers=False``: no 304 is sent again (``answers``; a wrapper built per request)."""
    source = VersionedSource(
        resources,
        vary=vary,
        per_user=per_user,
        last_modified=last_modified,
        view_id=view_id or remembered.view_id(view),
    )
    if visible_by_state:
        visible = visibility.by_state(visible, source.view_id, source.read_for_check)
    read_view = conditional_view(view, source, headers=headers)
    checked = writes.guard(
        view,
        read_view,
        source,
        require_precondition,
        visible=visible,
        write_etag=write_etag,
    )
    if repeat_answers and _repeatable(source, visible, visible_by_state, headers):
        source.repeats = True
        checked = answers.remembering(checked, source.meta_keys)
    setattr(checked, writes.SOURCE_ATTRIBUTE, source)
    return checked


def _repeatable(
    source: VersionedSource,
    visible: Visible,
    visible_by_state: bool,
    headers: Mapping[str, str] | None,
) -> bool:
    """Whether the view's 304s depend only on what ``answers`` keys them by (its module)."""
    return (
        not source.per_user
        and source.last_modified in (None, FROM_VERSIONS)
        and all(resource.from_url for resource in source.resources)
        and (visible is None or visible_by_state)
        and not any(name.lower() == "expires" for name in headers or {})
    )


def versioned(
    *resources: Resource | Callable[..., object],
    vary: Sequence[str] = ("Accept", "Accept-Language"),
    per_user: bool = False,
    last_modified: ValidatorFunc | None = None,
    require_precondition: writes.RequirePrecondition = None,
    headers: Mapping[str, str] | None = None,
    visible: Visible = None,
    write_etag: bool = True,
    visible_by_state: bool = False,
) -> Callable[[View], View]:
    """Validate a view against the versions of the resources it shows, before it runs.

    ``@versioned(ObjectOf(Article), CollectionOf(Comment, "by_article", article="pk"))``: GET and
    HEAD get a strong ``ETag`` and a 304 (or 412) from one store read, without a query and
    without running the view; unsafe methods run atomically against the locked versions
    (``writes``). ``vary``: the request headers the representation depends on; ``per_user``: the
    logged-in user too; ``last_modified``: ``FROM_VERSIONS`` or ``(request, *args, **kwargs) ->
    datetime``; ``require_precondition``: the 428 policy; ``visible``: the access check run before
    any precondition (RFC 9110 §13.2.1), remembered per state with ``visible_by_state``;
    ``write_etag=False``: writes answer without an ``ETag`` (§9.3.4). docs/versioned.md has each.
    """
    declared = as_resources(resources)

    def decorator(view: View) -> View:
        return versioned_view(
            view,
            declared,
            vary=vary,
            per_user=per_user,
            last_modified=last_modified,
            require_precondition=require_precondition,
            headers=headers,
            visible=visible,
            write_etag=write_etag,
            visible_by_state=visible_by_state,
        )

    return decorator
