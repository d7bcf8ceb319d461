"""The framework-free receiver: parse, answer, and the WebhookReceiver pipeline."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import chathooks.receiver as receiver_pkg
from chathooks.receiver import (
    ForbiddenSource,
    ReceivedWebhook,
    SeenIds,
    WebhookReceiver,
    WebhookRejected,
    header_value,
    integration_url_response,
    parse_webhook,
    rejection_for,
)
from chathooks.receiver.app import ReceiverConfig
from chathooks.signing import (
    MissingSignatureHeaders,
    SignatureMismatch,
    TimestampOutOfTolerance,
    generate_secret,
    signature_headers,
)
from chathooks.wire import (
    BodyTooLarge,
    InvalidJSON,
    InvalidPayload,
    MissingDataField,
    OfflineMessageTranscript,
    Payload,
    StartEvent,
    Transcript,
    UnsupportedContentType,
    WireError,
)
from support.fixtures import OLARK_FIXTURES

FIXTURES = OLARK_FIXTURES
FORM = "application/x-www-form-urlencoded"
SECRET = generate_secret()
NOW = 1_700_000_000
PEER = "203.0.113.7"

VALID_BODIES = {
    "snowplow-spark-olark-test-transcript-raw": Transcript,
    "snowplow-enrich-common-e1-transcript-2016": Transcript,
    "snowplow-enrich-common-e1-transcript-HEAD": Transcript,
    "snowplow-enrich-common-e2-offline-message": OfflineMessageTranscript,
    "snowplow-enrich-fs2-blackbox-transcript": Transcript,
}


def body(name: str) -> bytes:
    return (FIXTURES / f"{name}.body.txt").read_bytes()


def signed(
    data: bytes, msg_id: str = "msg_1", ts: int = NOW, secret: str = SECRET
) -> dict[str, str]:
    return {"Content-Type": FORM, **signature_headers(secret, msg_id, data, timestamp=ts)}


def make_receiver(**overrides: Any) -> WebhookReceiver:
    options: dict[str, Any] = {
        "secrets": [SECRET],
        "allow_cidrs": ["203.0.113.0/24"],
        "max_body_bytes": 10_000,
    }
    options.update(overrides)
    return WebhookReceiver(**options)


# --- parse_webhook ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), VALID_BODIES.items())
def test_parse_webhook_reads_every_wire_exact_fixture(name: str, kind: type[Payload]) -> None:
    payload = parse_webhook(body(name), {"content-type": FORM})
    assert type(payload) is kind
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    assert payload.id == expected["id"]
    assert payload.to_wire() == expected


def test_parse_webhook_finds_content_type_case_insensitively_or_takes_it_directly() -> None:
    data = body("snowplow-enrich-common-e1-transcript-2016")
    assert parse_webhook(data, {"CONTENT-TYPE": FORM}).id == "EV695BI2930A6XMO32886MPT899443414"
    assert parse_webhook(data, content_type=FORM).id == "EV695BI2930A6XMO32886MPT899443414"
    raw_json = (FIXTURES / "php-consumer-real-start-event-1.json").read_bytes()
    assert isinstance(parse_webhook(raw_json, {"Content-Type": "application/json"}), StartEvent)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("snowplow-enrich-common-e7-missing-data-key", MissingDataField),
        ("snowplow-enrich-common-e8-invalid-json", InvalidJSON),
        ("snowplow-issue-1014-olark-2014-send-test-TRUNCATED", InvalidJSON),
    ],
)
def test_parse_webhook_raises_typed_wire_errors_for_broken_fixtures(
    name: str, error: type[WireError]
) -> None:
    with pytest.raises(error):
        parse_webhook(body(name), content_type=FORM)


def test_parse_webhook_without_content_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedContentType):
        parse_webhook(b"data=%7B%7D")


# --- integration_url_response ----------------------------------------------------------


def test_integration_url_response_is_the_json_olark_reads() -> None:
    reply = integration_url_response("https://crm.example.com/leads/42?x=1&y=ü")
    assert reply.status == 200
    assert reply.content_type == "application/json"
    assert json.loads(reply.body) == {"integrationUrl": "https://crm.example.com/leads/42?x=1&y=ü"}
    _status, data, _content_type = reply  # plain tuple, easy to hand to any framework
    assert data.startswith(b'{"integrationUrl": ')


@pytest.mark.parametrize("url", ["", "/leads/42", "crm.example.com/leads/42"])
def test_integration_url_must_be_absolute(url: str) -> None:
    with pytest.raises(ValueError, match="absolute URL"):
        integration_url_response(url)


# --- WebhookReceiver: accepted requests ------------------------------------------------


def test_signed_fixture_is_received_with_payload_id_and_document() -> None:
    data = body("snowplow-spark-olark-test-transcript-raw")
    received = make_receiver().receive(data, signed(data), PEER, now=NOW)
    assert isinstance(received, ReceivedWebhook)
    assert isinstance(received.payload, Transcript)
    assert received.payload.id == "NOTAREALTRANSCRIPT5LGcbVTa3hKBRB"
    assert received.webhook_id == "msg_1"
    expected = json.loads((FIXTURES / "snowplow-spark-olark-test-transcript-raw.json").read_text())
    assert received.document == expected
    assert received.duplicate is False


def test_without_secrets_or_allow_list_anything_well_formed_is_received() -> None:
    data = body("snowplow-enrich-common-e2-offline-message")
    open_receiver = WebhookReceiver()
    received = open_receiver.receive(data, {"content-type": FORM}, None)
    assert isinstance(received.payload, OfflineMessageTranscript)
    assert received.webhook_id is None
    # An unsigned sender's webhook-id is still passed on (useful for dedupe).
    with_id = open_receiver.receive(data, {"content-type": FORM, "Webhook-Id": "d-1"}, None)
    assert with_id.webhook_id == "d-1"


def test_redelivered_id_is_marked_duplicate_and_forget_undoes_it() -> None:
    seen = SeenIds()
    receiver = make_receiver(seen_ids=seen)
    data = body("snowplow-enrich-common-e1-transcript-HEAD")
    first = receiver.receive(data, signed(data), PEER, now=NOW)
    # A retry: same id, re-signed at a later attempt.
    retry = receiver.receive(data, signed(data, ts=NOW + 60), PEER, now=NOW + 60)
    assert (first.duplicate, retry.duplicate) == (False, True)
    receiver.forget(retry)
    assert receiver.receive(data, signed(data), PEER, now=NOW).duplicate is False
    other = receiver.receive(data, signed(data, msg_id="msg_2"), PEER, now=NOW)
    assert other.duplicate is False


def test_rejected_requests_do_not_mark_ids_as_seen() -> None:
    seen = SeenIds()
    receiver = make_receiver(seen_ids=seen)
    data = body("snowplow-enrich-common-e1-transcript-HEAD")
    with pytest.raises(WebhookRejected):
        receiver.receive(data + b"x", signed(data), PEER, now=NOW)
    assert "msg_1" not in seen


# --- WebhookReceiver: rejections -------------------------------------------------------


def rejection(
    receiver: WebhookReceiver, data: bytes, headers: dict[str, str], peer: str | None = PEER
) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as info:
        receiver.receive(data, headers, peer, now=NOW)
    return info.value


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("snowplow-enrich-common-e7-missing-data-key", "missing_data_field"),
        ("snowplow-enrich-common-e8-invalid-json", "invalid_json"),
    ],
)
def test_broken_bodies_are_400_with_the_wire_error(name: str, code: str) -> None:
    data = body(name)
    error = rejection(make_receiver(), data, signed(data))
    assert error.status == 400
    assert error.code == code
    assert isinstance(error.reason, WireError)
    assert error.__cause__ is error.reason
    assert error.to_dict() == error.reason.to_dict()


def test_wrong_shape_is_400_naming_the_field() -> None:
    data = b'{"id": 5, "items": []}'
    headers = signed(data) | {"Content-Type": "application/json"}
    error = rejection(make_receiver(), data, headers)
    assert (error.status, error.code, error.field) == (400, "invalid_payload", "id")
    assert isinstance(error.reason, InvalidPayload)


def test_unsigned_request_is_401_naming_the_missing_headers() -> None:
    data = body("snowplow-enrich-common-e1-transcript-2016")
    error = rejection(make_receiver(), data, {"Content-Type": FORM})
    assert error.status == 401
    assert isinstance(error.reason, MissingSignatureHeaders)
    assert json.loads(error.response().body) == {
        "error": "missing_signature_headers",
        "field": "webhook-id",
        "message": error.message,
    }


def test_tampered_body_is_401() -> None:
    data = body("snowplow-enrich-common-e1-transcript-2016")
    tampered = data.replace(b"billing", b"refunds")
    assert tampered != data
    error = rejection(make_receiver(), tampered, signed(data))
    assert (error.status, error.code) == (401, "signature_mismatch")
    assert isinstance(error.reason, SignatureMismatch)


def test_replayed_old_request_is_401() -> None:
    data = body("snowplow-enrich-common-e1-transcript-2016")
    error = rejection(make_receiver(tolerance_seconds=60), data, signed(data, ts=NOW - 61))
    assert isinstance(error.reason, TimestampOutOfTolerance)
    assert error.status == 401


def test_key_rotation_through_the_receiver() -> None:
    old, new = generate_secret(), generate_secret()
    receiver = make_receiver(secrets=[old, new])
    data = body("snowplow-enrich-common-e1-transcript-2016")
    assert receiver.receive(data, signed(data, secret=old), PEER, now=NOW).webhook_id == "msg_1"
    assert receiver.receive(data, signed(data, secret=new), PEER, now=NOW).webhook_id == "msg_1"


def test_source_outside_the_allow_list_is_403_before_anything_else() -> None:
    # Even a broken, unsigned body gets 403: nothing is parsed for strangers.
    error = rejection(make_receiver(), b"junk", {"Content-Type": "text/plain"}, "198.51.100.7")
    assert (error.status, error.code, error.field) == (403, "forbidden_source", "remote_addr")
    assert isinstance(error.reason, ForbiddenSource)
    assert "198.51.100.7" in error.message


def test_xff_spoofing_through_the_receiver() -> None:
    receiver = make_receiver(trusted_proxies=["10.0.0.0/8"])
    data = body("snowplow-enrich-common-e1-transcript-2016")
    spoofed = signed(data) | {"X-Forwarded-For": PEER}
    assert rejection(receiver, data, spoofed, "198.51.100.7").status == 403
    via_proxy = receiver.receive(data, spoofed, "10.0.0.1", now=NOW)
    assert via_proxy.payload.id == "EV695BI2930A6XMO32886MPT899443414"


def test_ipv6_and_ipv4_mapped_peers_through_the_receiver() -> None:
    receiver = make_receiver(allow_cidrs=["203.0.113.0/24", "2001:db8::/32"])
    data = body("snowplow-enrich-common-e1-transcript-2016")
    assert receiver.receive(data, signed(data), "2001:db8::5", now=NOW)
    assert receiver.receive(data, signed(data), "::ffff:203.0.113.9", now=NOW)
    assert rejection(receiver, data, signed(data), "2001:db9::5").status == 403


def test_oversized_body_is_413_before_the_signature_is_checked() -> None:
    data = b"data=" + b"x" * 20_000
    error = rejection(make_receiver(), data, {"Content-Type": FORM})
    assert (error.status, error.code) == (413, "body_too_large")
    assert isinstance(error.reason, BodyTooLarge)
    assert "10000" in error.message


def test_check_size_refuses_a_declared_length_over_the_limit() -> None:
    with pytest.raises(WebhookRejected) as info:
        make_receiver().check_size(10_001)
    assert info.value.status == 413
    make_receiver().check_size(10_000)


def test_unsupported_content_type_is_415_after_the_signature() -> None:
    data = b"<xml/>"
    headers = signed(data) | {"Content-Type": "text/xml"}
    error = rejection(make_receiver(), data, headers)
    assert (error.status, error.code, error.field) == (
        415,
        "unsupported_content_type",
        "content-type",
    )
    # Unsigned, the same request is 401: the parser is not exposed to strangers.
    assert rejection(make_receiver(), data, {"Content-Type": "text/xml"}).status == 401


def test_form_content_type_with_charset_is_still_read() -> None:
    data = body("snowplow-enrich-common-e1-transcript-2016")
    headers = signed(data) | {"Content-Type": FORM + "; charset=utf-8"}
    assert make_receiver().receive(data, headers, PEER, now=NOW).payload.id


def test_bad_configuration_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="allow_cidrs"):
        WebhookReceiver(allow_cidrs=["not-a-net"])
    with pytest.raises(ValueError, match="max_body_bytes"):
        WebhookReceiver(max_body_bytes=0)
    with pytest.raises(ValueError, match="secret"):
        WebhookReceiver(secrets="whsec_***")


# --- helpers ---------------------------------------------------------------------------


def test_rejection_for_maps_every_error_family_to_its_status() -> None:
    assert rejection_for(BodyTooLarge(2, 1)).status == 413
    assert rejection_for(UnsupportedContentType("text/plain")).status == 415
    assert rejection_for(MissingDataField()).status == 400
    assert rejection_for(SignatureMismatch("x")).status == 401
    assert rejection_for(ForbiddenSource("192.0.2.1", "no")).status == 403


def test_header_value_is_case_insensitive_and_joins_repeats() -> None:
    headers = {"X-Forwarded-For": "192.0.2.1", "content-type": FORM}
    assert header_value(headers, "x-forwarded-for") == "192.0.2.1"
    assert header_value(headers, "Content-Type") == FORM
    assert header_value(headers, "missing") is None

    class Repeated(dict[str, str]):
        def items(self) -> Any:  # like a framework's multi-valued header object
            return [("X-Forwarded-For", "192.0.2.1"), ("x-forwarded-for", "10.0.0.1")]

    assert header_value(Repeated(), "X-Forwarded-For") == "192.0.2.1, 10.0.0.1"


def test_public_api_is_exported_without_importing_any_framework() -> None:
    for name in receiver_pkg.__all__:
        assert hasattr(receiver_pkg, name), name
    # A fresh interpreter: importing the toolkit must not pull in Flask or Django.
    check = (
        "import sys, chathooks.receiver; "
        "print(sorted(m for m in ('flask', 'django', 'werkzeug') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("host", "public_url", "shown"),
    [
        ("127.0.0.1", None, "http://127.0.0.1:8701"),
        ("::1", None, "http://[::1]:8701"),
        ("localhost", None, "http://localhost:8701"),
        ("::1", "https://hooks.example/", "https://hooks.example"),
    ],
)
def test_the_receiver_says_where_it_listens_as_a_url(
    host: str, public_url: str | None, shown: str
) -> None:
    config = ReceiverConfig(database_url="sqlite://", host=host, port=8701, public_url=public_url)
    assert config.listening_url() == shown
