"""tests.serverproject serving the DRF test views (tests/urls_drf.py) for the gunicorn DRF test."""

from __future__ import annotations

from tests.serverproject.settings import *  # noqa: F403

ROOT_URLCONF = "tests.urls_drf"
