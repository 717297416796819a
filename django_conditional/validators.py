"""Validator values (RFC 9110 §8.8): entity-tags and the set a resource currently has."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final, Literal

# etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3). A single character class: linear, no
# backtracking, and it runs at C speed on a 64 KB header.
_OPAQUE_TAG = re.compile("[\x21\x23-\x7e\x80-\xff]*")


def is_opaque_tag(text: str) -> bool:
    """Whether ``text`` may stand between an entity-tag's quotes."""
    return _OPAQUE_TAG.fullmatch(text) is not None


def sanitize_opaque_tag(tag: str) -> str:
    """Percent-encode what may not stand between an entity-tag's quotes, so any string makes a valid tag."""
    if is_opaque_tag(tag):
        return tag
    return "".join(
        c if is_opaque_tag(c) and c != "%" else "".join(f"%{b:02X}" for b in c.encode())
        for c in tag
    )


@dataclass(frozen=True, slots=True)
class ETag:
    """An entity-tag: its opaque-tag (without quotes) and whether it is weak (§8.8.3)."""

    tag: str
    weak: bool = False

    def __str__(self) -> str:
        return f'W/"{self.tag}"' if self.weak else f'"{self.tag}"'

    @classmethod
    def from_header_value(cls, value: str) -> ETag:
        """Read an ETag as a view or an ``etag_func`` gives it, as Django's ``quote_etag`` does.

        ``"x"`` and ``W/"x"`` are taken as written; any other value becomes the opaque-tag of a
        strong entity-tag, with characters that an entity-tag cannot hold percent-encoded.
        """
        weak = value.startswith("W/")
        quoted = value[2:] if weak else value
        if (
            len(quoted) >= 2
            and quoted[0] == '"'
            and quoted[-1] == '"'
            and '"' not in quoted[1:-1]
        ):
            return cls(sanitize_opaque_tag(quoted[1:-1]), weak)
        return cls(sanitize_opaque_tag(value), False)

    def strong_match(self, other: ETag) -> bool:
        """Strong comparison (§8.8.3.2): both strong and the opaque-tags equal."""
        return not self.weak and not other.weak and self.tag == other.tag

    def weak_match(self, other: ETag) -> bool:
        """Weak comparison (§8.8.3.2): the opaque-tags equal, weakness ignored."""
        return self.tag == other.tag


ANY: Final = "*"
DEFAULT_MAX_MEMBERS: Final = 100
_OWS: Final = " \t"
EntityTags = tuple[ETag, ...] | Literal["*"]


def member_tag(value: str, start: int, end: int) -> ETag | None:
    """The entity-tag spelled exactly by ``value[start:end]`` (already stripped), or None."""
    weak = value.startswith("W/", start, end)
    if weak:
        start += 2
    if end - start < 2 or value[start] != '"' or value[end - 1] != '"':
        return None
    tag = value[start + 1 : end - 1]
    return ETag(tag, weak) if is_opaque_tag(tag) else None


def parse_entity_tags(value: str, max_members: int = DEFAULT_MAX_MEMBERS) -> EntityTags:
    """Parse ``"*" / #entity-tag`` (§13.1.1, §13.1.2) in one linear pass.

    Returns ``"*"`` or the valid entity-tags in order. Commas inside quotes belong to the tag.
    """
    stripped = value.strip(_OWS)
    if stripped == ANY:
        return ANY
    if "," not in stripped and max_members > 0:
        # One member (a revalidation's usual header): the loop below would read it the same way.
        single = member_tag(stripped, 0, len(stripped)) if stripped else None
        return () if single is None else (single,)
    tags: list[ETag] = []
    length = len(value)
    position = 0
    members = 0
    while position < length and members < max_members:
        # Skip whitespace and empty list elements.
        while position < length and value[position] in " \t,":
            position += 1
        if position >= length:
            break
        members += 1
        start = position
        if value.startswith("W/", position):
            position += 2
        if position < length and value[position] == '"':
            closing = value.find('"', position + 1)
            position = length if closing == -1 else closing + 1
        # The member runs to the next comma outside quotes.
        comma = value.find(",", position)
        end = length if comma == -1 else comma
        stop = end
        while value[stop - 1] in _OWS:
            stop -= 1
        tag = member_tag(value, start, stop)
        if tag is not None:
            tags.append(tag)
        position = end + 1
    return tuple(tags)


def accepts_coding(accept_encoding: str | None, coding: str, max_members: int) -> bool:
    """Whether an ``Accept-Encoding`` value accepts ``coding`` (RFC 9110 §12.5.3), ``*`` included."""
    if not accept_encoding:
        return False
    star = False
    for member in accept_encoding.split(",", max_members)[:max_members]:
        name, _, parameters = member.partition(";")
        name = name.strip(_OWS).lower()
        if name != coding and name != "*":
            continue
        weight = parameters.strip(_OWS).lower()
        accepted = (
            not weight.startswith("q=") or weight[2:].strip(_OWS).rstrip("0.") != ""
        )
        if name == coding:
            return accepted
        star = accepted
    return star


def decoded_tag(tag: ETag, codings: tuple[str, ...]) -> ETag | None:
    """The tag of the identity representation when ``tag`` carries a content-coding suffix."""
    for coding in codings:
        if tag.tag.endswith(coding) and tag.tag[-len(coding) - 1 : -len(coding)] == "-":
            return ETag(tag.tag[: -len(coding) - 1], tag.weak)
    return None


def to_utc(moment: datetime) -> datetime:
    """An aware UTC datetime truncated to whole seconds; naive values are taken as UTC, as Django does."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class Validators:
    """What the server knows of the selected representation when it evaluates preconditions.

    ``changed_within_second``: the modification time had a sub-second part, so ``last_modified``
    (whole seconds, as HTTP dates are) names a second in which the resource changed; an
    ``If-Unmodified-Since`` naming that second cannot prove the client saw the change.
    """

    etag: ETag | None = None
    last_modified: datetime | None = None
    exists: bool = True
    changed_within_second: bool = False

    @classmethod
    def of(
        cls, etag: ETag | str | None = None, last_modified: datetime | None = None
    ) -> Validators:
        """Validators from an ETag (or its header value) and a datetime; the resource exists when either is known."""
        if isinstance(etag, str):
            etag = ETag.from_header_value(etag)
        within = last_modified is not None and last_modified.microsecond != 0
        if last_modified is not None:
            last_modified = to_utc(last_modified)
        return cls(
            etag,
            last_modified,
            exists=etag is not None or last_modified is not None,
            changed_within_second=within,
        )
