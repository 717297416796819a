"""``manage.py conditional_audit`` and ``django_conditional.testing`` (#20 item 2): the example
project comes out clean, the broken site shows each of its problems once; and the view checks
(#20 item 3) on both."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_conditional import audit, testing
from django_conditional.testing import assert_conditional
from django_conditional.viewchecks import check_versioned_views
from example_project import settings as example_settings
from tests.urls_audit_broken import PROBLEMS

# The fixture a user's conftest gets with pytest_plugins = ["django_conditional.testing"].
conditional_audit = testing.conditional_audit
BROKEN = "tests.urls_audit_broken"
POLICY = {"paths": ["^/write-not-required/"]}


def _problems(output: str) -> list[tuple[str, str]]:
    rows = [line.split() for line in output.splitlines()]
    return [(row[0], row[1]) for row in rows if len(row) > 2 and row[2] == "PROBLEM"]


@pytest.mark.django_db
@pytest.mark.urls(BROKEN)
@override_settings(CONDITIONAL_REQUIRE_PRECONDITION=POLICY)
def test_broken_site_reports_each_problem_once_and_fails():
    out = StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("conditional_audit", "--urlconf", BROKEN, stdout=out)
    assert failed.value.returncode == 1
    assert sorted(_problems(out.getvalue())) == sorted(PROBLEMS.items())
    assert "9 problem(s) in 9 URL(s)" in str(failed.value)


@pytest.mark.django_db
@pytest.mark.urls(BROKEN)
def test_safe_only_sends_no_write():
    out = StringIO()
    with pytest.raises(CommandError):
        call_command(
            "conditional_audit", "/write-ignores-if-match/", "/no-validator/",
            "--safe-only", stdout=out,
        )  # fmt: skip
    assert _problems(out.getvalue()) == [("/no-validator/", "NO_VALIDATOR")]


@pytest.fixture
def example_site(settings, db):
    from example_project.blog.factories import ArticleFactory, CommentFactory
    from example_project.blog.testing import reset_version_cache

    settings.MIDDLEWARE = list(example_settings.MIDDLEWARE)
    settings.ROOT_URLCONF = "example_project.urls"
    reset_version_cache()
    call_command("seed_demo", "--articles", "0", stdout=StringIO())  # the demo user
    article = ArticleFactory()
    CommentFactory(article=article)
    yield article
    reset_version_cache()


def test_example_project_is_clean(example_site):
    pk = example_site.pk
    out = StringIO()
    call_command(
        "conditional_audit", "--urlconf", "example_project.urls",
        f"/articles/{pk}/", f"/api/articles/{pk}/", f"/drf/articles/{pk}/",
        "--header", "Authorization: Basic ZGVtbzpkZW1v",  # demo:demo
        stdout=out,
    )  # fmt: skip
    output = out.getvalue()
    assert _problems(output) == []
    assert "no problem" in output
    # The detail pages were checked for real: revalidated with both validators, written to.
    rows = [line.split()[:3] for line in output.splitlines()]
    assert [f"/articles/{pk}/", "IMS_NOT_304", "OK"] in rows
    assert [f"/api/articles/{pk}/", "IF_MATCH_IGNORED", "OK"] in rows
    assert ["/about/", "VARY_ETAG_DOESNT_CHANGE", "OK"] in rows


def test_assert_conditional_helper_and_fixture(example_site, client, conditional_audit):  # noqa: F811
    findings = assert_conditional(client, f"/api/articles/{example_site.pk}/")
    assert {f.check for f in findings} >= {"INM_NOT_304", "HEAD_MISMATCH"}
    assert conditional_audit("/about/", unsafe=None)


@pytest.mark.django_db
@pytest.mark.urls(BROKEN)
def test_assert_conditional_lists_the_problems(client):
    with pytest.raises(
        AssertionError, match="MISSING_HDRS_304: the 304 lacks Cache-Control"
    ):
        assert_conditional(client, "/missing-304-headers/")


@pytest.fixture
def live_site():
    """The site served over HTTP by a WSGI server in a thread (views without the database)."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.core.handlers.wsgi import WSGIHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = make_server("127.0.0.1", 0, WSGIHandler(), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.urls(BROKEN)
def test_over_http_to_a_live_site(live_site):
    fetch = audit.http_fetch(live_site)
    findings = audit.audit(fetch, "/ignores-inm/") + audit.audit(
        fetch, "/head-differs/"
    )
    assert [(f.url, f.check) for f in audit.problems(findings)] == [
        ("/ignores-inm/", "INM_NOT_304"),
        ("/head-differs/", "HEAD_MISMATCH"),
    ]


def test_table_lines_up():
    findings = [
        audit.Finding("/a/", "NO_VALIDATOR", audit.OK, '"x"'),
        audit.Finding("/longer/", "INM_NOT_304", audit.PROBLEM),
    ]
    lines = audit.table(findings).splitlines()
    assert lines[0].split() == ["URL", "check", "result", "detail"]
    assert lines[2].index("NO_VALIDATOR") == lines[3].index("INM_NOT_304")


# -- system checks of the versioned views ------------------------------------------------------


@pytest.mark.urls(BROKEN)
def test_untracked_model_and_bulk_paths_are_reported():
    messages = check_versioned_views()
    found = sorted((m.id, m.obj._meta.label) for m in messages)
    assert found == [
        ("django_conditional.E016", "testapp.Note"),
        ("django_conditional.W011", "testapp.Author"),
    ]
    assert "notes/<int:pk>/" in messages[0].msg or "notes/<int:pk>/" in messages[1].msg


@pytest.mark.urls("example_project.urls")
def test_example_project_passes_the_view_checks():
    assert check_versioned_views() == []


@pytest.mark.urls("tests.urls_versioned")
def test_class_based_views_are_walked():
    from django_conditional.urlwalk import routes
    from django_conditional.viewchecks import view_models
    from tests.testapp.models import Article

    found = {r.route: view_models(r) for r in routes("tests.urls_versioned")}
    assert found["cbv/articles/"] == [Article]  # derived from the ListView's model
    assert found["articles/<int:pk>/"] == [Article]
