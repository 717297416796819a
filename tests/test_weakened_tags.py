"""Weakened tags from a proxy: ``W/"v3"`` in ``If-Match`` while ``"v3"`` is current.

A proxy that compresses (nginx ``gzip on; gzip_proxied any``) turns the application's strong tag
into a weak one. By default a write with that tag fails (§13.1.1 compares strongly) and its 412 says
why; ``CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH`` lets versioned views take it. The engine gets the
option as a parameter (it reads no setting).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from django.test import override_settings

from django_conditional import responses
from django_conditional.preconditions import (
    ANY,
    ConditionalHeaders,
    Outcome,
    Preconditions,
    evaluate,
    weakened_if_match,
)
from django_conditional.validators import ETag, Validators, parse_entity_tags
from tests.testapp.models import Article

CURRENT = Validators.of('"v3"')


def if_match(value: str) -> Preconditions:
    return Preconditions.parse(ConditionalHeaders(if_match=value))


# ---------------------------------------------------------------------------------------------
# The engine


@pytest.mark.parametrize(
    ("header", "accept_weakened", "outcome"),
    [
        ('W/"v3"', False, Outcome.PRECONDITION_FAILED),
        ('W/"v3"', True, Outcome.PROCEED),
        ('W/"v3-gzip"', True, Outcome.PROCEED),  # a coded tag, weakened
        ('W/"v2"', True, Outcome.PRECONDITION_FAILED),
        ('"v2", W/"v3"', True, Outcome.PROCEED),
        ('"v3"', True, Outcome.PROCEED),
        ('"v3"', False, Outcome.PROCEED),
        ("*", True, Outcome.PROCEED),
    ],
)
def test_if_match_takes_a_weakened_tag_only_when_asked(
    header: str, accept_weakened: bool, outcome: Outcome
) -> None:
    evaluation = evaluate(
        "PATCH", if_match(header), CURRENT, accept_weakened=accept_weakened
    )
    assert evaluation.outcome is outcome


def test_a_weak_current_tag_never_passes_if_match_even_when_asked() -> None:
    weak_current = Validators.of('W/"v3"')
    evaluation = evaluate("PUT", if_match('W/"v3"'), weak_current, accept_weakened=True)
    assert evaluation.outcome is Outcome.PRECONDITION_FAILED


def test_if_none_match_is_untouched_by_the_option() -> None:
    conditions = Preconditions.parse(ConditionalHeaders(if_none_match='W/"v3"'))
    evaluation = evaluate("GET", conditions, CURRENT, accept_weakened=True)
    assert evaluation.outcome is Outcome.NOT_MODIFIED


@pytest.mark.parametrize(
    ("header", "validators", "found"),
    [
        ('W/"v3"', CURRENT, ETag("v3", weak=True)),
        ('"v1", W/"v3-gzip"', CURRENT, ETag("v3-gzip", weak=True)),
        ('"v3"', CURRENT, None),  # strong: not weakened
        ('W/"v2"', CURRENT, None),  # weak, but another state
        ('W/"v3"', Validators.of('W/"v3"'), None),  # the current tag is weak itself
        ('W/"v3"', Validators(None, None, exists=True), None),  # no current tag
        ("", CURRENT, None),  # nothing valid in the list
    ],
)
def test_weakened_if_match_finds_the_weak_form_of_the_current_tag(
    header: str, validators: Validators, found: ETag | None
) -> None:
    assert weakened_if_match(parse_entity_tags(header), validators) == found


def test_weakened_if_match_without_a_list() -> None:
    assert weakened_if_match(None, CURRENT) is None
    assert weakened_if_match(ANY, CURRENT) is None


# ---------------------------------------------------------------------------------------------
# The faces: the 412 explains, the setting accepts


@pytest.fixture
def warned_once() -> Iterator[None]:
    responses._warned_weakened = False
    yield
    responses._warned_weakened = False


def _put(client, path: str, tag: str):
    return client.put(
        path,
        json.dumps({"title": "Two"}),
        content_type="application/json",
        headers={"If-Match": tag},
    )


@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions", "warned_once")
def test_a_weakened_if_match_is_refused_with_problem_details_that_say_why(
    client, article, caplog
) -> None:
    path = f"/articles/{article.pk}/"
    current = client.get(path)["ETag"]
    weakened = f"W/{current}"
    with caplog.at_level(logging.WARNING, logger="django_conditional"):
        first = _put(client, path, weakened)
        second = _put(client, path, weakened)
    for response in (first, second):
        assert response.status_code == 412
        body = response.json()
        assert body["precondition"] == "If-Match"
        assert body["weakened-etag"] == weakened
        assert "weak form of the current entity-tag" in body["detail"]
        assert "GZipMiddleware" in body["detail"]
        assert "CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH" in body["detail"]
        assert response["ETag"] == current
    warnings = [r for r in caplog.records if "weak form" in r.getMessage()]
    assert len(warnings) == 1  # once per process
    assert Article.objects.get(pk=article.pk).title == "One"


@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions", "warned_once")
def test_a_stale_weak_if_match_gets_the_usual_412(client, article) -> None:
    response = _put(client, f"/articles/{article.pk}/", 'W/"stale.0"')
    assert response.status_code == 412
    assert "weakened-etag" not in response.json()
    assert "has changed" in response.json()["detail"]


@pytest.mark.urls("tests.urls_versioned")
@pytest.mark.usefixtures("clean_versions")
@override_settings(CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH=True)
def test_the_setting_lets_a_weakened_if_match_write(
    client, article, django_capture_on_commit_callbacks
) -> None:
    path = f"/articles/{article.pk}/"
    current = client.get(path)["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        response = _put(client, path, f"W/{current}")
    assert response.status_code == 200
    assert Article.objects.get(pk=article.pk).title == "Two"
    # The tag names the old state now: the same weakened tag is refused (no lost update).
    again = _put(client, path, f"W/{current}")
    assert again.status_code == 412
    assert "weakened-etag" not in again.json()


@pytest.mark.urls("tests.urls_drf")
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_versions", "warned_once")
def test_the_drf_face_explains_a_weakened_if_match(article) -> None:
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(User.objects.create_user("writer"))
    url = f"/articles/{article.pk}/"
    current = client.get(url, HTTP_ACCEPT="application/json")["ETag"]
    response = client.patch(
        url,
        {"title": "lost"},
        format="json",
        HTTP_IF_MATCH=f"W/{current}",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 412
    body = json.loads(response.content)
    assert body["weakened-etag"] == f"W/{current}"
    with override_settings(CONDITIONAL_ACCEPT_WEAKENED_IF_MATCH=True):
        accepted = client.patch(
            url,
            {"title": "kept"},
            format="json",
            HTTP_IF_MATCH=f"W/{current}",
            HTTP_ACCEPT="application/json",
        )
    assert accepted.status_code == 200
    assert Article.objects.get(pk=article.pk).title == "kept"
