"""Send test of what is on screen, over real HTTP: unsaved edits, a new endpoint before Save,
and each payload kind; nothing is stored and the destination guard still applies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from standardwebhooks.webhooks import Webhook

from chathooks.wire import payload_from_dict, send_test_payload
from chathooks.wire.models import OfflineMessageTranscript, StartEvent, Transcript
from support.receiver import RecordingReceiver
from support.service import RunningService, running_service


@pytest.fixture
def service(database_url: str) -> Iterator[RunningService]:
    with running_service(database_url) as running:
        yield running


def test_unsaved_edits_are_tested_and_the_stored_endpoint_is_left_alone(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site, auth = service.create_site()
    endpoint = service.create_endpoint(site, auth, "https://old.example/hook")
    path = f"/api/v1/sites/{site}/endpoints/{endpoint['id']}/test"
    edited = {"url": receiver.url + "/edited", "format": "json", "headers": {"X-Token": "t0k"}}

    result = service.client.post(path, json=edited, headers=auth)
    assert result.status_code == 200, result.text
    body = result.json()
    assert (body["ok"], body["saved_settings"], body["url"]) == (True, False, edited["url"])
    [received] = receiver.wait_for(1)
    assert received.path == "/hook/edited"
    assert received.content_type == "application/json"
    assert received.header("x-token") == "t0k"
    Webhook(endpoint["secret"]).verify(received.body, received.headers, json_parse=False)

    stored = service.client.get(f"/api/v1/sites/{site}/endpoints/{endpoint['id']}", headers=auth)
    assert stored.json()["url"] == "https://old.example/hook"
    assert stored.json()["format"] == "form"
    assert stored.json()["headers"] == {}
    assert service.client.get(f"/api/v1/sites/{site}/deliveries", headers=auth).json() == {
        "items": [],
        "next_cursor": None,
    }

    # The same settings as stored: said so.
    same = service.client.post(path, json={"url": "https://old.example/hook"}, headers=auth)
    assert same.json()["saved_settings"] is True


def test_a_new_endpoint_is_tested_before_it_is_saved(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site, auth = service.create_site()
    path = f"/api/v1/sites/{site}/endpoints/test"
    result = service.client.post(path, json={"url": receiver.url}, headers=auth)
    assert result.status_code == 200, result.text
    assert result.json()["saved_settings"] is False
    assert result.json()["ok"] is True
    [received] = receiver.wait_for(1)
    assert received.header("webhook-signature") is None  # no secret until it is saved
    assert service.client.get(f"/api/v1/sites/{site}/endpoints", headers=auth).json()["items"] == []

    bad = service.client.post(path, json={"url": "ftp://files.example"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["field"] == "url"
    missing = service.client.post(path, json={}, headers=auth)
    assert missing.status_code == 422
    assert missing.json()["field"] == "url"
    wrong_kind = service.client.post(path, json={"url": receiver.url, "kind": "chat"}, headers=auth)
    assert wrong_kind.status_code == 422
    assert wrong_kind.json()["field"] == "kind"


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("transcript", Transcript),
        ("offline_message", OfflineMessageTranscript),
        ("start_event", StartEvent),
    ],
)
def test_each_payload_kind_arrives_as_receivers_tell_it_apart(
    service: RunningService, receiver: RecordingReceiver, kind: str, model: type
) -> None:
    site, auth = service.create_site()
    endpoint = service.create_endpoint(site, auth, receiver.url)
    result = service.client.post(
        f"/api/v1/sites/{site}/endpoints/{endpoint['id']}/test", json={"kind": kind}, headers=auth
    )
    assert result.json()["kind"] == kind
    [received] = receiver.wait_for(1)
    document = received.document()
    assert type(payload_from_dict(document)) is model
    assert document == send_test_payload(kind).to_wire()  # type: ignore[arg-type]


def test_an_unsaved_test_meets_the_destination_guard(
    database_url: str, receiver: RecordingReceiver
) -> None:
    with running_service(database_url, allowed_destinations=[]) as service:
        site, auth = service.create_site()
        result = service.client.post(
            f"/api/v1/sites/{site}/endpoints/test", json={"url": receiver.url}, headers=auth
        ).json()
    assert result["ok"] is False
    assert "loopback" in result["error"]
    assert receiver.requests == []
