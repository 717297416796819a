"""The pure byte-range engine (RFC 9110 §14): parsing ``Range`` and deciding 200, 206 or 416."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_conditional.ranges import (
    MAX_DIGITS,
    MAX_RANGES,
    ByteRange,
    Decision,
    RangeAnswer,
    decide,
    parse_ranges,
)


@pytest.mark.parametrize(
    ("value", "specs"),
    [
        ("bytes=0-499", [(0, 499)]),
        ("bytes=500-", [(500, None)]),
        ("bytes=-500", [(None, 500)]),
        ("bytes=-0", [(None, 0)]),
        ("BYTES = 0-0 , -1", [(0, 0), (None, 1)]),
        ("bytes=0-0,,\t,5-9", [(0, 0), (5, 9)]),
        ("bytes=007-010", [(7, 10)]),
    ],
)
def test_parse_valid(value: str, specs: list[tuple[int | None, int | None]]) -> None:
    assert parse_ranges(value) == specs


@pytest.mark.parametrize(
    "value",
    [
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "items=0-1",
        "bytes=5",
        "bytes=9-5",
        "bytes=a-5",
        "bytes=0-b",
        "bytes=-x",
        "bytes=--1",
        "bytes=-",
        "bytes=+1-2",
        "bytes=0-1,x",
        "bytes=1 -2",
        "bytes=" + "1" * (MAX_DIGITS + 1) + "-",
        "bytes=0-٣",  # a Unicode digit is not a DIGIT
    ],
)
def test_parse_invalid_is_ignored(value: str) -> None:
    assert parse_ranges(value) is None


def test_parse_stops_past_the_limit() -> None:
    assert parse_ranges("bytes=" + ",".join(["0-0"] * MAX_RANGES)) is not None
    assert parse_ranges("bytes=" + ",".join(["0-0"] * (MAX_RANGES + 1))) is None
    assert parse_ranges("bytes=0-0,1-1,2-2", max_ranges=2) is None


def partial(*ranges: tuple[int, int]) -> RangeAnswer:
    return RangeAnswer(Decision.PARTIAL, tuple(ByteRange(a, b) for a, b in ranges))


@pytest.mark.parametrize(
    ("value", "answer"),
    [
        (None, RangeAnswer(Decision.FULL)),
        ("bytes=0-0", partial((0, 0))),
        ("bytes=-1", partial((99, 99))),
        ("bytes=-500", partial((0, 99))),
        ("bytes=90-", partial((90, 99))),
        ("bytes=90-1000", partial((90, 99))),
        ("bytes=0-9,20-29", partial((0, 9), (20, 29))),
        ("bytes=20-29,0-9", partial((20, 29), (0, 9))),  # the client's order
        ("bytes=0-9,200-300", partial((0, 9))),  # unsatisfiable members dropped
        ("bytes=-0", RangeAnswer(Decision.UNSATISFIABLE)),
        ("bytes=100-", RangeAnswer(Decision.UNSATISFIABLE)),
        ("bytes=100-200,-0", RangeAnswer(Decision.UNSATISFIABLE)),
        ("bytes=5-1", RangeAnswer(Decision.FULL)),
        ("lines=1-2", RangeAnswer(Decision.FULL)),
        # Two overlapping ranges are served; more than two are ignored (§14.2).
        ("bytes=0-9,5-14", partial((0, 9), (5, 14))),
        ("bytes=0-9,5-14,8-20", RangeAnswer(Decision.FULL)),
        ("bytes=0-50,10-20,60-70,65-80", RangeAnswer(Decision.FULL)),
        ("bytes=0-9,10-19,20-29", partial((0, 9), (10, 19), (20, 29))),
    ],
)
def test_decide(value: str | None, answer: RangeAnswer) -> None:
    assert decide(value, 100) == answer


def test_empty_representation_is_never_ranged() -> None:
    assert decide("bytes=-1", 0) == RangeAnswer(Decision.FULL)
    assert decide("bytes=0-", 0) == RangeAnswer(Decision.FULL)


def test_limits_are_parameters() -> None:
    assert decide("bytes=0-1,0-1", 10, max_overlapping=1).decision is Decision.FULL
    assert decide("bytes=0-1,3-4", 10, max_ranges=1).decision is Decision.FULL


def test_content_range() -> None:
    assert ByteRange(0, 9).content_range(100) == "bytes 0-9/100"
    assert ByteRange(5, 5).length == 1


range_spec = st.one_of(
    st.tuples(st.integers(0, 300), st.none() | st.integers(0, 300)).filter(
        lambda t: t[1] is None or t[1] >= t[0]
    ),
    st.tuples(st.none(), st.integers(0, 300)),
)


def _spec_text(spec: tuple[int | None, int | None]) -> str:
    first, last = spec
    if first is None:
        return f"-{last}"
    return f"{first}-" if last is None else f"{first}-{last}"


@given(body=st.binary(max_size=256), specs=st.lists(range_spec, min_size=1, max_size=6))
def test_served_ranges_are_slices_of_the_body(
    body: bytes, specs: list[tuple[int | None, int | None]]
) -> None:
    """Whatever is served, each range is a slice of the body, and together they are what was asked."""
    value = "bytes=" + ",".join(_spec_text(s) for s in specs)
    answer = decide(value, len(body))
    if answer.decision is not Decision.PARTIAL:
        return
    for byte_range, (first, last) in zip(
        answer.ranges, _satisfiable(specs, len(body)), strict=True
    ):
        assert (byte_range.first, byte_range.last) == (first, last)
        assert 0 <= byte_range.first <= byte_range.last < len(body)
    served = b"".join(body[r.first : r.last + 1] for r in answer.ranges)
    expected = b"".join(body[a : b + 1] for a, b in _satisfiable(specs, len(body)))
    assert served == expected


def _satisfiable(
    specs: list[tuple[int | None, int | None]], length: int
) -> list[tuple[int, int]]:
    """The model: Python slicing semantics of each satisfiable spec."""
    out = []
    for first, last in specs:
        if first is None:
            assert last is not None
            if last > 0:
                out.append((max(length - last, 0), length - 1))
        elif first < length:
            out.append((first, length - 1 if last is None else min(last, length - 1)))
    return out
