"""A tiny project serving tests/urls_versioned.py under a real server (gunicorn) for the stale-304 test.

Database and cache come from DATABASE_URL and REDIS_URL, as for the test suite; the test points
DATABASE_URL at the test database it created.
"""

from __future__ import annotations

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.urls_versioned"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
