"""Property tests: the engine against a direct reading of RFC 9110 §13.2.2 on random requests.

Headers are generated from structured values (tags, dates, malformed members) and rendered to
strings; the oracle decides from the structure, so it shares no parsing code with the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from django_conditional.preconditions import (
    ConditionalHeaders,
    Outcome,
    evaluate,
    parse_entity_tags,
)
from django_conditional.validators import ETag, Validators

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
ETAGC = "".join(chr(c) for c in [0x21, *range(0x23, 0x7F), *range(0xA0, 0x100, 7)])
MALFORMED = ["abc", 'w/"v1"', "W/", "W/abc", '"a b"', '"v1"x', '"x" "y"', "*", '"\x01"']
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

tags = st.sampled_from(["v1", "v2", "a,b", ""]) | st.text(ETAGC, max_size=4)
etags = st.builds(ETag, tags, st.booleans())


@dataclass(frozen=True)
class TagList:
    star: bool
    members: tuple[ETag | str, ...]  # a str member is malformed

    def render(self, separators: list[str]) -> str:
        if self.star:
            return "*"
        parts = [str(m) if isinstance(m, ETag) else m for m in self.members]
        out = ""
        for index, part in enumerate(parts):
            out += part + (
                separators[index % len(separators)] if index < len(parts) - 1 else ""
            )
        return out

    @property
    def is_star(self) -> bool:
        # A list whose only member is the malformed "*" renders as the "*" form itself.
        return self.star or self.members == ("*",)

    @property
    def valid(self) -> list[ETag]:
        return [m for m in self.members if isinstance(m, ETag)]


tag_lists = st.builds(
    TagList,
    st.booleans(),
    st.lists(etags | st.sampled_from(MALFORMED), max_size=5).map(tuple),
)
separators = st.lists(
    st.sampled_from([",", ", ", " ,", ",,", " , , ", "\t,"]), min_size=1, max_size=3
)

moments = st.integers(-2, 2).map(
    lambda days: datetime(2026, 11, 20, tzinfo=UTC) + timedelta(days=days)
)


@dataclass(frozen=True)
class DateField:
    moment: datetime
    form: (
        str  # "imf", "rfc850", "asctime" (valid) or "list", "zone", "garbage" (invalid)
    )

    def render(self) -> str:
        m = self.moment
        if self.form == "imf" or self.form == "list":
            text = m.strftime("%a, %d %b %Y %H:%M:%S GMT")
            return f"{text}, {text}" if self.form == "list" else text
        if self.form == "rfc850":
            return m.strftime("%A, %d-%b-%y %H:%M:%S GMT")
        if self.form == "asctime":
            return m.strftime("%a %b ") + f"{m.day:>2}" + m.strftime(" %H:%M:%S %Y")
        if self.form == "zone":
            return m.strftime("%a, %d %b %Y %H:%M:%S UTC")
        return "yesterday"

    @property
    def valid(self) -> bool:
        return self.form in {"imf", "rfc850", "asctime"}


dates = st.builds(
    DateField,
    moments,
    st.sampled_from(["imf", "rfc850", "asctime", "list", "zone", "garbage"]),
)
validators = st.builds(
    Validators, st.none() | etags, st.none() | moments, st.booleans()
)


def oracle(
    method: str,
    if_match: TagList | None,
    if_unmodified_since: DateField | None,
    if_none_match: TagList | None,
    if_modified_since: DateField | None,
    current: Validators,
) -> Outcome:
    if method == "OPTIONS":
        return Outcome.PROCEED  # §13.2.1
    etag, last_modified = current.etag, current.last_modified
    # Step 1 / step 2
    if if_match is not None:
        if if_match.is_star:
            holds = current.exists
        else:
            holds = etag is not None and any(
                not t.weak and not etag.weak and t.tag == etag.tag
                for t in if_match.valid
            )
        if not holds:
            return Outcome.PRECONDITION_FAILED
    elif (
        if_unmodified_since is not None
        and if_unmodified_since.valid
        and last_modified is not None
        and not last_modified <= if_unmodified_since.moment
    ):
        return Outcome.PRECONDITION_FAILED
    # Step 3 / step 4
    if if_none_match is not None:
        if if_none_match.is_star:
            holds = not current.exists
        else:
            holds = etag is None or all(t.tag != etag.tag for t in if_none_match.valid)
        if not holds:
            return (
                Outcome.NOT_MODIFIED
                if method in {"GET", "HEAD"}
                else Outcome.PRECONDITION_FAILED
            )
    elif (
        method in {"GET", "HEAD"}
        and if_modified_since is not None
        and if_modified_since.valid
        and last_modified is not None
        and last_modified <= if_modified_since.moment
    ):
        return Outcome.NOT_MODIFIED
    return Outcome.PROCEED


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(METHODS),
    st.none() | tag_lists,
    st.none() | dates,
    st.none() | tag_lists,
    st.none() | dates,
    validators,
    separators,
)
def test_engine_agrees_with_the_rfc(
    method: str,
    if_match: TagList | None,
    if_unmodified_since: DateField | None,
    if_none_match: TagList | None,
    if_modified_since: DateField | None,
    current: Validators,
    seps: list[str],
) -> None:
    headers = ConditionalHeaders(
        if_match=if_match.render(seps) if if_match else None,
        if_unmodified_since=if_unmodified_since.render()
        if if_unmodified_since
        else None,
        if_none_match=if_none_match.render(seps) if if_none_match else None,
        if_modified_since=if_modified_since.render() if if_modified_since else None,
    )
    expected = oracle(
        method, if_match, if_unmodified_since, if_none_match, if_modified_since, current
    )
    assert evaluate(method, headers, current, now=NOW).outcome is expected


@settings(max_examples=500, deadline=None)
@given(tag_lists, separators)
def test_parser_keeps_exactly_the_valid_members(
    tag_list: TagList, seps: list[str]
) -> None:
    parsed = parse_entity_tags(tag_list.render(seps))
    if tag_list.is_star:
        assert parsed == "*"
    else:
        assert parsed == tuple(tag_list.valid)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300), st.sampled_from(METHODS), validators)
def test_arbitrary_header_text_never_raises(
    text: str, method: str, current: Validators
) -> None:
    latin1 = text.encode("utf-8", "replace").decode("latin-1")  # what WSGI hands Django
    headers = ConditionalHeaders(latin1, latin1, latin1, latin1, latin1, "bytes=0-1")
    assert evaluate(method, headers, current, now=NOW).outcome in set(Outcome)


@settings(max_examples=400, deadline=None)
@given(st.text(ETAGC + ' \t"W/*,', max_size=12))
def test_one_member_reads_as_in_a_list(value: str) -> None:
    # A header without a comma takes a shortcut; a trailing empty list element (§5.6.1.2)
    # sends the same member through the general loop, which must read it the same way.
    assume("," not in value and value.strip(" \t") != "*")
    assert parse_entity_tags(value) == parse_entity_tags(value + ",")
    assert parse_entity_tags(value, max_members=0) == ()
