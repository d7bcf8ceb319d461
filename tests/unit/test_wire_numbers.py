"""Reading JSON text: numbers no JSON reader accepts are refused by key, everything else read."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

from chathooks.wire import InvalidPayload
from chathooks.wire.numbers import MAX_INTEGER_DIGITS, loads_checked

LONGEST = "9" * MAX_INTEGER_DIGITS


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "c1", "n": 1, "f": 1.5, "e": -2E3, "z": -0.0, "items": [1, [2.25, {"x": 3}]]}',
        f'{{"id": "c1", "long": {LONGEST}, "negative": -{LONGEST}}}',
        '{"id": "c\\u00e9", "s": "NaN", "t": "1e999", "null": null, "yes": true}',
        "[]",
        '"text"',
    ],
)
def test_every_carriable_document_reads_as_json_loads_reads_it(text: str) -> None:
    assert loads_checked(text) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ('{"items": [{"a": 1}, {"b": NaN}]}', "items.1.b", "NaN is not a JSON number"),
        ('{"x": Infinity}', "x", "Infinity is not a JSON number"),
        ('{"a": {"b": [0, -Infinity]}}', "a.b.1", "-Infinity is not a JSON number"),
        ('{"big": 1e999}', "big", "a number too large for JSON"),
        ('{"small": -1e999}', "small", "a number too large for JSON"),
        (f'{{"n": 1, "long": {LONGEST}9}}', "long", f"an integer of {MAX_INTEGER_DIGITS + 1}"),
        (f'{{"long": -{LONGEST}9}}', "long", f"an integer of {MAX_INTEGER_DIGITS + 1}"),
        ("NaN", "data", "NaN is not a JSON number"),
    ],
)
def test_an_uncarriable_number_is_refused_naming_its_key(
    text: str, field: str, reason: str
) -> None:
    with pytest.raises(InvalidPayload) as refused:
        loads_checked(text)
    assert refused.value.field == field
    assert reason in refused.value.message


def test_the_first_of_several_uncarriable_numbers_is_named() -> None:
    with pytest.raises(InvalidPayload) as refused:
        loads_checked('{"a": 1, "b": [2, 1e400], "c": NaN}')
    assert refused.value.field == "b.1"


@pytest.mark.parametrize(
    "text",
    [
        '{"x": NaN, "y": }',  # a refused number before the syntax error: the error wins
        '{"x": 1e999',
        "\ufeff{}",  # json.loads's own refusal of a byte order mark
        '{"a": 1} trailing',
        "",
    ],
)
def test_text_that_is_not_json_fails_as_json_loads_fails(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        loads_checked(text)
    assert (got.value.msg, got.value.pos) == (expected.value.msg, expected.value.pos)


@pytest.fixture
def higher_digit_limit() -> Iterator[int]:
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(MAX_INTEGER_DIGITS * 2)
    try:
        yield MAX_INTEGER_DIGITS * 2
    finally:
        sys.set_int_max_str_digits(before)


def test_integers_stay_within_what_chathooks_carries_whatever_the_process_allows(
    higher_digit_limit: int,
) -> None:
    text = f'{{"long": {LONGEST}9}}'
    assert json.loads(text)["long"] > 0  # the process itself would read it
    with pytest.raises(InvalidPayload) as refused:
        loads_checked(text)
    assert refused.value.field == "long"
