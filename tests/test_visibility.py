"""``visibility.by_state``: an access check asked once per state of the resources, never after."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DatabaseError
from django.http import HttpResponse
from django.test import RequestFactory

from django_conditional import visibility
from django_conditional.versions import Snapshot

factory = RequestFactory()


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    visibility.forget()
    yield
    visibility.forget()


class Store:
    """The view's read stand-in: the versions it answers, or an error."""

    def __init__(self) -> None:
        self.versions = {"article:1": 1}
        self.error: Exception | None = None

    def read(self, request: Any, args: Any, kwargs: Any) -> Snapshot:
        if self.error is not None:
            raise self.error
        key = f"article:{kwargs['pk']}"
        return Snapshot({key: self.versions.get(key, 0)})


class Check:
    def __init__(self, answer: object = True) -> None:
        self.answer = answer
        self.calls = 0

    def __call__(self, request: Any, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self.answer


@pytest.fixture
def store() -> Store:
    return Store()


def test_true_is_asked_once_per_state(store: Store) -> None:
    check = Check()
    visible = visibility.by_state(check, "view", store.read)
    assert visible is not None
    for _ in range(3):
        assert visible(factory.get("/"), pk=1) is True
    assert check.calls == 1
    store.versions["article:1"] = 2  # a bump: another state, asked again
    assert visible(factory.get("/"), pk=1) is True
    assert check.calls == 2
    assert visible(factory.get("/"), pk=2) is True  # another article
    assert check.calls == 3


def test_false_and_responses_are_never_remembered(store: Store) -> None:
    for answer in (False, HttpResponse(status=403)):
        check = Check(answer)
        visible = visibility.by_state(check, "view", store.read)
        assert visible is not None
        assert visible(factory.get("/"), pk=1) is answer
        assert visible(factory.get("/"), pk=1) is answer
        assert check.calls == 2


def test_views_do_not_share_answers(store: Store) -> None:
    first, second = Check(), Check(False)
    assert visibility.by_state(first, "a", store.read)(factory.get("/"), pk=1) is True  # type: ignore[misc]
    assert visibility.by_state(second, "b", store.read)(factory.get("/"), pk=1) is False  # type: ignore[misc]


def test_unsafe_methods_always_ask(store: Store) -> None:
    check = Check()
    visible = visibility.by_state(check, "view", store.read)
    assert visible is not None
    visible(factory.get("/"), pk=1)
    visible(factory.put("/"), pk=1)
    visible(factory.delete("/"), pk=1)
    assert check.calls == 3


def test_a_failing_store_asks_the_check(store: Store) -> None:
    store.error = DatabaseError("down")
    check = Check()
    visible = visibility.by_state(check, "view", store.read)
    assert visible is not None
    visible(factory.get("/"), pk=1)
    visible(factory.get("/"), pk=1)
    assert check.calls == 2


def test_the_table_is_bounded(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(visibility, "MAX_REMEMBERED", 2)
    check = Check()
    visible = visibility.by_state(check, "view", store.read)
    assert visible is not None
    for pk in (1, 2, 3):
        visible(factory.get("/"), pk=pk)
    assert len(visibility._remembered) == 2
    visible(factory.get("/"), pk=1)  # the oldest went first
    assert check.calls == 4


def test_no_check_stays_no_check(store: Store) -> None:
    assert visibility.by_state(None, "view", store.read) is None
