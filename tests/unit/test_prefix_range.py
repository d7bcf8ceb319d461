"""The range that holds exactly the strings starting with a prefix, in code-point order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chathooks.db.prefix import prefix_range


def test_the_last_character_moves_one_on() -> None:
    assert prefix_range("Order-1") == ("Order-1", "Order-2")


def test_the_surrogates_are_stepped_over_and_the_last_code_point_carries() -> None:
    assert prefix_range("a\ud7ff") == ("a\ud7ff", "a\ue000")
    assert prefix_range("a\U0010ffff") == ("a\U0010ffff", "b")
    assert prefix_range("\U0010ffff\U0010ffff") == ("\U0010ffff\U0010ffff", None)


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=6)


@given(prefix=text.filter(bool), other=text)
def test_in_the_range_exactly_when_it_starts_with_the_prefix(prefix: str, other: str) -> None:
    low, high = prefix_range(prefix)
    for candidate in (other, prefix + other, prefix[:-1] + other):
        inside = low <= candidate and (high is None or candidate < high)
        assert inside == candidate.startswith(prefix), (prefix, candidate)
