"""An endpoint that keeps failing is disabled with nothing lost, and enabling it sends it all.

The real service over loopback HTTP on SQLite and PostgreSQL, with the
thresholds of the issue (disabled after 5 s and 3 failed attempts) and a
short retry schedule.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chathooks.signing import Verifier
from support.receiver import RecordingReceiver
from support.service import RunningService, running_service

QUICK_BREAKER: dict[str, Any] = {
    "retry_schedule": [0.3] * 40,
    "breaker_threshold": 3,
    "breaker_probe_seconds": 0.5,
    "breaker_probe_max_seconds": 1.0,
}


@pytest.fixture
def service(database_url: str) -> Iterator[RunningService]:
    with running_service(
        database_url, disable_after=5.0, disable_min_failures=3, **QUICK_BREAKER
    ) as service:
        yield service


@pytest.fixture
def patient_service(database_url: str) -> Iterator[RunningService]:
    """The same breaker, but nothing failing long enough to be disabled within a test."""
    with running_service(database_url, disable_after=3600.0, **QUICK_BREAKER) as service:
        yield service


def _endpoint(service: RunningService, site: str, auth: dict[str, str], ep: str) -> Any:
    response = service.client.get(f"/api/v1/sites/{site}/endpoints/{ep}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def _wait_for_health(
    service: RunningService,
    site: str,
    auth: dict[str, str],
    ep: str,
    state: str,
    timeout: float = 30.0,
) -> Any:
    deadline = time.monotonic() + timeout
    while (endpoint := _endpoint(service, site, auth, ep))["health"]["state"] != state:
        assert time.monotonic() < deadline, endpoint
        time.sleep(0.1)
    return endpoint


def _transcript(service: RunningService, site: str, auth: dict[str, str], chat: str) -> str:
    response = service.client.post(
        f"/api/v1/sites/{site}/transcripts",
        json={"kind": "Conversation", "id": chat, "items": []},
        headers=auth,
    )
    assert response.status_code == 202, response.text
    [queued] = response.json()["deliveries"]
    return str(queued["id"])


def test_an_always_failing_endpoint_is_disabled_holding_everything_until_enabled(
    service: RunningService, receiver: RecordingReceiver
) -> None:
    site, auth = service.create_site()
    ep = service.create_endpoint(site, auth, receiver.url)["id"]
    with RecordingReceiver() as owner:
        _test_disabling(service, site, auth, ep, receiver, owner)


def _alerts(owner: RecordingReceiver, secret: str, count: int) -> list[Any]:
    """The first ``count`` alerts the site's owner got, each checked to be signed."""
    received = owner.wait_for(count, timeout=20)
    for request in received:
        assert request.content_type == "application/json"
        Verifier(secret).verify(request.headers, request.body)
    return [json.loads(request.body) for request in received]


def _test_disabling(
    service: RunningService,
    site: str,
    auth: dict[str, str],
    ep: str,
    receiver: RecordingReceiver,
    owner: RecordingReceiver,
) -> None:
    alerting = service.client.patch(
        f"/api/v1/sites/{site}", json={"alert_url": owner.url}, headers=auth
    )
    assert alerting.status_code == 200, alerting.text
    assert alerting.json()["alert_url"] == owner.url
    secret = alerting.json()["alert_secret"]
    assert secret.startswith("whsec_")
    assert "alert_secret" not in service.client.get(f"/api/v1/sites/{site}", headers=auth).json()
    receiver.answer_all(500, "broken")
    started = time.monotonic()
    early = [_transcript(service, site, auth, f"early{i}") for i in range(3)]

    failing = _wait_for_health(service, site, auth, ep, "failing", timeout=15)
    assert failing["health"]["consecutive_failures"] >= 3
    assert failing["health"]["last_failure_reason"] == "HTTP 500"
    assert failing["health"]["failing_since"] is not None
    disabled = _wait_for_health(service, site, auth, ep, "disabled", timeout=30)
    assert time.monotonic() - started < 30
    assert disabled["enabled"] is False
    assert "failing since" in disabled["disabled_reason"]
    assert disabled["health"]["success_rate_24h"] == 0.0
    failing_alert, disabled_alert = _alerts(owner, secret, 2)
    assert failing_alert["type"] == "endpoint.failing"
    assert disabled_alert["type"] == "endpoint.disabled"
    for alert in (failing_alert, disabled_alert):
        assert alert["data"]["site_id"] == site
        assert alert["data"]["endpoint_id"] == ep
        assert alert["data"]["url"] == receiver.url
        assert alert["timestamp"].endswith("Z")
    assert failing_alert["data"]["reason"] == "HTTP 500"
    assert "failing since" in disabled_alert["data"]["reason"]

    later = [_transcript(service, site, auth, f"later{i}") for i in range(2)]
    for delivery_id in early + later:
        held = service.wait_for_status(site, auth, delivery_id, "held", timeout=15)
        assert held["last_error"] == "endpoint disabled"
    sent_while_disabled = len(receiver.requests)
    time.sleep(1.0)
    assert len(receiver.requests) == sent_while_disabled  # nothing is sent while disabled

    receiver.answer_normally()
    path = f"/api/v1/sites/{site}/endpoints/{ep}"
    enabled = service.client.patch(path, json={"enabled": True}, headers=auth)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["disabled_reason"] is None
    for delivery_id in early + later:
        service.wait_for_status(site, auth, delivery_id, "succeeded", timeout=15)
    healthy = _endpoint(service, site, auth, ep)["health"]
    assert healthy["state"] == "healthy"
    assert healthy["consecutive_failures"] == 0
    assert healthy["last_success_at"] is not None
    assert 0 < healthy["success_rate_24h"] < 1
    alerts = _alerts(owner, secret, 3)
    assert alerts[2]["type"] == "endpoint.recovered"
    # The alert endpoint is not one of the site's webhooks.
    listed = service.client.get(f"/api/v1/sites/{site}/endpoints", headers=auth).json()["items"]
    assert [e["id"] for e in listed] == [ep]
    _check_recent_alerts(service, site, auth, ep, receiver.url, owner.url)


