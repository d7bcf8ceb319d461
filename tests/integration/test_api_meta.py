"""Service routes over real HTTP: meta, health, Prometheus metrics, OpenAPI, unknown paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

from chathooks import __version__
from support.receiver import RecordingReceiver
from support.service import running_service


def test_meta_publishes_the_egress_ranges_without_a_key(database_url: str) -> None:
    with running_service(
        database_url, run_worker=False, egress_cidrs="203.0.113.0/24, 2001:db8::/32"
    ) as service:
        response = service.client.get("/api/v1/meta")
    assert response.status_code == 200
    assert response.json() == {
        "version": __version__,
        "egress_cidrs": ["203.0.113.0/24", "2001:db8::/32"],
    }


def test_healthz_says_the_process_answers(database_url: str) -> None:
    with running_service(database_url, run_worker=False) as service:
        response = service.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}  # liveness; /readyz checks the database


def metric(text: str, name: str) -> float:
    """The value of one sample line, e.g. ``chathooks_attempts_total{outcome="succeeded"}``."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} is not in the metrics:\n{text}"
    return float(match.group(1))


def test_metrics_count_deliveries_attempts_and_the_queue(
    database_url: str, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    document = json.loads((fixtures_dir / "php-consumer-real-transcript-2.json").read_text())
    with running_service(database_url) as service:
        site, auth = service.create_site()
        service.create_endpoint(site, auth, receiver.url)
        receiver.reply(500, times=1)
        response = service.client.post(
            f"/api/v1/sites/{site}/transcripts", json=document, headers=auth
        )
        [queued] = response.json()["deliveries"]
        service.wait_for_status(site, auth, queued["id"], "succeeded")
        scraped = service.client.get("/metrics")

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = scraped.text
    assert metric(text, 'chathooks_deliveries_total{outcome="succeeded"}') == 1
    assert metric(text, 'chathooks_attempts_total{outcome="failed"}') == 1
    assert metric(text, 'chathooks_attempts_total{outcome="succeeded"}') == 1
    assert metric(text, "chathooks_attempt_duration_seconds_count") == 2
    assert metric(text, "chathooks_attempt_duration_seconds_sum") > 0
    assert 'chathooks_queue_depth{status="succeeded"}' not in text  # unfinished work only
    assert metric(text, 'chathooks_queue_depth{status="pending"}') == 0
    assert metric(text, "chathooks_oldest_pending_age_seconds") == 0


def test_openapi_describes_typed_requests_and_responses(database_url: str) -> None:
    with running_service(database_url, run_worker=False) as service:
        spec = service.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/sites",
        "/api/v1/sites/{site}",
        "/api/v1/sites/{site}/endpoints",
        "/api/v1/sites/{site}/endpoints/{endpoint}",
        "/api/v1/sites/{site}/endpoints/{endpoint}/test",
        "/api/v1/sites/{site}/endpoints/{endpoint}/recover",
        "/api/v1/sites/{site}/transcripts",
        "/api/v1/sites/{site}/deliveries",
        "/api/v1/sites/{site}/deliveries/{delivery}",
        "/api/v1/sites/{site}/deliveries/{delivery}/redeliver",
        "/api/v1/meta",
        "/healthz",
        "/metrics",
    ):
        assert path in paths, path
    schemas = spec["components"]["schemas"]
    assert {"url", "auto_send", "send_offline", "send_events", "secret", "format"} <= set(
        schemas["EndpointCreate"]["properties"]
    )
    ingest = paths["/api/v1/sites/{site}/transcripts"]["post"]
    assert set(ingest["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert "202" in ingest["responses"]


def test_unknown_paths_and_methods_answer_json(database_url: str) -> None:
    with running_service(database_url, run_worker=False) as service:
        missing = service.client.get("/api/v1/nothing-here")
        wrong_method = service.client.put("/api/v1/sites", json={})
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"


def test_the_hot_routes_neighbours_are_answered_by_the_router(database_url: str) -> None:
    """The transcripts and chat-line routes are recognised ahead of the router
    (chathooks.api.lean); another method, or a path that only resembles theirs,
    still gets the router's own answer."""
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site()
        transcripts = f"/api/v1/sites/{site}/transcripts"
        messages = f"/api/v1/sites/{site}/conversations/c1/messages"
        wrong_methods = [
            service.client.get(transcripts, headers=auth),
            service.client.put(messages, json={}, headers=auth),
        ]
        longer = service.client.post(f"{transcripts}/x", json={"id": "a"}, headers=auth)
        slash = service.client.post(
            f"{transcripts}/", json={"id": "a"}, headers=auth, follow_redirects=False
        )
    for wrong_method in wrong_methods:
        assert wrong_method.status_code == 405, wrong_method.text
        assert wrong_method.json()["error"] == "method_not_allowed"
        assert wrong_method.headers["allow"] == "POST"
    assert longer.status_code == 404
    assert longer.json()["error"] == "not_found"
    assert slash.status_code == 307
    assert slash.headers["location"].endswith(transcripts)


def test_metrics_can_require_a_key_of_their_own(sqlite_url: str) -> None:
    with running_service(sqlite_url, run_worker=False, metrics_key="scrape-key") as service:
        anonymous = service.client.get("/metrics")
        wrong = service.client.get("/metrics", headers={"Authorization": "Bearer nope"})
        admin = service.client.get("/metrics", headers=service.admin())
        scraper = service.client.get("/metrics", headers={"Authorization": "Bearer scrape-key"})

    for refused in (anonymous, wrong, admin):
        assert refused.status_code == 401, refused.text
        assert refused.json()["field"] == "authorization"
        assert "CHATHOOKS_METRICS_KEY" in refused.json()["message"]
    assert scraper.status_code == 200
    assert "chathooks_" in scraper.text
