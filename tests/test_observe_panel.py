"""The django-debug-toolbar panel (extra ``debug``), rendered with the toolbar installed."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

pytest.importorskip("debug_toolbar")

PANEL = "django_conditional.observe.panel.ConditionalPanel"
TOOLBAR = {
    "SHOW_TOOLBAR_CALLBACK": lambda request: True,
    "IS_RUNNING_TESTS": False,
    "RENDER_PANELS": False,
}


@pytest.fixture
def toolbar():
    """The toolbar installed, its middleware first, and only our panel (plus history)."""
    from django.core.checks.registry import registry

    # The toolbar's ready() registers its system checks for good: put the registry back after.
    checks = set(registry.registered_checks), set(registry.deployment_checks)
    # Settings first: the app registry is rebuilt (and the toolbar's ready() run) on entering
    # the override of INSTALLED_APPS, before the other overridden values are in place.
    with (
        override_settings(
            STATIC_URL="/static/",
            MIDDLEWARE=[
                "debug_toolbar.middleware.DebugToolbarMiddleware",
                *settings.MIDDLEWARE,
            ],
            ROOT_URLCONF="tests.urls_toolbar",
            DEBUG_TOOLBAR_CONFIG=TOOLBAR,
            DEBUG_TOOLBAR_PANELS=["debug_toolbar.panels.history.HistoryPanel", PANEL],
            INTERNAL_IPS=["127.0.0.1"],
        ),
        override_settings(
            INSTALLED_APPS=[
                *settings.INSTALLED_APPS,
                "django.contrib.staticfiles",
                "debug_toolbar",
            ]
        ),
    ):
        from debug_toolbar.toolbar import DebugToolbar

        DebugToolbar._panel_classes = None  # the panel list is cached per process
        yield
        DebugToolbar._panel_classes = None
    registry.registered_checks, registry.deployment_checks = checks


def _panel_html(client, request_id: str) -> str:
    rendered = client.get(
        "/__debug__/render_panel/",
        {"request_id": request_id, "panel_id": "ConditionalPanel"},
    )
    assert rendered.status_code == 200
    html: str = rendered.json()["content"]
    return html


@pytest.mark.django_db
@pytest.mark.usefixtures("clean_versions", "toolbar")
def test_panel_shows_the_decision_of_an_api_call(client, article):
    url = f"/articles/{article.pk}/"
    etag = client.get(url).headers["ETag"]
    response = client.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 304
    # A JSON API call: no toolbar in the page, its data through the history (request id header).
    request_id = response.headers["djdt-request-id"]
    html = _panel_html(client, request_id)
    assert "304 If-None-Match" in html
    assert "not-modified" in html
    assert "tests.testapp.views.article" in html
    assert etag.replace('"', "&quot;") in html
    assert "Versions read" in html


@pytest.mark.django_db
@pytest.mark.usefixtures("clean_versions", "toolbar")
def test_panel_keeps_only_its_own_request(client, article):
    from debug_toolbar.toolbar import DebugToolbar

    first = client.get(f"/articles/{article.pk}/")
    second = client.get(f"/dated/{article.pk}/")
    one = _panel_html(client, first.headers["djdt-request-id"])
    two = _panel_html(client, second.headers["djdt-request-id"])
    assert one.count("<h4>") == 1 and two.count("<h4>") == 1
    assert "views.article<" in one.replace("</code>", "<")
    assert "article_dated" in two and "article_dated" not in one
    toolbar = DebugToolbar.fetch(first.headers["djdt-request-id"])
    assert toolbar is not None
    panel = toolbar.get_panel_by_id("ConditionalPanel")
    assert panel.nav_subtitle == "1 decision: 200"
