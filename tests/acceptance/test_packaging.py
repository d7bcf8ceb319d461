"""The built wheel, installed the way an endpoint owner installs it.

One fresh virtual environment gets the wheel alone (the receiver toolkit);
the distributions it brought are counted, a Flask app using
``chathooks.receiver.adapters.flask`` runs in it and verifies a signed POST
from that environment's own ``chathooks send-test --secret``; then the
``[server]`` extra is added and ``chathooks serve`` answers. Packages come
from the configured package index (pip's local cache makes repeats quick); a
machine that cannot reach it skips these tests, with the reason.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from chathooks.signing import generate_secret
from chathooks.wire import TEST_TRANSCRIPT_ID
from support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
#: What pip and venv themselves put in every environment; not chathooks' doing.
BASELINE = {"pip", "setuptools", "wheel"}
DEADLINE = 60.0

FLASK_APP = """
import json, sys
from flask import Flask
from chathooks.receiver import WebhookReceiver
from chathooks.receiver.adapters.flask import receive_webhook
from flask import request

app = Flask(__name__)
receiver = WebhookReceiver(secrets=[sys.argv[2]])
log = open(sys.argv[3], "a")

@app.post("/webhook")
def webhook():
    hook = receive_webhook(request, receiver)
    log.write(json.dumps({"id": hook.payload.id, "webhook_id": hook.webhook_id}) + "\\n")
    log.flush()
    return {"integrationUrl": f"https://crm.example/leads/{hook.payload.id}"}

app.run(host="127.0.0.1", port=int(sys.argv[1]))
"""


@dataclass
class Environment:
    path: Path

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @property
    def chathooks(self) -> str:
        return str(self.path / "bin" / "chathooks")

    def pip(self, *args: str) -> None:
        result = subprocess.run(
            [self.python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            unavailable(f"pip could not install {args}: {result.stderr.strip()[-500:]}")

    def distributions(self) -> set[str]:
        listed = subprocess.run(
            [self.python, "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return {d["name"].lower().replace("_", "-") for d in json.loads(listed.stdout)}


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("CHATHOOKS_", "VIRTUAL_ENV"))}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited: {log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"nothing listened on {port} within {DEADLINE} s: {log.read_text()}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if built.returncode != 0:
        unavailable(f"cannot build the wheel: {built.stderr.strip()[-500:]}")
    (found,) = out.glob("chathooks-*.whl")
    return found


@pytest.fixture(scope="module")
def toolkit(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    environment = Environment(tmp_path_factory.mktemp("toolkit") / "venv")
    venv.create(environment.path, with_pip=True)
    environment.pip(str(wheel))
    yield environment


def test_the_toolkit_brings_five_distributions_at_most(toolkit: Environment) -> None:
    brought = toolkit.distributions() - BASELINE - {"chathooks"}
    assert "pydantic" in brought
    assert len(brought) <= 5, sorted(brought)
    for server_part in ("fastapi", "sqlalchemy", "aiohttp", "uvicorn", "typer", "asyncpg"):
        assert server_part not in brought


def test_the_wheel_ships_type_information_and_its_licence(wheel: Path) -> None:
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "chathooks/py.typed" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)


def test_a_service_command_on_the_toolkit_names_the_extra(toolkit: Environment) -> None:
    result = subprocess.run(
        [toolkit.chathooks, "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(),
        check=False,
    )
    assert result.returncode == 2
    assert "chathooks[server]" in result.stderr
    assert "Traceback" not in result.stderr


def test_flask_verifies_a_signed_send_test_from_the_toolkit(
    toolkit: Environment, tmp_path: Path
) -> None:
    toolkit.pip("flask")
    app, received, log = tmp_path / "app.py", tmp_path / "received.jsonl", tmp_path / "flask.log"
    app.write_text(FLASK_APP)
    secret, port = generate_secret(), free_port()
    with log.open("wb") as output:
        server = subprocess.Popen(
            [toolkit.python, str(app), str(port), secret, str(received)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=_clean_env(),
        )
    try:
        wait_for_port(port, server, log)
        url = f"http://127.0.0.1:{port}/webhook"
        sent = subprocess.run(
            [toolkit.chathooks, "send-test", url, "--secret", secret],
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_env(),
            check=False,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert f"integrationUrl: https://crm.example/leads/{TEST_TRANSCRIPT_ID}" in sent.stdout
        (line,) = received.read_text().splitlines()
        assert json.loads(line)["id"] == TEST_TRANSCRIPT_ID

        forged = subprocess.run(
            [toolkit.chathooks, "send-test", url, "--secret", generate_secret()],
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_env(),
            check=False,
        )
        assert forged.returncode == 1
        assert "401" in forged.stdout
        assert len(received.read_text().splitlines()) == 1
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_server_extra_gives_a_working_serve(
    toolkit: Environment, wheel: Path, tmp_path: Path
) -> None:
    toolkit.pip(f"{wheel}[server]")
    port, log = free_port(), tmp_path / "serve.log"
    env = {**_clean_env(), "CHATHOOKS_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [toolkit.chathooks, "serve", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for_port(port, server, log)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert health.status_code == 200, health.text
    finally:
        server.terminate()
        server.wait(timeout=30)
