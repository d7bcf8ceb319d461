"""Posting Olark payloads to the API: routing by the endpoint switches, wire-exact delivery
to a real receiver, signatures a Standard Webhooks library accepts, and clear refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from chathooks.db.engine import create_engine
from chathooks.db.tables import deliveries
from chathooks.wire import FORM_CONTENT_TYPE, dumps, encode_form
from support.receiver import RecordingReceiver
from support.service import RunningService, running_service

FORM = {"content-type": FORM_CONTENT_TYPE}
TRANSCRIPT = "snowplow-enrich-common-e1-transcript-HEAD"


@pytest.fixture
def service(database_url: str) -> Iterator[RunningService]:
    with running_service(database_url) as running:
        yield running


def fixture_json(fixtures_dir: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((fixtures_dir / f"{name}.json").read_text())
    return document


def stored_deliveries(database_url: str) -> int:
    async def count() -> int:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                return int(
                    (
                        await connection.execute(select(func.count()).select_from(deliveries))
                    ).scalar_one()
                )
        finally:
            await engine.dispose()

    return asyncio.run(count())


def test_a_form_transcript_is_delivered_wire_exact_and_signed(
    service: RunningService, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    site, auth = service.create_site()
    endpoint = service.create_endpoint(
        site, auth, receiver.url + "?token=abc", headers={"X-Receiver-Token": "t0ken"}
    )
    body = (fixtures_dir / f"{TRANSCRIPT}.body.txt").read_bytes()

    accepted = service.client.post(
        f"/api/v1/sites/{site}/transcripts", content=body, headers={**auth, **FORM}
    )
    assert accepted.status_code == 202, accepted.text
    [queued] = accepted.json()["deliveries"]
    assert queued["endpoint_id"] == endpoint["id"]

    [received] = receiver.wait_for(1)
    document = fixture_json(fixtures_dir, TRANSCRIPT)
    assert received.method == "POST"
    assert received.query == "token=abc"
    assert received.content_type == FORM_CONTENT_TYPE  # exactly, no charset
    assert received.body == encode_form(document)  # the document as given, byte for byte
    assert received.document() == document
    assert received.header("webhook-id") == queued["id"]
    assert received.header("x-receiver-token") == "t0ken"
    Webhook(endpoint["secret"]).verify(received.body, received.headers, json_parse=False)

    delivery = service.wait_for_status(site, auth, queued["id"], "succeeded")
    assert delivery["payload"] == document
    assert delivery["integration_url"] == f"https://crm.example/leads/{document['id']}"
    assert delivery["trigger"] == "api"
    assert delivery["payload_kind"] == "transcript"
    assert delivery["conversation_id"] == document["id"]


def test_a_json_payload_to_a_json_endpoint(
    service: RunningService, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    site, auth = service.create_site()
    service.create_endpoint(site, auth, receiver.url, format="json", secret=None)
    document = fixture_json(fixtures_dir, "php-consumer-real-offline-message-1")

    accepted = service.client.post(f"/api/v1/sites/{site}/transcripts", json=document, headers=auth)
    assert accepted.status_code == 202

    [received] = receiver.wait_for(1)
    assert received.content_type == "application/json"
    assert received.body == dumps(document).encode()
    assert json.loads(received.body) == document
    assert received.header("webhook-signature") is None
    assert received.header("webhook-id") == accepted.json()["deliveries"][0]["id"]


def test_a_visitor_ip_that_is_not_ipv4_is_left_out_of_the_delivered_payload(
    service: RunningService, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    # Snowplow's com.olark schemas have visitor.ip as format: ipv4; a caller's own
    # "ip": "" (or an IPv6 address) would make a bad row there.
    site, auth = service.create_site()
    service.create_endpoint(site, auth, receiver.url, format="json", secret=None)
    transcript = fixture_json(fixtures_dir, "php-consumer-real-transcript-1")
    sent = {
        "empty": "",
        "six": "2001:db8::7",
        "junk": "not-an-ip",
        "mapped": "::ffff:203.0.113.7",
        "four": "198.51.100.4",
    }
    for name, ip in sent.items():
        document = {**transcript, "id": name, "visitor": {**transcript["visitor"], "ip": ip}}
        response = service.client.post(
            f"/api/v1/sites/{site}/transcripts", json=document, headers=auth
        )
        assert response.status_code == 202, response.text

    received = {r.document()["id"]: r.document()["visitor"] for r in receiver.wait_for(len(sent))}
    for name in ("empty", "six", "junk"):
        assert "ip" not in received[name], name
        assert received[name] == {k: v for k, v in transcript["visitor"].items() if k != "ip"}
    assert received["mapped"]["ip"] == "203.0.113.7"
    assert list(received["mapped"]) == list(transcript["visitor"])  # the key keeps its place
    assert received["four"]["ip"] == "198.51.100.4"


def test_the_three_switches_and_manually_submitted_route_payloads(
    service: RunningService, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    site, auth = service.create_site()
    url = receiver.url
    endpoints = {
        "automatic": service.create_endpoint(site, auth, url),
        "on_request": service.create_endpoint(site, auth, url, auto_send=False, send_offline=False),
        "events": service.create_endpoint(
            site, auth, url, auto_send=False, send_offline=False, send_events=True
        ),
        "switched_off": service.create_endpoint(site, auth, url, enabled=False, send_events=True),
    }
    name_of = {endpoint["id"]: name for name, endpoint in endpoints.items()}
    transcript = fixture_json(fixtures_dir, "php-consumer-real-transcript-1")
    cases = [
        (transcript, {"automatic"}),
        ({**transcript, "manuallySubmitted": True}, {"automatic", "on_request", "events"}),
        (fixture_json(fixtures_dir, "php-consumer-real-offline-message-1"), {"automatic"}),
        (fixture_json(fixtures_dir, "php-consumer-real-start-event-1"), {"events"}),
    ]
    total = 0
    for document, expected in cases:
        response = service.client.post(
            f"/api/v1/sites/{site}/transcripts", json=document, headers=auth
        )
        assert response.status_code == 202, response.text
        routed = {name_of[d["endpoint_id"]] for d in response.json()["deliveries"]}
        assert routed == expected, document.get("eventType", document.get("manuallySubmitted"))
        total += len(expected)

    received = receiver.wait_for(total)
    kinds = sorted(r.document().get("eventType", "conversation") for r in received)
    assert kinds == ["conversation"] * (total - 1) + ["start"]


def test_a_payload_no_endpoint_wants_is_accepted_and_queues_nothing(
    service: RunningService, fixtures_dir: Path
) -> None:
    site, auth = service.create_site()
    response = service.client.post(
        f"/api/v1/sites/{site}/transcripts",
        json=fixture_json(fixtures_dir, "php-consumer-real-start-event-1"),
        headers=auth,
    )
    assert response.status_code == 202
    assert response.json() == {"deliveries": []}


#: (body or fixture, content type, status, error, field) of payloads that must be refused.
MALFORMED = [
    (
        "fixture:snowplow-enrich-common-e8-invalid-json",
        FORM_CONTENT_TYPE,
        400,
        "invalid_json",
        "data",
    ),
    (
        "fixture:snowplow-enrich-common-e7-missing-data-key",
        FORM_CONTENT_TYPE,
        400,
        "missing_data_field",
        "data",
    ),
    (
        "fixture:snowplow-issue-1014-olark-2014-send-test-TRUNCATED",
        FORM_CONTENT_TYPE,
        400,
        "invalid_json",
        "data",
    ),
    ('{"id": "x"}', "text/plain", 415, "unsupported_content_type", "content-type"),
    ('{"id": "x"}', "", 415, "unsupported_content_type", "content-type"),
    ("[1, 2]", "application/json", 400, "not_an_object", "data"),
    ('{"id": "x", "items": "none"}', "application/json", 400, "invalid_payload", "items"),
    ('{"kind": "Conversation", "items": []}', "application/json", 400, "invalid_payload", "id"),
    ('{"id": "' + "x" * 201 + '"}', "application/json", 400, "invalid_payload", "id"),
    ('{"id": "bad\\ud800"}', "application/json", 400, "invalid_payload", "id"),
    ('{"id": "bad\\u0000"}', "application/json", 400, "invalid_payload", "id"),
    ("x" * 3000, "application/json", 413, "body_too_large", "body"),
]


def test_malformed_payloads_are_refused_naming_the_field_and_nothing_is_stored(
    database_url: str, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    with running_service(database_url, max_body_bytes=2048) as service:
        site, auth = service.create_site()
        service.create_endpoint(site, auth, receiver.url)
        for body, content_type, status, error, field in MALFORMED:
            raw = (
                (fixtures_dir / f"{body.removeprefix('fixture:')}.body.txt").read_bytes()
                if body.startswith("fixture:")
                else body.encode()
            )
            response = service.client.post(
                f"/api/v1/sites/{site}/transcripts",
                content=raw,
                headers={**auth, "content-type": content_type},
            )
            assert response.status_code == status, (body[:60], response.text)
            answer = response.json()
            assert (answer["error"], answer["field"]) == (error, field), (body[:60], answer)
            assert answer["message"]
    assert stored_deliveries(database_url) == 0
    assert receiver.requests == []


def test_posting_needs_the_sites_key(service: RunningService, fixtures_dir: Path) -> None:
    site, auth = service.create_site()
    document = fixture_json(fixtures_dir, "php-consumer-real-transcript-1")
    anonymous = service.client.post(f"/api/v1/sites/{site}/transcripts", json=document)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "unauthorized"
    _other_site, other_auth = service.create_site("other.example")
    refusals = [
        (site, {"Authorization": "Bearer chs_not-a-key"}, 401),
        (site, {"Authorization": f"Basic {auth['Authorization'].split()[1]}"}, 401),
        (site, {"Authorization": "Bearer"}, 401),
        # Another site's key, or a site that does not exist: the same 404.
        (site, other_auth, 404),
        ("site_missing", auth, 404),
        ("site_missing", service.admin(), 404),
    ]
    for path_site, headers, code in refusals:
        response = service.client.post(
            f"/api/v1/sites/{path_site}/transcripts", json=document, headers=headers
        )
        assert response.status_code == code, (path_site, headers, response.text)
    assert stored_deliveries(service.settings.database_url) == 0
    # The scheme is case-insensitive, and the admin key opens any site.
    lower = {"Authorization": f"bearer {auth['Authorization'].split()[1]}"}
    for headers in (lower, service.admin()):
        response = service.client.post(
            f"/api/v1/sites/{site}/transcripts", json=document, headers=headers
        )
        assert response.status_code == 202, response.text


def test_a_private_destination_is_refused_unless_allowed(
    database_url: str, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    with running_service(database_url, allowed_destinations=[]) as service:
        site, auth = service.create_site()
        service.create_endpoint(site, auth, receiver.url)
        response = service.client.post(
            f"/api/v1/sites/{site}/transcripts",
            json=fixture_json(fixtures_dir, "php-consumer-real-transcript-1"),
            headers=auth,
        )
        [queued] = response.json()["deliveries"]
        delivery = service.wait_for_status(site, auth, queued["id"], "failed")

    assert receiver.requests == []
    assert delivery["attempts"], delivery
    for attempt in delivery["attempts"]:
        assert attempt["outcome"] == "refused"
        assert attempt["status_code"] is None
        assert "loopback" in attempt["error"]
        assert "CHATHOOKS_ALLOWED_DESTINATIONS" in attempt["error"]
