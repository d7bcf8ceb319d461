"""The delivery log's search over real HTTP: conversation id (exact or prefix), created-at
range, and the counters of what waits, retries and failed, on SQLite and PostgreSQL."""

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


def transcript(conversation_id: str) -> dict[str, Any]:
    return {
        "kind": "Conversation",
        "id": conversation_id,
        "items": [{"kind": "MessageToOperator", "body": "Hi", "timestamp": "1700000000.0"}],
        "visitor": {"kind": "Visitor", "fullName": "Ada"},
        "operators": {},
    }


def post(service: RunningService, site: str, auth: dict[str, str], conversation: str) -> str:
    response = service.client.post(
        f"/api/v1/sites/{site}/transcripts", json=transcript(conversation), headers=auth
    )
    assert response.status_code == 202, response.text
    [delivery] = response.json()["deliveries"]
    return str(delivery["id"])


def listed(service: RunningService, site: str, auth: dict[str, str], **params: Any) -> list[str]:
    response = service.client.get(f"/api/v1/sites/{site}/deliveries", params=params, headers=auth)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def counts(service: RunningService, site: str, auth: dict[str, str], **params: Any) -> Any:
    response = service.client.get(
        f"/api/v1/sites/{site}/delivery-counts", params=params, headers=auth
    )
    assert response.status_code == 200, response.text
    return response.json()["counts"]


def test_the_log_finds_a_conversation_by_exact_id_or_prefix(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site, auth = service.create_site()
    service.create_endpoint(site, auth, receiver.url)
    ids = {name: post(service, site, auth, name) for name in ("Order-1", "Order-12", "order-2")}
    other_site, other_auth = service.create_site("other.example")
    service.create_endpoint(other_site, other_auth, receiver.url)
    post(service, other_site, other_auth, "Order-1")

    assert listed(service, site, auth, conversation_id="Order-1") == [ids["Order-1"]]
    assert listed(service, site, auth, conversation_prefix="Order-1") == [
        ids["Order-12"],
        ids["Order-1"],
    ]
    # Case-sensitive on both databases, and % or _ are not wildcards.
    assert listed(service, site, auth, conversation_prefix="Order-") == [
        ids["Order-12"],
        ids["Order-1"],
    ]
    assert listed(service, site, auth, conversation_prefix="order") == [ids["order-2"]]
    assert listed(service, site, auth, conversation_prefix="Order%") == []
    assert listed(service, site, auth, conversation_prefix="Order_1") == []
    # Paging through a prefix search keeps the filter.
    response = service.client.get(
        f"/api/v1/sites/{site}/deliveries",
        params={"conversation_prefix": "Order-", "limit": 1},
        headers=auth,
    ).json()
    assert [i["id"] for i in response["items"]] == [ids["Order-12"]]
    rest = listed(service, site, auth, conversation_prefix="Order-", cursor=response["next_cursor"])
    assert rest == [ids["Order-1"]]


def test_the_log_filters_by_created_at_range_and_names_a_bad_bound(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site, auth = service.create_site()
    service.create_endpoint(site, auth, receiver.url)
    first, second, third = (post(service, site, auth, f"chat-{n}") for n in range(3))
    response = service.client.get(f"/api/v1/sites/{site}/deliveries", headers=auth).json()
    created = {item["id"]: item["created_at"] for item in response["items"]}

    assert listed(service, site, auth, created_from=created[second]) == [third, second]
    assert listed(service, site, auth, created_to=created[second]) == [first]
    window = {"created_from": created[second], "created_to": created[third]}
    assert listed(service, site, auth, **window) == [second]
    # A time without an offset is UTC, as everywhere in the API.
    naive = created[second].removesuffix("Z")
    assert listed(service, site, auth, created_from=naive, created_to=created[third]) == [second]

    for params, field in (
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "2026-13-01T00:00:00Z"}, "created_to"),
        ({"created_from": created[third], "created_to": created[first]}, "created_to"),
        ({"conversation_prefix": "x", "status": "lost"}, "status"),
    ):
        for path in ("deliveries", "delivery-counts"):
            if path == "delivery-counts" and "status" in params:
                continue
            bad = service.client.get(f"/api/v1/sites/{site}/{path}", params=params, headers=auth)
            assert bad.status_code == 422, (path, params, bad.text)
            body = bad.json()
            assert body["field"] == field, body
            assert set(body) == {"error", "field", "message"}


def test_the_counters_follow_deliveries_that_fail_and_recover(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site, auth = service.create_site()
    assert counts(service, site, auth) == {
        "pending": 0,
        "delivering": 0,
        "retrying": 0,
        "failed": 0,
    } | {k: 0 for k in counts(service, site, auth) if k not in ("pending", "delivering")}
    endpoint = service.create_endpoint(site, auth, receiver.url)
    attempts_allowed = 1 + len(service.settings.retry_schedule)
    receiver.reply(503, "down", times=attempts_allowed)
    failing = post(service, site, auth, "chat-down")
    service.wait_for_status(site, auth, failing, "failed")
    ok = post(service, site, auth, "chat-up")
    service.wait_for_status(site, auth, ok, "succeeded")

    now = counts(service, site, auth)
    assert now["failed"] == 1 and now["pending"] == 0 and now["retrying"] == 0
    assert "succeeded" not in now
    assert counts(service, site, auth, endpoint_id=endpoint["id"])["failed"] == 1
    assert counts(service, site, auth, endpoint_id="ep_other")["failed"] == 0
    # The preview of a recover: failed ones of the endpoint since a time.
    response = service.client.get(f"/api/v1/sites/{site}/deliveries/{failing}", headers=auth)
    made = response.json()["created_at"]
    later = service.client.get(f"/api/v1/sites/{site}/deliveries/{ok}", headers=auth).json()
    assert counts(service, site, auth, created_from=made)["failed"] == 1
    assert counts(service, site, auth, created_from=later["created_at"])["failed"] == 0

    recovered = service.client.post(
        f"/api/v1/sites/{site}/endpoints/{endpoint['id']}/recover",
        json={"since": made},
        headers=auth,
    )
    assert recovered.status_code == 202, recovered.text
    service.wait_for_status(site, auth, failing, "succeeded")
    assert counts(service, site, auth)["failed"] == 0
    # Another site sees none of it.
    other_site, other_auth = service.create_site("other.example")
    assert set(counts(service, other_site, other_auth).values()) == {0}
