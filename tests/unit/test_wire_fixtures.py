"""Every real Olark payload decodes, keeps its meaning, and round-trips unchanged."""

from __future__ import annotations

import json

import pytest

from chathooks.wire import (
    FORM_CONTENT_TYPE,
    InvalidJSON,
    MissingDataField,
    OfflineMessageTranscript,
    StartEvent,
    Transcript,
    decode_body,
    encode_form,
    payload_from_dict,
)
from support.fixtures import OLARK_FIXTURES

FIXTURES = OLARK_FIXTURES

# Decoded `data` values of real (or documented) payloads, and what each one is.
JSON_FIXTURES = {
    "olark-docs-current-transcript-RECONSTRUCTED.json": Transcript,
    "olark-docs-portal-article-311822-transcript.json": Transcript,
    "olark-official-webhook-examples-php-test-transcript.json": Transcript,
    "snowplow-spark-olark-test-transcript-raw.json": Transcript,
    "snowplow-enrich-common-e1-transcript-2016.json": Transcript,
    "snowplow-enrich-common-e1-transcript-HEAD.json": Transcript,
    "snowplow-enrich-common-e2-offline-message.json": OfflineMessageTranscript,
    "snowplow-enrich-fs2-blackbox-transcript.json": Transcript,
    "php-consumer-real-start-event-1.json": StartEvent,
    "php-consumer-real-start-event-2.json": StartEvent,
    "php-consumer-real-start-event-3.json": StartEvent,
    "php-consumer-real-transcript-1.json": Transcript,
    "php-consumer-real-transcript-2.json": Transcript,
    "php-consumer-real-transcript-3.json": Transcript,
    "php-consumer-real-offline-message-1.json": OfflineMessageTranscript,
    "getchat-2013-transcript-readme-example.json": Transcript,
    "getchat-2013-transcript-debuglog.json": Transcript,
    "helpy-olark-curl-example.json": Transcript,
    "appengine-readme-raw-json-body.json": Transcript,
}

BODY_FIXTURES = [
    "snowplow-enrich-common-e1-transcript-2016",
    "snowplow-enrich-common-e1-transcript-HEAD",
    "snowplow-enrich-common-e2-offline-message",
    "snowplow-enrich-fs2-blackbox-transcript",
    "snowplow-spark-olark-test-transcript-raw",
]


def load(name: str) -> dict[str, object]:
    document = json.loads((FIXTURES / name).read_text())
    assert isinstance(document, dict)
    return document


def test_every_payload_fixture_is_covered() -> None:
    on_disk = {
        p.name
        for p in FIXTURES.glob("*.json")
        if "expected" not in p.name and not p.name.startswith("rudderstack")
    }
    assert on_disk == set(JSON_FIXTURES)


@pytest.mark.parametrize(("name", "kind"), sorted(JSON_FIXTURES.items()))
def test_fixture_decodes_to_its_kind_and_round_trips(name: str, kind: type) -> None:
    document = load(name)
    payload = payload_from_dict(document)
    assert type(payload) is kind
    assert payload.to_wire() == document
    # Through the wire form and back: the same JSON value.
    again = decode_body(encode_form(payload), FORM_CONTENT_TYPE)
    assert again.to_wire() == document


@pytest.mark.parametrize("stem", BODY_FIXTURES)
def test_wire_exact_bodies_decode_to_their_json(stem: str) -> None:
    body = (FIXTURES / f"{stem}.body.txt").read_bytes()
    payload = decode_body(body, FORM_CONTENT_TYPE)
    assert payload.to_wire() == load(f"{stem}.json")


@pytest.mark.parametrize("number", [1, 2, 3])
def test_rudderstack_inputs_decode(number: int) -> None:
    wrapper = load(f"rudderstack-fixture-{number}-input.json")
    request = wrapper["request"]
    assert isinstance(request, dict)
    body = request["body"]
    assert isinstance(body, str)
    document = json.loads(body)
    payload = decode_body(body, "application/json")
    assert payload.to_wire() == document


def test_offline_message_never_gains_operators() -> None:
    payload = payload_from_dict(load("php-consumer-real-offline-message-1.json"))
    assert "operators" not in payload.to_wire()


def test_start_event_and_transcript_of_the_same_chat_share_the_id() -> None:
    start = payload_from_dict(load("php-consumer-real-start-event-1.json"))
    transcript = payload_from_dict(load("php-consumer-real-transcript-1.json"))
    assert isinstance(start, StartEvent)
    assert start.items == []
    assert start.id == transcript.id


def test_typed_access_reads_olark_spelling() -> None:
    payload = payload_from_dict(load("snowplow-spark-olark-test-transcript-raw.json"))
    assert isinstance(payload, Transcript)
    assert payload.visitor is not None
    assert payload.visitor.email_address == "support+integrationtest@olark.com"
    assert payload.visitor.chat_feedback is not None
    assert payload.visitor.chat_feedback.overall_chat == 4
    first, second = payload.items
    assert first.kind == "MessageToVisitor"
    assert getattr(first, "operator_id", None) == "647563"
    assert getattr(second, "visitor_nickname", None) == "Olark Visitor"


def test_missing_data_key_fixture_names_the_data_field() -> None:
    body = (FIXTURES / "snowplow-enrich-common-e7-missing-data-key.body.txt").read_bytes()
    with pytest.raises(MissingDataField) as caught:
        decode_body(body, FORM_CONTENT_TYPE)
    assert caught.value.field == "data"
    assert "data=" in str(caught.value)


def test_invalid_json_fixture_reports_the_position() -> None:
    body = (FIXTURES / "snowplow-enrich-common-e8-invalid-json.body.txt").read_bytes()
    with pytest.raises(InvalidJSON) as caught:
        decode_body(body, FORM_CONTENT_TYPE)
    assert caught.value.line >= 1
    assert "line" in str(caught.value)


def test_truncated_send_test_body_is_invalid_json_at_its_end() -> None:
    body = (FIXTURES / "snowplow-issue-1014-olark-2014-send-test-TRUNCATED.body.txt").read_bytes()
    with pytest.raises(InvalidJSON) as caught:
        decode_body(body, FORM_CONTENT_TYPE)
    assert caught.value.position > 400
