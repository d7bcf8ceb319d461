"""``chathooks simulate`` as a user runs it: against ``chathooks serve`` and ``chathooks receive``.

Three real processes on loopback: the service (API and worker, SQLite), the
ready receiver (which checks the Standard Webhooks signature) and the
simulator driving chats through the conversation API. What the receiver
stored is what an endpoint owner would see.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from chathooks.signing import generate_secret

CHATHOOKS = str(Path(sys.executable).with_name("chathooks"))
ADMIN_KEY = "chadm_simulate-acceptance"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def process(name: str, args: list[str], tmp_path: Path, health: str) -> Iterator[str]:
    """Run ``chathooks <args>`` until the block ends; yields its base URL once healthy."""
    port = free_port()
    log = tmp_path / f"{name}.log"
    env = {
        **os.environ,
        "CHATHOOKS_ADMIN_KEY": ADMIN_KEY,
        "CHATHOOKS_ALLOWED_DESTINATIONS": "127.0.0.0/8",
        "CHATHOOKS_POLL_INTERVAL": "0.05",
    }
    with log.open("wb") as output:
        child = subprocess.Popen(
            [CHATHOOKS, *args, "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if child.poll() is not None:
                pytest.fail(f"chathooks {name} exited:\n{log.read_text()}")
            try:
                if httpx.get(base + health, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chathooks {name} did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def simulate(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("CHATHOOKS_SITE_KEY", None)
    if key is not None:
        env["CHATHOOKS_SITE_KEY"] = key
    return subprocess.run(
        [CHATHOOKS, "simulate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


#: The receiver's read key: its transcripts are read with it.
READ_KEY = "chrd_simulate-test-read-key"


def received(receiver: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(
        f"{receiver}/api/transcripts?limit=100",
        headers={"Authorization": f"Bearer {READ_KEY}"},
    ).json()["items"]
    return items


def succeeded(service: str, site_id: str, key: str) -> int:
    response = httpx.get(
        f"{service}/api/v1/sites/{site_id}/deliveries?status=succeeded&limit=500",
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def test_simulated_chats_reach_the_receiver_by_olarks_rules(tmp_path: Path) -> None:
    secret = generate_secret()
    with (
        process(
            "receive",
            [
                "receive",
                "--database-url",
                f"sqlite:///{tmp_path / 'received.db'}",
                "--secret",
                secret,
                "--read-key",
                READ_KEY,
            ],
            tmp_path,
            "/healthz",
        ) as receiver,
        process(
            "serve",
            ["serve", "--database-url", f"sqlite:///{tmp_path / 'service.db'}"],
            tmp_path,
            "/healthz",
        ) as service,
    ):
        admin = {"authorization": f"Bearer {ADMIN_KEY}"}
        site = httpx.post(f"{service}/api/v1/sites", json={"name": "demo"}, headers=admin)
        assert site.status_code == 201, site.text
        site_id, key = site.json()["id"], site.json()["api_key"]
        endpoint = httpx.post(
            f"{service}/api/v1/sites/{site_id}/endpoints",
            json={"url": f"{receiver}/webhook", "secret": secret, "send_events": True},
            headers={"authorization": f"Bearer {key}"},
        )
        assert endpoint.status_code == 201, endpoint.text

        run = simulate(
            "--api-url", service, "--site", site_id, "--conversations", "12",
            "--commands", "--offline-share", "0.25", "--seed", "7", "--json",
            key=key,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout)
        assert summary["errors"] == 0, summary
        assert (summary["conversations"], summary["closed"]) == (9, 9)
        assert summary["offline_messages"] == 3
        assert summary["commands"] == 9
        assert summary["messages"] >= 9 * 2
        assert summary["deliveries"] > 12

        # Every delivery the simulation caused has reached the receiver.
        deadline = time.monotonic() + 60
        while succeeded(service, site_id, key) < summary["deliveries"]:
            assert time.monotonic() < deadline, "deliveries did not all succeed"
            time.sleep(0.2)
        stored = received(receiver)
        assert len(stored) == 12  # nine chats and three offline messages, one entry per id

        offline = 0
        for item in stored:
            detail = httpx.get(
                f"{receiver}/api/transcripts/{item['id']}",
                headers={"Authorization": f"Bearer {READ_KEY}"},
            ).json()
            versions = detail["versions"]
            documents = [version["document"] for version in versions]
            if "operators" not in documents[-1]:
                assert [d["items"][0]["kind"] for d in documents] == ["OfflineMessage"]
                offline += 1
                continue
            # A chat: its start event, the operator's command, maybe the completed chat.
            assert documents[0]["eventType"] == "start"
            assert any(d.get("manuallySubmitted") is True for d in documents)
            assert {d["id"] for d in documents} == {item["id"]}
            for document in documents:
                assert not any(
                    str(line.get("body", "")).startswith("!") for line in document["items"]
                )
        assert offline == 3


def test_simulate_explains_bad_options_and_keys(tmp_path: Path) -> None:
    bad = simulate("--api-url", "ftp://x", "--site", "s", "--conversations", "0", key="k")
    assert bad.returncode == 2
    assert "--api-url must be an http(s) URL" in bad.stderr
    assert "--conversations must be at least 1" in bad.stderr

    with process(
        "serve",
        ["serve", "--database-url", f"sqlite:///{tmp_path / 'service.db'}"],
        tmp_path,
        "/healthz",
    ) as service:
        wrong = simulate("--api-url", service, "--site", "site_x", key="not-a-key")
        assert wrong.returncode == 1
        assert "cannot use the API" in wrong.stderr
        assert "not valid" in wrong.stderr
