"""What ``chathooks serve`` writes to its log, as a log collector reads it.

A real ``serve`` with ``--log-format json`` delivers to a receiver that
fails: every line on standard error is one JSON object, each failed attempt
is a WARNING naming the delivery, endpoint and site, and neither the
payload, the endpoint's secret nor any key appears anywhere in the log.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from chathooks import cli
from chathooks.db.migrate import upgrade
from support.receiver import RecordingReceiver
from support.services import environment_without_settings

CHATHOOKS = str(Path(sys.executable).with_name("chathooks"))
ADMIN_KEY = "chadm_log-test-admin-key"
JSON_LOGS = ("--log-format", "json")
VISITOR_EMAIL = "erin.visitor@example.org"
VISITOR_TEXT = "my order number is 99-SECRET-LINE"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment(**extra: str) -> dict[str, str]:
    env = environment_without_settings()
    env.update(
        CHATHOOKS_ALLOWED_DESTINATIONS="127.0.0.0/8",
        CHATHOOKS_POLL_INTERVAL="0.05",
        CHATHOOKS_RETRY_SCHEDULE="0.2",
        CHATHOOKS_ADMIN_KEY=ADMIN_KEY,
    )
    env.update(extra)
    return env


def _cli_json(*args: str, cwd: Path) -> dict[str, str]:
    done = subprocess.run(
        [CHATHOOKS, *args, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=_environment(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def test_serve_logs_json_lines_with_a_warning_per_failed_attempt_and_no_secrets(
    tmp_path: Path, database_url: str, receiver: RecordingReceiver
) -> None:
    upgrade(database_url)
    site = _cli_json("site", "create", "shop.example", "--database-url", database_url, cwd=tmp_path)
    endpoint = _cli_json(
        "endpoint", "add", site["id"], receiver.url, "--database-url", database_url, cwd=tmp_path
    )
    receiver.reply(500, "boom", times=2)
    port = _free_port()
    stderr_log, stdout_log = tmp_path / "serve.err", tmp_path / "serve.out"
    with stderr_log.open("wb") as errors, stdout_log.open("wb") as output:
        process = subprocess.Popen(
            [CHATHOOKS, "serve", "--port", str(port), "--database-url", database_url, *JSON_LOGS],
            stdout=output,
            stderr=errors,
            cwd=tmp_path,
            env=_environment(),
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, process, stderr_log)
        auth = {"Authorization": f"Bearer {site['api_key']}"}
        transcript = {
            "kind": "Conversation",
            "id": "chat-logs-1",
            "visitor": {"kind": "Visitor", "id": "v1", "emailAddress": VISITOR_EMAIL},
            "items": [{"kind": "MessageToOperator", "body": VISITOR_TEXT, "timestamp": "1"}],
        }
        accepted = httpx.post(
            f"{base}/api/v1/sites/{site['id']}/transcripts", json=transcript, headers=auth
        )
        assert accepted.status_code == 202, accepted.text
        [queued] = accepted.json()["deliveries"]
        receiver.wait_for(2, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            state = httpx.get(
                f"{base}/api/v1/sites/{site['id']}/deliveries/{queued['id']}", headers=auth
            ).json()
            if state["status"] == "failed" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert state["status"] == "failed", state
        warned = _wait_for_lines(stderr_log, lambda e: e.get("level") == "WARNING", 2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    entries = _json_lines(stderr_log)
    assert entries, "serve logged nothing"
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
    assert any(e["logger"].startswith("uvicorn") for e in entries)  # uvicorn's lines too
    failures = [e for e in warned if e.get("delivery_id") == queued["id"]]
    assert len(failures) == 2, warned
    for entry in failures:
        assert entry["endpoint_id"] == endpoint["id"]
        assert entry["site_id"] == site["id"]
        assert "HTTP 500" in entry["reason"]
    everything = stderr_log.read_text() + stdout_log.read_text()
    for never in (endpoint["secret"], site["api_key"], ADMIN_KEY, VISITOR_EMAIL, VISITOR_TEXT):
        assert never not in everything, never


def _json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is one JSON object


def _wait_for_lines(path: Path, match: object, count: int) -> list[dict[str, Any]]:
    assert callable(match)
    deadline = time.monotonic() + 30
    while True:
        found = [entry for entry in _json_lines(path) if match(entry)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_an_unknown_log_format_or_level_is_refused_naming_the_option() -> None:
    runner = CliRunner()
    for args, option in (
        (["serve", "--log-format", "xml"], "--log-format"),
        (["worker", "--log-level", "loud"], "--log-level"),
        (["receive", "--log-format", "yaml"], "--log-format"),
    ):
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 2, (args, result.output)
        assert option in result.output, result.output
