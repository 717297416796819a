"""An access check remembered per resource state: ``versioned(..., visible_by_state=True)``.

A detail page's access check ("is this article published?") is a query, and it runs before every
precondition (RFC 9110 §13.2.1), so every 304 of the page would pay a database round trip. When
the check depends only on data the view's resources version (not on who asks, nor on the clock),
its answer holds exactly as long as those versions do: any change to that data bumps one of them,
and a bumped version is another memo key. So a True answer is remembered per view, keys, versions
and time of their last bump, in a bounded table of this process, and the check runs again after any
bump. The versions come from the view's own read, made first and kept for its decision (one read
per request; the local version cache makes it free); a stale memo would need stale versions, which
would make the 304 itself stale anyway. Only True is remembered (the view of a hidden resource runs
anyway); unsafe methods always run the check.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponseBase

from django_conditional import versions
from django_conditional.flow import Args, Kwargs, Visible, call
from django_conditional.preconditions import SAFE_METHODS

__all__ = ["by_state", "forget"]

MAX_REMEMBERED: Final = 4096
_State = tuple[object, ...]
_remembered: OrderedDict[_State, None] = OrderedDict()
_lock = threading.Lock()


def by_state(
    visible: Visible,
    view_id: str,
    read: Callable[[HttpRequest, Args, Kwargs], versions.Snapshot],
) -> Visible:
    """``visible``, asked once per state of the resources ``read`` reads (see the module): the
    view's own read, kept for its decision."""
    if visible is None:
        return None
    check = visible

    def remembered_visible(
        request: HttpRequest, *args: object, **kwargs: object
    ) -> object:
        if request.method not in SAFE_METHODS:
            return call(check, request, args, kwargs)
        try:
            snapshot = read(request, args, kwargs)
        except DatabaseError:
            return call(check, request, args, kwargs)  # the view's own path reports it
        state: _State = (
            view_id,
            tuple(sorted(snapshot.versions.items())),
            snapshot.last_changed(),
        )
        with _lock:
            if state in _remembered:
                _remembered.move_to_end(state)
                return True
        seen = call(check, request, args, kwargs)
        if seen and not isinstance(seen, HttpResponseBase):
            with _lock:
                _remembered[state] = None
                if len(_remembered) > MAX_REMEMBERED:
                    _remembered.popitem(last=False)
        return seen

    return remembered_visible


def forget() -> None:
    """Drop every remembered answer (tests)."""
    with _lock:
        _remembered.clear()
