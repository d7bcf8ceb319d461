"""Several ``chathooks worker`` processes on one PostgreSQL: each idle chat completes once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from support.receiver import RecordingReceiver
from support.service import running_service

CHATHOOKS = str(Path(sys.executable).with_name("chathooks"))
WORKERS = 2
CONVERSATIONS = 20


def start_worker(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CHATHOOKS_DATABASE_URL": database_url,
        "CHATHOOKS_IDLE_TIMEOUT": "2",
        "CHATHOOKS_ALLOWED_DESTINATIONS": "127.0.0.0/8",
        "CHATHOOKS_POLL_INTERVAL": "0.05",
    }
    with log.open("wb") as output:
        return subprocess.Popen(
            [CHATHOOKS, "worker"], env=env, stdout=output, stderr=subprocess.STDOUT
        )


def test_racing_workers_complete_each_idle_conversation_exactly_once(
    postgres_url: str, receiver: RecordingReceiver, tmp_path: Path
) -> None:
    # The API process runs no worker: only the two worker processes check for idle chats.
    with running_service(postgres_url, run_worker=False) as service:
        site_id, auth = service.create_site()
        service.create_endpoint(site_id, auth, receiver.url)
        logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
        workers = [start_worker(postgres_url, log) for log in logs]
        try:
            ids = []
            for number in range(CONVERSATIONS):
                created = service.client.post(
                    f"/api/v1/sites/{site_id}/conversations",
                    json={"visitor": {"fullName": f"Visitor {number}"}},
                    headers=auth,
                )
                assert created.status_code == 201, created.text
                conversation = created.json()["id"]
                said = service.client.post(
                    f"/api/v1/sites/{site_id}/conversations/{conversation}/messages",
                    json={"from": "visitor", "body": "hello?"},
                    headers=auth,
                )
                assert said.status_code == 201, said.text
                ids.append(conversation)

            receiver.wait_for(CONVERSATIONS, timeout=60)
            deadline = time.monotonic() + 30
            while True:
                listing = service.client.get(
                    f"/api/v1/sites/{site_id}/conversations?state=closed&limit=500", headers=auth
                ).json()
                if len(listing["items"]) == CONVERSATIONS or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert {c["id"] for c in listing["items"]} == set(ids)
            assert {c["close_reason"] for c in listing["items"]} == {"idle"}

            for conversation in ids:
                state = service.client.get(
                    f"/api/v1/sites/{site_id}/conversations/{conversation}", headers=auth
                ).json()
                completions = [i for i in state["integrations"] if i["trigger"] == "completion"]
                assert len(completions) == 1, state
                assert len(completions[0]["deliveries"]) == 1
            posted = Counter(document["id"] for document in receiver.documents())
            assert posted == Counter(ids)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(10)
        for worker, log in zip(workers, logs, strict=True):
            assert worker.returncode == 0, log.read_text()
