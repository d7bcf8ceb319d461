"""The sender service as an operator runs it: ``chathooks`` commands in real processes.

Migrate, create a site and an endpoint from the command line, run ``chathooks
serve``, post a transcript over HTTP and see it delivered to a real receiver
and listed by ``chathooks deliveries list``; extra ``chathooks worker``
processes; the admin key printed on first start; bad input refused clearly.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
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
from chathooks.wire import FORM_CONTENT_TYPE, TEST_TRANSCRIPT_ID
from support.receiver import RecordingReceiver
from support.services import environment_without_settings

CHATHOOKS = str(Path(sys.executable).with_name("chathooks"))
TRANSCRIPT = "snowplow-enrich-common-e1-transcript-HEAD"
#: The service may post to the loopback receiver; it polls quickly so tests are short.
SERVICE_ENV = {
    "CHATHOOKS_ALLOWED_DESTINATIONS": "127.0.0.0/8",
    "CHATHOOKS_POLL_INTERVAL": "0.05",
    "CHATHOOKS_RETRY_SCHEDULE": "0.2,0.2",
}


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = environment_without_settings()
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


# -- the whole CLI against a running service ---------------------------------------------


def admin(*args: str, cwd: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    """An admin command, run in this process (the same code as the installed command, without
    an interpreter start per call) on the database a ``chathooks serve`` process is using."""
    del cwd  # every database URL here is absolute
    result = CliRunner().invoke(cli.app, [*args, "--database-url", database_url], env=SERVICE_ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def admin_json(*args: str, cwd: Path, database_url: str) -> Any:
    result = admin(*args, "--json", cwd=cwd, database_url=database_url)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_lists_page_with_limit_and_cursor_in_the_apis_shape(
    tmp_path: Path, sqlite_url: str
) -> None:
    assert admin("migrate", cwd=tmp_path, database_url=sqlite_url).returncode == 0
    names = ["a.example", "b.example", "c.example"]
    for name in names:
        admin_json("site", "create", name, cwd=tmp_path, database_url=sqlite_url)

    with serving(tmp_path, sqlite_url, "--no-worker", env={"CHATHOOKS_ADMIN_KEY": "chadm_k"}) as (
        base,
        _,
    ):
        first = admin("site", "list", "--limit", "2", cwd=tmp_path, database_url=sqlite_url)
        assert first.returncode == 0, first.stderr
        assert [line.split()[1] for line in first.stdout.splitlines()] == names[:2]
        assert "more rows: add --cursor " in first.stderr
        cursor = first.stderr.rsplit("--cursor ", 1)[1].split()[0]

        rest = admin("site", "list", "--cursor", cursor, cwd=tmp_path, database_url=sqlite_url)
        assert [line.split()[1] for line in rest.stdout.splitlines()] == names[2:]
        assert "more rows" not in rest.stderr

        as_json = admin_json("site", "list", "--limit", "2", cwd=tmp_path, database_url=sqlite_url)
        api = httpx.get(
            f"{base}/api/v1/sites",
            params={"limit": 2},
            headers={"Authorization": "Bearer chadm_k"},
        ).json()
        assert as_json == api
        assert as_json["next_cursor"] == cursor


def test_endpoint_update_disable_enable_test_and_delete(
    tmp_path: Path, database_url: str, receiver: RecordingReceiver
) -> None:
    assert admin("migrate", cwd=tmp_path, database_url=database_url).returncode == 0
    site = admin_json("site", "create", "s", cwd=tmp_path, database_url=database_url)
    site_id, auth = site["id"], {"Authorization": f"Bearer {site['api_key']}"}
    endpoint = admin_json(
        "endpoint", "add", site_id, receiver.url, "--max-in-flight", "2",
        cwd=tmp_path, database_url=database_url,
    )  # fmt: skip
    endpoint_id = endpoint["id"]
    assert endpoint["max_in_flight"] == 2

    with serving(tmp_path, database_url, "--no-worker") as (base, _):
        path = f"{base}/api/v1/sites/{site_id}/endpoints/{endpoint_id}"

        changed = admin_json(
            "endpoint", "update", site_id, endpoint_id, "--no-auto-send", "--events",
            "--format", "json", "--description", "CRM",
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        assert (changed["auto_send"], changed["send_events"], changed["format"]) == (
            False,
            True,
            "json",
        )
        assert changed["send_offline"] is True  # not given, not changed
        assert httpx.get(path, headers=auth).json() == changed

        capped = admin_json(
            "endpoint", "update", site_id, endpoint_id, "--max-in-flight", "64",
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        assert capped["max_in_flight"] == 64
        assert httpx.get(path, headers=auth).json()["max_in_flight"] == 64
        too_many = admin(
            "endpoint", "update", site_id, endpoint_id, "--max-in-flight", "65",
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        assert too_many.returncode == 1 and "max_in_flight" in too_many.stderr

        unsigned = admin_json(
            "endpoint", "update", site_id, endpoint_id, "--no-secret",
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        assert unsigned["signed"] is False
        resigned = admin(
            "endpoint", "update", site_id, endpoint_id, "--new-secret",
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        assert "signing secret: whsec_" in resigned.stdout
        assert httpx.get(path, headers=auth).json()["signed"] is True

        disabled = admin_json(
            "endpoint", "disable", site_id, endpoint_id, cwd=tmp_path, database_url=database_url
        )
        assert disabled["enabled"] is False
        assert httpx.get(path, headers=auth).json()["enabled"] is False
        enabled = admin_json(
            "endpoint", "enable", site_id, endpoint_id, cwd=tmp_path, database_url=database_url
        )
        assert enabled["enabled"] is True

        tested = admin(
            "endpoint", "test", site_id, endpoint_id, cwd=tmp_path, database_url=database_url
        )
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert "status: 200" in tested.stdout
        assert f"integrationUrl: https://crm.example/leads/{TEST_TRANSCRIPT_ID}" in tested.stdout
        [sent] = receiver.wait_for(1)
        assert sent.document()["id"] == TEST_TRANSCRIPT_ID
        assert sent.content_type == "application/json"  # the endpoint's format
        start = admin_json(
            "endpoint", "test", site_id, endpoint_id, "--kind", "start_event",
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        assert (start["kind"], start["saved_settings"], start["ok"]) == ("start_event", True, True)
        assert receiver.wait_for(2)[1].document()["eventType"] == "start"
        unknown = admin(
            "endpoint", "test", site_id, endpoint_id, "--kind", "lead",
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        assert unknown.returncode == 1 and "kind" in unknown.stderr

        nothing = admin(
            "endpoint", "update", site_id, endpoint_id, cwd=tmp_path, database_url=database_url
        )
        assert nothing.returncode == 1 and "nothing to change" in nothing.stderr
        bad = admin(
            "endpoint", "update", site_id, endpoint_id, "--url", "ftp://x/",
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        assert bad.returncode == 1 and "url" in bad.stderr

        deleted = admin(
            "endpoint", "delete", site_id, endpoint_id, cwd=tmp_path, database_url=database_url
        )
        assert deleted.returncode == 0, deleted.stderr
        assert httpx.get(path, headers=auth).status_code == 404
        again = admin(
            "endpoint", "delete", site_id, endpoint_id, cwd=tmp_path, database_url=database_url
        )
        assert again.returncode == 1
        assert f"there is no endpoint {endpoint_id!r}" in again.stderr


def test_an_endpoint_test_that_fails_exits_1_with_the_reason(
    tmp_path: Path, sqlite_url: str
) -> None:
    assert admin("migrate", cwd=tmp_path, database_url=sqlite_url).returncode == 0
    site = admin_json("site", "create", "s", cwd=tmp_path, database_url=sqlite_url)
    closed = f"http://127.0.0.1:{free_port()}/webhook"
    endpoint = admin_json(
        "endpoint", "add", site["id"], closed, cwd=tmp_path, database_url=sqlite_url
    )
    failed = admin(
        "endpoint", "test", site["id"], endpoint["id"], cwd=tmp_path, database_url=sqlite_url
    )
    assert failed.returncode == 1
    assert "failed:" in failed.stderr


def test_recover_sends_failed_deliveries_again_after_an_outage(
    tmp_path: Path, database_url: str, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    assert admin("migrate", cwd=tmp_path, database_url=database_url).returncode == 0
    site = admin_json("site", "create", "s", cwd=tmp_path, database_url=database_url)
    site_id = site["id"]
    down = f"http://127.0.0.1:{free_port()}/webhook"
    endpoint = admin_json("endpoint", "add", site_id, down, cwd=tmp_path, database_url=database_url)
    document = json.loads((fixtures_dir / "php-consumer-real-transcript-3.json").read_text())

    with serving(tmp_path, database_url) as (base, _):
        for n in range(2):
            response = httpx.post(
                f"{base}/api/v1/sites/{site_id}/transcripts",
                json={**document, "id": f"chat{n}"},
                headers={"Authorization": f"Bearer {site['api_key']}"},
            )
            assert response.status_code == 202, response.text
        failed = wait_for_status(tmp_path, database_url, site_id, "failed", 2)

        listed = admin(
            "deliveries", "list", site_id, "--limit", "1", cwd=tmp_path, database_url=database_url
        )
        assert len(listed.stdout.splitlines()) == 1
        assert "more rows: add --cursor" in listed.stderr
        page = admin_json(
            "deliveries", "list", site_id, "--limit", "1", cwd=tmp_path, database_url=database_url
        )
        assert page["next_cursor"] is not None
        rest = admin_json(
            "deliveries", "list", site_id, "--cursor", page["next_cursor"],
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        assert {d["id"] for d in page["items"] + rest["items"]} == {d["id"] for d in failed}

        admin_json(
            "endpoint", "update", site_id, endpoint["id"], "--url", receiver.url,
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        recovered = admin_json(
            "deliveries", "recover", site_id, "--since", "2000-01-01T00:00:00",
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        assert {d["id"] for d in recovered["deliveries"]} == {d["id"] for d in failed}
        received = receiver.wait_for(2)
        assert sorted(r.document()["id"] for r in received) == ["chat0", "chat1"]
        wait_for_status(tmp_path, database_url, site_id, "succeeded", 2)

        later = admin(
            "deliveries", "recover", site_id, "--since", "2999-01-01",
            cwd=tmp_path, database_url=database_url,
        )  # fmt: skip
        assert later.returncode == 0 and "0 failed deliveries" in later.stderr


def test_help_shows_flags_without_a_bool_placeholder(tmp_path: Path) -> None:
    for command in (
        ["--help"],
        ["endpoint", "--help"],
        ["endpoint", "add", "--help"],
        ["endpoint", "update", "--help"],
        ["deliveries", "list", "--help"],
        ["receive", "--help"],
    ):
        shown = chathooks(*command, cwd=tmp_path)
        assert shown.returncode == 0, (command, shown.stderr)
        assert "<bool>" not in shown.stdout, command
    assert (
        "--auto-send / --no-auto-send"
        in chathooks("endpoint", "add", "--help", cwd=tmp_path).stdout
    )


def test_a_missing_or_unmigrated_database_is_named_by_its_absolute_path(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    missing = chathooks("site", "list", cwd=elsewhere)  # the default ./chathooks.db
    assert missing.returncode == 1
    assert str(elsewhere / "chathooks.db") in missing.stderr
    assert "chathooks migrate" in missing.stderr
    assert not (elsewhere / "chathooks.db").exists()  # no empty file left behind

    empty = elsewhere / "empty.db"
    sqlite3.connect(empty).close()
    unmigrated = chathooks(
        "endpoint", "list", "site_x", "--database-url", f"sqlite:///{empty}", cwd=tmp_path
    )
    assert unmigrated.returncode == 1
    assert f"the database {empty} is empty" in unmigrated.stderr
    assert "no such table" not in unmigrated.stderr


def test_worker_explains_loopback_destinations_and_names_a_missing_database(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in environment().items() if k != "CHATHOOKS_ALLOWED_DESTINATIONS"}
    started = subprocess.run(
        [CHATHOOKS, "worker"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert started.returncode == 1
    assert "CHATHOOKS_ALLOWED_DESTINATIONS=127.0.0.0/8" in started.stderr
    assert str(tmp_path / "chathooks.db") in started.stderr
    assert not (tmp_path / "chathooks.db").exists()


def test_a_disabled_endpoint_holds_its_deliveries_until_enable_sends_them(
    tmp_path: Path, sqlite_url: str, receiver: RecordingReceiver, fixtures_dir: Path
) -> None:
    assert admin("migrate", cwd=tmp_path, database_url=sqlite_url).returncode == 0
    site = admin_json("site", "create", "s", cwd=tmp_path, database_url=sqlite_url)
    site_id = site["id"]
    endpoint = admin_json(
        "endpoint", "add", site_id, receiver.url, cwd=tmp_path, database_url=sqlite_url
    )
    document = json.loads((fixtures_dir / "php-consumer-real-transcript-3.json").read_text())
    with serving(tmp_path, sqlite_url, "--no-worker") as (base, _):
        response = httpx.post(
            f"{base}/api/v1/sites/{site_id}/transcripts",
            json=document,
            headers={"Authorization": f"Bearer {site['api_key']}"},
        )
        assert response.status_code == 202, response.text
        # Queued while enabled, disabled before any worker got to it.
        admin_json(
            "endpoint", "disable", site_id, endpoint["id"], cwd=tmp_path, database_url=sqlite_url
        )
        worker_args = ["worker", "--database-url", sqlite_url]
        with running(worker_args, tmp_path, "worker"):
            wait_for_status(tmp_path, sqlite_url, site_id, "held", 1)
            assert receiver.requests == []

            admin_json(
                "endpoint", "enable", site_id, endpoint["id"], cwd=tmp_path, database_url=sqlite_url
            )
            [received] = receiver.wait_for(1)
            assert received.document()["id"] == document["id"]
            wait_for_status(tmp_path, sqlite_url, site_id, "succeeded", 1)
