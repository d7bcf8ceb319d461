"""``chathooks send-test`` against real endpoints on loopback.

The recording receiver sees the request exactly as it arrived on the wire,
so these tests check what Olark's Send test button would have sent.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from typer.testing import CliRunner

from chathooks.cli import app
from chathooks.signing import Verifier, generate_secret
from chathooks.wire import TEST_TRANSCRIPT_ID, encode_form, send_test_transcript
from support.receiver import RecordingReceiver

runner = CliRunner()


def unused_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_posts_the_test_transcript_exactly_as_olark_does(receiver: RecordingReceiver) -> None:
    result = runner.invoke(app, ["send-test", receiver.url])

    assert result.exit_code == 0, result.output
    (received,) = receiver.wait_for(1)
    assert received.method == "POST"
    assert received.content_type == "application/x-www-form-urlencoded"
    assert received.body == encode_form(send_test_transcript())
    assert received.document()["id"] == TEST_TRANSCRIPT_ID
    assert received.header("webhook-signature") is None  # Olark signs nothing

    assert "200 OK" in result.output
    assert "time:" in result.output
    assert f"integrationUrl: https://crm.example/leads/{TEST_TRANSCRIPT_ID}" in result.output


def test_signs_with_standard_webhooks_headers_when_given_a_secret(
    receiver: RecordingReceiver,
) -> None:
    secret = generate_secret()
    result = runner.invoke(app, ["send-test", receiver.url, "--secret", secret])

    assert result.exit_code == 0, result.output
    (received,) = receiver.wait_for(1)
    webhook_id = Verifier(secret).verify(received.headers, received.body)
    assert webhook_id == received.header("webhook-id")


def test_sends_a_payload_file_as_json_document_or_exact_body(
    receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    body_file = fixtures_dir / "snowplow-enrich-common-e2-offline-message.body.txt"
    json_file = fixtures_dir / "php-consumer-real-transcript-1.json"

    assert runner.invoke(app, ["send-test", receiver.url, "--file", str(body_file)]).exit_code == 0
    assert runner.invoke(app, ["send-test", receiver.url, "--file", str(json_file)]).exit_code == 0

    as_body, as_json = receiver.wait_for(2)
    assert as_body.body == body_file.read_bytes()
    assert as_json.content_type == "application/x-www-form-urlencoded"
    assert as_json.document() == json.loads(json_file.read_text())


def test_a_refused_connection_fails_with_the_reason() -> None:
    url = f"http://127.0.0.1:{unused_port()}/webhook"
    result = runner.invoke(app, ["send-test", url])

    assert result.exit_code == 1
    assert "connection refused" in result.output


def test_a_server_error_fails_with_the_status_and_body(receiver: RecordingReceiver) -> None:
    receiver.reply(500, "database is down")
    result = runner.invoke(app, ["send-test", receiver.url])

    assert result.exit_code == 1
    assert "500 Internal Server Error" in result.output
    assert "database is down" in result.output


def test_json_output_describes_success_and_failure(receiver: RecordingReceiver) -> None:
    ok = runner.invoke(app, ["send-test", receiver.url, "--json"])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert report["ok"] is True
    assert report["status"] == 200
    assert report["integrationUrl"] == f"https://crm.example/leads/{TEST_TRANSCRIPT_ID}"
    assert report["elapsed_ms"] >= 0

    receiver.reply(503, {"error": "busy"})
    failed = runner.invoke(app, ["send-test", receiver.url, "--json"])
    assert failed.exit_code == 1
    report = json.loads(failed.stdout)
    assert report["ok"] is False
    assert report["status"] == 503
    assert report["error"] == "http_status"
    assert json.loads(report["response"]["body"]) == {"error": "busy"}

    refused = runner.invoke(
        app, ["send-test", f"http://127.0.0.1:{unused_port()}/webhook", "--json"]
    )
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["error"] == "refused"


def test_a_slow_endpoint_times_out(receiver: RecordingReceiver) -> None:
    receiver.reply(200, {}, delay=5)
    result = runner.invoke(app, ["send-test", receiver.url, "--timeout", "0.5"])

    assert result.exit_code == 1
    assert "no answer" in result.output and "0.5 seconds" in result.output


def test_bad_arguments_are_refused_before_sending(
    receiver: RecordingReceiver, tmp_path: Path
) -> None:
    not_http = runner.invoke(app, ["send-test", "ftp://example.org/x"])
    assert not_http.exit_code == 2
    assert "http://" in not_http.output

    missing = runner.invoke(app, ["send-test", receiver.url, "--file", str(tmp_path / "no.json")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.output

    array = tmp_path / "list.json"
    array.write_text("[1, 2]")
    not_object = runner.invoke(app, ["send-test", receiver.url, "--file", str(array)])
    assert not_object.exit_code == 2
    assert "one JSON object" in not_object.output

    bad_secret = runner.invoke(app, ["send-test", receiver.url, "--secret", "whsec_!!"])
    assert bad_secret.exit_code == 2
    assert receiver.requests == []


def test_a_reply_nested_too_deeply_to_read_has_no_integration_url(
    receiver: RecordingReceiver,
) -> None:
    """A hostile endpoint cannot crash ``send-test`` with a reply Python's parser cannot nest."""
    receiver.reply(200, "[" * 60_000)
    result = runner.invoke(app, ["send-test", receiver.url, "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report.get("integrationUrl") is None
