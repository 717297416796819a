"""Unsafe methods on versioned views: 428, 412 against the locked database versions, new ETag."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from unittest import mock

import pytest
from django.core.cache import caches
from django.db import connection, connections, transaction
from django.test import AsyncClient, Client
from django.test.utils import CaptureQueriesContext

from django_conditional import versions
from django_conditional.conf import conf
from django_conditional.httpdate import format_http_date
from django_conditional.models import ResourceVersion
from tests.testapp.models import Article, Author
from tests.testapp.views import CALLS, WRITE_DELAY
from tests.versioned_support import run_async

pytestmark = pytest.mark.urls("tests.urls_versioned")


@pytest.fixture(autouse=True)
def _clean(clean_versions: None) -> Iterator[None]:
    yield
    WRITE_DELAY["seconds"] = 0.0


def put(client: Client, path: str, data: dict[str, str], **headers: str):
    return client.put(
        path, json.dumps(data), content_type="application/json", headers=headers
    )


def current_etag(client: Client, path: str, **headers: str) -> str:
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    return str(response.headers["ETag"])


def title(article: Article) -> str:
    return str(Article.objects.get(pk=article.pk).title)


# ---------------------------------------------------------------------------------------------
# If-Match


def test_put_with_current_if_match_writes_and_answers_the_new_etag(
    client, article, django_capture_on_commit_callbacks
):
    path = f"/articles/{article.pk}/"
    before = current_etag(client, path)
    with django_capture_on_commit_callbacks(execute=True):
        response = put(client, path, {"title": "Two"}, **{"If-Match": before})
    assert response.status_code == 200
    assert response.json()["title"] == "Two"
    assert title(article) == "Two"
    new = response.headers["ETag"]
    assert new != before
    assert new == current_etag(client, path)
    # The new tag works for the next write, the old one does not.
    with django_capture_on_commit_callbacks(execute=True):
        stale = put(client, path, {"title": "Three"}, **{"If-Match": before})
        fresh = put(client, path, {"title": "Three"}, **{"If-Match": new})
    assert stale.status_code == 412
    assert fresh.status_code == 200


def test_put_with_stale_if_match_is_412_without_running_the_view(
    client, article, django_capture_on_commit_callbacks
):
    path = f"/articles/{article.pk}/"
    before = current_etag(client, path)
    with django_capture_on_commit_callbacks(execute=True):
        Article.objects.filter(pk=article.pk).update(title="Changed elsewhere")
    CALLS.clear()
    response = put(client, path, {"title": "Mine"}, **{"If-Match": before})
    assert response.status_code == 412
    assert CALLS["article"] == 0
    assert title(article) == "Changed elsewhere"
    body = response.json()
    assert body["status"] == 412
    assert body["precondition"] == "If-Match"
    # The 412 carries the current validator: retrying with it succeeds.
    assert response.headers["ETag"] == current_etag(client, path)
    retry = put(client, path, {"title": "Mine"}, **{"If-Match": response["ETag"]})
    assert retry.status_code == 200


@pytest.mark.parametrize("method", ["patch", "delete", "post"])
def test_every_unsafe_method_is_checked(client, article, method):
    path = f"/articles/{article.pk}/"
    response = getattr(client, method)(
        path, "{}", content_type="application/json", headers={"If-Match": '"old"'}
    )
    assert response.status_code == 412
    assert CALLS["article"] == 0


def test_if_match_from_another_negotiated_variant_matches_the_state(client, article):
    # The page was read as HTML in French; the script writing it sends other Accept headers.
    path = f"/articles/{article.pk}/"
    read = current_etag(client, path, Accept="text/html", **{"Accept-Language": "fr"})
    response = put(
        client,
        path,
        {"title": "Two"},
        Accept="*/*",
        **{"Accept-Language": "en", "If-Match": f'"x", {read}'},
    )
    assert response.status_code == 200
    assert response.headers["ETag"] != read


def test_weak_if_match_never_matches(client, article):
    path = f"/articles/{article.pk}/"
    tag = current_etag(client, path)
    response = put(client, path, {"title": "Two"}, **{"If-Match": f"W/{tag}"})
    assert response.status_code == 412


def test_if_match_star(client, article):
    path = f"/articles/{article.pk}/"
    assert put(client, path, {"title": "Two"}, **{"If-Match": "*"}).status_code == 200


def test_if_none_match_star_refuses_to_overwrite(client, article):
    path = f"/articles/{article.pk}/"
    response = put(client, path, {"title": "Two"}, **{"If-None-Match": "*"})
    assert response.status_code == 412
    assert response.json()["precondition"] == "If-None-Match"
    assert CALLS["article"] == 0


def test_if_none_match_of_another_variant_refuses_too(client, article):
    path = f"/articles/{article.pk}/"
    read = current_etag(client, path, **{"Accept-Language": "fr"})
    response = put(
        client,
        path,
        {"title": "Two"},
        **{"Accept-Language": "de", "If-None-Match": f"W/{read}"},
    )
    assert response.status_code == 412


def test_delete_with_if_match(client, article, django_capture_on_commit_callbacks):
    path = f"/articles/{article.pk}/"
    tag = current_etag(client, path)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(path, headers={"If-Match": tag})
    assert response.status_code == 204
    assert "ETag" not in response.headers  # nothing current to validate
    assert client.get(path, headers={"If-None-Match": tag}).status_code == 404
    again = client.delete(path, headers={"If-Match": tag})
    assert again.status_code == 412


def test_write_to_a_deleted_object_with_if_none_match_star_runs(
    client, article, django_capture_on_commit_callbacks
):
    pk = article.pk
    with django_capture_on_commit_callbacks(execute=True):
        article.delete()
    response = put(client, f"/articles/{pk}/", {"title": "x"}, **{"If-None-Match": "*"})
    assert response.status_code == 404  # the view ran (and this one does not create)
    assert CALLS["article"] == 1
    assert "ETag" not in response.headers


def test_a_never_bumped_key_counts_as_existing(client, db):
    # The store cannot tell "never changed" from "never existed" without a query: version 0
    # is an existing resource, so If-None-Match: * is refused.
    response = put(client, "/articles/999/", {"title": "x"}, **{"If-None-Match": "*"})
    assert response.status_code == 412
    assert CALLS["article"] == 0


# ---------------------------------------------------------------------------------------------
# Against the database, locked, not the cache


def test_if_match_is_checked_against_the_database_not_a_stale_cache(
    client, article, django_capture_on_commit_callbacks
):
    path = f"/articles/{article.pk}/"
    old = current_etag(client, path)
    key = versions.object_key(Article, article.pk)
    old_version = versions.get(key)
    with django_capture_on_commit_callbacks(execute=True):
        versions.bump(key)
    new = current_etag(client, path)
    # Make the cache lie: it says the old version, the database has the new one.
    caches[conf.CACHE_ALIAS].set(versions.cache_key(key), old_version)
    assert current_etag(client, path) == old
    assert put(client, path, {"title": "x"}, **{"If-Match": old}).status_code == 412
    assert put(client, path, {"title": "y"}, **{"If-Match": new}).status_code == 200


def test_the_check_runs_on_locked_rows_inside_the_transaction(client, article):
    path = f"/articles/{article.pk}/"
    tag = current_etag(client, path)
    seen = []
    real_lock = versions.lock_stamps

    def spy(keys, using=None, *, known_first=False):
        seen.append((list(keys), connection.in_atomic_block))
        return real_lock(keys, using, known_first=known_first)

    with mock.patch.object(versions, "lock_stamps", spy):
        assert put(client, path, {"title": "x"}, **{"If-Match": tag}).status_code == 200
    key = versions.object_key(Article, article.pk)
    # Locked once, before the check (the new ETag comes from the transaction's own bump).
    assert seen == [([key], True)]


def test_a_version_row_deleted_by_hand_is_made_again_before_any_lock(client, article):
    path = f"/articles/{article.pk}/"
    tag = current_etag(client, path)
    assert put(client, path, {"title": "x"}, **{"If-Match": tag}).status_code == 200
    key = versions.object_key(Article, article.pk)
    ResourceVersion.objects.filter(
        key=key
    ).delete()  # this process saw the row: now gone
    with CaptureQueriesContext(connection) as queries:
        response = put(client, path, {"title": "y"}, **{"If-Match": "*"})
    assert response.status_code == 200 and "ETag" in response
    rolled_back = [q for q in queries.captured_queries if "ROLLBACK" in q["sql"]]
    assert rolled_back or connection.vendor == "sqlite"  # the first try, given up
    assert Article.objects.get(pk=article.pk).title == "y"
    assert ResourceVersion.objects.filter(key=key).exists()


def test_a_failing_view_rolls_back_the_write_and_the_bump(client, article):
    path = f"/async/{article.pk}/"
    key = versions.object_key(Article, article.pk)
    before = versions.get(key)
    tag = current_etag(client, path)
    with pytest.raises(RuntimeError):
        run_async(AsyncClient().put)(
            f"{path}?fail=1",
            json.dumps({"title": "Lost"}),
            content_type="application/json",
            headers={"If-Match": tag},
        )
    assert title(article) == "One"
    assert versions.get(key) == before


# ---------------------------------------------------------------------------------------------
# If-Unmodified-Since


def test_if_unmodified_since(client, article):
    path = f"/dated/{article.pk}/"
    updated = Article.objects.get(pk=article.pk).updated_at
    earlier = format_http_date(updated.replace(year=updated.year - 1))
    later = format_http_date(updated.replace(year=updated.year + 1))
    refused = put(client, path, {"title": "x"}, **{"If-Unmodified-Since": earlier})
    assert refused.status_code == 412
    assert refused.json()["precondition"] == "If-Unmodified-Since"
    assert "Last-Modified" in refused.headers
    accepted = put(client, path, {"title": "y"}, **{"If-Unmodified-Since": later})
    assert accepted.status_code == 200


# ---------------------------------------------------------------------------------------------
# 428


def test_required_precondition_missing_is_428_before_the_view(client, article):
    path = f"/required/{article.pk}/"
    tag = current_etag(client, path)
    response = put(client, path, {"title": "x"})
    assert response.status_code == 428
    assert CALLS["article_required"] == 1  # the GET above only
    assert response.headers["ETag"] == tag  # the validator to send
    # The view has no Last-Modified: only If-Match can guard it.
    assert response.json()["required"] == ["If-Match"]
    assert title(article) == "One"
    assert client.delete(path).status_code == 428
    assert put(client, path, {"title": "x"}, **{"If-Match": tag}).status_code == 200


def test_if_unmodified_since_does_not_satisfy_the_policy_without_a_date(
    client, article
):
    # §13.1.4: a resource without a modification date ignores If-Unmodified-Since, so it
    # would not make the write conditional.
    date = "Fri, 01 Jan 2100 00:00:00 GMT"
    response = put(
        client,
        f"/required/{article.pk}/",
        {"title": "x"},
        **{"If-Unmodified-Since": date},
    )
    assert response.status_code == 428
    assert title(article) == "One"


def test_required_precondition_accepts_if_unmodified_since_with_a_date(
    client, article, settings
):
    settings.CONDITIONAL_REQUIRE_PRECONDITION = True
    path = f"/dated/{article.pk}/"
    missing = put(client, path, {"title": "x"})
    assert missing.status_code == 428
    assert set(missing.json()["required"]) == {"If-Match", "If-Unmodified-Since"}
    assert "Last-Modified" in missing.headers
    invalid = put(client, path, {"title": "x"}, **{"If-Unmodified-Since": "yesterday"})
    assert invalid.status_code == 428
    date = "Fri, 01 Jan 2100 00:00:00 GMT"
    response = put(client, path, {"title": "x"}, **{"If-Unmodified-Since": date})
    assert response.status_code == 200


def test_required_precondition_leaves_post_alone_by_default(client, article):
    response = client.post(
        f"/required/{article.pk}/", "{}", content_type="application/json"
    )
    assert response.status_code == 200


def test_unconditional_write_allowed_without_policy(client, article):
    assert put(client, f"/articles/{article.pk}/", {"title": "x"}).status_code == 200


def test_site_policy_applies_to_versioned_views(client, article, settings):
    settings.CONDITIONAL_REQUIRE_PRECONDITION = {
        "methods": ["PUT"],
        "paths": [r"^/articles/"],
    }
    assert put(client, f"/articles/{article.pk}/", {"title": "x"}).status_code == 428
    assert put(client, f"/private/{article.pk}/", {"title": "x"}).status_code == 200
    settings.CONDITIONAL_REQUIRE_PRECONDITION = True
    assert put(client, f"/private/{article.pk}/", {"title": "x"}).status_code == 428
    # A view that opts out keeps unconditional writes.
    assert (
        put(client, f"/never-required/{article.pk}/", {"title": "x"}).status_code == 200
    )


def test_site_policy_methods_on_a_view(client, article, settings):
    settings.CONDITIONAL_REQUIRE_PRECONDITION = True
    response = client.delete(f"/articles/{article.pk}/")
    assert response.status_code == 428


# ---------------------------------------------------------------------------------------------
# Async views


def aput(path: str, data: dict[str, str], **headers: str):
    return run_async(AsyncClient().put)(
        path, json.dumps(data), content_type="application/json", headers=headers
    )


def test_async_write_with_current_if_match(client, article):
    path = f"/async/{article.pk}/"
    tag = current_etag(client, path)
    response = aput(path, {"title": "Async"}, **{"If-Match": tag})
    assert response.status_code == 200
    assert response.headers["ETag"] != tag
    assert title(article) == "Async"


def test_async_write_with_stale_if_match(client, article):
    path = f"/async/{article.pk}/"
    response = aput(path, {"title": "Async"}, **{"If-Match": '"stale"'})
    assert response.status_code == 412
    assert CALLS["aarticle"] == 0
    assert title(article) == "One"


def test_async_delete(client, article, django_capture_on_commit_callbacks):
    path = f"/async/{article.pk}/"
    tag = current_etag(client, path)
    with django_capture_on_commit_callbacks(execute=True):
        response = run_async(AsyncClient().delete)(path, headers={"If-Match": tag})
    assert response.status_code == 204
    assert not Article.objects.filter(pk=article.pk).exists()


def test_async_428(article, settings):
    settings.CONDITIONAL_REQUIRE_PRECONDITION = True
    response = aput(f"/async/{article.pk}/", {"title": "x"})
    assert response.status_code == 428
    assert response.headers["ETag"]
    assert CALLS["aarticle"] == 0


# ---------------------------------------------------------------------------------------------
# Concurrency, on PostgreSQL: the same If-Match from N writers, exactly one wins.


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/articles/{pk}/", "/async/{pk}/"])
def test_concurrent_writes_with_the_same_if_match(path):
    writers = 8
    author = Author.objects.create(name="Ada")
    target = Article.objects.create(author=author, title="start")
    url = path.format(pk=target.pk)
    tag = current_etag(Client(), url)
    WRITE_DELAY["seconds"] = 0.05  # widen the window between reading the row and saving
    barrier = threading.Barrier(writers)
    results: dict[int, tuple[int, str]] = {}
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            client = Client()
            barrier.wait(timeout=10)
            response = put(
                client, url, {"title": f"writer {index}"}, **{"If-Match": tag}
            )
            results[index] = (response.status_code, response.headers.get("ETag", ""))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    statuses = sorted(status for status, _ in results.values())
    assert statuses == [200] + [412] * (writers - 1), results
    (winner,) = [index for index, (status, _) in results.items() if status == 200]
    assert Article.objects.get(pk=target.pk).title == f"writer {winner}"
    # The winner's new ETag is the current one; every loser was told about it.
    assert current_etag(Client(), url) == results[winner][1]
    assert {etag for status, etag in results.values() if status == 412} == {
        results[winner][1]
    }


def test_a_write_that_changes_nothing_gets_no_etag(client, article):
    path = f"/noop/{article.pk}/"
    tag = current_etag(client, path)
    response = client.post(path, headers={"If-Match": tag})
    assert response.status_code == 200
    assert "ETag" not in response.headers
    assert current_etag(client, path) == tag


def test_a_success_from_a_transaction_marked_for_rollback_is_an_error(client, article):
    # The view wrote, then marked its transaction for rollback (as one that swallowed a database
    # error would be): its 200 would tell the client a write was kept that never commits.
    path = f"/set-rollback/{article.pk}/"
    tag = current_etag(client, path)
    with pytest.raises(
        transaction.TransactionManagementError, match="marked for rollback"
    ):
        client.post(path, headers={"If-Match": tag})
    assert title(article) == "One"
    assert current_etag(client, path) == tag


def test_the_new_etag_counts_released_savepoints_not_rolled_back_ones(
    client, article, django_capture_on_commit_callbacks
):
    path = f"/savepoints/{article.pk}/"
    before = current_etag(client, path)
    version = versions.get(versions.object_key(article))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path, headers={"If-Match": before})
    assert response.status_code == 200
    assert title(article) == "kept"
    # One bump survived: the tag a GET now gives, not the rolled-back second bump's.
    assert response.headers["ETag"] == current_etag(client, path)
    assert versions.get(versions.object_key(article)) == version + 1


def test_the_new_etag_takes_no_query_after_the_view(client, article):
    path = f"/articles/{article.pk}/"
    tag = current_etag(client, path)
    with CaptureQueriesContext(connection) as queries:
        response = put(client, path, {"title": "Two"}, **{"If-Match": tag})
    assert response.status_code == 200
    last_write = max(
        i
        for i, query in enumerate(queries)
        if "INSERT" in query["sql"] or "UPDATE" in query["sql"]
    )
    # After the version bump, nothing but the commit (SQLite's COMMIT is not logged).
    assert [q["sql"] for q in queries[last_write + 1 :] if "SELECT" in q["sql"]] == []


def test_without_django_commit_hooks_the_new_etag_is_read_from_the_rows(
    client, article, django_capture_on_commit_callbacks
):
    path = f"/articles/{article.pk}/"
    tag = current_etag(client, path)
    with (
        mock.patch("django_conditional.store.committing.bumped", return_value=None),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = put(client, path, {"title": "Two"}, **{"If-Match": tag})
    assert response.headers["ETag"] == current_etag(client, path) != tag


@pytest.mark.django_db
def test_the_commit_hooks_are_read_only_in_the_shape_django_gives_them():
    from django_conditional.store import committing

    wrapper = connections["default"]
    with transaction.atomic():
        transaction.on_commit(lambda: None)  # another app's hook: not a bump, skipped
        versions.bump("k")
        assert committing.bumped("default") == {"k": (1, mock.ANY)}
        transaction.set_rollback(True)
        assert committing.bumped("default") == {}  # nothing of it will commit
        transaction.set_rollback(False)
        hooks = wrapper.run_on_commit
        try:
            wrapper.run_on_commit = tuple(hooks)  # type: ignore[assignment]
            assert committing.bumped("default") is None  # not a list
            wrapper.run_on_commit = [*hooks, "odd"]  # type: ignore[list-item]
            assert committing.bumped("default") is None  # an entry of another shape
        finally:
            wrapper.run_on_commit = hooks


def test_require_precondition_for_named_methods(client, article):
    path = f"/post-required/{article.pk}/"
    assert client.post(path, "{}", content_type="application/json").status_code == 428
    assert put(client, path, {"title": "x"}).status_code == 200


def test_two_clients_holding_one_last_modified_cannot_both_write_within_a_second(
    client, article
):
    """A date names a second. Client A writes (with If-Match) in the second client B's
    Last-Modified names: B's If-Unmodified-Since cannot prove it saw A's write. 412, with the
    ETag to send in If-Match instead; A's write is kept."""
    path = f"/dated/{article.pk}/"
    page = client.get(path)
    held, tag = page.headers["Last-Modified"], page.headers["ETag"]
    first = put(client, path, {"title": "first"}, **{"If-Match": tag})
    assert first.status_code == 200
    second = put(client, path, {"title": "second"}, **{"If-Unmodified-Since": held})
    assert second.status_code == 412
    assert second.json()["precondition"] == "If-Unmodified-Since"
    assert second.headers["ETag"] == first.headers["ETag"]
    assert title(article) == "first"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writes_while_the_version_row_is_deleted_by_hand():
    # Writers whose process has seen the row take the one-query lock; a row deleted meanwhile
    # raises RowsMissing and the write starts again, making the row before any lock. Under real
    # concurrency: no error, no deadlock, every write kept.
    writers, rounds = 4, 5
    author = Author.objects.create(name="Ada")
    target = Article.objects.create(author=author, title="start")
    url, key = f"/articles/{target.pk}/", versions.object_key(Article, target.pk)
    put(Client(), url, {"title": "seen"}, **{"If-Match": "*"})  # the row is known here
    stop = threading.Event()
    statuses: list[int] = []
    errors: list[BaseException] = []

    def delete_rows() -> None:
        try:
            while not stop.is_set():
                ResourceVersion.objects.filter(key=key).delete()
        finally:
            connections.close_all()

    def write(index: int) -> None:
        try:
            client = Client()
            for n in range(rounds):
                title = {"title": f"writer {index} round {n}"}
                statuses.append(
                    put(client, url, title, **{"If-Match": "*"}).status_code
                )
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    deleter = threading.Thread(target=delete_rows)
    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    deleter.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stop.set()
    deleter.join(timeout=10)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    assert statuses == [200] * (writers * rounds)
    assert Article.objects.get(pk=target.pk).title.startswith("writer ")
