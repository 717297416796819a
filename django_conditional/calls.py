"""Calling a view's helper functions (validators, access checks) from sync or async views.

A helper may be sync or async whatever the view is: a sync view runs an awaitable to completion,
an async view runs a sync helper (which may use the ORM) in a thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from inspect import isawaitable
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.http import HttpRequest

__all__ = ["acall", "call"]

Args = tuple[object, ...]
Kwargs = dict[str, object]


def call(
    func: Callable[..., object] | None, request: HttpRequest, args: Args, kwargs: Kwargs
) -> Any:
    """``func(request, *args, **kwargs)`` (None without a function); an awaitable it returns is
    run to completion, for an async validator function on a sync view."""
    if func is None:
        return None
    result = func(request, *args, **kwargs)
    if isawaitable(result):
        return async_to_sync(_await)(result)
    return result


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


async def acall(
    func: Callable[..., object] | None, request: HttpRequest, args: Args, kwargs: Kwargs
) -> Any:
    """``call`` for async views: a sync function (which may use the ORM) runs in a thread."""
    if func is None:
        return None
    if iscoroutinefunction(func):
        return await func(request, *args, **kwargs)
    result = await sync_to_async(func)(request, *args, **kwargs)
    return await result if isawaitable(result) else result
