"""URLs of the debug-toolbar panel test: the versioned views and the toolbar's own (included
directly: ``debug_toolbar_urls()`` gives none unless DEBUG, and the test client runs without it)."""

from __future__ import annotations

from django.urls import include, path

from tests.urls_versioned import urlpatterns as versioned

urlpatterns = [*versioned, path("__debug__/", include("debug_toolbar.urls"))]
