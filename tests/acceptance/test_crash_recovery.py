"""A killed process's claims come back when that is known, not when their lease ends.

The lease is left at its default (120 s). ``chathooks serve`` is SIGKILLed
while a receiver is still answering its POST; the restarted ``serve`` sees
that its predecessor is gone and sends the delivery again at once. On
PostgreSQL a ``chathooks worker`` is killed while another one runs: the
survivor gives the dead one's claim back. Either way the delivery arrives
within 10 s of the restart, and ``chathooks status`` shows the killed worker
as not seen since its last heartbeat.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from chathooks.db.migrate import upgrade
from support.processes import Process, run_json, serving, started, wait_until
from support.receiver import RecordingReceiver

RECOVERY_SECONDS = 10.0


def _site_with_endpoint(tmp_path: Path, database_url: str, url: str) -> tuple[str, dict[str, str]]:
    upgrade(database_url)
    site = run_json("site", "create", "s", "--database-url", database_url, cwd=tmp_path)
    run_json("endpoint", "add", site["id"], url, "--database-url", database_url, cwd=tmp_path)
    return site["id"], {"Authorization": f"Bearer {site['api_key']}"}


def _post_transcript(base: str, site: str, auth: dict[str, str], chat: str) -> str:
    document = {"kind": "Conversation", "id": chat, "items": []}
    response = httpx.post(f"{base}/api/v1/sites/{site}/transcripts", json=document, headers=auth)
    assert response.status_code == 202, response.text
    delivery_id: str = response.json()["deliveries"][0]["id"]
    return delivery_id


def _delivery(base: str, site: str, auth: dict[str, str], delivery_id: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/api/v1/sites/{site}/deliveries/{delivery_id}", headers=auth)
    body: dict[str, Any] = response.json()
    return body


def test_a_restarted_serve_resends_what_the_killed_one_held_at_once(
    tmp_path: Path, database_url: str, receiver: RecordingReceiver
) -> None:
    site, auth = _site_with_endpoint(tmp_path, database_url, receiver.url)
    receiver.reply(200, {}, delay=10.0)  # the first POST is still waiting when serve dies
    with serving(tmp_path, database_url, name="first") as first:
        assert first.base_url is not None
        delivery_id = _post_transcript(first.base_url, site, auth, "chat-crash")
        receiver.wait_for(1, timeout=30)
        first.kill()

    with serving(tmp_path, database_url, name="second") as second:
        assert second.base_url is not None
        base = second.base_url
        delivered = wait_until(
            lambda: _delivery(base, site, auth, delivery_id)["status"] == "succeeded",
            timeout=60,
            what="the delivery to succeed after the restart",
        )
        recovered_after = time.monotonic() - second.started_at
    assert delivered
    assert recovered_after < RECOVERY_SECONDS, f"took {recovered_after:.1f}s: {second.output()}"
    assert [r.header("webhook-id") for r in receiver.requests] == [delivery_id] * 2
    assert "released 1 claim" in second.output()


def _status(tmp_path: Path, database_url: str, **env: str) -> dict[str, Any]:
    report: dict[str, Any] = run_json("status", "--database-url", database_url, cwd=tmp_path, **env)
    return report


def _worker(tmp_path: Path, database_url: str, name: str, **env: str) -> Any:
    return started(
        ["worker", "--database-url", database_url, "--concurrency", "4"],
        tmp_path,
        name,
        CHATHOOKS_HEARTBEAT_INTERVAL="0.5",
        CHATHOOKS_WORKER_TIMEOUT="3",
        **env,
    )


def _worker_ids(report: dict[str, Any], *, alive: bool) -> set[str]:
    return {w["id"] for w in report["workers"] if w["alive"] is alive}


def test_a_surviving_worker_releases_a_killed_workers_claims_and_status_shows_it(
    tmp_path: Path, postgres_url: str, receiver: RecordingReceiver
) -> None:
    site, auth = _site_with_endpoint(tmp_path, postgres_url, receiver.url)
    receiver.reply(200, {}, delay=10.0)
    with serving(tmp_path, postgres_url, "--no-worker", name="api") as api:
        assert api.base_url is not None
        base = api.base_url
        with _worker(tmp_path, postgres_url, "doomed") as doomed:
            first_id = wait_until(
                lambda: _worker_ids(_status(tmp_path, postgres_url), alive=True),
                what="the first worker's heartbeat",
            )
            delivery_id = _post_transcript(base, site, auth, "chat-workers")
            receiver.wait_for(1, timeout=30)
            with _worker(tmp_path, postgres_url, "survivor") as survivor:
                wait_until(
                    lambda: len(_worker_ids(_status(tmp_path, postgres_url), alive=True)) == 2,
                    what="both heartbeats",
                )
                doomed.kill()
                killed_at = time.monotonic()
                last_seen = {
                    w["id"]: w["last_seen_at"] for w in _status(tmp_path, postgres_url)["workers"]
                }
                wait_until(
                    lambda: _delivery(base, site, auth, delivery_id)["status"] == "succeeded",
                    timeout=60,
                    what="the survivor to deliver",
                )
                assert time.monotonic() - killed_at < RECOVERY_SECONDS, _output(survivor)
                time.sleep(1.0)  # the killed worker's heartbeat is now more than 1 s old
                report = _status(tmp_path, postgres_url, CHATHOOKS_WORKER_TIMEOUT="1")
    [killed] = list(first_id)
    [shown] = [w for w in report["workers"] if w["id"] == killed]
    assert shown["alive"] is False
    assert shown["last_seen_at"] == last_seen[killed]  # its last heartbeat, never rewritten
    assert shown["seconds_since_seen"] >= 1.0
    assert report["queue"]["by_status"]["delivering"] == 0


def _output(process: Process) -> str:
    return process.output()[-3000:]
