"""Correct, cheap HTTP conditional requests (RFC 9110) for Django."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("django-conditional")
except (
    PackageNotFoundError
):  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from django_conditional.tracking import track
    from django_conditional.versions import bump

__all__ = ["__version__", "bump", "track"]

# ``track`` and ``bump`` are imported on first use, so importing the package (as Django does for
# INSTALLED_APPS, before settings are ready) imports nothing from Django.
_LAZY = {"track": "django_conditional.tracking", "bump": "django_conditional.versions"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
