"""The delivery log over real HTTP: listing, attempts, redelivery, recovery, Send test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from chathooks.wire import TEST_TRANSCRIPT_ID, send_test_transcript
from support.receiver import RecordingReceiver
from support.service import RunningService, running_service


@pytest.fixture
def service(database_url: str) -> Iterator[RunningService]:
    with running_service(database_url) as running:
        yield running


def post(service: RunningService, site: str, auth: dict[str, str], document: Any) -> list[str]:
    response = service.client.post(f"/api/v1/sites/{site}/transcripts", json=document, headers=auth)
    assert response.status_code == 202, response.text
    return [d["id"] for d in response.json()["deliveries"]]


def deliveries(service: RunningService, site: str, auth: dict[str, str], **params: Any) -> Any:
    response = service.client.get(f"/api/v1/sites/{site}/deliveries", params=params, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def test_listing_pages_and_filters(
    service: RunningService, receiver: RecordingReceiver, transcript: dict[str, Any]
) -> None:
    site, auth = service.create_site()
    first = service.create_endpoint(site, auth, receiver.url)
    second = service.create_endpoint(site, auth, receiver.url + "/second")
    ids: list[str] = []
    for n in range(3):
        ids += post(service, site, auth, {**transcript, "id": f"conversation{n}"})
    receiver.wait_for(6)
    for delivery_id in ids:
        service.wait_for_status(site, auth, delivery_id, "succeeded")

    page_one = deliveries(service, site, auth, limit=4)
    page_two = deliveries(service, site, auth, limit=4, cursor=page_one["next_cursor"])
    assert page_two["next_cursor"] is None
    listed = [d["id"] for d in page_one["items"] + page_two["items"]]
    assert listed == list(reversed(ids))  # newest first, each exactly once
    assert "payload" not in page_one["items"][0]

    by_endpoint = deliveries(service, site, auth, endpoint_id=second["id"])["items"]
    assert {d["endpoint_id"] for d in by_endpoint} == {second["id"]}
    assert len(by_endpoint) == 3
    by_conversation = deliveries(service, site, auth, conversation_id="conversation1")["items"]
    assert {d["endpoint_id"] for d in by_conversation} == {first["id"], second["id"]}
    assert len(deliveries(service, site, auth, status="succeeded")["items"]) == 6
    assert deliveries(service, site, auth, status="failed")["items"] == []

    item = page_one["items"][0]
    assert item["created_at"].endswith("Z")
    assert item["finished_at"].endswith("Z")
    assert item["next_attempt_at"] is None

    bad_queries: list[tuple[dict[str, str | int], str]] = [
        ({"status": "lost"}, "status"),
        ({"limit": 501}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ]
    for params, field in bad_queries:
        bad = service.client.get(f"/api/v1/sites/{site}/deliveries", params=params, headers=auth)
        assert bad.status_code == 422, bad.text
        assert (bad.json()["error"], bad.json()["field"]) == ("validation_error", field)


def test_a_delivery_shows_every_attempt(
    service: RunningService, receiver: RecordingReceiver, transcript: dict[str, Any]
) -> None:
    site, auth = service.create_site()
    service.create_endpoint(site, auth, receiver.url)
    receiver.reply(500, "database down, try later")
    [delivery_id] = post(service, site, auth, transcript)

    delivery = service.wait_for_status(site, auth, delivery_id, "succeeded")
    assert delivery["attempt_count"] == 2
    failed, succeeded = delivery["attempts"]
    assert (failed["number"], failed["outcome"], failed["status_code"]) == (1, "failed", 500)
    assert failed["response_body"] == "database down, try later"
    assert failed["error"] == "HTTP 500"
    assert (succeeded["number"], succeeded["outcome"], succeeded["status_code"]) == (
        2,
        "succeeded",
        200,
    )
    assert succeeded["integration_url"] == f"https://crm.example/leads/{transcript['id']}"
    assert succeeded["started_at"].endswith("Z")
    assert succeeded["duration_ms"] >= 0
    assert delivery["payload"] == transcript
    # Both attempts carried the same webhook-id, so the receiver can dedupe.
    assert {r.header("webhook-id") for r in receiver.wait_for(2)} == {delivery_id}

    missing = service.client.get(f"/api/v1/sites/{site}/deliveries/msg_nope", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_redeliver_sends_the_same_delivery_again(
    service: RunningService, receiver: RecordingReceiver, transcript: dict[str, Any]
) -> None:
    site, auth = service.create_site()
    service.create_endpoint(site, auth, receiver.url)
    [delivery_id] = post(service, site, auth, transcript)
    service.wait_for_status(site, auth, delivery_id, "succeeded")

    again = service.client.post(
        f"/api/v1/sites/{site}/deliveries/{delivery_id}/redeliver", headers=auth
    )
    assert again.status_code == 202, again.text
    assert again.json()["id"] == delivery_id

    first, second = receiver.wait_for(2)
    assert second.header("webhook-id") == first.header("webhook-id") == delivery_id
    assert second.document() == first.document() == transcript
    delivery = service.wait_for_status(site, auth, delivery_id, "succeeded")
    assert delivery["attempt_count"] == 2

    unknown = service.client.post(
        f"/api/v1/sites/{site}/deliveries/msg_nope/redeliver", headers=auth
    )
    assert unknown.status_code == 404


def test_recover_resends_what_failed_during_an_outage(
    service: RunningService, receiver: RecordingReceiver, transcript: dict[str, Any]
) -> None:
    site, auth = service.create_site()
    endpoint = service.create_endpoint(site, auth, receiver.url)
    before = datetime.now(UTC) - timedelta(minutes=1)
    attempts_allowed = 1 + len(service.settings.retry_schedule)
    receiver.reply(503, "maintenance", times=attempts_allowed)
    [delivery_id] = post(service, site, auth, transcript)
    failed = service.wait_for_status(site, auth, delivery_id, "failed")
    assert failed["attempt_count"] == attempts_allowed
    assert failed["last_status_code"] == 503

    path = f"/api/v1/sites/{site}/endpoints/{endpoint['id']}/recover"
    nothing = service.client.post(
        path, json={"since": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}, headers=auth
    )
    assert nothing.json() == {"deliveries": []}

    recovered = service.client.post(path, json={"since": before.isoformat()}, headers=auth)
    assert recovered.status_code == 202, recovered.text
    assert recovered.json() == {"deliveries": [{"id": delivery_id, "endpoint_id": endpoint["id"]}]}
    delivery = service.wait_for_status(site, auth, delivery_id, "succeeded")
    assert delivery["attempt_count"] == attempts_allowed + 1

    bad = service.client.post(path, json={"since": "last tuesday"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["field"] == "since"
    unknown = service.client.post(
        f"/api/v1/sites/{site}/endpoints/ep_nope/recover",
        json={"since": before.isoformat()},
        headers=auth,
    )
    assert unknown.status_code == 404
    assert unknown.json()["field"] == "endpoint"


def test_send_test_posts_olarks_test_transcript_now(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site, auth = service.create_site()
    endpoint = service.create_endpoint(site, auth, receiver.url)
    path = f"/api/v1/sites/{site}/endpoints/{endpoint['id']}/test"

    result = service.client.post(path, headers=auth)
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["ok"] is True
    assert body["status_code"] == 200
    assert body["error"] is None
    assert body["integration_url"] == f"https://crm.example/leads/{TEST_TRANSCRIPT_ID}"
    assert json.loads(body["response_body"]) == {"integrationUrl": body["integration_url"]}
    assert body["duration_ms"] >= 0

    [received] = receiver.wait_for(1)
    assert received.document() == send_test_transcript().to_wire()
    Webhook(endpoint["secret"]).verify(received.body, received.headers, json_parse=False)
    # A test is not a delivery: nothing is queued or retried.
    assert deliveries(service, site, auth)["items"] == []

    receiver.reply(500, "no thanks")
    failing = service.client.post(path, headers=auth).json()
    assert (failing["ok"], failing["status_code"], failing["error"]) == (False, 500, "HTTP 500")
    assert failing["response_body"] == "no thanks"


def test_send_test_respects_the_destination_guard(
    database_url: str, receiver: RecordingReceiver
) -> None:
    with running_service(database_url, allowed_destinations=[]) as service:
        site, auth = service.create_site()
        endpoint = service.create_endpoint(site, auth, receiver.url)
        result = service.client.post(
            f"/api/v1/sites/{site}/endpoints/{endpoint['id']}/test", headers=auth
        ).json()
    assert result["ok"] is False
    assert result["status_code"] is None
    assert "loopback" in result["error"]
    assert receiver.requests == []
