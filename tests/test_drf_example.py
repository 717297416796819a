"""The example project's DRF pages (/drf/articles/, /drf/schema/): through APIClient, and through
gunicorn on PostgreSQL + Redis (the tour of docs/drf.md, and 8 parallel PUTs with one If-Match)."""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import subprocess
import threading
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from example_project.blog.models import Article
from example_project.blog.testing import reset_version_cache
from example_project.serving import free_port, stop, wait_until
from tests.test_versioned_server import start_gunicorn
from tests.testapp.models import Article as AppArticle
from tests.testapp.models import Author as AppAuthor
from tests.versioned_support import clear_version_cache

DEMO = "Basic " + base64.b64encode(b"demo:demo").decode()
JSON: dict[str, Any] = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def seeded(db):
    reset_version_cache()
    call_command("seed_demo", "--articles", "12", stdout=StringIO())
    yield
    reset_version_cache()


@pytest.mark.urls("example_project.urls")
@pytest.mark.django_db(transaction=True)
def test_the_drf_list_is_paginated_with_item_etags_and_304s(
    seeded, django_assert_num_queries
):
    client = APIClient()
    page = client.get("/drf/articles/", **JSON)
    assert page.status_code == 200
    body = page.json()
    assert body["count"] == 12 and len(body["results"]) == 10 and body["next"]
    first = body["results"][0]
    assert client.get(f"/drf/articles/{first['id']}/", **JSON)["ETag"] == first["etag"]
    with django_assert_num_queries(0):
        again = client.get("/drf/articles/", HTTP_IF_NONE_MATCH=page["ETag"], **JSON)
    assert again.status_code == 304
    second = client.get("/drf/articles/?page=2", **JSON)
    assert second.status_code == 200 and second["ETag"] != page["ETag"]


@pytest.mark.urls("example_project.urls")
@pytest.mark.django_db(transaction=True)
def test_the_drf_write_tour(seeded):
    client = APIClient()
    url = f"/drf/articles/{Article.objects.order_by('pk').first().pk}/"
    etag = client.get(url, **JSON)["ETag"]
    anonymous = client.patch(url, {"title": "x"}, format="json", HTTP_IF_MATCH=etag)
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Basic")
    client.credentials(HTTP_AUTHORIZATION=DEMO)
    required = client.patch(url, {"title": "x"}, format="json", **JSON)
    assert required.status_code == 428
    assert required["Content-Type"] == "application/problem+json"
    changed = client.patch(
        url, {"title": "Tour"}, format="json", HTTP_IF_MATCH=etag, **JSON
    )
    assert changed.status_code == 200 and changed["ETag"] != etag
    stale = client.patch(
        url, {"title": "Lost"}, format="json", HTTP_IF_MATCH=etag, **JSON
    )
    assert stale.status_code == 412 and stale["ETag"] == changed["ETag"]
    document = client.get(url, **JSON).json()
    put = client.put(
        url,
        {"title": "Put", "body": "b", "author": document["author"], "tags": []},
        format="json",
        HTTP_IF_MATCH=changed["ETag"],
        **JSON,
    )
    assert put.status_code == 200
    created = client.post(
        "/drf/articles/",
        {"title": "New", "body": "b", "author": document["author"]},
        format="json",
        HTTP_IF_NONE_MATCH="*",
        **JSON,
    )
    assert created.status_code == 201
    assert created["Location"].endswith(f"/drf/articles/{created.json()['id']}/")
    assert created["ETag"] == created.json()["etag"]
    deleted = client.delete(url, HTTP_IF_MATCH=put["ETag"])
    assert deleted.status_code == 204


