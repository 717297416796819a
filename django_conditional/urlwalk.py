"""The site's URL patterns, walked once: each view with its route (system checks, the audit)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

# A route part that takes a value: a path converter or a regex group.
_PARAMETER = re.compile(r"<[^>]+>|\(|\[|\\d|\\w|\.\*|\.\+")


@dataclass(frozen=True, slots=True)
class Route:
    """One URL pattern: its full route (as written: ``articles/<int:pk>/``) and its view."""

    route: str
    callback: Callable[..., Any]
    name: str | None

    @property
    def view_class(self) -> type | None:
        found = getattr(self.callback, "view_class", None)
        return found if isinstance(found, type) else None

    @property
    def path(self) -> str | None:
        """The URL path of a route without parameters (``/about/``), else None."""
        route = self.route.removeprefix("^").removesuffix("$").removesuffix(r"\Z")
        if _PARAMETER.search(route):
            return None
        return "/" + route.replace("\\", "")


def _text(pattern: URLPattern | URLResolver) -> str:
    return str(pattern.pattern)


def routes(urlconf: str | None = None) -> Iterator[Route]:
    """Every view of ``urlconf`` (the site's ``ROOT_URLCONF`` by default), depth first."""
    stack: list[tuple[str, URLPattern | URLResolver]] = [
        ("", pattern) for pattern in reversed(get_resolver(urlconf).url_patterns)
    ]
    while stack:
        prefix, pattern = stack.pop()
        if isinstance(pattern, URLResolver):
            inner = prefix + _text(pattern).removesuffix("$")
            stack.extend((inner, p) for p in reversed(pattern.url_patterns))
        elif isinstance(pattern, URLPattern):
            route = prefix + _text(pattern).removeprefix("^")
            yield Route(route, pattern.callback, pattern.name)
