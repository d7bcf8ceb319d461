"""The fast form quoting is byte-for-byte what every form encoder writes."""

from __future__ import annotations

from urllib.parse import quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from chathooks.wire.quoting import form_quote, quote_with_table


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_form_quote_equals_quote_plus(text: str) -> None:
    try:
        expected = quote_plus(text)
    except UnicodeEncodeError:  # a lone surrogate cannot be sent at all
        return
    assert form_quote(text) == expected
    assert quote_with_table(text) == expected


def test_every_ascii_character() -> None:
    text = "".join(map(chr, range(128)))
    assert form_quote(text) == quote_plus(text)
