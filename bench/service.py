"""Driving chathooks as a user would: its CLI, its processes, its HTTP API.

The benchmark never imports chathooks internals here; it runs ``chathooks
migrate``, ``site create``, ``endpoint add``, ``serve`` and ``worker`` exactly
as documented, so the figures are those of the shipped service.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.processes import Child, ChildFailed, Children, free_port

READY_TIMEOUT = 60.0


def chathooks_command() -> list[str]:
    """argv prefix that runs the ``chathooks`` CLI of this interpreter's environment."""
    beside = Path(sys.executable).with_name("chathooks")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("chathooks")
    if found:
        return [found]
    return [sys.executable, "-c", "from chathooks.cli import main; main()"]


@dataclass(frozen=True)
class Deployment:
    """One database with a site and an endpoint that posts to the sink."""

    database_url: str
    site_id: str
    api_key: str
    endpoint_id: str

    @property
    def database_args(self) -> list[str]:
        return ["--database-url", self.database_url]

    @property
    def env(self) -> dict[str, str]:
        return {"CHATHOOKS_DATABASE_URL": self.database_url}


#: The requests in flight the benchmark's own endpoint allows: as many as the bare loop
#: (a) and the peers keep in flight, so all post at the same concurrency. A new endpoint's
#: default is CHATHOOKS_ENDPOINT_CONCURRENCY (8), a share of one worker's 64 slots.
ENDPOINT_IN_FLIGHT = 64


def prepare(children: Children, database_url: str, webhook_url: str) -> Deployment:
    """Migrate ``database_url`` and create the site and endpoint the benchmark posts through."""
    cli = chathooks_command()
    db = ["--database-url", database_url]
    env = {"CHATHOOKS_DATABASE_URL": database_url}
    children.run("chathooks migrate", [*cli, "migrate", *db], env=env)
    return add_site(children, database_url, webhook_url, max_in_flight=ENDPOINT_IN_FLIGHT)


def add_site(
    children: Children,
    database_url: str,
    webhook_url: str,
    name: str = "bench",
    *,
    max_in_flight: int | None = None,
) -> Deployment:
    """Another site, with one endpoint posting to ``webhook_url``, in a migrated database.

    ``max_in_flight`` None leaves the endpoint at the service's default cap.
    """
    cli = chathooks_command()
    db = ["--database-url", database_url]
    env = {"CHATHOOKS_DATABASE_URL": database_url}
    site = _json_output(
        children.run(
            "chathooks site create", [*cli, "site", "create", name, "--json", *db], env=env
        )
    )
    endpoint = _json_output(
        children.run(
            "chathooks endpoint add",
            [
                *cli,
                "endpoint",
                "add",
                str(site["id"]),
                webhook_url,
                "--json",
                *db,
                *([] if max_in_flight is None else ["--max-in-flight", str(max_in_flight)]),
            ],
            env=env,
        )
    )
    return Deployment(
        database_url=database_url,
        site_id=str(site["id"]),
        api_key=str(site["api_key"]),
        endpoint_id=str(endpoint.get("id", "")),
    )


@dataclass
class Api:
    """A running ``chathooks serve`` process."""

    child: Child
    base_url: str
    started_at: float

    def transcripts_url(self, deployment: Deployment) -> str:
        return f"{self.base_url}/api/v1/sites/{deployment.site_id}/transcripts"


async def start_api(
    children: Children,
    deployment: Deployment,
    session: aiohttp.ClientSession,
    *,
    worker: bool,
) -> Api:
    """``chathooks serve`` on a free loopback port; returns once ``/healthz`` answers."""
    port = free_port()
    argv = [
        *chathooks_command(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *deployment.database_args,
    ]
    if not worker:
        argv.append("--no-worker")
    started_at = time.time()
    child = children.start("serve" if worker else "serve-no-worker", argv, env=deployment.env)
    api = Api(child=child, base_url=f"http://127.0.0.1:{port}", started_at=started_at)
    await _wait_healthy(api, session)
    return api


def start_worker(children: Children, deployment: Deployment, name: str) -> Child:
    """One ``chathooks worker`` process (its concurrency from ``CHATHOOKS_*`` or the default)."""
    argv = [*chathooks_command(), "worker", *deployment.database_args]
    return children.start(name, argv, env=deployment.env)


async def _wait_healthy(api: Api, session: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        api.child.check_alive()
        try:
            async with session.get(f"{api.base_url}/healthz") as response:
                if response.status == 200:
                    return
                last_problem = f"HTTP {response.status}"
        except aiohttp.ClientError as exc:
            last_problem = str(exc) or type(exc).__name__
        await asyncio.sleep(0.1)
    raise ChildFailed(
        f"chathooks serve did not become healthy within {READY_TIMEOUT:.0f} s "
        f"({last_problem})\n{api.child.log_tail()}"
    )


def _json_output(text: str) -> dict[str, object]:
    """The JSON object a ``--json`` command printed (the last line that parses)."""
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    try:
        whole = json.loads(text)
    except ValueError as exc:
        raise ChildFailed(f"expected JSON from chathooks, got:\n{text[-1000:]}") from exc
    if not isinstance(whole, dict):
        raise ChildFailed(f"expected a JSON object from chathooks, got:\n{text[-1000:]}")
    return whole
