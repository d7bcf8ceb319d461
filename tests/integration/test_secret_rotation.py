"""Signing secrets over real HTTP: reveal, rotate with a grace period, and what receivers get.

The receiver's side is checked with the ``standardwebhooks`` reference
library, one secret at a time: during the grace either secret alone verifies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chathooks.db.engine import create_engine
from chathooks.db.tables import endpoints
from support.receiver import Received, RecordingReceiver
from support.service import RunningService, running_service


@pytest.fixture
def service(database_url: str) -> Iterator[RunningService]:
    with running_service(database_url) as running:
        yield running


def post(service: RunningService, site: str, auth: dict[str, str], document: Any) -> str:
    [delivery] = service.post_transcript(site, auth, document)
    return delivery


def signed_endpoint(
    service: RunningService, receiver: RecordingReceiver
) -> tuple[str, dict[str, str], dict[str, Any], str]:
    """A new site with one signed endpoint: the site, its auth headers, the endpoint (with its
    secret) and the endpoint's path."""
    site, auth = service.create_site()
    endpoint = service.create_endpoint(site, auth, receiver.url)
    return site, auth, endpoint, f"/api/v1/sites/{site}/endpoints/{endpoint['id']}"


def verifies(secret: str, received: Received) -> bool:
    try:
        Webhook(secret).verify(received.body, received.headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


def signatures(received: Received) -> list[str]:
    return (received.header("webhook-signature") or "").split(" ")


def expire_previous_secret(database_url: str, endpoint_id: str) -> None:
    """What the clock does at the end of the grace: its end is now in the past."""

    async def run() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    update(endpoints)
                    .where(endpoints.c.id == endpoint_id)
                    .values(previous_secret_until=1.0)
                )
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_after_a_rotation_every_attempt_carries_both_signatures_until_the_grace_ends(
    service: RunningService, receiver: RecordingReceiver, transcript: dict[str, Any]
) -> None:
    site, auth, endpoint, base = signed_endpoint(service, receiver)
    old = endpoint["secret"]

    rotated = service.client.post(f"{base}/rotate-secret", headers=auth)
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert rotated.json()["previous_secret"] == old
    until = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert 86390 < until.timestamp() - datetime.now().timestamp() <= 86400

    # The first attempt fails and the retry succeeds: both are signed with both secrets.
    receiver.reply(500)
    delivery = post(service, site, auth, {**transcript, "id": "rotation-1"})
    first, retry = receiver.wait_for(2)
    service.wait_for_status(site, auth, delivery, "succeeded")
    for received in (first, retry):
        assert [s[:3] for s in signatures(received)] == ["v1,", "v1,"]
        assert verifies(new, received) and verifies(old, received)

    # Sent again by hand, still within the grace: both again.
    again = service.client.post(
        f"/api/v1/sites/{site}/deliveries/{delivery}/redeliver", headers=auth
    )
    assert again.status_code in (200, 202), again.text
    redelivered = receiver.wait_for(3)[2]
    assert len(signatures(redelivered)) == 2
    assert verifies(new, redelivered) and verifies(old, redelivered)

    expire_previous_secret(service.settings.database_url, endpoint["id"])
    post(service, site, auth, {**transcript, "id": "rotation-2"})
    after = receiver.wait_for(4)[3]
    assert len(signatures(after)) == 1
    assert verifies(new, after) and not verifies(old, after)
    revealed = service.client.get(f"{base}/secret", headers=auth).json()
    assert revealed["secret"] == new
    assert revealed["previous_secret"] is None and revealed["previous_secret_expires_at"] is None


def test_a_rotation_without_grace_drops_the_old_secret_at_once(
    service: RunningService, receiver: RecordingReceiver, transcript: dict[str, Any]
) -> None:
    site, auth, endpoint, base = signed_endpoint(service, receiver)
    rotated = service.client.post(
        f"{base}/rotate-secret", json={"grace_seconds": 0}, headers=auth
    ).json()
    assert rotated["previous_secret"] is None

    post(service, site, auth, {**transcript, "id": "no-grace"})
    [received] = receiver.wait_for(1)
    assert len(signatures(received)) == 1
    assert verifies(rotated["secret"], received)
    assert not verifies(endpoint["secret"], received)


def test_the_secret_is_revealed_only_by_its_own_route(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site, auth, endpoint, base = signed_endpoint(service, receiver)

    revealed = service.client.get(f"{base}/secret", headers=auth)
    assert revealed.status_code == 200
    assert revealed.headers["cache-control"] == "no-store"
    assert revealed.json() == {
        "endpoint_id": endpoint["id"],
        "secret": endpoint["secret"],
        "previous_secret": None,
        "previous_secret_expires_at": None,
    }
    listed = service.client.get(f"/api/v1/sites/{site}/endpoints", headers=auth).text
    read = service.client.get(base, headers=auth).text
    assert endpoint["secret"] not in listed and endpoint["secret"] not in read

    _, other_auth = service.create_site("other.example")
    assert service.client.get(f"{base}/secret", headers=other_auth).status_code in (403, 404)
    assert service.client.get(f"{base}/secret").status_code == 401
    missing = service.client.get(f"/api/v1/sites/{site}/endpoints/ep_none/secret", headers=auth)
    assert missing.status_code == 404 and missing.json()["field"] == "endpoint"
    missing = service.client.post(
        f"/api/v1/sites/{site}/endpoints/ep_none/rotate-secret", headers=auth
    )
    assert missing.status_code == 404


@pytest.mark.parametrize("grace", [-1, 30 * 86400 + 1, "a day", 1.5])
def test_a_bad_grace_is_refused_naming_the_field(
    service: RunningService, receiver: RecordingReceiver, grace: Any
) -> None:
    _site, auth, endpoint, base = signed_endpoint(service, receiver)

    refused = service.client.post(
        f"{base}/rotate-secret", json={"grace_seconds": grace}, headers=auth
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "grace_seconds"
    assert service.client.get(f"{base}/secret", headers=auth).json()["secret"] == endpoint["secret"]


def test_a_repeated_rotation_with_one_idempotency_key_rotates_once(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    _site, auth, endpoint, base = signed_endpoint(service, receiver)
    headers = {**auth, "Idempotency-Key": "rotate-1"}

    first = service.client.post(
        f"{base}/rotate-secret", json={"grace_seconds": 60}, headers=headers
    )
    repeat = service.client.post(
        f"{base}/rotate-secret", json={"grace_seconds": 60}, headers=headers
    )
    assert first.status_code == repeat.status_code == 200
    assert repeat.json() == first.json()
    revealed = service.client.get(f"{base}/secret", headers=auth).json()
    assert revealed["secret"] == first.json()["secret"]
    assert revealed["previous_secret"] == endpoint["secret"]


def test_setting_a_secret_by_hand_ends_a_rotations_grace(
    service: RunningService, receiver: RecordingReceiver, transcript: dict[str, Any]
) -> None:
    site, auth, _endpoint, base = signed_endpoint(service, receiver)
    service.client.post(f"{base}/rotate-secret", headers=auth)
    chosen = "whsec_" + "c2V0IGJ5IGhhbmQgaW4gdGhlIEFQSQ=="

    changed = service.client.patch(base, json={"secret": chosen}, headers=auth)
    assert changed.status_code == 200, changed.text

    revealed = service.client.get(f"{base}/secret", headers=auth).json()
    assert revealed["secret"] == chosen and revealed["previous_secret"] is None
    post(service, site, auth, transcript)
    [received] = receiver.wait_for(1)
    assert len(signatures(received)) == 1 and verifies(chosen, received)
