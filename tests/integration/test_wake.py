"""Work that is due wakes an idle worker at once, whoever queued it.

The worker here polls only every 30 s: a delivery that arrives sooner was
announced by the queue layer's after-commit signal, not found by a poll. No
route, command or periodic job calls the worker itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from support.receiver import RecordingReceiver
from support.service import RunningService, running_service

VISITOR = {"fullName": "Paul", "emailAddress": "visitor1@example.com", "ip": "203.0.113.10"}


@pytest.fixture
def service(database_url: str) -> Iterator[RunningService]:
    with running_service(database_url, poll_interval=30.0, idle_timeout=1.0) as service:
        time.sleep(0.5)  # the worker's first look found nothing; now it waits
        yield service


def test_a_transcript_handed_over_by_the_api_goes_out_at_once(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site, auth = service.create_site()
    service.create_endpoint(site, auth, receiver.url)
    started = time.monotonic()
    response = service.client.post(
        f"/api/v1/sites/{site}/transcripts",
        json={"kind": "Conversation", "id": "c1", "items": []},
        headers=auth,
    )
    assert response.status_code == 202, response.text
    receiver.wait_for(1, timeout=5)
    assert time.monotonic() - started < 5


def test_an_idle_chat_completed_by_the_periodic_check_goes_out_at_once(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site, auth = service.create_site()
    service.create_endpoint(site, auth, receiver.url)
    base = f"/api/v1/sites/{site}/conversations"
    conversation = service.client.post(base, json={"visitor": VISITOR}, headers=auth).json()["id"]
    message = {"from": "visitor", "body": "anyone there?"}
    assert service.client.post(
        f"{base}/{conversation}/messages", json=message, headers=auth
    ).is_success
    started = time.monotonic()
    [completed] = receiver.wait_for(1, timeout=8)  # 1 s idle, checked every 0.2 s
    assert completed.document()["id"] == conversation
    assert time.monotonic() - started < 8


def test_a_redelivery_through_the_api_goes_out_at_once(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site, auth = service.create_site()
    service.create_endpoint(site, auth, receiver.url)
    response = service.client.post(
        f"/api/v1/sites/{site}/transcripts",
        json={"kind": "Conversation", "id": "c1", "items": []},
        headers=auth,
    )
    [queued] = response.json()["deliveries"]
    service.wait_for_status(site, auth, queued["id"], "succeeded", timeout=5)
    started = time.monotonic()
    path = f"/api/v1/sites/{site}/deliveries/{queued['id']}/redeliver"
    assert service.client.post(path, headers=auth).is_success
    receiver.wait_for(2, timeout=5)
    assert time.monotonic() - started < 5
