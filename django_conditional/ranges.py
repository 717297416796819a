"""RFC 9110 byte ranges (§14), pure: a ``Range`` value and a length in, a decision out.

Nothing here reads a request, a setting or a response; ``byteranges`` builds the answers.

- ``Range`` with a unit other than ``bytes``, or a ranges-specifier that is not valid
  (§14.1.1: ``last-pos`` before ``first-pos``, no digits, junk) is ignored: the full 200 (§14.2).
- Limits against abuse (§14.2 lets a server ignore such a field): more than ``max_ranges``
  range-specs (default 50), or more than ``max_overlapping`` satisfiable ranges that overlap
  another one (default 2, the RFC's "more than two overlapping ranges"), and the header is
  ignored: the full 200. Numbers longer than ``MAX_DIGITS`` digits make the field invalid.
- A zero-length representation has no range to send: the full 200 (§14.1.2 only allows a suffix
  range on it, which selects no byte, and ``Content-Range`` cannot express an empty range).
- A valid field with no satisfiable range (``bytes=-0``, a ``first-pos`` at or past the length) is
  416 (§15.5.17) with ``Content-Range: bytes */<length>``.
- Otherwise 206 (§15.3.7) with the satisfiable ranges in the order the client asked for them,
  ``last-pos`` clamped to the end, a suffix longer than the body meaning the whole body (§14.1.2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_OVERLAPPING",
    "MAX_RANGES",
    "ByteRange",
    "Decision",
    "RangeAnswer",
    "decide",
    "parse_ranges",
]

MAX_RANGES: Final = 50
MAX_OVERLAPPING: Final = 2
MAX_DIGITS: Final = 30
_OWS: Final = " \t"
_DIGITS: Final = frozenset("0123456789")

# A range-spec as written: (first-pos, last-pos or None) for an int-range, (None, n) for a
# suffix-range.
Spec = tuple[int | None, int | None]


class Decision(enum.Enum):
    FULL = "full"  # ignore Range: the 200
    PARTIAL = "partial"  # 206
    UNSATISFIABLE = "unsatisfiable"  # 416


@dataclass(frozen=True, slots=True)
class ByteRange:
    """An inclusive range of byte positions (§14.1.2): ``first`` to ``last``."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, complete_length: int) -> str:
        """The ``Content-Range`` value of this range of a ``complete_length`` body (§14.4)."""
        return f"bytes {self.first}-{self.last}/{complete_length}"


@dataclass(frozen=True, slots=True)
class RangeAnswer:
    decision: Decision
    ranges: tuple[ByteRange, ...] = ()


FULL: Final = RangeAnswer(Decision.FULL)
UNSATISFIABLE: Final = RangeAnswer(Decision.UNSATISFIABLE)


def _number(text: str) -> int | None:
    if not text or len(text) > MAX_DIGITS or not _DIGITS.issuperset(text):
        return None
    return int(text)


def _spec(member: str) -> Spec | None:
    first_text, dash, last_text = member.partition("-")
    if not dash:
        return None
    if not first_text:
        suffix = _number(last_text)
        return None if suffix is None else (None, suffix)
    first = _number(first_text)
    if first is None:
        return None
    if not last_text:
        return (first, None)
    last = _number(last_text)
    if last is None or last < first:
        return None
    return (first, last)


def parse_ranges(value: str, max_ranges: int = MAX_RANGES) -> list[Spec] | None:
    """The range-specs of a ``Range`` value in the ``bytes`` unit (§14.1.1, §14.2).

    None when the field is to be ignored: another unit, an invalid specifier, more than
    ``max_ranges`` range-specs. Empty list members are skipped (§5.6.1.2).
    """
    unit, equals, range_set = value.strip(_OWS).partition("=")
    if not equals or unit.strip(_OWS).lower() != "bytes":
        return None
    members = range_set.split(",", max_ranges + 1)
    specs: list[Spec] = []
    for member in members:
        text = member.strip(_OWS)
        if not text:
            continue
        spec = _spec(text)
        if spec is None or len(specs) == max_ranges:
            return None
        specs.append(spec)
    return specs or None


def _satisfiable(spec: Spec, length: int) -> ByteRange | None:
    first, last = spec
    if first is None:
        assert last is not None
        # §14.1.2: a suffix-range of zero bytes is unsatisfiable; a longer one is the whole body.
        return ByteRange(max(length - last, 0), length - 1) if last else None
    if first >= length:
        return None
    return ByteRange(first, length - 1 if last is None else min(last, length - 1))


def _overlapping(ranges: list[ByteRange]) -> int:
    """How many of ``ranges`` overlap another one."""
    ordered = sorted(ranges, key=lambda r: (r.first, r.last))
    overlapping: set[int] = set()
    reach = -1
    reach_index = -1
    for index, byte_range in enumerate(ordered):
        if byte_range.first <= reach:
            overlapping.update((index, reach_index))
        if byte_range.last > reach:
            reach, reach_index = byte_range.last, index
    return len(overlapping)


def decide(
    value: str | None,
    length: int,
    *,
    max_ranges: int = MAX_RANGES,
    max_overlapping: int = MAX_OVERLAPPING,
) -> RangeAnswer:
    """What to answer to ``Range: value`` on a representation of ``length`` bytes (see above)."""
    if value is None or length <= 0:
        return FULL
    specs = parse_ranges(value, max_ranges)
    if specs is None:
        return FULL
    ranges = [
        r for r in (_satisfiable(spec, length) for spec in specs) if r is not None
    ]
    if not ranges:
        return UNSATISFIABLE
    if _overlapping(ranges) > max_overlapping:
        return FULL
    return RangeAnswer(Decision.PARTIAL, tuple(ranges))