def _check_recent_alerts(
    service: RunningService, site: str, auth: dict[str, str], ep: str, about: str, to: str
) -> None:
    """GET .../alerts reads back what was sent, to where, when and how it went, in pages."""
    path = f"/api/v1/sites/{site}/alerts"
    deadline = time.monotonic() + 15
    while True:
        response = service.client.get(path, headers=auth)
        assert response.status_code == 200, response.text
        alerts = response.json()["items"]
        if all(alert["status"] == "succeeded" for alert in alerts) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [alert["type"] for alert in alerts] == [
        "endpoint.recovered",
        "endpoint.disabled",
        "endpoint.failing",
    ]
    for alert in alerts:
        assert (alert["endpoint_id"], alert["endpoint_url"], alert["url"]) == (ep, about, to)
        assert (alert["status"], alert["attempt_count"], alert["last_status_code"]) == (
            "succeeded",
            1,
            200,
        )
        assert alert["created_at"] and alert["finished_at"]
    assert alerts[2]["reason"] == "HTTP 500"
    first = service.client.get(path, params={"limit": 2}, headers=auth).json()
    assert [a["id"] for a in first["items"]] == [a["id"] for a in alerts[:2]]
    rest = service.client.get(
        path, params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth
    ).json()
    assert [a["id"] for a in rest["items"]] == [alerts[2]["id"]]
    assert rest["next_cursor"] is None
    # No alert URL, no alerts: a new address starts a new list.
    stopped = service.client.patch(f"/api/v1/sites/{site}", json={"alert_url": None}, headers=auth)
    assert stopped.status_code == 200, stopped.text
    assert service.client.get(path, headers=auth).json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("alert_url", "hint"),
    [
        ("ftp://owner.example/alerts", "http"),
        ("not a url", ""),
        ("http://10.0.0.5/alerts", "private"),
        ("http://169.254.169.254/latest", ""),
    ],
)
def test_a_bad_alert_url_is_refused_naming_the_field(
    service: RunningService, alert_url: str, hint: str
) -> None:
    site, auth = service.create_site()
    response = service.client.patch(
        f"/api/v1/sites/{site}", json={"alert_url": alert_url}, headers=auth
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "alert_url"
    assert hint in response.json()["message"]
    assert service.client.get(f"/api/v1/sites/{site}", headers=auth).json()["alert_url"] is None


def test_the_breaker_spares_a_failing_endpoints_backlog_its_attempts(
    patient_service: RunningService, receiver: RecordingReceiver
) -> None:
    """While failing, only probes go out: the backlog is not tried (nor failed) one by one."""
    service = patient_service
    site, auth = service.create_site()
    ep = service.create_endpoint(site, auth, receiver.url)["id"]
    receiver.answer_all(503, "down")
    ids = [_transcript(service, site, auth, f"c{i}") for i in range(40)]
    _wait_for_health(service, site, auth, ep, "failing", timeout=15)
    opened_after = len(receiver.requests)
    time.sleep(2.0)
    # About one probe per 0.5-1 s; without the breaker, 40 deliveries every 0.3 s.
    assert len(receiver.requests) - opened_after <= 6
    receiver.answer_normally()
    for delivery_id in ids:
        service.wait_for_status(site, auth, delivery_id, "succeeded", timeout=20)
    assert _endpoint(service, site, auth, ep)["health"]["state"] == "healthy"
