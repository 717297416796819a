"""Correct, cheap HTTP conditional requests (RFC 9110) for Django."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("django-conditional")
except (
    PackageNotFoundError
):  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
