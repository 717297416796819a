"""The shape of the core: one parse per request, one read per answer, no writes into META, the
public API at the package root, and the layout rules of ARCHITECTURE.md."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.http import Http404, HttpResponse
from django.test import RequestFactory, override_settings

import django_conditional
from django_conditional import fastcache, versions
from django_conditional import request as conditional_request
from django_conditional.resources import CollectionOf, ObjectOf
from tests.testapp.models import Article, Comment
from tests.testapp.views import CALLS
from tests.versioned_support import clear_version_cache, count_cache_calls

PACKAGE = Path(django_conditional.__file__).parent
WITH_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_conditional.compression.GZipMiddleware",
    "django_conditional.middleware.ConditionalGetMiddleware",
]


# ---------------------------------------------------------------------------------------------
# One parse, one read


@pytest.mark.django_db
@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions")
@override_settings(MIDDLEWARE=WITH_MIDDLEWARE)
def test_headers_are_parsed_once_per_request_through_middleware_and_view(
    client, article
):
    first = client.get(f"/articles/{article.pk}/")
    with mock.patch.object(
        conditional_request, "parse_headers", wraps=conditional_request.parse_headers
    ) as parse:
        response = client.get(
            f"/articles/{article.pk}/",
            headers={"If-None-Match": first.headers["ETag"], "Accept-Encoding": "gzip"},
        )
    assert response.status_code == 304
    assert parse.call_count == 1


@pytest.mark.django_db
@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions")
def test_warm_304_is_one_round_trip_and_no_query(
    client, article, django_assert_num_queries
):
    first = client.get(f"/articles/{article.pk}/")
    with django_assert_num_queries(0), count_cache_calls() as calls:
        response = client.get(
            f"/articles/{article.pk}/", headers={"If-None-Match": first.headers["ETag"]}
        )
    assert response.status_code == 304
    assert calls.round_trips == 1, calls.calls
    assert CALLS["article"] == 1


@pytest.mark.django_db
@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions")
def test_cold_304_is_one_cache_read_and_one_query(
    client, article, django_assert_num_queries
):
    first = client.get(f"/articles/{article.pk}/")
    clear_version_cache()
    versions.get("c:warm-up")  # a cache that lost the article's versions, not its epoch
    with (
        django_assert_num_queries(1),
        count_cache_calls() as calls,
        mock.patch.object(fastcache, "get_many", wraps=fastcache.get_many) as reads,
    ):
        response = client.get(
            f"/articles/{article.pk}/", headers={"If-None-Match": first.headers["ETag"]}
        )
    assert response.status_code == 304
    # One read of the cache (epoch, versions and remembered headers together); the database
    # answers the miss and its values are stored: the one write of the fallback.
    assert reads.call_count == 1
    assert calls.round_trips == 2, (calls.calls, calls.redis_commands)
    assert CALLS["article"] == 1


# ---------------------------------------------------------------------------------------------
# Nothing writes into request.META


@pytest.mark.django_db
@pytest.mark.usefixtures("clean_versions")
def test_a_failed_if_range_hides_range_from_the_view_without_touching_meta(article):
    from django_conditional import condition

    seen: list[str | None] = []

    @condition(etag_func=lambda request: '"current"')
    def view(request):
        seen.append(request.META.get("HTTP_RANGE"))
        return HttpResponse(b"0123456789")

    request = RequestFactory().get(
        "/", headers={"Range": "bytes=0-1", "If-Range": '"old"'}
    )
    before = dict(request.META)
    assert view(request).status_code == 200
    assert seen == [None]
    assert before == request.META


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions")
def test_a_write_reads_other_variants_tags_without_rewriting_meta(client, article):
    from tests.testapp import views

    page = client.get(f"/articles/{article.pk}/", headers={"Accept": "text/html"})
    request = RequestFactory().put(
        f"/articles/{article.pk}/",
        data=b'{"title": "New"}',
        content_type="application/json",
        headers={"If-Match": page.headers["ETag"], "Accept": "*/*"},
    )
    before = dict(request.META)
    response = views.article(request, pk=article.pk)
    assert response.status_code == 200
    assert before == request.META


# ---------------------------------------------------------------------------------------------
# Resources and keys


def test_a_url_value_that_cannot_be_a_pk_is_a_404(rf):
    with pytest.raises(Http404):
        ObjectOf(Article).keys(rf.get("/"), (), {"pk": "not-a-number"})


@pytest.mark.django_db
@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions")
def test_a_huge_integer_pk_is_a_404_not_a_500(client):
    response = client.get(f"/articles/{'9' * 400}/")
    assert response.status_code == 404


def test_named_collection_parameters_are_normalised_by_their_field():
    assert versions.collection_key(
        Comment, "by_article", article="01"
    ) == versions.collection_key(Comment, "by_article", article=1)
    resource = CollectionOf(Comment, "by_article", article="pk")
    assert resource.keys(None, (), {"pk": "007"}) == [
        versions.collection_key(Comment, "by_article", article=7)
    ]


# ---------------------------------------------------------------------------------------------
# The public API


def test_public_api_at_the_package_root():
    from django_conditional import (  # noqa: F401
        bump,
        condition,
        etag,
        last_modified,
        track,
        versioned,
    )

    for name in django_conditional.__all__:
        assert getattr(django_conditional, name) is not None
    assert {"versioned", "condition", "etag", "last_modified", "track", "bump"} <= set(
        django_conditional.__all__
    )
    with pytest.raises(AttributeError):
        django_conditional.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    ("old", "new"),
    [("Obj", "ObjectOf"), ("Collection", "CollectionOf"), ("Function", "KeyFunction")],
)
def test_renamed_resources_still_import_with_a_deprecation_warning(old, new):
    from django_conditional import resources

    with pytest.warns(DeprecationWarning, match=new):
        assert getattr(resources, old) is getattr(resources, new)
    with pytest.raises(AttributeError):
        resources.Nothing  # noqa: B018


# ---------------------------------------------------------------------------------------------
# The layout rules of ARCHITECTURE.md


def _modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_modules_and_functions_stay_short():
    long_modules = {
        _name(p): n for p in _modules() if (n := len(p.read_text().splitlines())) > 350
    }
    assert not long_modules
    long_functions = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long_functions.append(f"{_name(path)}.{node.name}: {length}")
    assert not long_functions


def _top_level_imports(path: Path) -> set[str]:
    """Package modules imported at import time (not under TYPE_CHECKING, not in functions)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("django_conditional"):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(
                a.name for a in node.names if a.name.startswith("django_conditional")
            )
    return found


