"""Decoding request bodies and encoding the exact wire form."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chathooks.wire import (
    FORM_CONTENT_TYPE,
    BodyTooLarge,
    InvalidJSON,
    InvalidPayload,
    MessageToOperator,
    MessageToVisitor,
    MissingDataField,
    NotAnObject,
    OfflineMessage,
    OfflineMessageTranscript,
    Operator,
    StartEvent,
    Transcript,
    UnknownItem,
    UnsupportedContentType,
    Visitor,
    decode_body,
    encode_form,
    encode_json,
    format_timestamp,
    integration_url_of,
    is_wire_timestamp,
    parse_timestamp,
    send_test_transcript,
)

MINIMAL = {"kind": "Conversation", "id": "abc", "items": []}


def form(document: Any) -> bytes:
    return ("data=" + quote(json.dumps(document))).encode()


def test_spaces_as_plus_and_as_percent_20_both_decode() -> None:
    document = {**MINIMAL, "items": [{"kind": "OfflineMessage", "body": "a b", "timestamp": "1"}]}
    text = json.dumps(document)
    plus = ("data=" + quote(text).replace("%20", "+")).encode()
    pct = ("data=" + quote(text)).encode()
    assert decode_body(plus, FORM_CONTENT_TYPE).to_wire() == document
    assert decode_body(pct, FORM_CONTENT_TYPE).to_wire() == document


def test_content_type_parameters_are_tolerated_when_reading() -> None:
    payload = decode_body(form(MINIMAL), "Application/X-WWW-Form-Urlencoded; charset=UTF-8")
    assert payload.id == "abc"


def test_raw_json_body_is_accepted() -> None:
    assert decode_body(json.dumps(MINIMAL), "application/json").id == "abc"


@pytest.mark.parametrize(
    ("body", "content_type", "error", "field"),
    [
        (b"id=abc", FORM_CONTENT_TYPE, MissingDataField, "data"),
        (b"data=%7B%22id%22%3A", FORM_CONTENT_TYPE, InvalidJSON, "data"),
        (b"data=%5B1%2C2%5D", FORM_CONTENT_TYPE, NotAnObject, "data"),
        (b"data=null", FORM_CONTENT_TYPE, NotAnObject, "data"),
        (b"<xml/>", "text/xml", UnsupportedContentType, "content-type"),
        (b"data=%7B%7D", None, UnsupportedContentType, "content-type"),
        (b"data=%7B%22items%22%3A%5B%5D%7D", FORM_CONTENT_TYPE, InvalidPayload, "id"),
    ],
)
def test_each_failure_is_a_typed_error_naming_the_field(
    body: bytes, content_type: str | None, error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as caught:
        decode_body(body, content_type)
    assert getattr(caught.value, "field", None) == field
    as_dict = caught.value.to_dict()  # type: ignore[attr-defined]
    assert as_dict["field"] == field
    assert as_dict["message"]


def test_invalid_json_carries_line_and_column() -> None:
    with pytest.raises(InvalidJSON) as caught:
        decode_body('{\n  "id": "x",\n  oops\n}', "application/json")
    assert (caught.value.line, caught.value.column) == (3, 3)


def test_body_over_the_limit_is_refused_before_parsing() -> None:
    body = form({**MINIMAL, "tags": ["x" * 2000]})
    with pytest.raises(BodyTooLarge) as caught:
        decode_body(body, FORM_CONTENT_TYPE, max_body_bytes=1000)
    assert caught.value.limit == 1000
    assert decode_body(body, FORM_CONTENT_TYPE, max_body_bytes=len(body)).id == "abc"


def test_wrongly_typed_key_is_reported_with_its_path() -> None:
    document = {**MINIMAL, "visitor": {"emailAddress": 12}}
    with pytest.raises(InvalidPayload) as caught:
        decode_body(json.dumps(document), "application/json")
    assert caught.value.field == "visitor.emailAddress"


def test_encoded_form_is_exactly_one_data_field() -> None:
    body = encode_form(send_test_transcript())
    fields = parse_qs(body.decode("ascii"), keep_blank_values=True)
    assert list(fields) == ["data"]
    assert json.loads(fields["data"][0])["id"] == "NOTAREALTRANSCRIPT5LGcbVTa3hKBRB"
    assert FORM_CONTENT_TYPE == "application/x-www-form-urlencoded"


def test_json_text_uses_olark_separators() -> None:
    text = encode_json(StartEvent(id="c1")).decode()
    assert '"kind": "Conversation", ' in text


def test_unknown_keys_and_item_kinds_survive() -> None:
    document = {
        **MINIMAL,
        "futureKey": {"nested": [1, 2]},
        "items": [
            {"kind": "ChatRating", "stars": 5, "timestamp": "1.0"},
            {"kind": "MessageToVisitor", "body": "hi", "timestamp": "2.0", "newField": True},
        ],
        "visitor": {"kind": "Visitor", "somethingNew": "kept"},
    }
    payload = decode_body(json.dumps(document), "application/json")
    assert isinstance(payload.items[0], UnknownItem)
    assert isinstance(payload.items[1], MessageToVisitor)
    assert decode_body(encode_form(payload), FORM_CONTENT_TYPE).to_wire() == document


def test_built_transcript_has_only_olark_top_level_keys() -> None:
    transcript = Transcript(
        id="c1",
        tags=[],
        items=[MessageToOperator(body="hello", timestamp=format_timestamp(1.5), nickname="V")],
        visitor=Visitor(id="v1", ip=""),
        operators={"7": Operator(id="7", username="op", nickname="Op", email_address="")},
        manually_submitted=False,
    )
    assert set(transcript.to_wire()) == {
        "kind",
        "id",
        "tags",
        "items",
        "visitor",
        "operators",
        "manuallySubmitted",
    }


def test_offline_message_built_in_code_has_no_operators() -> None:
    offline = OfflineMessageTranscript(
        id="o1", items=[OfflineMessage(body="name: A\nMessage: hi", timestamp="1.0")], tags=[]
    )
    wire = offline.to_wire()
    assert "operators" not in wire
    assert wire["items"] == [
        {"kind": "OfflineMessage", "body": "name: A\nMessage: hi", "timestamp": "1.0"}
    ]


def test_start_event_envelope() -> None:
    wire = StartEvent(id="c9", operators={}, visitor=Visitor(id="v")).to_wire()
    assert wire["eventType"] == "start"
    assert wire["items"] == []
    assert wire["operators"] == {}


def test_timestamps_stay_strings_with_six_decimals() -> None:
    moment = datetime(2016, 9, 13, 13, 53, 39, 263083, tzinfo=UTC)
    assert format_timestamp(moment) == "1473774819.263083"
    assert format_timestamp(1473774819.2) == "1473774819.200000"
    assert parse_timestamp("1473774819.263083") == moment
    assert parse_timestamp("1307116657.1") == datetime(2011, 6, 3, 15, 57, 37, 100000, tzinfo=UTC)
    assert is_wire_timestamp("1365539948.56")
    assert not is_wire_timestamp(1365539948.56)
    assert not is_wire_timestamp("2016-09-13T13:53:39Z")
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")
    with pytest.raises(ValueError):
        format_timestamp(datetime(2016, 1, 1))


# -- property-based round trips -------------------------------------------------------

tricky_text = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["&", "=", "+", "%", "\n", "\r\n", "😀", "é", "中", "%20", "+&="]),
    ),
    max_size=20,
).map("".join)
timestamps = st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False).map(format_timestamp)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), tricky_text)
custom_fields = st.dictionaries(tricky_text, json_scalars, max_size=4)

items = st.one_of(
    st.builds(
        lambda body, ts, nick, op: {
            "kind": "MessageToVisitor",
            "body": body,
            "timestamp": ts,
            "nickname": nick,
            "operatorId": op,
        },
        tricky_text,
        timestamps,
        tricky_text,
        st.text("0123456789", min_size=1, max_size=8),
    ),
    st.builds(
        lambda body, ts, nick: {
            "kind": "MessageToOperator",
            "body": body,
            "timestamp": ts,
            "nickname": nick,
            "visitor_nickname": nick,
        },
        tricky_text,
        timestamps,
        tricky_text,
    ),
    st.builds(
        lambda body, extra: {"kind": "SomethingNew", "body": body, "extra": extra},
        tricky_text,
        json_scalars,
    ),
)

documents = st.fixed_dictionaries(
    {
        "kind": st.just("Conversation"),
        "id": st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=32),
        "items": st.lists(items, max_size=6),
    },
    optional={
        "tags": st.lists(tricky_text, max_size=3),
        "manuallySubmitted": st.booleans(),
        "operators": st.just({"1": {"kind": "Operator", "id": "1", "nickname": "Op"}}),
        "visitor": st.fixed_dictionaries(
            {"kind": st.just("Visitor")},
            optional={
                "fullName": tricky_text,
                "emailAddress": tricky_text,
                "ip": st.sampled_from(["", "127.0.0.1", "203.0.113.9"]),
                "customFields": custom_fields,
                "chat_feedback": st.just({}),
            },
        ),
        "unknownTopLevel": json_scalars,
    },
)


@settings(max_examples=150, deadline=None)
@given(documents)
def test_any_payload_round_trips_through_the_form_encoding(document: dict[str, Any]) -> None:
    body = encode_form(decode_body(json.dumps(document), "application/json"))
    assert body.isascii()
    assert decode_body(body, FORM_CONTENT_TYPE).to_wire() == document
    # A plain form parser (what PHP's $_POST or Flask's request.form does) sees the same value.
    assert json.loads(parse_qs(body.decode())["data"][0]) == document


@settings(max_examples=100, deadline=None)
@given(documents)
def test_raw_json_encoding_round_trips(document: dict[str, Any]) -> None:
    payload = decode_body(json.dumps(document), "application/json")
    assert json.loads(encode_json(payload)) == document


def test_none_set_in_code_is_an_absent_key_but_unknown_nulls_survive() -> None:
    wire = Transcript(id="x", operators=None, tags=None, visitor=None, **{"futureKey": None})
    assert wire.to_wire() == {"kind": "Conversation", "id": "x", "items": [], "futureKey": None}


def test_start_event_built_in_code_always_has_empty_operators() -> None:
    assert StartEvent(id="s").to_wire()["operators"] == {}


@pytest.mark.parametrize("value", ["1473774819.1\n", "١٢٣", "1e9", "-5", "", " 1"])
def test_only_ascii_epoch_seconds_are_wire_timestamps(value: str) -> None:
    assert not is_wire_timestamp(value)
    with pytest.raises(ValueError):
        parse_timestamp(value)


def test_out_of_range_times_are_value_errors() -> None:
    with pytest.raises(ValueError):
        parse_timestamp("99999999999999999999")
    with pytest.raises(ValueError):
        format_timestamp(float("nan"))


def test_absurdly_nested_json_is_invalid_json_not_a_crash() -> None:
    with pytest.raises(InvalidJSON):
        decode_body('{"a":' * 100_000 + "1" + "}" * 100_000, "application/json")


@pytest.mark.parametrize(
    ("reply", "url"),
    [
        (b'{"integrationUrl": "https://crm.example/1"}', "https://crm.example/1"),
        (' {"integrationUrl": "https://crm.example/2"}', "https://crm.example/2"),
        (b'{"integrationUrl": 7}', None),
        (b'{"other": "x"}', None),
        (b'["https://crm.example/3"]', None),
        (b"ok", None),
        (b"{not json", None),
        (b"", None),
        ("{" + '"a":[' * 60_000, None),
    ],
)
def test_the_integration_url_of_a_reply(reply: bytes | str, url: str | None) -> None:
    assert integration_url_of(reply) == url
