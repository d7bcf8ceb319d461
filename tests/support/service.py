"""The real sender service on an ephemeral loopback port, for tests over HTTP.

``running_service(database_url)`` migrates the database, starts
``create_app`` under uvicorn in a thread and yields a :class:`RunningService`
with an httpx client; the in-process worker delivers as in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from chathooks.api.app import create_app
from chathooks.db.migrate import upgrade
from chathooks.settings import Settings

ADMIN_KEY = "chadm_test-admin-key"


@dataclass
class RunningService:
    url: str
    settings: Settings
    client: httpx.Client

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    def create_site(self, name: str = "example.com") -> tuple[str, dict[str, str]]:
        """A new site's id and the headers that open it."""
        response = self.client.post("/api/v1/sites", json={"name": name}, headers=self.admin())
        assert response.status_code == 201, response.text
        body = response.json()
        return body["id"], {"Authorization": f"Bearer {body['api_key']}"}

    def create_endpoint(
        self, site_id: str, auth: dict[str, str], url: str, **fields: Any
    ) -> dict[str, Any]:
        response = self.client.post(
            f"/api/v1/sites/{site_id}/endpoints", json={"url": url, **fields}, headers=auth
        )
        assert response.status_code == 201, response.text
        endpoint: dict[str, Any] = response.json()
        return endpoint

    def post_transcript(self, site_id: str, auth: dict[str, str], document: Any) -> list[str]:
        """``POST .../transcripts``; the ids of the deliveries it queued."""
        response = self.client.post(
            f"/api/v1/sites/{site_id}/transcripts", json=document, headers=auth
        )
        assert response.status_code == 202, response.text
        return [delivery["id"] for delivery in response.json()["deliveries"]]

    def wait_for_status(
        self,
        site_id: str,
        auth: dict[str, str],
        delivery_id: str,
        status: str,
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        """The delivery once it reached ``status``; fails with its last state otherwise."""
        deadline = time.monotonic() + timeout
        path = f"/api/v1/sites/{site_id}/deliveries/{delivery_id}"
        while True:
            delivery: dict[str, Any] = self.client.get(path, headers=auth).json()
            if delivery.get("status") == status or time.monotonic() > deadline:
                assert delivery.get("status") == status, delivery
                return delivery
            time.sleep(0.05)


def test_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test service: loopback receivers allowed, quick polling and retries."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_key": ADMIN_KEY,
        "allowed_destinations": ["127.0.0.0/8"],
        "poll_interval": 0.05,
        "retry_schedule": [0.2, 0.2],
    }
    values.update(overrides)
    return Settings(**values)


test_settings.__test__ = False  # type: ignore[attr-defined]


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 (port 0) in a thread; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="chathooks-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the chathooks app did not start; see the log above")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


@contextmanager
def running_service(
    database_url: str, *, run_worker: bool = True, **overrides: Any
) -> Iterator[RunningService]:
    settings = test_settings(database_url, **overrides)
    upgrade(database_url, settings.keyring())
    with (
        serving(create_app(settings, run_worker=run_worker)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield RunningService(url=url, settings=settings, client=client)