@pytest.mark.urls("example_project.urls")
@pytest.mark.django_db(transaction=True)
def test_the_drf_schema_is_served_and_valid(seeded):
    response = APIClient().get("/drf/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    detail = schema["paths"]["/drf/articles/{id}/"]
    assert "304" in detail["get"]["responses"]
    assert {"412", "428"} <= set(detail["patch"]["responses"])


# Real servers ---------------------------------------------------------------------------------


def _http(port: int, method: str, path: str, body: Any = None, **headers: str):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            sent["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _server_password(username: str, password: str) -> None:
    """Hash the password as the served project can check it (the suite hashes with MD5)."""
    hasher = PBKDF2PasswordHasher()
    User.objects.filter(username=username).update(
        password=hasher.encode(password, hasher.salt())
    )


@pytest.mark.server
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_drf_tour_under_gunicorn_on_postgres_and_redis(tmp_path):
    clear_version_cache()
    call_command("seed_demo", "--articles", "3", stdout=StringIO())
    _server_password("demo", "demo")
    port = free_port()
    env = {"DJANGO_SETTINGS_MODULE": "example_project.settings", "DJANGO_DEBUG": "0"}
    process = start_gunicorn(port, tmp_path / "gunicorn.log", env)
    article = Article.objects.order_by("pk").first()
    assert article is not None
    path = f"/drf/articles/{article.pk}/"
    try:
        wait_until(lambda: _http(port, "GET", path)[0] == 200, process)
        if shutil.which("curl"):  # the page answers curl as docs/drf.md shows
            out = subprocess.run(
                ["curl", "-si", f"http://127.0.0.1:{port}{path}"],
                capture_output=True,
                text=True,
                timeout=15,
                check=True,
            ).stdout
            assert out.startswith("HTTP/1.1 200") and "etag:" in out.lower()
        for probe in ("/drf/articles/", path):
            status, headers, _ = _http(port, "GET", probe, Accept="application/json")
            assert status == 200
            again = _http(
                port,
                "GET",
                probe,
                Accept="application/json",
                If_None_Match=headers["ETag"],
            )
            assert (again[0], again[2]) == (304, b"")
            assert again[1]["ETag"] == headers["ETag"]
        tag = _http(port, "GET", path, Accept="application/json")[1]["ETag"]
        patch = {"title": "Changed under gunicorn"}
        assert _http(port, "PATCH", path, patch, Authorization=DEMO)[0] == 428
        status, changed, _ = _http(
            port, "PATCH", path, patch, Authorization=DEMO, If_Match=tag
        )
        assert status == 200 and changed["ETag"] != tag
        assert (
            _http(port, "PATCH", path, patch, Authorization=DEMO, If_Match=tag)[0]
            == 412
        )
        status, headers, body = _http(
            port, "GET", path, Accept="application/json", If_None_Match=tag
        )
        assert status == 200 and headers["ETag"] == changed["ETag"]
        assert b"Changed under gunicorn" in body
        assert _http(port, "GET", "/drf/schema/")[0] == 200
    finally:
        stop(process)
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in log, log


@pytest.mark.server
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_parallel_puts_with_one_if_match_through_the_drf_viewset(tmp_path):
    clear_version_cache()
    author = AppAuthor.objects.create(name="Ada")
    article = AppArticle.objects.create(author=author, title="start")
    User.objects.create_user(
        "writer", password="secret"
    )  # the server uses tests.settings
    auth = "Basic " + base64.b64encode(b"writer:secret").decode()
    port = free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.serverproject.drf_settings",
        "DRF_TEST_WRITE_DELAY": "0.2",
    }
    process = start_gunicorn(port, tmp_path / "gunicorn.log", env)
    path = f"/articles/{article.pk}/"
    try:
        wait_until(lambda: _http(port, "GET", path)[0] == 200, process)
        tag = _http(port, "GET", path, Accept="application/json")[1]["ETag"]
        results: list[tuple[int, str]] = []
        barrier = threading.Barrier(8)

        def put(index: int) -> None:
            barrier.wait(timeout=10)
            body = {"title": f"writer {index}", "author": author.pk}
            status, headers, _ = _http(
                port,
                "PUT",
                path,
                body,
                Authorization=auth,
                If_Match=tag,
                Accept="application/json",
            )
            results.append((status, headers.get("ETag", "")))

        threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(status for status, _ in results) == [200] + [412] * 7, results
        winner = next(etag for status, etag in results if status == 200)
        assert all(etag == winner for status, etag in results if status == 412)
        assert (
            _http(port, "GET", path, Accept="application/json", If_None_Match=winner)[0]
            == 304
        )
    finally:
        stop(process)
    assert AppArticle.objects.get(pk=article.pk).title.startswith("writer ")
