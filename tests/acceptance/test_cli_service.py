"""The sender service as an operator runs it: ``chathooks`` commands in real processes.

Migrate, create a site and an endpoint from the command line, run ``chathooks
serve``, post a transcript over HTTP and see it delivered to a real receiver
and listed by ``chathooks deliveries list``; extra ``chathooks worker``
processes; the admin key printed on first start; bad input refused clearly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from chathooks import cli
from chathooks.wire import FORM_CONTENT_TYPE
from support.receiver import RecordingReceiver

CHATHOOKS = str(Path(sys.executable).with_name("chathooks"))
TRANSCRIPT = "snowplow-enrich-common-e1-transcript-HEAD"
#: The service may post to the loopback receiver; it polls quickly so tests are short.
SERVICE_ENV = {
    "CHATHOOKS_ALLOWED_DESTINATIONS": "127.0.0.0/8",
    "CHATHOOKS_POLL_INTERVAL": "0.05",
    "CHATHOOKS_RETRY_SCHEDULE": "0.2,0.2",
}


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATHOOKS_")}
    env.update(SERVICE_ENV)
    env.pop("CHATHOOKS_REQUIRE_SERVICES", None)
    return {**env, **(extra or {})}


def chathooks(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHATHOOKS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=environment(env),
        check=False,
    )


def chathooks_json(*args: str, cwd: Path) -> Any:
    result = chathooks(*args, "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Process:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running(
    args: list[str], cwd: Path, name: str, env: dict[str, str] | None = None
) -> Iterator[Process]:
    """A ``chathooks`` command in its own process until the block ends (then SIGTERM)."""
    log = cwd / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [CHATHOOKS, *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=environment(env),
        )
    handle = Process(process, log)
    try:
        yield handle
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def serving(
    cwd: Path, database_url: str, *extra: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, Process]]:
    port = free_port()
    args = ["serve", "--port", str(port), "--database-url", database_url, *extra]
    with running(args, cwd, f"serve-{port}", env) as process:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if process.process.poll() is not None:
                pytest.fail(f"chathooks serve exited:\n{process.output()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chathooks serve did not become healthy:\n{process.output()}")
            time.sleep(0.1)
        yield base, process


def wait_for_status(cwd: Path, database_url: str, site: str, status: str, count: int) -> list[Any]:
    deadline = time.monotonic() + 30
    while True:
        items = chathooks_json("deliveries", "list", site, "--database-url", database_url, cwd=cwd)[
            "items"
        ]
        if len(items) == count and all(d["status"] == status for d in items):
            return list(items)
        if time.monotonic() > deadline:
            pytest.fail(f"deliveries did not all reach {status}: {items}")
        time.sleep(0.2)


def test_migrate_configure_serve_and_deliver(
    tmp_path: Path, database_url: str, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    migrated = chathooks("migrate", "--database-url", database_url, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "revision" in migrated.stdout
    again = chathooks("migrate", "--database-url", database_url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr  # migrating twice is harmless

    site = chathooks_json(
        "site", "create", "shop.example", "--database-url", database_url, cwd=tmp_path
    )
    assert site["name"] == "shop.example"
    endpoint = chathooks_json(
        "endpoint",
        "add",
        site["id"],
        receiver.url,
        "--no-events",
        "--database-url",
        database_url,
        cwd=tmp_path,
    )
    assert endpoint["secret"].startswith("whsec_")
    assert (endpoint["auto_send"], endpoint["send_offline"], endpoint["send_events"]) == (
        True,
        True,
        False,
    )
    listed = chathooks_json(
        "endpoint", "list", site["id"], "--database-url", database_url, cwd=tmp_path
    )
    assert [e["id"] for e in listed["items"]] == [endpoint["id"]]
    text = chathooks("endpoint", "list", site["id"], "--database-url", database_url, cwd=tmp_path)
    assert endpoint["id"] in text.stdout and receiver.url in text.stdout

    body = (fixtures_dir / f"{TRANSCRIPT}.body.txt").read_bytes()
    with serving(tmp_path, database_url, env={"CHATHOOKS_ADMIN_KEY": "chadm_given"}) as (base, _):
        accepted = httpx.post(
            f"{base}/api/v1/sites/{site['id']}/transcripts",
            content=body,
            headers={
                "Authorization": f"Bearer {site['api_key']}",
                "content-type": FORM_CONTENT_TYPE,
            },
        )
        assert accepted.status_code == 202, accepted.text
        [queued] = accepted.json()["deliveries"]
        [received] = receiver.wait_for(1)
        assert received.document() == json.loads((fixtures_dir / f"{TRANSCRIPT}.json").read_text())
        [delivered] = wait_for_status(tmp_path, database_url, site["id"], "succeeded", 1)
        assert delivered["id"] == queued["id"]
        assert delivered["attempt_count"] == 1

        redelivered = chathooks_json(
            "deliveries", "redeliver", queued["id"], "--database-url", database_url, cwd=tmp_path
        )
        assert redelivered["id"] == queued["id"]
        receiver.wait_for(2)
        assert receiver.requests[1].header("webhook-id") == queued["id"]


def test_workers_deliver_for_a_service_started_without_one(
    tmp_path: Path, database_url: str, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    assert chathooks("migrate", "--database-url", database_url, cwd=tmp_path).returncode == 0
    site = chathooks_json("site", "create", "s", "--database-url", database_url, cwd=tmp_path)
    chathooks_json(
        "endpoint",
        "add",
        site["id"],
        receiver.url,
        "--format",
        "json",
        "--no-secret",
        "--database-url",
        database_url,
        cwd=tmp_path,
    )
    document = json.loads((fixtures_dir / "php-consumer-real-transcript-3.json").read_text())
    auth = {"Authorization": f"Bearer {site['api_key']}"}

    with serving(tmp_path, database_url, "--no-worker") as (base, _):
        for n in range(4):
            response = httpx.post(
                f"{base}/api/v1/sites/{site['id']}/transcripts",
                json={**document, "id": f"chat{n}"},
                headers=auth,
            )
            assert response.status_code == 202
        time.sleep(0.5)
        assert receiver.requests == []  # nobody delivers yet

        worker_args = ["worker", "--database-url", database_url, "--concurrency", "2"]
        with (
            running(worker_args, tmp_path, "worker-1") as one,
            running(worker_args, tmp_path, "worker-2") as two,
        ):
            received = receiver.wait_for(4)
            wait_for_status(tmp_path, database_url, site["id"], "succeeded", 4)
            for worker in (one, two):
                worker.process.send_signal(signal.SIGTERM)
                assert worker.process.wait(30) == 0, worker.output()
    assert sorted(r.document()["id"] for r in received) == [f"chat{n}" for n in range(4)]
    assert all(r.content_type == "application/json" for r in received)


def test_the_admin_key_is_generated_once_and_survives_restarts(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'chathooks.db'}"
    with serving(tmp_path, database_url, "--no-worker") as (base, first_run):
        admin_key = _printed_admin_key(first_run)
        created = httpx.post(
            f"{base}/api/v1/sites",
            json={"name": "a"},
            headers={"Authorization": f"Bearer {admin_key}"},
        )
        assert created.status_code == 201

    with serving(tmp_path, database_url, "--no-worker") as (base, second_run):
        assert "admin key" not in second_run.output()
        again = httpx.post(
            f"{base}/api/v1/sites",
            json={"name": "b"},
            headers={"Authorization": f"Bearer {admin_key}"},
        )
        assert again.status_code == 201


def _printed_admin_key(process: Process) -> str:
    lines = process.output().splitlines()
    for number, line in enumerate(lines):
        if "admin key" in line:
            return lines[number + 1].strip()
    pytest.fail(f"no admin key was printed:\n{process.output()}")


def test_serve_uses_chathooks_db_in_the_current_directory_by_default(tmp_path: Path) -> None:
    with serving(tmp_path, "sqlite:///./chathooks.db") as (base, _):
        assert httpx.get(f"{base}/readyz").json()["database"] == "ok"
    assert (tmp_path / "chathooks.db").is_file()


def test_bad_input_is_refused_with_a_message_and_an_exit_status(tmp_path: Path) -> None:
    """Run in-process (the same commands, the same database) to keep the many cases quick."""
    runner = CliRunner()
    database_url = f"sqlite:///{tmp_path / 'chathooks.db'}"

    def run(*args: str, url: str = database_url, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(cli.app, [*args, "--database-url", url], env=env)

    assert run("migrate").exit_code == 0
    created = run("site", "create", "s", "--json")
    assert created.exit_code == 0, created.stderr
    site = json.loads(created.stdout)["id"]

    cases = [
        (["endpoint", "add", site, "ftp://crm.example/"], "http"),
        (["endpoint", "add", site, "https://crm.example/", "--format", "xml"], "format"),
        (["endpoint", "add", "site_nope", "https://crm.example/"], "no site"),
        (["endpoint", "list", "site_nope"], "no site"),
        (["deliveries", "list", site, "--status", "lost"], "--status"),
        (["deliveries", "redeliver", "msg_nope"], "no delivery"),
        (["site", "create", " "], "empty"),
    ]
    for args, hint in cases:
        result = run(*args)
        assert result.exit_code != 0, args
        assert hint in result.stderr, (args, result.stderr)
        assert result.exception is None or isinstance(result.exception, SystemExit), args

    unmigrated = run("site", "create", "s", url=f"sqlite:///{tmp_path / 'empty.db'}")
    assert unmigrated.exit_code != 0
    assert "chathooks migrate" in unmigrated.stderr
    bad_env = run("migrate", env={"CHATHOOKS_ALLOWED_DESTINATIONS": "not-a-network"})
    assert bad_env.exit_code != 0
    assert "CHATHOOKS_ALLOWED_DESTINATIONS" in bad_env.stderr
    bad_url = run("migrate", url="mysql://x/y")
    assert bad_url.exit_code != 0
    assert "unsupported database" in bad_url.stderr
