"""Erasure: one visitor's data leaves the API, the tables and (SQLite) the database file."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from chathooks import cli
from chathooks.db.engine import create_engine
from chathooks.db.tables import erasures
from support.receiver import RecordingReceiver
from support.service import RunningService, running_service

EMAIL = "Zelda.Erased@Example.org"
SECRET_LINE = "my passport number is XK-4471-ERASEME"
OFFLINE_LINE = "call me back about ticket OFFLINE-7781-ERASEME"
OTHER_EMAIL = "kept.visitor@example.net"


def _audit(database_url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(select(erasures))
                return [dict(row._mapping) for row in rows]
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def _chat(service: RunningService, site: str, auth: dict[str, str], email: str, line: str) -> str:
    path = f"/api/v1/sites/{site}/conversations"
    started = service.client.post(
        path, json={"visitor": {"fullName": "Zelda", "emailAddress": email}}, headers=auth
    )
    assert started.status_code == 201, started.text
    chat: str = started.json()["id"]
    said = service.client.post(
        f"{path}/{chat}/messages", json={"from": "visitor", "body": line}, headers=auth
    )
    assert said.status_code == 201, said.text
    assert service.client.post(f"{path}/{chat}/close", headers=auth).status_code == 200
    return chat


def test_erasure_by_email_removes_everything_of_the_visitor_and_is_audited(
    database_url: str, receiver: RecordingReceiver
) -> None:
    receiver.reply(200, {"echo": SECRET_LINE})  # a receiver that repeats what it was sent
    with running_service(database_url, retry_schedule=[3600]) as service:
        site, auth = service.create_site()
        good = service.create_endpoint(site, auth, receiver.url)
        service.create_endpoint(site, auth, "http://127.0.0.1:9/down")  # never answers
        chat = _chat(service, site, auth, EMAIL, SECRET_LINE)
        kept = _chat(service, site, auth, OTHER_EMAIL, "nothing to erase here")
        offline = service.client.post(
            f"/api/v1/sites/{site}/offline-messages",
            json={"visitor": {"emailAddress": EMAIL.lower()}, "body": OFFLINE_LINE},
            headers=auth,
        )
        assert offline.status_code == 202, offline.text
        deliveries = service.client.get(f"/api/v1/sites/{site}/deliveries", headers=auth).json()
        mine = [d for d in deliveries["items"] if d["conversation_id"] == chat]
        [to_good] = [d for d in mine if d["endpoint_id"] == good["id"]]
        service.wait_for_status(site, auth, to_good["id"], "succeeded")

        erased = service.client.post(
            f"/api/v1/sites/{site}/erasures", json={"email": EMAIL}, headers=auth
        )
        assert erased.status_code == 200, erased.text
        counts = erased.json()
        assert counts["subject"] == "email"
        assert counts["conversations"] == 1
        assert counts["deliveries"] == 4  # the transcript and the offline message, to both
        assert counts["deliveries_cancelled"] >= 2  # the unreachable endpoint's
        assert counts["attempts"] >= 1 and counts["payloads"] == 4

        conversations = f"/api/v1/sites/{site}/conversations"
        assert service.client.get(f"{conversations}/{chat}", headers=auth).status_code == 404
        assert service.client.get(f"{conversations}/{kept}", headers=auth).status_code == 200
        left = service.client.get(f"/api/v1/sites/{site}/deliveries", headers=auth).json()
        assert {d["conversation_id"] for d in left["items"]} == {kept}

    [audit] = _audit(database_url)
    assert (audit["site_id"], audit["subject"], audit["requested_by"]) == (site, "email", "api")
    assert audit["counts"]["conversations"] == 1
    assert EMAIL.lower() not in json.dumps(audit, default=str).lower()

    if database_url.startswith("sqlite"):
        database = Path(make_url(database_url).database or "")
        stored = database.read_bytes()
        wal = database.with_name(database.name + "-wal")
        stored += wal.read_bytes() if wal.exists() else b""
        assert OTHER_EMAIL.encode() in stored  # the check reads where the data would be
        for gone in (EMAIL.encode(), EMAIL.lower().encode(), SECRET_LINE.encode()):
            assert gone not in stored, gone
        assert OFFLINE_LINE.encode() not in stored


def test_an_erasure_must_name_one_thing(sqlite_url: str) -> None:
    with running_service(sqlite_url, run_worker=False) as service:
        site, auth = service.create_site()
        path = f"/api/v1/sites/{site}/erasures"
        for body, field in (
            ({}, "conversation_id"),
            ({"conversation_id": "a", "email": "b@example.com"}, "conversation_id"),
            ({"email": "not-an-address"}, "email"),
        ):
            refused = service.client.post(path, json=body, headers=auth)
            assert refused.status_code == 422, refused.text
            assert refused.json()["field"] == field
            assert refused.json()["error"] == "invalid_erasure"
        other, _ = service.create_site("other.example")
        denied = service.client.post(
            f"/api/v1/sites/{other}/erasures", json={"conversation_id": "x"}, headers=auth
        )
        assert denied.status_code == 404  # one site's key erases nothing of another's


def test_erase_command_erases_one_conversation(database_url: str) -> None:
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site()
        chat = _chat(service, site, auth, EMAIL, SECRET_LINE)
        kept = _chat(service, site, auth, OTHER_EMAIL, "stays")
    runner = CliRunner()
    done = runner.invoke(
        cli.app,
        ["erase", site, "--conversation", chat, "--json", "--database-url", database_url],
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["conversations"] == 1
    again = runner.invoke(
        cli.app, ["erase", site, "--conversation", kept, "--database-url", database_url]
    )
    assert again.exit_code == 0 and "conversations: 1" in again.stdout
    assert [row["requested_by"] for row in _audit(database_url)] == ["cli", "cli"]
    for args, hint in (
        (["erase", site], "--conversation"),
        (["erase", site, "--email", "nope"], "--email"),
        (["erase", "site_missing", "--conversation", "c"], "no site"),
    ):
        refused = runner.invoke(cli.app, [*args, "--database-url", database_url])
        assert refused.exit_code != 0 and hint in refused.output, refused.output


def test_erasure_by_email_finds_a_chat_where_the_visitor_only_typed_it(
    database_url: str,
) -> None:
    with running_service(database_url, run_worker=False) as service:
        site, auth = service.create_site()
        path = f"/api/v1/sites/{site}/conversations"
        started = service.client.post(path, json={"visitor": {"fullName": "Zelda"}}, headers=auth)
        chat = started.json()["id"]
        for line in ("hello", f"you can reach me at {EMAIL.lower()}", "thanks"):
            said = service.client.post(
                f"{path}/{chat}/messages", json={"from": "visitor", "body": line}, headers=auth
            )
            assert said.status_code == 201, said.text

        erased = service.client.post(
            f"/api/v1/sites/{site}/erasures", json={"email": EMAIL}, headers=auth
        )
        gone = service.client.get(f"{path}/{chat}", headers=auth)

    assert erased.status_code == 200, erased.text
    assert erased.json()["conversations"] == 1
    assert gone.status_code == 404
