"""An operator's command is posted now, even behind a retrying delivery of its chat.

The real service on loopback and a real receiver, on SQLite and PostgreSQL:
the receiver refuses the chat's start event, whose next retry is then
minutes away; ``!lead`` must still reach it at once, and the stale start
event must never arrive after the newer transcript.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from support.receiver import RecordingReceiver
from support.service import RunningService, running_service

VISITOR = {"fullName": "Paul", "emailAddress": "visitor1@example.com", "ip": "203.0.113.10"}
OPERATOR = {"id": "1029431", "username": "paul-clinic", "nickname": "Paul"}


@pytest.fixture
def service(database_url: str) -> Iterator[RunningService]:
    # One retry, five minutes after the first failure: a refused start event waits that long.
    with running_service(database_url, retry_schedule=[300.0]) as service:
        yield service


def _post(service: RunningService, path: str, auth: dict[str, str], body: Any) -> Any:
    response = service.client.post(path, json=body, headers=auth)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_lead_overtakes_a_refused_start_event_which_is_then_superseded(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site_id, auth = service.create_site()
    service.create_endpoint(site_id, auth, receiver.url, send_events=True)
    base = f"/api/v1/sites/{site_id}/conversations"
    receiver.reply(500, "down for a moment")  # the start event is refused once
    conversation = _post(service, base, auth, {"visitor": VISITOR})["id"]
    [start] = receiver.wait_for(1)
    assert start.document()["eventType"] == "start"
    start_id = start.header("webhook-id")
    assert start_id is not None
    service.wait_for_status(site_id, auth, start_id, "retrying")

    messages = f"{base}/{conversation}/messages"
    _post(service, messages, auth, {"from": "visitor", "body": "I'd like a quote"})
    commanded = time.monotonic()
    lead = {"from": "operator", "body": "!lead wants a call", "operator": OPERATOR}
    _post(service, messages, auth, lead)
    receiver.wait_for(2, timeout=3)
    assert time.monotonic() - commanded < 3
    command = receiver.requests[1].document()
    assert command["manuallySubmitted"] is True
    assert command["id"] == conversation

    superseded = service.wait_for_status(site_id, auth, start_id, "superseded")
    assert "newer delivery" in superseded["last_error"]
    _post(service, messages, auth, {"from": "visitor", "body": "Thanks, bye"})
    _post(service, f"{base}/{conversation}/close", auth, None)
    receiver.wait_for(3)
    time.sleep(0.5)  # anything still to come (a stale start event) would come now

    of_chat = [r.document() for r in receiver.requests if r.document()["id"] == conversation]
    assert len(of_chat) == 3
    last = of_chat[-1]
    assert "eventType" not in last
    assert [item["body"] for item in last["items"]][-1] == "Thanks, bye"
    # Superseded is kept in the log, and redelivered by hand it goes out again.
    redelivered = service.client.post(
        f"/api/v1/sites/{site_id}/deliveries/{start_id}/redeliver", headers=auth
    )
    assert redelivered.status_code in (200, 202), redelivered.text
    service.wait_for_status(site_id, auth, start_id, "succeeded")
