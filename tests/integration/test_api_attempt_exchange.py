"""Each attempt in the delivery log shows the whole exchange: the request headers as sent
(secrets masked), the exact body, and the receiver's status, headers and body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support.receiver import RecordingReceiver
from support.service import RunningService, running_service


@pytest.fixture
def service(database_url: str) -> Iterator[RunningService]:
    with running_service(database_url) as running:
        yield running


TRANSCRIPT: dict[str, Any] = {
    "kind": "Conversation",
    "id": "chat-exchange",
    "items": [{"kind": "MessageToOperator", "body": "Å & ü?", "timestamp": "1700000000.0"}],
    "visitor": {"kind": "Visitor", "fullName": "Ada"},
    "operators": {},
}


@pytest.mark.parametrize("fmt", ["form", "json"])
def test_an_attempt_keeps_the_request_and_the_answer(
    service: RunningService, receiver: RecordingReceiver, fmt: str
) -> None:
    site, auth = service.create_site()
    endpoint = service.create_endpoint(
        site, auth, receiver.url, format=fmt, headers={"X-Crm-Token": "very-secret"}
    )
    receiver.reply(503, "try later", headers={"X-Crm-Trace": "r-17", "Retry-After": "0"})
    response = service.client.post(
        f"/api/v1/sites/{site}/transcripts", json=TRANSCRIPT, headers=auth
    )
    [delivery] = response.json()["deliveries"]
    done = service.wait_for_status(site, auth, delivery["id"], "succeeded")
    first, second = done["attempts"][:2]
    [sent_first, sent_second] = receiver.wait_for(2)[:2]

    # The body shown is byte for byte the body the receiver got.
    assert first["request_body"] == sent_first.body.decode("ascii" if fmt == "form" else "utf-8")
    assert second["request_body"] == sent_second.body.decode()
    headers = first["request_headers"]
    assert headers["webhook-id"] == delivery["id"]
    assert headers["webhook-timestamp"] == sent_first.header("webhook-timestamp")
    assert headers["Content-Type"] == sent_first.content_type
    assert headers["User-Agent"].startswith("chathooks/")
    # The signature and the endpoint's own headers keep their name, never their value.
    assert headers["webhook-signature"] != sent_first.header("webhook-signature")
    assert "very-secret" not in str(headers) and "X-Crm-Token" in headers
    assert endpoint["secret"] not in str(done)

    assert first["status_code"] == 503
    assert first["response_body"] == "try later"
    assert first["response_headers"]["X-Crm-Trace"] == "r-17"
    assert second["status_code"] == 200
    assert "integrationUrl" in second["response_body"]
    assert second["response_headers"]["Content-Type"].startswith("application/json")


def test_an_attempt_without_an_answer_has_its_request_and_no_response_headers(
    service: RunningService,
) -> None:
    site, auth = service.create_site()
    service.create_endpoint(site, auth, "http://127.0.0.1:9/closed")
    response = service.client.post(
        f"/api/v1/sites/{site}/transcripts", json=TRANSCRIPT, headers=auth
    )
    [delivery] = response.json()["deliveries"]
    done = service.wait_for_status(site, auth, delivery["id"], "failed")
    attempt = done["attempts"][0]
    assert attempt["status_code"] is None
    assert attempt["response_headers"] is None
    assert attempt["request_headers"]["webhook-id"] == delivery["id"]
    assert attempt["request_body"].startswith("data=")
