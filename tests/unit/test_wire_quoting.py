"""The fast form quoting is byte-for-byte what every form encoder writes."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from chathooks.wire.quoting import (
    MAX_REPLACED_KINDS,
    form_quote,
    form_quote_bytes,
    quote_with_table,
)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_form_quote_equals_quote_plus(text: str) -> None:
    try:
        expected = quote_plus(text)
    except UnicodeEncodeError:  # a lone surrogate cannot be sent at all
        return
    assert form_quote(text) == expected
    assert form_quote_bytes(text) == expected.encode("ascii")
    assert quote_with_table(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_text_like_json_equals_quote_plus(text: str) -> None:
    """The JSON chathooks sends is ASCII: the kind-by-kind replacing path."""
    assert form_quote_bytes(text) == quote_plus(text).encode("ascii")


def test_a_transcript_is_quoted_kind_by_kind_and_exactly() -> None:
    document = json.dumps(
        {
            "kind": "Conversation",
            "items": [{"body": "100% sure? a+b=c & 'x' (y) ~ <z> / @ | #1;", "timestamp": "1.5"}],
            "visitor": {"fullName": "Zoë O'Brien", "emailAddress": "zoe+chat@example.org"},
        }
    )
    assert form_quote_bytes(document) == quote_plus(document).encode("ascii")


def test_text_with_many_kinds_of_bytes_to_escape_takes_the_whole_text_quoter() -> None:
    text = "".join(map(chr, range(0x80, 0x80 + 4 * MAX_REPLACED_KINDS))) + " %+"
    assert form_quote(text) == quote_plus(text)


def test_every_ascii_character() -> None:
    text = "".join(map(chr, range(128)))
    assert form_quote(text) == quote_plus(text)
