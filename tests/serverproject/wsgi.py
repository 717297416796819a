"""WSGI entry point of the test server project (``gunicorn tests.serverproject.wsgi:application``)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.serverproject.settings")

application = get_wsgi_application()
