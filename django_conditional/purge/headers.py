"""The cache-tag headers of a versioned response (``CONDITIONAL_SURROGATE_KEY_HEADERS``)."""

from __future__ import annotations

from collections.abc import Sequence

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_cache_control

from django_conditional.conf import conf
from django_conditional.purge.tags import header_value, separator
from django_conditional.store.keys import bounded_key

__all__ = ["stamp_cache_tags"]


def stamp_cache_tags(
    request: HttpRequest, response: HttpResponseBase, keys: Sequence[str]
) -> None:
    """List ``keys`` (the version keys behind the response) in each configured header of a GET
    or HEAD response; when they cannot fit, keep the response out of shared caches instead."""
    headers = conf.SURROGATE_KEY_HEADERS
    if not headers or not keys or request.method not in ("GET", "HEAD"):
        return
    bounded = [bounded_key(key) for key in keys]
    for name in headers:
        value = header_value(bounded, separator(name))
        if value is None:
            # No purge could reach every copy a shared cache kept: let none keep one.
            patch_cache_control(response, private=True)
            return
        response.headers[name] = value
