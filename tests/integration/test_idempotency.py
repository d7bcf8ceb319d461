"""``Idempotency-Key``: a retried POST gets the first answer again and changes nothing more."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, update

from chathooks.db.engine import create_engine
from chathooks.db.tables import idempotency_keys
from support.receiver import RecordingReceiver
from support.service import RunningService, running_service


def _sql(database_url: str, statement: Any) -> None:
    async def run() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(statement)
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def _start(service: RunningService, site: str, auth: dict[str, str]) -> str:
    started = service.client.post(
        f"/api/v1/sites/{site}/conversations",
        json={"visitor": {"fullName": "Ann"}},
        headers=auth,
    )
    assert started.status_code == 201, started.text
    chat: str = started.json()["id"]
    return chat


def test_a_repeated_message_is_added_once_and_answered_the_same(database_url: str) -> None:
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site()
        chat = _start(service, site, auth)
        path = f"/api/v1/sites/{site}/conversations/{chat}/messages"
        line = {"from": "visitor", "body": "is anyone there?"}
        keyed = {**auth, "Idempotency-Key": "msg-0001"}
        first = service.client.post(path, json=line, headers=keyed)
        second = service.client.post(path, json=line, headers=keyed)
        assert first.status_code == 201, first.text
        assert (second.status_code, second.json()) == (201, first.json())
        assert second.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers

        reused = service.client.post(
            path, json={"from": "visitor", "body": "something else"}, headers=keyed
        )
        assert reused.status_code == 422
        assert reused.json()["error"] == "idempotency_key_reused"
        assert reused.json()["field"] == "Idempotency-Key"
        unkeyed = service.client.post(path, json=line, headers=auth)  # no key: a new message
        assert unkeyed.status_code == 201

        transcript = service.client.get(f"/api/v1/sites/{site}/conversations/{chat}", headers=auth)
        bodies = [item.get("body") for item in transcript.json()["transcript"]["items"]]
        assert bodies.count("is anyone there?") == 2  # the keyed one once, the unkeyed one
        assert "something else" not in bodies


def test_a_repeated_transcript_creates_one_set_of_deliveries(
    database_url: str, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    document = json.loads((fixtures_dir / "php-consumer-real-transcript-2.json").read_text())
    with running_service(database_url) as service:
        site, auth = service.create_site()
        service.create_endpoint(site, auth, receiver.url)
        service.create_endpoint(site, auth, receiver.url + "/second")
        path = f"/api/v1/sites/{site}/transcripts"
        keyed = {**auth, "Idempotency-Key": "platform-retry-7"}

        def post() -> httpx.Response:
            with httpx.Client(base_url=service.url, timeout=30) as client:
                return client.post(path, json=document, headers=keyed)

        with ThreadPoolExecutor(8) as pool:  # a burst of retries, some while the first runs
            answers = list(pool.map(lambda _: post(), range(8)))
        again = post()
        statuses = sorted({a.status_code for a in answers})
        assert set(statuses) <= {202, 409}, [a.text for a in answers]
        accepted = [a.json() for a in answers if a.status_code == 202] + [again.json()]
        assert again.status_code == 202
        assert all(body == accepted[0] for body in accepted)
        assert len(accepted[0]["deliveries"]) == 2
        listed = service.client.get(f"/api/v1/sites/{site}/deliveries", headers=auth).json()
        assert len(listed["items"]) == 2  # one set of deliveries, whatever the retries
        receiver.wait_for(2)
        time.sleep(0.5)
        assert len(receiver.requests) == 2


def test_a_repeat_while_the_first_still_runs_gets_409(database_url: str) -> None:
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site()
        chat = _start(service, site, auth)
        path = f"/api/v1/sites/{site}/conversations/{chat}/messages"
        line = {"from": "visitor", "body": "hello"}
        keyed = {**auth, "Idempotency-Key": "running-1"}
        first = service.client.post(path, json=line, headers=keyed)
        assert first.status_code == 201
        # As the row stands while its request is in progress: no answer yet.
        _sql(
            service.settings.database_url,
            update(idempotency_keys)
            .where(idempotency_keys.c.key == "running-1")
            .values(status_code=None, response_body=None, created_at=time.time()),
        )
        busy = service.client.post(path, json=line, headers=keyed)
        assert busy.status_code == 409, busy.text
        assert busy.json()["field"] == "Idempotency-Key"
        assert busy.headers["retry-after"] == "1"


def test_an_expired_key_runs_again_and_keys_are_per_site(database_url: str) -> None:
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site()
        other, other_auth = service.create_site("other.example")
        chat = _start(service, site, auth)
        path = f"/api/v1/sites/{site}/conversations/{chat}/messages"
        line = {"from": "visitor", "body": "hi"}
        _sql(
            service.settings.database_url,
            insert(idempotency_keys).values(
                site_id=site,
                key="old-key",
                request_hash="0" * 64,
                status_code=201,
                response_body=service.settings.keyring().seal("{}"),
                created_at=time.time() - 86400 - 5,
            ),
        )
        fresh = service.client.post(path, json=line, headers={**auth, "Idempotency-Key": "old-key"})
        assert fresh.status_code == 201 and fresh.json()["item"]["body"] == "hi"
        other_chat = _start(service, other, other_auth)
        elsewhere = service.client.post(
            f"/api/v1/sites/{other}/conversations/{other_chat}/messages",
            json=line,
            headers={**other_auth, "Idempotency-Key": "old-key"},
        )
        assert elsewhere.status_code == 201  # another site's key of the same name is its own


def test_bad_keys_are_refused_naming_the_header(sqlite_url: str) -> None:
    with running_service(sqlite_url, run_worker=False) as service:
        site, auth = service.create_site()
        path = f"/api/v1/sites/{site}/conversations"
        for key in ("x" * 256, ""):
            refused = service.client.post(
                path, json={"visitor": {}}, headers={**auth, "Idempotency-Key": key}
            )
            assert refused.status_code == 400, refused.text
            assert refused.json()["field"] == "Idempotency-Key"
        longest = service.client.post(
            path, json={"visitor": {}}, headers={**auth, "Idempotency-Key": "k" * 255}
        )
        assert longest.status_code == 201
        # Without a key that opens the site nothing is stored: the usual 401.
        stranger = service.client.post(
            path,
            json={"visitor": {}},
            headers={"Authorization": "Bearer chsk_wrong", "Idempotency-Key": "k" * 255},
        )
        assert stranger.status_code == 401


def test_answers_holding_a_key_or_secret_are_never_cached_replays_included(
    sqlite_url: str,
) -> None:
    """A created site's key, a new endpoint's secret and an alert secret: ``no-store``.

    A replayed answer (same ``Idempotency-Key``) holds the same secret, so it
    says so too; an answer without one says nothing of caching.
    """
    with running_service(sqlite_url, run_worker=False) as service:
        created = service.client.post(
            "/api/v1/sites", json={"name": "cache.example"}, headers=service.admin()
        )
        assert created.status_code == 201, created.text
        assert created.headers["cache-control"] == "no-store"

        site, auth = created.json()["id"], {"Authorization": f"Bearer {created.json()['api_key']}"}
        path = f"/api/v1/sites/{site}/endpoints"
        keyed = {**auth, "Idempotency-Key": "endpoint-0001"}
        body = {"url": "http://127.0.0.1:9/hook", "secret": "whsec_" + "A" * 32}
        endpoint = service.client.post(path, json=body, headers=keyed)
        assert endpoint.status_code == 201, endpoint.text
        assert endpoint.json()["secret"]
        assert endpoint.headers["cache-control"] == "no-store"
        replayed = service.client.post(path, json=body, headers=keyed)
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.headers["cache-control"] == "no-store"

        alerts = service.client.patch(
            f"/api/v1/sites/{site}", json={"alert_url": "http://127.0.0.1:9/alerts"}, headers=auth
        )
        assert alerts.status_code == 200, alerts.text
        assert alerts.json()["alert_secret"]
        assert alerts.headers["cache-control"] == "no-store"

        listed = service.client.get(path, headers=auth)
        assert listed.status_code == 200
        assert "cache-control" not in listed.headers