def test_no_import_cycle():
    modules = {_name(p): p for p in _modules()}
    graph = {
        name: {
            dep for dep in _top_level_imports(path) if dep in modules and dep != name
        }
        for name, path in modules.items()
    }
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, " -> ".join([*visiting, name])
        if name in done:
            return
        visiting.append(name)
        for dep in graph[name]:
            if dep != "django_conditional":
                visit(dep)
        visiting.pop()
        done.add(name)

    for name in graph:
        visit(name)


def test_the_pure_engine_imports_nothing_from_django():
    code = (
        "import sys\n"
        "import django_conditional.preconditions, django_conditional.httpdate\n"
        "import django_conditional.validators, django_conditional.ranges\n"
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# Last-Modified from the versions' bump times (no query)


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions")
def test_last_modified_from_versions_costs_no_query(
    client, article, django_assert_num_queries
):

    from django_conditional.httpdate import parse_http_date

    path = f"/bumped-at/{article.pk}/"
    first = client.get(path)
    modified = first.headers["Last-Modified"]
    row = versions.locked_stamps([versions.object_key(article)])
    assert parse_http_date(modified) is not None and row
    with django_assert_num_queries(0):
        by_date = client.get(path, headers={"If-Modified-Since": modified})
        by_tag = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert by_date.status_code == by_tag.status_code == 304
    assert by_tag.headers["Last-Modified"] == modified
    put = client.put(
        path,
        data=b'{"title": "New"}',
        content_type="application/json",
        headers={"If-Unmodified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
    )
    assert put.status_code == 200
    after = client.get(path)
    later = parse_http_date(after.headers["Last-Modified"])
    earlier = parse_http_date(modified)
    assert later is not None and earlier is not None and later >= earlier
    assert after.headers["ETag"] != first.headers["ETag"]


def test_an_integer_no_column_can_hold_is_a_404_on_every_django(rf):
    with pytest.raises(Http404):
        ObjectOf(Article).keys(rf.get("/"), (), {"pk": 10**40})
    with pytest.raises(Http404):
        ObjectOf(Article).keys(rf.get("/"), (), {"pk": -(10**40)})
    assert ObjectOf(Article).keys(rf.get("/"), (), {"pk": 7}) == [
        versions.object_key(Article, 7)
    ]
    # A primary key that is not an integer column is not range-checked.
    from tests.testapp.models import Country

    key = ObjectOf(Country).keys(rf.get("/"), (), {"pk": 10**40})
    assert key == [versions.object_key(Country, 10**40)]


def test_root_names_are_never_shadowed_by_submodules():
    """``django_conditional.versioned`` is the decorator, whatever was imported before."""
    import importlib

    for name in django_conditional.__all__:
        if name == "__version__":
            continue
        value = getattr(django_conditional, name)
        assert not isinstance(value, type(importlib)), name
        assert importlib.util.find_spec(f"django_conditional.{name}") is None, name
